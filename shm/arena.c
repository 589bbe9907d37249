/* SPDX-License-Identifier: MIT */
/*
 * Arena lifecycle: create (writer), open (readers, tools), reap, destroy.
 *
 * Creation builds the whole file under a temporary name, prefaults and binds
 * its memory, marks it READY, and only then links it to its public name, so
 * a reader that finds the name always finds a complete arena. A file left
 * under the name by an engine that died is recognised (its writer pid and
 * start time no longer match a live process) and replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/server.h"
#include "shm/arena_priv.h"
#include "shm/atomics.h"
#include "shm/backing.h"
#include "shm/map.h"
#include "shm/wake.h"
#include "util/clock.h"
#include "util/proc.h"
#include "xring/error.h"
#include "xring/writer.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define XR_DEFAULT_RING_BYTES (4ull << 20)
#define XR_DEFAULT_MAX_READERS 64
#define XR_DEFAULT_ALIGN 64

static _Thread_local char last_note[XR_NOTE_MAX];

const char *xr_arena_last_note(void)
{
	return last_note;
}

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) / unit * unit;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

const char *xr_backing_name(xr_backing b)
{
	switch (b) {
	case XR_BACKING_HUGETLBFS: return "hugetlbfs";
	case XR_BACKING_SHM_THP: return "shm+thp";
	case XR_BACKING_SHM: return "shm";
	case XR_BACKING_DIR: return "dir";
	}
	return "unknown";
}

/* ---- sizing ---- */

struct plan {
	uint64_t page;
	uint64_t ctl_off, ctl_size, total;
	uint64_t ring_off[XR_MAX_RINGS];
	uint64_t ring_cap[XR_MAX_RINGS];
	uint32_t n_rings;
	uint32_t max_readers;
};

static int check_spec(const xr_arena_spec *spec)
{
	uint32_t rings = 0;

	if (!spec || xr__check_name(spec->name, XR_NAME_MAX) < 0)
		return -EINVAL;
	if (spec->n_streams < 1 || spec->n_streams > XR_MAX_STREAMS || !spec->streams)
		return -EINVAL;
	if (spec->max_readers > XR_MAX_READERS_LIMIT)
		return -EINVAL;
	for (uint32_t i = 0; i < spec->n_streams; i++) {
		const xr_stream_spec *s = &spec->streams[i];
		uint32_t align = s->frame_align ? s->frame_align : XR_DEFAULT_ALIGN;

		if (s->name && xr__check_name(s->name, XR_STREAM_NAME_MAX) < 0)
			return -EINVAL;
		if (s->policy > XR_POLICY_LOSSY || !is_pow2(align) || align < 16 || align > 4096)
			return -EINVAL;
		if (s->ring_bytes > (1ull << 40))
			return -EINVAL;
		if (s->kind == XR_RECORD_EXPERIENCE) {
			xr_exp_template t;
			if (xr_exp_template_init(&t, &s->shape) < 0)
				return -EINVAL;
		} else if (s->kind != XR_RECORD_OPAQUE) {
			return -EINVAL;
		}
		rings += s->n_rings ? s->n_rings : 1;
		for (uint32_t j = 0; j < i; j++) {
			const char *a = s->name ? s->name : XR_DEFAULT_STREAM;
			const char *b = spec->streams[j].name ? spec->streams[j].name
							      : XR_DEFAULT_STREAM;
			if (!strcmp(a, b))
				return -EINVAL;
		}
	}
	return rings > XR_MAX_RINGS ? -EINVAL : 0;
}

