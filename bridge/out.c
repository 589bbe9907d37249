/* SPDX-License-Identifier: MIT */
/*
 * `xring bridge out` (bridge.h): a local stream's records to JetStream.
 *
 * Nothing is released before JetStream has it: the reader's batch is held
 * (lossless: the engine waits for the bridge, as for any slow reader) until
 * every message made of it is acknowledged by JetStream, and a publish that
 * fails is tried again with the same message id, which JetStream's
 * duplicate window turns into one message. So a record leaves the ring
 * once, for good, and reaches the subject once.
 *
 * Order. A batch's messages are in flight together, and one can be lost on
 * the way (a server stopped, a stream leader killed) while those after it
 * are stored. Sent again, it is stored after them. Each message names the
 * one before it (wire.h, prev), so bridge in passes over a message whose
 * predecessor it has not written; and every acknowledgement says where
 * the message stands in the stream, so this side sees each message stored
 * before one ahead of it and publishes it again, under a new id, after
 * (complete, pass). Bridge in then takes that copy, in order.
 */
#include "bridge/bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "bridge/js.h"
#include "bridge/state.h"
#include "bridge/wire.h"
#include "shm/layout.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/reader.h"

#define BATCH_MAX 4096 /* records a read takes, so messages a pass makes */

/* An asynchronous publish of the pass under way: where JetStream put it. */
struct flight {
	uint64_t seq;   /* its stream sequence, once acknowledged */
	bool acked;     /* acknowledged (a failure leaves it false) */
	bool dup;       /* acknowledged as a duplicate: of what, complete() does not know */
};

struct out {
	const struct xr_bridge_opts *o;
	struct xr_bridge_stats *st;
	jsCtx *js;
	char js_stream[128];
	uint64_t source, incarnation;
	uint8_t *recs, *msg;
	size_t msg_cap;
	bool have_last[XR_MAX_RINGS];
	uint64_t last[XR_MAX_RINGS];
	/* A batch of the ring went out before any was done (have_last false):
	 * said in the file before its first publish, so that a restart does
	 * not go on from the subject's last message (one stored ahead of a
	 * lost one, perhaps), but sends the ring again from its start. */
	bool started[XR_MAX_RINGS];
	/* The acknowledgements of the asynchronous pass, written by libnats'
	 * thread (on_ack) and read by this one after js_PublishAsyncComplete.
	 * Under mu: an ack given up on (complete() timed out) may still be in
	 * its handler when the next pass begins; gen, bumped under mu at
	 * each pass, tells its writes from the current pass's. */
	pthread_mutex_t mu;
	uint32_t gen;
	struct flight *flights;
	uint32_t n_flights;
	/* The synchronous pass: the furthest stream sequence of the batch so
	 * far; a message acknowledged below it was stored before one ahead of
	 * it, and goes again (pass). */
	uint64_t high;
	uint64_t taken_said;      /* taken ids said on stderr */
	uint32_t fetch_failed;    /* fetches of first copies failed in a row */
	bool fetch_said;
	char state[600];          /* its file (state.h), "" when none */
	bool dirty, state_said;
};

/* The file: where each ring stands, of one source's incarnation. have:
 * 0 nothing sent, 1 last is the last record of a batch done, 2 a batch
 * sent and none done yet (started). Version 1's is the same without 2:
 * read as it is. */
#define OUT_STATE_MAGIC 0x534f4258u /* "XBOS" */
#define OUT_STATE_VERSION 2u
struct out_state {
	uint32_t magic, version;
	uint64_t source, incarnation;
	uint8_t have[XR_MAX_RINGS];
	uint64_t last[XR_MAX_RINGS];
};

static void state_load(struct out *b)
{
	struct out_state s;

	if (!b->state[0] || xr__br_state_load(b->state, &s, sizeof(s)) != (long)sizeof(s) ||
	    s.magic != OUT_STATE_MAGIC || (s.version != OUT_STATE_VERSION && s.version != 1) ||
	    s.source != b->source || s.incarnation != b->incarnation)
		return; /* none, or of another run of the engine: its rings are new */
	for (uint32_t k = 0; k < XR_MAX_RINGS; k++)
		if (s.have[k] == 1) {
			b->have_last[k] = true;
			b->last[k] = s.last[k];
		} else if (s.have[k] == 2) {
			b->started[k] = true;
		}
}

