/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: an arena file as a reader or a tool opens it and reads it
 * (docs/fuzzing.md). The threat: a corrupted, truncated or hostile file
 * where an arena should be (planted under the engine's name, or handed
 * over by something that is not an xring engine). What must hold: it is
 * refused, or everything the opener maps and every position it reads is
 * inside the file; a reader's walk of a ring returns batches inside its
 * mapping or -EPROTO; what the tools show of it (shm/snapshot.c: xring
 * stat, top, the metrics endpoint) is taken within its tables; nothing
 * ever reads outside a mapping or the heap.
 *
 * The file is built from the input in a private directory
 * (/tmp/xr-fuzz-arena-*), named as an engine's arena (xring-fuzzarena):
 *
 *   byte 0   flags
 *            bit 0  RAW: the file is the rest of the input, byte for byte
 *                   (a truncated or foreign file);
 *                   else a real arena (a template this process made once:
 *                   two streams, three rings, frames already written and
 *                   wrapped), patched by the ops below
 *            bit 1  KEEP_ID: leave magic, layout version, header size and
 *                   fingerprint as the bytes say. Without it they are
 *                   stamped with this build's after the ops, so that the
 *                   corpus stays good across layout changes and the fuzzer
 *                   gets past the identity checks to the tables
 *            bits 2-3  how it is opened: 0 by descriptor, every ring mapped
 *                   (a reader handed the arena by the control socket,
 *                   XR_OPEN_SERVED); 1 the same, only stream (flags >> 4) & 7;
 *                   2 by descriptor, no ring mapped; 3 by name, as
 *                   `xring info` does (the writer's pid and start time
 *                   checked through /proc)
 *            bit 6  read every ring as the other policy than its stream's
 *            bit 7  read with a filter (the next 12 bytes say which)
 *   then, unless RAW, ops until the input ends, each a byte `op` and:
 *            op & 3 == 0  u32 off, u8 n, n bytes: written at off % size
 *            op & 3 == 1  u32 off, u32 d: the u64 at off % size (8-aligned)
 *                         gets (int32)d << ((op >> 2) & 31) added
 *            op & 3 == 2  u32 n: the file is n % (2 * size + 1) bytes long
 *            op & 3 == 3  u32 dst, u32 src, u16 n: bytes copied within
 *
 * Each ring's pub_gen is made even before the file is opened: an odd one is
 * a writer stopped mid-publish, which a reader waits out for a second
 * before it says so (test_ring_protocol, "writer dead mid-publish"); here
 * it would only slow the fuzzer down.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "record/filter.h"
#include "shm/arena_priv.h"
#include "shm/ring_reader.h"
#include "shm/snapshot.h"
#include "xring/error.h"
#include "xring/writer.h"

#define NAME "fuzzarena"

static uint8_t *tmpl;          /* the template arena file */
static uint64_t tmpl_size;
static uint8_t *work;          /* the file being built: 2 * tmpl_size + 1 */
static char path[128];
static int file_fd = -1;
static xr_exp_template exp_t;

static const xr_exp_shape shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 2,
				   .obs_dims = {5, 8}, .mask_len = 5, .extras_len = 3};

/* Records of every length up to 200 (ring 0, opaque) and Experience records
 * of varied fields (ring 2), two and a half rings of each, so that head,
 * tail and written are all past a lap. Ring 1 stays empty. */