static void make_plan(const xr_arena_spec *spec, uint64_t page, struct plan *p)
{
	uint32_t r = 0;
	uint64_t off;

	p->page = page;
	p->max_readers = spec->max_readers ? spec->max_readers : XR_DEFAULT_MAX_READERS;
	for (uint32_t i = 0; i < spec->n_streams; i++)
		r += spec->streams[i].n_rings ? spec->streams[i].n_rings : 1;
	p->n_rings = r;
	p->ctl_off = round_up(sizeof(struct xr_arena_hdr), page);
	p->ctl_size = round_up((uint64_t)p->max_readers * sizeof(struct xr_reader_slot) +
				       (uint64_t)r * p->max_readers * sizeof(struct xr_cursor),
			       page);
	off = p->ctl_off + p->ctl_size;
	r = 0;
	for (uint32_t i = 0; i < spec->n_streams; i++) {
		const xr_stream_spec *s = &spec->streams[i];
		uint64_t want = s->ring_bytes ? s->ring_bytes : XR_DEFAULT_RING_BYTES;
		uint64_t cap = pow2_at_least(want < page ? page : want);

		for (uint32_t k = 0; k < (s->n_rings ? s->n_rings : 1); k++, r++) {
			p->ring_off[r] = off;
			p->ring_cap[r] = cap;
			off += cap;
		}
	}
	p->total = off;
}

/* The frame of an Experience stream's record (its one size) must fit half
 * of its ring, as every frame must (max_frame); readers refuse an arena
 * where it does not. Returns the stream that does not fit, or -1. */
static int plan_misfit(const xr_arena_spec *spec, const struct plan *p, uint64_t *frame,
		       uint64_t *cap)
{
	uint32_t r = 0;

	for (uint32_t i = 0; i < spec->n_streams; i++) {
		const xr_stream_spec *s = &spec->streams[i];
		uint64_t align = s->frame_align ? s->frame_align : XR_DEFAULT_ALIGN;
		xr_exp_template t;

		if (s->kind == XR_RECORD_EXPERIENCE && xr_exp_template_init(&t, &s->shape) == 0) {
			*frame = xr__frame_size(t.size, align);
			*cap = p->ring_cap[r];
			if (*frame > p->ring_cap[r] / 2 || *frame > UINT32_MAX)
				return (int)i;
		}
		r += s->n_rings ? s->n_rings : 1;
	}
	return -1;
}

/* ---- NUMA ---- */

static int default_node(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				return numa_node_of_cpu(c);
	return 0;
}

/* Picks the node to bind to, or -1 for none; -EINVAL for a node that does
 * not exist or has no memory we may use. */
static int choose_node(int want, char *note, size_t note_len)
{
	if (want == XR_NUMA_NONE)
		return -1;
	if (numa_available() < 0) {
		if (want >= 0)
			return -EINVAL;
		snprintf(note + strlen(note), note_len - strlen(note), "%sno NUMA support: memory unbound",
			 note[0] ? "; " : "");
		return -1;
	}
	int node = want >= 0 ? want : default_node();
	if (node < 0 || node > numa_max_node())
		return -EINVAL;
	struct bitmask *mems = numa_get_mems_allowed();
	bool ok = mems && numa_bitmask_isbitset(mems, (unsigned)node);
	numa_bitmask_free(mems);
	return ok ? node : -EINVAL;
}

/* ---- creation ---- */

