# Fuzzing of every untrusted input: docs/fuzzing.md. Included from
# tests/CMakeLists.txt.
#
# Each harness tests/fuzz/fuzz_<h>.c defines LLVMFuzzerTestOneInput and is
# built two ways:
#   - always (gcc or clang): fuzz_<h>_replay, the harness with a replay main
#     (replay_main.c) against the ordinary library, which runs every input of
#     its committed corpus (tests/fuzz/corpus/<h>) and every crash found so
#     far (tests/fuzz/regressions/<h>) once: ctest test_fuzz_<h>_replay.
#   - with XRING_LIBFUZZER (clang only): fuzz_<h>, a libFuzzer binary whose
#     library code is compiled with the fuzzer's coverage and ASan+UBSan
#     (the static library xring_fuzz below), run by ctest for a short bounded
#     time from its corpus: test_fuzz_<h>. Any crash, sanitizer report, leak
#     or timeout fails it; the input is left in the build's fuzz-work/<h>/.
# Both carry the label "fuzz".

set(XR_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
# Harness, seconds of libFuzzer in the suite, its -max_len.
set(XR_FUZZ_HARNESSES
  "record_verify 8 4096"
  "arena_open 12 24576"
  "control 15 16384"
  "shm_peers 15 512"
  "bridge_msg 10 65536")

foreach(h ${XR_FUZZ_HARNESSES})
  separate_arguments(h)
  list(GET h 0 name)
  add_executable(fuzz_${name}_replay ${XR_FUZZ_DIR}/fuzz_${name}.c ${XR_FUZZ_DIR}/replay_main.c)
  target_compile_options(fuzz_${name}_replay PRIVATE ${XR_WARNINGS})
  target_include_directories(fuzz_${name}_replay PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(fuzz_${name}_replay PRIVATE xring_internal)
  add_test(NAME test_fuzz_${name}_replay
    COMMAND fuzz_${name}_replay ${XR_FUZZ_DIR}/corpus/${name} ${XR_FUZZ_DIR}/regressions/${name})
  set_tests_properties(test_fuzz_${name}_replay PROPERTIES
    LABELS "fuzz" SKIP_RETURN_CODE 77 TIMEOUT 300)
endforeach()
# Bridge messages are the bridge's (bridge/wire.c, with zstd and libcrypto).
target_link_libraries(fuzz_bridge_msg_replay PRIVATE xring_bridge)

option(XRING_LIBFUZZER "Build the libFuzzer targets (clang): docs/fuzzing.md" OFF)
if(XRING_LIBFUZZER)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "XRING_LIBFUZZER needs clang (CC=clang)")
  endif()
  # The library once more, instrumented for the fuzzer (coverage, no main)
  # and with ASan and UBSan, every UBSan finding fatal: one static archive
  # that every harness links.
  set(XR_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
      -fno-omit-frame-pointer -g)
  # clang's -Wcast-align warns on every target, gcc's only where alignment
  # is strict: the project's casts of ring bytes to frames are aligned by
  # the ring's frame alignment.
  set(XR_FUZZ_WARNINGS ${XR_WARNINGS} -Wno-cast-align)
  set(XR_FUZZ_LIB_SOURCES ${XR_LIB_SOURCES})
  list(TRANSFORM XR_FUZZ_LIB_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/)
  add_library(xring_fuzz STATIC ${XR_FUZZ_LIB_SOURCES})
  target_compile_options(xring_fuzz PRIVATE ${XR_FUZZ_WARNINGS} ${XR_FUZZ_FLAGS}
    -fsanitize=fuzzer-no-link)
  target_compile_definitions(xring_fuzz PRIVATE XRING_BUILDING)
  target_include_directories(xring_fuzz PUBLIC
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include ${PROJECT_SOURCE_DIR}
    ${NUMA_INCLUDE} ${HUGETLBFS_INCLUDE})
  target_link_libraries(xring_fuzz PUBLIC ${XR_LINK_LIBS})
  set_target_properties(xring_fuzz PROPERTIES INTERPROCEDURAL_OPTIMIZATION OFF)

  add_custom_target(fuzzers)
  foreach(h ${XR_FUZZ_HARNESSES})
    separate_arguments(h)
    list(GET h 0 name)
    list(GET h 1 secs)
    list(GET h 2 max_len)
    add_executable(fuzz_${name} ${XR_FUZZ_DIR}/fuzz_${name}.c)
    target_compile_options(fuzz_${name} PRIVATE ${XR_FUZZ_WARNINGS} ${XR_FUZZ_FLAGS}
      -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE ${XR_FUZZ_FLAGS} -fsanitize=fuzzer)
    target_include_directories(fuzz_${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(fuzz_${name} PRIVATE xring_fuzz)
    set_target_properties(fuzz_${name} PROPERTIES INTERPROCEDURAL_OPTIMIZATION OFF)
    add_dependencies(fuzzers fuzz_${name})
    if(name STREQUAL "bridge_msg")
      target_sources(fuzz_${name} PRIVATE ${PROJECT_SOURCE_DIR}/bridge/wire.c)
      target_link_libraries(fuzz_${name} PRIVATE PkgConfig::ZSTD PkgConfig::CRYPTO)
    endif()
    add_test(NAME test_fuzz_${name}
      COMMAND ${XR_FUZZ_DIR}/run_fuzzer.sh $<TARGET_FILE:fuzz_${name}> ${secs} ${max_len}
        ${CMAKE_CURRENT_BINARY_DIR}/fuzz-work/${name}
        ${XR_FUZZ_DIR}/corpus/${name} ${XR_FUZZ_DIR}/regressions/${name})
    math(EXPR limit "${secs} * 3 + 60")
    set_tests_properties(test_fuzz_${name} PROPERTIES LABELS "fuzz;libfuzzer" TIMEOUT ${limit})
  endforeach()
endif()
