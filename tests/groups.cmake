# Consumer groups: members in children split a stream, one SIGKILLed holding
# batches, one scribbling over its page; every record used once.
xr_test(NAME test_groups SOURCES test_groups.c LABELS "unit;groups;threads" TIMEOUT 180)
# The same with every member a thread, for ThreadSanitizer: four members, one
# detaching with batches held and joining again; every record used once.
xr_test(NAME test_group_threads SOURCES test_group_threads.c LABELS "unit;groups;threads" TIMEOUT 300)
