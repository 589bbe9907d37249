/* SPDX-License-Identifier: MIT */
/*
 * What the CLI prints from shared memory cannot be steered by its bytes:
 *
 *   tail_strided_batch  `xring tail` steps through a batch of fixed-size
 *                       frames by the batch's stride and takes the batch's
 *                       record length, not the size and len fields of the
 *                       frames between the first and the last (which the
 *                       reader does not check): a frame size that would skip
 *                       records, and a len that would cut one short, change
 *                       nothing it prints.
 *   info_label_escapes  `xring info` prints a reader's label (a peer chose
 *                       it) with every byte below 0x20 or from 0x7f up as
 *                       '?', in text and in JSON: no terminal escapes.
 *
 * Usage: test_cli_untrusted_bytes XRING (the CLI program).
 */
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include "ring_helpers.h"
#include "shm/arena_priv.h"
#include "shm/peers.h"
#include "util/atomics.h"
#include "util/clock.h"

extern char **environ;

#define N_REC 16
#define BAD_SIZE_AT 5 /* this frame's size field says three frames */
#define BAD_LEN_AT 9  /* this frame's len field says 8 bytes */

static const char *xring;

static const xr_exp_shape shape = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1, .obs_dims = {300},
				   .mask_len = 7};

/* Runs argv with its stdout into a pipe; returns the child, *out_fd the
 * read end. */