static void fill(xr_arena *a)
{
	xr_writer *w;
	void *p;

	FZ_CHECK(xr_arena_writer(a, 0, 0, &w) == 0);
	for (uint32_t i = 0; i < 600; i++) {
		uint32_t len = (i * 37) % 201;
		if (xr_writer_reserve(w, len, &p) < 0)
			break;
		for (uint32_t k = 0; k < len; k++)
			((uint8_t *)p)[k] = (uint8_t)(i + k);
		xr_writer_commit(w);
		if (i % 7 == 0)
			xr_writer_publish(w);
	}
	xr_writer_publish(w);
	FZ_CHECK(xr_arena_writer(a, 1, 0, &w) == 0);
	for (uint32_t i = 0; i < 5 * 16384 / 2 / exp_t.size; i++) {
		xr_exp_fields f = {.seq = i, .t_ns = 1000 + i, .game_id = i % 7, .player_id = i % 2,
				   .turn = i / 14, .action = (int32_t)(i % 5) - 1,
				   .reward = (float)(i % 3) - 1.0f, .done = i % 11 == 0,
				   .truncated = i % 13 == 0, .applied = -1, .applied_by = 0};
		xr_exp_slots s;
		if (xr_writer_reserve(w, exp_t.size, &p) < 0)
			break;
		xr_exp_build(&exp_t, p, &f, &s);
		memset(s.obs, (int)i, exp_t.obs_bytes);
		memset(s.mask, 1, shape.mask_len);
		memset(s.extras, 7, shape.extras_len);
		xr_writer_commit(w);
		xr_writer_publish(w);
	}
}

static void init(void)
{
	const char *dir = fz_private_dir("arena");
	xr_stream_spec ss[2] = {
		{.name = "a", .policy = XR_POLICY_LOSSLESS, .n_rings = 2, .ring_bytes = 16384,
		 .frame_align = 16},
		{.name = "b", .policy = XR_POLICY_LOSSY, .ring_bytes = 16384,
		 .kind = XR_RECORD_EXPERIENCE, .shape = shape},
	};
	xr_arena_spec spec = {.name = NAME "tmpl", .streams = ss, .n_streams = 2,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_NONE,
			      .max_readers = 4};
	xr_arena *a;

	FZ_CHECK(xr_exp_template_init(&exp_t, &shape) == 0);
	FZ_CHECK(xr_arena_create(&spec, &a) == 0);
	fill(a);
	tmpl_size = a->lay.total_size;
	tmpl = malloc(tmpl_size);
	work = malloc(2 * tmpl_size + 1);
	FZ_CHECK(tmpl && work);
	FZ_CHECK(pread(a->fd, tmpl, tmpl_size, 0) == (ssize_t)tmpl_size);
	FZ_CHECK(xr_arena_destroy(a) == 0);
	snprintf(path, sizeof(path), "%s/xring-" NAME, dir);
	file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FZ_CHECK(file_fd >= 0);
}

/* The template, patched by the ops of in: the file's length. */
static uint64_t patch(struct fz_in *in)
{
	uint64_t size = tmpl_size;

	memcpy(work, tmpl, tmpl_size);
	while (fz_more(in)) {
		uint8_t op = fz_u8(in);
		switch (op & 3) {
		case 0: {
			uint64_t off = size ? fz_u32(in) % size : 0;
			uint8_t n = fz_u8(in);
			uint8_t b[256];
			fz_bytes(in, b, n);
			memcpy(work + off, b, n < size - off ? n : size - off);
			break;
		}
		case 1: {
			uint64_t off = size >= 8 ? (fz_u32(in) % (size - 7)) & ~7ull : 0;
			int64_t d = (int32_t)fz_u32(in);
			uint64_t v;
			if (size < 8)
				break;
			memcpy(&v, work + off, 8);
			v += (uint64_t)d << ((op >> 2) & 31);
			memcpy(work + off, &v, 8);
			break;
		}
		case 2: {
			uint64_t n = fz_u32(in) % (2 * tmpl_size + 1);
			if (n > size)
				memset(work + size, 0, n - size);
			size = n;
			break;
		}
		case 3: {
			uint64_t dst = fz_u32(in), src = fz_u32(in), n = fz_u16(in);
			if (!size)
				break;
			dst %= size;
			src %= size;
			if (n > size - dst)
				n = size - dst;
			if (n > size - src)
				n = size - src;
			memmove(work + dst, work + src, n);
			break;
		}
		}
	}
	return size;
}

/* Fields of the header at their offsets in a file of size bytes. */
#define HDR_FIELD_FITS(f, size) (offsetof(struct xr_arena_hdr, f) + \
				 sizeof(((struct xr_arena_hdr *)0)->f) <= (size))

