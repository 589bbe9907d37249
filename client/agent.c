/* SPDX-License-Identifier: MIT */
/*
 * Acting for seats, the agent's side (xring/agent.h). Two connections to
 * the engine: one for the agent verbs (AGENT_OPEN, SEATS_CLAIM, SEATS_
 * RELEASE), whose end is the agent's end, and the reader's, which reads
 * the agent's stream lossy (a slow or stopped agent gets fallbacks, never
 * holds the engine up) through a filter of its claims' games and players.
 * That filter is a product of ranges, a superset of the seats when claims
 * differ in their players, so each batch is checked record by record and
 * only the agent's seats are handed out.
 *
 * ORDERING: AC1. An answer is one 64-bit store into the seat's slot, the
 * record's tag in the high half and the action in the low: the shard
 * takes it with one relaxed load (AC2, engine/shard.c) and needs nothing
 * else from this process, so relaxed would do; the store is release so
 * that a tool reading slots sees them no earlier than the agent's own
 * writes before them.
 *
 * ORDERING: CN1-CN4. xr_agent_cancel() may run on any thread (or in a
 * signal handler) while the agent's thread replaces its reader (a claim,
 * a release, an eviction) and frees the old one. The canceller counts
 * itself in (CN1, seq_cst) and then loads the reader (CN2, seq_cst); the
 * agent's thread unpublishes the reader (CN3, seq_cst) and then waits for
 * the count to be 0 (CN4, seq_cst; the canceller's way out is a release)
 * before freeing it. In the one total order, either CN1 comes before CN4
 * (the free waits for the cancel) or CN3 comes before CN2 (the canceller
 * sees no reader). A cancel is also remembered (pending) until a recv
 * ends with -EINTR, and forwarded to each new reader, so that one left on
 * a reader that was replaced is not lost.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/reader_priv.h"
#include "control/client.h"
#include "control/proto.h"
#include "shm/arena_priv.h"
#include "shm/snapshot.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/agent.h"
#include "xring/error.h"

#define XR_AGENT_DEFAULT_CAPACITY 65536u

struct aclaim {
	uint32_t id, lo, hi, players, base;
};

struct xr_agent {
	char name[XR_NAME_MAX + 1];
	char stream[XR_STREAM_NAME_MAX + 1];
	char label[16];
	xr_agent_opts opts;
	pid_t pid;
	int sock;
	uint32_t agent, capacity;
	uint32_t depth;                 /* slot sets per game: --input-delay + 1 */
	_Atomic uint64_t *page;
	size_t page_bytes;
	struct aclaim claims[XR_SEAT_CLAIMS_MAX];
	uint32_t n_claims;
	/* Claims a reattach has still to make again: after one that found no
	 * engine (no connection, sock -1), or one whose claims were refused
	 * (reclaiming: connected to the new engine, the rate refused one: the
	 * next reattach goes on from there rather than start over). */
	struct aclaim lost[XR_SEAT_CLAIMS_MAX];
	uint32_t n_lost;
	bool reclaiming;
	xr_reader *r;                   /* NULL while it holds no claim */
	_Atomic(xr_reader *) live_r;    /* r, for xr_agent_cancel(): CN1-CN4 */
	_Atomic uint32_t cancelling;    /* cancels under way */
	_Atomic uint32_t cancel_pending; /* a cancel no recv has ended on yet */
	xr_exp_template t;
	const xr_frame **frames;        /* the held batch's seats' records */
	struct seen {                   /* ...as they were when handed out */
		uint64_t seq;
		uint32_t game, player, turn;
		bool final;
	} *seen;
	uint32_t frames_cap;
	uint32_t count;                 /* records of the held batch */
	bool held;
	xr_batch cur;
	uint64_t records, sent, skipped, evictions;
	/* Records lost: by the readers it had before this one (each one's
	 * stats when it went), and by this one as its batches said them
	 * (its stats count more: the losses not said yet). */
	uint64_t dropped, cur_dropped;
};

