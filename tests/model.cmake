# The protocol model (model/ring.pml, docs/protocol-model.md): spin checks the
# ring's publication, leases, reclaim, drops and evictions and the sleep/wake
# handshake as the code has them (no error), and finds the fault in each
# deliberately broken variant. About a minute of CPU; the timeout leaves room
# for a busy machine. Skipped (77) without spin, which scripts/deps.sh
# installs.
add_test(NAME test_model
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_model.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(test_model PROPERTIES
  LABELS "unit;model" SKIP_RETURN_CODE 77 TIMEOUT 600
  # Its searches take every CPU (test_model.sh): beside it, the others'
  # rates and deadlines would be measured on half a machine.
  RUN_SERIAL TRUE)