static void init_header(struct xr_arena *a, const xr_arena_spec *spec, const struct plan *p,
			const struct xr_place *pl, int node)
{
	struct xr_arena_hdr *h = a->hdr;
	uint32_t r = 0;

	h->magic = XR_MAGIC;
	h->layout_version = XR_LAYOUT_VERSION;
	h->hdr_size = sizeof(*h);
	h->fingerprint = xr__layout_fingerprint();
	h->total_size = p->total;
	h->page_size = p->page;
	h->ctl_off = p->ctl_off;
	h->ctl_size = p->ctl_size;
	h->created_ns = xr__wall_ns();
	h->writer_pid = getpid();
	h->writer_start = xr__proc_start(getpid());
	h->numa_node = node;
	h->backing = pl->kind;
	h->n_streams = spec->n_streams;
	h->n_rings = p->n_rings;
	h->max_readers = p->max_readers;
	snprintf(h->name, sizeof(h->name), "%s", spec->name);
	snprintf(h->note, sizeof(h->note), "%s", a->note);

	for (uint32_t i = 0; i < spec->n_streams; i++) {
		const xr_stream_spec *s = &spec->streams[i];
		struct xr_stream_desc *sd = &h->streams[i];
		uint32_t n = s->n_rings ? s->n_rings : 1;

		snprintf(sd->name, sizeof(sd->name), "%s", s->name ? s->name : XR_DEFAULT_STREAM);
		sd->policy = s->policy == XR_POLICY_LOSSY ? XR_POLICY_LOSSY : XR_POLICY_LOSSLESS;
		sd->n_rings = n;
		sd->first_ring = r;
		sd->frame_align = s->frame_align ? s->frame_align : XR_DEFAULT_ALIGN;
		sd->record_kind = s->kind;
		sd->ring_capacity = p->ring_cap[r];
		sd->max_frame = (uint32_t)(p->ring_cap[r] / 2 > UINT32_MAX ? UINT32_MAX
									  : p->ring_cap[r] / 2);
		if (s->kind == XR_RECORD_EXPERIENCE)
			sd->shape = s->shape;
		for (uint32_t k = 0; k < n; k++, r++) {
			struct xr_ring_desc *rd = &h->rings[r];
			rd->data_off = p->ring_off[r];
			rd->capacity = p->ring_cap[r];
			rd->stream = i;
			rd->frame_align = sd->frame_align;
			rd->index = r;
			if (s->kind == XR_RECORD_EXPERIENCE) {
				xr_exp_template t;
				xr_exp_template_init(&t, &s->shape); /* checked above */
				rd->record_len = t.size;
			}
		}
	}
	/* The file is new, so every byte is zero; only non-zero initial values
	 * need storing. No reader can see the arena yet: relaxed is enough. */
	for (uint64_t c = 0; c < (uint64_t)p->n_rings * p->max_readers; c++)
		xr_store_relaxed(&a->cursors[c].lease, XR_NO_LEASE);
}

/* Creates, sizes, maps and prefaults the file at tmp. 0 or -errno; on
 * failure the file is removed. */
static int build_file(struct xr_arena *a, const char *tmp, const struct plan *p,
		      const struct xr_place *pl, int node)
{
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	int err;

	if (fd < 0)
		return -errno;
	fchmod(fd, 0660);
	if (ftruncate(fd, (off_t)p->total) < 0) {
		err = -errno;
		goto fail;
	}
	a->hdr = mmap(NULL, p->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a->hdr == MAP_FAILED) {
		a->hdr = NULL;
		err = -errno;
		goto fail;
	}
	a->map_len = p->total;
	if (pl->kind == XR_BACKING_SHM_THP)
		madvise(a->hdr, p->total, MADV_HUGEPAGE);
	/* Bind before the first touch: pages are placed when they fault in. */
	if (node >= 0)
		numa_tonode_memory(a->hdr, p->total, node);
	/* Prefault now so that no record write ever takes a page fault, and so
	 * that a shortage of huge pages is an error here instead of a SIGBUS
	 * later. */
	if (madvise(a->hdr, p->total, MADV_POPULATE_WRITE) < 0) {
		if (errno != EINVAL) {
			err = -errno;
			goto fail;
		}
		for (uint64_t off = 0; off < p->total; off += p->page)
			((volatile uint8_t *)a->hdr)[off] = 0;
	}
	a->fd = fd;
	return 0;
fail:
	if (a->hdr)
		munmap(a->hdr, p->total);
	a->hdr = NULL;
	close(fd);
	unlink(tmp);
	return err;
}

static int actual_node(void *addr)
{
	int node = -1;

	if (get_mempolicy(&node, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR) < 0)
		return -1;
	return node;
}

