/* SPDX-License-Identifier: MIT */
/*
 * `xring bridge in` (bridge.h): JetStream messages into a local stream.
 *
 * Exactly once, from at-least-once delivery, in each source ring's order.
 * A record is written when it is new by two tests:
 *   - its tag, (the message's JetStream stream sequence << 21) | its place
 *     in the message + 1, is past the tag of the last record the engine
 *     took from this producer slot (xr_producer_stats.resume_tag): after
 *     the bridge's own restart, the messages it had not acknowledged come
 *     again, and what of them the engine already has is skipped;
 *   - its (source, incarnation, ring, seq) is past the last one written of
 *     that source ring: the same records published twice (an out bridge
 *     that restarted past JetStream's duplicate window) are skipped.
 * A message that came ahead of the one before it (wire.h, prev) is passed
 * over: its copy comes after that one (out.c, "Order").
 * Messages are acknowledged only once the engine has taken their records
 * (xr_producer_flush), so a message the bridge dies holding comes again.
 *
 * What comes from the subject is anyone's: a message is checked whole
 * before any record of it is written (bridge/wire.c), and each record is
 * verified as the engine would (a well-formed Experience record of the
 * local stream's shape), so nothing from the subject can end the
 * producer. What fails is counted (refused) and acknowledged with the
 * rest (it would fail again).
 */
#include "bridge/bridge.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bridge/claim.h"
#include "bridge/js.h"
#include "bridge/state.h"
#include "bridge/wire.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/producer.h"
#include "xring/reader.h"

#define TAG_SHIFT 21       /* a message holds fewer than 2^21 records */
#define SOURCES_MAX 4096   /* source rings remembered */
#define FETCH_MAX 32  /* messages a fetch asks for at most */
#define CLAIM_EVERY_NS 2000000000ull
#define PAUSED_NS 1000000000ull  /* a fetch and hand-over this long: asked again */

struct seen {
	uint64_t source, incarnation;
	uint32_t ring;
	bool used;
	bool any;             /* a record of it was taken: last is one */
	uint64_t last;
	uint64_t touched;     /* when a message of it last came (b->touches) */
	bool stale;           /* from a file behind the consumer's ack floor */
};

/* What take() says of a message besides 0 (taken or refused: acknowledge
 * it) and a producer's end (< 0). */
#define TAKE_GAP 1   /* past the sequence expected: remake from it */
#define TAKE_STOP 2  /* another key's, or another shape, before any good
		      * one: stop, acknowledging nothing */

struct in {
	const struct xr_bridge_opts *o;
	struct xr_bridge_stats *st;
	xr_producer *p;
	const xr_exp_template *t;
	uint64_t resume_tag;
	struct seen *seen;
	uint8_t *scratch;
	uint64_t refused_said, late_said, holes_said;
	uint32_t n_seen;      /* entries of seen in use */
	uint64_t touches;     /* messages looked up in seen: its clock */
	/* A consumer numbers its deliveries 1, 2, 3... (a redelivery too
	 * gets the next number). One that skips a number is a delivery lost
	 * on the way (the server counts it delivered, and would send it again
	 * only after its ack wait, behind newer ones, whose source seqs would
	 * then have it taken for a duplicate): the consumer is remade from
	 * the stream sequence after the last message taken. A hole in the
	 * stream (a message deleted, another subject's) skips no number. */
	uint64_t next_cseq;   /* the delivery expected */
	uint64_t next_sseq;   /* the stream sequence after the last taken */
	/* The stream sequence of the last message done with (taken, passed
	 * over, refused), and the JetStream stream's making: in the seen
	 * map's file, which says where each source ring stood after it. A
	 * restart goes on after it: the messages before it were judged
	 * against the map as it was then, and judged again against the map
	 * as it is now, one passed over (its records never written) could
	 * pass for one taken (docs/bridge.md, "Order"). */
	uint64_t done_sseq;
	int64_t js_created;
	bool any_good;        /* a message of the key and shape taken, this run */
	char stop_why[300];
	char state[600];      /* the seen map's file (state.h), "" when none */
	bool dirty, state_said;
	natsConnection *nc;
	struct xr_br_claim *claim;
	uint64_t claim_at;    /* when to look at the consumer again */
	char made[40];        /* the description of the consumer this bridge made */
	jsCtx *js;
	natsSubscription *sub;
	char js_stream[128], durable[128], filter[300];
	/* The taker is to end: stored by taker_stop(), loaded by stopping()
	 * in the taker's waits for the engine. Relaxed: a flag, nothing is
	 * read through it (the join orders the rest). */
	atomic_bool quit;
};

/* A stop, or the taker's end asked for: waits for the engine end. */
static bool stopping(const struct in *b)
{
	return atomic_load_explicit(b->o->stop, memory_order_relaxed) ||
	       atomic_load_explicit(&b->quit, memory_order_relaxed);
}

