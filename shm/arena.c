/* SPDX-License-Identifier: MIT */
/*
 * Arena lifecycle: create (the engine), close and destroy (the engine), open
 * (readers and tools).
 *
 * Creation builds the whole file unnamed (O_TMPFILE), prefaults and binds its
 * memory, marks it READY, and only then links it to its public name, so a
 * reader that finds the name always finds a complete arena. The name is in a
 * directory every user can write (/dev/shm, /dev/hugepages), so nothing found
 * there is trusted: a file left under the name by an engine of ours that died
 * is replaced; anything else under it (another user's file, a FIFO, a link)
 * is refused, named in the refusal, and never opened for real.
 *
 * The engine keeps its own copy of every layout field (struct xr_layout) and
 * never reads one back from shared memory; so does a reader, from the header
 * it validated. Shared memory holds the header for tools and readers, and the
 * atomics of the protocol.
 */
#include <dirent.h>
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
#include <sys/statvfs.h>
#include <unistd.h>

#include "shm/arena_priv.h"
#include "util/atomics.h"
#include "shm/backing.h"
#include "shm/map.h"
#include "shm/peers.h"
#include "shm/wake.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/proc.h"
#include "xring/error.h"
#include "xring/writer.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define XR_DEFAULT_RING_BYTES (4ull << 20)
#define XR_DEFAULT_MAX_READERS 64
#define XR_DEFAULT_ALIGN 64
#define XR_PAGE_MAX (1ull << 30)

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