static void state_save(struct out *b)
{
	struct out_state s = {.magic = OUT_STATE_MAGIC, .version = OUT_STATE_VERSION,
			      .source = b->source, .incarnation = b->incarnation};

	if (!b->state[0] || !b->dirty)
		return;
	for (uint32_t k = 0; k < XR_MAX_RINGS; k++) {
		s.have[k] = b->have_last[k] ? 1 : b->started[k] ? 2 : 0;
		s.last[k] = b->last[k];
	}
	int rc = xr__br_state_save(b->state, &s, sizeof(s));
	if (rc == 0) {
		b->dirty = false;
	} else if (!b->state_said && !b->o->quiet) {
		fprintf(stderr, "xring bridge: cannot write %s (%s): after a restart this bridge "
			"will go on from the subject's last message\n", b->state, strerror(-rc));
		b->state_said = true;
	}
}

static void subject_of(const struct out *b, uint32_t ring, char *out, size_t len)
{
	snprintf(out, len, "%s.%016" PRIx64 ".%u", b->o->subject, b->source, ring);
}


/* The message's id: its first and last record, so that the same id is the
 * same records. (The first alone once named two messages of different
 * records, when a restarted out published again from further back and cut
 * its messages elsewhere: JetStream dropped the second as a duplicate, and
 * the records only it carried were lost.) A copy sent after a message that
 * came late (pass) adds after, that message's stream sequence: the copy's
 * id is new to JetStream, and the same for the same copy. */
static void msg_id(const struct out *b, uint32_t ring, uint64_t first_seq, uint64_t last_seq,
		   uint64_t after, uint64_t nonce, char *id, size_t len)
{
	int n = snprintf(id, len, "%016" PRIx64 "-%" PRIx64 "-%u-%" PRIu64 "-%" PRIu64, b->source,
			 b->incarnation, ring, first_seq, last_seq);
	if (after && n > 0 && (size_t)n < len)
		n += snprintf(id + n, len - (size_t)n, "-after-%" PRIu64, after);
	if (nonce && n > 0 && (size_t)n < len)
		n += snprintf(id + n, len - (size_t)n, "-n%016" PRIx64, nonce);
	/* With a key, the id ends with a MAC of itself: anyone who may
	 * publish on the subject reads the ids that went, and could publish
	 * junk under the next ones first, which JetStream would then keep in
	 * place of the real messages (a duplicate's ack is its first copy's). */
	uint8_t mac[XR_BR_MAC_LEN];
	const void *parts[] = {id};
	size_t lens[] = {n > 0 ? (size_t)n : 0};
	if (b->o->key && n > 0 && (size_t)n + 17 < len &&
	    xr__br_hmac(b->o->key, parts, lens, 1, mac) == 0)
		for (int i = 0; i < 8; i++)
			n += snprintf(id + n, len - (size_t)n, "%s%02x", i ? "" : "-", mac[i]);
}

/* Whether the message JetStream holds at seq is the one sealed in b->msg
 * (len bytes): 1, 0 (another's), or -EAGAIN (not known now). */
#define FETCH_TRIES 3 /* fetches of a first copy that fail before it is believed */

static int ours_at(struct out *b, uint64_t seq, long len)
{
	natsMsg *m = NULL;
	jsErrCode err = 0;
	natsStatus s = js_GetMsg(&m, b->js, b->js_stream, seq, NULL, &err);

	if (s == NATS_NOT_FOUND)
		return 0; /* gone (the stream's limits): goes again, under an id of its own */
	if (s != NATS_OK) {
		/* Not fetched (this user may not, or the server is away):
		 * asked again, then believed, said once. Better a duplicate
		 * believed than a bridge that never goes on. */
		if (++b->fetch_failed < FETCH_TRIES)
			return -EAGAIN;
		b->fetch_failed = 0;
		if (!b->fetch_said && !b->o->quiet) {
			fprintf(stderr, "xring bridge: cannot fetch JetStream's first copy of a "
				"duplicate (%s, %d): duplicates are believed to be this bridge's "
				"(let its NATS user fetch from $JS.API.STREAM.MSG.GET.%s)\n",
				natsStatus_GetText(s), (int)err, b->js_stream);
			b->fetch_said = true;
		}
		return 1;
	}
	b->fetch_failed = 0;
	int same = natsMsg_GetDataLength(m) == (int)len &&
		   memcmp(natsMsg_GetData(m), b->msg, (size_t)len) == 0;
	natsMsg_Destroy(m);
	return same;
}

