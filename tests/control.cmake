# The engine's control socket: attach, peer credentials, reader limits,
# malformed messages, and deaths on either side of the socket.
# Its server thread runs beside the test's: ThreadSanitizer runs it (label threads).
xr_test(NAME test_control SOURCES test_control.c LABELS "unit;control;threads" TIMEOUT 120)
