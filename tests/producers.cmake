# External producers: a child's records through the engine into a ring, a
# SIGKILLed producer's published records all taken, backpressure, and
# hostile staging rings each ending only their producer.
xr_test(NAME test_producers SOURCES test_producers.c LABELS "unit;producers;threads" TIMEOUT 120)
# Bridge messages between hosts: round trips (plain and zstd), every cut and
# flipped byte refused, altered fields refused by their checks.
xr_test(NAME test_bridge_wire SOURCES test_bridge_wire.c LABELS "unit;bridge")
target_link_libraries(test_bridge_wire PRIVATE xring_bridge)
