/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the shared memory peers may write, while the engine runs
 * (docs/fuzzing.md, docs/threat-model.md "What an admitted peer holds").
 * An engine runs in this process (fuzz_engine.h: 8 grid games of 2 players
 * on one shard, a 2 ms tick, a lossless stream in a 256 KiB ring, a 50 ms
 * lease timeout). Two honest peers of their own connections run on
 * threads of their own from the start:
 *   - a lossless reader, which must get every record of the stream in
 *     order, whole (verified), none dropped, never evicted;
 *   - an agent holding the seats of games 4..7, answering each record with
 *     its highest legal action: its seats' records may say their answer was
 *     applied or timed out (a busy machine), never that a wrong turn, an
 *     action out of range or an illegal one was (what only another's
 *     writes could have put in its slots).
 * The input drives a hostile lossy reader (filtered to games 0..3) and a
 * hostile agent holding the seats of games 0..3, both in this thread: what
 * they write in their pages (cursors, leases, wake positions and needs,
 * the sleep word; action slots, raw or tagged for records near the ones
 * they hold), interleaved with their legitimate calls (batches taken,
 * held, released; answers by reference with bent tags and actions) and
 * waits for the engine's publishes. After each input the honest reader
 * must have read 32 more records, and the honest agent answered again,
 * within 10 s (a hostile lossy lease in the writer's way holds a lossless
 * stream for the lease timeout at most: then it is evicted), and the
 * engine's shards must run.
 *
 * Input: ops until the input ends (at most 64), each a byte op and:
 *   op % 8 == 0  cursor field: u8 ring (< 0x80: ring 0, else & 31), u8 field
 *                (% 7: lease, pos, next_seq, read, dropped, wake_pos,
 *                wake_need), u8 base (% 4: the value as it is, or added to
 *                the ring's head, its tail, the cursor's own value), u64
 *   op % 8 == 1  the sleep word: u32
 *   op % 8 == 2  an action slot: u16 index (% the page's words), u64 word
 *   op % 8 == 3  wait for 1 + (u8 % 8) publishes of the ring (200 ms at most)
 *   op % 8 == 4  the agent's next batch (not waited for): u8 how (% 4:
 *                answer all with action a; answer by reference, the tags'
 *                seq moved by (int8)d; release unanswered; keep it held),
 *                i8 d, i32 a
 *   op % 8 == 5  the reader: u8 m: a batch of at most 1 + m % 64 taken and
 *                held (waiting 2 ms for it if m & 0x40), every held batch
 *                released first if m & 0x80
 *   op % 8 == 6  random words over a whole page: u64 seed (bit 0: the
 *                agent's slots, else the reader's page)
 *   op % 8 == 7  the reader detaches and attaches again
 * The hostile reader's own calls may fail for what it wrote (evicted, or
 * lapped behind a lease the writer had to ignore: -EPROTO): it attaches
 * again. -EPROTO before it wrote over its cursors is a failure.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include "client/reader_priv.h"
#include "fuzz_engine.h"
#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/agent.h"
#include "xring/reader.h"

#define GAMES 8
#define HOSTILE_HI 3      /* games 0..3: the hostile agent's; 4..7 the honest one's */
#define MAX_OPS 64
#define PROGRESS_RECORDS 32
#define PROGRESS_MS 10000
#define HELD 4

static struct fz_engine *eng;
static pthread_t reader_th, agent_th;
/* Set at exit; the honest threads poll it. Relaxed: it publishes nothing,
 * and the join that follows orders everything after it. */
static _Atomic int stopping;
/* Progress of the honest peers, for the check after each input. Relaxed:
 * counts only, read to see that they move; nothing is published through
 * them. */
static _Atomic uint64_t honest_read, honest_answered;

static xr_reader *bad_r;      /* the hostile reader */
static xr_agent *bad_a;       /* the hostile agent */
static xr_batch held[HELD];
static uint32_t n_held;
/* The hostile reader's cursors were written over since it attached: its
 * own walks may then find the writer lapped it (a lease the writer had to
 * ignore), -EPROTO, which is its own doing; before that, -EPROTO is not. */