static void stamp(uint8_t *b, uint64_t size, bool keep_id)
{
	if (!keep_id && HDR_FIELD_FITS(fingerprint, size)) {
		uint64_t magic = XR_MAGIC, fp = xr__layout_fingerprint();
		uint32_t ver = XR_LAYOUT_VERSION, hs = sizeof(struct xr_arena_hdr);
		memcpy(b + offsetof(struct xr_arena_hdr, magic), &magic, 8);
		memcpy(b + offsetof(struct xr_arena_hdr, layout_version), &ver, 4);
		memcpy(b + offsetof(struct xr_arena_hdr, hdr_size), &hs, 4);
		memcpy(b + offsetof(struct xr_arena_hdr, fingerprint), &fp, 8);
	}
	for (uint32_t r = 0; r < XR_MAX_RINGS; r++) {
		size_t off = offsetof(struct xr_arena_hdr, rings) + r * sizeof(struct xr_ring_desc) +
			     offsetof(struct xr_ring_desc, pub_gen);
		if (off + 4 <= size)
			b[off] &= (uint8_t)~1u;
	}
}

static void write_file(const uint8_t *b, uint64_t size)
{
	FZ_CHECK(ftruncate(file_fd, 0) == 0);
	FZ_CHECK(pwrite(file_fd, b, size, 0) == (ssize_t)size);
}

/* Every byte of [p, p + n): ASan and the mappings say whether it may be
 * read. */
static volatile uint8_t sink;

static void touch(const uint8_t *p, uint64_t n)
{
	uint8_t s = 0;

	for (uint64_t i = 0; i < n; i++)
		s ^= p[i];
	sink = s;
}

/* What the opener mapped lies inside the file, as its own layout says. */
static void check_layout(const struct xr_arena *a, uint64_t size, bool rings)
{
	const struct xr_layout *l = &a->lay;

	FZ_CHECK(l->total_size == size);
	FZ_CHECK(l->n_rings >= 1 && l->n_rings <= XR_MAX_RINGS);
	FZ_CHECK(l->n_streams >= 1 && l->n_streams <= XR_MAX_STREAMS);
	FZ_CHECK(l->max_readers >= 1 && l->max_readers <= XR_MAX_READERS_LIMIT);
	FZ_CHECK(l->tab_off <= size && l->tab_size <= size - l->tab_off);
	for (uint32_t s = 0; s < l->n_streams; s++) {
		FZ_CHECK(l->streams[s].first_ring < l->n_rings);
		FZ_CHECK(l->streams[s].n_rings <= l->n_rings - l->streams[s].first_ring);
	}
	for (uint32_t r = 0; r < l->n_rings; r++) {
		const struct xr_ring_fixed *rf = &l->rings[r];
		FZ_CHECK(rf->data_off <= size && rf->capacity <= size - rf->data_off);
		FZ_CHECK(rf->stream < l->n_streams);
		if (!rings || !a->ring_data[r])
			continue;
		/* Both views, first and last byte of each. */
		touch(a->ring_data[r], 1);
		touch(a->ring_data[r] + rf->capacity - 1, 2);
		touch(a->ring_data[r] + 2 * rf->capacity - 1, 1);
	}
	/* The reader table as `xring info` reads it: every slot's entry, every
	 * view, the agent table. */
	for (uint32_t s = 0; s < l->max_readers; s++) {
		touch((const uint8_t *)&a->infos[s], sizeof(a->infos[s]));
		for (uint32_t r = 0; r < l->n_rings; r++)
			touch((const uint8_t *)xr__view(a, r, s), sizeof(struct xr_cursor_view));
	}
	touch((const uint8_t *)a->figs, l->max_readers * sizeof(*a->figs));
	touch((const uint8_t *)a->agents, XR_MAX_AGENTS * sizeof(*a->agents));
	touch((const uint8_t *)a->agent_stats,
	      (uint64_t)XR_MAX_AGENTS * l->n_rings * sizeof(*a->agent_stats));
}

/* Everything `xring stat`, `xring top` and the metrics endpoint show of
 * it (shm/snapshot.c), with the percentiles they print. */