/* Publishes one sealed message until JetStream takes it (or the stop):
 * 0 and its stream sequence in *seq, or -EINTR, -EMSGSIZE. A duplicate's
 * ack names its first copy, which is looked at: anyone who saw the id go
 * by (a message lost on the way is seen by the subject's subscribers all
 * the same) could have published something else under it first. Not ours,
 * the message goes under an id of its own that no one can know. */
static int publish(struct out *b, uint32_t ring, uint64_t first_seq, uint64_t last_seq,
		   uint64_t after, long len, uint64_t *seq)
{
	char subj[300], id[160];
	int wait = 50;

	subject_of(b, ring, subj, sizeof(subj));
	msg_id(b, ring, first_seq, last_seq, after, 0, id, sizeof(id));
	for (;;) {
		natsMsg *m = NULL;
		jsPubAck *ack = NULL;
		jsPubOptions po;
		jsErrCode err = 0;
		jsPubOptions_Init(&po);
		po.MsgId = id;
		po.MaxWait = 5000;
		natsStatus s = natsMsg_Create(&m, subj, NULL, (const char *)b->msg, (int)len);
		if (s == NATS_OK)
			s = js_PublishMsg(&ack, b->js, m, &po, &err);
		bool dup = s == NATS_OK && ack->Duplicate;
		if (s == NATS_OK)
			*seq = ack->Sequence;
		natsMsg_Destroy(m);
		jsPubAck_Destroy(ack);
		int ours = dup ? ours_at(b, *seq, len) : 1; /* (s not OK: not looked at) */
		if (s == NATS_OK && ours == 1)
			return 0;
		if (s == NATS_OK && ours == 0) {
			/* Any new id will do: with a key, its MAC is what no one
			 * else can make. */
			uint64_t nonce = xr__now_ns() | 1;
			b->st->taken_ids++;
			if (!b->o->quiet && b->st->taken_ids >= b->taken_said * 2) {
				fprintf(stderr, "xring bridge: message id %.*s was taken by a message "
					"that is not this bridge's (JetStream sequence %" PRIu64 "): sent "
					"under an id of its own (%" PRIu64 " so far)\n", 60, id, *seq,
					b->st->taken_ids);
				b->taken_said = b->st->taken_ids;
			}
			msg_id(b, ring, first_seq, last_seq, after, nonce, id, sizeof(id));
			continue;
		}
		if (s == NATS_OK)
			s = NATS_TIMEOUT; /* its first copy not known now: again */
		if (atomic_load_explicit(b->o->stop, memory_order_relaxed))
			return -EINTR;
		if (s == NATS_MAX_PAYLOAD)
			return -EMSGSIZE; /* it never will go: said at the start, or here */
		b->st->retries++;
		if (!b->o->quiet && b->st->retries % 20 == 1)
			fprintf(stderr, "xring bridge: publish to %s: %s (%d); trying again\n", subj,
				natsStatus_GetText(s), (int)err);
		xr__sleep_ns((uint64_t)wait * 1000000ull);
		wait = wait < 1000 ? 2 * wait : 1000;
	}
}

#define FLIGHT_HDR "Xring-Flight" /* "gen.index": on_ack's way back to it */

/* Sends one sealed message without waiting for its ack (complete()
 * waits; on_ack notes where it went): 0, or -EIO (not even sent: the
 * batch goes again one by one). */