static bool scribbled;

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* The honest lossless reader: every record, in order, whole. */
static void *honest_reader_main(void *p)
{
	xr_reader *r = p;
	const xr_exp_template *t = &eng->t;
	uint64_t next = UINT64_MAX;
	xr_batch b;

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		int n = xr_reader_read(r, 1, 1024, 20000000, &b);
		if (n == -EINTR) /* libFuzzer's SIGALRM, taken by this thread */
			continue;
		if (n < 0)
			FZ_FAIL("the honest reader: %s (%s)", xr_strerror(n), xr_last_reason());
		if (n == 0)
			continue;
		if (b.dropped)
			FZ_FAIL("the honest lossless reader lost %u records", b.dropped);
		if (next != UINT64_MAX && b.first_seq != next)
			FZ_FAIL("the honest reader got seq %llu after %llu",
				(unsigned long long)b.first_seq, (unsigned long long)next - 1);
		const xr_frame *f = b.first;
		for (int i = 0; i < n; i++) {
			const uint8_t *d = xr_frame_data(f);
			FZ_CHECK(f->seq == b.first_seq + (uint64_t)i);
			FZ_CHECK(f->len == t->size && xr_exp_verify(d, f->len) == 0);
			uint32_t game = get32(d + t->off_game_id);
			uint8_t by = d[t->off_applied_by];
			if (game > HOSTILE_HI && game < GAMES &&
			    (by == XR_SRC_WRONG_TURN || by == XR_SRC_OUT_OF_RANGE ||
			     by == XR_SRC_ILLEGAL))
				FZ_FAIL("game %u, the honest agent's: a record says applied_by %u",
					game, by);
			f = b.stride ? (const xr_frame *)((const uint8_t *)f + b.stride)
				     : xr_frame_next(f);
		}
		next = b.first_seq + (uint64_t)n;
		FZ_CHECK(xr_batch_release(r, &b) == 0);
		atomic_fetch_add_explicit(&honest_read, (uint64_t)n, memory_order_relaxed);
	}
	xr_reader_detach(r);
	return NULL;
}

/* The honest agent: the highest legal action of each record. */
static void *honest_agent_main(void *p)
{
	xr_agent *a = p;
	const xr_exp_template *t = &eng->t;
	static int32_t act[4096];
	xr_obs_batch b;

	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		int n = xr_agent_recv(a, 1, 4096, 20000000, &b);
		if (n == -EINTR) /* libFuzzer's SIGALRM, taken by this thread */
			continue;
		if (n < 0)
			FZ_FAIL("the honest agent: %s (%s)", xr_strerror(n), xr_last_reason());
		if (n == 0)
			continue;
		for (int i = 0; i < n; i++) {
			const uint8_t *d = xr_frame_data(b.frames[i]);
			act[i] = -1;
			for (uint32_t k = 0; k < t->shape.mask_len; k++)
				if (d[t->off_mask + k])
					act[i] = (int32_t)k;
		}
		FZ_CHECK(xr_agent_send(a, &b, act) == 0);
		atomic_fetch_add_explicit(&honest_answered, (uint64_t)n, memory_order_relaxed);
	}
	xr_agent_detach(a);
	return NULL;
}

static void stop_peers(void)
{
	atomic_store_explicit(&stopping, 1, memory_order_relaxed);
	pthread_join(reader_th, NULL);
	pthread_join(agent_th, NULL);
	if (bad_r)
		xr_reader_detach(bad_r);
	if (bad_a)
		xr_agent_detach(bad_a);
	bad_r = NULL;
	bad_a = NULL;
}

static void attach_bad_reader(void)
{
	static const xr_id_range games = {0, HOSTILE_HI};
	static const xr_filter f = {.games = &games, .n_games = 1};
	xr_reader_opts o = {.policy = XR_POLICY_LOSSY, .label = "hostile", .filter = &f};
	int rc;

	n_held = 0;
	scribbled = false;
	/* A slot comes back once the engine has seen the last one's hangup. */
	for (uint64_t until = xr__now_ns() + 5000000000ull;;) {
		rc = xr_reader_attach(eng->name, &o, &bad_r);
		if (rc == 0)
			return;
		if (rc != -EBUSY || xr__now_ns() > until)
			FZ_FAIL("the hostile reader's attach: %s (%s)", xr_strerror(rc),
				xr_last_reason());
		poll(NULL, 0, 1); /* a pause between tries, not a synchronisation */
	}
}