static void check_snapshot(const struct xr_arena *a)
{
	static const double q[] = {0.5, 0.99, 0.999};
	struct xr_snapshot s;
	uint64_t sum = 0;

	if (xr__snap_take(a, &s) < 0)
		return;
	FZ_CHECK(s.n_streams == a->lay.n_streams && s.n_rings == a->lay.n_rings);
	FZ_CHECK(s.n_readers <= a->lay.max_readers * a->lay.n_rings);
	FZ_CHECK(s.n_agents <= XR_MAX_AGENTS);
	for (uint32_t k = 0; k < 3; k++) {
		for (uint32_t r = 0; r < s.n_rings; r++)
			sum += xr__snap_quantile(&s.rings[r].creation, q[k]);
		for (uint32_t i = 0; i < s.n_readers; i++) {
			FZ_CHECK(s.readers[i].ring < a->lay.n_rings && s.readers[i].slot <
									  a->lay.max_readers);
			FZ_CHECK(memchr(s.readers[i].label, 0, sizeof(s.readers[i].label)));
			sum += xr__snap_quantile(&s.readers[i].age, q[k]) +
			       xr__snap_quantile(&s.readers[i].wake, q[k]) +
			       xr__snap_quantile(&s.readers[i].fill, q[k]);
		}
		for (uint32_t i = 0; i < s.n_agents; i++)
			sum += xr__snap_quantile(&s.agents[i].rtt, q[k]);
	}
	sink = (uint8_t)sum;
	xr__snap_free(&s);
}

/* One batch, as a consumer steps through it (xring tail, the Python
 * views): by its stride when it has one, else frame by frame through its
 * bytes, or through its index of frames when it has holes. */
static void check_batch(const struct xr_ring_rd *rr, const struct xr_take *t,
			const xr_frame *const *idx, bool indexed)
{
	const uint8_t *lo = rr->data, *hi = rr->data + 2 * rr->cap;
	const uint8_t *first = rr->data + (t->start & rr->mask);
	uint64_t bytes = t->taken_end - t->start;

	FZ_CHECK(t->end - t->start <= rr->cap);
	FZ_CHECK(bytes <= t->end - t->start);
	FZ_CHECK(first + bytes <= hi);
	if (indexed) {
		for (uint32_t i = 0; i < t->count; i++) {
			const uint8_t *f = (const uint8_t *)idx[i];
			FZ_CHECK(f >= lo && f + XR_FRAME_HDR <= hi);
			FZ_CHECK(f + idx[i]->size <= hi && idx[i]->len <= idx[i]->size - XR_FRAME_HDR);
			touch(f, idx[i]->size);
		}
		return;
	}
	if (t->stride) {
		FZ_CHECK((uint64_t)t->stride * t->count == bytes);
		FZ_CHECK(t->len <= t->stride - XR_FRAME_HDR);
		touch(first, bytes);
		return;
	}
	const uint8_t *p = first;
	for (uint32_t i = 0; i < t->count; i++) {
		const xr_frame *f = (const xr_frame *)p;
		FZ_CHECK(p + XR_FRAME_HDR <= first + bytes);
		FZ_CHECK(f->size >= XR_FRAME_HDR && f->size <= (uint64_t)(first + bytes - p));
		FZ_CHECK(f->len <= f->size - XR_FRAME_HDR);
		touch(p, f->size);
		p += f->size;
	}
	FZ_CHECK(p == first + bytes);
}

/* A reader's walk of ring r: attach, a few batches taken and released as
 * client/reader.c does, then the stats count. */
