/* SPDX-License-Identifier: MIT */
/*
 * icount: the hot paths' work, in instructions, for the regression gate
 * (perf/icount.py runs this under callgrind and compares with
 * perf/icount_baseline.json). Instruction counts do not move with the load
 * of a shared VM the way times do, so a change that makes a hot path 10 %
 * more expensive shows as 10 % more instructions.
 *
 * Each part runs its setup and a warm-up uncounted, then counts only its
 * measured loop (callgrind's collection toggled on around it, and dumped
 * under the part's name); it prints "PART UNITS" on stdout: what the
 * instructions are to be divided by. Natively (no valgrind) the client
 * requests do nothing, and the parts still check what they did.
 *
 *   writer   reserve + commit of a 64-byte record (the payload's one
 *            store of its seq), publish every 64; lossy stream, no reader
 *   reader   xr_reader_read of a batch of 64 ready records + release, per
 *            record (the writer's side of it not counted)
 *   engine   one engine turn per player: xr_shard_run on 64 grid games of
 *            8x8, 2 players, the built-in policy, per record written
 *   builder  xr_exp_build of a 20x20 grid record (5,376 bytes) into a
 *            buffer, and the copy of its observation and mask into the
 *            slots it names: what a producer does per record
 *   memcpy   memcpy of the same 5,376 bytes: the bound the builder is held
 *            to (DESIGN.md: building costs little more than writing the
 *            record's bytes)
 *
 *   icount [writer|reader|engine|builder|memcpy ...]     (default: all)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include "engine/shard.h"
#include "xring/arena.h"
#include "xring/error.h"
#include "xring/reader.h"
#include "xring/record.h"
#include "xring/server.h"
#include "xring/writer.h"

#define WRITER_RECORDS 200000u
#define READER_BATCHES 4000u
#define BATCH 64u
#define ENGINE_RECORDS 20000u

static char run_dir[64];

static void die(const char *what, int rc)
{
	fprintf(stderr, "icount: %s: %s (%s)\n", what, xr_strerror(rc), xr_arena_last_note());
	exit(1);
}

static xr_arena *make(const char *tag, const xr_stream_spec *ss)
{
	char name[64];
	xr_arena *a;

	snprintf(name, sizeof(name), "icount-%d-%s", (int)getpid(), tag);
	xr_arena_spec spec = {.name = name, .streams = ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE};
	int rc = xr_arena_create(&spec, &a);
	if (rc < 0)
		die("xr_arena_create", rc);
	return a;
}

static xr_writer *writer_of(xr_arena *a)
{
	xr_writer *w;
	int rc = xr_arena_writer(a, 0, 0, &w);

	if (rc < 0)
		die("xr_arena_writer", rc);
	return w;
}

static void put(xr_writer *w, uint32_t len)
{
	void *p;
	uint64_t seq = xr_writer_next_seq(w);
	int rc = xr_writer_reserve(w, len, &p);

	if (rc < 0)
		die("xr_writer_reserve", rc);
	memcpy(p, &seq, sizeof(seq));
	xr_writer_commit(w);
}

static void part_writer(void)
{
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSY, .ring_bytes = 1u << 20, .frame_align = 16};
	xr_arena *a = make("w", &ss);
	xr_writer *w = writer_of(a);

	for (uint32_t i = 0; i < 4096; i++) /* warm: the ring's pages touched */
		put(w, 64);
	xr_writer_publish(w);
	CALLGRIND_TOGGLE_COLLECT;
	for (uint32_t i = 0; i < WRITER_RECORDS; i++) {
		put(w, 64);
		if (i % 64 == 63)
			xr_writer_publish(w);
	}
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT("writer");
	if (xr_writer_next_seq(w) != 4096 + WRITER_RECORDS) {
		fprintf(stderr, "icount: writer: %llu records written\n",
			(unsigned long long)xr_writer_next_seq(w));
		exit(1);
	}
	printf("writer %u\n", WRITER_RECORDS);
	xr_arena_destroy(a);
}

