/* SPDX-License-Identifier: MIT */
/*
 * The table service (table_service.h): tables, their item stores, trainers'
 * pages and leases, and the request loop, all owned by one thread.
 *
 * Memory ordering. A page carries one request at a time between two
 * processes: the trainer fills the request's fields with plain stores and
 * publishes with a release store of req.seq; the service's acquire load of
 * req.seq that sees the new value makes the fields visible, and the service
 * copies each field it uses once (a trainer that rewrites them meanwhile
 * only changes its own request). The answer is the mirror image: plain
 * stores of the answer, then a release store of resp.seq, which the trainer
 * loads with acquire. In the item store, a slot's bytes are written before
 * the release store of its key; a trainer reads only items it leases, whose
 * bytes the service does not write until the lease ends (table/table.h).
 *
 * A checkpoint is written by a thread of its own (struct job), so that a
 * table of gigabytes holds up no other table; a restore is read by one the
 * same way (its job writes the items into the store, and makes the new
 * bookkeeping apart, which the service thread puts in place at the job's
 * end; its updates wait too). The job's thread reads the
 * table's bookkeeping and items; the service thread changes neither while
 * the job runs: the table's samples, inserts and restores wait parked, the
 * feed's inserts are refused as the rate limiter refuses them, and what
 * must not wait is taken now and done to the bookkeeping after the job
 * (job_end): leases ended by a release, a sample's releases or a
 * trainer's close (the trainer's own record of them, which the job does
 * not read, changes at once, so a closing trainer's slot is free at once),
 * and priority updates (checked now, against a table that cannot change
 * before they are applied). A drop frees the table after the job. The
 * service thread's reads of the table meanwhile race with nothing: both
 * only read. What the thread was given it sees through pthread_create();
 * what it wrote (rc, why, the file) the service sees through the release
 * store of done, read with acquire, and the pthread_join() that follows.
 */
#include "table_service.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/atomics.h"
#include "util/fs.h"

struct stable {
	bool live;
	char name[XR_TABLE_NAME_MAX + 1];
	struct xr_tb t;
	uint32_t item_size;
	uint64_t stride, bytes;
	int fd;
	uint8_t *map;
	_Atomic uint64_t *keys; /* in the store */
	bool fed;               /* the engine feeds it: trainers do not insert */
	bool dropped;           /* its name is free; every request fails -EIDRM */
	bool feed_held;         /* dropped, and its feed not torn down yet */
	uint8_t *items;
	uint32_t clients;
	struct job *job;        /* a checkpoint being written, or NULL */
};

/* A trainer's leases: key -> count, open addressing with linear probing
 * (keys are never 0: generations start at 1). */
struct leases {
	uint64_t *key;
	uint32_t *count;
	uint32_t cap, used;
	uint64_t total;
};

struct client {
	bool live;
	int table;
	uint8_t *map;
	uint64_t bytes;
	struct xr_tpage_req *req;
	struct xr_tpage_resp *resp;
	uint8_t *ins;
	uint32_t seen;          /* the last request answered */
	bool admin;             /* the engine's uid: may checkpoint and restore */
	bool parked;
	uint32_t released;      /* the SAMPLE whose keys to release were released */
	uint32_t p_seq, p_op, p_n;
	uint64_t deadline;
	struct leases l;
};

struct xr_tsvc {
	struct stable tables[XR_TSVC_TABLES_MAX];
	struct client clients[XR_TSVC_CLIENTS_MAX];
	uint64_t (*clock)(void);
	struct xr_table_view *views; /* the arena's, for tools; NULL in tests */
	void (*wake)(void *);        /* a job is done: poll again */
	void *wake_ctx;
	void (*job_hook)(void *);    /* tests: on a job's thread, before it writes */
	void *job_hook_ctx;
};

/* What a restore read (restore_read), for restore_apply. */
struct restoring {
	struct xr_tb fresh;   /* rc 0: the table read */
	struct xr_tb empty;   /* written: what the table becomes on a failure */
	uint32_t *floor;      /* written: for the generations handed out */
	bool written;         /* the second pass began: the store holds its items */
	const char *what;
	char why[160];
};

/* A checkpoint of tb being written to path by thread, or a restore of tb
 * from path being read (restoring not NULL), for client's request seq (the
 * file header's words above). */
struct job {
	pthread_t thread;
	struct xr_tsvc *s;
	struct stable *tb;
	struct restoring *restoring;
	char path[XR_TPAGE_PATH_MAX];
	uint32_t client, seq;
	int rc;
	char why[160];
	_Atomic bool done;   /* release by the thread, acquire by the service */
	_Atomic bool cancel; /* the service stops: give up, remove the file */
	/* Per slot, for job_end(): leases ended meanwhile, and the last
	 * priority sent meanwhile (made at the first update). */
	uint32_t *ended;
	double *prio;
	uint64_t *has_prio; /* bit per slot: prio[slot] was sent */
	uint64_t taken;     /* leases and priorities kept, for job_end() */
	bool joined;
};

/* How long a stopping service waits for its checkpoints' threads. */
#define JOB_STOP_NS 2000000000ull
#define JOB_NOBODY UINT32_MAX /* job.client: its trainer closed */

_Static_assert(XR_TSVC_TABLES_MAX == XR_MAX_TABLES, "a view per table index");

void xr__tsvc_set_views(struct xr_tsvc *s, struct xr_table_view *views)
{
	s->views = views;
}

static struct xr_table_view *view_of(struct xr_tsvc *s, const struct stable *tb)
{
	return s->views ? &s->views[tb - s->tables] : NULL;
}

/* Publishes a new table's entry for tools: the fields written while the
 * entry is FREE, then the release store of LIVE (a tool's acquire load of
 * state pairs with it). */
static void view_open(struct xr_tsvc *s, const struct stable *tb)
{
	struct xr_table_view *v = view_of(s, tb);

	if (!v)
		return;
	xr__label_put(v->name, tb->name, sizeof(v->name));
	v->capacity = tb->t.cfg.capacity;
	v->item_size = tb->item_size;
	v->sampler = (uint32_t)tb->t.cfg.sampler;
	v->remover = (uint32_t)tb->t.cfg.remover;
	xr_store_relaxed(&v->item_kind, 0u);
	xr_store_relaxed(&v->creator_uid, 0u);
	xr_store_relaxed(&v->feed, (uint32_t)XR_TFEED_NONE);
	xr_store_relaxed(&v->feed_dropped, 0);
	/* An index's last table's figures are not this one's. */
	xr_store_relaxed(&v->size, 0);
	xr_store_relaxed(&v->leases, 0);
	xr_store_relaxed(&v->inserts, 0);
	xr_store_relaxed(&v->samples, 0);
	xr_store_relaxed(&v->removes, 0);
	xr_store_relaxed(&v->trainers, 0u);
	xr_store_release(&v->state, (uint32_t)XR_TVIEW_LIVE);
}

