/* SPDX-License-Identifier: MIT */
/*
 * The reader library: attach by name, read batches in place, release,
 * stats, detach. The ring protocol itself is in shm/ring_reader.c; this file
 * owns the reader's side of its slot (its peer page: cursors, leases, the
 * sleep word), the set of held batches, filtering, and waiting: the
 * reader's half of the sleep/wake protocol, whose writer half and ordering
 * argument open shm/wake.c (labels RS0...).
 *
 * What the reader trusts: the engine it attached to after checking it
 * (control/client.c; the arena's owner here), and nothing in shared memory
 * beyond what it validated (shm/arena.c keeps its own copy of the layout).
 * Its slot's state it learns from the reader table, which only the engine
 * writes:
 *   RI1  load_acquire(info.state); pairs with PI1 (shm/peers.c), so an
 *        EVICTED seen comes with its evict_reason.
 *   RI2  after every walk of a ring (a read, a wait, an arm, a count):
 *        fence_acquire, then RI1. Pairs with PI2, the release fence an
 *        evicting writer puts between PI1 and its next overwrite of ring
 *        bytes: a walk that read any byte written after the eviction is
 *        followed by a load that sees EVICTED. An eviction stops the
 *        writer honouring our lease at once, so the bytes under a walk
 *        under way may be overwritten: the walk then finds what looks like
 *        a malformed ring (-EPROTO: a seq lower than one read, a head more
 *        than a ring ahead, a torn header), or records that look whole but
 *        that no lease keeps. Either way it is XR_EEVICTED, which callers
 *        act on (an agent subscribes again); -EPROTO only from a walk whose
 *        slot was still ours after it. (The slot is checked at the start
 *        of each call too, but an eviction can land between that check
 *        and the walk: test_agents_red kill_churn, 1 run in 6.)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/reader_priv.h"
#include "client/group.h"
#include "shm/group_layout.h"
#include "control/client.h"
#include "record/filter.h"
#include "shm/arena_priv.h"
#include "shm/backing.h"
#include "shm/hist.h"
#include "util/atomics.h"
#include "shm/ring_reader.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/error.h"
#include "xring/reader.h"

#define XR_ALIVE_CHECK_NS 50000000ull /* engine death noticed within ~50 ms */
#define XR_SPIN_BEFORE_SLEEP_NS 20000 /* spin this long before sleeping */

/* Latency histogram: 4 buckets per power of two of nanoseconds, so a
 * percentile is known within 19% (ample for telling 10 µs from 50 µs). */
#define XR_LAT_BUCKETS (64 * 4)

static uint32_t lat_bucket(uint64_t ns)
{
	if (ns < 4)
		return (uint32_t)ns;
	uint32_t lg = 63 - (uint32_t)__builtin_clzll(ns);
	return lg * 4 + (uint32_t)((ns >> (lg - 2)) & 3);
}

/* The upper end of a bucket. */
static uint64_t lat_bucket_top(uint32_t b)
{
	if (b < 8) /* 0..3 exact; 4..7 unused */
		return b;
	uint32_t lg = b / 4;
	return ((4ull + (b & 3) + 1) << (lg - 2)) - 1;
}

static uint64_t lat_percentile(const uint64_t *hist, uint64_t n, double q, uint64_t max)
{
	uint64_t want = (uint64_t)((double)n * q), seen = 0;

	if (!n)
		return 0;
	for (uint32_t b = 0; b < XR_LAT_BUCKETS; b++) {
		seen += hist[b];
		if (seen > want) {
			uint64_t top = lat_bucket_top(b);
			return top < max ? top : max;
		}
	}
	return max;
}

struct xr_held {
	uint64_t start;
	uint64_t id;    /* 0 = free entry */
	uint32_t ring;
};

/* What the last walk of one ring found, for going to sleep on it. */
struct xr_scan {
	uint64_t end, next_seq, head;
	uint32_t count;
};

struct xr_reader {
	/* What attach was asked, kept for xr_reader_reattach(). */
	char name[XR_NAME_MAX + 1];
	char stream_name[XR_STREAM_NAME_MAX + 1];
	char label[16];
	xr_reader_opts opts;
	xr_filter filter;
	xr_id_range games[XR_FILTER_RANGES_MAX], players[XR_FILTER_RANGES_MAX];
	struct xr_filt filt;

	struct xr_arena *arena;
	struct xr_peer_page *page; /* ours to write, mapped from the engine's memfd */
	const struct xr_reader_info *info; /* our slot in the reader table (read-only) */
	uint32_t slot_idx;
	uint32_t stream;
	uint32_t first_ring, n_rings;
	uint32_t next_ring;
	uint32_t policy;
	int sock;            /* control connection: requests, wakeups, hangup */
	bool woken;          /* the engine sends wakeups (not XR_WAIT_SPIN) */
	int cancel_fd;       /* eventfd: xr_reader_cancel() */
	_Atomic uint32_t cancel;
	int qos_fd;          /* /dev/cpu_dma_latency held at 0, -1: none */
	uint32_t sleep_gen;  /* last generation used to sleep */
	bool armed;          /* xr_reader_arm() left us asleep */
	uint64_t sleeps, wakeups;
	uint64_t wake_hist[XR_LAT_BUCKETS]; /* wakeup latencies, log-linear */
	/* Experience records: where t_ns is in a record of t_size bytes, for
	 * the age and fill figures (t_size 0: not Experience, none kept). */
	uint32_t t_off, t_size;
	uint64_t wake_max;
	uint64_t next_id;
	bool engine_gone;    /* died without closing: drain, then XR_ECLOSED */
	/* When a read last looked whether the engine lives (0: never): kept
	 * across calls, so that a caller whose reads are shorter than
	 * XR_ALIVE_CHECK_NS (a spinning reader polling with max_wait 0, or a
	 * few ms) still looks every 50 ms. Each call started the clock
	 * afresh before, and such a reader returned 0 for ever after its
	 * engine's SIGKILL (test_faults_engine). */
	uint64_t alive_ns;
	uint32_t n_held;
	struct xr_held held[XR_HELD_MAX];
	const xr_frame **idx[XR_HELD_MAX]; /* frames of filtered batches */
	uint32_t idx_cap[XR_HELD_MAX];
	struct xr_ring_rd rings[XR_MAX_RINGS];
	/* Records lost among filtered-out frames a read skipped without
	 * taking a batch (peek), per ring: the next batch of the ring says
	 * them in its `dropped`, which would otherwise miss them. */
	uint64_t unsaid[XR_MAX_RINGS];
	/* A consumer group's member (opts.group): its batches come from the
	 * engine's group service (client/group.h), not from its cursors,
	 * and its own slot is a lossy one that never leases. */
	char group[XR_GROUP_NAME_MAX + 1];
	struct xr_gmember *gm;
};

