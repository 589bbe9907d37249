/* SPDX-License-Identifier: MIT */
/*
 * External producers (xring/producer.h), an engine in this process with no
 * games and two producer slots on its lossless stream, a reader in this
 * process reading every ring:
 *   - refusals: no such stream, a bad staging size, every slot taken, an
 *     engine without slots
 *   - a producer in a child writes 20,000 records built in place: the
 *     reader gets each once, in order, every field and byte as written and
 *     its seq the ring's; the slot's ring is marked ended after the close
 *   - a producer SIGKILLed right after publishing 3,000 (no flush): the
 *     engine still takes all of them, then ends the ring; the slot is
 *     taken again (its ring goes on from its seq)
 *   - backpressure: a reader holding a batch stops the ring; the producer's
 *     staging fills (-EAGAIN, flush times out) and nothing is lost once the
 *     reader goes on
 *   - hostile producers, by hand on their staging rings: a frame past the
 *     largest record, a head that is not a frame position, a malformed
 *     record, a record of another shape: each ends that producer alone
 *     with a reason, the records before it delivered, nothing after; a
 *     good producer beside them is not disturbed
 *   - a producer that floods its doorbell (bytes, and descriptors passed
 *     on it) as fast as it can: another producer's 20,000 records all
 *     come meanwhile, nothing appears on the flooder's ring, and every
 *     descriptor it passed is closed again
 *   - the engine's stop ends a producer's wait with XR_ECLOSED
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "control/client.h"
#include "fault_helpers.h"
#include "shm/producer_layout.h"
#include "xring/producer.h"

static const char *engine;
static xr_exp_template tpl;  /* the stream's */
static uint32_t prod_ring0;  /* the first producer slot's ring, of the stream's */

/* Record i of a producer's sequence `tag`: every field and byte from i. */
static void fields_of(uint32_t tag, uint64_t i, xr_exp_fields *f)
{
	*f = (xr_exp_fields){.seq = 999999, .t_ns = i * 10 + tag, .game_id = 1000 + tag,
			     .player_id = (uint32_t)(i % 2), .turn = (uint32_t)i,
			     .action = (int32_t)(i % 7), .reward = (float)i * 0.5f,
			     .done = i % 100 == 99, .truncated = i % 1000 == 500,
			     .applied = (int32_t)i - 1, .applied_by = XR_SRC_AGENT};
}

static uint8_t obs_byte(uint32_t tag, uint64_t i, uint64_t j)
{
	return (uint8_t)((i * 31 + j * 7 + tag) & 0xff);
}

/* Builds record i of `tag` at dst with template t. */
static void build(const xr_exp_template *t, void *dst, uint32_t tag, uint64_t i)
{
	xr_exp_fields f;
	xr_exp_slots s;

	fields_of(tag, i, &f);
	xr_exp_build(t, dst, &f, &s);
	for (uint64_t j = 0; j < t->obs_bytes; j++)
		((uint8_t *)s.obs)[j] = obs_byte(tag, i, j);
	if (t->shape.mask_len)
		for (uint32_t j = 0; j < t->shape.mask_len; j++)
			((uint8_t *)s.mask)[j] = (uint8_t)((i + j) & 1);
}

static bool tagged; /* produce() commits with tag i + 1 */

/* Writes n records of `tag` through the producer API, publishing every
 * 64, waiting for room when the staging ring is full. */
static void produce(xr_producer *p, uint32_t tag, uint64_t from, uint64_t n)
{
	const xr_exp_template *t = xr_producer_template(p);

	CHECK(t && t->size == tpl.size);
	for (uint64_t i = from; i < from + n; i++) {
		void *dst;
		int rc;
		while ((rc = xr_producer_reserve(p, t->size, &dst)) == -EAGAIN)
			CHECK_RC(xr_producer_wait(p, t->size, 10 * SEC), 0);
		if (rc < 0)
			FAILF("producer %u, record %llu: %s (%s)", tag, (unsigned long long)i,
			      xr_strerror(rc), xr_last_reason());
		build(t, dst, tag, i);
		if (tagged)
			xr_producer_commit_tag(p, i + 1);
		else
			xr_producer_commit(p);
		if (i % 64 == 63)
			CHECK_RC(xr_producer_publish(p), 0);
	}
	CHECK_RC(xr_producer_publish(p), 0);
}