static int publish_async(struct out *b, uint32_t ring, uint64_t first_seq, uint64_t last_seq,
			 long len)
{
	char subj[300], id[160], fl[32];
	natsMsg *m = NULL;
	jsPubOptions po;

	if (b->n_flights >= BATCH_MAX)
		return -EIO; /* cannot be: a message has a record at least */
	subject_of(b, ring, subj, sizeof(subj));
	msg_id(b, ring, first_seq, last_seq, 0, 0, id, sizeof(id));
	snprintf(fl, sizeof(fl), "%u.%u", b->gen, b->n_flights);
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.MaxWait = 10000;
	natsStatus s = natsMsg_Create(&m, subj, NULL, (const char *)b->msg, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, FLIGHT_HDR, fl);
	if (s == NATS_OK) {
		pthread_mutex_lock(&b->mu); /* on_ack reads n_flights */
		b->flights[b->n_flights++] = (struct flight){0};
		pthread_mutex_unlock(&b->mu);
		s = js_PublishMsgAsync(b->js, &m, &po);
	}
	natsMsg_Destroy(m); /* NULL once the library took it */
	if (s == NATS_MAX_PAYLOAD)
		return -EMSGSIZE;
	return s == NATS_OK ? 0 : -EIO;
}

/* The last record this source published from ring k, from the subject's
 * last message: a bridge without its own file goes on after it. */
static void resume_point(struct out *b, uint32_t k)
{
	char subj[300];
	natsMsg *m = NULL;
	jsErrCode err = 0;
	struct xr_br_msg pm;
	const char *why;

	subject_of(b, k, subj, sizeof(subj));
	if (js_GetLastMsg(&m, b->js, b->js_stream, subj, NULL, &err) != NATS_OK)
		return;
	int rc = xr__br_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), XR_BR_REC_MAX,
			      b->o->key, b->recs, XR_BR_RAW_MAX, &pm, &why);
	if (rc < 0 && !b->o->quiet)
		/* Not ours (a forger's, or another key's): no resume point from
		 * it. This bridge's own file says where it stood; without one,
		 * what the ring holds goes again, and bridge in skips what it
		 * had (its sources' seqs). */
		fprintf(stderr, "xring bridge: the last message on %s is not a bridge's of this "
			"key (%s): ring %u goes on from %s\n", subj, why, k,
			b->have_last[k] ? "this bridge's own record of it" : "what it holds");
	if (rc == 0 && pm.source == b->source && pm.incarnation == b->incarnation && pm.ring == k) {
		size_t it = 0;
		uint64_t seq, last = 0;
		const void *rec;
		uint32_t len;
		while (xr__br_next(&pm, &it, &seq, &rec, &len))
			last = seq;
		/* Only without a file of this bridge's own. Past the file's
		 * (a bridge killed before writing it), the subject's last can
		 * have been stored before a message ahead of it, lost on the
		 * way: going on from the file sends the batch again, and the
		 * order is put right (complete, pass). Without a file, that
		 * lost message is lost for good (docs/bridge.md, "Order"). Nor
		 * when the file says a batch went before any was done. */
		if (!b->have_last[k] && !b->started[k]) {
			b->last[k] = last;
			b->have_last[k] = true;
		}
	}
	natsMsg_Destroy(m);
}

/* The source: this host's engine/stream (two hosts' engines of one name
 * are two sources). */
static uint64_t source_of(const char *engine, const char *stream)
{
	char host[256] = "", name[600];

	gethostname(host, sizeof(host) - 1);
	snprintf(name, sizeof(name), "%s:%s", host, engine);
	return xr__br_source(name, stream);
}

/* The engine's run: its start in clock ticks since boot, which another
 * boot may repeat, with the boot's id. */
static uint64_t incarnation_of(uint64_t engine_start)
{
	char boot[64] = "";
	uint64_t h = 0xcbf29ce484222325ull;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t n = read(fd, boot, sizeof(boot) - 1);
		(void)n;
		close(fd);
	}
	for (const char *c = boot; *c && *c != '\n'; c++)
		h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(engine_start >> (8 * i))) * 0x100000001b3ull;
	return h;
}

/* What one pass over a batch sent. */
struct sent {
	uint64_t messages, records, bytes, last;
	bool any;
};