static void slot_label(char *dst, size_t n, const struct xr_reader *r)
{
	const char *src = r->label[0] ? r->label : program_invocation_short_name;

	memset(dst, 0, n);
	memcpy(dst, src, strnlen(src, n - 1));
}

static int find_stream(const struct xr_arena *a, const char *name)
{
	for (uint32_t i = 0; i < a->lay.n_streams; i++)
		if (!strncmp(a->lay.streams[i].name, name, sizeof(a->lay.streams[i].name)))
			return (int)i;
	return -ENOENT;
}

/* Maps the arena from the engine's fd, with the rings of our stream only,
 * after checking that the file is what its server says: a regular file
 * owned by the uid serving the socket, written by that process. */
static int map_arena(struct xr_reader *r, int fd, const struct ucred *peer)
{
	struct xr_arena *a;
	struct stat st;
	int rc, stream, fd2;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != peer->uid) {
		xr__set_last_reason("engine %s handed over %s, not its own arena file (owner uid %u, "
				    "server uid %u): refusing it",
				    r->name, S_ISREG(st.st_mode) ? "a file" : "something", (unsigned)st.st_uid,
				    (unsigned)peer->uid);
		close(fd);
		return XR_EUNTRUSTED;
	}
	/* Without rings first to find the stream, then with its rings. */
	fd2 = dup(fd);
	if (fd2 < 0) {
		close(fd);
		return -errno;
	}
	rc = xr__arena_open_fd(fd2, XR_OPEN_SERVED, -1, &a);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* (Pids are not compared: the engine's names a process in its own PID
	 * namespace, SO_PEERCRED's one in ours, or 0.) */
	if (a->lay.writer_uid != peer->uid) {
		xr__set_last_reason("engine %s's arena says it was written by uid %u, but uid %u "
				    "serves it: refusing it",
				    r->name, a->lay.writer_uid, (unsigned)peer->uid);
		xr__arena_close(a);
		close(fd);
		return XR_EUNTRUSTED;
	}
	stream = find_stream(a, r->stream_name);
	xr__arena_close(a);
	if (stream < 0) {
		xr__set_last_reason("engine %s has no stream \"%s\"", r->name, r->stream_name);
		close(fd);
		return stream;
	}
	rc = xr__arena_open_fd(fd, XR_OPEN_RINGS | XR_OPEN_SERVED, stream, &r->arena);
	if (rc < 0)
		return rc;
	r->stream = (uint32_t)stream;
	return 0;
}

/* The policy in force and the compiled filter, checked against the stream. */
static int check_stream(struct xr_reader *r)
{
	const struct xr_stream_desc *sd = &r->arena->lay.streams[r->stream];
	bool filtered = r->opts.filter != NULL;

	r->first_ring = sd->first_ring;
	r->n_rings = sd->n_rings;
	r->policy = r->opts.policy ? r->opts.policy : sd->policy;
	if (r->policy == XR_POLICY_LOSSLESS && sd->policy == XR_POLICY_LOSSY) {
		xr__set_last_reason("stream %s is lossy: attach with policy lossy", sd->name);
		return XR_EPOLICY;
	}
	/* A member's slot only maps the rings: its group's reader holds them. */
	if (r->opts.group)
		r->policy = XR_POLICY_LOSSY;
	if (xr__filter_compile(&r->filt, filtered ? &r->filter : NULL,
			       sd->record_kind == XR_RECORD_EXPERIENCE ? &sd->shape : NULL) < 0) {
		xr__set_last_reason("stream %s does not carry Experience records: it cannot be "
				    "filtered", sd->name);
		return -EINVAL;
	}
	xr_exp_template t;
	r->t_size = 0;
	if (sd->record_kind == XR_RECORD_EXPERIENCE && xr_exp_template_init(&t, &sd->shape) == 0) {
		r->t_off = t.off_t_ns;
		r->t_size = t.size;
	}
	return 0;
}

/* Maps our page: page `slot` of the memfd the engine made for this reader,
 * which must be sealed against shrinking (else the engine that handed it
 * over could fault our every store). */
static int map_page(struct xr_reader *r, int fd, uint32_t slot)
{
	uint64_t off = (uint64_t)slot * XR_PEER_PAGE_SIZE;
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < off + XR_PEER_PAGE_SIZE || seals < 0 ||
	    !(seals & F_SEAL_SHRINK)) {
		close(fd);
		xr__set_last_reason("engine %s handed over a reader page that is not one (a sealed "
				    "memfd holding page %u)",
				    r->name, slot);
		return -EPROTO;
	}
	p = mmap(NULL, XR_PEER_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	r->page = p;
	return 0;
}

/* Through the control socket: check who serves it, ATTACH, check and map
 * the arena, SUBSCRIBE, map our page. */