static struct seen *seen_find(struct in *b, uint64_t source, uint64_t inc, uint32_t ring,
			      bool make)
{
	uint64_t h = (source ^ inc * 0x9e3779b97f4a7c15ull ^ ring) * 0xff51afd7ed558ccdull;

	for (uint32_t i = 0; i < SOURCES_MAX; i++) {
		struct seen *s = &b->seen[(h + i) & (SOURCES_MAX - 1)];
		if (!s->used) {
			if (!make)
				return NULL;
			*s = (struct seen){.source = source, .incarnation = inc, .ring = ring,
					   .used = true};
			b->n_seen++;
			return s;
		}
		if (s->source == source && s->incarnation == inc && s->ring == ring)
			return s;
	}
	return NULL;
}

static int newer_first(const void *x, const void *y)
{
	const struct seen *a = x, *c = y;

	return a->touched < c->touched ? 1 : a->touched > c->touched ? -1 : 0;
}

/* The map three quarters full: the half of it whose messages came last
 * is kept, the rest forgotten (old incarnations of restarted engines,
 * mostly). A forgotten ring's records, should they come again, are not
 * known as taken, and its order is taken up anew. */
static void seen_forget(struct in *b)
{
	struct seen *all = malloc(SOURCES_MAX * sizeof(*all));
	uint32_t n = 0;

	if (!all)
		return;
	for (uint32_t i = 0; i < SOURCES_MAX; i++)
		if (b->seen[i].used)
			all[n++] = b->seen[i];
	qsort(all, n, sizeof(*all), newer_first);
	memset(b->seen, 0, SOURCES_MAX * sizeof(*b->seen));
	b->n_seen = 0;
	for (uint32_t i = 0; i < n && i < SOURCES_MAX / 2; i++)
		*seen_find(b, all[i].source, all[i].incarnation, all[i].ring, true) = all[i];
	if (!b->o->quiet)
		fprintf(stderr, "xring bridge: %u source rings seen: the %u that came longest ago "
			"are forgotten (should their records come again, they are not known as "
			"taken)\n", n, n > SOURCES_MAX / 2 ? n - SOURCES_MAX / 2 : 0);
	b->dirty = true;
	free(all);
}

static struct seen *seen_of(struct in *b, uint64_t source, uint64_t inc, uint32_t ring)
{
	struct seen *s = seen_find(b, source, inc, ring, false);

	if (!s && b->n_seen >= SOURCES_MAX / 4 * 3)
		seen_forget(b);
	if (!s)
		s = seen_find(b, source, inc, ring, true);
	if (s)
		s->touched = ++b->touches;
	return s;
}

/* The seen map's file: every source ring's last record taken, so that a
 * real message published again (a restarted out that had lost its place,
 * or anyone replaying one) is skipped after this bridge's restart too. */
#define IN_STATE_MAGIC 0x32494258u /* "XBI2" */
#define IN_STATE_MAGIC1 0x53494258u /* "XBIS": a version 1 file, read as one */
struct in_state_head {
	uint32_t magic, count;
	uint64_t done_sseq;  /* the last message done with */
	int64_t js_created;  /* of the JetStream stream done_sseq is of */
};
struct in_state_rec {
	uint64_t source, incarnation, last, touched;
	uint32_t ring, pad_;
};
#define IN_HEAD sizeof(struct in_state_head)

static void state_load(struct in *b)
{
	size_t cap = IN_HEAD + (size_t)SOURCES_MAX * sizeof(struct in_state_rec);
	uint8_t *buf = b->state[0] ? malloc(cap) : NULL;
	long n = buf ? xr__br_state_load(b->state, buf, cap) : -1;
	struct in_state_head h;

	if (n >= 8) {
		/* Version 1: magic, count, then source, incarnation, last,
		 * ring and pad a ring. */
		uint32_t m1, c1;
		memcpy(&m1, buf, 4);
		memcpy(&c1, buf + 4, 4);
		if (m1 == IN_STATE_MAGIC1 && c1 <= SOURCES_MAX && (size_t)n == 8 + (size_t)c1 * 32)
			for (uint32_t i = 0; i < c1; i++) {
				uint64_t w[3];
				uint32_t ring;
				memcpy(w, buf + 8 + (size_t)i * 32, sizeof(w));
				memcpy(&ring, buf + 8 + (size_t)i * 32 + 24, sizeof(ring));
				struct seen *sn = seen_find(b, w[0], w[1], ring, true);
				if (sn) {
					sn->any = true;
					sn->last = w[2];
				}
			}
	}
	if (n >= (long)IN_HEAD) {
		memcpy(&h, buf, sizeof(h));
		if (h.magic == IN_STATE_MAGIC && h.count <= SOURCES_MAX &&
		    (size_t)n == IN_HEAD + h.count * sizeof(struct in_state_rec)) {
			b->done_sseq = h.done_sseq;
			b->js_created = h.js_created;
			for (uint32_t i = 0; i < h.count; i++) {
				struct in_state_rec r;
				memcpy(&r, buf + IN_HEAD + i * sizeof(r), sizeof(r));
				struct seen *sn = seen_find(b, r.source, r.incarnation, r.ring, true);
				if (sn) {
					sn->any = true;
					sn->last = r.last;
					sn->touched = r.touched;
					if (r.touched > b->touches)
						b->touches = r.touched;
				}
			}
		}
	}
	free(buf);
}