void xr__tsvc_set_creator(struct xr_tsvc *s, int table, uint32_t uid)
{
	struct xr_table_view *v = view_of(s, &s->tables[table]);

	if (v)
		xr_store_relaxed(&v->creator_uid, uid);
}

void xr__tsvc_set_clock(struct xr_tsvc *s, uint64_t (*clock)(void))
{
	s->clock = clock;
}

void xr__tsvc_set_waker(struct xr_tsvc *s, void (*wake)(void *), void *ctx)
{
	s->wake = wake;
	s->wake_ctx = ctx;
}

void xr__tsvc_set_job_hook(struct xr_tsvc *s, void (*hook)(void *), void *ctx)
{
	s->job_hook = hook;
	s->job_hook_ctx = ctx;
}

int xr__tsvc_create(struct xr_tsvc **out)
{
	struct xr_tsvc *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	*out = s;
	return 0;
}

static void drop_table(struct xr_tsvc *s, struct stable *tb)
{
	struct xr_table_view *v = view_of(s, tb);

	if (v)
		xr_store_relaxed(&v->state, (uint32_t)XR_TVIEW_FREE);
	if (tb->map)
		munmap(tb->map, tb->bytes);
	if (tb->fd >= 0)
		close(tb->fd);
	xr__tb_free(&tb->t);
	memset(tb, 0, sizeof(*tb));
}

static void job_end(struct xr_tsvc *s, struct stable *tb, int *answers, uint64_t *mask);

int xr__tsvc_destroy(struct xr_tsvc *s)
{
	if (!s)
		return 0;
	/* Every checkpoint told to stop, then each waited for: a thread
	 * stops at its next write. One stuck in a write (a file system that
	 * does not answer) is left to the process's exit after JOB_STOP_NS,
	 * with all it may touch (this service, its tables): the caller is
	 * told. */
	for (int i = 0; i < XR_TSVC_TABLES_MAX; i++)
		if (s->tables[i].job)
			atomic_store_explicit(&s->tables[i].job->cancel, true, memory_order_relaxed);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += JOB_STOP_NS / 1000000000ull;
	for (int i = 0; i < XR_TSVC_TABLES_MAX; i++) {
		struct job *j = s->tables[i].job;
		if (!j)
			continue;
		if (pthread_timedjoin_np(j->thread, NULL, &until) != 0) {
			/* Not even its file's name is removed: the file system
			 * that holds the thread would hold us too. A file cut
			 * short is refused by a restore (its length, its
			 * checksum). */
			pthread_detach(j->thread);
			return -EBUSY;
		}
		/* Joined: job_end() joins nothing more (a thread joined once
		 * is not joined again). */
		j->joined = true;
		job_end(s, &s->tables[i], NULL, NULL);
	}
	for (uint32_t c = 0; c < XR_TSVC_CLIENTS_MAX; c++)
		if (s->clients[c].live)
			xr__tsvc_close(s, c);
	for (int i = 0; i < XR_TSVC_TABLES_MAX; i++)
		if (s->tables[i].live)
			drop_table(s, &s->tables[i]);
	free(s);
	return 0;
}