static int attach_control(struct xr_reader *r)
{
	struct xr_trust trust = {.extra = r->opts.engine_uid ? r->opts.engine_uid : (uid_t)-1};
	struct xr_ctl_attached att;
	struct xr_ctl_subscribe m;
	struct xr_ctl_subscribed sub;
	struct ucred peer;
	int afd, pfd, rc;

	r->sock = xr__ctl_connect(r->name, &trust, &peer);
	if (r->sock < 0) {
		rc = r->sock;
		r->sock = -1;
		if (rc == -ENOENT)
			xr__set_last_reason("no engine '%s' is running (no control socket)", r->name);
		return rc;
	}
	rc = xr__ctl_attach(r->sock, &afd, &att);
	if (rc < 0)
		return rc;
	if (att.layout_version != XR_LAYOUT_VERSION || att.fingerprint != xr__layout_fingerprint()) {
		close(afd);
		return XR_ELAYOUT;
	}
	rc = map_arena(r, afd, &peer);
	if (rc < 0)
		return rc;
	rc = check_stream(r);
	if (rc < 0)
		return rc;
	r->woken = r->opts.wait != XR_WAIT_SPIN && !r->opts.group;
	memset(&m, 0, sizeof(m));
	memcpy(m.stream, r->stream_name, sizeof(m.stream));
	m.policy = r->opts.group ? XR_POLICY_LOSSY : r->opts.policy;
	m.flags = (r->woken ? XR_CTL_SUB_WAKE : 0) |
		  (r->opts.short_lease ? XR_CTL_SUB_SHORT_LEASE : 0);
	slot_label(m.label, sizeof(m.label), r);
	xr__ctl_filter_to_wire(&m.filter, r->opts.filter ? &r->filter : NULL);
	rc = xr__ctl_subscribe(r->sock, &m, &pfd, &sub);
	if (rc < 0)
		return rc;
	if (sub.slot >= r->arena->lay.max_readers || sub.stream != r->stream ||
	    sub.policy != r->policy) {
		close(pfd);
		xr__set_last_reason("engine %s answered SUBSCRIBE with slot %u, stream %u, policy "
				    "%u, not what was asked (a slot under %u, stream %u, policy %u): "
				    "that is not the xring control protocol; check which program "
				    "serves %s",
				    r->name, sub.slot, sub.stream, sub.policy,
				    r->arena->lay.max_readers, r->stream, r->policy, r->name);
		return -EPROTO;
	}
	rc = map_page(r, pfd, sub.slot);
	if (rc < 0)
		return rc;
	r->info = &r->arena->infos[sub.slot];
	r->slot_idx = sub.slot;
	return 0;
}

/* Undoes what attach built, leaving the options. */
static void teardown(struct xr_reader *r)
{
	xr__gm_leave(r->gm);
	r->gm = NULL;
	if (r->page && r->info) {
		for (uint32_t k = 0; k < r->n_rings; k++)
			xr_store_release(&r->rings[k].cur->lease, XR_NO_LEASE);
		/* The engine frees the slot; wait for it, so that a new attach
		 * right after finds it free. */
		xr__ctl_detach(r->sock, r->slot_idx);
	}
	if (r->sock >= 0)
		close(r->sock);
	if (r->qos_fd >= 0)
		close(r->qos_fd); /* the kernel drops the request with the fd */
	if (r->page)
		munmap(r->page, XR_PEER_PAGE_SIZE);
	xr__arena_close(r->arena);
	r->arena = NULL;
	r->page = NULL;
	r->info = NULL;
	r->sock = r->qos_fd = -1;
	r->engine_gone = r->armed = false;
	r->alive_ns = 0;
	r->n_held = 0;
	memset(r->held, 0, sizeof(r->held));
	memset(r->unsaid, 0, sizeof(r->unsaid));
	r->sleeps = r->wakeups = 0;
	memset(r->wake_hist, 0, sizeof(r->wake_hist));
	r->wake_max = 0;
}

static int attach(struct xr_reader *r)
{
	int rc;

	if (r->opts.transport == XR_TRANSPORT_DIRECT) {
		xr__set_last_reason("XR_TRANSPORT_DIRECT is gone: readers attach through the engine's "
				    "control socket, which is how it knows who holds each slot");
		return -ENOTSUP;
	}
	rc = attach_control(r);
	if (rc < 0)
		goto fail;

	if (r->opts.wait == XR_WAIT_IDLE_POLL && r->woken) {
		/* PM QoS: a CPU latency of 0 keeps idle CPUs out of halt for as
		 * long as this fd is open. Best effort. */
		int32_t zero = 0;
		r->qos_fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
		if (r->qos_fd >= 0 && write(r->qos_fd, &zero, sizeof(zero)) != sizeof(zero)) {
			close(r->qos_fd);
			r->qos_fd = -1;
		}
	}
	const struct xr_arena *a = r->arena;
	for (uint32_t k = 0; k < r->n_rings; k++) {
		uint32_t ring = r->first_ring + k;
		struct xr_cursor *c = &r->page->cursors[ring];

		xr__rr_init(&r->rings[k], &a->hdr->rings[ring], &a->lay.rings[ring], c,
			    a->ring_data[ring], r->policy == XR_POLICY_LOSSLESS);
	}
	/* The engine made the slot ACTIVE before it answered (shm/peers.c):
	 * our leases count from the first. */
	for (uint32_t k = 0; k < r->n_rings; k++) {
		rc = xr__rr_start_back(&r->rings[k], r->opts.history);
		if (rc < 0 && r->rings[k].bad) {
			xr__set_last_reason("engine %s's ring %u is malformed at byte %llu: %s",
					    r->name, r->first_ring + k,
					    (unsigned long long)r->rings[k].bad_at, r->rings[k].bad);
			goto fail;
		}
		if (rc < 0) {
			xr__set_last_reason("engine %s stopped in the middle of a publish on ring "
					    "%u; restart the engine",
					    r->name, r->first_ring + k);
			goto fail;
		}
	}
	if (r->opts.group) {
		struct xr_gm_rings rings = {.n = r->n_rings};
		for (uint32_t k = 0; k < r->n_rings; k++) {
			rings.base[k] = r->rings[k].data;
			rings.len[k] = 2 * r->rings[k].cap;
		}
		rc = xr__gm_join(r->sock, r->name, r->group, r->opts.policy, &rings, &r->gm);
		if (rc < 0)
			goto fail;
	}
	return 0;
fail:
	teardown(r);
	return rc;
}