/* Written once the engine has taken what it says: never ahead of it. */
static void state_save(struct in *b)
{
	if (!b->state[0] || !b->dirty)
		return;
	size_t cap = IN_HEAD + (size_t)SOURCES_MAX * sizeof(struct in_state_rec);
	uint8_t *buf = malloc(cap);
	struct in_state_head h = {.magic = IN_STATE_MAGIC, .done_sseq = b->done_sseq,
				  .js_created = b->js_created};
	uint32_t count = 0;
	if (!buf)
		return;
	for (uint32_t i = 0; i < SOURCES_MAX; i++) {
		const struct seen *s = &b->seen[i];
		if (!s->used || !s->any)
			continue;
		struct in_state_rec r = {.source = s->source, .incarnation = s->incarnation,
					 .last = s->last, .touched = s->touched, .ring = s->ring};
		memcpy(buf + IN_HEAD + count * sizeof(r), &r, sizeof(r));
		count++;
	}
	h.count = count;
	memcpy(buf, &h, sizeof(h));
	int rc = xr__br_state_save(b->state, buf, IN_HEAD + count * sizeof(struct in_state_rec));
	if (rc == 0) {
		b->dirty = false;
	} else if (!b->state_said && !b->o->quiet) {
		fprintf(stderr, "xring bridge: cannot write %s (%s): after a restart, records "
			"published again are not known as taken\n", b->state, strerror(-rc));
		b->state_said = true;
	}
	free(buf);
}

/* Whether rec is what the engine takes: a well-formed Experience record
 * of the local stream's shape (as engine/producers.c checks it). */
static bool fits(const struct in *b, const void *rec, uint32_t len)
{
	xr_exp_view v;
	const xr_exp_template *t = b->t;

	if (xr_exp_view_init(&v, rec, len) < 0 || !v.obs || v.obs_dtype != t->shape.obs_dtype ||
	    v.obs_ndim != t->shape.obs_ndim || v.obs_bytes != t->obs_bytes ||
	    v.mask_len != t->shape.mask_len || v.extras_len != t->shape.extras_len)
		return false;
	for (uint32_t d = 0; d < v.obs_ndim; d++)
		if (v.obs_dims[d] != t->shape.obs_dims[d])
			return false;
	return true;
}

static void refuse(struct in *b, const char *subject, const char *why)
{
	char subj[120];

	b->st->refused++;
	/* Said now and then: a flood of garbage must not flood the log. The
	 * subject is a stranger's: printable bytes only. */
	if (!b->o->quiet && b->st->refused >= b->refused_said * 2) {
		snprintf(subj, sizeof(subj), "%s", subject ? subject : "?");
		for (char *c = subj; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				*c = '?';
		fprintf(stderr, "xring bridge: refused a message on %s: %s (%" PRIu64 " so far)\n",
			subj, why, b->st->refused);
		b->refused_said = b->st->refused;
	}
}

/* Writes record rec with tag, waiting for room. 0, or the producer's end. */
static int write_one(struct in *b, const void *rec, uint32_t len, uint64_t tag)
{
	void *dst;
	int rc;

	while ((rc = xr_producer_reserve(b->p, len, &dst)) == -EAGAIN) {
		if (stopping(b))
			return -EINTR;
		rc = xr_producer_wait(b->p, len, 100000000);
		if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR)
			return rc;
	}
	if (rc < 0)
		return rc;
	memcpy(dst, rec, len);
	xr_producer_commit_tag(b->p, tag);
	return 0;
}

/* Whether every record of pm fits the stream (the first good message of a
 * run is looked at whole before any of it is written). */
static bool all_fit(const struct in *b, const struct xr_br_msg *pm)
{
	size_t it = 0;
	uint64_t seq;
	const void *rec;
	uint32_t len;

	while (xr__br_next(pm, &it, &seq, &rec, &len))
		if (!fits(b, rec, len))
			return false;
	return true;
}

/* Message sseq is done with (its records taken or not): 0. */
static int done(struct in *b, uint64_t sseq)
{
	b->done_sseq = sseq;
	b->dirty = true;
	return 0;
}

/* The records of one message that are new: 0 (acknowledge it), TAKE_GAP,
 * TAKE_STOP, or the producer's end. */