int xr_fallback_parse(const char *s, uint32_t *out)
{
	static const char *const names[] = {"noop", "repeat", "policy"};

	for (uint32_t i = 0; s && i < 3; i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

const char *xr_fallback_name(uint32_t f)
{
	static const char *const names[] = {"noop", "repeat", "policy"};

	return f < 3 ? names[f] : NULL;
}

static int mine(const xr_agent *a)
{
	if (a->pid == xr__self_pid())
		return 0;
	xr__set_last_reason("this agent was attached by process %d: a forked child attaches "
			    "its own",
			    (int)a->pid);
	return -EINVAL;
}

/* XR_ECLOSED after a reattach that failed: no engine, no page, no seats. */
static int connected(const xr_agent *a)
{
	if (a->sock >= 0)
		return 0;
	xr__set_last_reason("agent of engine '%s': its engine went and xr_agent_reattach() has "
			    "not succeeded since; call it again",
			    a->name);
	return XR_ECLOSED;
}

/* Connects to a->name's engine as an agent with a's options and maps its
 * page of action slots: a->sock, page, agent, capacity, depth. On failure
 * leaves none of them open. */
static int agent_open(xr_agent *a)
{
	const xr_agent_opts *o = &a->opts;
	struct xr_trust trust = {.extra = o->engine_uid ? o->engine_uid : (uid_t)-1};
	struct xr_ctl_agent_open m = {.capacity = o->capacity ? o->capacity
							       : XR_AGENT_DEFAULT_CAPACITY};
	struct xr_ctl_agent_opened r;
	struct xr_ctl_attached att;
	struct ucred peer;
	int afd, pfd = -1, rc;

	memcpy(m.label, a->label, sizeof(m.label) - 1);
	a->sock = xr__ctl_connect(a->name, &trust, &peer);
	if (a->sock < 0) {
		rc = a->sock;
		a->sock = -1;
		if (rc == -ENOENT)
			xr__set_last_reason("no engine '%s' is running (no control socket)", a->name);
		return rc;
	}
	if ((rc = xr__ctl_attach(a->sock, &afd, &att)) < 0)
		goto fail;
	close(afd);
	rc = xr__ctl_request(a->sock, XR_CTL_AGENT_OPEN, &m, sizeof(m), XR_CTL_AGENT_OPENED, &r,
			     sizeof(r), NULL, &pfd);
	if (rc < 0)
		goto fail;
	if (pfd < 0 || !r.block || r.block % XR_SEAT_BLOCK ||
	    r.block > XR_SEAT_BLOCK * XR_SEAT_DEPTH_MAX || r.capacity != m.capacity ||
	    r.page_bytes != (uint64_t)m.capacity * r.block || r.agent >= XR_MAX_AGENTS) {
		xr__set_last_reason("the engine's reply is not the xring control protocol");
		rc = -EPROTO;
		goto fail;
	}
	/* The engine sealed the page's size: mapping it all is safe. */
	void *p = mmap(NULL, r.page_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		xr__set_last_reason("cannot map the agent's page: %s", strerror(-rc));
		goto fail;
	}
	close(pfd);
	a->page = p;
	a->page_bytes = r.page_bytes;
	a->agent = r.agent;
	a->capacity = r.capacity;
	a->depth = r.block / XR_SEAT_BLOCK;
	return 0;
fail:
	if (pfd >= 0)
		close(pfd);
	close(a->sock);
	a->sock = -1;
	return rc;
}

int xr_agent_attach(const char *engine, const xr_agent_opts *opts, xr_agent **out)
{
	xr_agent_opts o = opts ? *opts : (xr_agent_opts){0};
	int rc;

	if (!engine || !out || strlen(engine) > XR_NAME_MAX ||
	    (o.stream && strlen(o.stream) > XR_STREAM_NAME_MAX))
		return -EINVAL;
	xr__set_last_reason("%s", "");
	xr_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->pid = xr__self_pid();
	a->sock = -1;
	snprintf(a->name, sizeof(a->name), "%s", engine);
	snprintf(a->stream, sizeof(a->stream), "%s", o.stream ? o.stream : XR_DEFAULT_STREAM);
	snprintf(a->label, sizeof(a->label), "%s",
		 o.label ? o.label : program_invocation_short_name);
	a->opts = o;
	a->opts.stream = NULL; /* the caller's string: a->stream keeps it */
	a->opts.label = NULL;
	if ((rc = agent_open(a)) < 0) {
		xr_agent_detach(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* The claim holding (game, player), or NULL. */
static const struct aclaim *seat(const xr_agent *a, uint32_t game, uint32_t p)
{
	for (uint32_t i = 0; i < a->n_claims; i++) {
		const struct aclaim *c = &a->claims[i];
		if (game >= c->lo && game <= c->hi && p < 8 && (c->players >> p & 1u))
			return c;
	}
	return NULL;
}

static void drop_held(xr_agent *a)
{
	if (a->held && a->r)
		xr_batch_release(a->r, &a->cur);
	a->held = false;
}

/* A reader of the claims' seats (none: no reader), from the newest
 * record on. */
static int resubscribe(xr_agent *a)
{
	xr_id_range games[XR_SEAT_CLAIMS_MAX], players[8];
	uint32_t np = 0, mask = 0;

	drop_held(a);
	if (a->r) {
		xr_reader_stats st;
		/* An evicted reader has no stats: what its batches said. */
		a->dropped += xr_reader_stats_get(a->r, &st) == 0 ? st.dropped : a->cur_dropped;
		a->cur_dropped = 0;
		xr_store_sc(&a->live_r, NULL);         /* CN3 */
		while (xr_load_sc(&a->cancelling))     /* CN4 */
			xr_cpu_relax();
		xr_reader_detach(a->r);
		a->r = NULL;
	}
	if (!a->n_claims)
		return 0;
	for (uint32_t i = 0; i < a->n_claims; i++) {
		games[i] = (xr_id_range){a->claims[i].lo, a->claims[i].hi};
		mask |= a->claims[i].players;
	}
	for (uint32_t p = 0; p < 8; p++)
		if (mask >> p & 1u) {
			if (np && players[np - 1].hi == p - 1)
				players[np - 1].hi = p;
			else
				players[np++] = (xr_id_range){p, p};
		}
	xr_filter f = {.games = games, .n_games = a->n_claims, .players = players,
		       .n_players = np};
	xr_reader_opts ro = {.stream = a->stream, .policy = XR_POLICY_LOSSY, .label = a->label,
			     .filter = &f, .wait = a->opts.wait, .engine_uid = a->opts.engine_uid,
			     .short_lease = 1};
	int rc = xr_reader_attach(a->name, &ro, &a->r);
	if (rc < 0) {
		a->r = NULL;
		return rc;
	}
	xr_stream_facts sf;
	xr_reader_stream_facts(a->r, &sf);
	if (sf.record_kind != XR_RECORD_EXPERIENCE ||
	    xr_exp_template_init(&a->t, &sf.shape) < 0) {
		xr__set_last_reason("stream %s does not carry a game's Experience records",
				    a->stream);
		xr_reader_detach(a->r);
		a->r = NULL;
		return -EINVAL;
	}
	xr_store_sc(&a->live_r, a->r);
	/* A cancel that reached only the old reader (or none) holds here. */
	if (xr_load_sc(&a->cancel_pending))
		xr_reader_cancel(a->r);
	return 0;
}

/* Asks the engine for claims[i] (players as the request gives them: 0 is
 * every player), which the reader's filter holds already; on success the
 * entry gets its id, players and base. 0, or as xr_agent_claim(). */
static int send_claim(xr_agent *a, uint32_t i, uint32_t players)
{
	struct aclaim *c = &a->claims[i];
	struct xr_ctl_seats_claim m = {.lo = c->lo, .hi = c->hi, .players = players};
	struct xr_ctl_seats_claimed r;
	int rc = xr__ctl_request(a->sock, XR_CTL_SEATS_CLAIM, &m, sizeof(m), XR_CTL_SEATS_CLAIMED,
				 &r, sizeof(r), NULL, NULL);

	if (rc < 0)
		return rc;
	if (r.lo != c->lo || r.hi != c->hi || r.players >> 8 || !r.players ||
	    (uint64_t)r.base + ((uint64_t)c->hi - c->lo + 1) > a->capacity) {
		xr__set_last_reason("the engine's reply is not the xring control protocol");
		return -EPROTO;
	}
	c->id = r.claim;
	c->players = r.players;
	c->base = r.base;
	return 0;
}

/* Back to the reader of the claims held, keeping the reason of the error
 * that brought it here. */
static void resubscribe_after(xr_agent *a)
{
	char why[XR_CTL_REASON_MAX];

	snprintf(why, sizeof(why), "%s", xr_last_reason());
	(void)resubscribe(a); /* best effort */
	xr__set_last_reason("%s", why);
}

int xr_agent_claim(xr_agent *a, uint32_t lo, uint32_t hi, uint32_t players, uint32_t *claim)
{
	if (!a || mine(a) < 0)
		return -EINVAL;
	if (connected(a) < 0)
		return XR_ECLOSED;
	if (lo > hi || players >> 8) {
		xr__set_last_reason("games %u..%u, players 0x%x: not a claim (lo <= hi, players "
				    "bits 0..7)",
				    lo, hi, players);
		return -EINVAL;
	}
	/* Claims a reattach has still to make count: together, the engine's
	 * most. */
	if (a->n_claims + a->n_lost >= XR_SEAT_CLAIMS_MAX) {
		xr__set_last_reason("this agent holds %u claims and has %u to make again at its next "
				    "reattach: %u, its most",
				    a->n_claims, a->n_lost, XR_SEAT_CLAIMS_MAX);
		return -EBUSY;
	}
	/* The reader first, with the new seats in its filter: it starts at
	 * the newest record, and the seats' first records that wait for this
	 * agent come after the claim, so after it. (The other way round, the
	 * records written between the two would be missed, and their games
	 * would wait for their deadline.) */
	a->claims[a->n_claims] = (struct aclaim){.id = 0, .lo = lo, .hi = hi,
						 .players = players ? players : 0xffu};
	a->n_claims++;
	int rc = resubscribe(a);
	if (rc == 0)
		rc = send_claim(a, a->n_claims - 1, players);
	if (rc < 0) {
		a->n_claims--;
		resubscribe_after(a);
		return rc;
	}
	/* A claim to be made again that shares a seat with this one never
	 * could be (the engine refuses an agent's own overlap): this one,
	 * the newer, stands for it. */
	const struct aclaim *c = &a->claims[a->n_claims - 1];
	for (uint32_t i = 0; i < a->n_lost;) {
		const struct aclaim *l = &a->lost[i];
		if (l->lo <= c->hi && c->lo <= l->hi && (l->players & c->players))
			a->lost[i] = a->lost[--a->n_lost];
		else
			i++;
	}
	if (claim)
		*claim = c->id;
	return 0;
}

int xr_agent_release(xr_agent *a, uint32_t claim)
{
	struct xr_ctl_seats_release m = {.claim = claim};

	if (!a || mine(a) < 0)
		return -EINVAL;
	if (connected(a) < 0)
		return XR_ECLOSED;
	int rc = xr__ctl_request(a->sock, XR_CTL_SEATS_RELEASE, &m, sizeof(m), XR_CTL_OK, NULL, 0,
				 NULL, NULL);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < a->n_claims; i++)
		if (a->claims[i].id == claim) {
			a->claims[i] = a->claims[--a->n_claims];
			break;
		}
	return resubscribe(a);
}

static bool past(uint64_t start, int64_t timeout_ns)
{
	return timeout_ns >= 0 && xr__now_ns() - start >= (uint64_t)timeout_ns;
}

/* A wait before asking again what the uid's request rate refused: twice
 * as long each time, 5 ms to 320 ms, give or take a quarter (by pid), so
 * that the uid's processes asking together do not keep spending its new
 * tokens on each other's first requests (a reader's attach is two). */
static void back_off(uint64_t *ns)
{
	uint64_t jitter = (uint64_t)xr__self_pid() * 2654435761u % (*ns / 2 + 1);

	xr__sleep_ns(*ns * 3 / 4 + jitter);
	if (*ns < 320000000ull)
		*ns *= 2;
}

/* The connection, or the engine behind it, is gone. */
static bool conn_lost(int rc)
{
	return rc == XR_ECLOSED || rc == -ECONNRESET || rc == -EPIPE || rc == -ENOTCONN ||
	       rc == -ENOENT || rc == -ECONNREFUSED;
}

/* After a reattach's connection: the claims in lost[] made again, in
 * order, beside those it holds, with one reader for them all (its filter
 * holds them before the first request, as xr_agent_claim() has it). A
 * refusal for the rate (-EAGAIN) is tried again until the reattach's time
 * is up, and if it still is, the next reattach goes on from there. Claims
 * not made stay in lost[]. */
static int reclaim(xr_agent *a, uint64_t start, int64_t timeout_ns)
{
	uint32_t base = a->n_claims, n = a->n_lost;
	int rc;

	if (n > XR_SEAT_CLAIMS_MAX - base)
		n = XR_SEAT_CLAIMS_MAX - base; /* claimed meanwhile: the engine's most */
	memcpy(a->claims + base, a->lost, n * sizeof(a->claims[0]));
	for (uint32_t i = 0; i < n; i++)
		a->claims[base + i].id = 0;
	a->n_claims = base + n;
	uint64_t wait = 5000000;
	while ((rc = resubscribe(a)) == -EAGAIN && !past(start, timeout_ns))
		back_off(&wait);
	uint32_t made = 0;
	for (; rc == 0 && made < n; made++) {
		while ((rc = send_claim(a, base + made, a->claims[base + made].players)) == -EAGAIN &&
		       !past(start, timeout_ns))
			back_off(&wait);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		/* base + [0, made) are held; the rest wait in lost[]. */
		memmove(a->lost, a->lost + made, (a->n_lost - made) * sizeof(a->lost[0]));
		a->n_lost -= made;
		a->n_claims = base + made;
		/* Refused for the rate, or a seat another agent took: the next
		 * reattach goes on from here, the seats held kept held. */
		a->reclaiming = rc == -EAGAIN || rc == -EBUSY;
		resubscribe_after(a);
		return rc;
	}
	a->n_lost = 0;
	a->reclaiming = false;
	return 0;
}

int xr_agent_reattach(xr_agent *a, int64_t timeout_ns)
{
	uint64_t start = xr__now_ns();

	if (!a || mine(a) < 0)
		return -EINVAL;
	/* Off the old engine: the held batch, the reader, the page, the
	 * connection. What it holds goes to lost[], before what an earlier
	 * reattach could not make again (already there), at most the
	 * engine's limit of claims. */
	if (a->reclaiming && a->sock >= 0) {
		int rc = reclaim(a, start, timeout_ns);
		if (!conn_lost(rc))
			return rc;
		/* The engine went meanwhile: start over, within the time. */
		a->reclaiming = false;
	}
	if (a->sock >= 0) {
		struct aclaim all[2 * XR_SEAT_CLAIMS_MAX];
		uint32_t k = 0;
		for (uint32_t i = 0; i < a->n_claims; i++)
			all[k++] = a->claims[i];
		for (uint32_t i = 0; i < a->n_lost; i++)
			all[k++] = a->lost[i];
		a->n_lost = k < XR_SEAT_CLAIMS_MAX ? k : XR_SEAT_CLAIMS_MAX;
		memcpy(a->lost, all, a->n_lost * sizeof(a->lost[0]));
		a->n_claims = 0;
		(void)resubscribe(a); /* no claims: detaches the reader */
		munmap((void *)a->page, a->page_bytes);
		a->page = NULL;
		shutdown(a->sock, SHUT_RDWR);
		close(a->sock);
		a->sock = -1;
	}
	for (;;) {
		int rc = agent_open(a);
		if (rc == 0)
			break;
		/* Not up yet: no socket, the old one's leftovers, or an engine
		 * still starting or stopping (as xr_reader_reattach()). */
		if (rc != -ENOENT && rc != XR_ECLOSED && rc != -ECONNRESET && rc != -ECONNREFUSED &&
		    rc != -EAGAIN)
			return rc;
		if (past(start, timeout_ns)) {
			char why[XR_CTL_REASON_MAX];
			snprintf(why, sizeof(why), "%s", xr_last_reason());
			xr__set_last_reason("engine '%s' did not come back in time (%s)", a->name,
					    why);
			return -ETIMEDOUT;
		}
		xr__sleep_ns(5000000);
	}
	/* The same seats again, in the order they were claimed. A claim
	 * refused (another agent took a seat meanwhile) ends the reattach:
	 * the agent is attached, with the claims made before it, and the
	 * rest are tried again by the next reattach. */
	return reclaim(a, start, timeout_ns);
}

int xr_agent_claims(const xr_agent *a, uint32_t *ids, uint32_t max)
{
	if (!a || (max && !ids))
		return -EINVAL;
	for (uint32_t i = 0; i < a->n_claims && i < max; i++)
		ids[i] = a->claims[i].id;
	return (int)a->n_claims;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int xr_agent_recv(xr_agent *a, uint32_t min, uint32_t max, int64_t max_wait_ns, xr_obs_batch *b)
{
	if (!a || !b || mine(a) < 0 || !min || min > max || max > XR_BATCH_MAX)
		return -EINVAL;
	if (connected(a) < 0)
		return XR_ECLOSED;
	drop_held(a);
	if (!a->r && a->n_claims) {
		/* Its reader went (an eviction, a claim or release) and the
		 * new one was refused (a rate, a slot, a late reply): its
		 * claims stand, so try again, rather than say it holds no
		 * seats for as long as it lives. */
		int rc = resubscribe(a);
		if (rc < 0)
			return rc;
	}
	if (!a->r) {
		xr__set_last_reason("this agent holds no seats: claim some first");
		return -EINVAL;
	}
	if (a->frames_cap < max) {
		const xr_frame **f = realloc(a->frames, max * sizeof(*f));
		if (!f)
			return -ENOMEM;
		a->frames = f;
		struct seen *sn = realloc(a->seen, max * sizeof(*sn));
		if (!sn)
			return -ENOMEM;
		a->seen = sn;
		a->frames_cap = max;
	}
	uint64_t end = max_wait_ns < 0 ? UINT64_MAX : mono_ns() + (uint64_t)max_wait_ns;
	for (;;) {
		uint64_t now = mono_ns();
		int64_t left = end == UINT64_MAX ? -1 : now >= end ? 0 : (int64_t)(end - now);
		int n = xr_reader_read(a->r, min, max, left, &a->cur);
		if (n == XR_EEVICTED) {
			/* It held the engine up (stopped, or far too slow): its
			 * place in the stream is gone, its seats are not. On from
			 * the newest record; what it missed fell back. */
			a->evictions++;
			int rc = resubscribe(a);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n == -EINTR)
			xr_store_relaxed(&a->cancel_pending, 0); /* it ended this wait */
		if (n <= 0)
			return n;
		uint32_t k = 0;
		const xr_frame *f = a->cur.first;
		for (uint32_t i = 0; i < (uint32_t)n; i++) {
			if (a->cur.frames)
				f = a->cur.frames[i];
			const uint8_t *d = xr_frame_data(f);
			uint32_t g = get32(d + a->t.off_game_id), p = get32(d + a->t.off_player_id);
			if (f->len == a->t.size && seat(a, g, p)) {
				/* What send() answers: this record, as read now
				 * under the lease. The ring may be overwritten
				 * before send() once the reader is evicted (the
				 * short lease), and the answer must then be to a
				 * past record (a timeout), never to whichever
				 * record lies there by then. */
				a->seen[k] = (struct seen){.seq = f->seq, .game = g, .player = p,
							   .turn = get32(d + a->t.off_turn),
							   .final = d[a->t.off_done] ||
								    d[a->t.off_truncated]};
				a->frames[k++] = f;
			} else {
				a->skipped++;
			}
			if (!a->cur.frames)
				f = xr_frame_next(f);
		}
		a->cur_dropped += a->cur.dropped;
		if (k == 0) {
			/* Records of the filter's other seats only. */
			xr_batch_release(a->r, &a->cur);
			if (left == 0)
				return 0;
			continue;
		}
		a->held = true;
		a->count = k;
		a->records += k;
		*b = (xr_obs_batch){.frames = a->frames, .count = k, .ring = a->cur.ring,
				    .dropped = a->cur.dropped, .reader = a->cur};
		return (int)k;
	}
}

static int check_batch(const xr_agent *a, const xr_obs_batch *b)
{
	/* The batch is the caller's struct: a count past the one handed out
	 * would have send() read past frames[] and seen[]. */
	if (!a->held || b->frames != a->frames || b->reader.id_ != a->cur.id_ ||
	    b->count > a->count) {
		xr__set_last_reason("not this agent's held batch (answered or released already?)");
		return -EINVAL;
	}
	return 0;
}

/* Writes the answer to one record of the agent's seats into its slot:
 * whether it was written (not for a final record, nor for a seat no longer
 * held). */
static bool answer_one(xr_agent *a, uint64_t seq, uint32_t g, uint32_t p, uint32_t turn,
		       bool final, int32_t action)
{
	if (final)
		return false; /* no step follows: nothing is asked */
	const struct aclaim *c = seat(a, g, p);
	if (!c)
		return false; /* released since it was received */
	/* With --input-delay K, the set of the record's turn mod K + 1
	 * (shm/layout.h): the answers to the K turns before it are still to
	 * be taken. */
	uint32_t set = turn % a->depth;
	_Atomic uint64_t *slot = a->page + ((size_t)(c->base + (g - c->lo)) * a->depth + set) *
						   (XR_SEAT_BLOCK / sizeof(uint64_t)) + p;
	uint64_t w = (uint64_t)xr_seat_tag(seq) << 32 | (uint32_t)action;
	xr_store_release(slot, w); /* AC1: pairs with nothing; see the top */
	a->sent++;
	return true;
}

int xr_agent_send(xr_agent *a, xr_obs_batch *b, const int32_t *actions)
{
	if (!a || !b || mine(a) < 0 || (b->count && !actions))
		return -EINVAL;
	int rc = check_batch(a, b);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < b->count; i++) {
		/* The record as handed out (recv), not the ring now: see there. */
		const struct seen *sn = &a->seen[i];
		answer_one(a, sn->seq, sn->game, sn->player, sn->turn, sn->final, actions[i]);
	}
	drop_held(a);
	b->count = 0;
	return 0;
}

int xr_agent_refs(const xr_agent *a, const xr_obs_batch *b, xr_seat_ref *refs)
{
	if (!a || !b || (b->count && !refs))
		return -EINVAL;
	int rc = check_batch(a, b);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < b->count; i++) {
		const struct seen *sn = &a->seen[i];
		refs[i] = (xr_seat_ref){.seq = sn->seq, .game = sn->game, .player = sn->player,
					.turn = sn->turn, .final = sn->final};
	}
	return 0;
}

int xr_agent_answer(xr_agent *a, const xr_seat_ref *refs, const int32_t *actions, uint32_t n)
{
	uint32_t written = 0;

	if (!a || mine(a) < 0 || (n && (!refs || !actions)) || n > INT32_MAX)
		return -EINVAL;
	/* The references are the caller's: whatever they say, only this
	 * agent's own slots of seats it holds are written, and the engine
	 * reads those as untrusted (a wrong tag is a fallback). */
	for (uint32_t i = 0; i < n; i++)
		written += answer_one(a, refs[i].seq, refs[i].game, refs[i].player, refs[i].turn,
				      refs[i].final != 0, actions[i]);
	return (int)written;
}

int xr_agent_release_batch(xr_agent *a, xr_obs_batch *b)
{
	if (!a || !b || mine(a) < 0)
		return -EINVAL;
	int rc = check_batch(a, b);
	if (rc < 0)
		return rc;
	drop_held(a);
	b->count = 0;
	return 0;
}

int xr_agent_stats_get(xr_agent *a, xr_agent_stats *s)
{
	struct xr_snap_hist rtt = {0};

	if (!a || !s)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	s->agent = a->agent;
	s->claims = a->n_claims;
	for (uint32_t i = 0; i < a->n_claims; i++)
		s->seats += ((uint64_t)a->claims[i].hi - a->claims[i].lo + 1) *
			    (uint64_t)__builtin_popcount(a->claims[i].players);
	s->records = a->records;
	s->sent = a->sent;
	s->skipped = a->skipped;
	s->dropped = a->dropped;
	s->evictions = a->evictions;
	if (!a->r)
		return 0;
	/* Its reader's own count, exact (lost records of the stream's other
	 * seats too: nobody can tell whose a lost record was). The sum of its
	 * batches' dropped, kept here before, missed every loss among records
	 * its filter skipped, so an agent lapped lost its seats' records with
	 * `dropped` 0 (test_faults stopped_lossy, kill_storm). */
	xr_reader_stats rs;
	s->dropped += xr_reader_stats_get(a->r, &rs) == 0 ? rs.dropped : a->cur_dropped;
	const struct xr_arena *ar = xr__reader_arena(a->r);
	for (uint32_t k = 0; k < ar->lay.n_rings; k++) {
		const struct xr_agent_counts *c = &ar->agent_stats[(size_t)a->agent * ar->lay.n_rings + k];
		s->actions += xr_load_relaxed(&c->actions);
		s->timeouts += xr_load_relaxed(&c->timeouts);
		s->late += xr_load_relaxed(&c->late);
		s->wrong_turn += xr_load_relaxed(&c->wrong_turn);
		s->out_of_range += xr_load_relaxed(&c->out_of_range);
		s->illegal += xr_load_relaxed(&c->illegal);
		s->fallbacks += xr_load_relaxed(&c->fallbacks);
		s->waiting += xr_load_relaxed(&c->waiting);
		xr__snap_hist_add(&rtt, &c->rtt);
	}
	s->rtt_count = rtt.count;
	s->rtt_p50_ns = xr__snap_quantile(&rtt, 0.5);
	s->rtt_p99_ns = xr__snap_quantile(&rtt, 0.99);
	s->rtt_p999_ns = xr__snap_quantile(&rtt, 0.999);
	return 0;
}

int xr_agent_fd(const xr_agent *a)
{
	return a && a->r ? xr_reader_fd(a->r) : -1;
}

int xr_agent_arm(xr_agent *a, uint32_t min)
{
	return a && a->r ? xr_reader_arm(a->r, min) : -EINVAL;
}

void xr_agent_cancel(xr_agent *a)
{
	if (!a)
		return;
	/* Async-signal-safe: atomics, and xr_reader_cancel()'s store and
	 * write. Never a->r: the agent's thread may be freeing it. */
	xr_store_sc(&a->cancel_pending, 1);
	xr_fetch_add_sc(&a->cancelling, 1);          /* CN1 */
	xr_reader *r = xr_load_sc(&a->live_r);       /* CN2 */
	if (r)
		xr_reader_cancel(r);
	xr_fetch_sub_release(&a->cancelling, 1);
}

int xr_agent_slots(const xr_agent *a, void **base, size_t *len)
{
	if (!a || !base || !len)
		return -EINVAL;
	if (connected(a) < 0)
		return XR_ECLOSED;
	*base = (void *)a->page;
	*len = a->page_bytes;
	return 0;
}

xr_reader *xr_agent_reader(xr_agent *a)
{
	return a ? a->r : NULL;
}

void xr_agent_detach(xr_agent *a)
{
	if (!a)
		return;
	if (a->pid == xr__self_pid()) {
		drop_held(a);
		if (a->r)
			xr_reader_detach(a->r);
	}
	if (a->page)
		munmap((void *)a->page, a->page_bytes);
	/* The seats are the connection's, and closing our descriptor ends it
	 * only if no other process holds a copy (a child forked meanwhile,
	 * until it exits or execs): the attacher shuts it down, so that the
	 * seats go back to the policy now, as promised (as xr_games_close()
	 * does). A child closes only its copy. */
	if (a->sock >= 0 && a->pid == xr__self_pid())
		shutdown(a->sock, SHUT_RDWR);
	if (a->sock >= 0)
		close(a->sock);
	free(a->frames);
	free(a->seen);
	free(a);
}