static pid_t spawn_out(char *const argv[], int *out_fd)
{
	posix_spawn_file_actions_t fa;
	int p[2];
	pid_t pid;

	CHECK(pipe(p) == 0);
	CHECK(posix_spawn_file_actions_init(&fa) == 0);
	CHECK(posix_spawn_file_actions_adddup2(&fa, p[1], 1) == 0);
	CHECK(posix_spawn_file_actions_addclose(&fa, p[0]) == 0);
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	if (rc)
		FAILF("cannot run %s: %s", argv[0], strerror(rc));
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

/* Everything on fd until EOF into buf (NUL-terminated); the child's exit
 * status (-1: killed by a signal). */
static int collect(pid_t pid, int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t k;
	int st;

	while ((k = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	close(fd);
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static xr_arena *experience_arena(const char *name, xr_exp_template *t)
{
	xr_stream_spec ss = {.policy = XR_POLICY_LOSSLESS, .ring_bytes = 1 << 20, .frame_align = 64,
			     .kind = XR_RECORD_EXPERIENCE, .shape = shape};
	xr_arena_spec spec = {.name = name, .streams = &ss, .n_streams = 1,
			      .hugepages = XR_HUGEPAGES_OFF, .numa_node = XR_NUMA_DEFAULT,
			      .max_readers = 4};
	xr_arena *a;
	int rc = xr_arena_create(&spec, &a);

	if (rc < 0)
		FAILF("xr_arena_create(%s): %s (%s)", name, xr_strerror(rc), xr_arena_last_note());
	xr_test_serve(a);
	CHECK_RC(xr_exp_template_init(t, &shape), 0);
	return a;
}

/* Polls (10 s at most) until process pid holds an active reader slot and
 * sleeps in a read: it has taken its start position, so it sees every
 * record published from now on. */
static void wait_reader_asleep(const xr_arena *a, pid_t pid)
{
	uint64_t deadline = xr__now_ns() + 10000000000ull;
	const struct timespec tick = {0, 1000000};

	for (;;) {
		for (uint32_t i = 0; i < a->lay.max_readers; i++)
			if (xr_load_acquire(&a->peers->slot[i].state) == XR_SLOT_ACTIVE &&
			    a->infos[i].pid == pid &&
			    xr_load_acquire(&a->peers->slot[i].page->sleep_gen) != 0)
				return;
		if (xr__now_ns() > deadline)
			FAILF("xring tail (pid %d) did not attach and sleep within 10 s", (int)pid);
		nanosleep(&tick, NULL);
	}
}

/* N_REC records with seq 0.. in one publish, two of them with hostile frame
 * header fields: the reader takes them as one strided batch. */
static void write_hostile_batch(xr_writer *w, const xr_exp_template *t)
{
	for (uint32_t i = 0; i < N_REC; i++) {
		xr_exp_fields f = {.seq = i, .game_id = 7, .player_id = 1, .turn = i, .action = 2};
		xr_exp_slots sl;
		void *p;

		CHECK_RC(xr_writer_reserve(w, t->size, &p), 0);
		xr_exp_build(t, p, &f, &sl);
		memset(sl.obs, (int)i, 300);
		memset(sl.mask, 1, 7);
		xr_writer_commit(w);
		xr_frame *fr = (xr_frame *)((uint8_t *)p - XR_FRAME_HDR);
		if (i == BAD_SIZE_AT)
			fr->size *= 3;
		if (i == BAD_LEN_AT)
			fr->len = 8;
	}
	xr_writer_publish(w);
}

static void tail_strided_batch(void)
{
	char name[64], n_rec[16], out[1 << 16];
	xr_exp_template t;
	int fd;

	xr_test_name(name, sizeof(name), "tailstride");
	snprintf(n_rec, sizeof(n_rec), "%d", N_REC);
	xr_arena *a = experience_arena(name, &t);
	char *argv[] = {(char *)xring, "tail", name, "-n", n_rec, "--json", "--timeout", "20", NULL};
	pid_t pid = spawn_out(argv, &fd);

	wait_reader_asleep(a, pid);
	write_hostile_batch(xr_test_writer(a), &t);
	int st = collect(pid, fd, out, sizeof(out));
	xr_test_destroy(a);

	/* Each record once, in order, whole. */
	const char *p = out;
	for (uint32_t i = 0; i < N_REC; i++) {
		char want[64];
		snprintf(want, sizeof(want), "{\"seq\":%u,", i);
		if (strncmp(p, want, strlen(want)))
			FAILF("line %u of tail's output is not record %u:\n%s", i, i, out);
		if (!strstr(p, "\"obs_dtype\":\"u8\",\"obs_shape\":[300]}\n"))
			FAILF("record %u printed without its observation:\n%s", i, out);
		p = strchr(p, '\n') + 1;
	}
	if (*p)
		FAILF("tail printed more than %d records:\n%s", N_REC, out);
	if (st != 0)
		FAILF("xring tail exited %d after printing every record", st);
	printf("  tail_strided_batch: %d records printed in order past a frame claiming three "
	       "times its size and one claiming 8 bytes\n",
	       N_REC);
}

/* Every byte of s is printable ASCII or a newline. */
static void check_printable(const char *what, const char *s)
{
	for (const char *c = s; *c; c++) {
		unsigned char b = (unsigned char)*c;
		if ((b < 0x20 && b != '\n') || b >= 0x7f)
			FAILF("%s printed byte 0x%02x at offset %zu:\n%s", what, b, (size_t)(c - s), s);
	}
}

static void info_label_escapes(void)
{
	/* An OSC title change, BEL, DEL and an 8-bit CSI. */
	static const char label[] = "\x1b]0;pwn\x07\x7f\x9b";
	char name[64], out[1 << 16];
	uint32_t len;
	xr_reader *r;
	int fd;

	xr_test_name(name, sizeof(name), "infolabel");
	xr_arena *a = xr_test_arena_fixed(name, XR_POLICY_LOSSLESS, 1 << 20, 64, &len);
	xr_reader_opts o = {.label = label};
	CHECK_RC(xr_reader_attach(name, &o, &r), 0);

	char *text[] = {(char *)xring, "info", name, NULL};
	char *json[] = {(char *)xring, "info", name, "--json", NULL};
	char *const *runs[] = {text, json};
	for (int k = 0; k < 2; k++) {
		pid_t pid = spawn_out(runs[k], &fd);
		int st = collect(pid, fd, out, sizeof(out));
		CHECK_EQ(st, 0);
		check_printable(k ? "xring info --json" : "xring info", out);
		if (!strstr(out, "?]0;pwn???"))
			FAILF("the label is not shown as ?]0;pwn???:\n%s", out);
	}
	xr_reader_detach(r);
	xr_test_destroy(a);
	printf("  info_label_escapes: a label of escapes printed as ?]0;pwn???, text and JSON\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s XRING\n", argv[0]);
		return 2;
	}
	xring = argv[1];
	signal(SIGPIPE, SIG_IGN);
	tail_strided_batch();
	info_label_escapes();
	printf("ok\n");
	return 0;
}
