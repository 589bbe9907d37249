# Tests of the engine's parts (engine/).
xr_test(NAME test_timer_wheel SOURCES test_timer_wheel.c LABELS "unit;engine")
# Threads (shards): TSan runs it too.
xr_test(NAME test_engine_shard SOURCES test_engine_shard.c LABELS "unit;engine;threads")