static bool good_name(const char *name)
{
	size_t n = strnlen(name, XR_TABLE_NAME_MAX + 1);

	if (n == 0 || n > XR_TABLE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int xr__tsvc_table_find(const struct xr_tsvc *s, const char *name)
{
	for (int i = 0; i < XR_TSVC_TABLES_MAX; i++)
		if (s->tables[i].live && !s->tables[i].dropped && !strcmp(s->tables[i].name, name))
			return i;
	return -ENOENT;
}

/* A dropped table goes once nothing uses it: no trainer (whose mapping of
 * the store would keep its memory anyway) and no feed (whose reader the
 * table thread detaches in its own time). */
static void maybe_free(struct xr_tsvc *s, struct stable *tb)
{
	if (tb->live && tb->dropped && !tb->clients && !tb->feed_held && !tb->job)
		drop_table(s, tb);
}

int xr__tsvc_table_drop(struct xr_tsvc *s, int table)
{
	if (table < 0 || table >= XR_TSVC_TABLES_MAX || !s->tables[table].live ||
	    s->tables[table].dropped)
		return -ENOENT;
	struct stable *tb = &s->tables[table];
	struct xr_tstore_hdr *h = (struct xr_tstore_hdr *)tb->map;

	tb->dropped = true;
	tb->feed_held = tb->fed;
	/* Relaxed: a figure to show; the trainers learn it from the answer
	 * to their next request (-EIDRM), parked ones at the next poll. */
	xr_store_relaxed(&h->dropped, 1u);
	struct xr_table_view *v = view_of(s, tb);
	if (v)
		xr_store_relaxed(&v->state, (uint32_t)XR_TVIEW_DROPPED);
	maybe_free(s, tb);
	return 0;
}

void xr__tsvc_feed_gone(struct xr_tsvc *s, int table)
{
	struct stable *tb = &s->tables[table];

	tb->feed_held = false;
	/* Its reader has left the stream: no feed now, what it dropped kept. */
	const struct xr_tstore_hdr *h = (const struct xr_tstore_hdr *)tb->map;
	xr__tsvc_show_feed(s, table, XR_TFEED_NONE, xr_load_relaxed(&h->feed_dropped));
	maybe_free(s, tb);
}

bool xr__tsvc_table_live(const struct xr_tsvc *s, int table)
{
	return s->tables[table].live;
}

bool xr__tsvc_table_dropped(const struct xr_tsvc *s, int table)
{
	return s->tables[table].dropped;
}

int xr__tsvc_table_create(struct xr_tsvc *s, const char *name, const struct xr_tb_cfg *cfg,
			  uint32_t item_size, const char **why)
{
	struct stable *tb = NULL;
	int rc;

	if (!good_name(name)) {
		*why = "a table's name is 1 to 31 characters of A-Z a-z 0-9 _ . -";
		return -EINVAL;
	}
	if (item_size == 0 || item_size > (1u << 20)) {
		*why = "an item is 1 byte to 1 MiB";
		return -EINVAL;
	}
	if (xr__tsvc_table_find(s, name) >= 0) {
		*why = "a table of that name exists";
		return -EEXIST;
	}
	for (int i = 0; i < XR_TSVC_TABLES_MAX && !tb; i++)
		if (!s->tables[i].live)
			tb = &s->tables[i];
	if (!tb) {
		*why = "this engine hosts its most tables (16)";
		return -ENOSPC;
	}
	memset(tb, 0, sizeof(*tb));
	tb->fd = -1;
	rc = xr__tb_init(&tb->t, cfg, why);
	if (rc < 0)
		return rc;
	tb->item_size = item_size;
	tb->stride = ((uint64_t)item_size + 63) & ~63ull;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t keys_off = page, items_off = keys_off + (((uint64_t)cfg->capacity * 8 + page - 1) &
							 ~(page - 1));
	tb->bytes = items_off + tb->stride * cfg->capacity;
	rc = xr__memfd_map("xring-table", tb->bytes, true, &tb->fd, &tb->map);
	if (rc < 0) {
		xr__tb_free(&tb->t);
		*why = "cannot make the table's item store (memory)";
		return rc;
	}
	struct xr_tstore_hdr *h = (struct xr_tstore_hdr *)tb->map;
	*h = (struct xr_tstore_hdr){.magic = XR_TSTORE_MAGIC, .capacity = cfg->capacity,
				    .item_size = item_size, .stride = tb->stride,
				    .keys_off = keys_off, .items_off = items_off,
				    .total_size = tb->bytes};
	snprintf(h->name, sizeof(h->name), "%s", name);
	tb->keys = (_Atomic uint64_t *)(tb->map + keys_off);
	tb->items = tb->map + items_off;
	snprintf(tb->name, sizeof(tb->name), "%s", name);
	tb->live = true;
	view_open(s, tb);
	return 0;
}

struct xr_tb *xr__tsvc_table(struct xr_tsvc *s, int table)
{
	return &s->tables[table].t;
}

void xr__tsvc_set_fed(struct xr_tsvc *s, int table)
{
	s->tables[table].fed = true;
	xr__tsvc_show_feed(s, table, XR_TFEED_ON, 0);
}

void xr__tsvc_show_feed(struct xr_tsvc *s, int table, uint32_t state, uint64_t dropped)
{
	struct xr_tstore_hdr *h = (struct xr_tstore_hdr *)s->tables[table].map;
	struct xr_table_view *v = view_of(s, &s->tables[table]);

	xr_store_relaxed(&h->feed, state);
	xr_store_relaxed(&h->feed_dropped, dropped);
	if (v) {
		xr_store_relaxed(&v->feed, state);
		xr_store_relaxed(&v->feed_dropped, dropped);
	}
}

void xr__tsvc_set_item(struct xr_tsvc *s, int table, uint32_t kind, const xr_exp_shape *sh)
{
	struct xr_tstore_hdr *h = (struct xr_tstore_hdr *)s->tables[table].map;

	/* Before the store is handed out (the descriptor's passing orders
	 * these stores before any trainer's loads). */
	h->item_kind = kind;
	h->obs_dtype = (uint32_t)sh->obs_dtype;
	h->obs_ndim = sh->obs_ndim;
	memcpy(h->obs_dims, sh->obs_dims, sizeof(h->obs_dims));
	h->mask_len = sh->mask_len;
	h->extras_len = sh->extras_len;
	h->has_shape = 1;
	struct xr_table_view *v = view_of(s, &s->tables[table]);
	if (v)
		xr_store_relaxed(&v->item_kind, 1 + kind); /* 0: trainers' bytes */
}

uint32_t xr__tsvc_item_size(const struct xr_tsvc *s, int table)
{
	return s->tables[table].item_size;
}

int xr__tsvc_store_fd(const struct xr_tsvc *s, int table, uint64_t *size)
{
	char proc[64];
	int fd;

	/* Opened anew read-only: a trainer holding it can map the store but
	 * never write it (nor upgrade its mapping: no write access to ask). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->tables[table].fd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*size = s->tables[table].bytes;
	return fd;
}

/* ---- leases ---- */

static uint32_t slot_hash(uint64_t key, uint32_t cap)
{
	key *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(key >> 32) & (cap - 1);
}

static int lease_grow(struct leases *l)
{
	uint32_t cap = l->cap ? l->cap * 2 : 1024;
	uint64_t *key = calloc(cap, sizeof(uint64_t));
	uint32_t *count = calloc(cap, sizeof(uint32_t));

	if (!key || !count) {
		free(key);
		free(count);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < l->cap; i++) {
		if (!l->key[i])
			continue;
		uint32_t h = slot_hash(l->key[i], cap);
		while (key[h])
			h = (h + 1) & (cap - 1);
		key[h] = l->key[i];
		count[h] = l->count[i];
	}
	free(l->key);
	free(l->count);
	l->key = key;
	l->count = count;
	l->cap = cap;
	return 0;
}

static int lease_add(struct leases *l, uint64_t key)
{
	if (!key)
		return -EINVAL; /* the empty cell's mark: never a key (table.h) */
	if ((l->used + 1) * 2 > l->cap && lease_grow(l) < 0)
		return -ENOMEM;
	uint32_t h = slot_hash(key, l->cap);
	while (l->key[h] && l->key[h] != key)
		h = (h + 1) & (l->cap - 1);
	if (!l->key[h]) {
		l->key[h] = key;
		l->used++;
	}
	l->count[h]++;
	l->total++;
	return 0;
}

/* Ends one lease on key; false if this trainer holds none. */
static bool lease_drop(struct leases *l, uint64_t key)
{
	if (!l->cap || !key)
		return false;
	uint32_t h = slot_hash(key, l->cap);
	while (l->key[h] && l->key[h] != key)
		h = (h + 1) & (l->cap - 1);
	if (!l->key[h])
		return false;
	l->total--;
	if (--l->count[h])
		return true;
	/* Backward-shift deletion: later keys of the probe run move up, so
	 * lookups never stop at a hole they should have crossed. */
	uint32_t hole = h, j = h;
	for (;;) {
		j = (j + 1) & (l->cap - 1);
		if (!l->key[j])
			break;
		uint32_t home = slot_hash(l->key[j], l->cap);
		bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
		if (between)
			continue;
		l->key[hole] = l->key[j];
		l->count[hole] = l->count[j];
		hole = j;
	}
	l->key[hole] = 0;
	l->count[hole] = 0;
	l->used--;
	return true;
}

/* ---- clients ---- */

/* The figures in the store's header and in the arena's view of the table
 * (relaxed: numbers to show). */
static void show(struct xr_tsvc *s, struct stable *tb)
{
	struct xr_tstore_hdr *h = (struct xr_tstore_hdr *)tb->map;
	struct xr_table_view *v = view_of(s, tb);

	xr_store_relaxed(&h->size, tb->t.size);
	xr_store_relaxed(&h->leases, tb->t.leases);
	xr_store_relaxed(&h->inserts, tb->t.lim.inserts);
	xr_store_relaxed(&h->samples, tb->t.lim.samples);
	xr_store_relaxed(&h->removes, tb->t.lim.removes);
	xr_store_relaxed(&h->trainers, tb->clients);
	if (!v)
		return;
	xr_store_relaxed(&v->size, tb->t.size);
	xr_store_relaxed(&v->leases, tb->t.leases);
	xr_store_relaxed(&v->inserts, tb->t.lim.inserts);
	xr_store_relaxed(&v->samples, tb->t.lim.samples);
	xr_store_relaxed(&v->removes, tb->t.lim.removes);
	xr_store_relaxed(&v->trainers, tb->clients);
}


int xr__tsvc_open(struct xr_tsvc *s, int table, bool admin, uint32_t *client, int *page_fd,
		  uint64_t *page_size)
{
	struct client *c = NULL;
	uint32_t i;
	int rc;

	if (table < 0 || table >= XR_TSVC_TABLES_MAX || !s->tables[table].live ||
	    s->tables[table].dropped)
		return -ENOENT;
	for (i = 0; i < XR_TSVC_CLIENTS_MAX; i++)
		if (!s->clients[i].live) {
			c = &s->clients[i];
			break;
		}
	if (!c)
		return -ENOSPC;
	memset(c, 0, sizeof(*c));
	c->bytes = xr_tpage_size(s->tables[table].item_size);
	rc = xr__memfd_map("xring-trainer", c->bytes, false, page_fd, &c->map);
	if (rc < 0)
		return rc;
	c->req = (struct xr_tpage_req *)c->map;
	c->resp = (struct xr_tpage_resp *)(c->map + XR_TPAGE_RESP_OFF);
	c->ins = c->map + XR_TPAGE_INSERT_OFF;
	c->table = table;
	c->admin = admin;
	c->live = true;
	s->tables[table].clients++;
	show(s, &s->tables[table]);
	*client = i;
	*page_size = c->bytes;
	return 0;
}

static void end_lease(struct stable *tb, uint64_t key);

void xr__tsvc_close(struct xr_tsvc *s, uint32_t client)
{
	if (client >= XR_TSVC_CLIENTS_MAX || !s->clients[client].live)
		return;
	struct client *c = &s->clients[client];
	struct stable *tb = &s->tables[c->table];

	/* Its checkpoint goes on; its answer goes to nobody (its slot may be
	 * another trainer's before the checkpoint ends). */
	if (tb->job && tb->job->client == client)
		tb->job->client = JOB_NOBODY;
	for (uint32_t i = 0; i < c->l.cap; i++)
		for (; c->l.count[i]; c->l.count[i]--)
			end_lease(tb, c->l.key[i]);
	free(c->l.key);
	free(c->l.count);
	munmap(c->map, c->bytes);
	tb->clients--;
	memset(c, 0, sizeof(*c));
	if (tb->dropped)
		maybe_free(s, tb);
	if (tb->live)
		show(s, tb); /* a dropped table's too, until it goes */
}

void *xr__tsvc_page(struct xr_tsvc *s, uint32_t client)
{
	return s->clients[client].map;
}

uint64_t xr__tsvc_leases(const struct xr_tsvc *s, uint32_t client)
{
	return s->clients[client].l.total;
}

/* ---- requests ---- */

static void answer(struct client *c, uint32_t seq, int rc, uint32_t refused, const char *why)
{
	c->resp->rc = rc;
	c->resp->refused = refused;
	if (rc < 0)
		snprintf(c->resp->why, sizeof(c->resp->why), "%s", why ? why : "");
	xr_store_release(&c->resp->seq, seq);
	c->seen = seq;
	c->parked = false;
}

static void put_item(struct stable *tb, uint32_t slot, uint64_t key, const void *bytes,
		     uint32_t len)
{
	uint8_t *dst = tb->items + (uint64_t)slot * tb->stride;

	memcpy(dst, bytes, len);
	if (len < tb->item_size)
		memset(dst + len, 0, tb->item_size - len);
	xr_store_release(&tb->keys[slot], key); /* after the bytes */
}

/* The largest sample the limiter can ever allow at once: inserts take D to
 * at least max_diff - spi, and a sample of n needs D - n >= min_diff. */
static uint64_t max_batch(const struct xr_tb *t)
{
	if (t->lim.spi == 0)
		return UINT64_MAX;
	double w = t->lim.max_diff - t->lim.min_diff - t->lim.spi;
	return w < 1 ? 1 : w >= 0x1p63 ? UINT64_MAX : (uint64_t)w;
}

/* Tries to serve a SAMPLE of n now: > 0 served, 0 must wait, < 0 failed. */
static int try_sample(struct stable *tb, struct client *c, uint32_t n)
{
	struct xr_tb *t = &tb->t;
	struct xr_tpage_resp *r = c->resp;
	uint64_t keys[XR_TABLE_BATCH_MAX];
	double prob[XR_TABLE_BATCH_MAX], weight[XR_TABLE_BATCH_MAX];

	if (!t->size || xr_limiter_samples_allowed(&t->lim, n) < n)
		return 0;
	int m = xr__tb_sample(t, n, keys, prob, weight);
	if (m <= 0)
		return 0;
	for (int i = 0; i < m; i++) {
		if (lease_add(&c->l, keys[i]) < 0) {
			for (int j = i; j < m; j++)
				xr__tb_release(t, keys[j]);
			for (int j = 0; j < i; j++) {
				lease_drop(&c->l, keys[j]);
				xr__tb_release(t, keys[j]);
			}
			return -ENOMEM;
		}
		r->keys[i] = keys[i];
		r->slots[i] = (uint32_t)keys[i];
		r->prob[i] = prob[i];
		r->weight[i] = weight[i];
	}
	return m;
}

/* Tries to serve an INSERT of n now: the items that went (> 0), 0 must
 * wait, < 0 failed. A refusal part way answers with the part that went. */
static int try_insert(struct stable *tb, struct client *c, uint32_t n, uint32_t *bad)
{
	struct xr_tb *t = &tb->t;
	int k = 0;

	for (uint32_t i = 0; i < n; i++) {
		double p = c->req->prio[i]; /* read once */
		uint64_t key, ev;
		uint32_t slot;

		int rc = xr__tb_insert(t, p, &key, &slot, &ev);
		if (rc == -EINVAL) {
			*bad = i;
			return k ? k : -EINVAL;
		}
		if (rc < 0)
			return k;
		put_item(tb, slot, key, c->ins + (uint64_t)i * tb->item_size, tb->item_size);
		c->resp->keys[k] = key;
		c->resp->slots[k] = slot;
		k++;
	}
	return k;
}

/* ---- checkpoints ---- */

/* A checkpoint is written with write(2) from a buffer of its own, not
 * stdio: the process's exit flushes every stdio stream, and one whose
 * file system stopped answering would hold the engine's exit with it. */
enum { CK_BUF = 1 << 20 };

struct ckpt_io {
	FILE *f;          /* restore: reading */
	int fd;           /* checkpoint: writing, from buf */
	uint8_t *buf;
	size_t used;
	struct stable *tb;
	uint8_t *scratch; /* restore's first pass: items read, not kept */
	_Atomic bool *cancel;
};

static int ck_flush(struct ckpt_io *io)
{
	for (size_t done = 0; done < io->used;) {
		ssize_t w = write(io->fd, io->buf + done, io->used - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO; /* ENOSPC, EDQUOT say more */
		done += (size_t)w;
	}
	io->used = 0;
	return 0;
}

static int ck_put(void *ctx, const void *p, size_t n)
{
	struct ckpt_io *io = ctx;

	/* Relaxed: a request to stop soon; nothing is read through it. */
	if (io->cancel && atomic_load_explicit(io->cancel, memory_order_relaxed))
		return -ECANCELED;
	while (n) {
		size_t k = CK_BUF - io->used < n ? CK_BUF - io->used : n;
		memcpy(io->buf + io->used, p, k);
		io->used += k;
		p = (const uint8_t *)p + k;
		n -= k;
		if (io->used == CK_BUF) {
			int rc = ck_flush(io);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int ck_get(void *ctx, void *p, size_t n)
{
	struct ckpt_io *io = ctx;

	/* Relaxed: as in ck_put. */
	if (io->cancel && atomic_load_explicit(io->cancel, memory_order_relaxed))
		return -ECANCELED;
	if (fread(p, 1, n, io->f) == n)
		return 0;
	return ferror(io->f) ? -EIO : -ENODATA;
}

/* What the table's items are, as its checkpoints say: the store header's
 * own words (the engine wrote them), so a checkpoint of records of another
 * stream shape, or of transitions, is not restored into this table. */
static void item_tag(const struct stable *tb, uint8_t tag[XR_TB_TAG])
{
	const struct xr_tstore_hdr *h = (const struct xr_tstore_hdr *)tb->map;
	uint32_t w[5] = {h->item_kind, h->has_shape, h->obs_dtype, h->obs_ndim, h->mask_len};

	_Static_assert(sizeof(w) + sizeof(h->obs_dims) + sizeof(h->extras_len) <= XR_TB_TAG,
		       "the tag holds the item's words");
	memset(tag, 0, XR_TB_TAG);
	memcpy(tag, w, sizeof(w));
	memcpy(tag + sizeof(w), h->obs_dims, sizeof(h->obs_dims));
	memcpy(tag + sizeof(w) + sizeof(h->obs_dims), &h->extras_len, sizeof(h->extras_len));
}

static void *ck_item(void *ctx, uint32_t slot)
{
	struct ckpt_io *io = ctx;

	return io->scratch ? io->scratch : io->tb->items + (uint64_t)slot * io->tb->stride;
}

/*
 * Writes the table to a new file at path (never over an existing one, nor
 * through a link): the bookkeeping and every live item's bytes. On a job's
 * thread: nothing of the table changes meanwhile (the file header's
 * words). *cancel set, it stops soon with -ECANCELED. Returns the items
 * written, or -errno with why; on an error the file is removed.
 */
static int checkpoint(struct stable *tb, const char *path, _Atomic bool *cancel, char *why,
		      size_t len)
{
	int fd = xr__open_no_links(path, O_WRONLY | O_CREAT | O_EXCL, 0600), rc;
	struct ckpt_io io = {.tb = tb, .cancel = cancel};

	/* The messages leave the path out: the caller has it, and a long one
	 * would crowd the reason out of the answer's line. */
	if (fd < 0) {
		rc = fd;
		snprintf(why, len, "cannot create the file: %s",
			 rc == -ELOOP ? "a symbolic link on its path (none is followed)"
				      : strerror(-rc));
		return rc;
	}
	io.fd = fd;
	io.buf = malloc(CK_BUF);
	if (!io.buf) {
		close(fd);
		unlink(path);
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	struct xr_tb_io x = {.put = ck_put, .item = ck_item, .item_size = tb->item_size,
			     .ctx = &io};
	item_tag(tb, x.item_tag);
	rc = xr__tb_save(&tb->t, &x);
	/* Synced only when whole: a file given up is removed, not waited
	 * for (a stop cancels a checkpoint, and must not wait on its disk). */
	if (rc == 0)
		rc = ck_flush(&io);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	free(io.buf);
	if (close(fd) != 0 && rc == 0)
		rc = errno == EINTR ? 0 : -errno;
	if (rc < 0) {
		unlink(path); /* ours: made above, O_EXCL */
		snprintf(why, len, rc == -ECANCELED ? "the engine stopped while it was written"
						    : "cannot write the file: %s",
			 strerror(-rc));
		return rc;
	}
	return (int)tb->t.size;
}

static int restore_read(struct stable *tb, const char *path, _Atomic bool *cancel,
			struct restoring *r);

static void *job_run(void *arg)
{
	struct job *j = arg;

	if (j->s->job_hook)
		j->s->job_hook(j->s->job_hook_ctx);
	if (j->restoring)
		j->rc = restore_read(j->tb, j->path, &j->cancel, j->restoring);
	else
		j->rc = checkpoint(j->tb, j->path, &j->cancel, j->why, sizeof(j->why));
	/* Release: rc, why and the file are the service's once it sees
	 * done (with acquire); pthread_join() orders them too. */
	atomic_store_explicit(&j->done, true, memory_order_release);
	if (j->s->wake)
		j->s->wake(j->s->wake_ctx);
	return NULL;
}

/* Starts the checkpoint of c's table to path (op XR_TOP_CHECKPOINT) or its
 * restore from path (XR_TOP_RESTORE) for request seq, on a thread of its
 * own; the request stays parked until job_end() answers it. 0, or -errno
 * with why. */
static void park(struct xr_tsvc *s, struct client *c, uint32_t seq, uint32_t op, uint32_t n,
		 uint64_t timeout, uint64_t now);

static int job_start(struct xr_tsvc *s, struct client *c, uint32_t seq, uint32_t op,
		     const char *path, char *why, size_t len)
{
	struct stable *tb = &s->tables[c->table];
	struct job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	*j = (struct job){.s = s, .tb = tb, .client = (uint32_t)(c - s->clients), .seq = seq};
	memcpy(j->path, path, sizeof(j->path));
	/* A checkpoint keeps the leases ended meanwhile; a restore begins
	 * with none, and none are made while it runs (samples wait). */
	if (op == XR_TOP_RESTORE)
		j->restoring = calloc(1, sizeof(*j->restoring));
	else
		j->ended = calloc(tb->t.cfg.capacity, sizeof(*j->ended));
	if (!j->ended && !j->restoring) {
		free(j);
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	/* (It inherits the service thread's signal mask.) */
	rc = pthread_create(&j->thread, NULL, job_run, j);
	if (rc != 0) {
		free(j->ended);
		free(j->restoring);
		free(j);
		snprintf(why, len, "cannot start a thread to %s it: %s",
			 op == XR_TOP_RESTORE ? "read" : "write", strerror(rc));
		return -rc;
	}
	tb->job = j;
	park(s, c, seq, op, 1, UINT64_MAX, 0);
	return 0;
}

/* Ends one lease on key's item: now, or while tb's checkpoint is being
 * written, after it (job_end). The key is one the service handed out
 * and a trainer's record held: its slot is in range. */
static void end_lease(struct stable *tb, uint64_t key)
{
	if (tb->job && tb->job->ended) {
		tb->job->ended[(uint32_t)key]++;
		tb->job->taken++;
	} else
		xr__tb_release(&tb->t, key);
}

/* A priority update while tb's checkpoint is being written: checked now
 * (the table cannot change before it is applied), applied by job_end();
 * the last one of a slot wins, as it would have. 0, or the check's
 * -EINVAL / -ESTALE, or -ENOMEM. */
static int update_later(struct stable *tb, uint64_t key, double p)
{
	struct job *j = tb->job;
	uint32_t slot;
	int rc = xr__tb_update_check(&tb->t, key, p, &slot);

	if (rc < 0)
		return rc;
	if (!j->prio) {
		/* Zeroed by the kernel as touched (calloc: fresh pages past a
		 * size), not filled here: the service's thread serves every
		 * table. */
		j->prio = calloc(tb->t.cfg.capacity, sizeof(double));
		j->has_prio = calloc((tb->t.cfg.capacity + 63) / 64, sizeof(uint64_t));
		if (!j->prio || !j->has_prio) {
			free(j->prio);
			free(j->has_prio);
			j->prio = NULL;
			j->has_prio = NULL;
			return -ENOMEM;
		}
	}
	j->prio[slot] = p;
	j->has_prio[slot / 64] |= 1ull << (slot % 64);
	j->taken++;
	return 0;
}

/* The job of tb is done: its thread joined, what was taken for after it
 * done to the table, its client answered (when answers is not NULL and it
 * still waits for this one), a drop's free done. */
static int restore_apply(struct xr_tsvc *s, struct stable *tb, int rc, struct restoring *r);

static void job_end(struct xr_tsvc *s, struct stable *tb, int *answers, uint64_t *mask)
{
	struct job *j = tb->job;

	if (!j->joined)
		pthread_join(j->thread, NULL);
	tb->job = NULL;
	if (j->restoring) {
		/* Applied even to a dropped table: what it read is freed with
		 * it (maybe_free, below). */
		j->rc = restore_apply(s, tb, j->rc, j->restoring);
		snprintf(j->why, sizeof(j->why), "%s", j->rc < 0 ? j->restoring->why : "");
	}
	/* Leases ended, then priorities: a live item's lease and its
	 * priority are independent, and a spent item takes no update (its
	 * check refused it). */
	for (uint32_t i = 0; j->taken && i < tb->t.cfg.capacity; i++) {
		uint64_t key = xr__tb_key(&tb->t, i);
		for (; j->ended[i]; j->ended[i]--)
			xr__tb_release(&tb->t, key);
		if (j->prio && (j->has_prio[i / 64] >> (i % 64) & 1))
			(void)xr__tb_update(&tb->t, key, j->prio[i]);
	}
	struct client *c = j->client == JOB_NOBODY ? NULL : &s->clients[j->client];
	if (answers && c && c->live && c->parked && c->p_seq == j->seq) {
		answer(c, j->seq, j->rc, 0, j->why);
		(*answers)++;
		*mask |= 1ull << j->client;
	}
	free(j->ended);
	free(j->prio);
	free(j->has_prio);
	free(j->restoring);
	free(j);
	maybe_free(s, tb);
}

/* One pass of a restore over an open checkpoint: into *t, the items into
 * the store (scratch NULL) or nowhere (scratch: the first pass, which
 * checks). */
static int restore_pass(struct stable *tb, FILE *f, uint8_t *scratch, struct xr_tb *t,
			_Atomic bool *cancel, const char **what)
{
	struct ckpt_io io = {.f = f, .tb = tb, .scratch = scratch, .cancel = cancel};
	struct xr_tb_io x = {.get = ck_get, .item = ck_item, .item_size = tb->item_size,
			     .ctx = &io, .max_capacity = tb->t.cfg.capacity};
	item_tag(tb, x.item_tag);

	rewind(f);
	int rc = xr__tb_restore(t, &x, what);
	if (rc == 0 && t->cfg.capacity != tb->t.cfg.capacity) {
		xr__tb_free(t);
		*what = "the checkpoint's capacity is not this table's";
		rc = -EINVAL;
	}
	if (rc == 0 && fgetc(f) != EOF) {
		xr__tb_free(t);
		*what = "the checkpoint has bytes past its end";
		rc = -EINVAL;
	}
	return rc;
}

/*
 * A restore (restore_read, then restore_apply) replaces the table by the
 * checkpoint at path: its configuration (the capacity must be this
 * table's), limiter counts, items and keys, so keys from before the
 * checkpoint name the same items again. Refused while any trainer holds a
 * lease (its items would change under it). The file is read twice: once to
 * check all of it (every field, the checksum, the length), once to take it,
 * so a bad checkpoint leaves the table as it was; should the file change
 * between the two and fail the second, the table is left empty rather than
 * half restored.
 */

/* The file's part, on the service's thread or a job's: reads the table
 * tb->t is not changed meanwhile (nor its store, but by this), into
 * r->fresh and tb's store. 0, or -errno with r->why. */
static int restore_read(struct stable *tb, const char *path, _Atomic bool *cancel,
			struct restoring *r)
{
	struct stat st;
	int rc;

	r->what = NULL;
	r->written = false;
	int fd = xr__open_no_links(path, O_RDONLY | O_NONBLOCK, 0);
	rc = fd < 0 ? fd : fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		snprintf(r->why, sizeof(r->why), "cannot read the file: %s",
			 rc == -EINVAL  ? "not a regular file"
			 : rc == -ELOOP ? "a symbolic link on its path (none is followed)"
					: strerror(-rc));
		return rc;
	}
	FILE *f = fdopen(fd, "r");
	uint8_t *scratch = malloc(tb->item_size);
	if (!f || !scratch) {
		if (f)
			fclose(f);
		else
			close(fd);
		free(scratch);
		snprintf(r->why, sizeof(r->why), "out of memory");
		return -ENOMEM;
	}
	rc = restore_pass(tb, f, scratch, &r->fresh, cancel, &r->what);
	if (rc == 0) {
		xr__tb_free(&r->fresh);
		/* What the second pass may need, made before it writes into
		 * the store: an empty table to fall back to, and room for the
		 * floor of generations (keys handed out since the checkpoint). */
		const char *w2;
		r->floor = malloc((size_t)tb->t.cfg.capacity * sizeof(uint32_t));
		rc = r->floor ? xr__tb_init(&r->empty, &tb->t.cfg, &w2) : -ENOMEM;
		if (rc < 0) {
			free(r->floor);
			r->floor = NULL;
			r->what = "out of memory";
		}
	}
	if (rc == 0) {
		r->written = true;
		rc = restore_pass(tb, f, NULL, &r->fresh, cancel, &r->what);
	}
	fclose(f);
	free(scratch);
	if (rc < 0)
		snprintf(r->why, sizeof(r->why), "not restored: %s",
			 rc == -ECANCELED ? "the engine stopped while it was read"
			 : r->what	  ? r->what
					  : strerror(-rc));
	return rc;
}

/* The table's part, on the service's thread: tb->t replaced by what
 * restore_read made of it (rc its return). Returns the items restored,
 * or rc. */
static int restore_apply(struct xr_tsvc *s, struct stable *tb, int rc, struct restoring *r)
{
	if (r->written) {
		uint32_t *floor = r->floor;
		for (uint32_t i = 0; i < tb->t.cfg.capacity; i++)
			floor[i] = tb->t.slot[i].gen;
		xr__tb_free(&tb->t);
		if (rc == 0) {
			xr__tb_free(&r->empty);
			tb->t = r->fresh;
		} else {
			tb->t = r->empty; /* the store was written: none of it stands */
		}
		/* No key handed out before is handed out again. */
		for (uint32_t i = 0; i < tb->t.cfg.capacity; i++)
			if (tb->t.slot[i].state != XR_TB_LIVE && floor[i] > tb->t.slot[i].gen)
				tb->t.slot[i].gen = floor[i];
		tb->t.gen_floor = floor;
		for (uint32_t i = 0; i < tb->t.cfg.capacity; i++)
			xr_store_release(&tb->keys[i], tb->t.slot[i].state == XR_TB_LIVE
							  ? xr__tb_key(&tb->t, i)
							  : 0);
	}
	show(s, tb);
	return rc < 0 ? rc : (int)tb->t.size;
}

static int restore(struct xr_tsvc *s, int table, const char *path, char *why, size_t len)
{
	struct stable *tb = &s->tables[table];
	struct restoring r = {0};

	if (tb->t.leases) {
		snprintf(why, len, "trainers hold %llu leases on this table: release them first",
			 (unsigned long long)tb->t.leases);
		return -EBUSY;
	}
	int rc = restore_apply(s, tb, restore_read(tb, path, NULL, &r), &r);
	if (rc < 0)
		snprintf(why, len, "%s", r.why);
	return rc;
}

int xr__tsvc_restore(struct xr_tsvc *s, int table, const char *path, char *why, size_t len)
{
	if (s->tables[table].job) {
		snprintf(why, len, s->tables[table].job->restoring
					   ? "a restore of the table is under way"
					   : "a checkpoint of the table is being written");
		return -EBUSY;
	}
	return restore(s, table, path, why, len);
}

/* Ends c's leases on keys[0..n) of its page (each read once); returns how
 * many named no lease of c's. */
static uint32_t release_keys(struct stable *tb, struct client *c, uint32_t n)
{
	uint32_t refused = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t key = c->req->keys[i];
		if (lease_drop(&c->l, key))
			end_lease(tb, key);
		else
			refused++;
	}
	return refused;
}

/* Parks c's request seq (not parked yet) until its deadline, timeout
 * from now; with no timeout, until it may go. */
static void park(struct xr_tsvc *s, struct client *c, uint32_t seq, uint32_t op, uint32_t n,
		 uint64_t timeout, uint64_t now)
{
	c->parked = true;
	c->p_seq = seq;
	c->p_op = op;
	c->p_n = n;
	if (timeout == UINT64_MAX) {
		c->deadline = UINT64_MAX;
		return;
	}
	/* From a clock read after the request was seen: the poll's now may
	 * be older than the request (the thread preempted or waiting for its
	 * lock in between), and a deadline from it would answer before the
	 * trainer's timeout had passed. */
	uint64_t seen = s->clock ? s->clock() : now;
	c->deadline = (seen > now ? seen : now) +
		      (timeout < XR_TSVC_TIMEOUT_MAX_NS ? timeout : XR_TSVC_TIMEOUT_MAX_NS);
}

/* A request that may not go now waits, parked, for at most timeout
 * (UINT64_MAX: until it may go): -EAGAIN at once without one, saying
 * now_why; -ETIMEDOUT at its deadline, saying late_why. What it waits
 * for (the rate limiter, room, a checkpoint) is retried at each poll. */
static void wait_or_fail(struct xr_tsvc *s, struct client *c, uint32_t seq, uint32_t op,
			 uint32_t n, uint64_t timeout, uint64_t now, const char *now_why,
			 const char *late_why, int *answers)
{
	if (!c->parked) {
		if (timeout == 0) {
			answer(c, seq, -EAGAIN, 0, now_why);
			(*answers)++;
			return;
		}
		park(s, c, seq, op, n, timeout, now);
	}
	if (now >= c->deadline) {
		answer(c, seq, -ETIMEDOUT, 0, late_why);
		(*answers)++;
	}
}

static void serve(struct xr_tsvc *s, struct client *c, uint32_t seq, uint32_t op, uint32_t n,
		  uint64_t timeout, uint64_t now, int *answers)
{
	struct stable *tb = &s->tables[c->table];
	char why[160];
	int rc = 0;
	uint32_t refused = 0, bad = 0;

	if (n == 0 || n > XR_TABLE_BATCH_MAX) {
		answer(c, seq, -EINVAL, 0, "a request's count must be 1 to 1024");
		(*answers)++;
		return;
	}
	/* A sample may carry the keys of the trainer's last batch: their
	 * leases end first, once (not again while the sample waits), so that
	 * a trainer's round is one request. Keys it does not hold are
	 * refused, as in a RELEASE. */
	if (op == XR_TOP_SAMPLE && c->released != seq) {
		c->released = seq;
		uint32_t k = c->req->n_release; /* read once */
		(void)release_keys(tb, c, k < XR_TABLE_BATCH_MAX ? k : XR_TABLE_BATCH_MAX);
	}
	bool own_job = tb->job && tb->job->client == (uint32_t)(c - s->clients) &&
		       tb->job->seq == seq;
	if (tb->dropped && op != XR_TOP_RELEASE && !own_job) {
		/* Whatever else it asks, parked or new. Releases still end
		 * leases (a trainer's round or its with-block's end should not
		 * fail for a drop); what it holds stays readable until it
		 * closes (the store stays mapped, and nothing writes it
		 * again), but nothing more comes. */
		c->parked = false;
		answer(c, seq, -EIDRM, 0, "the table was dropped");
		(*answers)++;
		return;
	}
	/* While the table's checkpoint is being written: releases and
	 * updates go on (taken now, done after); the rest waits, a sample or
	 * an insert for at most its timeout, a checkpoint or a restore till
	 * the job ends (their trainers wait without a bound). */
	if (tb->job && op != XR_TOP_RELEASE && (op != XR_TOP_UPDATE || tb->job->restoring)) {
		bool timed = op == XR_TOP_SAMPLE || op == XR_TOP_INSERT;
		wait_or_fail(s, c, seq, op, n, timed ? timeout : UINT64_MAX, now,
			     tb->job->restoring ? "a restore of the table is under way; ask again, "
						  "or with a timeout"
						: "a checkpoint of the table is being written; ask "
						  "again, or with a timeout",
			     tb->job->restoring ? "a restore of the table was under way all the while"
						: "a checkpoint of the table was being written all "
						  "the while",
			     answers);
		return;
	}
	switch (op) {
	case XR_TOP_SAMPLE:
		if (n > max_batch(&tb->t)) {
			snprintf(why, sizeof(why),
				 "the rate limiter never allows more than %llu samples at once; "
				 "ask for fewer or raise error_buffer",
				 (unsigned long long)max_batch(&tb->t));
			answer(c, seq, -EINVAL, 0, why);
			(*answers)++;
			return;
		}
		if (c->l.total + n > XR_TSVC_LEASES_MAX) {
			answer(c, seq, -ENOBUFS, 0,
			       "this trainer holds 65536 leases; release batches first");
			(*answers)++;
			return;
		}
		rc = try_sample(tb, c, n);
		break;
	case XR_TOP_INSERT:
		if (tb->fed) {
			answer(c, seq, -EPERM, 0, "the engine feeds this table: trainers do not insert");
			(*answers)++;
			return;
		}
		if (n > xr_tpage_insert_max(tb->item_size)) {
			snprintf(why, sizeof(why), "an insert is at most %u items of %u bytes",
				 xr_tpage_insert_max(tb->item_size), tb->item_size);
			answer(c, seq, -EINVAL, 0, why);
			(*answers)++;
			return;
		}
		rc = try_insert(tb, c, n, &bad);
		if (rc == -EINVAL) {
			snprintf(why, sizeof(why),
				 "item %u's priority is negative, not a number, or too large", bad);
			answer(c, seq, rc, 0, why);
			(*answers)++;
			return;
		}
		break;
	case XR_TOP_RELEASE:
		refused = release_keys(tb, c, n);
		answer(c, seq, (int)(n - refused), refused, NULL);
		(*answers)++;
		return;
	case XR_TOP_UPDATE:
		for (uint32_t i = 0; i < n; i++) {
			uint64_t key = c->req->keys[i];
			double p = c->req->prio[i];
			rc = tb->job ? update_later(tb, key, p) : xr__tb_update(&tb->t, key, p);
			if (rc == -ENOMEM) { /* only ever at the first key */
				answer(c, seq, rc, 0,
				       "out of memory to keep updates until the table's checkpoint "
				       "is written");
				(*answers)++;
				return;
			}
			if (rc < 0)
				refused++;
		}
		answer(c, seq, (int)(n - refused), refused, NULL);
		(*answers)++;
		return;
	case XR_TOP_CHECKPOINT:
	case XR_TOP_RESTORE: {
		char path[XR_TPAGE_PATH_MAX];
		memcpy(path, c->req->path, sizeof(path)); /* read once */
		if (!c->admin) {
			answer(c, seq, -EPERM, 0,
			       "only the engine's own uid may checkpoint or restore a table");
		} else if (!memchr(path, 0, sizeof(path)) || !path[0]) {
			answer(c, seq, -EINVAL, 0, "the path is empty or not NUL-terminated");
		} else if (op == XR_TOP_RESTORE && tb->t.leases) {
			snprintf(why, sizeof(why),
				 "trainers hold %llu leases on this table: release them first",
				 (unsigned long long)tb->t.leases);
			answer(c, seq, -EBUSY, 0, why);
		} else {
			/* Answered when written or read (job_end): parked till
			 * then, every other table served meanwhile. */
			rc = job_start(s, c, seq, op, path, why, sizeof(why));
			if (rc == 0)
				return;
			answer(c, seq, rc, 0, why);
		}
		(*answers)++;
		return;
	}
	default:
		answer(c, seq, -EINVAL, 0, "no such request (op)");
		(*answers)++;
		return;
	}
	if (rc != 0) {
		answer(c, seq, rc, 0, rc == -ENOMEM ? "out of memory for leases" : NULL);
		(*answers)++;
		return;
	}
	bool sample = op == XR_TOP_SAMPLE;
	wait_or_fail(s, c, seq, op, n, timeout, now,
		     sample ? "the rate limiter allows no sample now"
			    : "the rate limiter allows no insert now, or every item is leased",
		     sample ? "the rate limiter did not allow the samples in time: inserts are "
			      "slower than samples_per_insert asks"
			    : "the rate limiter did not allow the inserts in time, or every item "
			      "stayed leased: samples are slower than it asks",
		     answers);
}

int xr__tsvc_poll(struct xr_tsvc *s, uint64_t now_ns, uint64_t *next_ns, uint64_t *answered)
{
	int answers = 0;
	uint64_t next = UINT64_MAX, mask = 0;

	/* Acquire: pairs with the job thread's release of done (its rc, its
	 * why, its file). */
	for (int i = 0; i < XR_TSVC_TABLES_MAX; i++)
		if (s->tables[i].job &&
		    atomic_load_explicit(&s->tables[i].job->done, memory_order_acquire))
			job_end(s, &s->tables[i], &answers, &mask);
	for (uint32_t i = 0; i < XR_TSVC_CLIENTS_MAX; i++) {
		struct client *c = &s->clients[i];
		if (!c->live)
			continue;
		/* Acquire: pairs with the trainer's release of seq, so the
		 * fields copied below are the ones it wrote before it. */
		uint32_t seq = xr_load_acquire(&c->req->seq);
		int before = answers;
		if (seq != c->seen && !(c->parked && seq == c->p_seq)) {
			/* A new request (one that replaces a parked one drops
			 * it: a trainer has one request in flight). */
			c->parked = false;
			uint32_t op = c->req->op; /* read once */
			/* Relaxed: a hint to a spinning trainer (the answer is
			 * coming), whose relaxed load of it in round_trip()
			 * (client/table.c) reads nothing through it. Not for a
			 * checkpoint or restore, which may take seconds. */
			bool brief = op != XR_TOP_CHECKPOINT && op != XR_TOP_RESTORE;
			if (brief)
				atomic_store_explicit(&c->resp->working, seq, memory_order_relaxed);
			serve(s, c, seq, op, c->req->n, c->req->timeout_ns, now_ns, &answers);
			if (brief && c->parked)
				atomic_store_explicit(&c->resp->working, 0, memory_order_relaxed);
		} else if (c->parked) {
			serve(s, c, c->p_seq, c->p_op, c->p_n, 0, now_ns, &answers);
		}
		if (c->parked && c->deadline < next)
			next = c->deadline;
		if (answers != before)
			mask |= 1ull << i;
	}
	for (int i = 0; i < XR_TSVC_TABLES_MAX; i++)
		if (s->tables[i].live) /* dropped ones too: tools show them until they go */
			show(s, &s->tables[i]);
	if (next_ns)
		*next_ns = next;
	if (answered)
		*answered = mask;
	return answers;
}

int xr__tsvc_insert(struct xr_tsvc *s, int table, double p, const void *bytes, uint32_t len)
{
	struct stable *tb = &s->tables[table];
	uint64_t key, ev;
	uint32_t slot;

	if (tb->dropped)
		return -EIDRM;
	if (len > tb->item_size)
		return -EINVAL;
	if (tb->job)
		return -EAGAIN; /* a checkpoint is being written: as the limiter */
	int rc = xr__tb_insert(&tb->t, p, &key, &slot, &ev);
	if (rc < 0)
		return rc;
	put_item(tb, slot, key, bytes, len);
	return 0;
}
