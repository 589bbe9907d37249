# Tests of the arena, rings and reader library.
xr_test(NAME test_ring_protocol SOURCES test_ring_protocol.c LABELS "unit;ring;threads")
# History: a late reader starting N records back, or at the oldest kept.
xr_test(NAME test_reader_history SOURCES test_reader_history.c LABELS "unit;ring")
# One writer, three reader processes, a million random-size records per
# phase; every record stamped and checked. Runs with or without huge pages.
xr_test(NAME test_ring_stress_proc SOURCES test_ring_stress_proc.c LABELS "stress;ring"
  ARGS 1000000 TIMEOUT 600)
# Its threaded twin: the same scenario where ThreadSanitizer can see it.
xr_test(NAME test_ring_stress_threads SOURCES test_ring_stress_threads.c LABELS "stress;ring;threads"
  ARGS 200000 TIMEOUT 600)
# A reader SIGKILLed holding a lease: others unharmed, the writer goes on.
xr_test(NAME test_ring_kill SOURCES test_ring_kill.c LABELS "stress;ring" TIMEOUT 300)
# A reader process scribbling over its cursor: evicted, nobody else harmed.
xr_test(NAME test_ring_garbage SOURCES test_ring_garbage.c LABELS "stress;ring" TIMEOUT 300)
# Filters, and wakeups with writer, control server and readers in one
# process (ThreadSanitizer runs it: label threads).
xr_test(NAME test_filter_wake SOURCES test_filter_wake.c LABELS "unit;ring;threads" TIMEOUT 300)
target_link_libraries(test_filter_wake PRIVATE m)
# Invariant 2: the writer's thread in strict seccomp (no system call allowed).
xr_test(NAME test_writer_syscalls SOURCES test_writer_syscalls.c LABELS "unit;ring;threads")
add_test(NAME test_no_locks
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_no_locks.sh ${PROJECT_BINARY_DIR}/CMakeFiles/xring_obj.dir)
set_tests_properties(test_no_locks PROPERTIES LABELS "unit;ring" TIMEOUT 60 SKIP_RETURN_CODE 77)