static int take(struct in *b, natsMsg *m)
{
	jsMsgMetaData *md = NULL;
	struct xr_br_msg pm;
	const char *why;

	if (natsMsg_GetMetaData(&md, m) != NATS_OK) {
		refuse(b, natsMsg_GetSubject(m), "no JetStream metadata");
		return 0;
	}
	uint64_t sseq = md->Sequence.Stream, cseq = md->Sequence.Consumer;
	jsMsgMetaData_Destroy(md);
	if (cseq != b->next_cseq)
		return TAKE_GAP;
	b->next_cseq++;
	if (sseq < b->next_sseq) {
		/* Taken in this run already (its ack was lost): again. */
		return 0;
	}
	b->next_sseq = sseq + 1;
	int prc = xr__br_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), b->t->size,
			       b->o->key, b->scratch, XR_BR_RAW_MAX, &pm, &why);
	bool shape_ok = prc == 0 && (b->any_good || all_fit(b, &pm));
	if (!b->any_good && !b->o->ack_refused &&
	    (prc == -EKEYREJECTED || prc == -EPROTONOSUPPORT || (prc == 0 && !shape_ok))) {
		/* Before any good message, one with a good checksum that is
		 * another key's or another shape's, or a bridge message of
		 * another release, is more likely a mistake of ours than a
		 * stranger's: acknowledged away, the stream would be lost to
		 * it. */
		snprintf(b->stop_why, sizeof(b->stop_why),
			 prc == -EPROTONOSUPPORT
				 ? "the first message (JetStream sequence %" PRIu64 ") is %s; nothing was "
				   "acknowledged: let a bridge in of its release take the stream first "
				   "(docs/bridge.md, \"Upgrading\"), or start again with --ack-refused"
			 : prc ? "the first message (JetStream sequence %" PRIu64 ") was refused: %s; "
				 "is --key-file the same as bridge out's? Nothing was acknowledged (if "
				 "it is a stranger's, start again with --ack-refused)"
			       : "the first message (JetStream sequence %" PRIu64 ") has records not "
				 "of this stream's shape%s; is it the stream bridge out reads? Nothing "
				 "was acknowledged (--ack-refused: take them away)",
			 sseq, prc ? why : "");
		return TAKE_STOP;
	}
	if (prc < 0) {
		refuse(b, natsMsg_GetSubject(m), why);
		return done(b, sseq);
	}
	b->any_good = true;
	struct seen *sn = seen_of(b, pm.source, pm.incarnation, pm.ring); /* NULL: no memory */
	/* A message whose predecessor (prev) is not written yet came ahead
	 * of it: the predecessor was lost on the way and stored after it.
	 * Taken now, the predecessor's records would then pass for
	 * duplicates; passed over, bridge out sends this one again after the
	 * predecessor (out.c, "Order"). Unless it is the first message of its
	 * batch (prev is the batch's base): bridge out began that batch once
	 * the one before was stored whole and in order, so what is missing
	 * before it never comes (a bridge out that lost its place, messages a
	 * stream's limits took away), and waiting would stop the ring for
	 * good: it is taken, the hole said. A later message of such a batch
	 * waits for the first, which comes.
	 * Nothing of the ring taken yet (a new consumer, this bridge's file
	 * lost, the ring forgotten): this bridge starts here, and takes what
	 * comes. (A ring's very first message, which has no prev, is stored
	 * before any other of the ring: bridge out sends it alone, out.c.)
	 * The decision rests on the
	 * seen map alone, as it stood after the message before: a restart
	 * goes on after the last message done (done_sseq), and judges what
	 * comes again the same way, the tags only keeping the engine from
	 * taking a record twice. */
	bool behind = sn && sn->any && !sn->stale && pm.has_prev && pm.prev > sn->last;
	if (behind && pm.has_base && pm.base == pm.prev) {
		b->st->holes++;
		if (!b->o->quiet && b->st->holes >= b->holes_said * 2) {
			fprintf(stderr, "xring bridge: ring %u of source %016" PRIx64 " has a hole: "
				"taken up to seq %" PRIu64 ", and a message follows seq %" PRIu64
				": the records between never came (%" PRIu64 " so far)\n", pm.ring,
				pm.source, sn->last, pm.prev, b->st->holes);
			b->holes_said = b->st->holes;
		}
	} else if (behind) {
		b->st->late++;
		if (!b->o->quiet && b->st->late >= b->late_said * 2) {
			fprintf(stderr, "xring bridge: a message of ring %u of source %016" PRIx64
				" came ahead of the one before it (that one ends at seq %" PRIu64
				"; taken up to seq %" PRIu64 "): passed over, for its copy bridge "
				"out sends after (%" PRIu64 " so far)\n", pm.ring, pm.source, pm.prev,
				sn->last, b->st->late);
			b->late_said = b->st->late;
		}
		return done(b, sseq);
	}
	if (sn)
		sn->stale = false; /* taken from here: in order after it */
	size_t it = 0;
	uint64_t seq, k = 0;
	const void *rec;
	uint32_t len;
	while (xr__br_next(&pm, &it, &seq, &rec, &len)) {
		uint64_t tag = sseq << TAG_SHIFT | ++k;
		bool old = sn && sn->any && seq <= sn->last;
		if (tag <= b->resume_tag || old) {
			/* Taken before (this bridge's last life), or a record
			 * published twice. */
			b->st->duplicates++;
			if (sn && (!sn->any || seq > sn->last)) {
				sn->last = seq;
				sn->any = true;
				b->dirty = true;
			}
			continue;
		}
		if (!fits(b, rec, len)) {
			refuse(b, natsMsg_GetSubject(m), "a record not of this stream's shape");
			continue;
		}
		int rc = write_one(b, rec, len, tag);
		if (rc < 0)
			return rc;
		if (sn) {
			sn->last = seq;
			sn->any = true;
			b->dirty = true;
		}
		b->st->records++;
		b->st->bytes += len;
	}
	b->st->messages++;
	return done(b, sseq);
}