static void part_reader(void)
{
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 1u << 20,
			     .frame_align = 16};
	xr_arena *a = make("r", &ss);
	xr_writer *w = writer_of(a);
	xr_server *srv;
	xr_reader *r;
	xr_batch b;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "icount-%d-r", (int)getpid());
	if ((rc = xr_server_start(a, NULL, &srv)) < 0)
		die("xr_server_start", rc);
	xr_reader_opts o = {.wait = XR_WAIT_SPIN};
	if ((rc = xr_reader_attach(name, &o, &r)) < 0)
		die("xr_reader_attach", rc);
	uint64_t got = 0;
	for (uint32_t i = 0; i < READER_BATCHES + 64; i++) {
		for (uint32_t k = 0; k < BATCH; k++)
			put(w, 64);
		xr_writer_publish(w);
		bool counted = i >= 64; /* the first 64: warm-up */
		if (counted)
			CALLGRIND_TOGGLE_COLLECT;
		int n = xr_reader_read(r, BATCH, BATCH, 0, &b);
		if (counted)
			CALLGRIND_TOGGLE_COLLECT;
		if (n != (int)BATCH) {
			fprintf(stderr, "icount: reader: read %d of %u ready records\n", n, BATCH);
			exit(1);
		}
		if (b.first->seq != got) {
			fprintf(stderr, "icount: reader: seq %llu, want %llu\n",
				(unsigned long long)b.first->seq, (unsigned long long)got);
			exit(1);
		}
		got += BATCH;
		if (counted)
			CALLGRIND_TOGGLE_COLLECT;
		xr_batch_release(r, &b);
		if (counted)
			CALLGRIND_TOGGLE_COLLECT;
	}
	CALLGRIND_DUMP_STATS_AT("reader");
	printf("reader %u\n", READER_BATCHES * BATCH);
	xr_reader_detach(r);
	xr_arena_close(a);
	xr_server_stop(srv);
	xr_arena_destroy(a);
}

static void part_engine(void)
{
	xr_game_config cfg = {.board_h = 8, .board_w = 8, .players = 2, .turn_limit = 40,
			      .seed = 7};
	const xr_game_vtable *vt = xr_game_builtin_grid();
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSY, .ring_bytes = 16u << 20,
			     .kind = XR_RECORD_EXPERIENCE};
	xr_exp_template t;
	struct xr_shard_result res;
	int rc;

	if ((rc = xr_shard_shape(vt, &cfg, XR_DTYPE_U8, &ss.shape)) < 0 ||
	    (rc = xr_exp_template_init(&t, &ss.shape)) < 0)
		die("the grid game's record shape", rc);
	xr_arena *a = make("e", &ss);
	xr_writer *w = writer_of(a);
	struct xr_shard_opts o = {.vt = vt, .cfg = cfg, .games = 64, .obs_dtype = XR_DTYPE_U8,
				  .count = 2000};
	if ((rc = xr_shard_run(w, &t, &o, &res)) < 0) /* warm-up */
		die("xr_shard_run", rc);
	o.count = ENGINE_RECORDS;
	o.first_game_id = 64;
	CALLGRIND_TOGGLE_COLLECT;
	rc = xr_shard_run(w, &t, &o, &res);
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT("engine");
	if (rc < 0)
		die("xr_shard_run", rc);
	if (res.records != ENGINE_RECORDS) {
		fprintf(stderr, "icount: engine: %llu records written\n",
			(unsigned long long)res.records);
		exit(1);
	}
	printf("engine %u\n", ENGINE_RECORDS);
	xr_arena_destroy(a);
}

#define BUILDS 20000u

/* A 20x20 grid game's record shape (obs u8 9x20x20, mask 1601), its
 * template, and a 1 MiB destination the records cycle through. */
