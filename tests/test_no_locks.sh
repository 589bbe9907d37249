#!/usr/bin/env bash
# Invariant 2's "no lock", where the kernel cannot see it: an uncontended
# mutex makes no system call, so test_writer_syscalls would not catch one.
# The objects of the data path (the ring's writer and reader, the wake
# protocol, the record builder, the shard and its lifecycle queues, the
# reader library) must not call a lock, a condition, a semaphore or a raw
# system call. Usage: test_no_locks.sh OBJDIR (CMakeFiles/xring_obj.dir).
set -euo pipefail
dir=$1
objs=(shm/ring_writer.c.o shm/ring_reader.c.o shm/wake.c.o record/experience.c.o
      engine/shard.c.o engine/lifecycle_queue.c.o client/reader.c.o)
bad=0
for o in "${objs[@]}"; do
  [ -f "$dir/$o" ] || { echo "FAIL: $dir/$o not built"; exit 1; }
  hits=$(nm -u "$dir/$o" | awk '{print $2}' |
         grep -E '^(pthread_(mutex|spin|rwlock|cond)_|sem_(wait|post|timedwait|trywait)|syscall$|futex)' || true)
  if [ -n "$hits" ]; then
    echo "FAIL: $o calls $(echo $hits)"; bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "no locks in the data path's ${#objs[@]} objects"
exit $bad
