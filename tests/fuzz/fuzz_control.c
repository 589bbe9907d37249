/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the control protocol as the engine's server takes it
 * (docs/fuzzing.md, docs/control-protocol.md). An engine runs in this
 * process, started once (fuzz_engine.h: host, control server, game
 * directory with agents and --observe subscribed, one shard). Each input
 * is one session of a peer: a connection to the engine's socket, the
 * input's messages sent on it (with descriptors when the input says so),
 * the answers read, the connection closed. Then a second connection checks
 * the engine still serves: ATTACH answered with ATTACHED, and the games
 * the session created but left behind destroyed (so that --max-games is
 * never reached for good). The uid may hold one connection at a time
 * (--max-conns-per-uid 1), so that a session's connection the engine keeps
 * after the session closed it keeps the check out: a leak fails it.
 *
 * The server runs as on kernels without SO_PASSRIGHTS
 * (xr__server_test_passrights(false)): descriptors a peer sends reach the
 * server, which must refuse the message and hand them to a closing thread.
 * With SO_PASSRIGHTS they never get that far (the sender's sendmsg fails).
 *
 * What must hold: the server answers every message (or hangs up) within
 * 5 s; everything it sends is a well-formed message of the protocol; the
 * engine's shards run on; the next session is served within 10 s (a
 * session's connection may be kept while replies it left unread wait, up to
 * the server's next look at it, 100 ms). ASan and UBSan watch
 * the server thread, the game directory and the shards meanwhile.
 *
 * Input: messages until the input ends (at most 24), each:
 *   byte c
 *     bits 0-2  descriptors sent with it: 0 none; 1 a pipe's read end; 2 a
 *               memfd; 3 one end of a Unix socket pair; 4 an eventfd; 5 this
 *               very connection; 6 many: 1 + the next byte % 253 copies of a
 *               pipe's end (253: the kernel's most per message); 7 a pipe's
 *               end and a memfd
 *     bit 3     raw: the message is the next (u16 % 4200) bytes, as they are
 *     bit 4     wait for its answer before sending the next message
 *     bit 5     a table or group request (below)
 *   raw: the bytes. Else a message built from
 *     byte t    its type: t itself if t >= 0x80; else with bit 5 of c,
 *               TABLE_CREATE, TABLE_OPEN or GROUP_JOIN by t % 3; else t % 12
 *               (the requests up to SEATS_RELEASE, and 0), 11 standing for
 *               PRODUCER_OPEN, and 0x7f for TABLE_DROP
 *     byte f    bit 0: the body is the next (u16 % 4200) bytes long, not the
 *               type's size; bit 1: the header's len field is the next u32;
 *               bit 2: magic and version are the next 6 bytes
 *     byte id
 *     the body: its length in bytes, zeros past the input's end.
 * Any message that is a TABLE_CREATE, raw or built, has its capacity and
 * item size taken modulo 4097 before it goes: a table of the engine's own
 * uid (this harness's) may be gigabytes, which is the operator's to ask
 * for and not a finding. Its flags lose XR_CTL_TABLE_FED: a fed table's
 * feed is a reader of the engine's uid, one of its connections, which
 * with --max-conns-per-uid 1 (the engine here) would keep the harness's
 * next session out, and the check that a session left no connection
 * behind would fail on the engine's own feed (test_tables.py and
 * test_table_service drive feeds). Every other field goes as the input
 * says.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "control/proto.h"
#include "control/server.h"
#include "fuzz_engine.h"
#include "util/clock.h"

#define MAX_MSGS 24
#define RAW_MAX 4200
#define ANSWER_MS 5000

static struct fz_engine *eng;
static bool verbose; /* FZ_VERBOSE set: what the server answers, on stderr */
static int fd_pipe[2] = {-1, -1}, fd_memfd = -1, fd_pair[2] = {-1, -1}, fd_event = -1;
/* Games made by sessions, destroyed after each: ids from here. */
static uint32_t first_made = UINT32_MAX;