static int copy_opts(struct xr_reader *r, const char *engine, const xr_reader_opts *o)
{
	const char *sname = o && o->stream ? o->stream : XR_DEFAULT_STREAM;

	if (xr__check_name(engine, XR_NAME_MAX) < 0 || strlen(sname) > XR_STREAM_NAME_MAX)
		return -EINVAL;
	strcpy(r->name, engine);
	strcpy(r->stream_name, sname);
	if (o) {
		r->opts = *o;
		if (o->label)
			memcpy(r->label, o->label, strnlen(o->label, sizeof(r->label) - 1));
	}
	if (r->opts.policy > XR_POLICY_LOSSY || r->opts.wait > XR_WAIT_IDLE_POLL ||
	    r->opts.transport > XR_TRANSPORT_DIRECT)
		return -EINVAL;
	if (r->opts.transport == XR_TRANSPORT_DIRECT) {
		xr__set_last_reason("XR_TRANSPORT_DIRECT is gone: readers attach through the engine's "
				    "control socket, which is how it knows who holds each slot");
		return -ENOTSUP;
	}
	r->opts.stream = r->stream_name;
	r->opts.label = r->label;
	if (o && o->group) {
		size_t n = strlen(o->group);
		if (n == 0 || n > XR_GROUP_NAME_MAX || o->filter || o->history) {
			xr__set_last_reason("a group is named by 1 to %d characters, and its members "
					    "take no filter and no history",
					    XR_GROUP_NAME_MAX);
			return -EINVAL;
		}
		memcpy(r->group, o->group, n + 1);
		r->opts.group = r->group;
	}
	if (o && o->filter) {
		const xr_filter *f = o->filter;
		if (f->n_games > XR_FILTER_RANGES_MAX || f->n_players > XR_FILTER_RANGES_MAX ||
		    (f->n_games && !f->games) || (f->n_players && !f->players))
			return -EINVAL;
		r->filter = *f;
		if (f->n_games)
			memcpy(r->games, f->games, f->n_games * sizeof(*f->games));
		if (f->n_players)
			memcpy(r->players, f->players, f->n_players * sizeof(*f->players));
		r->filter.games = r->games;
		r->filter.players = r->players;
		r->opts.filter = &r->filter;
		/* Checked here too, so that a bad filter is -EINVAL before
		 * anything is asked of the engine. */
		struct xr_filt tmp;
		xr_exp_shape any = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1, .obs_dims = {1}};
		if (xr__filter_compile(&tmp, &r->filter, &any) < 0)
			return -EINVAL;
	}
	return 0;
}

