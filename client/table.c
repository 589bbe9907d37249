/* SPDX-License-Identifier: MIT */
/*
 * A trainer's side of a replay table (xring/table.h): one control
 * connection (ATTACHed: the engine checks who we are, we check who it is),
 * the table's item store mapped read-only, this trainer's page mapped
 * read-write, and its doorbell.
 *
 * A call is one round trip through the page (shm/table_layout.h): fill the
 * request, store req.seq with release (the engine's acquire load of it sees
 * the fields), ring (one byte on the doorbell), then wait for resp.seq to
 * equal it (acquire: the answer's fields are then visible): a short spin,
 * longer while the service says it is on this request (resp.working),
 * then poll() on the doorbell, whose byte the engine sends after the answer.
 * A byte waits in the socket until read, so an answer given between our
 * check and our poll() is not missed. The engine's death ends a wait: the
 * doorbell and the control connection hang up.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/client.h"
#include "control/proto.h"
#include "record/transition.h"
#include "shm/table_layout.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/table.h"

/* Spin this long before sleeping; while the service says it is working on
 * our request (resp.working), up to XR_TABLE_SPIN_WORKING_NS: a prioritized
 * sample of 256 from a million items takes it 15-25 us, of 1,024 about
 * 100 us, and a wakeup from poll() costs 10 us and more at p99 (measured:
 * prioritized 256, p50 36.6 -> 25.7 us through the engine). */
#define XR_TABLE_SPIN_NS 20000ull
#define XR_TABLE_SPIN_WORKING_NS 500000ull

struct xr_table {
	int sock, bell;
	pid_t pid;
	uint8_t *store;
	uint64_t store_bytes;
	uint8_t *page;
	uint64_t page_bytes;
	const struct xr_tstore_hdr *hdr;
	struct xr_tpage_req *req;
	const struct xr_tpage_resp *resp;
	uint8_t *ins;
	uint32_t seq, capacity, item_size;
	uint64_t stride, items_off;
};

static int connect_attached(const char *engine, uint32_t engine_uid, int *sock)
{
	struct xr_trust trust = {.extra = engine_uid ? engine_uid : (uid_t)-1};
	struct xr_ctl_attached att;
	struct ucred peer;
	int afd, rc;

	*sock = xr__ctl_connect(engine, &trust, &peer);
	if (*sock < 0) {
		if (*sock == -ENOENT)
			xr__set_last_reason("no engine '%s' is running (no control socket)", engine);
		return *sock;
	}
	rc = xr__ctl_attach(*sock, &afd, &att);
	if (rc < 0) {
		close(*sock);
		return rc;
	}
	close(afd);
	return 0;
}

static int name_to_wire(const char *name, char out[XR_CTL_TABLE_NAME])
{
	if (!name || !*name || strlen(name) >= XR_CTL_TABLE_NAME) {
		xr__set_last_reason("a table's name is 1 to 31 characters");
		return -EINVAL;
	}
	memset(out, 0, XR_CTL_TABLE_NAME);
	memcpy(out, name, strlen(name));
	return 0;
}

int xr_table_create(const char *engine, const char *name, const xr_table_opts *o)
{
	struct xr_ctl_table_create m = {0};
	struct xr_ctl_table_created r;
	int sock, rc;

	if (!engine || !o)
		return -EINVAL;
	xr__set_last_reason("%s", "");
	char why[XR_CTL_REASON_MAX];
	rc = xr__ctl_table_to_wire(name, o, &m, why, sizeof(why));
	if (rc < 0) {
		xr__set_last_reason("%s", why);
		return rc;
	}
	rc = connect_attached(engine, o->engine_uid, &sock);
	if (rc < 0)
		return rc;
	rc = xr__ctl_request(sock, XR_CTL_TABLE_CREATE, &m, sizeof(m), XR_CTL_TABLE_CREATED, &r,
			     sizeof(r), NULL, NULL);
	close(sock);
	return rc;
}