/* A fetched list taken: each message checked and its records written,
 * then, once the engine has them all, the position saved and the list
 * acknowledged (JetStream forgets nothing the engine does not hold). 0,
 * TAKE_GAP (the list's rest left unacknowledged), -EKEYREJECTED (a
 * TAKE_STOP: b->stop_why), or the producer's end (-ETIMEDOUT or -EINTR:
 * stopped meanwhile, nothing of this list acknowledged). */
static int take_list(struct in *b, natsMsgList *list)
{
	int taken = list->Count, verdict = 0;

	for (int i = 0; i < list->Count; i++) {
		verdict = take(b, list->Msgs[i]);
		if (verdict != 0) {
			taken = i;
			break;
		}
	}
	int rc = verdict < 0 ? verdict : 0;
	/* A signal that is not a stop only interrupts the wait. */
	while (rc == 0) {
		int f = xr_producer_flush(b->p, 100000000);
		if (f == 0)
			break;
		if ((f == -ETIMEDOUT || f == -EINTR) && !stopping(b))
			continue;
		rc = f;
	}
	if (rc < 0)
		return rc;
	state_save(b);
	for (int i = 0; i < taken; i++)
		natsMsg_Ack(list->Msgs[i], NULL);
	return verdict == TAKE_STOP ? -EKEYREJECTED : verdict;
}

/* The taker: a thread that takes the lists the fetching thread hands
 * over, in their order. The fetch of the next list (mostly waiting for
 * the server) then overlaps this one's checks and copies and the
 * engine's taking them; one after the other, each was about half of a
 * cycle (128 KiB messages: a fetch of 8 MiB 13 ms, taking it 13 ms).
 *
 * Ownership: struct in and the producer are the taker's while it runs.
 * The fetching thread touches them only once the taker has said
 * something (said != 0, read under mu): the taker is then idle, with
 * nothing queued, until taker_go_on() or taker_stop(); the mutex orders
 * everything either thread wrote before. At most three lists are
 * unacknowledged (the one taken, one queued, one being fetched): a fetch
 * asks for a third of --max-ack-pending at most. */
struct taker {
	struct in *b;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	natsMsgList next;  /* handed over, not yet taken */
	bool has_next, quit;
	int said;          /* 0; TAKE_GAP; < 0, its end (take_list()) */
	char reason[300];  /* the producer's, for an end (its thread's own) */
};

static void *taker_run(void *arg)
{
	struct taker *tk = arg;

	pthread_mutex_lock(&tk->mu);
	for (;;) {
		while (!tk->quit && (!tk->has_next || tk->said))
			pthread_cond_wait(&tk->cv, &tk->mu);
		if (tk->quit)
			break; /* a queued list is not taken: it comes again */
		natsMsgList list = tk->next;
		tk->has_next = false;
		pthread_cond_broadcast(&tk->cv); /* room for the next */
		pthread_mutex_unlock(&tk->mu);
		int v = take_list(tk->b, &list);
		natsMsgList_Destroy(&list);
		pthread_mutex_lock(&tk->mu);
		if (v != 0) {
			tk->said = v;
			if (v < 0)
				snprintf(tk->reason, sizeof(tk->reason), "%s",
					 xr_last_reason()[0] ? xr_last_reason() : xr_strerror(v));
			if (tk->has_next) { /* after a gap or an end: comes again */
				natsMsgList_Destroy(&tk->next);
				tk->has_next = false;
			}
			pthread_cond_broadcast(&tk->cv);
		}
	}
	if (tk->has_next) {
		natsMsgList_Destroy(&tk->next);
		tk->has_next = false;
	}
	pthread_mutex_unlock(&tk->mu);
	return NULL;
}

/* Signals stay with the fetching thread, as before the taker: a stop
 * reaches the taker through *o->stop (take_list's flush looks at it). */
static int taker_start(struct taker *tk)
{
	sigset_t all, was;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &was);
	int rc = pthread_create(&tk->th, NULL, taker_run, tk);
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	return -rc;
}

/* Whether there is room for a list (none queued, or the taker said
 * something), waiting up to wait_ns for it. */
static bool taker_room(struct taker *tk, uint64_t wait_ns)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(wait_ns / 1000000000ull);
	until.tv_nsec += (long)(wait_ns % 1000000000ull);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&tk->mu);
	while (tk->has_next && !tk->said)
		if (pthread_cond_timedwait(&tk->cv, &tk->mu, &until) == ETIMEDOUT)
			break;
	bool room = !tk->has_next || tk->said;
	pthread_mutex_unlock(&tk->mu);
	return room;
}

/* Queues list for the taker, once taker_room() said there is room (only
 * this thread queues); a list handed over after the taker said something
 * is dropped, unacknowledged (it comes again). */
static void hand_over(struct taker *tk, natsMsgList *list)
{
	pthread_mutex_lock(&tk->mu);
	if (tk->said || tk->has_next) {
		natsMsgList_Destroy(list);
	} else {
		tk->next = *list;
		tk->has_next = true;
		pthread_cond_broadcast(&tk->cv);
	}
	pthread_mutex_unlock(&tk->mu);
}

static int taker_said(struct taker *tk)
{
	pthread_mutex_lock(&tk->mu);
	int said = tk->said;
	pthread_mutex_unlock(&tk->mu);
	return said;
}

