# Replay tables' bookkeeping (table/): samplers against their definitions,
# removers, leases and keys, the rate limiter, checkpoints.
xr_test(NAME test_table SOURCES test_table.c LABELS "unit;table")
target_link_libraries(test_table PRIVATE m)
xr_test(NAME test_table_limiter SOURCES test_table_limiter.c LABELS "unit;table")
target_link_libraries(test_table_limiter PRIVATE m)
xr_test(NAME test_table_checkpoint SOURCES test_table_checkpoint.c LABELS "unit;table")
target_link_libraries(test_table_checkpoint PRIVATE m)
# The engine's table service, the test playing trainers through their pages.
xr_test(NAME test_table_service SOURCES test_table_service.c LABELS "unit;table")
target_link_libraries(test_table_service PRIVATE m)
# A checkpoint in flight: written by a thread of its own while the other
# tables are served and its own stands still (TSan runs it: threads).
xr_test(NAME test_table_service_checkpoint SOURCES test_table_service_checkpoint.c
  LABELS "unit;table;threads")
# A restore in flight: read by a thread of its own, the same way.
xr_test(NAME test_table_service_restore SOURCES test_table_service_restore.c
  LABELS "unit;table;threads")
# Tables across processes: trainers in children of an engine here; leases
# under concurrent insertion, a trainer SIGKILLed, the limiter, the engine's stop.
xr_test(NAME test_table_procs SOURCES test_table_procs.c LABELS "unit;table;threads" TIMEOUT 180)
# The table host's thread and doorbells: descriptors sent on a doorbell, a
# deaf trainer, a connection's end, per-uid caps.
xr_test(NAME test_table_host SOURCES test_table_host.c LABELS "unit;table;threads")
# A fed table's transitions: which records pair, and none across a gap the
# feed had to come back from.
xr_test(NAME test_transitions SOURCES test_transitions.c LABELS "unit;table")
# Tables the engine feeds from its stream: records whole and in order, the
# rate limiter holding the feed.
xr_test(NAME test_table_feed SOURCES test_table_feed.c LABELS "unit;table;threads" TIMEOUT 120)
