#!/usr/bin/env bash
# Invariant 2's "no lock", where the kernel cannot see it: an uncontended
# mutex makes no system call, so test_writer_syscalls would not catch one.
# The objects of the data path (the ring's writer and reader, the peer slots
# the writer scans, the wake protocol, the record builder, the shard and its
# lifecycle queues, the reader library, and the util objects they call) must
# not call a lock, a condition, a semaphore or a raw system call.
# Usage: test_no_locks.sh OBJDIR (CMakeFiles/xring_obj.dir).
set -euo pipefail
dir=$1
command -v nm >/dev/null || { echo "SKIP: no nm (binutils)"; exit 77; }
objs=(shm/ring_writer.c.o shm/ring_reader.c.o shm/peers.c.o shm/wake.c.o
      record/experience.c.o engine/shard.c.o engine/lifecycle_queue.c.o client/reader.c.o
      util/clock.c.o)
bad=0
for o in "${objs[@]}"; do
  [ -f "$dir/$o" ] || { echo "FAIL: $dir/$o not built"; exit 1; }
  # nm must read the object (an LTO-only object, or one nm cannot parse,
  # would list nothing and pass), and see what it surely calls.
  if ! syms=$(nm -u "$dir/$o" 2>&1); then
    echo "FAIL: nm cannot read $o: $syms"; exit 1
  fi
  # A real object defines something (an object may call nothing at all).
  if [ -z "$(nm --defined-only "$dir/$o" 2>/dev/null)" ]; then
    echo "FAIL: nm finds no symbol in $o (not a real object?)"; exit 1
  fi
  hits=$(awk '{print $NF}' <<<"$syms" |
         grep -E '^(pthread_(mutex|spin|rwlock|cond)_|sem_(wait|post|timedwait|trywait)|(mtx|cnd)_|syscall$|futex)' || true)
  if [ -n "$hits" ]; then
    echo "FAIL: $o calls $(echo $hits)"; bad=1
  fi
done
# The pattern itself: the closing thread's object does use a mutex.
nm -u "$dir/control/closer.c.o" | grep -q pthread_mutex_lock ||
  { echo "FAIL: the check finds no mutex even in control/closer.c.o"; exit 1; }
[ "$bad" -eq 0 ] && echo "no locks in the data path's ${#objs[@]} objects"
exit $bad
