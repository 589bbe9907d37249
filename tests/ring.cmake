# Tests of the arena, rings and reader library.
xr_test(NAME test_ring_protocol SOURCES test_ring_protocol.c LABELS "unit;ring")
