# SPDX-License-Identifier: MIT
"""Steady-state malloc for processes that allocate a message of megabytes
per batch (both sides of the baselines: the pickle, the received bytes).

glibc serves such blocks with mmap, or from the top of the heap, which it
trims on free; either way every message faults its pages in again
(clear_page in the kernel) until glibc's dynamic thresholds settle, which
took about a second here, at a third of the steady rate. A long-running
pipeline is past that; these settings put a fresh process there at once.
"""
import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def malloc_steady():
    """Keeps freed blocks of up to 32 MiB in the heap (returns True if set)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and
                    libc.mallopt(M_TRIM_THRESHOLD, 512 << 20))
    except (OSError, AttributeError):
        return False