/* Reads the header of an existing arena file; 1 if a live engine owns it. */
static int owned_by_live_engine(const char *path)
{
	struct xr_arena_hdr h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, &h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h) || h.magic != XR_MAGIC)
		return 0;
	/* Another layout: its pid and state are not where we would look, so
	 * we cannot tell it is dead. Presume it alive rather than destroy it. */
	if (h.layout_version != XR_LAYOUT_VERSION || h.hdr_size != sizeof(h) ||
	    h.fingerprint != xr__layout_fingerprint())
		return 1;
	if (atomic_load(&h.state) == XR_ARENA_CLOSED)
		return 0;
	return xr__proc_alive(h.writer_pid, h.writer_start) ? 1 : 0;
}

/* Gives the finished file at tmp its public name. */
static int publish_name(const char *tmp, const char *path)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (link(tmp, path) == 0) {
			unlink(tmp);
			return 0;
		}
		if (errno == EPERM || errno == EOPNOTSUPP) {
			/* No hard links here: rename, which may replace a stale file. */
			if (owned_by_live_engine(path))
				return -EEXIST;
			return rename(tmp, path) < 0 ? -errno : 0;
		}
		if (errno != EEXIST)
			return -errno;
		if (owned_by_live_engine(path))
			return -EEXIST;
		unlink(path); /* stale: its engine is gone */
	}
	return -EEXIST;
}

static void note_add(char *note, size_t len, const char *msg)
{
	size_t used = strlen(note);

	snprintf(note + used, len - used, "%s%s", used ? "; " : "", msg);
}