static void note_add(char *note, size_t len, const char *msg)
{
	size_t used = strlen(note);

	snprintf(note + used, len - used, "%s%s", used ? "; " : "", msg);
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

/* Where the agent table starts in the reader table's region: after an
 * entry per reader slot and a view per slot and ring, on a cache line. */
static uint64_t agents_at(uint32_t max_readers, uint32_t n_rings)
{
	uint64_t n = (uint64_t)max_readers * sizeof(struct xr_reader_info) +
		     (uint64_t)n_rings * max_readers * sizeof(struct xr_cursor_view);
	return (n + XR_CACHELINE - 1) & ~(uint64_t)(XR_CACHELINE - 1);
}

/* Where the readers' own figures start: after the agents' part (an entry
 * per agent, and its counts per ring). */
static uint64_t figs_at(uint32_t max_readers, uint32_t n_rings)
{
	return agents_at(max_readers, n_rings) +
	       XR_MAX_AGENTS * (sizeof(struct xr_agent_info) +
				(uint64_t)n_rings * sizeof(struct xr_agent_counts));
}

/* The reader table's size: readers, agents, then the readers' figures. */
static uint64_t table_bytes(uint32_t max_readers, uint32_t n_rings)
{
	return figs_at(max_readers, n_rings) +
	       (uint64_t)max_readers * sizeof(struct xr_reader_figs);
}

/* ---- sizing ---- */

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
		if (s->ring_bytes > (1ull << 40) || s->n_rings > XR_MAX_RINGS ||
		    s->producers > (s->n_rings ? s->n_rings : 1))
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

/* The layout of an arena of spec on pages of page_size bytes: every field
 * the engine will ever use, in its private copy. */
static void make_layout(const xr_arena_spec *spec, uint64_t page, struct xr_layout *l)
{
	uint32_t r = 0;
	uint64_t off;

	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", spec->name);
	l->page_size = page;
	l->max_readers = spec->max_readers ? spec->max_readers : XR_DEFAULT_MAX_READERS;
	for (uint32_t i = 0; i < spec->n_streams; i++)
		r += spec->streams[i].n_rings ? spec->streams[i].n_rings : 1;
	l->n_rings = r;
	l->n_streams = spec->n_streams;
	l->tab_off = round_up(sizeof(struct xr_arena_hdr), page);
	l->tab_size = round_up(table_bytes(l->max_readers, r), page);
	l->writer_uid = (uint32_t)geteuid();
	l->writer_pid = getpid();
	l->writer_start = xr__proc_start(getpid());
	off = l->tab_off + l->tab_size;
	r = 0;
	for (uint32_t i = 0; i < spec->n_streams; i++) {
		const xr_stream_spec *s = &spec->streams[i];
		struct xr_stream_desc *sd = &l->streams[i];
		uint64_t want = s->ring_bytes ? s->ring_bytes : XR_DEFAULT_RING_BYTES;
		uint64_t cap = pow2_at_least(want < page ? page : want);
		uint32_t n = s->n_rings ? s->n_rings : 1;
		uint32_t record_len = 0;

		if (s->kind == XR_RECORD_EXPERIENCE) {
			xr_exp_template t;
			xr_exp_template_init(&t, &s->shape); /* checked by check_spec */
			record_len = t.size;
			sd->shape = s->shape;
		}
		snprintf(sd->name, sizeof(sd->name), "%s", s->name ? s->name : XR_DEFAULT_STREAM);
		sd->policy = s->policy == XR_POLICY_LOSSY ? XR_POLICY_LOSSY : XR_POLICY_LOSSLESS;
		sd->n_rings = n;
		sd->first_ring = r;
		sd->frame_align = s->frame_align ? s->frame_align : XR_DEFAULT_ALIGN;
		sd->record_kind = s->kind;
		sd->ring_capacity = cap;
		sd->max_frame = (uint32_t)(cap / 2 > UINT32_MAX ? UINT32_MAX : cap / 2);
		sd->producers = s->producers;
		for (uint32_t k = 0; k < n; k++, r++) {
			l->rings[r] = (struct xr_ring_fixed){
				.data_off = off,
				.capacity = cap,
				.stream = i,
				.frame_align = sd->frame_align,
				.record_len = record_len,
			};
			off += cap;
		}
	}
	l->total_size = off;
}

/* The frame of an Experience stream's record (its one size) must fit half
 * of its ring, as every frame must (max_frame); readers refuse an arena
 * where it does not. Returns the stream that does not fit, or -1. */
static int layout_misfit(const struct xr_layout *l, uint64_t *frame, uint64_t *cap)
{
	for (uint32_t i = 0; i < l->n_streams; i++) {
		const struct xr_ring_fixed *rf = &l->rings[l->streams[i].first_ring];

		if (!rf->record_len)
			continue;
		*frame = xr__frame_size(rf->record_len, rf->frame_align);
		*cap = rf->capacity;
		if (*frame > rf->capacity / 2 || *frame > UINT32_MAX)
			return (int)i;
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
		note_add(note, note_len, "no NUMA support: memory unbound");
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

static int actual_node(void *addr)
{
	int node = -1;

	if (get_mempolicy(&node, NULL, 0, addr, MPOL_F_NODE | MPOL_F_ADDR) < 0)
		return -1;
	return node;
}

/* ---- the name ---- */

enum name_state {
	NAME_FREE,     /* nothing there */
	NAME_STALE,    /* our own arena, closed or its engine gone: replace it */
	NAME_LIVE,     /* a running engine's arena */
	NAME_FOREIGN,  /* anything else: refuse, never touch */
};

static const char *kind_of(mode_t m)
{
	return S_ISREG(m) ? "a file" : S_ISLNK(m) ? "a symbolic link" : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket" : S_ISDIR(m) ? "a directory" : "a device";
}

/* What holds path now. Opens nothing that could block or that is not ours;
 * why says what holds it when that is not an engine of ours; *seen (if not
 * NULL) is what was looked at (st_ino 0: nothing). */
static enum name_state name_state(const char *path, char *why, size_t why_len,
				  struct stat *seen)
{
	struct xr_arena_hdr h;
	struct stat st = {0};
	int fd = xr__open_trusted(path, O_RDONLY, NULL, &st);

	if (seen)
		*seen = fd >= 0 ? st : (struct stat){0};

	if (fd == -ENOENT)
		return NAME_FREE;
	if (fd == XR_EUNTRUSTED || fd == -ELOOP || fd == -EMEDIUMTYPE ||
	    (fd >= 0 && st.st_uid != geteuid())) {
		if (fd >= 0)
			close(fd);
		snprintf(why, why_len, "%s is %s of uid %u%s", path, kind_of(st.st_mode),
			 (unsigned)st.st_uid,
			 st.st_uid == geteuid() ? ", not a regular file" : ", not an engine of this user");
		return NAME_FOREIGN;
	}
	if (fd < 0) {
		snprintf(why, why_len, "%s cannot be examined: %s", path, strerror(-fd));
		return NAME_FOREIGN;
	}
	ssize_t n = pread(fd, &h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h) || h.magic != XR_MAGIC) {
		snprintf(why, why_len, "%s is a file of this user that is not an xring arena", path);
		return NAME_FOREIGN;
	}
	/* Another layout: its pid and state are not where we would look, so
	 * we cannot tell it is dead. Presume it alive rather than destroy it. */
	if (h.layout_version != XR_LAYOUT_VERSION || h.hdr_size != sizeof(h) ||
	    h.fingerprint != xr__layout_fingerprint())
		return NAME_LIVE;
	if (xr_load_relaxed(&h.state) == XR_ARENA_CLOSED)
		return NAME_STALE;
	return xr__proc_alive(h.writer_pid, h.writer_start) ? NAME_LIVE : NAME_STALE;
}

/* name_state of path; when an engine or anything else holds it, says so
 * in last_note. */
static enum name_state name_taken(const char *path, const char *name, struct stat *seen)
{
	char why[XR_NOTE_MAX + 64] = "";
	enum name_state st = name_state(path, why, sizeof(why), seen);

	if (st == NAME_LIVE)
		snprintf(last_note, sizeof(last_note), "an engine named '%s' is already running", name);
	else if (st == NAME_FOREIGN)
		snprintf(last_note, sizeof(last_note), "the name '%s' is taken: %s", name, why);
	return st;
}

/* Whether name is free to take in every place: an engine on hugetlbfs and
 * another on /dev/shm would each see only their own. 0, -EEXIST with the
 * reason in last_note. */
static int name_free_everywhere(const char *name)
{
	struct xr_place all[XR_MAX_CANDIDATES];
	char ignore[XR_NOTE_MAX];
	int na = xr__places(XR_HUGEPAGES_PREFER, all, ignore, sizeof(ignore));

	for (int i = 0; i < na; i++) {
		char path[XR_PATH_MAX];
		if (xr__arena_path(path, sizeof(path), all[i].dir, name) < 0)
			continue;
		enum name_state st = name_taken(path, name, NULL);
		if (st != NAME_FREE && st != NAME_STALE)
			return -EEXIST;
	}
	return 0;
}

/* Removes path if it is still the file `was` (dev and inode): what another
 * engine of this user links there meanwhile (it found the same stale file
 * and replaced it first) is not ours to remove. A window between the lstat
 * and the unlink remains, open to this user's own engines only (the arena
 * directories are sticky). */
static void unlink_if_same(const char *path, const struct stat *was)
{
	struct stat there;

	if (was->st_ino && lstat(path, &there) == 0 && there.st_dev == was->st_dev &&
	    there.st_ino == was->st_ino)
		unlink(path);
}

int xr__arena_reap_stale(const char *const *names, int n_names, bool dry_run,
			 void (*found)(const char *path, uint64_t bytes, bool removed, void *ctx),
			 void *ctx)
{
	struct xr_place all[XR_MAX_CANDIDATES];
	struct stat dirs[XR_MAX_CANDIDATES];
	char ignore[XR_NOTE_MAX];
	int na = xr__places(XR_HUGEPAGES_PREFER, all, ignore, sizeof(ignore)), n = 0;

	for (int i = 0; i < na; i++) {
		DIR *d = opendir(all[i].dir);
		struct dirent *e;
		bool seen_dir = false;

		if (!d)
			continue;
		/* XRING_DIR may be one of the others. */
		if (fstat(dirfd(d), &dirs[i]) == 0)
			for (int j = 0; j < i; j++)
				seen_dir |= dirs[j].st_dev == dirs[i].st_dev &&
					    dirs[j].st_ino == dirs[i].st_ino;
		else
			dirs[i] = (struct stat){0};
		while (!seen_dir && (e = readdir(d))) {
			char path[XR_PATH_MAX], why[XR_NOTE_MAX + 64];
			struct stat was;
			const char *name = e->d_name + 6;

			if (strncmp(e->d_name, "xring-", 6) || xr__check_name(name, XR_NAME_MAX) < 0 ||
			    xr__arena_path(path, sizeof(path), all[i].dir, name) < 0)
				continue;
			bool asked = n_names == 0;
			for (int k = 0; k < n_names && !asked; k++)
				asked = !strcmp(names[k], name);
			if (!asked)
				continue;
			/* Opens nothing that is not a regular file of ours. */
			if (name_state(path, why, sizeof(why), &was) != NAME_STALE)
				continue;
			bool removed = false;
			if (!dry_run) {
				unlink_if_same(path, &was);
				removed = lstat(path, &(struct stat){0}) < 0 && errno == ENOENT;
			}
			found(path, (uint64_t)was.st_size, removed, ctx);
			n++;
		}
		closedir(d);
	}
	return n;
}

/* ---- creation ---- */

static void write_header(struct xr_arena *a, const struct xr_place *pl, int node)
{
	struct xr_arena_hdr *h = a->hdr;
	const struct xr_layout *l = &a->lay;

	h->magic = XR_MAGIC;
	h->layout_version = XR_LAYOUT_VERSION;
	h->hdr_size = sizeof(*h);
	h->fingerprint = xr__layout_fingerprint();
	h->total_size = l->total_size;
	h->page_size = l->page_size;
	h->tab_off = l->tab_off;
	h->tab_size = l->tab_size;
	h->created_ns = xr__wall_ns();
	h->writer_pid = l->writer_pid;
	h->writer_start = l->writer_start;
	h->writer_uid = l->writer_uid;
	h->numa_node = node;
	h->backing = pl->kind;
	h->n_streams = l->n_streams;
	h->n_rings = l->n_rings;
	h->max_readers = l->max_readers;
	memcpy(h->name, l->name, sizeof(h->name));
	snprintf(h->path, sizeof(h->path), "%s", a->path);
	snprintf(h->note, sizeof(h->note), "%s", a->note);
	memcpy(h->streams, l->streams, sizeof(l->streams));
	for (uint32_t r = 0; r < l->n_rings; r++) {
		struct xr_ring_desc *rd = &h->rings[r];
		rd->data_off = l->rings[r].data_off;
		rd->capacity = l->rings[r].capacity;
		rd->stream = l->rings[r].stream;
		rd->frame_align = l->rings[r].frame_align;
		rd->record_len = l->rings[r].record_len;
		rd->index = r;
		/* Before the arena is published: no release needed. */
		const struct xr_stream_desc *sd = &l->streams[rd->stream];
		rd->writer = r >= sd->first_ring + sd->n_rings - sd->producers
				     ? XR_RING_PRODUCER_IDLE : XR_RING_ENGINE;
	}
	/* The file is new, so every byte is zero: the reader table starts
	 * FREE. No reader can see the arena yet. */
}

/* An unnamed file in dir (O_TMPFILE), or where the filesystem cannot make
 * one, a file under a name nobody can guess (O_EXCL, not following links),
 * removed again once the arena has its public name. */
static int new_file(const char *dir, const char *name, char *tmp, size_t tmp_len)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	tmp[0] = '\0';
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd >= 0 ? fd : -errno;
	for (int attempt = 0; attempt < 16; attempt++) {
		snprintf(tmp, tmp_len, "%s/.xring-%s.%d.%llx.tmp", dir, name, (int)getpid(),
			 (unsigned long long)(xr__now_ns() * 0x9e3779b97f4a7c15ull));
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

/* Sizes, maps and prefaults a new file in the place. 0 or -errno. */
static int build_file(struct xr_arena *a, const struct xr_place *pl, int node, const char *name,
		      char *tmp, size_t tmp_len)
{
	const struct xr_layout *l = &a->lay;
	int fd = new_file(pl->dir, name, tmp, tmp_len);
	int err;

	if (fd < 0)
		return fd;
	fchmod(fd, 0600); /* past the umask: the engine's uid only */
	if (ftruncate(fd, (off_t)l->total_size) < 0) {
		err = -errno;
		goto fail;
	}
	a->hdr = mmap(NULL, l->total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a->hdr == MAP_FAILED) {
		a->hdr = NULL;
		err = -errno;
		goto fail;
	}
	a->map_len = l->total_size;
	if (pl->kind == XR_BACKING_SHM_THP)
		madvise(a->hdr, l->total_size, MADV_HUGEPAGE);
	/* Bind before the first touch: pages are placed when they fault in. */
	if (node >= 0)
		numa_tonode_memory(a->hdr, l->total_size, node);
	/* Prefault now so that no record write ever takes a page fault, and so
	 * that a shortage of huge pages is an error here instead of a SIGBUS
	 * later. */
	if (madvise(a->hdr, l->total_size, MADV_POPULATE_WRITE) < 0) {
		if (errno != EINVAL) {
			err = -errno;
			goto fail;
		}
		for (uint64_t off = 0; off < l->total_size; off += l->page_size)
			((volatile uint8_t *)a->hdr)[off] = 0;
	}
	a->fd = fd;
	return 0;
fail:
	if (a->hdr)
		munmap(a->hdr, l->total_size);
	a->hdr = NULL;
	a->map_len = 0;
	close(fd);
	if (tmp[0])
		unlink(tmp);
	return err;
}

/* Whether the name is held in a place other than ours (path): -EEXIST
 * with the reason in last_note, or 0. */
static int name_held_elsewhere(const char *ours, const char *name)
{
	struct xr_place all[XR_MAX_CANDIDATES];
	char ignore[XR_NOTE_MAX];
	int na = xr__places(XR_HUGEPAGES_PREFER, all, ignore, sizeof(ignore));

	for (int i = 0; i < na; i++) {
		char path[XR_PATH_MAX];
		if (xr__arena_path(path, sizeof(path), all[i].dir, name) < 0 ||
		    strcmp(path, ours) == 0)
			continue;
		enum name_state st = name_taken(path, name, NULL);
		if (st != NAME_FREE && st != NAME_STALE)
			return -EEXIST;
	}
	return 0;
}

/* Removes our link at a->path, and only if it is still ours. */
static void unpublish(struct xr_arena *a)
{
	struct stat mine;

	if (a->fd >= 0 && fstat(a->fd, &mine) == 0)
		unlink_if_same(a->path, &mine);
}

/* Gives the finished file its public name: a link, which fails rather
 * than replace anything; only a stale arena of ours is removed to make
 * room. -EEXIST (reason in last_note) or -errno.
 *
 * The name is one across all places (hugetlbfs, /dev/shm), but a link is
 * atomic in one directory only: two engines that both found the name free
 * can link it in two places. So each looks at the other places once its
 * link stands. Of two such engines, at least the one that links second
 * sees the first, so at most one keeps the name; both withdrawing (each
 * saw the other) is resolved by looking again: the name is free, and
 * both try once more. */
static int publish_name(struct xr_arena *a, const char *tmp, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", a->fd);
	for (int attempt = 0; attempt < 4; attempt++) {
		int rc = tmp[0] ? link(tmp, a->path)
				: linkat(AT_FDCWD, proc, AT_FDCWD, a->path, AT_SYMLINK_FOLLOW);
		if (rc == 0) {
			if (name_held_elsewhere(a->path, name) == 0)
				return 0;
			unpublish(a);
			if (name_free_everywhere(name) < 0)
				return -EEXIST;
			continue;
		}
		if (errno != EEXIST)
			return -errno;
		struct stat seen;
		enum name_state st = name_taken(a->path, name, &seen);
		if (st != NAME_FREE && st != NAME_STALE)
			return -EEXIST;
		if (st == NAME_STALE)
			unlink_if_same(a->path, &seen); /* ours, and its engine is gone */
	}
	snprintf(last_note, sizeof(last_note),
		 "the name '%s' is contested by another engine starting now", name);
	return -EEXIST;
}

/* The agent table's two parts and the readers' figures, in a mapped reader
 * table. */
static void map_agents(struct xr_arena *a)
{
	a->agents = (struct xr_agent_info *)((uint8_t *)a->infos +
					     agents_at(a->lay.max_readers, a->lay.n_rings));
	a->agent_stats = (struct xr_agent_counts *)(a->agents + XR_MAX_AGENTS);
	a->figs = (struct xr_reader_figs *)((uint8_t *)a->infos +
					    figs_at(a->lay.max_readers, a->lay.n_rings));
}

static void map_table(struct xr_arena *a)
{
	a->infos = (struct xr_reader_info *)((uint8_t *)a->hdr + a->lay.tab_off);
	a->views = (struct xr_cursor_view *)(a->infos + a->lay.max_readers);
	map_agents(a);
}

/* The private parts of the engine's handle: writers, peer slots, wakeups. */
static int engine_parts(struct xr_arena *a)
{
	int rc;

	a->writers = calloc(a->lay.n_rings, sizeof(*a->writers));
	if (!a->writers)
		return -ENOMEM;
	rc = xr__peers_create(a);
	if (rc < 0)
		return rc;
	for (uint32_t r = 0; r < a->lay.n_rings; r++)
		xr__writer_init(&a->writers[r], a, r);
	return xr__wake_create(a);
}

/* A file that could not be built for want of room, said with what to do:
 * the kernel's words are no help there (a tmpfs that fills while the file
 * is prefaulted fails MADV_POPULATE_WRITE with EFAULT, "Bad address"; a
 * hugetlbfs out of pages fails the mmap with ENOMEM). XR_ENOHUGE for
 * hugetlbfs, -ENOSPC for a directory, with the reason added to a->note;
 * err itself for a failure of another kind. */
static int no_room(struct xr_arena *a, const struct xr_place *pl, int err)
{
	char msg[XR_NOTE_MAX + 256];
	unsigned long long need = (a->lay.total_size + (1u << 20) - 1) >> 20;
	struct statvfs sv;
	bool full = err == -ENOMEM || err == -ENOSPC || err == -EFAULT;

	if (pl->kind == XR_BACKING_HUGETLBFS && full) {
		snprintf(msg, sizeof(msg),
			 "no huge pages left in %s for %llu MiB (raise vm.nr_hugepages)",
			 pl->dir, need);
		note_add(a->note, sizeof(a->note), msg);
		return XR_ENOHUGE;
	}
	if (pl->kind == XR_BACKING_HUGETLBFS || !full || err == -ENOMEM)
		return err; /* tmpfs out of memory, not of room: strerror says so */
	/* Short: with a hugetlbfs's failure before it, the note holds both. */
	if (statvfs(pl->dir, &sv) == 0)
		snprintf(msg, sizeof(msg),
			 "%s is full: %llu MiB needed, %llu free (free some or lower --ring-size)",
			 pl->dir, need, (unsigned long long)(sv.f_bavail * sv.f_frsize >> 20));
	else
		snprintf(msg, sizeof(msg),
			 "%s is full: %llu MiB needed (free some or lower --ring-size)", pl->dir,
			 need);
	note_add(a->note, sizeof(a->note), msg);
	return -ENOSPC;
}

/* Set by xr__arena_create_unnamed for the creation under way (the calling
 * thread's): the name is given later, by xr__arena_publish. */
static _Thread_local bool defer_name;

/* Tries one place; 0, or an error with the reason added to a->note. */
static int create_in(struct xr_arena *a, const xr_arena_spec *spec, const struct xr_place *pl,
		     int node)
{
	char tmp[XR_PATH_MAX + 64], msg[XR_NOTE_MAX + 256];
	uint64_t frame, cap;
	int err;

	make_layout(spec, pl->page_size, &a->lay);
	int bad = layout_misfit(&a->lay, &frame, &cap);
	if (bad >= 0) {
		snprintf(msg, sizeof(msg),
			 "stream %d: its %llu-byte record frames do not fit half a ring of %llu "
			 "bytes (raise the ring size)",
			 bad, (unsigned long long)frame, (unsigned long long)cap);
		note_add(a->note, sizeof(a->note), msg);
		return -EMSGSIZE;
	}
	if (pl->kind == XR_BACKING_HUGETLBFS) {
		long have = xr__hugepages_free(pl->page_size);
		uint64_t need = a->lay.total_size / pl->page_size;
		if (have >= 0 && (uint64_t)have < need) {
			snprintf(msg, sizeof(msg),
				 "too few free %llu kB huge pages (need %llu, have %ld; run `xring "
				 "setup` or raise vm.nr_hugepages)",
				 (unsigned long long)(pl->page_size >> 10), (unsigned long long)need,
				 have);
			note_add(a->note, sizeof(a->note), msg);
			return XR_ENOHUGE;
		}
	}
	if (xr__arena_path(a->path, sizeof(a->path), pl->dir, spec->name) < 0)
		return -ENAMETOOLONG;
	err = build_file(a, pl, node, spec->name, tmp, sizeof(tmp));
	if (err < 0) {
		int full = no_room(a, pl, err);
		if (full != err)
			return full;
		snprintf(msg, sizeof(msg), "%s in %s: %s", xr_backing_name(pl->kind), pl->dir,
			 strerror(-err));
		note_add(a->note, sizeof(a->note), msg);
		return pl->kind == XR_BACKING_HUGETLBFS && err == -ENOMEM ? XR_ENOHUGE : err;
	}
	if (node >= 0) {
		int real = actual_node((uint8_t *)a->hdr + a->lay.tab_off + a->lay.tab_size);
		if (real >= 0)
			node = real;
	}
	write_header(a, pl, node);
	map_table(a);
	for (uint32_t r = 0; r < a->lay.n_rings && err == 0; r++)
		err = xr__map_ring(a->fd, a->lay.rings[r].data_off, a->lay.rings[r].capacity,
				   a->lay.page_size, true, (void **)&a->ring_data[r]);
	if (err == 0)
		err = engine_parts(a);
	if (err == 0) {
		xr_store_relaxed(&a->hdr->heartbeat_ns, xr__now_ns());
		/* A0: publishes the whole header; pairs with the acquire of state
		 * in xr__arena_alive (A1). */
		xr_store_release(&a->hdr->state, XR_ARENA_READY);
		if (defer_name) {
			xr_store_release(&a->name_pending, true);
			snprintf(a->pending_tmp, sizeof(a->pending_tmp), "%s", tmp);
			return 0; /* the file stays at tmp until published */
		}
		err = publish_name(a, tmp, spec->name);
	}
	if (tmp[0])
		unlink(tmp);
	return err;
}

int xr__arena_create_unnamed(const xr_arena_spec *spec, struct xr_arena **out)
{
	defer_name = true;
	int rc = xr_arena_create(spec, out);
	defer_name = false;
	return rc;
}

int xr__arena_publish(struct xr_arena *a)
{
	if (!a || !a->owner || !xr_load_acquire(&a->name_pending))
		return 0;
	last_note[0] = '\0'; /* what holds the name, if publish_name says */
	int rc = publish_name(a, a->pending_tmp, a->lay.name);
	if (a->pending_tmp[0])
		unlink(a->pending_tmp);
	a->pending_tmp[0] = '\0';
	/* Refused, the name stays another's: the close must not remove it. */
	/* Release: the control thread opens the arena by its name only
	 * once it is ours (control/server.c, open_read_only). */
	xr_store_release(&a->name_pending, rc < 0);
	if (rc == -EEXIST && !last_note[0])
		snprintf(last_note, sizeof(last_note), "an engine named '%s' is already running",
			 a->lay.name);
	return rc;
}

int xr_arena_create(const xr_arena_spec *spec, xr_arena **out)
{
	struct xr_place places[XR_MAX_CANDIDATES];
	struct xr_arena *a;
	char why[XR_NOTE_MAX];
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
	err = name_free_everywhere(spec->name);
	if (err < 0)
		return err;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	a->owner = true;
	snprintf(a->note, sizeof(a->note), "%s", why);
	node = choose_node(spec->numa_node, a->note, sizeof(a->note));
	if (node == -EINVAL) {
		snprintf(last_note, sizeof(last_note),
			 "NUMA node %d does not exist or has no usable memory", spec->numa_node);
		free(a);
		return -EINVAL;
	}

	err = XR_ENOHUGE;
	for (int i = 0; i < n; i++) {
		char note[XR_NOTE_MAX];
		snprintf(note, sizeof(note), "%s", a->note);
		err = create_in(a, spec, &places[i], node);
		if (err == 0) {
			snprintf(last_note, sizeof(last_note), "%s", a->note);
			*out = a;
			return 0;
		}
		if (a->hdr) {
			/* Built but not published: undo all of it. */
			xr__arena_close(a);
			a = calloc(1, sizeof(*a));
			if (!a)
				return -ENOMEM;
			a->fd = -1;
			a->owner = true;
			snprintf(a->note, sizeof(a->note), "%s", note);
			if (err == -EEXIST)
				return err; /* last_note says who holds the name */
		}
	}
	snprintf(last_note, sizeof(last_note), "%s", a->note);
	free(a);
	if (spec->hugepages != XR_HUGEPAGES_REQUIRE && err == XR_ENOHUGE)
		err = -ENOMEM;
	return err;
}

/* ---- closing and destruction (engine) ---- */

void xr__arena_hold(struct xr_arena *a)
{
	a->holders++;
}

void xr__arena_unhold(struct xr_arena *a)
{
	a->holders--;
}

void xr_arena_close(xr_arena *a)
{
	if (!a || !a->owner || !a->hdr || xr_load_relaxed(&a->hdr->state) == XR_ARENA_CLOSED)
		return;
	for (uint32_t r = 0; r < a->lay.n_rings; r++)
		xr_writer_publish(&a->writers[r]);
	/* A2: readers that see CLOSED (acquire) also see the last publish. */
	xr_store_release(&a->hdr->state, XR_ARENA_CLOSED);
	/* Never published: the name may be another engine's; the file is
	 * ours at pending_tmp. */
	if (xr_load_acquire(&a->name_pending)) {
		if (a->pending_tmp[0])
			unlink(a->pending_tmp);
		a->pending_tmp[0] = '\0';
	} else {
		/* Only if the name is still ours: another engine of this user
		 * may have taken it over since (it found ours stale). */
		unpublish(a);
	}
	/* Wake every sleeper: each drains what was published, then learns. */
	xr__peers_enter(a->peers, XR_PAGES_CLOSE);
	for (uint32_t i = 0; i < a->lay.max_readers; i++)
		xr__wake_kick(a, i);
	xr__peers_leave(a->peers, XR_PAGES_CLOSE);
}

int xr_arena_destroy(xr_arena *a)
{
	if (!a)
		return 0;
	if (a->owner && (a->holders || (a->peers && xr__peers_taken(a))))
		return -EBUSY;
	xr_arena_close(a);
	xr__arena_close(a);
	return 0;
}

void xr__arena_close(struct xr_arena *a)
{
	if (!a)
		return;
	if (a->owner)
		xr__wake_destroy(a);
	xr__peers_destroy(a);
	/* Sizes from the private layout: never from the mapping, which another
	 * process may have changed. */
	for (uint32_t r = 0; r < XR_MAX_RINGS; r++)
		if (a->ring_data[r])
			xr__unmap_ring(a->ring_data[r], a->lay.rings[r].capacity);
	if (a->map_len)
		munmap(a->hdr, a->map_len);
	else {
		if (a->infos)
			munmap(a->infos, a->tab_mapped);
		if (a->hdr)
			munmap(a->hdr, a->hdr_mapped);
	}
	if (a->fd >= 0)
		close(a->fd);
	free(a->writers);
	free(a);
}

int xr_arena_stream(const xr_arena *a, const char *name)
{
	for (uint32_t i = 0; i < a->lay.n_streams; i++)
		if (!strcmp(a->lay.streams[i].name, name ? name : XR_DEFAULT_STREAM))
			return (int)i;
	return -ENOENT;
}

int xr_arena_writer(xr_arena *a, uint32_t stream, uint32_t ring, xr_writer **out)
{
	if (!a->owner || stream >= a->lay.n_streams || ring >= a->lay.streams[stream].n_rings)
		return -EINVAL;
	*out = &a->writers[a->lay.streams[stream].first_ring + ring];
	return 0;
}

void xr_arena_heartbeat(xr_arena *a)
{
	xr_store_relaxed(&a->hdr->heartbeat_ns, xr__now_ns());
}

void xr_arena_facts_get(const xr_arena *a, xr_arena_facts *f)
{
	f->backing = (xr_backing)a->hdr->backing;
	f->page_size = a->lay.page_size;
	f->total_size = a->lay.total_size;
	f->numa_node = a->hdr->numa_node;
	f->path = a->path;
	f->note = a->note;
}

/* ---- opening (readers, tools) ---- */

static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int validate_rings(const struct xr_arena_hdr *h)
{
	uint64_t data_start = h->tab_off + h->tab_size;

	for (uint32_t r = 0; r < h->n_rings; r++) {
		const struct xr_ring_desc *rd = &h->rings[r];
		uint64_t frame = xr__frame_size(rd->record_len, rd->frame_align);

		if (!is_pow2(rd->capacity) || rd->capacity % h->page_size ||
		    rd->data_off % h->page_size || rd->data_off < data_start ||
		    !inside(rd->data_off, rd->capacity, h->total_size) || rd->stream >= h->n_streams ||
		    rd->index != r || !is_pow2(rd->frame_align) || rd->frame_align < 16 ||
		    rd->frame_align > 4096 || frame > rd->capacity / 2 || frame > UINT32_MAX)
			return XR_ENOTARENA;
		/* No two rings share a byte: a writer's ring is its own. */
		for (uint32_t q = 0; q < r; q++) {
			const struct xr_ring_desc *o = &h->rings[q];
			if (rd->data_off < o->data_off + o->capacity &&
			    o->data_off < rd->data_off + rd->capacity)
				return XR_ENOTARENA;
		}
	}
	return 0;
}

static int validate_streams(const struct xr_arena_hdr *h)
{
	uint32_t covered = 0;

	for (uint32_t i = 0; i < h->n_streams; i++) {
		const struct xr_stream_desc *sd = &h->streams[i];

		if (sd->n_rings < 1 || sd->first_ring >= h->n_rings || sd->producers > sd->n_rings ||
		    sd->n_rings > h->n_rings - sd->first_ring || !memchr(sd->name, 0, sizeof(sd->name)) ||
		    (sd->policy != XR_POLICY_LOSSLESS && sd->policy != XR_POLICY_LOSSY) ||
		    sd->record_kind > XR_RECORD_EXPERIENCE)
			return XR_ENOTARENA;
		/* Every ring of a stream is the stream's, and like it. */
		for (uint32_t r = sd->first_ring; r < sd->first_ring + sd->n_rings; r++) {
			const struct xr_ring_desc *rd = &h->rings[r];
			if (rd->stream != i || rd->capacity != sd->ring_capacity ||
			    rd->frame_align != sd->frame_align || sd->max_frame > rd->capacity / 2)
				return XR_ENOTARENA;
		}
		if (sd->record_kind == XR_RECORD_EXPERIENCE) {
			xr_exp_template t;
			if (xr_exp_template_init(&t, &sd->shape) < 0 ||
			    h->rings[sd->first_ring].record_len != t.size)
				return XR_ENOTARENA;
		}
		covered += sd->n_rings;
	}
	/* Streams' ring ranges are disjoint (each ring names its one stream,
	 * checked above) and cover every ring. */
	return covered == h->n_rings ? 0 : XR_ENOTARENA;
}

int xr__arena_validate(const struct xr_arena_hdr *h, uint64_t file_size)
{
	if (h->magic != XR_MAGIC)
		return XR_ENOTARENA;
	if (h->layout_version != XR_LAYOUT_VERSION || h->hdr_size != sizeof(*h) ||
	    h->fingerprint != xr__layout_fingerprint())
		return XR_ELAYOUT;
	if (!is_pow2(h->page_size) || h->page_size < 4096 || h->page_size > XR_PAGE_MAX ||
	    h->total_size != file_size || h->tab_off % h->page_size || h->tab_size % h->page_size ||
	    h->tab_off < sizeof(*h) || !inside(h->tab_off, h->tab_size, h->total_size) ||
	    h->n_streams < 1 || h->n_streams > XR_MAX_STREAMS || h->n_rings < 1 ||
	    h->n_rings > XR_MAX_RINGS || h->max_readers < 1 ||
	    h->max_readers > XR_MAX_READERS_LIMIT ||
	    table_bytes(h->max_readers, h->n_rings) > h->tab_size ||
	    !memchr(h->name, 0, sizeof(h->name)) || !memchr(h->path, 0, sizeof(h->path)) ||
	    !memchr(h->note, 0, sizeof(h->note)))
		return XR_ENOTARENA;
	int rc = validate_rings(h);
	return rc < 0 ? rc : validate_streams(h);
}

/* The private layout of a validated header snapshot. */
static void layout_from_header(const struct xr_arena_hdr *h, struct xr_layout *l)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->name, h->name, sizeof(l->name));
	l->total_size = h->total_size;
	l->page_size = h->page_size;
	l->tab_off = h->tab_off;
	l->tab_size = h->tab_size;
	l->n_streams = h->n_streams;
	l->n_rings = h->n_rings;
	l->max_readers = h->max_readers;
	l->writer_uid = h->writer_uid;
	l->writer_pid = h->writer_pid;
	l->writer_start = h->writer_start;
	memcpy(l->streams, h->streams, sizeof(l->streams));
	for (uint32_t r = 0; r < h->n_rings; r++)
		l->rings[r] = (struct xr_ring_fixed){
			.data_off = h->rings[r].data_off,
			.capacity = h->rings[r].capacity,
			.stream = h->rings[r].stream,
			.frame_align = h->rings[r].frame_align,
			.record_len = h->rings[r].record_len,
		};
}

bool xr__arena_alive(const struct xr_arena *a)
{
	/* A1: pairs with A0 / A2. */
	if (xr_load_acquire(&a->hdr->state) != XR_ARENA_READY)
		return false;
	return a->served || xr__proc_alive(a->lay.writer_pid, a->lay.writer_start);
}

/* Validates and maps the arena open on fd into a (both consumed). */
static int open_mapped(struct xr_arena *a, int fd, int flags, int stream, struct xr_arena **out)
{
	struct xr_arena_hdr h;
	struct stat st;
	int err;

	a->fd = fd;
	a->served = flags & XR_OPEN_SERVED;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		err = XR_ENOTARENA;
		goto fail;
	}
	err = xr__arena_validate(&h, (uint64_t)st.st_size);
	if (err < 0)
		goto fail;
	layout_from_header(&h, &a->lay);
	a->hdr = xr__map_region(fd, 0, a->lay.tab_off, false);
	if (!a->hdr) {
		err = -errno;
		goto fail;
	}
	a->hdr_mapped = a->lay.tab_off;
	if (!xr__arena_alive(a)) {
		err = XR_ECLOSED;
		goto fail;
	}
	a->infos = xr__map_region(fd, a->lay.tab_off, a->lay.tab_size, false);
	if (!a->infos) {
		err = -errno;
		goto fail;
	}
	a->tab_mapped = a->lay.tab_size;
	a->views = (struct xr_cursor_view *)(a->infos + a->lay.max_readers);
	map_agents(a);
	if (flags & XR_OPEN_RINGS) {
		for (uint32_t r = 0; r < a->lay.n_rings; r++) {
			const struct xr_ring_fixed *rf = &a->lay.rings[r];
			if (stream >= 0 && rf->stream != (uint32_t)stream)
				continue;
			err = xr__map_ring(fd, rf->data_off, rf->capacity, a->lay.page_size, false,
					   (void **)&a->ring_data[r]);
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

int xr__arena_open_fd(int fd, int flags, int stream, struct xr_arena **out)
{
	struct xr_arena *a = calloc(1, sizeof(*a));

	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	return open_mapped(a, fd, flags, stream, out);
}

/* Opens the arena of `name` in the k-th place. -ENOENT if nothing is
 * there, -ERANGE past the last place, or an error. */
static int open_at(const char *name, int k, int flags, int stream, struct xr_arena **out)
{
	struct xr_place places[XR_MAX_CANDIDATES];
	char why[XR_NOTE_MAX], path[XR_PATH_MAX];
	struct stat st;
	int n = xr__places(XR_HUGEPAGES_PREFER, places, why, sizeof(why));

	if (k >= n)
		return -ERANGE;
	if (xr__arena_path(path, sizeof(path), places[k].dir, name) < 0)
		return -ENOENT;
	int fd = xr__open_trusted(path, O_RDONLY, NULL, &st);
	if (fd < 0)
		return fd == -ELOOP || fd == -EMEDIUMTYPE ? XR_ENOTARENA : fd;
	struct xr_arena *a = calloc(1, sizeof(*a));
	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	return open_mapped(a, fd, flags, stream, out);
}

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
