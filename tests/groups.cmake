# Consumer groups: members in children split a stream, one SIGKILLed holding
# batches, one scribbling over its page; every record used once.
xr_test(NAME test_groups SOURCES test_groups.c LABELS "unit;groups" TIMEOUT 180)