/* After a gap, the consumer remade: the taker takes again. */
static void taker_go_on(struct taker *tk)
{
	pthread_mutex_lock(&tk->mu);
	tk->said = 0;
	pthread_cond_broadcast(&tk->cv);
	pthread_mutex_unlock(&tk->mu);
}

/* Ends the taker once the list it is taking is done: its end (< 0), or
 * 0. */
static int taker_stop(struct taker *tk)
{
	/* A list waiting for the engine is left unacknowledged: after this
	 * thread's own end (a consumer deleted or taken), the taker must not
	 * wait for a destination that does not move. */
	atomic_store_explicit(&tk->b->quit, true, memory_order_relaxed);
	pthread_mutex_lock(&tk->mu);
	tk->quit = true;
	pthread_cond_broadcast(&tk->cv);
	pthread_mutex_unlock(&tk->mu);
	pthread_join(tk->th, NULL);
	return tk->said < 0 ? tk->said : 0;
}

/* Whether the step since *last took longer than any but a paused
 * process's (PAUSED_NS); *last becomes now. */
static bool took_long(uint64_t *last)
{
	uint64_t now = xr__now_ns();
	bool slow = now - *last > PAUSED_NS;

	*last = now;
	return slow;
}

/* Whether the consumer is still the one this bridge made: 0, -ENOENT
 * (deleted), or -EBUSY (made again: another bridge in took it over while
 * this one was paused or cut off; each makes its consumer anew when it
 * starts, claim.h). Each make writes a random token of its own into the
 * consumer's description, which JetStream keeps (across its restarts too:
 * its creation time does not stay put). Looked at every CLAIM_EVERY_NS,
 * after a pause, and before a remake. A failed ask (the connection's) is
 * ridden out. The answer is the server's, to whoever may answer on the
 * JetStream API: the deployment's permissions (docs/deploy-bridge.md). */
static int still_ours(struct in *b, char *why, size_t len)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode err = 0;
	int rc = 0;

	b->claim_at = xr__now_ns() + CLAIM_EVERY_NS;
	natsStatus s = js_GetConsumerInfo(&ci, b->js, b->js_stream, b->durable, NULL, &err);
	if (s == NATS_OK) {
		const char *d = ci->Config ? ci->Config->Description : NULL;
		if (!d || strcmp(d, b->made) != 0) {
			snprintf(why, len, "consumer %s of JetStream stream %s was made again by another "
				 "bridge in while this one was paused or cut off (it goes on; what this "
				 "one had not acknowledged goes to it); stop it first, or give this one "
				 "another --durable", b->durable, b->js_stream);
			rc = -EBUSY;
		}
		jsConsumerInfo_Destroy(ci);
	} else if (err == JSConsumerNotFoundErr) {
		/* Fetches would time out for ever (no answer, no error). Also
		 * what a look between another bridge in's delete and make of
		 * it sees (a takeover): this one stops all the same. */
		snprintf(why, len, "consumer %s of JetStream stream %s was deleted under this bridge "
			 "in; nothing unacknowledged is lost: start it again", b->durable, b->js_stream);
		rc = -ENOENT;
	}
	return rc;
}

/* The durable consumer made anew, delivering from stream sequence start
 * (0: the stream's first): 0, or -EIO with why. */
static int subscribe(struct in *b, uint64_t start, char *why, size_t len)
{
	jsErrCode err = 0;
	jsSubOptions so;

	if (b->sub) {
		natsSubscription_Destroy(b->sub);
		b->sub = NULL;
	}
	js_DeleteConsumer(b->js, b->js_stream, b->durable, NULL, &err);
	jsSubOptions_Init(&so);
	so.Stream = b->js_stream;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.MaxAckPending = b->o->max_ack_pending > 0 ? b->o->max_ack_pending : 64;
	so.Config.AckWait = 30ll * 1000000000ll;
	so.Config.DeliverPolicy = start ? js_DeliverByStartSequence : js_DeliverAll;
	so.Config.OptStartSeq = start;
	uint64_t token = 0;
	if (getrandom(&token, sizeof(token), 0) != sizeof(token))
		token = xr__now_ns() ^ ((uint64_t)getpid() << 32);
	snprintf(b->made, sizeof(b->made), "xring bridge in %016" PRIx64, token);
	so.Config.Description = b->made;
	err = 0;
	natsStatus s = js_PullSubscribe(&b->sub, b->js, b->filter, b->durable, NULL, &so, &err);
	if (s != NATS_OK) {
		snprintf(why, len, "cannot consume %s of JetStream stream %s as %s: %s (%d)",
			 b->filter, b->js_stream, b->durable, natsStatus_GetText(s), (int)err);
		return -EIO;
	}
	b->next_cseq = 1;
	b->next_sseq = start;
	return 0;
}