/* Called on libnats' thread for each asynchronous publish, acknowledged
 * or failed (the server's error, or no ack in time): notes where
 * JetStream put it, for complete(). */
static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	struct out *b = arg;
	const char *fl = NULL;
	unsigned gen, i;

	(void)js;
	(void)pae;
	if (natsMsgHeader_Get(m, FLIGHT_HDR, &fl) == NATS_OK && fl &&
	    sscanf(fl, "%u.%u", &gen, &i) == 2) {
		pthread_mutex_lock(&b->mu);
		if (gen == b->gen && i < b->n_flights && pa)
			b->flights[i] = (struct flight){.seq = pa->Sequence, .acked = true,
							.dup = pa->Duplicate};
		pthread_mutex_unlock(&b->mu);
	}
	natsMsg_Destroy(m); /* ours, with an ack handler */
}

static int seal_and_publish(struct out *b, struct xr_br_build *bb, uint64_t first_seq,
			    bool async, struct sent *sn)
{
	if (!bb->h.count)
		return 0;
	long len = xr__br_seal(bb, b->o->zstd, b->o->key, b->msg, b->msg_cap);
	if (len < 0)
		return (int)len;
	int rc;
	if (async) {
		rc = publish_async(b, bb->h.ring, first_seq, bb->last_seq, len);
	} else {
		uint64_t seq = 0;
		rc = publish(b, bb->h.ring, first_seq, bb->last_seq, 0, len, &seq);
		if (rc == 0 && seq < b->high) {
			/* Stored before a message ahead of it (which bridge in
			 * has not written when it comes to this one, and so
			 * passes over it): again, after. */
			b->st->copies++;
			rc = publish(b, bb->h.ring, first_seq, bb->last_seq, b->high, len, &seq);
		}
		if (rc == 0 && seq > b->high)
			b->high = seq;
	}
	if (rc == 0) {
		sn->messages++;
		sn->records += bb->h.count;
		sn->bytes += (uint64_t)len;
		sn->last = bb->last_seq;
		sn->any = true;
	}
	return rc;
}

/* One pass over a batch: its records in messages of at most max_bytes,
 * each naming the one before (prev), each published in turn (async:
 * without waiting for the acks, which complete() waits for). The same
 * records always make the same messages (the same cuts, so the same ids):
 * a second pass is deduplicated by JetStream wherever the first got
 * through. */
static int pass(struct out *b, const xr_batch *bt, bool async, struct sent *sn)
{
	struct xr_br_build bb;
	const xr_frame *f = bt->first;
	/* base: where the batch begins, the last record published before it
	 * (after a restart, from the file): the prev of its first message and
	 * the base of each (wire.h). */
	const uint64_t base = b->last[bt->ring];
	const bool has_base = b->have_last[bt->ring];
	uint64_t first = 0, prev = base;
	int rc = 0;

	pthread_mutex_lock(&b->mu);
	b->gen++;
	b->n_flights = 0;
	pthread_mutex_unlock(&b->mu);
	b->high = 0;
	xr__br_begin(&bb, b->recs, b->o->max_bytes, b->source, b->incarnation, bt->ring,
		     has_base ? &prev : NULL, has_base ? &base : NULL);
	for (uint32_t i = 0; i < bt->count && rc == 0; i++, f = i < bt->count ? xr_frame_next(f) : f) {
		if (bt->frames)
			f = bt->frames[i];
		if (has_base && f->seq <= base)
			continue; /* published before a restart */
		if (!bb.h.count)
			first = f->seq;
		rc = xr__br_add(&bb, f->seq, xr_frame_data(f), f->len);
		if (rc == -ENOSPC && !bb.h.count)
			return -EMSGSIZE; /* one record past --max-bytes */
		if (rc == -ENOSPC) {
			/* A ring's first message (no prev: nothing of it went
			 * before) goes alone, acknowledged before the rest: had
			 * it been lost on the way while they were stored, bridge
			 * in, with nothing of the ring yet, could not tell its
			 * followers from a ring it joins in the middle. */
			rc = seal_and_publish(b, &bb, first, async && (bb.h.flags & XR_BR_PREV), sn);
			prev = bb.last_seq;
			xr__br_begin(&bb, b->recs, b->o->max_bytes, b->source, b->incarnation,
				     bt->ring, &prev, has_base ? &base : NULL);
			first = f->seq;
			if (rc == 0)
				rc = xr__br_add(&bb, f->seq, xr_frame_data(f), f->len);
		}
	}
	if (rc == 0)
		rc = seal_and_publish(b, &bb, first, async && (bb.h.flags & XR_BR_PREV), sn);
	return rc;
}