static void init(void)
{
	static const struct fz_engine_cfg cfg = {
		.games = 4, .max_games = 64, .max_agents = 4, .max_readers = 16,
		.ring_bytes = 1u << 20, .tick_ms = 10, .action_timeout_ms = 20,
		.lease_timeout_ms = 50, .observe_subscribed = true, .producers = 2,
		/* Sessions come back to back from one uid: its request rate
		 * is not what is fuzzed here. */
		.max_requests_per_uid = 100000000,
		/* One connection at a time: a session's that the engine keeps
		 * after it closed (a leak) keeps the liveness check out. */
		.max_conns_per_uid = 1};

	signal(SIGPIPE, SIG_IGN);
	verbose = getenv("FZ_VERBOSE") != NULL;
	xr__server_test_passrights(false);
	eng = fz_engine_start("control", &cfg);
	FZ_CHECK(pipe2(fd_pipe, O_CLOEXEC) == 0);
	fd_memfd = memfd_create("fuzz", MFD_CLOEXEC);
	FZ_CHECK(fd_memfd >= 0 && ftruncate(fd_memfd, 4096) == 0);
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd_pair) == 0);
	fd_event = eventfd(0, EFD_CLOEXEC);
	FZ_CHECK(fd_event >= 0);
}

static int connect_engine(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	FZ_CHECK(s >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", xr_host_socket(eng->h));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		FZ_FAIL("connect to the engine: %s", strerror(errno));
	return s;
}

/* The body length of each request type, as the protocol has it. */
static uint32_t body_len(uint16_t type)
{
	switch (type) {
	case XR_CTL_SUBSCRIBE: return sizeof(struct xr_ctl_subscribe);
	case XR_CTL_DETACH: return sizeof(struct xr_ctl_detach);
	case XR_CTL_GAMES_CREATE: return sizeof(struct xr_ctl_games_create);
	case XR_CTL_GAMES_DESTROY: return sizeof(struct xr_ctl_games_destroy);
	case XR_CTL_GAME_RESET: return sizeof(struct xr_ctl_game_reset);
	case XR_CTL_GAMES_LIST: return sizeof(struct xr_ctl_games_list);
	case XR_CTL_AGENT_OPEN: return sizeof(struct xr_ctl_agent_open);
	case XR_CTL_SEATS_CLAIM: return sizeof(struct xr_ctl_seats_claim);
	case XR_CTL_SEATS_RELEASE: return sizeof(struct xr_ctl_seats_release);
	case XR_CTL_PRODUCER_OPEN: return sizeof(struct xr_ctl_producer_open);
	case XR_CTL_TABLE_DROP: return sizeof(struct xr_ctl_table_open);
	case XR_CTL_TABLE_CREATE: return sizeof(struct xr_ctl_table_create);
	case XR_CTL_TABLE_OPEN: return sizeof(struct xr_ctl_table_open);
	case XR_CTL_GROUP_JOIN: return sizeof(struct xr_ctl_group_join);
	}
	return 0;
}

/* The descriptors message c says to send, into fds; how many. */
static int pick_fds(uint8_t c, struct fz_in *in, int sock, int *fds)
{
	switch (c & 7) {
	case 1: fds[0] = fd_pipe[0]; return 1;
	case 2: fds[0] = fd_memfd; return 1;
	case 3: fds[0] = fd_pair[0]; return 1;
	case 4: fds[0] = fd_event; return 1;
	case 5: fds[0] = sock; return 1;
	case 6: {
		int n = 1 + fz_u8(in) % XR_CTL_FDS_MAX;
		for (int i = 0; i < n; i++)
			fds[i] = i % 2 ? fd_pipe[1] : fd_pipe[0];
		return n;
	}
	case 7: fds[0] = fd_pipe[1]; fds[1] = fd_memfd; return 2;
	}
	return 0;
}

/* Sends buf[0..len) with n descriptors. A failed send (the server hung
 * up, or refused the descriptors at the socket) ends the session. */
static bool send_msg(int s, const void *buf, size_t len, const int *fds, int n)
{
	union {
		struct cmsghdr c;
		char b[CMSG_SPACE(XR_CTL_FDS_MAX * sizeof(int))];
	} cm;
	struct iovec iov = {(void *)buf, len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n) {
		memset(&cm, 0, sizeof(cm));
		m.msg_control = cm.b;
		m.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	return sendmsg(s, &m, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
}

/* What a session saw of the server. */
struct session {
	bool gone;          /* the server hung up */
};

/* Checks one message from the server: well formed, descriptors only with
 * the replies that carry one. Closes what came with it. */
static void check_reply(const uint8_t *b, ssize_t n, const int *fds, int n_fds)
{
	struct xr_ctl_hdr h;

	for (int i = 0; i < n_fds; i++)
		close(fds[i]);
	if ((size_t)n < sizeof(h))
		FZ_FAIL("the server sent %zd bytes, less than a header", n);
	memcpy(&h, b, sizeof(h));
	if (verbose)
		fprintf(stderr, "  <- type 0x%x len %u id %u fds %d%s%.200s\n", h.type, h.len, h.id,
			n_fds, h.type == XR_CTL_ERROR ? ": " : "",
			h.type == XR_CTL_ERROR && n >= (ssize_t)(sizeof(h) + 4) ?
				(const char *)b + sizeof(h) + 4 : "");
	FZ_CHECK(h.magic == XR_CTL_MAGIC && h.version == XR_CTL_VERSION);
	FZ_CHECK(h.len == (uint32_t)n - sizeof(h));
	/* Replies of a fixed size: that size, and the descriptors they carry. */
	static const struct {
		uint16_t type;
		uint32_t len;
		int fds;
	} fixed[] = {
		{XR_CTL_OK, 0, 0},
		{XR_CTL_WAKE, 0, 0},
		{XR_CTL_ATTACHED, sizeof(struct xr_ctl_attached), 1},
		{XR_CTL_SUBSCRIBED, sizeof(struct xr_ctl_subscribed), 1},
		{XR_CTL_AGENT_OPENED, sizeof(struct xr_ctl_agent_opened), 1},
		{XR_CTL_SEATS_CLAIMED, sizeof(struct xr_ctl_seats_claimed), 0},
		{XR_CTL_PRODUCER_OPENED, sizeof(struct xr_ctl_producer_opened), 2},
		{XR_CTL_TABLE_CREATED, sizeof(struct xr_ctl_table_created), 0},
		{XR_CTL_TABLE_OPENED, sizeof(struct xr_ctl_table_opened), 3},
		{XR_CTL_GROUP_JOINED, sizeof(struct xr_ctl_group_joined), 2},
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (fixed[i].type == h.type) {
			FZ_CHECK(h.len == fixed[i].len);
			FZ_CHECK(n_fds == fixed[i].fds);
			return;
		}
	switch (h.type) {
	case XR_CTL_GAMES_CREATED: {
		struct xr_ctl_games_created r;
		FZ_CHECK(h.len == sizeof(r));
		memcpy(&r, b + sizeof(h), sizeof(r));
		FZ_CHECK(r.count >= 1 && r.count <= XR_CTL_CREATE_MAX);
		if (r.first_id < first_made)
			first_made = r.first_id;
		break;
	}
	case XR_CTL_GAMES: {
		uint32_t k;
		FZ_CHECK(h.len >= offsetof(struct xr_ctl_games, games));
		memcpy(&k, b + sizeof(h), sizeof(k));
		FZ_CHECK(k <= XR_CTL_LIST_MAX);
		FZ_CHECK(h.len == offsetof(struct xr_ctl_games, games) +
					  k * sizeof(struct xr_ctl_game_info));
		break;
	}
	case XR_CTL_ERROR: {
		struct xr_ctl_error e;
		FZ_CHECK(h.len == sizeof(e));
		memcpy(&e, b + sizeof(h), sizeof(e));
		FZ_CHECK(e.code < 0 && e.code > -5100);
		FZ_CHECK(memchr(e.reason, 0, sizeof(e.reason)) != NULL);
		break;
	}
	default:
		FZ_FAIL("the server sent a message of type 0x%x", h.type);
	}
	FZ_CHECK(n_fds == 0); /* the others carry none */
}

/* Reads the server's messages: with wait, until one that is not a WAKE
 * (or the hangup) comes, failing after ANSWER_MS of silence; without,
 * what is there now. */
static void read_replies(int s, struct session *ss, bool wait)
{
	static uint8_t b[XR_CTL_REPLY_MAX + 1];
	int fds[8], n_fds;

	while (!ss->gone) {
		struct pollfd pf = {.fd = s, .events = POLLIN};
		int rc = fz_poll(&pf, 1, wait ? ANSWER_MS : 0);
		if (rc == 0) {
			if (wait)
				FZ_FAIL("the server answered nothing for %d ms", ANSWER_MS);
			return;
		}
		FZ_CHECK(rc == 1);
		int n = xr__ctl_recv(s, b, sizeof(b), fds, &n_fds, MSG_DONTWAIT);
		if (n == -EAGAIN)
			continue;
		if (n <= 0) {
			/* A hangup, or a reset after one. */
			FZ_CHECK(n == 0 || n == -ECONNRESET);
			ss->gone = true;
			return;
		}
		check_reply(b, n, fds, n_fds);
		struct xr_ctl_hdr h;
		memcpy(&h, b, sizeof(h));
		if (wait && h.type != XR_CTL_WAKE)
			return;
	}
}

/* A TABLE_CREATE's capacity and item size, modulo 4097, and its flags
 * without FED (the header). */
static void tame(uint8_t *msg, size_t len)
{
	struct xr_ctl_hdr h;
	const size_t at = sizeof(h) + offsetof(struct xr_ctl_table_create, capacity);
	const size_t fl = sizeof(h) + offsetof(struct xr_ctl_table_create, flags);
	uint32_t v[2], f;

	if (len < at + sizeof(v))
		return;
	memcpy(&h, msg, sizeof(h));
	if (h.type != XR_CTL_TABLE_CREATE)
		return;
	_Static_assert(offsetof(struct xr_ctl_table_create, item_size) ==
			       offsetof(struct xr_ctl_table_create, capacity) + 4,
		       "capacity, then item_size");
	memcpy(v, msg + at, sizeof(v));
	v[0] %= 4097;
	v[1] %= 4097;
	memcpy(msg + at, v, sizeof(v));
	if (len >= fl + sizeof(f)) {
		memcpy(&f, msg + fl, sizeof(f));
		f &= ~XR_CTL_TABLE_FED;
		memcpy(msg + fl, &f, sizeof(f));
	}
}

/* One message of the input: false once the input or the session ends. */
static bool one_message(int s, struct fz_in *in, struct session *ss)
{
	static uint8_t msg[sizeof(struct xr_ctl_hdr) + RAW_MAX];
	int fds[XR_CTL_FDS_MAX];
	size_t len;

	if (!fz_more(in))
		return false;
	uint8_t c = fz_u8(in);
	int n_fds = pick_fds(c, in, s, fds);
	if (c & 8) {
		len = fz_bytes(in, msg, fz_u16(in) % RAW_MAX);
	} else {
		uint8_t t = fz_u8(in), f = fz_u8(in);
		uint16_t type = t >= 0x80   ? t
				: c & 32    ? XR_CTL_TABLE_CREATE + t % 3
				: t == 0x7f ? XR_CTL_TABLE_DROP
				: t % 12 == 11 ? XR_CTL_PRODUCER_OPEN
					       : t % 12;
		struct xr_ctl_hdr h = {XR_CTL_MAGIC, XR_CTL_VERSION, type, 0, fz_u8(in)};
		uint32_t body = f & 1 ? fz_u16(in) % RAW_MAX : body_len(h.type);
		h.len = f & 2 ? fz_u32(in) : body;
		if (f & 4) {
			h.magic = fz_u32(in);
			h.version = fz_u16(in);
		}
		memcpy(msg, &h, sizeof(h));
		fz_bytes(in, msg + sizeof(h), body);
		len = sizeof(h) + body;
	}
	tame(msg, len);
	if (!send_msg(s, msg, len, fds, n_fds)) {
		ss->gone = true;
		return false;
	}
	read_replies(s, ss, c & 16);
	return !ss->gone;
}

/* A request of the liveness check and its answer (not a WAKE) in reply:
 * the answer's length, or 0 when the server hung up or said nothing for
 * ANSWER_MS. */
static int request(int s, uint16_t type, const void *body, uint32_t len, void *reply,
		   size_t cap)
{
	int fds[8], n_fds, n;
	struct pollfd pf = {.fd = s, .events = POLLIN};

	if (xr__ctl_send(s, type, 1, body, len, NULL, 0) < 0)
		return 0;
	for (;;) {
		if (fz_poll(&pf, 1, ANSWER_MS) != 1)
			return 0;
		n = xr__ctl_recv(s, reply, cap, fds, &n_fds, MSG_DONTWAIT);
		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			return 0;
		check_reply(reply, n, fds, n_fds);
		if (((struct xr_ctl_hdr *)reply)->type != XR_CTL_WAKE)
			return n;
	}
}

static union {
	struct xr_ctl_hdr h;
	uint8_t b[XR_CTL_REPLY_MAX + 1];
} r;

/* A connection the engine has answered ATTACH on; a failure after ALIVE_MS of
 * refusals for the limits a session may run its uid into (the descriptors
 * it passed still closing, the connection table), and of silence (accepting
 * paused while those descriptors close). */
#define ALIVE_MS 10000

static int attached(void)
{
	uint64_t deadline = xr__now_ns() + ALIVE_MS * 1000000ull;
	struct xr_ctl_error e = {0};

	do {
		int s = connect_engine();
		if (request(s, XR_CTL_ATTACH, NULL, 0, r.b, sizeof(r.b)) > 0) {
			if (r.h.type == XR_CTL_ATTACHED)
				return s;
			memcpy(&e, r.b + sizeof(r.h), sizeof(e));
			if (e.code != -EBUSY)
				FZ_FAIL("ATTACH after a session: %d (%s)", e.code, e.reason);
		}
		close(s);
		/* A pause between tries, not a synchronisation: the closing
		 * threads drain on their own. */
		poll(NULL, 0, 10);
	} while (xr__now_ns() < deadline);
	FZ_FAIL("the engine did not serve ATTACH for %d ms after a session (last: %d, %s)",
		ALIVE_MS, e.code, e.reason);
}

/* The engine serves a new connection, and the games the session left are
 * destroyed. */
static void check_alive(void)
{
	int s = attached();

	fz_engine_check(eng);
	while (first_made != UINT32_MAX) {
		struct xr_ctl_games_list l = {.from_id = first_made, .max = XR_CTL_LIST_MAX};
		if (!request(s, XR_CTL_GAMES_LIST, &l, sizeof(l), r.b, sizeof(r.b)) ||
		    r.h.type != XR_CTL_GAMES)
			break; /* refused for the rate: next time */
		struct xr_ctl_games g;
		memcpy(&g, r.b + sizeof(r.h), r.h.len);
		if (g.n == 0) {
			first_made = UINT32_MAX;
			break;
		}
		struct xr_ctl_games_destroy d = {.count = g.n};
		for (uint32_t i = 0; i < g.n; i++)
			d.ids[i] = g.games[i].id;
		if (!request(s, XR_CTL_GAMES_DESTROY, &d, sizeof(d), r.b, sizeof(r.b)) ||
		    r.h.type != XR_CTL_OK)
			break;
	}
	close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct fz_in in = {data, len};
	struct session ss = {0};

	if (!eng)
		init();
	int s = connect_engine();
	for (int i = 0; i < MAX_MSGS && one_message(s, &in, &ss); i++)
		;
	read_replies(s, &ss, false);
	close(s);
	check_alive();
	return 0;
}
