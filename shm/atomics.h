/* SPDX-License-Identifier: MIT */
#ifndef XR_SHM_ATOMICS_H
#define XR_SHM_ATOMICS_H

/*
 * The whole atomic vocabulary of xring. Every use site labels itself
 * (W1, R2, ...) and names the access it pairs with; shm/ring_writer.c and
 * shm/ring_reader.c hold the argument for why the pairs suffice.
 *
 *   xr_load_acquire / xr_store_release   publication of data behind an index
 *   xr_load_sc / xr_store_sc             the two Dekker-style handshakes
 *                                        (tail vs. lease), which need a store
 *                                        followed by a load to be ordered
 *   xr_load_relaxed / xr_store_relaxed   counters and hints nobody orders on
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
