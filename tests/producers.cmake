# External producers: a child's records through the engine into a ring, a
# SIGKILLed producer's published records all taken, backpressure, and
# hostile staging rings each ending only their producer.
xr_test(NAME test_producers SOURCES test_producers.c LABELS "unit;producers" TIMEOUT 120)
