# The engine's control socket: attach, peer credentials, reader limits,
# malformed messages, and deaths on either side of the socket.
xr_test(NAME test_control SOURCES test_control.c LABELS "unit;control" TIMEOUT 120)