int xr_arena_create(const xr_arena_spec *spec, xr_arena **out)
{
	struct xr_place places[XR_MAX_CANDIDATES];
	struct xr_arena *a;
	struct plan p;
	char tmp[XR_PATH_MAX + 32], why[XR_NOTE_MAX];
	int n, err, node;

	last_note[0] = '\0';
	err = check_spec(spec);
	if (err < 0)
		return err;
	n = xr__places(spec->hugepages, places, why, sizeof(why));
	if (n < 0) {
		snprintf(last_note, sizeof(last_note), "%s", why);
		return n;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	a->owner = true;
	snprintf(a->note, sizeof(a->note), "%s", why);

	node = choose_node(spec->numa_node, a->note, sizeof(a->note));
	if (node == -EINVAL) {
		snprintf(last_note, sizeof(last_note), "NUMA node %d does not exist or has no usable memory",
			 spec->numa_node);
		free(a);
		return -EINVAL;
	}

	/* One name, one engine, whichever place it lives in: an engine on
	 * hugetlbfs and another on /dev/shm would each see only their own. */
	{
		struct xr_place all[XR_MAX_CANDIDATES];
		char ignore[XR_NOTE_MAX];
		int na = xr__places(XR_HUGEPAGES_PREFER, all, ignore, sizeof(ignore));
		for (int i = 0; i < na; i++) {
			char other[XR_PATH_MAX];
			if (xr__arena_path(other, sizeof(other), all[i].dir, spec->name) == 0 &&
			    owned_by_live_engine(other)) {
				snprintf(last_note, sizeof(last_note), "an engine named '%s' is already running",
					 spec->name);
				free(a);
				return -EEXIST;
			}
		}
	}

	err = XR_ENOHUGE;
	for (int i = 0; i < n; i++) {
		const struct xr_place *pl = &places[i];
		char msg[XR_NOTE_MAX + 256];

		make_plan(spec, pl->page_size, &p);
		uint64_t frame, cap;
		int bad = plan_misfit(spec, &p, &frame, &cap);
		if (bad >= 0) {
			snprintf(msg, sizeof(msg),
				 "stream %d: its %llu-byte record frames do not fit half a ring of "
				 "%llu bytes (raise the ring size)",
				 bad, (unsigned long long)frame, (unsigned long long)cap);
			note_add(a->note, sizeof(a->note), msg);
			err = -EMSGSIZE;
			continue;
		}
		if (pl->kind == XR_BACKING_HUGETLBFS) {
			long have = xr__hugepages_free(pl->page_size);
			uint64_t need = p.total / pl->page_size;
			if (have >= 0 && (uint64_t)have < need) {
				snprintf(msg, sizeof(msg),
					 "too few free %llu kB huge pages (need %llu, have %ld; run "
					 "`xring setup` or raise vm.nr_hugepages)",
					 (unsigned long long)(pl->page_size >> 10),
					 (unsigned long long)need, have);
				note_add(a->note, sizeof(a->note), msg);
				err = XR_ENOHUGE;
				continue;
			}
		}
		if (xr__arena_path(a->path, sizeof(a->path), pl->dir, spec->name) < 0) {
			err = -ENAMETOOLONG;
			continue;
		}
		snprintf(tmp, sizeof(tmp), "%s/.xring-%s.%d.tmp", pl->dir, spec->name, (int)getpid());
		unlink(tmp);
		err = build_file(a, tmp, &p, pl, node);
		if (err < 0) {
			snprintf(msg, sizeof(msg), "%s in %s: %s", xr_backing_name(pl->kind), pl->dir,
				 strerror(-err));
			note_add(a->note, sizeof(a->note), msg);
			if (pl->kind == XR_BACKING_HUGETLBFS && err == -ENOMEM)
				err = XR_ENOHUGE;
			continue;
		}
		/* Success with this place. */
		a->slots = (struct xr_reader_slot *)((uint8_t *)a->hdr + p.ctl_off);
		a->cursors = (struct xr_cursor *)(a->slots + p.max_readers);
		if (node >= 0) {
			int real = actual_node((uint8_t *)a->hdr + p.ctl_off + p.ctl_size);
			if (real >= 0)
				node = real;
		}
		init_header(a, spec, &p, pl, node);
		snprintf(a->hdr->path, sizeof(a->hdr->path), "%s", a->path);
		for (uint32_t r = 0; r < p.n_rings; r++) {
			err = xr__map_ring(a->fd, p.ring_off[r], p.ring_cap[r], p.page, true,
					   (void **)&a->ring_data[r]);
			if (err < 0)
				break;
		}
		a->writers = err < 0 ? NULL : calloc(p.n_rings, sizeof(*a->writers));
		if (!a->writers) {
			err = err < 0 ? err : -ENOMEM;
			unlink(tmp);
			xr__arena_close(a);
			snprintf(last_note, sizeof(last_note), "mapping rings: %s", strerror(-err));
			return err;
		}
		for (uint32_t r = 0; r < p.n_rings; r++)
			xr__writer_init(&a->writers[r], a, r);
		xr_store_relaxed(&a->hdr->heartbeat_ns, xr__now_ns());
		/* A0: publishes the whole header; pairs with the acquire of state
		 * in xr__arena_open (A1). */
		xr_store_release(&a->hdr->state, XR_ARENA_READY);
		err = publish_name(tmp, a->path);
		if (err < 0) {
			unlink(tmp);
			a->owner = false;
			xr__arena_close(a);
			snprintf(last_note, sizeof(last_note), "an engine named '%s' is already running",
				 spec->name);
			return err;
		}
		snprintf(last_note, sizeof(last_note), "%s", a->note);
		*out = a;
		return 0;
	}
	snprintf(last_note, sizeof(last_note), "%s", a->note);
	free(a);
	if (spec->hugepages != XR_HUGEPAGES_REQUIRE && err == XR_ENOHUGE)
		err = -ENOMEM;
	return err;
}

void xr_arena_destroy(xr_arena *a)
{
	if (!a)
		return;
	if (a->owner && a->hdr) {
		for (uint32_t r = 0; r < a->hdr->n_rings; r++)
			xr_writer_publish(&a->writers[r]);
		/* A2: readers that see CLOSED (acquire) also see the last publish. */
		xr_store_release(&a->hdr->state, XR_ARENA_CLOSED);
		unlink(a->path);
		/* Wake every sleeper (those polling only their eventfd too), then
		 * hang up, which readers asleep on the socket see as well. */
		if (a->wake)
			for (uint32_t i = 0; i < a->hdr->max_readers; i++)
				xr__wake_kick(a->wake, &a->slots[i], i);
		xr__ctl_stop(a->ctl);
		a->ctl = NULL;
		xr__wake_detach(a);
		free(a->ctl_owned);
		a->ctl_owned = NULL;
	}
	xr__arena_close(a);
}

void xr__arena_close(struct xr_arena *a)
{
	if (!a)
		return;
	if (a->hdr) {
		for (uint32_t r = 0; r < XR_MAX_RINGS; r++)
			if (a->ring_data[r])
				xr__unmap_ring(a->ring_data[r], a->hdr->rings[r].capacity);
		if (a->map_len) {
			munmap(a->hdr, a->map_len);
		} else {
			if (a->slots)
				munmap(a->slots, a->hdr->ctl_size);
			munmap(a->hdr, a->hdr->ctl_off);
		}
	}
	if (a->fd >= 0)
		close(a->fd);
	free(a->writers);
	free(a);
}

int xr_arena_stream(const xr_arena *a, const char *name)
{
	for (uint32_t i = 0; i < a->hdr->n_streams; i++)
		if (!strcmp(a->hdr->streams[i].name, name ? name : XR_DEFAULT_STREAM))
			return (int)i;
	return -ENOENT;
}

int xr_arena_writer(xr_arena *a, uint32_t stream, uint32_t ring, xr_writer **out)
{
	if (!a->owner || stream >= a->hdr->n_streams || ring >= a->hdr->streams[stream].n_rings)
		return -EINVAL;
	*out = &a->writers[a->hdr->streams[stream].first_ring + ring];
	return 0;
}

void xr_arena_heartbeat(xr_arena *a)
{
	xr_store_relaxed(&a->hdr->heartbeat_ns, xr__now_ns());
}

void xr_arena_facts_get(const xr_arena *a, xr_arena_facts *f)
{
	f->backing = (xr_backing)a->hdr->backing;
	f->page_size = a->hdr->page_size;
	f->total_size = a->hdr->total_size;
	f->numa_node = a->hdr->numa_node;
	f->path = a->hdr->path;
	f->note = a->hdr->note;
}

/* ---- reaping and eviction (writer side) ---- */

int xr__reap_slot(struct xr_arena *a, uint32_t slot)
{
	struct xr_reader_slot *s = &a->slots[slot];
	/* R5: pairs with the claim CAS, so the state seen next is the new
	 * claimer's or the FREE its predecessor left, never older. */
	int32_t pid = xr_load_acquire(&s->pid);
	/* R5b: pairs with the claimer's release of CLAIMED, which follows its
	 * pid_start store. While the state is still FREE the claim is under
	 * way and pid_start may be the previous reader's: check the pid only. */
	uint32_t st = xr_load_acquire(&s->state);

	if (pid <= 0 || st == XR_SLOT_REAPING)
		return 0;
	/* The control server frees the slots it handed out, on hangup. (Its
	 * own record, set before the pid above was stored with release.) */
	if (a->ctl_owned && atomic_load_explicit(&a->ctl_owned[slot], memory_order_acquire))
		return 0;
	if (xr__proc_alive(pid, st == XR_SLOT_FREE ? 0 : s->pid_start))
		return 0;
	if (!xr_cas(&s->state, &st, XR_SLOT_REAPING))
		return 0; /* another reaper, or the reader itself, got there */
	for (uint32_t r = 0; r < a->hdr->n_rings; r++)
		xr_store_release(&xr__cursor(a, r, slot)->lease, XR_NO_LEASE);
	xr_store_relaxed(&s->evict_reason, XR_EVICT_DEAD);
	xr_store_release(&s->state, XR_SLOT_FREE);
	/* Last: a zero pid is what makes the slot claimable again. */
	xr_store_release(&s->pid, 0);
	return 1;
}

int xr_arena_reap(xr_arena *a)
{
	int n = 0;

	for (uint32_t i = 0; i < a->hdr->max_readers; i++)
		n += xr__reap_slot(a, i);
	return n;
}

bool xr__evict_slot(struct xr_arena *a, uint32_t slot, uint32_t reason)
{
	struct xr_reader_slot *s = &a->slots[slot];
	uint32_t st = XR_SLOT_ACTIVE;

	if (!xr_cas(&s->state, &st, XR_SLOT_EVICTED))
		return false;
	xr_store_relaxed(&s->evict_reason, reason);
	/* A sleeping reader learns it at once, not at its next re-check. */
	if (a->wake)
		xr__wake_kick(a->wake, s, slot);
	return true;
}

/* ---- opening (readers, tools) ---- */

/* Opens the arena file of `name` in the k-th place (k = 0, 1, ...).
 * Returns an fd, -ENOENT if no file is there, -ERANGE past the last place,
 * or -errno. */
static int open_file(const char *name, int k, bool rw, char *path, size_t path_len)
{
	struct xr_place places[XR_MAX_CANDIDATES];
	char why[XR_NOTE_MAX];
	int n = xr__places(XR_HUGEPAGES_PREFER, places, why, sizeof(why));

	if (k >= n)
		return -ERANGE;
	if (xr__arena_path(path, path_len, places[k].dir, name) < 0)
		return -ENOENT;
	int fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static int validate_header(const struct xr_arena_hdr *h, uint64_t file_size)
{
	if (h->magic != XR_MAGIC)
		return XR_ENOTARENA;
	if (h->layout_version != XR_LAYOUT_VERSION || h->hdr_size != sizeof(*h) ||
	    h->fingerprint != xr__layout_fingerprint())
		return XR_ELAYOUT;
	/* The engine is trusted, but a torn or foreign file must not make us
	 * map or index out of range. */
	if (!is_pow2(h->page_size) || h->total_size != file_size || h->ctl_off % h->page_size ||
	    h->ctl_size % h->page_size || h->ctl_off < sizeof(*h) ||
	    h->ctl_off + h->ctl_size > h->total_size || h->n_streams < 1 ||
	    h->n_streams > XR_MAX_STREAMS || h->n_rings < 1 || h->n_rings > XR_MAX_RINGS ||
	    h->max_readers < 1 || h->max_readers > XR_MAX_READERS_LIMIT ||
	    (uint64_t)h->max_readers * (1 + h->n_rings) * XR_CACHELINE > h->ctl_size)
		return XR_ENOTARENA;
	for (uint32_t r = 0; r < h->n_rings; r++) {
		const struct xr_ring_desc *rd = &h->rings[r];
		if (!is_pow2(rd->capacity) || rd->capacity % h->page_size ||
		    rd->data_off % h->page_size || rd->data_off < h->ctl_off + h->ctl_size ||
		    rd->data_off + rd->capacity > h->total_size || rd->stream >= h->n_streams ||
		    !is_pow2(rd->frame_align) || rd->frame_align < 16 || rd->frame_align > 4096 ||
		    xr__frame_size(rd->record_len, rd->frame_align) > rd->capacity / 2 ||
		    xr__frame_size(rd->record_len, rd->frame_align) > UINT32_MAX)
			return XR_ENOTARENA;
	}
	for (uint32_t i = 0; i < h->n_streams; i++) {
		const struct xr_stream_desc *sd = &h->streams[i];
		if (sd->first_ring + (uint64_t)sd->n_rings > h->n_rings || sd->n_rings < 1 ||
		    !memchr(sd->name, 0, sizeof(sd->name)))
			return XR_ENOTARENA;
	}
	return 0;
}

bool xr__arena_alive(const struct xr_arena *a)
{
	/* A1: pairs with A0 / A2. */
	if (xr_load_acquire(&a->hdr->state) != XR_ARENA_READY)
		return false;
	return xr__proc_alive(a->hdr->writer_pid, a->hdr->writer_start);
}

static int open_at(const char *name, int k, int flags, int stream, struct xr_arena **out);

int xr__arena_open(const char *name, int flags, int stream, struct xr_arena **out)
{
	int err = -ENOENT;

	if (xr__check_name(name, XR_NAME_MAX) < 0)
		return -EINVAL;
	/* Every place, best first. A file whose engine is gone (left by a
	 * SIGKILL) must not hide a live engine of the same name elsewhere. */
	for (int k = 0;; k++) {
		int rc = open_at(name, k, flags, stream, out);
		if (rc == 0 || rc == -ERANGE)
			return rc == 0 ? 0 : err;
		if (rc != -ENOENT && (err == -ENOENT || err == XR_ECLOSED))
			err = rc;
	}
}

static int open_mapped(struct xr_arena *a, int fd, int flags, int stream, struct xr_arena **out);

static int open_at(const char *name, int k, int flags, int stream, struct xr_arena **out)
{
	struct xr_arena *a;
	int fd;
	bool rw = flags & XR_OPEN_CTL_RW;

	if (xr__check_name(name, XR_NAME_MAX) < 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	fd = open_file(name, k, rw, a->path, sizeof(a->path));
	if (fd < 0) {
		free(a);
		return fd;
	}
	return open_mapped(a, fd, flags, stream, out);
}

int xr__arena_open_fd(int fd, int flags, int stream, struct xr_arena **out)
{
	struct xr_arena *a = calloc(1, sizeof(*a));

	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	return open_mapped(a, fd, flags, stream, out);
}

/* Validates and maps the arena open on fd into a (both consumed). */
static int open_mapped(struct xr_arena *a, int fd, int flags, int stream, struct xr_arena **out)
{
	struct xr_arena_hdr h;
	struct stat st;
	int err;
	bool rw = flags & XR_OPEN_CTL_RW;

	a->fd = fd;
	if (fstat(fd, &st) < 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		err = fstat(fd, &st) < 0 ? -errno : XR_ENOTARENA;
		goto fail;
	}
	err = validate_header(&h, (uint64_t)st.st_size);
	if (err < 0)
		goto fail;
	a->hdr = xr__map_region(fd, 0, h.ctl_off, false);
	if (!a->hdr) {
		err = -errno;
		goto fail;
	}
	/* From here on only the mapping is read. Fields that must not change
	 * were validated in the copy; re-check the ones that size mappings. */
	if (memcmp(&h, a->hdr, offsetof(struct xr_arena_hdr, state)) != 0) {
		err = XR_ENOTARENA;
		goto fail;
	}
	if (!xr__arena_alive(a)) {
		err = XR_ECLOSED;
		goto fail;
	}
	a->slots = xr__map_region(fd, h.ctl_off, h.ctl_size, rw);
	if (!a->slots) {
		err = -errno;
		goto fail;
	}
	a->cursors = (struct xr_cursor *)(a->slots + h.max_readers);
	if (flags & XR_OPEN_RINGS) {
		for (uint32_t r = 0; r < h.n_rings; r++) {
			if (stream >= 0 && h.rings[r].stream != (uint32_t)stream)
				continue;
			err = xr__map_ring(fd, h.rings[r].data_off, h.rings[r].capacity, h.page_size,
					   false, (void **)&a->ring_data[r]);
			if (err < 0)
				goto fail;
		}
	}
	*out = a;
	return 0;
fail:
	xr__arena_close(a);
	return err;
}
