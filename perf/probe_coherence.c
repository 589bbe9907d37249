/* SPDX-License-Identifier: MIT */
/*
 * probe_coherence: what moving cache lines between the two CPUs a ring uses
 * costs on this machine, right now. Not an xring benchmark: a probe of the
 * platform under bench_ring, so that a slow ring result can be told apart
 * from a slow machine.
 *
 * Two threads, pinned to the writer's and the reader's CPU (as bench_ring
 * pins them), take turns over one buffer of --mib MiB:
 *
 *   local write     the writer stores every word of a buffer it owns
 *   write after     the writer stores every word of a buffer the reader has
 *   remote read     just read: each line must be taken back from the
 *                   reader's cache (read for ownership + invalidation)
 *   remote read     the reader loads every word of a buffer the writer has
 *                   just written
 *   stream write    the writer stores with non-temporal stores instead (x86)
 *
 * A ring's writer does "write after remote read" on every line it reuses,
 * and its reader does "remote read" on every line. On a virtual machine the
 * host decides where the two vCPUs run; these numbers can change by 10x
 * from one minute to the next, and bench_ring's bare ring moves with them.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { STEP_LOCAL, STEP_AFTER_READ, STEP_STREAM, N_STEPS };

struct probe {
	uint64_t *buf;
	size_t words;
	int rounds;
	int cpu_writer, cpu_reader;
	_Atomic int turn;        /* 0: writer's turn, 1: reader's */
	uint64_t ns[N_STEPS];    /* writer, per step */
	uint64_t read_ns;        /* reader, all rounds */
	uint64_t reads;
	uint64_t sink;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *reader_main(void *arg)
{
	struct probe *p = arg;

	pin_to(p->cpu_reader);
	for (int r = 0; r < p->rounds; r++) {
		/* Pairs with the writer's release of turn = 1. */
		while (atomic_load_explicit(&p->turn, memory_order_acquire) != 1)
			;
		uint64_t t0 = now_ns(), a0 = 0, a1 = 0;
		for (size_t i = 0; i + 2 <= p->words; i += 2) {
			a0 += p->buf[i];
			a1 += p->buf[i + 1];
		}
		p->read_ns += now_ns() - t0;
		p->reads++;
		p->sink += a0 + a1;
		atomic_store_explicit(&p->turn, 0, memory_order_release);
	}
	return NULL;
}

static void write_plain(uint64_t *b, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		b[i] = v + i;
}

static void write_stream(uint64_t *b, size_t n, uint64_t v)
{
#if defined(__SSE2__)
	for (size_t i = 0; i + 2 <= n; i += 2)
		_mm_stream_si128((__m128i *)(b + i),
				 _mm_set_epi64x((long long)(v + i + 1), (long long)(v + i)));
	_mm_sfence();
#else
	write_plain(b, n, v);
#endif
}

int main(int argc, char **argv)
{
	struct probe p = {.rounds = 3 * 8, .cpu_writer = -1, .cpu_reader = -1};
	size_t mib = 4;
	bool json = false;
	pthread_t th;
	cpu_set_t allowed;
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--mib") && i + 1 < argc) {
			mib = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: probe_coherence [--mib N] [--json]\n");
			return 2;
		}
	}
	if (!mib)
		return 2;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &allowed)) {
				if (n == 0)
					p.cpu_writer = i;
				else if (n == 1)
					p.cpu_reader = i;
				n++;
			}
	if (n < 2) {
		fprintf(stderr, "probe_coherence: needs two CPUs\n");
		return 0;
	}
	p.words = (mib << 20) / 8;
	p.buf = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p.buf == MAP_FAILED)
		return 2;
	madvise(p.buf, mib << 20, MADV_HUGEPAGE);
	memset(p.buf, 0, mib << 20);

	pin_to(p.cpu_writer);
	if (pthread_create(&th, NULL, reader_main, &p) != 0)
		return 2;
	/* Each round: write after remote read (the reader read it last), then
	 * write again (now local), then hand it to the reader; every third
	 * round uses streaming stores for the first write instead. */
	for (int r = 0; r < p.rounds; r++) {
		while (atomic_load_explicit(&p.turn, memory_order_acquire) != 0)
			;
		int step = r % 3 == 2 ? STEP_STREAM : STEP_AFTER_READ;
		uint64_t t0 = now_ns();
		if (step == STEP_STREAM)
			write_stream(p.buf, p.words, (uint64_t)r);
		else
			write_plain(p.buf, p.words, (uint64_t)r);
		uint64_t t1 = now_ns();
		p.ns[step] += t1 - t0;
		write_plain(p.buf, p.words, (uint64_t)r + 1);
		p.ns[STEP_LOCAL] += now_ns() - t1;
		atomic_store_explicit(&p.turn, 1, memory_order_release);
	}
	pthread_join(th, NULL);

	double bytes = (double)(mib << 20);
	int n_after = p.rounds - p.rounds / 3, n_stream = p.rounds / 3;
	double local = bytes * p.rounds / (double)p.ns[STEP_LOCAL];
	double after = bytes * n_after / (double)p.ns[STEP_AFTER_READ];
	double stream = bytes * n_stream / (double)p.ns[STEP_STREAM];
	double rread = bytes * (double)p.reads / (double)p.read_ns;

	if (json)
		printf("{\"probe\":\"coherence\",\"mib\":%zu,\"cpu_writer\":%d,\"cpu_reader\":%d,"
		       "\"local_write_gbps\":%.2f,\"write_after_remote_read_gbps\":%.2f,"
		       "\"remote_read_gbps\":%.2f,\"stream_write_gbps\":%.2f}\n",
		       mib, p.cpu_writer, p.cpu_reader, local, after, rread, stream);
	else
		printf("probe_coherence: %zu MiB, CPUs %d -> %d: local write %.2f GB/s, "
		       "write after remote read %.2f GB/s, remote read %.2f GB/s, "
		       "stream write %.2f GB/s\n",
		       mib, p.cpu_writer, p.cpu_reader, local, after, rread, stream);
	return 0;
}
