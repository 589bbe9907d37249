# Tests of the Experience record codec: record/, schema/experience.fbs.
# Included from tests/CMakeLists.txt, which defines xr_test().

xr_test(NAME test_record_roundtrip SOURCES test_record_roundtrip.c LABELS unit)
xr_test(NAME test_record_verify SOURCES test_record_verify.c LABELS unit)
# A million deterministic mutants: about 2 s under ASan+UBSan.
xr_test(NAME test_record_fuzz SOURCES test_record_fuzz.c LABELS fuzz
  ARGS 1000000 TIMEOUT 600)

# Not a test: writes and reads single records as files, for the interop
# tests below and for people (see its header comment).
add_executable(xr_record_tool tools/xr_record_tool.c)
target_compile_options(xr_record_tool PRIVATE ${XR_WARNINGS})
target_link_libraries(xr_record_tool PRIVATE xring_internal)

# FlatBuffers interop, both ways, against Debian's flatc and the official
# Python runtime (python3-flatbuffers, python3-numpy, python3-pytest). Prefer
# the system interpreter: that is where the Debian packages are installed.
find_program(XR_FLATC flatc)
find_program(XR_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(XR_PYTHON3 NAMES python3)
if(XR_FLATC AND XR_PYTHON3)
  add_test(NAME test_record_interop
    COMMAND ${XR_PYTHON3} -m pytest -q -p no:cacheprovider
      ${CMAKE_CURRENT_SOURCE_DIR}/python/test_flatbuffers_interop.py)
  set_tests_properties(test_record_interop PROPERTIES
    LABELS "unit;interop" TIMEOUT 300
    ENVIRONMENT "XRING_BUILD_DIR=${CMAKE_BINARY_DIR};XRING_RECORD_TOOL=$<TARGET_FILE:xr_record_tool>;XRING_FLATC=${XR_FLATC};PYTHONDONTWRITEBYTECODE=1")
else()
  message(STATUS "flatc or python3 not found: test_record_interop not registered")
endif()
# Its libFuzzer target, fuzz_record_verify, and its corpus replay: tests/fuzz/fuzz.cmake.