/* Waits for every asynchronous publish's ack: 0 when all came, each
 * stored after the one before it and none a duplicate, else -EAGAIN (one
 * failed, none came in time, one was stored before a message ahead of it,
 * or one was a duplicate, whose first copy the pass one message at a time
 * looks at: what is left is dropped, and the batch goes again one message
 * at a time, which puts it right). */
static int complete(struct out *b)
{
	jsPubOptions po;
	natsMsgList left = {0};
	bool in_order = true;

	jsPubOptions_Init(&po);
	po.MaxWait = 10000;
	natsStatus s = js_PublishAsyncComplete(b->js, &po);
	if (s != NATS_OK && js_PublishAsyncGetPendingList(&left, b->js) == NATS_OK)
		natsMsgList_Destroy(&left);
	pthread_mutex_lock(&b->mu);
	for (uint32_t i = 0; i < b->n_flights && in_order; i++)
		in_order = b->flights[i].acked && !b->flights[i].dup &&
			   (!i || b->flights[i].seq > b->flights[i - 1].seq);
	b->gen++; /* what comes for this pass now is too late to count */
	pthread_mutex_unlock(&b->mu);
	return s == NATS_OK && in_order ? 0 : -EAGAIN;
}

/* One batch to JetStream, every message acknowledged, in order, before it
 * returns: its messages all in flight at once, then, should any fail or
 * be stored out of order, again one at a time, each tried until JetStream
 * takes it, and sent again after should it have been stored before one
 * ahead of it. */
static int send_batch(struct out *b, const xr_batch *bt)
{
	struct sent sn = {0};

	if (!b->have_last[bt->ring] && !b->started[bt->ring]) {
		b->started[bt->ring] = true;
		b->dirty = true;
		state_save(b);
	}
	int rc = pass(b, bt, true, &sn);

	if (rc == 0)
		rc = complete(b);
	else if (rc != -EMSGSIZE)
		(void)complete(b); /* what went, before the pass again */
	if (rc == -EAGAIN || (rc < 0 && rc != -EMSGSIZE && rc != -EINTR)) {
		b->st->retries++;
		sn = (struct sent){0};
		rc = pass(b, bt, false, &sn);
	}
	if (rc == 0 && sn.any) {
		b->st->messages += sn.messages;
		b->st->records += sn.records;
		b->st->bytes += sn.bytes;
		b->last[bt->ring] = sn.last;
		b->have_last[bt->ring] = true;
		b->dirty = true;
	}
	return rc;
}