int xr__bridge_in(const struct xr_bridge_opts *o, struct xr_bridge_stats *st, char *why,
		  size_t len)
{
	struct in b = {.o = o, .st = st};
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	struct xr_br_claim *claim = NULL;
	char *js_stream = b.js_stream, *durable = b.durable, *filter = b.filter, who[200];
	int rc;

	if (o->js_stream)
		snprintf(js_stream, sizeof(b.js_stream), "%s", o->js_stream);
	else
		xr__js_default_name(o->subject, js_stream, sizeof(b.js_stream));
	if (o->durable)
		snprintf(durable, sizeof(b.durable), "%s", o->durable);
	else
		snprintf(durable, sizeof(b.durable), "xring-in-%s", o->engine);
	for (char *c = durable; *c; c++)
		if (*c == '.' || *c == '*' || *c == '>' || *c == ' ')
			*c = '-';
	snprintf(filter, sizeof(b.filter), "%s.>", o->subject);
	b.seen = calloc(SOURCES_MAX, sizeof(*b.seen));
	b.scratch = malloc(XR_BR_RAW_MAX);
	if (!b.seen || !b.scratch) {
		rc = -ENOMEM;
		snprintf(why, len, "out of memory");
		goto out;
	}
	xr_producer_opts po = {.stream = o->stream, .ring = o->ring, .stage_bytes = 16u << 20};
	rc = xr_producer_open(o->engine, &po, &b.p);
	if (rc < 0) {
		snprintf(why, len, "cannot write engine %s's stream: %s", o->engine,
			 xr_last_reason()[0] ? xr_last_reason() : xr_strerror(rc));
		goto out;
	}
	b.t = xr_producer_template(b.p);
	char state_key[300];
	snprintf(state_key, sizeof(state_key), "%s-%s", js_stream, durable);
	if (xr__br_state_path(o->engine, "in", state_key, b.state, sizeof(b.state)) < 0)
		b.state[0] = '\0';
	state_load(&b);
	xr_producer_stats ps;
	xr_producer_get_stats(b.p, &ps);
	b.resume_tag = ps.resume_tag;
	rc = xr__js_connect(o->nats, NULL, &nc, &js, why, len);
	if (rc == 0)
		rc = xr__js_ensure_stream(js, js_stream, o->subject, o->replicas, why, len);
	snprintf(who, sizeof(who), "engine %s ring %u", o->engine, ps.ring);
	if (rc == 0)
		rc = xr__br_claim(nc, js_stream, durable, who, o->key, &claim, why, len);
	if (rc < 0)
		goto out;
	/* Tags are JetStream sequences of one stream: a slot last written
	 * from another (the stream deleted and made again, another
	 * --subject) may hold a tag past every sequence of this one, and all
	 * of it would be skipped. Such a tag is not this stream's: from its
	 * start. (One still below this stream's last sequence cannot be told
	 * apart: docs/bridge.md.) */
	jsStreamInfo *si = NULL;
	jsErrCode serr = 0;
	if (js_GetStreamInfo(&si, js, js_stream, NULL, &serr) == NATS_OK) {
		uint64_t last = si->State.LastSeq;
		/* The file's last message done is of this stream only if it
		 * was made when this one was. */
		if (si->Created != b.js_created || b.done_sseq > last)
			b.done_sseq = 0;
		b.js_created = si->Created;
		jsStreamInfo_Destroy(si);
		if (b.resume_tag && (b.resume_tag >> TAG_SHIFT) > last) {
			if (!o->quiet)
				fprintf(stderr, "xring bridge: ring %u was last written from another "
					"JetStream stream (its tag %" PRIu64 " is past %s's last "
					"message, %" PRIu64 "): taking %s from its start\n",
					ps.ring, b.resume_tag >> TAG_SHIFT, js_stream, last,
					js_stream);
			b.resume_tag = 0;
		}
	}
	/* The durable consumer anew, from its ack floor: messages a bridge
	 * that died had taken but not acknowledged would come again only after
	 * their ack wait, behind newer ones, out of their order (and the
	 * source seqs' test below would take them for duplicates). In order,
	 * the tags skip what the engine already took. */
	jsConsumerInfo *ci = NULL;
	jsErrCode err = 0;
	uint64_t floor = 0;
	/* The server's word beside the ask (claim.c), which a flood of asks
	 * can starve: a live bridge in has a pull request waiting nearly
	 * always, and a dead one's expires within its fetch's 500 ms. None
	 * waiting: no one pulls (or a live one between two fetches: the ask
	 * is the answer to that). Some: asked again three times, 550 ms
	 * apart; any then is a live puller's. */
	int64_t waiting = 0, live = 0;
	for (int i = 0; i < 4; i++) {
		if (i)
			xr__sleep_ns(550000000ull);
		if (js_GetConsumerInfo(&ci, js, js_stream, durable, NULL, &err) != NATS_OK)
			break;
		floor = ci->AckFloor.Stream;
		waiting = ci->NumWaiting;
		jsConsumerInfo_Destroy(ci);
		if (i == 0 && !waiting)
			break;
		if (i > 0 && waiting > live)
			live = waiting;
	}
	if (live) {
		waiting = live;
		rc = -EBUSY;
		snprintf(why, len, "consumer %s of JetStream stream %s is being pulled from by another "
			 "bridge in (%lld pull requests waiting); stop it first, or give this one "
			 "another --durable", durable, js_stream, (long long)waiting);
		goto out;
	}
	b.js = js;
	b.nc = nc;
	b.claim = claim;
	/* From after the last message done with (or acknowledged: a file
	 * that could not be written), not from the first unacknowledged: see
	 * done_sseq. */
	if (b.done_sseq > floor) {
		floor = b.done_sseq;
	} else if (floor > b.done_sseq) {
		/* Messages were acknowledged that the file does not know of
		 * (it could not be written for a while, or another bridge in
		 * took the consumer): what it says each ring was taken up to
		 * may be behind, and a message whose predecessor went then
		 * would wait for ever. Each ring starts where it is, as with
		 * nothing taken, its marks still keeping what it says was
		 * taken from being taken again. */
		for (uint32_t i = 0; i < SOURCES_MAX; i++)
			b.seen[i].stale = b.seen[i].used;
	}
	rc = subscribe(&b, floor ? floor + 1 : 0, why, len);
	if (rc < 0)
		goto out;
	if (!o->quiet) {
		printf("xring bridge in: %s (JetStream stream %s, consumer %s) -> %s, ring %u%s, "
		       "%s\n",
		       o->subject, js_stream, durable, o->engine, ps.ring,
		       b.resume_tag ? " (resuming)" : "", o->key ? "MACs checked" : "unauthenticated");
		fflush(stdout);
	}
	int map = o->max_ack_pending > 0 ? o->max_ack_pending : 64;
	int fetch = map / 3 < 1 ? 1 : map / 3 > FETCH_MAX ? FETCH_MAX : map / 3;
	struct taker tk = {.b = &b};
	pthread_condattr_t ca;
	pthread_mutex_init(&tk.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* taker_room's deadline */
	pthread_cond_init(&tk.cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = taker_start(&tk)) < 0) {
		snprintf(why, len, "cannot start the thread that takes messages: %s", strerror(-rc));
		goto out;
	}
	/* This thread's last look at the clock: a step that took far longer
	 * than it may (PAUSED_NS) means a pause. */
	uint64_t last = xr__now_ns();
	while (!atomic_load_explicit(o->stop, memory_order_relaxed)) {
		natsMsgList list = {0};
		int said = taker_said(&tk);
		if (said == TAKE_GAP) {
			/* The rest was dropped unacknowledged; from the one
			 * expected, they come again in order. The taker is idle:
			 * b is this thread's again until the next hand_over().
			 * Looked at before the remake: a gap is also what another
			 * bridge in pulling from the consumer makes (one that took
			 * it over while this one was paused), and a remake would
			 * take it back from it. */
			b.st->gaps++;
			rc = still_ours(&b, why, len);
			if (rc == 0)
				rc = subscribe(&b, b.next_sseq, why, len);
			if (rc < 0)
				break;
			taker_go_on(&tk);
			last = xr__now_ns();
			continue;
		}
		if (said != 0)
			break; /* the taker's end: taker_stop() says it */
		err = 0;
		if (xr__now_ns() >= b.claim_at && (rc = still_ours(&b, why, len)) < 0)
			break;
		natsStatus s = natsSubscription_Fetch(&list, b.sub, fetch, 500, &err);
		/* A step that took far longer than it may (a fetch 500 ms at
		 * most, a wait below 100 ms, the rest of a round less): this
		 * process was paused (SIGSTOP, a VM's pause), and another
		 * bridge in may have taken the consumer meanwhile (a live
		 * one's pull requests last 0.5 s). Asked before the list is
		 * handed over: what is not acknowledged goes to the other. */
		bool paused = took_long(&last);
		/* While the taker is behind (a slow destination), the claim is
		 * still looked at every CLAIM_EVERY_NS and a stop heard. */
		while (s == NATS_OK && rc == 0 && !taker_room(&tk, 100000000ull) &&
		       !atomic_load_explicit(o->stop, memory_order_relaxed)) {
			paused |= took_long(&last);
			if (last >= b.claim_at)
				rc = still_ours(&b, why, len);
		}
		paused |= took_long(&last);
		if (rc == 0 && paused) {
			rc = still_ours(&b, why, len);
			last = xr__now_ns();
		}
		if (rc < 0 || atomic_load_explicit(o->stop, memory_order_relaxed)) {
			natsMsgList_Destroy(&list);
			break;
		}
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK)
			continue; /* a lost connection: the library reconnects */
		hand_over(&tk, &list);
	}
	/* rc < 0: this thread's own end (still_ours, subscribe: why says
	 * it); else the taker's, if any. */
	int t = taker_stop(&tk);
	if (rc == 0 && t == -EKEYREJECTED) {
		rc = t;
		snprintf(why, len, "%s", b.stop_why);
	} else if (rc == 0 && t < 0 && t != -ETIMEDOUT && t != -EINTR) {
		rc = t; /* a stop's -ETIMEDOUT or -EINTR: what was not acknowledged comes again */
		snprintf(why, len, "writing engine %s's stream: %s", o->engine, tk.reason);
	}
	pthread_mutex_destroy(&tk.mu);
	pthread_cond_destroy(&tk.cv);
out:
	st->forged_answers = xr__br_claim_ignored(claim);
	natsSubscription_Destroy(b.sub);
	xr__br_claim_drop(claim);
	xr__js_close(nc, js);
	xr_producer_close(b.p);
	free(b.seen);
	free(b.scratch);
	return rc;
}