int xr_reader_attach(const char *engine, const xr_reader_opts *o, xr_reader **out)
{
	struct xr_reader *r;
	int rc;

	if (!engine || !out)
		return -EINVAL;
	xr__set_last_reason("%s", "");
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->sock = r->qos_fd = -1;
	r->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = r->cancel_fd < 0 ? -errno : copy_opts(r, engine, o);
	if (rc == 0)
		rc = attach(r);
	if (rc < 0) {
		if (r->cancel_fd >= 0)
			close(r->cancel_fd);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int xr_reader_reattach(xr_reader *r, int64_t timeout_ns)
{
	uint64_t start = xr__now_ns();

	if (!r)
		return -EINVAL;
	teardown(r);
	for (;;) {
		int rc = attach(r);
		if (rc == 0)
			return 0;
		/* Not up yet: no socket or arena, the old one's leftovers, or
		 * an engine still starting or stopping. */
		if (rc != -ENOENT && rc != XR_ECLOSED && rc != -ECONNRESET && rc != -ECONNREFUSED)
			return rc;
		if (timeout_ns >= 0 && xr__now_ns() - start >= (uint64_t)timeout_ns)
			return -ETIMEDOUT;
		xr__sleep_ns(5000000);
	}
}

static int check_slot(const struct xr_reader *r)
{
	if (!r->info)
		return XR_ECLOSED; /* a reattach that failed */
	/* RI1: pairs with PI1. A closed engine frees every slot as it stops
	 * (its writers stopped first): what was published is still ours to
	 * read, then XR_ECLOSED. A2 orders CLOSED before the release. */
	if (xr_load_acquire(&r->info->state) != XR_SLOT_ACTIVE &&
	    xr_load_acquire(&r->arena->hdr->state) == XR_ARENA_READY)
		return XR_EEVICTED;
	return 0;
}

static uint64_t oldest_held(const struct xr_reader *r, uint32_t k)
{
	uint64_t oldest = XR_NO_LEASE;

	for (uint32_t i = 0; i < XR_HELD_MAX; i++) {
		const struct xr_held *e = &r->held[i];
		if (e->id && e->ring == k &&
		    (oldest == XR_NO_LEASE || (int64_t)(e->start - oldest) < 0))
			oldest = e->start;
	}
	return oldest;
}

/* The first free entry of held[], or XR_HELD_MAX when all are taken
 * (bounded: reading held[XR_HELD_MAX] would let the compiler drop the
 * callers' check for a full table, as it once did). */
static uint32_t free_held(const struct xr_reader *r)
{
	uint32_t i = 0;

	while (i < XR_HELD_MAX && r->held[i].id)
		i++;
	return i;
}

static void fill_batch(struct xr_reader *r, uint32_t k, uint32_t i, const struct xr_take *t,
		       xr_batch *b)
{
	struct xr_ring_rd *rr = &r->rings[k];
	bool contiguous = r->filt.all || t->contiguous;
	uint64_t dropped = t->gaps + r->unsaid[k];

	r->unsaid[k] = 0;
	r->held[i] = (struct xr_held){.start = t->start, .id = ++r->next_id, .ring = k};
	r->n_held++;
	*b = (xr_batch){
		.first = (const xr_frame *)(rr->data + (t->start & rr->mask)),
		.frames = contiguous ? NULL : r->idx[i],
		.count = t->count,
		.ring = k,
		.bytes = t->taken_end - t->start,
		.first_seq = t->first_seq,
		.stride = t->stride,
		.len = t->len,
		.dropped = dropped > UINT32_MAX ? UINT32_MAX : (uint32_t)dropped,
		.id_ = ((uint64_t)i << 48) | r->next_id,
	};
}

/* The frames index of held entry i must hold max pointers. */
static int reserve_idx(struct xr_reader *r, uint32_t i, uint32_t max)
{
	if (r->filt.all || r->idx_cap[i] >= max)
		return 0;
	const xr_frame **p = realloc(r->idx[i], max * sizeof(*p));
	if (!p)
		return -ENOMEM;
	r->idx[i] = p;
	r->idx_cap[i] = max;
	return 0;
}

/* What a walk of ring k returned (rc), believed only if the slot was still
 * ours after it: RI2 (top of file). */
static int walked(struct xr_reader *r, uint32_t k, int rc)
{
	const struct xr_ring_rd *rr = &r->rings[k];

	/* RI2: pairs with PI2; check_slot's load is RI1. */
	xr_fence_acquire();
	if (check_slot(r) == XR_EEVICTED)
		return XR_EEVICTED;
	if (rc == -EPROTO)
		xr__set_last_reason("engine %s's ring %u is malformed at byte %llu: %s. No xring "
				    "writer leaves that behind a lease it honours (a bug, or a "
				    "writer that is not xring's): stop reading it, and report it "
				    "with what `xring info %s` shows",
				    r->name, r->first_ring + k, (unsigned long long)rr->bad_at,
				    rr->bad, r->name);
	return rc;
}

/* Whether this reader's own held batches keep ring k's writer stopped:
 * its lossless lease there (its oldest held batch) is short of where the
 * writer's stop needs every lease to be (blocked_need). Nothing comes from
 * k before that batch is released. The blocked load is seq_cst, for RS4. */
static bool holds_writer(const struct xr_reader *r, uint32_t k)
{
	const struct xr_ring_rd *rr = &r->rings[k];
	uint64_t oldest;

	if (!rr->lossless || !xr_load_sc(&rr->rd->blocked))
		return false;
	oldest = oldest_held(r, k);
	/* Relaxed: stored before blocked, whose store released it. */
	return oldest != XR_NO_LEASE &&
	       (int64_t)(oldest - xr_load_relaxed(&rr->rd->blocked_need)) < 0;
}

/* Whether a wait with no deadline would be for good: every ring's writer
 * waits for a batch this reader holds (docs/protocol-model.md, finding 2).
 * A ring some other reader holds back, or that is merely quiet, can still
 * end the wait. */
static bool waits_on_itself(const struct xr_reader *r)
{
	for (uint32_t k = 0; k < r->n_rings; k++)
		if (!holds_writer(r, k))
			return false;
	return true;
}

static int held_back(const struct xr_reader *r)
{
	xr__set_last_reason("engine %s's writer is stopped until you release a batch you hold, "
			    "and what you wait for comes after it: release your oldest batch "
			    "before waiting again, or wait with a deadline",
			    r->name);
	return -EDEADLK;
}

/* Peeks ring k for a batch; consumes a leading run of filtered-out frames
 * at once, so that a sparse filter does not walk them again. */
static int peek(struct xr_reader *r, uint32_t k, uint32_t max, uint32_t hi, struct xr_take *t)
{
	struct xr_ring_rd *rr = &r->rings[k];
	int rc = xr__rr_peek(rr, max, rr->cap / 2, &r->filt, r->filt.all ? NULL : r->idx[hi], t);

	rc = walked(r, k, rc);
	if (rc < 0) {
		xr__rr_unpeek(rr); /* a lossy reader holding nothing holds no lease */
		return rc;
	}
	if (t->skip_frames && t->count == 0) {
		r->unsaid[k] += t->skip_gaps;
		xr__rr_skip(rr, t);
		if (rr->lossless)
			xr__rr_set_lease(rr, oldest_held(r, k));
		t->skip_frames = 0;
	}
	return 0;
}

/* RS0-RS4 (top of shm/wake.c): tells the writers what would make a batch
 * of min (sc[k]: what the last walk of ring k found) and marks the slot
 * asleep. Returns false, and is awake again, when something came in the
 * meantime (a new head, or a writer blocked on records we hold), or the
 * engine hung up: the caller must look again rather than wait. */
static bool go_to_sleep(struct xr_reader *r, uint32_t min, const struct xr_scan *sc, bool forever)
{
	/* RS0: a wakeup meant for an earlier sleep must not end this one. */
	if (xr__ctl_drain(r->sock)) {
		r->engine_gone = true;
		return false;
	}
	/* RS1 */
	for (uint32_t k = 0; k < r->n_rings; k++) {
		struct xr_cursor *c = r->rings[k].cur;
		xr_store_relaxed(&c->wake_pos, sc[k].end);
		xr_store_relaxed(&c->wake_need, min - sc[k].count);
	}
	/* A generation no earlier sleep of this slot used, so that a
	 * writer's memory of an old sleep is never taken for this one. */
	if (!r->sleep_gen)
		r->sleep_gen = (uint32_t)xr__now_ns() | 1;
	if (++r->sleep_gen == 0)
		r->sleep_gen = 1;
	/* RS2: pairs with the writer's W1, WK2. */
	xr_store_sc(&r->page->sleep_gen, r->sleep_gen);
	/* RS4; and a writer blocked while we hold records short of min (its
	 * kick may have come before our sleep_gen store). RS4s: an eviction
	 * whose kick loaded sleep_gen before our RS2 found no sleep to end:
	 * PI1 (seq_cst) before that load, RS2 before this one, so either the
	 * kick saw our sleep or we see the eviction (docs/protocol-model.md,
	 * finding 1). A closing engine is not an eviction: it wakes or hangs
	 * up every reader itself. */
	if (xr_load_sc(&r->info->state) != XR_SLOT_ACTIVE &&
	    xr_load_acquire(&r->arena->hdr->state) == XR_ARENA_READY) {
		xr_atomic_xchg(&r->page->sleep_gen, 0);
		return false;
	}
	/* ...and a ring that ended with records for us: its end's kick (the
	 * producer thread's, after its seq_cst store of `writer`) may have
	 * loaded sleep_gen before our RS2, so we look at `writer` after it. */
	for (uint32_t k = 0; k < r->n_rings; k++)
		if (xr_load_sc(&r->rings[k].rd->head) != sc[k].head ||
		    (sc[k].count > 0 && (xr_load_sc(&r->rings[k].rd->blocked) ||
					 xr_load_sc(&r->rings[k].rd->writer) ==
						 XR_RING_PRODUCER_ENDED))) {
			xr_atomic_xchg(&r->page->sleep_gen, 0);
			return false;
		}
	/* And a stop our own batches cause, whose kick came before RS2: a
	 * sleep with no deadline would be for good (the caller says so). */
	if (forever && waits_on_itself(r)) {
		xr_atomic_xchg(&r->page->sleep_gen, 0);
		return false;
	}
	return true;
}

/* RS6: ends a sleep; counts it, and its latency when a publish woke it. */
static void wake_up(struct xr_reader *r, uint64_t slept_at)
{
	/* 0 means a writer took the sleep and signalled (or will). */
	if (xr_atomic_xchg(&r->page->sleep_gen, 0) != 0)
		return;
	uint64_t now = xr__now_ns(), last = 0;
	r->wakeups++;
	xr_store_relaxed(&r->page->figs.wakeups, r->wakeups);
	/* From the newest publish: the one that woke us, or a later one (then
	 * this reads a little low). */
	for (uint32_t k = 0; k < r->n_rings; k++) {
		uint64_t t = xr_load_relaxed(&r->rings[k].rd->publish_ns);
		if (t > last)
			last = t;
	}
	/* Only a publish during the sleep woke us; a kick for a blocked ring
	 * or an eviction is not a wakeup latency. */
	if (last > slept_at && now > last) {
		r->wake_hist[lat_bucket(now - last)]++;
		xr__hist_add(&r->page->figs.wake, now - last);
		if (now - last > r->wake_max)
			r->wake_max = now - last;
	}
}

/* Whether the engine is still there: it has not closed the arena, nor hung
 * up the connection (which it does when its process ends, however it
 * ends). */
static bool engine_alive(struct xr_reader *r)
{
	struct pollfd pf = {.fd = r->sock, .events = POLLRDHUP};

	if (!xr__arena_alive(r->arena))
		return false;
	return poll(&pf, 1, 0) == 0 || !(pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Whether xr_reader_cancel() asked this wait to end (and takes the ask). */
static bool cancelled(struct xr_reader *r)
{
	uint64_t drain;

	if (!xr_load_acquire(&r->cancel))
		return false;
	xr_store_relaxed(&r->cancel, 0);
	while (read(r->cancel_fd, &drain, sizeof(drain)) > 0)
		;
	return true;
}

static bool cancel_taken(void *arg)
{
	return cancelled(arg);
}

/* Sleeps until a writer says a batch of min is ready in some ring,
 * max_wait_ns passes, the engine goes away, or the wait is cancelled
 * (-EINTR: xr_reader_cancel, or a signal handler ran): RS0-RS6 (top of
 * shm/wake.c). sc[k] is what the last walk of ring k found. */
static int sleep_until_woken(struct xr_reader *r, uint32_t min, int64_t wait_ns,
			     const struct xr_scan *sc)
{
	uint64_t slept_at = xr__now_ns();
	struct pollfd pf[2] = {{.fd = r->sock, .events = POLLIN},
			       {.fd = r->cancel_fd, .events = POLLIN}};
	struct timespec ts = {wait_ns / 1000000000, wait_ns % 1000000000};
	int rc;

	if (!go_to_sleep(r, min, sc, wait_ns < 0))
		return 0;
	/* RS5. Without a deadline, no timeout at all: everything that must
	 * end a sleep sends a WAKE (a batch, a blocked ring, an eviction, the
	 * engine closing) or hangs up the socket (the engine dying), and a
	 * cancel writes the cancel eventfd. */
	rc = ppoll(pf, 2, wait_ns < 0 ? NULL : &ts, NULL);
	r->sleeps++;
	xr_store_relaxed(&r->page->figs.sleeps, r->sleeps);
	if (pf[0].revents & (POLLHUP | POLLERR))
		r->engine_gone = true;
	wake_up(r, slept_at);
	if (rc < 0 && errno == EINTR)
		return -EINTR;
	return cancelled(r) ? -EINTR : 0;
}

/* The t_ns of frame f, or 0 when it is not an Experience record of the
 * stream's size (the engine checks records' sizes; this is for figures). */
static uint64_t frame_t_ns(const struct xr_reader *r, const xr_frame *f)
{
	uint64_t t;

	if (!r->t_size || f->len != r->t_size)
		return 0;
	memcpy(&t, (const uint8_t *)xr_frame_data(f) + r->t_off, sizeof(t));
	return t;
}

/* A batch taken: its figures into our page for tools (we are the page's
 * only writer: relaxed loads and stores, see shm/hist.h). The records are
 * leased, so their t_ns are read while no writer may touch them. */
static void count_batch(struct xr_reader *r, const xr_batch *b)
{
	struct xr_reader_figs *f = &r->page->figs;
	uint64_t filtered = 0;

	xr_store_relaxed(&f->batches, xr_load_relaxed(&f->batches) + 1);
	for (uint32_t k = 0; k < r->n_rings; k++)
		filtered += r->rings[k].filtered;
	xr_store_relaxed(&f->filtered, filtered);
	if (!r->t_size || !b->count)
		return;
	const xr_frame *first = b->frames ? b->frames[0] : b->first;
	const xr_frame *last = b->frames ? b->frames[b->count - 1]
					 : (b->stride ? (const xr_frame *)((const uint8_t *)b->first +
								  (size_t)(b->count - 1) * b->stride)
						      : NULL);
	uint64_t t0 = frame_t_ns(r, first), t1 = last ? frame_t_ns(r, last) : 0, now = xr__now_ns();
	if (t0 && now >= t0)
		xr__hist_add(&f->age, now - t0);
	if (t0 && t1 >= t0)
		xr__hist_add(&f->fill, t1 - t0);
}

/* Takes what one walk of ring k found into b (or with b NULL, only counts
 * it). Returns the count. */
static int take(struct xr_reader *r, uint32_t k, uint32_t hi, struct xr_take *t, xr_batch *b)
{
	struct xr_ring_rd *rr = &r->rings[k];

	if (!b) {
		xr__rr_unpeek(rr);
		return (int)t->count;
	}
	xr__rr_commit(rr, t);
	fill_batch(r, k, hi, t, b);
	count_batch(r, b);
	r->next_ring = (k + 1) % r->n_rings;
	return (int)t->count;
}

/* xr_reader_read() when b is given; xr_reader_wait() (count only, take
 * nothing) when b is NULL. */
static int read_or_wait(xr_reader *r, uint32_t min, uint32_t max, int64_t max_wait_ns,
			xr_batch *b)
{
	uint64_t start = 0;
	struct xr_scan sc[XR_MAX_RINGS];
	struct xr_take t;
	uint32_t hi;
	int rc;

	if (!r || min == 0 || min > max || max > XR_BATCH_MAX)
		return -EINVAL;
	if (r->gm) {
		struct xr_gm_cancel c = {.fd = r->cancel_fd, .taken = cancel_taken, .arg = r};
		return xr__gm_read(r->gm, min, max, max_wait_ns, b, &c);
	}
	if (r->n_held >= XR_HELD_MAX)
		return -ENOBUFS;
	rc = check_slot(r);
	if (rc < 0)
		return rc;
	if (r->armed) {
		xr_atomic_xchg(&r->page->sleep_gen, 0);
		r->armed = false;
	}
	hi = free_held(r);
	rc = reserve_idx(r, hi, max);
	if (rc < 0)
		return rc;

	for (;;) {
		uint32_t best = 0, best_k = 0;
		bool closed = r->engine_gone ||
			      xr_load_acquire(&r->arena->hdr->state) != XR_ARENA_READY;

		for (uint32_t j = 0; j < r->n_rings; j++) {
			uint32_t k = (r->next_ring + j) % r->n_rings;
			struct xr_ring_rd *rr = &r->rings[k];

			rc = peek(r, k, max, hi, &t);
			if (rc < 0)
				return rc;
			/* Short of min, still hand out what there is when no more
			 * can come: closed, a full walk, a writer blocked on
			 * the lease this very batch holds (shm/wake.c)... */
			/* ...or its producer has gone (acquire: pairs with the
			 * engine's release after its last publish). */
			if (t.count >= min ||
			    (t.count > 0 && (closed || t.full || xr_load_acquire(&rr->rd->blocked) ||
					     xr_load_acquire(&rr->rd->writer) ==
						     XR_RING_PRODUCER_ENDED)))
				return take(r, k, hi, &t, b);
			sc[k] = (struct xr_scan){t.end, t.next_seq, t.head, t.count};
			if (t.count > best) {
				best = t.count;
				best_k = k;
			}
			xr__rr_unpeek(rr);
		}

		uint64_t now = xr__now_ns();
		if (!start)
			start = now;
		bool expired = max_wait_ns >= 0 && now - start >= (uint64_t)max_wait_ns;
		if (expired && best > 0) {
			rc = peek(r, best_k, max, hi, &t);
			return rc < 0 ? rc : take(r, best_k, hi, &t, b);
		}
		/* Everything published has been read: a closed arena ends here. */
		if (closed)
			return XR_ECLOSED;
		if (now - r->alive_ns >= XR_ALIVE_CHECK_NS) {
			r->alive_ns = now;
			if (!engine_alive(r)) {
				r->engine_gone = true;
				continue; /* one more pass drains what is left */
			}
			rc = check_slot(r);
			if (rc < 0)
				return rc;
		}
		if (expired)
			return 0;
		if (cancelled(r))
			return -EINTR;
		if (max_wait_ns < 0 && waits_on_itself(r)) {
			/* A close since this pass's look: the next pass ends
			 * with what is left, then XR_ECLOSED. */
			if (xr_load_acquire(&r->arena->hdr->state) != XR_ARENA_READY)
				continue;
			return held_back(r);
		}
		if (!r->woken || now - start < XR_SPIN_BEFORE_SLEEP_NS) {
			xr_cpu_relax();
			continue;
		}
		int64_t left = max_wait_ns < 0 ? -1 : max_wait_ns - (int64_t)(now - start);
		rc = sleep_until_woken(r, min, left, sc);
		if (rc < 0)
			return rc;
		/* Asleep, the alive check's clock ran: check now. */
		r->alive_ns = 0;
	}
}

int xr_reader_read(xr_reader *r, uint32_t min, uint32_t max, int64_t max_wait_ns, xr_batch *b)
{
	if (!b)
		return -EINVAL;
	return read_or_wait(r, min, max, max_wait_ns, b);
}

int xr_reader_wait(xr_reader *r, uint32_t min, int64_t max_wait_ns)
{
	return read_or_wait(r, min, min, max_wait_ns, NULL);
}

int xr_reader_arm(xr_reader *r, uint32_t min)
{
	struct xr_scan sc[XR_MAX_RINGS];
	struct xr_take t;
	int rc;

	if (!r || min == 0 || min > XR_BATCH_MAX)
		return -EINVAL;
	if (!r->woken || r->gm)
		return -ENOTSUP;
	rc = check_slot(r);
	if (rc < 0)
		return rc;
	uint32_t hi = free_held(r);
	if (hi == XR_HELD_MAX)
		return -ENOBUFS;
	rc = reserve_idx(r, hi, min);
	if (rc < 0)
		return rc;
	for (uint32_t k = 0; k < r->n_rings; k++) {
		rc = peek(r, k, min, hi, &t);
		xr__rr_unpeek(&r->rings[k]);
		if (rc < 0)
			return rc;
		/* As a read: short of min, there is a batch when no more can
		 * come (a full walk, or a writer blocked on what we hold). */
		if (t.count >= min || t.full ||
		    (t.count > 0 && xr_load_acquire(&r->rings[k].rd->blocked)))
			return 1;
		sc[k] = (struct xr_scan){t.end, t.next_seq, t.head, t.count};
	}
	/* As sleep_until_woken, without the sleep: the caller polls the fd,
	 * which nothing would make readable. */
	if (waits_on_itself(r))
		return held_back(r);
	if (!go_to_sleep(r, min, sc, true))
		return 1;
	r->armed = true;
	return 0;
}

int xr_reader_ring_memory(const xr_reader *r, uint32_t k, const void **base, uint64_t *len)
{
	if (!r || !r->arena || k >= r->n_rings)
		return -EINVAL;
	*base = r->rings[k].data;
	*len = 2 * r->rings[k].cap;
	return 0;
}

int xr_reader_fd(const xr_reader *r)
{
	return r && r->woken ? r->sock : -1;
}

void xr_reader_cancel(xr_reader *r)
{
	uint64_t one = 1;

	if (!r)
		return;
	xr_store_release(&r->cancel, 1);
	/* Async-signal-safe: a store and a write. A full counter (EAGAIN) is
	 * already readable. */
	if (write(r->cancel_fd, &one, sizeof(one)) < 0)
		return;
}

int xr_batch_release(xr_reader *r, xr_batch *b)
{
	uint32_t i;
	struct xr_held *e;

	if (!r || !b)
		return -EINVAL;
	if (r->gm)
		return xr__gm_release(r->gm, b);
	i = (uint32_t)(b->id_ >> 48);
	if (i >= XR_HELD_MAX)
		return -EINVAL;
	e = &r->held[i];
	if (!e->id || e->id != (b->id_ & ((1ull << 48) - 1)))
		return -EINVAL;
	e->id = 0;
	r->n_held--;
	struct xr_ring_rd *rr = &r->rings[e->ring];
	rr->held--;
	xr__rr_set_lease(rr, oldest_held(r, e->ring));
	b->id_ = 0;
	b->first = NULL;
	b->frames = NULL;
	return 0;
}

int xr__reader_held_back(const xr_reader *r)
{
	return r && !r->gm && r->n_rings && waits_on_itself(r) ? held_back(r) : 0;
}

void xr_reader_note_copy(xr_reader *r)
{
	if (r && r->page)
		xr_store_relaxed(&r->page->figs.copies, xr_load_relaxed(&r->page->figs.copies) + 1);
}

int xr_reader_stats_get(xr_reader *r, xr_reader_stats *s)
{
	int rc = check_slot(r);

	memset(s, 0, sizeof(*s));
	s->policy = r->policy;
	s->held = r->n_held;
	s->sleeps = r->sleeps;
	s->wakeups = r->wakeups;
	s->idle_poll = r->qos_fd >= 0;
	uint64_t n = 0;
	for (uint32_t b = 0; b < XR_LAT_BUCKETS; b++)
		n += r->wake_hist[b];
	s->wake_ns_p50 = lat_percentile(r->wake_hist, n, 0.50, r->wake_max);
	s->wake_ns_p99 = lat_percentile(r->wake_hist, n, 0.99, r->wake_max);
	s->wake_ns_max = r->wake_max;
	if (r->gm)
		return xr__gm_stats(r->gm, s);
	if (rc < 0)
		return rc;
	for (uint32_t k = 0; k < r->n_rings; k++) {
		struct xr_ring_rd *rr = &r->rings[k];
		uint64_t pending, unseen, written, lag;

		rc = xr__rr_count(rr, &pending, &unseen, &written, &lag);
		if (rc != -ETIMEDOUT)
			rc = walked(r, k, rc);
		if (rc == -ETIMEDOUT) {
			/* The -EPROTO of attach (xr__rr_start), with its reason:
			 * without one a caller cannot tell it from a malformed
			 * frame, nor say what to do. */
			xr__set_last_reason("engine %s stopped in the middle of a publish on ring "
					    "%u; restart the engine",
					    r->name, r->first_ring + k);
			return -EPROTO;
		}
		if (rc < 0)
			return rc;
		s->written += written;
		s->read += rr->read;
		s->filtered += rr->filtered;
		s->dropped += rr->dropped + unseen;
		s->pending += pending;
		s->lag_bytes += lag;
	}
	return 0;
}

void xr_reader_detach(xr_reader *r)
{
	if (!r)
		return;
	teardown(r);
	close(r->cancel_fd);
	for (uint32_t i = 0; i < XR_HELD_MAX; i++)
		free(r->idx[i]);
	free(r);
}

void xr_reader_stream_facts(const xr_reader *r, xr_stream_facts *f)
{
	const struct xr_stream_desc *sd = &r->arena->lay.streams[r->stream];

	f->name = sd->name;
	f->policy = sd->policy;
	f->n_rings = sd->n_rings;
	f->ring_capacity = sd->ring_capacity;
	f->frame_align = sd->frame_align;
	f->record_kind = sd->record_kind;
	f->shape = sd->shape;
	f->producers = sd->producers;
	f->engine_start = r->arena->lay.writer_start;
}

int xr_reader_ring_writer(const xr_reader *r, uint32_t k)
{
	_Static_assert((int)XR_WRITER_ENDED == (int)XR_RING_PRODUCER_ENDED &&
			       (int)XR_WRITER_PRODUCER == (int)XR_RING_PRODUCER_LIVE &&
			       (int)XR_WRITER_IDLE == (int)XR_RING_PRODUCER_IDLE,
		       "the public words are the layout's");
	if (!r || k >= r->n_rings)
		return -EINVAL;
	/* Acquire: as in read_or_wait(), what the ring's last writer
	 * published is visible once its end is. */
	uint32_t w = xr_load_acquire(&r->rings[k].rd->writer);
	return w <= XR_RING_PRODUCER_ENDED ? (int)w : XR_WRITER_ENGINE;
}

int xr_reader_status(const xr_reader *r)
{
	return r ? check_slot(r) : -EINVAL;
}

uint32_t xr__reader_slot(const xr_reader *r)
{
	return r->slot_idx;
}

struct xr_peer_page *xr__reader_page(xr_reader *r)
{
	return r->page;
}

int xr__reader_sock(const xr_reader *r)
{
	return r->sock;
}

const struct xr_reader_info *xr__reader_info(const xr_reader *r)
{
	return r->info;
}

const struct xr_arena *xr__reader_arena(const xr_reader *r)
{
	return r->arena;
}

struct xr_gpage *xr__reader_group_page(xr_reader *r)
{
	return r->gm ? xr__gm_page(r->gm) : NULL;
}
