# Tests of the arena, rings and reader library.