int xr_table_drop(const char *engine, const char *name, const xr_table_open_opts *o)
{
	struct xr_ctl_table_open m;
	int sock, rc;

	if (!engine)
		return -EINVAL;
	xr__set_last_reason("%s", "");
	rc = name_to_wire(name, m.name);
	if (rc < 0)
		return rc;
	rc = connect_attached(engine, o ? o->engine_uid : 0, &sock);
	if (rc < 0)
		return rc;
	rc = xr__ctl_request(sock, XR_CTL_TABLE_DROP, &m, sizeof(m), XR_CTL_OK, NULL, 0, NULL,
			     NULL);
	close(sock);
	return rc;
}

/* The store and page as the engine described them, checked before use: a
 * regular memfd of the size it said, a header that agrees with itself. */
static int map_fds(xr_table *t, const struct xr_ctl_table_opened *r, const int fds[3])
{
	struct stat st;

	if (fstat(fds[0], &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != r->store_bytes ||
	    fstat(fds[1], &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != r->page_bytes ||
	    r->page_bytes != xr_tpage_size(r->item_size)) {
		xr__set_last_reason("the engine's table memory is not what it said it is");
		return -EPROTO;
	}
	t->store = mmap(NULL, r->store_bytes, PROT_READ, MAP_SHARED, fds[0], 0);
	if (t->store == MAP_FAILED) {
		t->store = NULL;
		xr__set_last_reason("cannot map the table's items: %s", strerror(errno));
		return -errno;
	}
	t->store_bytes = r->store_bytes;
	t->page = mmap(NULL, r->page_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (t->page == MAP_FAILED) {
		t->page = NULL;
		xr__set_last_reason("cannot map this trainer's page: %s", strerror(errno));
		return -errno;
	}
	t->page_bytes = r->page_bytes;
	t->hdr = (const struct xr_tstore_hdr *)t->store;
	uint64_t stride = t->hdr->stride, items_off = t->hdr->items_off, keys_off = t->hdr->keys_off;
	if (t->hdr->magic != XR_TSTORE_MAGIC || t->hdr->capacity != r->capacity ||
	    t->hdr->item_size != r->item_size || stride < r->item_size || stride % 64 ||
	    keys_off < sizeof(struct xr_tstore_hdr) ||
	    keys_off + (uint64_t)r->capacity * 8 > items_off ||
	    items_off + stride * r->capacity > r->store_bytes) {
		xr__set_last_reason("the engine's table header does not describe its memory");
		return -EPROTO;
	}
	t->req = (struct xr_tpage_req *)t->page;
	t->resp = (const struct xr_tpage_resp *)(t->page + XR_TPAGE_RESP_OFF);
	t->ins = t->page + XR_TPAGE_INSERT_OFF;
	t->capacity = r->capacity;
	t->item_size = r->item_size;
	t->stride = stride;
	t->items_off = items_off;
	t->seq = atomic_load_explicit(&t->req->seq, memory_order_relaxed);
	return 0;
}

int xr_table_open(const char *engine, const char *name, const xr_table_open_opts *o,
		  xr_table **out)
{
	struct xr_ctl_table_open m;
	struct xr_ctl_table_opened r;
	int fds[3], rc;
	xr_table *t;

	if (!engine || !out)
		return -EINVAL;
	xr__set_last_reason("%s", "");
	rc = name_to_wire(name, m.name);
	if (rc < 0)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->bell = -1;
	t->pid = xr__self_pid();
	rc = connect_attached(engine, o ? o->engine_uid : 0, &t->sock);
	if (rc < 0) {
		free(t);
		return rc;
	}
	rc = xr__ctl_request_fds(t->sock, XR_CTL_TABLE_OPEN, &m, sizeof(m), XR_CTL_TABLE_OPENED, &r,
				 sizeof(r), NULL, fds, 3);
	if (rc < 0) {
		close(t->sock);
		free(t);
		return rc;
	}
	t->bell = fds[2];
	rc = map_fds(t, &r, fds);
	close(fds[0]);
	close(fds[1]);
	if (rc < 0) {
		xr_table_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

static int mine(const xr_table *t)
{
	if (t->sock < 0) {
		xr__set_last_reason("this trainer was disconnected");
		return -ENOTCONN;
	}
	if (t->pid == xr__self_pid())
		return 0;
	xr__set_last_reason("this table handle was opened by process %d: a forked child opens "
			    "its own",
			    (int)t->pid);
	return -EINVAL;
}

/* One round trip. The wait is bounded by the request's own timeout plus a
 * margin for the engine to answer it: the service answers every request,
 * a parked one at its deadline. */
static int round_trip(xr_table *t, uint32_t op, uint32_t n, int timeout_ms)
{
	static const char one = 1;
	uint64_t timeout = timeout_ms < 0 ? 3600000ull * 1000000ull
					  : (uint64_t)timeout_ms * 1000000ull;
	uint32_t seq = ++t->seq;
	uint64_t start = xr__now_ns(), give_up = start + timeout + 5000000000ull;

	t->req->op = op;
	t->req->n = n;
	t->req->timeout_ns = timeout;
	/* Release: the fields above are visible to the engine's acquire load
	 * that sees this seq. */
	atomic_store_explicit(&t->req->seq, seq, memory_order_release);
	(void)send(t->bell, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	for (;;) {
		/* Acquire: pairs with the engine's release store of resp.seq,
		 * after the answer's fields. */
		if (atomic_load_explicit(&t->resp->seq, memory_order_acquire) == seq)
			break;
		uint64_t now = xr__now_ns();
		/* Relaxed: a hint only, paired with the service's relaxed
		 * stores of it (engine/table_service.c, xr__tsvc_poll); the
		 * acquire of resp.seq above is what makes an answer visible. */
		if (now - start < XR_TABLE_SPIN_NS ||
		    (now - start < XR_TABLE_SPIN_WORKING_NS &&
		     atomic_load_explicit(&t->resp->working, memory_order_relaxed) == seq)) {
			xr_cpu_relax();
			continue;
		}
		if (now > give_up) {
			xr__set_last_reason("the engine did not answer the table request");
			return -ETIMEDOUT;
		}
		struct pollfd pf[2] = {{.fd = t->bell, .events = POLLIN},
				       {.fd = t->sock, .events = POLLIN}};
		int ms = (int)((give_up - now) / 1000000) + 1;
		if (poll(pf, 2, ms > 1000 ? 1000 : ms) < 0 && errno != EINTR)
			return -errno;
		if (pf[0].revents & POLLIN) {
			char buf[8];
			ssize_t r = recv(t->bell, buf, sizeof(buf), MSG_DONTWAIT);
			if (r == 0)
				goto gone;
		}
		if ((pf[0].revents | pf[1].revents) & (POLLHUP | POLLERR))
			goto gone;
		if (pf[1].revents & POLLIN && xr__ctl_drain(t->sock))
			goto gone;
	}
	int rc = t->resp->rc;
	if (rc < 0) {
		char why[sizeof(t->resp->why)];
		memcpy(why, t->resp->why, sizeof(why));
		why[sizeof(why) - 1] = '\0';
		xr__set_last_reason("%s", why);
	}
	return rc;
gone:
	if (atomic_load_explicit(&t->resp->seq, memory_order_acquire) == seq)
		return t->resp->rc;
	xr__set_last_reason("the engine is gone (its table service hung up)");
	return -ECONNRESET;
}

int xr_table_sample(xr_table *t, uint32_t n, int timeout_ms, xr_sample *s)
{
	return xr_table_sample_release(t, n, timeout_ms, NULL, 0, s);
}

int xr_table_sample_release(xr_table *t, uint32_t n, int timeout_ms, const uint64_t *release,
			    uint32_t n_release, xr_sample *s)
{
	int rc;

	if (!t || !s || n == 0 || n > XR_TABLE_BATCH_MAX || n_release > XR_TABLE_BATCH_MAX ||
	    (n_release && !release)) {
		xr__set_last_reason("a sample is 1 to 1024 items, and releases at most 1024");
		return -EINVAL;
	}
	if ((rc = mine(t)) < 0)
		return rc;
	/* Copied first: release may point into this page's answer (the last
	 * sample's keys), which the request overwrites only once answered. */
	if (n_release)
		memmove(t->req->keys, release, n_release * sizeof(uint64_t));
	t->req->n_release = n_release;
	rc = round_trip(t, XR_TOP_SAMPLE, n, timeout_ms);
	if (rc < 0)
		return rc;
	if ((uint32_t)rc > n) {
		xr__set_last_reason("the engine answered more items than asked");
		return -EPROTO;
	}
	for (int i = 0; i < rc; i++)
		if (t->resp->slots[i] >= t->capacity) {
			xr__set_last_reason("the engine answered a slot past the table");
			return -EPROTO;
		}
	*s = (xr_sample){.n = (uint32_t)rc, .keys = t->resp->keys, .slots = t->resp->slots,
			 .prob = t->resp->prob, .weight = t->resp->weight};
	return rc;
}

const void *xr_table_item(const xr_table *t, uint32_t slot)
{
	if (!t || slot >= t->capacity)
		return NULL;
	return t->store + t->items_off + (uint64_t)slot * t->stride;
}

int xr_table_release(xr_table *t, const uint64_t *keys, uint32_t n)
{
	int rc, done = 0;

	if (!t || (n && !keys))
		return -EINVAL;
	if ((rc = mine(t)) < 0)
		return rc;
	while (n) {
		uint32_t k = n < XR_TABLE_BATCH_MAX ? n : XR_TABLE_BATCH_MAX;
		/* Copied first: keys may point into this page's answer, which
		 * the request overwrites only once answered. */
		memmove(t->req->keys, keys, k * sizeof(uint64_t));
		rc = round_trip(t, XR_TOP_RELEASE, k, 0);
		if (rc < 0)
			return rc;
		done += rc;
		keys += k;
		n -= k;
	}
	return done;
}

int xr_table_update(xr_table *t, const uint64_t *keys, const double *priorities, uint32_t n,
		    uint32_t *refused)
{
	int rc, done = 0;
	uint32_t bad = 0;

	if (!t || (n && (!keys || !priorities)))
		return -EINVAL;
	if ((rc = mine(t)) < 0)
		return rc;
	while (n) {
		uint32_t k = n < XR_TABLE_BATCH_MAX ? n : XR_TABLE_BATCH_MAX;
		memmove(t->req->keys, keys, k * sizeof(uint64_t));
		memmove(t->req->prio, priorities, k * sizeof(double));
		rc = round_trip(t, XR_TOP_UPDATE, k, 0);
		if (rc < 0)
			return rc;
		done += rc;
		bad += t->resp->refused;
		keys += k;
		priorities += k;
		n -= k;
	}
	if (refused)
		*refused = bad;
	return done;
}

int xr_table_insert(xr_table *t, const void *items, const double *priorities, uint32_t n,
		    int timeout_ms, uint64_t *keys)
{
	const uint8_t *p = items;
	uint64_t deadline;
	int rc;
	uint32_t done = 0;

	if (!t || (n && (!items || !priorities)))
		return -EINVAL;
	if ((rc = mine(t)) < 0)
		return rc;
	deadline = xr__now_ns() + (timeout_ms < 0 ? 3600000ull : (uint64_t)timeout_ms) * 1000000ull;
	uint32_t most = xr_tpage_insert_max(t->item_size);
	while (done < n) {
		uint32_t k = n - done < most ? n - done : most;
		uint64_t now = xr__now_ns();
		memcpy(t->ins, p + (uint64_t)done * t->item_size, (size_t)k * t->item_size);
		memcpy(t->req->prio, priorities + done, k * sizeof(double));
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000);
		rc = round_trip(t, XR_TOP_INSERT, k, left);
		if (rc < 0)
			return done ? (int)done : rc;
		if ((uint32_t)rc > k) {
			xr__set_last_reason("the engine answered more items than sent");
			return -EPROTO;
		}
		if (keys)
			memcpy(keys + done, t->resp->keys, (size_t)rc * sizeof(uint64_t));
		done += (uint32_t)rc;
	}
	return (int)done;
}

static int by_path(xr_table *t, uint32_t op, const char *path)
{
	int rc;

	if (!t || !path || !*path || strlen(path) >= XR_TPAGE_PATH_MAX) {
		xr__set_last_reason("a checkpoint's path is 1 to %d bytes", XR_TPAGE_PATH_MAX - 1);
		return -EINVAL;
	}
	if ((rc = mine(t)) < 0)
		return rc;
	memset(t->req->path, 0, sizeof(t->req->path));
	memcpy(t->req->path, path, strlen(path));
	return round_trip(t, op, 1, -1);
}

int xr_table_checkpoint(xr_table *t, const char *path)
{
	return by_path(t, XR_TOP_CHECKPOINT, path);
}

int xr_table_restore(xr_table *t, const char *path)
{
	return by_path(t, XR_TOP_RESTORE, path);
}

int xr_table_get_stats(const xr_table *t, xr_table_stats *s)
{
	if (!t || !s)
		return -EINVAL;
	*s = (xr_table_stats){
		.size = atomic_load_explicit(&t->hdr->size, memory_order_relaxed),
		.leases = atomic_load_explicit(&t->hdr->leases, memory_order_relaxed),
		.inserts = atomic_load_explicit(&t->hdr->inserts, memory_order_relaxed),
		.samples = atomic_load_explicit(&t->hdr->samples, memory_order_relaxed),
		.removes = atomic_load_explicit(&t->hdr->removes, memory_order_relaxed),
		.trainers = atomic_load_explicit(&t->hdr->trainers, memory_order_relaxed),
		.feed = atomic_load_explicit(&t->hdr->feed, memory_order_relaxed),
		.feed_dropped = atomic_load_explicit(&t->hdr->feed_dropped, memory_order_relaxed),
		.capacity = t->capacity, .item_size = t->item_size};
	return 0;
}

void xr_table_item_layout(const xr_table *t, xr_item_layout *l)
{
	const struct xr_tstore_hdr *h = t->hdr;
	xr_exp_shape sh = {.obs_dtype = (xr_dtype)h->obs_dtype, .obs_ndim = h->obs_ndim,
			   .mask_len = h->mask_len, .extras_len = h->extras_len};
	xr_item_layout tl;
	xr_exp_template tpl;

	*l = (xr_item_layout){.item = XR_ITEM_RECORD};
	if (h->has_shape != 1 || h->obs_ndim > XR_EXP_MAX_DIMS)
		return;
	memcpy(sh.obs_dims, h->obs_dims, sizeof(sh.obs_dims));
	/* The engine's word for it, checked against the items' size: a
	 * layout past the item is none. */
	if (h->item_kind == XR_ITEM_RECORD) {
		if (xr_exp_template_init(&tpl, &sh) == 0 && tpl.size <= t->item_size)
			*l = (xr_item_layout){.item = XR_ITEM_RECORD, .obs_bytes = tpl.obs_bytes,
					      .mask_len = sh.mask_len, .shape = sh};
		return;
	}
	if (h->item_kind != XR_ITEM_TRANSITION)
		return;
	xr__trans_layout(&sh, &tl);
	if (tl.next_mask_off + tl.mask_len <= t->item_size && tl.obs_bytes)
		*l = tl;
}

void xr_table_disconnect(xr_table *t)
{
	if (!t)
		return;
	/* As xr_games_close(): the opener shuts the connection down, so that
	 * the engine sees its end now and ends this trainer's leases. */
	if (t->sock >= 0 && t->pid == xr__self_pid())
		shutdown(t->sock, SHUT_RDWR);
	if (t->sock >= 0)
		close(t->sock);
	if (t->bell >= 0)
		close(t->bell);
	t->sock = t->bell = -1;
}

void xr_table_close(xr_table *t)
{
	if (!t)
		return;
	xr_table_disconnect(t);
	if (t->store)
		munmap(t->store, t->store_bytes);
	if (t->page)
		munmap(t->page, t->page_bytes);
	free(t);
}
