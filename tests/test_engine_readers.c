/* SPDX-License-Identifier: MIT */
/*
 * The engine at scale with real readers: 10,000 grid games on 2 shards for
 * a bounded time, two reader processes attached through the control socket
 * (sleeping until the engine wakes them), one of them filtered. Asserts, per reader:
 * every record verifies and seqs run without a gap in each ring (lossless:
 * zero loss), the unfiltered reader read exactly what the shards wrote, the
 * filtered one exactly the records that pass, and written == read +
 * filtered + dropped + pending at the end, with dropped == pending == 0.
 *
 *   test_engine_readers [seconds]     (default 2)
 */
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "engine/engine.h"
#include "engine/shard.h"
#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "util/clock.h"

#define GAMES 10000
#define SHARDS 2

struct report {
	uint64_t read, filtered, dropped, pending, written, batches, sleeps, wakeups;
	uint64_t bad, gaps;
	uint64_t game0;  /* records of game 0 seen */
};

/* A reader process: waits for go, attaches, reads until the engine closes. */
static void reader_main(const char *name, int go_fd, int out_fd, bool filtered)
{
	static const xr_id_range g0[] = {{0, 0}};
	const xr_filter f = {.games = g0, .n_games = 1};
	xr_reader_opts o = {.filter = filtered ? &f : NULL, .transport = XR_TRANSPORT_CONTROL,
			    .label = filtered ? "game0" : "all"};
	struct report rep = {0};
	uint64_t next_seq[XR_MAX_RINGS];
	bool started[XR_MAX_RINGS] = {false};
	xr_reader *r;
	xr_batch b;
	char c;
	int k;

	if (read(go_fd, &c, 1) != 1)
		_exit(3);
	CHECK_RC(xr_reader_attach(name, &o, &r), 0);
	CHECK(xr_reader_fd(r) >= 0);
	/* Attached: tell the parent. */
	CHECK(write(out_fd, "A", 1) == 1);
	while ((k = xr_reader_read(r, 64, 1024, -1, &b)) > 0) {
		const xr_frame *fr = NULL;
		for (int i = 0; i < k; i++) {
			xr_exp_view v;
			fr = b.frames ? b.frames[i] : i ? xr_frame_next(fr) : b.first;
			if (xr_exp_view_init(&v, xr_frame_data(fr), fr->len) < 0) {
				rep.bad++;
				continue;
			}
			if (filtered && v.f.game_id != 0)
				rep.bad++;
			rep.game0 += v.f.game_id == 0;
			/* Unfiltered: frame seqs run on without a hole. */
			if (!filtered) {
				if (started[b.ring] && fr->seq != next_seq[b.ring])
					rep.gaps++;
				started[b.ring] = true;
				next_seq[b.ring] = fr->seq + 1;
			}
		}
		rep.batches++;
		CHECK_RC(xr_batch_release(r, &b), 0);
	}
	CHECK_RC(k, XR_ECLOSED);
	xr_reader_stats s;
	/* After close the slot is still ours: stats work on what was mapped. */
	int rc = xr_reader_stats_get(r, &s);
	CHECK(rc == 0 || rc == XR_EEVICTED);
	rep.read = s.read;
	rep.filtered = s.filtered;
	rep.dropped = s.dropped;
	rep.pending = s.pending;
	rep.written = s.written;
	rep.sleeps = s.sleeps;
	rep.wakeups = s.wakeups;
	CHECK(write(out_fd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep));
	xr_reader_detach(r);
	_exit(0);
}

static _Atomic int stop;

static void *stopper(void *p)
{
	xr__sleep_ns((uint64_t)(*(double *)p * 1e9));
	atomic_store(&stop, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	char name[64];
	int go[2], out[2][2];
	pid_t kids[2];

	setvbuf(stdout, NULL, _IOLBF, 0);
	xr_test_name(name, sizeof(name), "engine10k");
	/* Readers first, before this process has threads. */
	CHECK(pipe(go) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK(pipe(out[i]) == 0);
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			close(go[1]);
			close(out[i][0]);
			reader_main(name, go[0], out[i][1], i == 1);
		}
		close(out[i][1]);
	}
	close(go[0]);

	xr_game_config cfg = {.board_h = 20, .board_w = 20, .players = 2, .seed = 3};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 16u << 20, .n_rings = SHARDS,
			     .kind = XR_RECORD_EXPERIENCE};
	xr_exp_template t;
	CHECK_RC(xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &ss.shape), 0);
	CHECK_RC(xr_exp_template_init(&t, &ss.shape), 0);
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_PREFER, .numa_node = XR_NUMA_DEFAULT,
			      .max_readers = 4};
	xr_arena *a;
	CHECK_RC(xr_arena_create(&spec, &a), 0);
	xr_test_serve(a);

	/* Both readers attached before the first record. */
	CHECK(write(go[1], "gg", 2) == 2);
	for (int i = 0; i < 2; i++) {
		char c;
		CHECK(read(out[i][0], &c, 1) == 1 && c == 'A');
	}

	pthread_t th;
	CHECK_RC(pthread_create(&th, NULL, stopper, &seconds), 0);
	struct xr_engine_opts eo = {
		.shard = {.vt = vt, .cfg = cfg, .games = GAMES, .obs_dtype = XR_DTYPE_U8,
			  .stop = &stop, .high_watermark = 0.9, .low_watermark = 0.5},
		.shards = SHARDS,
		.numa_node = -1,
	};
	struct xr_shard_result res;
	CHECK_RC(xr_engine_run(a, &t, &eo, &res), 0);
	pthread_join(th, NULL);
	uint64_t written = 0;
	for (uint32_t r = 0; r < SHARDS; r++)
		written += atomic_load(&a->hdr->rings[r].written);
	CHECK_EQ(written, res.records);
	xr_test_destroy(a);

	struct report rep[2];
	for (int i = 0; i < 2; i++) {
		int st;
		CHECK(read(out[i][0], &rep[i], sizeof(rep[i])) == (ssize_t)sizeof(rep[i]));
		CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
		printf("reader %d: read %llu, filtered %llu, dropped %llu, pending %llu, of %llu; "
		       "%llu batches, %llu sleeps, %llu wakeups\n",
		       i, (unsigned long long)rep[i].read, (unsigned long long)rep[i].filtered,
		       (unsigned long long)rep[i].dropped, (unsigned long long)rep[i].pending,
		       (unsigned long long)rep[i].written, (unsigned long long)rep[i].batches,
		       (unsigned long long)rep[i].sleeps, (unsigned long long)rep[i].wakeups);
		CHECK_EQ(rep[i].bad, 0);
		CHECK_EQ(rep[i].gaps, 0);
		CHECK_EQ(rep[i].written, written);
		CHECK_EQ(rep[i].dropped, 0);
		CHECK_EQ(rep[i].pending, 0);
		CHECK_EQ(rep[i].read + rep[i].filtered + rep[i].dropped + rep[i].pending,
			 rep[i].written);
	}
	CHECK_EQ(rep[0].read, written);
	CHECK_EQ(rep[0].filtered, 0);
	/* The filtered reader got every record of game 0 the other one saw. */
	CHECK_EQ(rep[1].read, rep[0].game0);
	CHECK(rep[1].read > 0);
	printf("engine: %d games, %llu experiences in %.2f s (%.0f/s), %llu episodes, paused %llu "
	       "times\n",
	       GAMES, (unsigned long long)res.records, (double)res.elapsed_ns / 1e9,
	       (double)res.records / ((double)res.elapsed_ns / 1e9),
	       (unsigned long long)res.episodes, (unsigned long long)res.pauses);
	return 0;
}