static void read_ring(struct xr_arena *a, uint32_t r, bool flip, const struct xr_filt *filt)
{
	const struct xr_ring_fixed *rf = &a->lay.rings[r];
	struct xr_peer_page *pg = calloc(1, sizeof(*pg));
	bool lossless = (a->lay.streams[rf->stream].policy == XR_POLICY_LOSSLESS) != flip;
	bool exp = a->lay.streams[rf->stream].record_kind == XR_RECORD_EXPERIENCE;
	static const xr_frame *idx[64];
	struct xr_ring_rd rr;
	struct xr_take t;
	uint64_t pending, unseen, written, lag;

	FZ_CHECK(pg);
	for (uint32_t k = 0; k < XR_MAX_RINGS; k++)
		pg->cursors[k].lease = XR_NO_LEASE;
	if (!exp || (filt && filt->all))
		filt = NULL;
	xr__rr_init(&rr, &a->hdr->rings[r], rf, &pg->cursors[r], a->ring_data[r], lossless);
	if (xr__rr_start(&rr) < 0)
		goto out;
	for (int i = 0; i < 6; i++) {
		int rc = xr__rr_peek(&rr, 64, rr.cap / 2, filt, filt ? idx : NULL, &t);
		if (rc < 0) {
			FZ_CHECK(rc == -EPROTO && rr.bad);
			xr__rr_unpeek(&rr);
			break;
		}
		if (t.count == 0) {
			if (t.skip_frames) {
				xr__rr_skip(&rr, &t);
				continue;
			}
			xr__rr_unpeek(&rr);
			break;
		}
		check_batch(&rr, &t, idx, filt && !t.contiguous);
		/* The records of an Experience stream, as a trainer verifies
		 * one that did not come from its own builder. */
		if (exp && t.stride)
			for (uint32_t k = 0; k < t.count; k++) {
				const xr_frame *f = (const xr_frame *)(rr.data +
					((t.start + (uint64_t)k * t.stride) & rr.mask));
				(void)xr_exp_verify(f + 1, t.len);
			}
		xr__rr_commit(&rr, &t);
		/* Released at once: the lease goes to pos, or nowhere. */
		rr.held--;
		xr__rr_set_lease(&rr, XR_NO_LEASE);
	}
	(void)xr__rr_count(&rr, &pending, &unseen, &written, &lag);
out:
	free(pg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fz_in in = {data, len};
	struct xr_arena *a = NULL;
	struct xr_filt filt, *fp = NULL;
	uint64_t size;
	uint8_t flags;
	int rc;

	if (file_fd < 0)
		init();
	flags = fz_u8(&in);
	if (flags & 0x80) {
		uint8_t f[12];
		fz_bytes(&in, f, sizeof(f));
		xr_id_range games = {f[0], (uint32_t)f[0] + f[1]};
		xr_id_range players = {f[2] & 1, f[3] & 1};
		xr_filter flt = {.games = &games, .n_games = f[4] & 1, .players = &players,
				 .n_players = (f[5] & 1) && players.lo <= players.hi,
				 .min_turn = f[6] % 8, .terminal = f[7] % 3,
				 .has_reward_range = f[8] & 1, .reward_min = -1.0f,
				 .reward_max = (float)(f[9] % 3) - 1.0f,
				 .sample_rate = f[10] / 255.0, .sample_seed = f[11]};
		if (xr__filter_compile(&filt, &flt, &shape) == 0)
			fp = &filt;
	}
	if (flags & 1) {
		size = in.n;
		memcpy(work, in.p, size < 2 * tmpl_size ? size : 2 * tmpl_size);
		if (size > 2 * tmpl_size)
			size = 2 * tmpl_size;
	} else {
		size = patch(&in);
	}
	stamp(work, size, flags & 2);
	write_file(work, size);

	switch ((flags >> 2) & 3) {
	case 0:
		rc = xr__arena_open_fd(dup(file_fd), XR_OPEN_RINGS | XR_OPEN_SERVED, -1, &a);
		break;
	case 1:
		rc = xr__arena_open_fd(dup(file_fd), XR_OPEN_RINGS | XR_OPEN_SERVED,
				       (flags >> 4) & 7, &a);
		break;
	case 2:
		rc = xr__arena_open_fd(dup(file_fd), XR_OPEN_SERVED, -1, &a);
		break;
	default:
		rc = xr__arena_open(NAME, XR_OPEN_RINGS, -1, &a);
		break;
	}
	if (rc < 0) {
		FZ_CHECK(rc == XR_ENOTARENA || rc == XR_ELAYOUT || rc == XR_ECLOSED);
		return 0;
	}
	check_layout(a, size, ((flags >> 2) & 3) != 2);
	check_snapshot(a);
	for (uint32_t r = 0; r < a->lay.n_rings; r++)
		if (a->ring_data[r])
			read_ring(a, r, flags & 0x40, fp);
	xr__arena_close(a);
	return 0;
}