static xr_producer *open_producer(void)
{
	xr_producer *p;
	int rc = xr_producer_open(engine, NULL, &p);

	if (rc < 0)
		FAILF("xr_producer_open: %s (%s)", xr_strerror(rc), xr_last_reason());
	return p;
}

/* A child that opens a producer (its slot's ring must be want_ring),
 * writes n records of tag, flushes and closes: its pid. */
static pid_t child_producing(uint32_t want_ring, uint32_t tag, uint64_t n)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		xr_producer *p = open_producer();
		xr_producer_stats st;
		CHECK_RC(xr_producer_get_stats(p, &st), 0);
		CHECK_EQ(st.ring, want_ring);
		produce(p, tag, 0, n);
		CHECK_RC(xr_producer_flush(p, 20 * SEC), 0);
		xr_producer_close(p);
		_exit(0);
	}
	return pid;
}

/* What the reader got of one producer's records, ring by ring. */
struct seen {
	uint64_t n[XR_MAX_RINGS];      /* records of each ring */
	uint64_t last_seq[XR_MAX_RINGS];
	uint64_t next_i[XR_MAX_RINGS]; /* the record expected next, per ring */
	uint32_t tag[XR_MAX_RINGS];    /* whose records the ring carries now */
};

/* Reads until ring k has `want` records (of tag, from record i0), each
 * checked, or fails after 20 s. */
static void read_ring(xr_reader *r, struct seen *sn, uint32_t want_k, uint32_t want_tag,
		      uint64_t want)
{
	uint64_t until = xr__now_ns() + 20 * SEC;

	if (sn->tag[want_k] != want_tag) {
		sn->tag[want_k] = want_tag;
		sn->next_i[want_k] = 0;
	}
	while (sn->n[want_k] < want) {
		xr_batch b;
		if (xr__now_ns() > until)
			FAILF("ring %u: %llu of %llu records of producer %u after 20 s", want_k,
			      (unsigned long long)sn->n[want_k], (unsigned long long)want, want_tag);
		int n = xr_reader_read(r, 1, 256, 100 * MS, &b);
		if (n == 0)
			continue;
		if (n < 0)
			FAILF("read: %s (%s)", xr_strerror(n), xr_last_reason());
		/* Another producer's ring may have records too (one this test
		 * knows of: its tag is set): checked as well. */
		uint32_t rk = b.ring;
		uint32_t rtag = sn->tag[rk];
		if (rk != want_k && !rtag)
			FAILF("records on ring %u, which no producer writes", rk);
		const xr_frame *f = b.first;
		for (uint32_t j = 0; j < b.count; j++, f = j < b.count ? xr_frame_next(f) : f) {
			xr_exp_view v;
			xr_exp_fields want_f;
			uint32_t k = rk, tag = rtag;
			uint64_t i = sn->next_i[k]++;
			if (f->len != tpl.size || xr_exp_view_init(&v, xr_frame_data(f), f->len) < 0)
				FAILF("ring %u seq %llu: not a record of the stream's layout", k,
				      (unsigned long long)f->seq);
			/* The engine's build: the stream's layout, the ring's seq. */
			CHECK(memcmp(xr_frame_data(f), tpl.head, 8) == 0);
			if (v.f.seq != f->seq)
				FAILF("record seq %llu in frame %llu", (unsigned long long)v.f.seq,
				      (unsigned long long)f->seq);
			if (sn->last_seq[k] && f->seq != sn->last_seq[k] + 1)
				FAILF("ring %u: seq %llu after %llu", k, (unsigned long long)f->seq,
				      (unsigned long long)sn->last_seq[k]);
			sn->last_seq[k] = f->seq;
			fields_of(tag, i, &want_f);
			if (v.f.game_id != want_f.game_id || v.f.turn != want_f.turn ||
			    v.f.player_id != want_f.player_id || v.f.action != want_f.action ||
			    v.f.reward != want_f.reward || v.f.done != want_f.done ||
			    v.f.truncated != want_f.truncated || v.f.applied != want_f.applied ||
			    v.f.applied_by != want_f.applied_by || v.f.t_ns != want_f.t_ns)
				FAILF("ring %u: record %llu of producer %u has other fields (turn %u, "
				      "game %u)", k, (unsigned long long)i, tag, v.f.turn, v.f.game_id);
			for (uint64_t x = 0; x < v.obs_bytes; x++)
				if (((const uint8_t *)v.obs)[x] != obs_byte(tag, i, x))
					FAILF("ring %u: record %llu, obs byte %llu", k,
					      (unsigned long long)i, (unsigned long long)x);
			for (uint32_t x = 0; x < v.mask_len; x++)
				CHECK_EQ(v.mask[x], (uint8_t)((i + x) & 1));
			sn->n[k]++;
		}
		xr_batch_release(r, &b);
	}
}

