/* SPDX-License-Identifier: MIT */
#ifndef XR_UTIL_ATOMICS_H
#define XR_UTIL_ATOMICS_H

/*
 * The whole atomic vocabulary of xring: no other library file names a memory_order
 * or calls an atomic_* function (tests and the bare baselines in perf/ may;
 * grep for memory_order in the library finds this file only). Every
 * use site labels itself (W1, R2, PS3, ...) and names the access it pairs
 * with; the file that owns each piece of shared state opens with the
 * argument for why the pairs suffice (shm/ring_writer.c, shm/wake.c,
 * shm/peers.c, client/reader.c).
 *
 *   xr_load_acquire / xr_store_release   publication of data behind an index
 *   xr_load_sc / xr_store_sc             the store-then-load handshakes
 *                                        (tail vs. lease, sleep vs. publish,
 *                                        live vs. busy), whose stores and
 *                                        loads must fall in one total order
 *   xr_load_relaxed / xr_store_relaxed   counters and hints nobody orders on
 *   xr_atomic_xchg, xr_cas               acq_rel read-modify-writes
 *   xr_cas_sc                            a CAS that is also the store of a
 *                                        store-then-load handshake
 *   xr_fetch_add_sc, xr_fetch_add_release, xr_fetch_sub_release,
 *   xr_fetch_or_release, xr_fetch_and_relaxed
 *                                        the few counters and bit masks that
 *                                        several threads update
 *
 * Shared-memory fields are declared _Atomic so that no access can be plain by
 * mistake; the x86-64 representation of _Atomic uint64_t is a plain uint64_t
 * (checked in layout.h), which is what makes sharing them across processes
 * well-defined in practice.
 */

#include <stdatomic.h>
#include <stdint.h>

#define xr_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define xr_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define xr_load_sc(p) atomic_load_explicit((p), memory_order_seq_cst)
#define xr_store_sc(p, v) atomic_store_explicit((p), (v), memory_order_seq_cst)
#define xr_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define xr_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define xr_atomic_xchg(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define xr_cas(p, expp, v) \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), \
		memory_order_acq_rel, memory_order_acquire)
#define xr_cas_sc(p, expp, v) \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), \
		memory_order_seq_cst, memory_order_acquire)
#define xr_fetch_add_sc(p, v) atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define xr_fetch_add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define xr_fetch_sub_release(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_release)
#define xr_fetch_or_release(p, v) atomic_fetch_or_explicit((p), (v), memory_order_release)
#define xr_fetch_and_relaxed(p, v) atomic_fetch_and_explicit((p), (v), memory_order_relaxed)
#define xr_fence_acquire() atomic_thread_fence(memory_order_acquire)
#define xr_fence_release() atomic_thread_fence(memory_order_release)

/* Single-writer counter bump: only one thread ever stores to *p, so a
 * relaxed load + store is exact and cheaper than a locked add. */
#define xr_counter_add(p, n) \
	xr_store_relaxed((p), xr_load_relaxed(p) + (n))

static inline void xr_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