static void init(void)
{
	static const struct fz_engine_cfg cfg = {
		.games = GAMES, .max_games = 64, .max_agents = 4, .max_readers = 8,
		.ring_bytes = 256u << 10, .tick_ms = 2, .action_timeout_ms = 20,
		.lease_timeout_ms = 50,
		/* The hostile reader attaches again and again: not a rate
		 * that is fuzzed here. */
		.max_requests_per_uid = 100000000};
	xr_reader *r;
	xr_agent *a;
	xr_reader_opts ro = {.policy = XR_POLICY_LOSSLESS, .label = "honest"};
	xr_agent_opts ao = {.label = "honest", .capacity = 8};
	xr_agent_opts bo = {.label = "hostile", .capacity = 8};

	signal(SIGPIPE, SIG_IGN);
	eng = fz_engine_start("shm", &cfg);
	FZ_CHECK(xr_reader_attach(eng->name, &ro, &r) == 0);
	FZ_CHECK(xr_agent_attach(eng->name, &ao, &a) == 0);
	FZ_CHECK(xr_agent_claim(a, HOSTILE_HI + 1, GAMES - 1, 0, NULL) == 0);
	FZ_CHECK(xr_agent_attach(eng->name, &bo, &bad_a) == 0);
	FZ_CHECK(xr_agent_claim(bad_a, 0, HOSTILE_HI, 0, NULL) == 0);
	attach_bad_reader();
	FZ_CHECK(pthread_create(&reader_th, NULL, honest_reader_main, r) == 0);
	FZ_CHECK(pthread_create(&agent_th, NULL, honest_agent_main, a) == 0);
	atexit(stop_peers);
}

static void release_held(void)
{
	for (uint32_t i = 0; i < n_held; i++)
		(void)xr_batch_release(bad_r, &held[i]);
	n_held = 0;
}

static const struct xr_ring_desc *ring0(void)
{
	return &xr__reader_arena(bad_r)->hdr->rings[0];
}

static void op_cursor(struct fz_in *in)
{
	uint8_t sel = fz_u8(in), field = fz_u8(in) % 7, base = fz_u8(in) % 4;
	uint64_t v = fz_u64(in);
	struct xr_cursor *c = &xr__reader_page(bad_r)->cursors[sel & 0x80 ? sel & 31 : 0];
	_Atomic uint64_t *w[6] = {&c->lease, &c->pos, &c->next_seq, &c->read, &c->dropped,
				  &c->wake_pos};

	scribbled = true;
	if (field == 6) {
		xr_store_relaxed(&c->wake_need, (uint32_t)v);
		return;
	}
	if (base == 1)
		v += xr_load_acquire(&ring0()->head);
	else if (base == 2)
		v += xr_load_acquire(&ring0()->tail);
	else if (base == 3)
		v += xr_load_relaxed(w[field]);
	xr_store_relaxed(w[field], v);
}

static void op_slot(struct fz_in *in)
{
	void *base;
	size_t len;
	uint16_t i = fz_u16(in);
	uint64_t v = fz_u64(in);

	FZ_CHECK(xr_agent_slots(bad_a, &base, &len) == 0);
	xr_store_relaxed((_Atomic uint64_t *)base + i % (len / 8), v);
}

static void op_wait(struct fz_in *in)
{
	uint64_t want = xr_load_relaxed(&ring0()->publishes) + 1 + fz_u8(in) % 8;
	uint64_t until = xr__now_ns() + 200000000ull;

	while (xr_load_relaxed(&ring0()->publishes) < want && xr__now_ns() < until)
		poll(NULL, 0, 1); /* waiting for the engine's publishes, bounded */
}

static void op_agent(struct fz_in *in)
{
	static int32_t act[4096];
	static xr_seat_ref refs[4096];
	uint8_t how = fz_u8(in) % 4;
	int8_t d = (int8_t)fz_u8(in);
	int32_t a = (int32_t)fz_u32(in);
	xr_obs_batch b;
	int n = xr_agent_recv(bad_a, 1, 4096, 0, &b);

	if (n <= 0) {
		FZ_CHECK(n == 0 || n == -EINTR);
		return;
	}
	for (int i = 0; i < n; i++)
		act[i] = (int32_t)((uint32_t)a + (uint32_t)i);
	switch (how) {
	case 0:
		FZ_CHECK(xr_agent_send(bad_a, &b, act) == 0);
		break;
	case 1:
		FZ_CHECK(xr_agent_refs(bad_a, &b, refs) == 0);
		for (int i = 0; i < n; i++)
			refs[i].seq += (uint64_t)(int64_t)d;
		FZ_CHECK(xr_agent_release_batch(bad_a, &b) == 0);
		FZ_CHECK(xr_agent_answer(bad_a, refs, act, (uint32_t)n) >= 0);
		break;
	case 2:
		FZ_CHECK(xr_agent_release_batch(bad_a, &b) == 0);
		break;
	default:
		break; /* held until the next recv releases it */
	}
}

