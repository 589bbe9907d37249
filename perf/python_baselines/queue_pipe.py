# SPDX-License-Identifier: MIT
"""The multiprocessing.Queue pipeline.

Producer (its own process): puts the same pre-built message, the bytes of N
records, on a bounded multiprocessing.Queue, as fast as the queue takes it.
Queue.put hands the object to the queue's feeder thread, which pickles it
(for bytes: one copy into the pickle) and writes it to a pipe (widened to
pipe-max-size, see widen_pipe).
Consumer (the benchmark): Queue.get reads the message from the pipe and
unpickles it (bytes again), then makes numpy views of its fields
(records.Layout.views), the same arrays xring's Batch gives.
"""
import fcntl
import os

from .steady import malloc_steady

F_SETPIPE_SZ = 1031


def widen_pipe(q):
    """Raises the queue's pipe from 64 KiB to the most an unprivileged
    process may set (/proc/sys/fs/pipe-max-size, 1 MiB by default): fewer
    round trips between the two processes per message, 2-4 x the records/s
    here. Reaches into the Queue's private pipe; returns the size, or None."""
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            size = int(f.read())
        return fcntl.fcntl(q._writer.fileno(), F_SETPIPE_SZ, size)
    except (OSError, ValueError, AttributeError):
        return None


def producer(q, payload, cpu):
    """Runs in the producer process until terminated."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    malloc_steady()
    put = q.put
    while True:
        put(payload)
