/* SPDX-License-Identifier: MIT */
/*
 * The producer's side of a staging ring (xring/producer.h,
 * shm/producer_layout.h): frames written in place, published with one
 * store, room taken back as the engine's tail moves.
 *
 * Memory ordering. Our head: stored seq_cst after the frames below it are
 * written (a release would do for the frames; seq_cst for the sleep
 * handshake, whose next step is the load of the engine's `sleeping`). The
 * engine's tail: loaded with acquire (pairs with its release after it has
 * read the frames below it), so we reuse room only once it is done with
 * it. Our `waiting` flag: stored seq_cst before the tail is loaded again
 * (the engine stores tail, then loads waiting). The engine's state: loaded
 * with acquire (pairs with its release after writing the reason).
 *
 * What we trust. The engine made the memfd and we checked who the engine
 * is (the control socket's peer), so its header's constants are its word;
 * they are still checked against the memfd's size before any offset is
 * followed.
 */
#include "xring/producer.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/client.h"
#include "control/proto.h"
#include "shm/producer_layout.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/proc.h"
#include "xring/error.h"

struct xr_producer {
	int sock;                 /* the connection: its end is the producer's */
	int bell;
	pid_t pid;
	uint8_t *map;
	uint64_t map_bytes;
	struct xr_pstage_hdr *hdr;
	uint8_t *data;
	uint64_t cap;
	uint32_t max_len;
	uint32_t ring;            /* of the stream's rings */
	uint64_t resume_tag, resume_taken; /* the slot's earlier producers' */
	uint64_t head;            /* committed (ours) */
	uint64_t published;       /* stored to hdr->head */
	uint64_t n_committed, n_published;
	uint64_t res_at;          /* the reservation's frame, and its size (0: none) */
	uint64_t res_flen;
	bool experience;
	xr_exp_template tpl;
};

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int xr_producer_open(const char *engine, const xr_producer_opts *o, xr_producer **out)
{
	xr_producer_opts none = {0};
	struct xr_trust trust;
	struct xr_ctl_producer_open m = {0};
	struct xr_ctl_producer_opened r;
	struct xr_ctl_attached att;
	struct ucred peer;
	const char *stream;
	int fds[2] = {-1, -1}, afd = -1, rc;
	struct stat st;

	if (!engine || !out)
		return -EINVAL;
	if (!o)
		o = &none;
	xr__set_last_reason("%s", "");
	stream = o->stream ? o->stream : XR_DEFAULT_STREAM;
	if (!*stream || strlen(stream) > XR_STREAM_NAME_MAX) {
		xr__set_last_reason("a stream's name is 1 to %d characters", XR_STREAM_NAME_MAX);
		return -EINVAL;
	}
	memcpy(m.stream, stream, strlen(stream));
	m.stage_bytes = o->stage_bytes;
	m.ring = o->ring;
	xr_producer *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->bell = -1;
	p->pid = xr__self_pid();
	trust.extra = o->engine_uid ? o->engine_uid : (uid_t)-1;
	p->sock = xr__ctl_connect(engine, &trust, &peer);
	if (p->sock < 0) {
		rc = p->sock;
		if (rc == -ENOENT)
			xr__set_last_reason("no engine '%s' is running (no control socket)", engine);
		free(p);
		return rc;
	}
	rc = xr__ctl_attach(p->sock, &afd, &att);
	if (rc < 0)
		goto fail;
	close(afd); /* a producer reads no arena */
	afd = -1;
	rc = xr__ctl_request_fds(p->sock, XR_CTL_PRODUCER_OPEN, &m, sizeof(m),
				 XR_CTL_PRODUCER_OPENED, &r, sizeof(r), NULL, fds, 2);
	if (rc < 0)
		goto fail;
	p->bell = fds[1];
	if (fstat(fds[0], &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != r.stage_bytes ||
	    r.stage_bytes <= XR_PSTAGE_HDR) {
		xr__set_last_reason("the engine's staging ring is not the size it said");
		rc = -EPROTO;
		goto fail;
	}
	p->map = mmap(NULL, r.stage_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	close(fds[0]);
	fds[0] = -1;
	if (p->map == MAP_FAILED) {
		p->map = NULL;
		rc = -errno;
		goto fail;
	}
	p->map_bytes = r.stage_bytes;
	p->hdr = (struct xr_pstage_hdr *)p->map;
	p->cap = p->hdr->capacity;
	p->max_len = p->hdr->max_len;
	if (p->hdr->magic != XR_PSTAGE_MAGIC || p->hdr->version != 1 || !p->cap ||
	    (p->cap & (p->cap - 1)) || p->cap != r.stage_bytes - XR_PSTAGE_HDR ||
	    p->max_len == 0 || p->max_len > p->cap / 4) {
		xr__set_last_reason("the engine's staging ring has a header we cannot use");
		rc = -EPROTO;
		goto fail;
	}
	p->data = p->map + XR_PSTAGE_HDR;
	p->ring = r.ring_in_stream;
	p->resume_tag = r.last_tag;
	p->resume_taken = r.taken;
	/* The stream's template builds our records in place (the engine
	 * builds them anew with the same one). */
	p->experience = r.record_kind == XR_RECORD_EXPERIENCE;
	if (p->experience && xr_exp_template_init(&p->tpl, &r.shape) < 0) {
		xr__set_last_reason("the engine's stream shape is not one we can build");
		rc = -EPROTO;
		goto fail;
	}
	*out = p;
	return 0;
fail:
	if (afd >= 0)
		close(afd);
	if (fds[0] >= 0)
		close(fds[0]);
	xr_producer_close(p);
	return rc;
}

const xr_exp_template *xr_producer_template(const xr_producer *p)
{
	return p && p->experience ? &p->tpl : NULL;
}

/* 0 while the engine takes from us; else the end, with the reason. */
static int ended(const xr_producer *p)
{
	if (p->pid != xr__self_pid()) {
		xr__set_last_reason("this producer was opened by process %d: a forked child "
				    "opens its own", (int)p->pid);
		return -EINVAL;
	}
	uint32_t st = xr_load_acquire(&p->hdr->state);
	if (st == XR_PSTAGE_LIVE)
		return 0;
	if (st == XR_PSTAGE_FAULT) {
		char why[sizeof(p->hdr->reason) + 1];
		memcpy(why, p->hdr->reason, sizeof(p->hdr->reason));
		why[sizeof(why) - 1] = '\0';
		xr__set_last_reason("the engine ended this producer: %s", why);
		int code = p->hdr->fault;
		return code == XR_EBADREC ? XR_EBADREC : -EPROTO;
	}
	xr__set_last_reason("the engine stopped");
	return XR_ECLOSED;
}

/* Room for `need` more bytes past our head, as of the engine's tail. */
static bool room(const xr_producer *p, uint64_t need, bool sc)
{
	uint64_t tail = sc ? xr_load_sc(&p->hdr->tail) : xr_load_acquire(&p->hdr->tail);

	return p->head + need - tail <= p->cap;
}

/* Bytes a record of len needs from our head: its frame, and the rest of
 * the lap first if it does not fit there. */
static uint64_t need_for(const xr_producer *p, uint32_t len, uint64_t *flen)
{
	uint64_t pos = p->head & (p->cap - 1);

	*flen = round_up(XR_PFRAME_HDR + (uint64_t)len, XR_PFRAME_ALIGN);
	return *flen > p->cap - pos ? p->cap - pos + *flen : *flen;
}

int xr_producer_reserve(xr_producer *p, uint32_t len, void **payload)
{
	uint64_t flen;
	int rc;

	if (!p || !payload)
		return -EINVAL;
	if ((rc = ended(p)) < 0)
		return rc;
	if (len == 0 || len > p->max_len)
		return -EMSGSIZE;
	if (!room(p, need_for(p, len, &flen), false))
		return -EAGAIN;
	uint64_t pos = p->head & (p->cap - 1);
	if (flen > p->cap - pos) {
		/* The rest of the lap is a pad; the frame starts the next. */
		struct xr_pframe pad = {.kind = XR_PFRAME_PAD};
		memcpy(p->data + pos, &pad, sizeof(pad));
		p->head += p->cap - pos;
		pos = 0;
	}
	struct xr_pframe fh = {.len = len, .kind = XR_PFRAME_RECORD};
	memcpy(p->data + pos, &fh, sizeof(fh));
	p->res_at = p->head;
	p->res_flen = flen;
	*payload = p->data + pos + XR_PFRAME_HDR;
	return 0;
}

void xr_producer_commit_tag(xr_producer *p, uint64_t tag)
{
	if (!p || !p->res_flen)
		return;
	/* In the frame's header (res_at is the frame's own start, past any
	 * pad), written before the publish that covers it. */
	memcpy(p->data + (p->res_at & (p->cap - 1)) + offsetof(struct xr_pframe, tag), &tag,
	       sizeof(tag));
	xr_producer_commit(p);
}

void xr_producer_commit(xr_producer *p)
{
	if (!p || !p->res_flen)
		return;
	p->head = p->res_at + p->res_flen;
	p->res_flen = 0;
	p->n_committed++;
}

int xr_producer_publish(xr_producer *p)
{
	static const char one = 1;
	int rc;

	if (!p)
		return -EINVAL;
	if ((rc = ended(p)) < 0)
		return rc;
	if (p->head == p->published)
		return 0;
	/* seq_cst: the frames below head are visible to the engine's acquire
	 * load of it, and the load of `sleeping` below comes after (the
	 * handshake of shm/producer_layout.h). */
	xr_store_sc(&p->hdr->head, p->head);
	p->published = p->head;
	p->n_published = p->n_committed;
	if (xr_load_sc(&p->hdr->sleeping))
		(void)send(p->bell, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	return 0;
}

int xr_producer_write(xr_producer *p, const void *data, uint32_t len)
{
	void *dst;
	int rc = xr_producer_reserve(p, len, &dst);

	if (rc < 0)
		return rc;
	memcpy(dst, data, len);
	xr_producer_commit(p);
	return 0;
}

/* Waits until cond(p, arg) holds, the engine ends us, or timeout. */
static int wait_for(xr_producer *p, bool (*cond)(const xr_producer *, uint64_t, bool),
		    uint64_t arg, int64_t timeout_ns)
{
	uint64_t start = xr__now_ns();
	int rc;

	if ((rc = xr_producer_publish(p)) < 0)
		return rc;
	for (;;) {
		if (cond(p, arg, false))
			return 0;
		if ((rc = ended(p)) < 0)
			return rc;
		uint64_t now = xr__now_ns();
		if (timeout_ns >= 0 && now - start >= (uint64_t)timeout_ns)
			return -ETIMEDOUT;
		if (now - start < 50000) {
			xr_cpu_relax();
			continue;
		}
		/* The handshake: our flag, then the tail again (seq_cst). */
		xr_store_sc(&p->hdr->waiting, 1);
		if (cond(p, arg, true)) {
			xr_store_relaxed(&p->hdr->waiting, 0);
			return 0;
		}
		int ms = 100;
		if (timeout_ns >= 0) {
			uint64_t left = (uint64_t)timeout_ns - (now - start);
			ms = (int)(left / 1000000 + 1);
			if (ms > 100)
				ms = 100;
		}
		struct pollfd pf[2] = {{.fd = p->bell, .events = POLLIN},
				       {.fd = p->sock, .events = POLLIN}};
		int n = poll(pf, 2, ms);
		xr_store_relaxed(&p->hdr->waiting, 0);
		if (n < 0 && errno == EINTR)
			return -EINTR;
		if (n > 0 && (pf[0].revents & POLLIN)) {
			char buf[64];
			(void)recv(p->bell, buf, sizeof(buf), MSG_DONTWAIT);
		}
		if (n > 0 && ((pf[0].revents & (POLLHUP | POLLERR)) ||
			      (pf[1].revents & (POLLHUP | POLLERR | POLLIN)))) {
			/* The engine hung up (the bell), or wrote on the
			 * connection, which it does only to end it: its last
			 * word is in the header; else it went away. */
			if ((rc = ended(p)) < 0)
				return rc;
			if (cond(p, arg, true))
				return 0;
			xr__set_last_reason("the engine is gone");
			return XR_ECLOSED;
		}
	}
}

static bool has_room(const xr_producer *p, uint64_t len, bool sc)
{
	uint64_t flen;

	return room(p, need_for(p, (uint32_t)len, &flen), sc);
}

static bool all_taken(const xr_producer *p, uint64_t unused, bool sc)
{
	(void)unused;
	return (sc ? xr_load_sc(&p->hdr->tail) : xr_load_acquire(&p->hdr->tail)) == p->published;
}

int xr_producer_wait(xr_producer *p, uint32_t len, int64_t timeout_ns)
{
	if (!p)
		return -EINVAL;
	if (len == 0 || len > p->max_len)
		return -EMSGSIZE;
	return wait_for(p, has_room, len, timeout_ns);
}

int xr_producer_flush(xr_producer *p, int64_t timeout_ns)
{
	if (!p)
		return -EINVAL;
	return wait_for(p, all_taken, 0, timeout_ns);
}

int xr_producer_get_stats(const xr_producer *p, xr_producer_stats *s)
{
	if (!p || !s)
		return -EINVAL;
	*s = (xr_producer_stats){
		.records = xr_load_relaxed(&p->hdr->records),
		.dropped = xr_load_relaxed(&p->hdr->dropped),
		.published = p->n_published,
		.pending_bytes = p->published - xr_load_acquire(&p->hdr->tail),
		.ring = p->ring,
		.max_len = p->max_len,
		.resume_tag = p->resume_tag,
		.resume_taken = p->resume_taken};
	return 0;
}

int xr_producer_fd(const xr_producer *p)
{
	return p ? p->bell : -EINVAL;
}

void xr_producer_close(xr_producer *p)
{
	if (!p)
		return;
	if (p->hdr && p->pid == xr__self_pid())
		(void)xr_producer_publish(p);
	if (p->map)
		munmap(p->map, p->map_bytes);
	if (p->bell >= 0)
		close(p->bell);
	if (p->sock >= 0) {
		/* As xr_table_disconnect(): the engine sees the end now, not
		 * when a forked child's copy of the socket closes too. */
		if (p->pid == xr__self_pid())
			shutdown(p->sock, SHUT_RDWR);
		close(p->sock);
	}
	free(p);
}