static void op_read(struct fz_in *in)
{
	uint8_t m = fz_u8(in);

	if (m & 0x80)
		release_held();
	if (n_held == HELD)
		return;
	int n = xr_reader_read(bad_r, 1, 1 + m % 64, m & 0x40 ? 2000000 : 0, &held[n_held]);
	if (n > 0)
		n_held++;
	else if (n == XR_EEVICTED || (n == -EPROTO && scribbled)) {
		/* Evicted for what it wrote, or lapped behind a lease it wrote
		 * over: attach again. */
		xr_reader_detach(bad_r);
		attach_bad_reader();
	} else if (n < 0 && n != -EINTR) {
		FZ_FAIL("the hostile reader's read: %s (%s)", xr_strerror(n), xr_last_reason());
	}
}

static void op_scribble(struct fz_in *in)
{
	uint64_t x = fz_u64(in) | 1, *w;
	size_t n;
	void *base;

	if (x & 2) {
		FZ_CHECK(xr_agent_slots(bad_a, &base, &n) == 0);
		n /= 8;
	} else {
		base = xr__reader_page(bad_r);
		n = sizeof(struct xr_peer_page) / 8;
		scribbled = true;
	}
	w = base;
	for (size_t k = 0; k < n; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		xr_store_relaxed((_Atomic uint64_t *)&w[k], x);
	}
}

static void wait_progress(void)
{
	uint64_t r0 = atomic_load_explicit(&honest_read, memory_order_relaxed);
	uint64_t a0 = atomic_load_explicit(&honest_answered, memory_order_relaxed);
	uint64_t until = xr__now_ns() + PROGRESS_MS * 1000000ull;

	while (atomic_load_explicit(&honest_read, memory_order_relaxed) < r0 + PROGRESS_RECORDS ||
	       atomic_load_explicit(&honest_answered, memory_order_relaxed) <= a0) {
		fz_engine_check(eng);
		if (xr__now_ns() > until) {
			const struct xr_ring_desc *rd = ring0();
			FZ_FAIL("the honest peers stood still for %d ms: read %llu, answered %llu; "
				"ring: head %llu tail %llu written %llu blocked %u full_waits %llu "
				"evictions %llu publishes %llu; the hostile reader holds %u "
				"batches, its slot %u",
				PROGRESS_MS,
				(unsigned long long)(atomic_load(&honest_read) - r0),
				(unsigned long long)(atomic_load(&honest_answered) - a0),
				(unsigned long long)xr_load_relaxed(&rd->head),
				(unsigned long long)xr_load_relaxed(&rd->tail),
				(unsigned long long)xr_load_relaxed(&rd->written),
				xr_load_relaxed(&rd->blocked),
				(unsigned long long)xr_load_relaxed(&rd->full_waits),
				(unsigned long long)xr_load_relaxed(&rd->evictions),
				(unsigned long long)xr_load_relaxed(&rd->publishes), n_held,
				xr_load_relaxed(&xr__reader_info(bad_r)->state));
		}
		poll(NULL, 0, 1); /* waiting for the honest threads, bounded */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fz_in in = {data, len};

	if (!eng)
		init();
	/* Evicted since the last input: a new slot, a clean page. */
	if (xr_load_acquire(&xr__reader_info(bad_r)->state) != XR_SLOT_ACTIVE) {
		xr_reader_detach(bad_r);
		attach_bad_reader();
	}
	for (int i = 0; i < MAX_OPS && fz_more(&in); i++) {
		switch (fz_u8(&in) % 8) {
		case 0: op_cursor(&in); break;
		case 1: xr_store_relaxed(&xr__reader_page(bad_r)->sleep_gen, fz_u32(&in)); break;
		case 2: op_slot(&in); break;
		case 3: op_wait(&in); break;
		case 4: op_agent(&in); break;
		case 5: op_read(&in); break;
		case 6: op_scribble(&in); break;
		default:
			xr_reader_detach(bad_r);
			attach_bad_reader();
			break;
		}
	}
	wait_progress();
	/* What it holds goes back, and its own cursor with it: the next
	 * input starts from a reader in its place (whatever it wrote over
	 * its page stays, as a peer's would). */
	release_held();
	return 0;
}
