# Fault tests (issue 13, docs/operations.md "Fault tests"): peers and
# engines killed and stopped under load, resources missing at creation,
# a hundred peers at once. Label stress; each asserts zero loss where the
# policy promises it. Sanitized builds run smaller counts (fault_helpers.h).
# Those with an engine in the test's process are labelled threads too: the
# TSan pass runs them (scripts/test.sh).
#
# Readers and agents SIGKILLed 200 times at random points while an honest
# reader and agent go on; a lossless and a lossy reader SIGSTOPped.
# (perf/faults.sh runs 1,000 kills.)
# Its own bound on the kill storm is 240 s, 600 s under the sanitizers:
# ctest's timeout leaves it room to say what it saw.
if(XRING_ASAN OR XRING_UBSAN OR XRING_TSAN)
  set(XR_FAULTS_TIMEOUT 700)
else()
  set(XR_FAULTS_TIMEOUT 300)
endif()
xr_test(NAME test_faults SOURCES test_faults.c LABELS "stress;engine;faults;threads"
  ARGS all 200 TIMEOUT ${XR_FAULTS_TIMEOUT})
# `xring engine` SIGKILLed under load, three times: every reader and agent
# gets XR_ECLOSED within a second and comes back to the restarted engine.
xr_test(NAME test_faults_engine SOURCES test_faults_engine.c LABELS "stress;engine;faults;threads"
  ARGS $<TARGET_FILE:xring_cli> 3 TIMEOUT 180)
# 100 lossless readers of one stream (each gets every record; aggregate
# throughput printed) and 100 agents acting, the 101st refused.
xr_test(NAME test_many_peers SOURCES test_many_peers.c LABELS "stress;engine;faults;threads"
  ARGS $<TARGET_FILE:xring_cli> TIMEOUT 240)
# Resources missing at creation: no huge pages left, /dev/shm full, the run
# directory not writable; one line each (mounts in a private namespace:
# root; without it the run-directory cases, then skipped).
add_test(NAME test_resources
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_resources.sh $<TARGET_FILE:xring_cli>)
set_tests_properties(test_resources PROPERTIES LABELS "stress;cli;faults" TIMEOUT 60
  SKIP_RETURN_CODE 77 ENVIRONMENT "XRING_RUN_DIR=${XR_TEST_RUN_DIR}")