static void wait_writer(xr_reader *r, uint32_t k, int want)
{
	if (!FAULT_WAIT(xr_reader_ring_writer(r, k) == want, 5000))
		FAILF("ring %u: writer %d, want %d", k, xr_reader_ring_writer(r, k), want);
}

/* A producer by hand: its staging ring ours to scribble on. */
struct raw {
	int sock, bell;
	struct xr_pstage_hdr *h;
	uint8_t *data;
	uint64_t bytes, head;
};

static void raw_open(struct raw *w)
{
	struct xr_trust trust = {.extra = (uid_t)-1};
	struct xr_ctl_producer_open m = {0};
	struct xr_ctl_producer_opened rep;
	struct xr_ctl_attached att;
	struct ucred peer;
	int afd, fds[2];

	strcpy(m.stream, XR_DEFAULT_STREAM);
	w->sock = xr__ctl_connect(engine, &trust, &peer);
	CHECK(w->sock >= 0);
	CHECK_RC(xr__ctl_attach(w->sock, &afd, &att), 0);
	close(afd);
	CHECK_RC(xr__ctl_request_fds(w->sock, XR_CTL_PRODUCER_OPEN, &m, sizeof(m),
				     XR_CTL_PRODUCER_OPENED, &rep, sizeof(rep), NULL, fds, 2),
		 0);
	w->bell = fds[1];
	w->bytes = rep.stage_bytes;
	w->h = mmap(NULL, w->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	CHECK(w->h != MAP_FAILED);
	close(fds[0]);
	w->data = (uint8_t *)w->h + XR_PSTAGE_HDR;
	w->head = 0;
}

/* A frame of len bytes at our head (no wrap: these tests stay in a lap). */
static uint8_t *raw_frame(struct raw *w, uint32_t len, uint32_t kind)
{
	struct xr_pframe fh = {.len = len, .kind = kind};
	uint8_t *at = w->data + w->head;

	memcpy(at, &fh, sizeof(fh));
	w->head += (XR_PFRAME_HDR + len + XR_PFRAME_ALIGN - 1) & ~(uint64_t)(XR_PFRAME_ALIGN - 1);
	return at + XR_PFRAME_HDR;
}

static void raw_publish(struct raw *w, uint64_t head)
{
	static const char one = 1;

	atomic_store_explicit(&w->h->head, head, memory_order_seq_cst);
	(void)send(w->bell, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

struct flood {
	int bell, pass; /* pass: a descriptor sent along every 4th byte */
	atomic_bool stop;
	uint64_t sent, with_fd, fd_refused; /* refused: SO_PASSRIGHTS (Linux 6.16+) */
};

/* Rings the bell as fast as the socket takes it, never blocking. */
static void *flood_main(void *arg)
{
	struct flood *fl = arg;
	char one = 1;

	for (uint64_t i = 0; !atomic_load(&fl->stop); i++) {
		struct iovec iov = {.iov_base = &one, .iov_len = 1};
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} u;
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (i % 4 == 0) {
			memset(&u, 0, sizeof(u));
			mh.msg_control = u.b;
			mh.msg_controllen = sizeof(u.b);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fl->pass, sizeof(int));
		}
		if (sendmsg(fl->bell, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
			fl->sent++;
			fl->with_fd += i % 4 == 0;
		} else if (i % 4 == 0 && errno == EPERM) {
			fl->fd_refused++;
		}
	}
	return NULL;
}

static void raw_close(struct raw *w)
{
	munmap(w->h, w->bytes);
	close(w->bell);
	close(w->sock);
}

/* 10 good records, then `bad` (which writes something wrong at the head
 * and publishes): the engine takes the 10, ends the producer with a
 * reason containing `why`, and its ring. */
static void hostile(xr_reader *r, struct seen *sn, uint32_t tag,
		    void (*bad)(struct raw *), const char *why)
{
	struct raw w;

	raw_open(&w);
	uint32_t k = w.h->ring; /* one stream: its rings are the arena's */
	for (uint64_t i = 0; i < 10; i++)
		build(&tpl, raw_frame(&w, tpl.size, XR_PFRAME_RECORD), tag, i);
	raw_publish(&w, w.head);
	read_ring(r, sn, k, tag, sn->n[k] + 10);
	bad(&w);
	if (!FAULT_WAIT(atomic_load(&w.h->state) == XR_PSTAGE_FAULT, 5000))
		FAILF("producer %u (%s): the engine did not end it", tag, why);
	w.h->reason[sizeof(w.h->reason) - 1] = '\0';
	if (!strstr(w.h->reason, why))
		FAILF("producer %u: reason '%s', want '%s'", tag, w.h->reason, why);
	printf("hostile producer %u ended: %s\n", tag, w.h->reason);
	wait_writer(r, k, XR_WRITER_ENDED);
	/* Nothing after the 10: a read finds no record on that ring. */
	xr_batch b;
	int n = xr_reader_read(r, 1, 256, 50 * MS, &b);
	if (n > 0)
		FAILF("ring %u: %d records after the producer was ended", b.ring, n);
	raw_close(&w);
}

static void bad_len(struct raw *w)
{
	raw_frame(w, w->h->max_len + 1, XR_PFRAME_RECORD);
	raw_publish(w, w->head);
}

static void bad_head(struct raw *w)
{
	raw_publish(w, w->head + 8);
}

static void bad_record(struct raw *w)
{
	memset(raw_frame(w, tpl.size, XR_PFRAME_RECORD), 0xA5, tpl.size);
	raw_publish(w, w->head);
}

static void other_shape(struct raw *w)
{
	xr_exp_shape sh = tpl.shape;
	xr_exp_template t2;

	sh.obs_dims[0] += 1;
	CHECK_RC(xr_exp_template_init(&t2, &sh), 0);
	build(&t2, raw_frame(w, t2.size, XR_PFRAME_RECORD), 77, 0);
	raw_publish(w, w->head);
}

static void refusals(void)
{
	xr_producer *p, *q, *x;

	CHECK_RC(xr_producer_open(engine, &(xr_producer_opts){.stream = "nosuch"}, &p), -ENOENT);
	CHECK_RC(xr_producer_open(engine, &(xr_producer_opts){.stage_bytes = 100000}, &p), -EINVAL);
	CHECK(strstr(xr_last_reason(), "power of two") != NULL);
	CHECK_RC(xr_producer_open(engine, &(xr_producer_opts){.stage_bytes = 1ull << 30}, &p),
		 -EINVAL);
	p = open_producer();
	q = open_producer();
	CHECK_RC(xr_producer_open(engine, NULL, &x), -EBUSY);
	CHECK(strstr(xr_last_reason(), "taken") != NULL);
	xr_producer_close(p);
	xr_producer_close(q);
}

int main(void)
{
	struct fault_engine e, e0;
	static struct seen sn;
	xr_reader *r;
	xr_stream_facts f;

	/* An engine without producer slots says so. */
	fault_engine_create(&e0, "noprod", &(struct fault_engine_opts){.games = 2, .shards = 1});
	fault_engine_run(&e0);
	{
		xr_producer *p;
		CHECK_RC(xr_producer_open(e0.name, NULL, &p), -ENOTSUP);
		if (!strstr(xr_last_reason(), "--producers"))
			FAILF("reason: %s", xr_last_reason());
	}
	fault_engine_stop(&e0);

	fault_engine_create(&e, "prod", &(struct fault_engine_opts){.games = 0, .shards = 1,
								   .producers = 2});
	engine = e.name;
	tpl = e.t;
	fault_engine_run(&e);
	CHECK_RC(xr_reader_attach(engine, &(xr_reader_opts){.label = "all"}, &r), 0);
	xr_reader_stream_facts(r, &f);
	CHECK_EQ(f.n_rings, 3);
	CHECK_EQ(f.producers, 2);
	prod_ring0 = 1;
	CHECK_EQ(xr_reader_ring_writer(r, 0), XR_WRITER_ENGINE);
	CHECK_EQ(xr_reader_ring_writer(r, 1), XR_WRITER_IDLE);
	CHECK_EQ(xr_reader_ring_writer(r, 2), XR_WRITER_IDLE);
	refusals();
	/* Every slot is free again: the closes drained nothing, and ended. */
	wait_writer(r, 1, XR_WRITER_ENDED);
	wait_writer(r, 2, XR_WRITER_ENDED);

	/* A producer in a child: 20,000 records, each once, as written. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		xr_producer *p = open_producer();
		xr_producer_stats st;
		produce(p, 1, 0, 20000);
		CHECK_RC(xr_producer_flush(p, 20 * SEC), 0);
		CHECK_RC(xr_producer_get_stats(p, &st), 0);
		CHECK_EQ(st.records, 20000);
		CHECK_EQ(st.published, 20000);
		CHECK_EQ(st.pending_bytes, 0);
		xr_producer_close(p);
		_exit(0);
	}
	read_ring(r, &sn, 1, 1, 20000);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	wait_writer(r, 1, XR_WRITER_ENDED);
	printf("a child's 20000 records: each once, as written; its ring ended after it\n");

	/* SIGKILLed right after publishing, before any flush. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		xr_producer *p = open_producer();
		tagged = true;
		produce(p, 2, 0, 3000);
		raise(SIGKILL);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
	uint64_t before = sn.n[1];
	read_ring(r, &sn, 1, 2, before + 3000);
	wait_writer(r, 1, XR_WRITER_ENDED);
	printf("a SIGKILLed producer's 3000 published records: all taken, then the end\n");
	/* Its slot, asked for again by ring, says where it ended: the last
	 * record's tag, and how many records the slot took in all. */
	{
		xr_producer *p;
		xr_producer_stats st;
		CHECK_RC(xr_producer_open(engine, &(xr_producer_opts){.ring = 5}, &p), -EBUSY);
		CHECK(strstr(xr_last_reason(), "not a free producer slot") != NULL);
		CHECK_RC(xr_producer_open(engine, &(xr_producer_opts){.ring = 1}, &p), 0);
		CHECK_RC(xr_producer_get_stats(p, &st), 0);
		CHECK_EQ(st.ring, 1);
		CHECK_EQ(st.resume_tag, 3000);
		CHECK_EQ(st.resume_taken, 23000);
		xr_producer *q;
		CHECK_RC(xr_producer_open(engine, &(xr_producer_opts){.ring = 1}, &q), -EBUSY);
		xr_producer_close(p);
		wait_writer(r, 1, XR_WRITER_ENDED);
		printf("its slot, taken again by ring: resume after tag %llu\n",
		       (unsigned long long)st.resume_tag);
	}

	/* Backpressure: this reader holds a batch of the producer's ring; the
	 * ring stops, the staging ring fills, nothing is lost. */
	{
		xr_producer *p = open_producer();
		xr_batch held;
		produce(p, 3, 0, 1);
		int n;
		while ((n = xr_reader_read(r, 1, 1, SEC, &held)) == 0)
			;
		CHECK_EQ(n, 1);
		sn.tag[1] = 3;
		sn.next_i[1] = 1;
		sn.n[1]++;
		sn.last_seq[1] = held.first_seq;
		/* A ring of 1 MiB and a staging ring of 4 MiB: the producer
		 * fills both, then has to wait. */
		uint64_t i = 1, stuck = 0;
		for (; i < 1000000; i++) {
			void *dst;
			int rc = xr_producer_reserve(p, tpl.size, &dst);
			if (rc == -EAGAIN) {
				stuck = i;
				break;
			}
			CHECK_RC(rc, 0);
			build(&tpl, dst, 3, i);
			xr_producer_commit(p);
			CHECK_RC(xr_producer_publish(p), 0);
		}
		if (!stuck)
			FAILF("a million records went in while a lossless reader held the ring");
		CHECK_RC(xr_producer_flush(p, 200 * MS), -ETIMEDOUT);
		CHECK_RC(xr_producer_wait(p, tpl.size, 100 * MS), -ETIMEDOUT);
		xr_producer_stats st;
		CHECK_RC(xr_producer_get_stats(p, &st), 0);
		CHECK(st.pending_bytes > 0 && st.records < stuck);
		/* The reader goes on: everything staged comes, then more. */
		xr_batch_release(r, &held);
		read_ring(r, &sn, 1, 3, sn.n[1] + stuck - 1);
		produce(p, 3, stuck, 500);
		read_ring(r, &sn, 1, 3, sn.n[1] + 500);
		CHECK_RC(xr_producer_flush(p, 5 * SEC), 0);
		xr_producer_close(p);
		wait_writer(r, 1, XR_WRITER_ENDED);
		printf("backpressure: the producer stopped at record %llu while the ring was "
		       "held, and lost nothing\n", (unsigned long long)stuck);
	}

	/* One producer's ring held by a reader stops no other producer: this
	 * reader holds a batch of ring 1 (its writer past its watermark, then
	 * full) while producer B writes 20,000 records into ring 2, which the
	 * same reader takes meanwhile. */
	{
		xr_producer *a = open_producer();
		xr_producer_stats sa;
		xr_batch held;
		int n;
		CHECK_RC(xr_producer_get_stats(a, &sa), 0);
		CHECK_EQ(sa.ring, 1);
		produce(a, 5, 0, 1);
		while ((n = xr_reader_read(r, 1, 1, SEC, &held)) == 0)
			;
		CHECK_EQ(n, 1);
		CHECK_EQ(held.ring, 1);
		uint64_t n1_before = sn.n[1];
		sn.tag[1] = 5;
		sn.next_i[1] = 1;
		sn.n[1]++;
		sn.last_seq[1] = held.first_seq;
		/* A fills ring 1 behind the held batch (its writer stops), then
		 * its own staging ring. */
		for (uint64_t i = 1;; i++) {
			void *dst;
			int rc = xr_producer_reserve(a, tpl.size, &dst);
			if (rc == -EAGAIN)
				break;
			CHECK_RC(rc, 0);
			build(&tpl, dst, 5, i);
			xr_producer_commit(a);
			CHECK_RC(xr_producer_publish(a), 0);
		}
		CHECK_RC(xr_producer_flush(a, 100 * MS), -ETIMEDOUT);
		/* B in a child (its records need this reader meanwhile). */
		pid = child_producing(2, 6, 20000);
		read_ring(r, &sn, 2, 6, sn.n[2] + 20000);
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
		printf("a held ring stopped only its own producer: 20000 records of another went "
		       "by meanwhile\n");
		xr_batch_release(r, &held);
		xr_producer_stats st;
		CHECK_RC(xr_producer_get_stats(a, &st), 0);
		read_ring(r, &sn, 1, 5, n1_before + st.published);
		xr_producer_close(a);
		wait_writer(r, 1, XR_WRITER_ENDED);
		wait_writer(r, 2, XR_WRITER_ENDED);
	}

	/* A producer that floods its doorbell, descriptors and all, slows no
	 * other: the flooder (slot 1, by hand, in a thread of this process)
	 * rings while a producer in a child writes 20,000 records into slot
	 * 2. Every descriptor passed is closed again (the engine is in this
	 * process: its descriptors are ours to count). */
	{
		struct raw w;
		struct flood fl = {0};
		pthread_t th;
		int pfd[2];
		CHECK(pipe(pfd) == 0);
		raw_open(&w);
		CHECK_EQ(w.h->ring, 1);
		int base = count_fds();
		fl.bell = w.bell;
		fl.pass = pfd[0];
		CHECK(pthread_create(&th, NULL, flood_main, &fl) == 0);
		pid = child_producing(2, 8, 20000);
		read_ring(r, &sn, 2, 8, sn.n[2] + 20000);
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
		atomic_store(&fl.stop, true);
		pthread_join(th, NULL);
		if (fl.sent < 1000)
			FAILF("the flood rang only %llu times", (unsigned long long)fl.sent);
		/* What the bell still holds is drained as the thread passes. */
		if (!FAULT_WAIT(count_fds() <= base, 5000))
			FAILF("%d descriptors open after the flood, %d before it: the engine kept "
			      "some it was passed", count_fds(), base);
		CHECK_EQ(atomic_load(&w.h->state) == XR_PSTAGE_FAULT, 0);
		wait_writer(r, 2, XR_WRITER_ENDED);
		if (fl.with_fd == 0 && fl.fd_refused == 0)
			FAILF("no descriptor was passed, nor refused by the kernel");
		printf("a producer's doorbell flooded %llu times (%llu with a descriptor, %llu "
		       "descriptors refused by the kernel): 20000 records of another came "
		       "meanwhile; every descriptor passed closed again\n",
		       (unsigned long long)fl.sent, (unsigned long long)fl.with_fd,
		       (unsigned long long)fl.fd_refused);
		raw_close(&w);
		close(pfd[0]);
		close(pfd[1]);
		wait_writer(r, 1, XR_WRITER_ENDED);
	}

	/* A reader asleep for more records than an ended ring has is woken by
	 * its end and gets what there is. */
	{
		xr_reader *r2;
		xr_batch b;
		CHECK_RC(xr_reader_attach(engine, &(xr_reader_opts){.label = "min100"}, &r2), 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			xr_producer *p = open_producer();
			produce(p, 7, 0, 50);
			CHECK_RC(xr_producer_flush(p, 5 * SEC), 0);
			xr_producer_close(p);
			_exit(0);
		}
		uint64_t t0 = xr__now_ns();
		int n = xr_reader_read(r2, 100, 100, 30 * SEC, &b);
		uint64_t took = xr__now_ns() - t0;
		if (n != 50)
			FAILF("a reader waiting for 100 of an ended ring's 50 records got %d", n);
		/* Well before the read's own deadline: the end woke it. */
		if (took > 10 * SEC)
			FAILF("the end of the ring woke the reader only after %.1f s", took / 1e9);
		xr_batch_release(r2, &b);
		xr_reader_detach(r2);
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
		read_ring(r, &sn, 1, 7, sn.n[1] + 50);
		wait_writer(r, 1, XR_WRITER_ENDED);
		printf("a reader waiting for 100 records of an ended ring's 50: woken, in %.0f ms\n",
		       took / 1e6);
	}

	/* A producer that forked a child after its open, then died: the
	 * child holds the connection, but the opener's death ends the
	 * producer all the same (its 10 records in the ring, then the end). */
	{
		int fds[2];
		CHECK(pipe(fds) == 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			xr_producer *p = open_producer();
			pid_t kid = fork();
			if (kid == 0) {
				char c;
				close(fds[1]);
				(void)!read(fds[0], &c, 1); /* until the test is done */
				_exit(0);
			}
			produce(p, 8, 0, 10);
			CHECK_RC(xr_producer_flush(p, 5 * SEC), 0);
			raise(SIGKILL);
		}
		close(fds[0]);
		CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
		read_ring(r, &sn, 1, 8, sn.n[1] + 10);
		wait_writer(r, 1, XR_WRITER_ENDED);
		close(fds[1]); /* the grandchild ends */
		printf("a dead producer's forked child did not keep its slot\n");
	}

	/* Hostile producers, each ended alone, beside a good one. */
	xr_producer *good = open_producer(); /* takes ring 1; the hostile ones ring 2 */
	hostile(r, &sn, 10, bad_len, "bad frame");
	hostile(r, &sn, 11, bad_head, "not a frame position");
	hostile(r, &sn, 12, bad_record, "not a well-formed");
	hostile(r, &sn, 13, other_shape, "not of the stream's shape");
	produce(good, 4, 0, 1000);
	read_ring(r, &sn, 1, 4, sn.n[1] + 1000);
	CHECK_RC(xr_producer_flush(good, 5 * SEC), 0);
	/* Through the API, a malformed record: the producer's next call says
	 * so, with the engine's reason. */
	{
		xr_producer *p = open_producer();
		char junk[4096];
		memset(junk, 0x5a, sizeof(junk));
		CHECK_RC(xr_producer_write(p, junk, sizeof(junk)), 0);
		int rc = xr_producer_flush(p, 5 * SEC);
		CHECK_RC(rc, XR_EBADREC);
		CHECK(strstr(xr_last_reason(), "not a well-formed") != NULL);
		CHECK_RC(xr_producer_reserve(p, tpl.size, &(void *){0}), XR_EBADREC);
		xr_producer_close(p);
	}
	printf("hostile producers: each ended alone with its reason; the good one went on\n");

	/* The engine's stop ends a producer's wait. */
	{
		xr_producer *p = open_producer();
		xr_reader_detach(r);
		xr_producer_close(good);
		fault_engine_stop(&e);
		int rc = xr_producer_flush(p, 5 * SEC);
		if (rc != XR_ECLOSED && rc != 0)
			FAILF("flush after the engine stopped: %s", xr_strerror(rc));
		CHECK_RC(xr_producer_reserve(p, tpl.size, &(void *){0}), XR_ECLOSED);
		xr_producer_close(p);
	}
	printf("ok\n");
	return 0;
}
