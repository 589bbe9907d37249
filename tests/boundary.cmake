# The trust boundary (docs/threat-model.md): what a hostile peer process, or
# another local user, can do to an engine and its readers, tried by hand.
# Each case was a way to stop or fool the engine before; each must fail on
# that code and pass now.
xr_test(NAME test_peer_cannot_stall SOURCES test_peer_cannot_stall.c
        LABELS "unit;control;threads" TIMEOUT 180)
xr_test(NAME test_peer_isolation SOURCES test_peer_isolation.c
        LABELS "unit;control;threads" TIMEOUT 180)
xr_test(NAME test_names_and_identity SOURCES test_names_and_identity.c
        LABELS "unit;control" TIMEOUT 120)
xr_test(NAME test_arena_validate SOURCES test_arena_validate.c LABELS "unit;fuzz" TIMEOUT 120)
# The pid a handle compares with its opener's, in children of every kind of
# fork (a forked child must not use its parent's handles).
xr_test(NAME test_self_pid SOURCES test_self_pid.c LABELS "unit")