int xr__bridge_out(const struct xr_bridge_opts *o, struct xr_bridge_stats *st, char *why,
		   size_t len)
{
	struct out b = {.o = o, .st = st};
	natsConnection *nc = NULL;
	xr_reader *r = NULL;
	xr_stream_facts f;
	int rc;

	if (o->js_stream)
		snprintf(b.js_stream, sizeof(b.js_stream), "%s", o->js_stream);
	else
		xr__js_default_name(o->subject, b.js_stream, sizeof(b.js_stream));
	/* A batch's messages in flight together, each acknowledged before
	 * the batch is released (send_batch). */
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 64;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = &b;
	pthread_mutex_init(&b.mu, NULL);
	rc = xr__js_connect(o->nats, &jo, &nc, &b.js, why, len);
	if (rc == 0)
		rc = xr__js_ensure_stream(b.js, b.js_stream, o->subject, o->replicas, why, len);
	if (rc < 0)
		goto out;
	/* A message larger than the server takes is refused for ever: said
	 * now, not retried. (Its id header, a few hundred bytes, beside.) */
	int64_t max_payload = natsConnection_GetMaxPayload(nc);
	size_t largest = 64 + (o->zstd ? ZSTD_compressBound(o->max_bytes) : o->max_bytes) + 512;
	if (max_payload > 0 && largest > (size_t)max_payload) {
		rc = -EMSGSIZE;
		snprintf(why, len, "--max-bytes %u makes messages of up to %zu bytes, and the NATS "
			 "server takes at most %lld (its max_payload): give --max-bytes %lldK or less, "
			 "or raise max_payload", o->max_bytes, largest, (long long)max_payload,
			 (long long)(max_payload / 100 * 99 - 4096) / 1024);
		goto out;
	}
	xr_reader_opts ro = {.stream = o->stream, .label = "bridge out",
			     .policy = o->lossy ? XR_POLICY_LOSSY : XR_POLICY_LOSSLESS,
			     .history = XR_HISTORY_ALL};
	rc = xr_reader_attach(o->engine, &ro, &r);
	if (rc < 0) {
		snprintf(why, len, "cannot read engine %s: %s", o->engine,
			 xr_last_reason()[0] ? xr_last_reason() : xr_strerror(rc));
		goto out;
	}
	xr_reader_stream_facts(r, &f);
	b.source = source_of(o->engine, f.name);
	b.incarnation = incarnation_of(f.engine_start);
	b.msg_cap = 64 + (o->max_bytes > XR_BR_RAW_MAX ? XR_BR_RAW_MAX : o->max_bytes) * 2 + 4096;
	b.recs = malloc(XR_BR_RAW_MAX);
	b.msg = malloc(b.msg_cap);
	b.flights = calloc(BATCH_MAX, sizeof(*b.flights));
	if (!b.recs || !b.msg || !b.flights) {
		rc = -ENOMEM;
		snprintf(why, len, "out of memory");
		goto out;
	}
	char state_key[300];
	snprintf(state_key, sizeof(state_key), "%s-%s", b.js_stream, f.name);
	if (xr__br_state_path(o->engine, "out", state_key, b.state, sizeof(b.state)) < 0)
		b.state[0] = '\0';
	state_load(&b);
	for (uint32_t k = 0; k < f.n_rings && k < XR_MAX_RINGS; k++)
		resume_point(&b, k);
	if (!o->quiet) {
		printf("xring bridge out: %s/%s -> %s (JetStream stream %s), %s%s, %s\n",
		       o->engine, f.name, o->subject, b.js_stream, o->lossy ? "lossy" : "lossless",
		       o->zstd ? ", zstd" : "", o->key ? "MACed" : "unauthenticated");
		fflush(stdout);
	}
	while (!atomic_load_explicit(o->stop, memory_order_relaxed)) {
		xr_batch bt;
		int n = xr_reader_read(r, 1, BATCH_MAX, 50000000, &bt);
		if (n == 0 || n == -EINTR)
			continue; /* a signal: the loop's test says whether it was a stop */
		if (n == XR_ECLOSED) {
			rc = 0; /* the engine stopped: everything it published went */
			break;
		}
		if (n < 0) {
			rc = n;
			snprintf(why, len, "reading engine %s: %s", o->engine, xr_strerror(n));
			break;
		}
		rc = send_batch(&b, &bt);
		state_save(&b); /* before the release: what the file says went, went */
		xr_batch_release(r, &bt);
		if (rc == -EINTR) {
			rc = 0;
			break;
		}
		if (rc == -EMSGSIZE) {
			snprintf(why, len, "a record of the stream is larger than --max-bytes %u, or a "
				 "message than the server's max_payload: give more --max-bytes, or raise "
				 "max_payload", o->max_bytes);
			break;
		}
		if (rc < 0) {
			snprintf(why, len, "cannot make a bridge message: %s", xr_strerror(rc));
			break;
		}
	}
out:
	if (r) {
		xr_reader_stats rs;
		if (xr_reader_stats_get(r, &rs) == 0)
			st->dropped = rs.dropped;
		xr_reader_detach(r);
	}
	xr__js_close(nc, b.js); /* no ack handler runs past it */
	free(b.recs);
	free(b.msg);
	free(b.flights);
	pthread_mutex_destroy(&b.mu);
	return rc;
}