static void grid_record(xr_exp_template *t, uint8_t **dst, uint8_t *obs, uint8_t *mask)
{
	xr_game_config cfg = {.board_h = 20, .board_w = 20, .players = 2, .turn_limit = 40};
	xr_exp_shape shape;
	int rc;

	if ((rc = xr_shard_shape(xr_game_builtin_grid(), &cfg, XR_DTYPE_U8, &shape)) < 0 ||
	    (rc = xr_exp_template_init(t, &shape)) < 0)
		die("the grid game's record shape", rc);
	*dst = aligned_alloc(64, 1u << 20);
	if (!*dst)
		die("aligned_alloc", -ENOMEM);
	memset(*dst, 0, 1u << 20);
	for (uint32_t i = 0; i < 9 * 20 * 20; i++)
		obs[i] = (uint8_t)i;
	memset(mask, 1, 20 * 20 * 4 + 1);
}

static void part_builder(void)
{
	static uint8_t obs[9 * 20 * 20], mask[20 * 20 * 4 + 1];
	xr_exp_template t;
	uint8_t *dst;

	grid_record(&t, &dst, obs, mask);
	uint32_t per = (1u << 20) / t.size;
	CALLGRIND_TOGGLE_COLLECT;
	for (uint32_t i = 0; i < BUILDS; i++) {
		xr_exp_fields f = {.seq = i, .t_ns = i, .game_id = i & 63, .turn = i, .action = 3,
				   .applied = -1};
		xr_exp_slots sl;
		xr_exp_build(&t, dst + (size_t)(i % per) * t.size, &f, &sl);
		memcpy(sl.obs, obs, sizeof(obs));
		memcpy(sl.mask, mask, sizeof(mask));
	}
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT("builder");
	if (xr_exp_verify(dst, t.size) != 0) {
		fprintf(stderr, "icount: builder: the record does not verify\n");
		exit(1);
	}
	printf("builder %u\n", BUILDS);
	free(dst);
}

static void part_memcpy(void)
{
	static uint8_t obs[9 * 20 * 20], mask[20 * 20 * 4 + 1];
	static uint8_t src[1u << 14];
	xr_exp_template t;
	uint8_t *dst;

	grid_record(&t, &dst, obs, mask);
	if (t.size > sizeof(src))
		die("memcpy: record larger than its source", -EMSGSIZE);
	memset(src, 7, sizeof(src));
	uint32_t per = (1u << 20) / t.size;
	CALLGRIND_TOGGLE_COLLECT;
	for (uint32_t i = 0; i < BUILDS; i++) {
		src[0] = (uint8_t)i;
		memcpy(dst + (size_t)(i % per) * t.size, src, t.size);
	}
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT("memcpy");
	printf("memcpy %u\n", BUILDS);
	free(dst);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} parts[] = {{"writer", part_writer}, {"reader", part_reader}, {"engine", part_engine},
		     {"builder", part_builder}, {"memcpy", part_memcpy}};
	const size_t n_parts = sizeof(parts) / sizeof(parts[0]);

	/* The reader part's control socket, in a directory of our own. */
	snprintf(run_dir, sizeof(run_dir), "/tmp/xring-icount-XXXXXX");
	if (!mkdtemp(run_dir) || setenv("XRING_RUN_DIR", run_dir, 1) < 0) {
		perror("icount: mkdtemp");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n_parts; i++) {
		bool want = argc < 2;
		for (int k = 1; k < argc; k++)
			want |= !strcmp(argv[k], parts[i].name);
		if (want)
			parts[i].fn();
	}
	for (int k = 1; k < argc; k++) {
		bool known = false;
		for (size_t i = 0; i < n_parts; i++)
			known |= !strcmp(argv[k], parts[i].name);
		if (!known) {
			fprintf(stderr, "icount: no part %s (writer, reader, engine, builder, memcpy)\n",
				argv[k]);
			rmdir(run_dir);
			return 2;
		}
	}
	rmdir(run_dir);
	return 0;
}
