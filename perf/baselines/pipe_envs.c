/* SPDX-License-Identifier: MIT */
/*
 * baseline_pipe_envs: one worker process per environment, actions over a
 * pipe, observations in shared memory, the parent acting for every seat:
 * the design of Gymnasium's AsyncVectorEnv (shared_memory=True), in C, so
 * that what is measured is the design and not Python.
 *
 * The parent maps the observation buffer (MAP_SHARED, before the forks)
 * and forks one worker per group of games (--workers, default one per
 * game, as AsyncVectorEnv has one per environment), each with its end of
 * a socketpair (multiprocessing.Pipe's duplex connection). A step, as
 * AsyncVectorEnv.step() does it: step_async sends each worker its games'
 * actions (one message; the round number beside them); step_wait reads
 * each worker's reply in worker order: the rewards and done flags (and the
 * round, checked), its observations and masks having been written into
 * the shared buffer (perf/baselines/envs.c steps the built-in grid game
 * through its vtable, with auto-reset). Then the parent chooses every
 * seat's next action from its mask in shared memory with
 * xr_policy_random_legal(), as bench_agents' C agent does.
 *
 *   baseline_pipe_envs [--games N] [--workers W] [--board HxW]
 *                      [--seconds S] [--warmup S]
 *
 * Prints one JSON line: steps_per_s (game steps a second, all games), and
 * what it ran. Exit 1 when something failed (a reply for another round).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "envs.h"
#include "xring/game.h"

#define PLAYERS 2

struct cfg {
	uint32_t games, workers, h, w;
	double seconds, warmup;
};

static void fail(const char *what, int rc)
{
	fprintf(stderr, "baseline_pipe_envs: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

/* Worker w's games: [first, first + count). */
static void share(const struct cfg *c, uint32_t w, uint32_t *first, uint32_t *count)
{
	*first = (uint32_t)((uint64_t)c->games * w / c->workers);
	*count = (uint32_t)((uint64_t)c->games * (w + 1) / c->workers) - *first;
}

/* A worker: its games, stepped at each message, until the parent hangs up. */
static void worker(const struct cfg *c, uint32_t w, int fd, uint8_t *seats, size_t seat_bytes)
{
	uint32_t first, count;
	struct bench_envs *e;

	share(c, w, &first, &count);
	if (bench_envs_create(count, c->h, c->w, PLAYERS, 1 + first, &e) < 0)
		_exit(2);
	uint8_t *mine = seats + (size_t)first * PLAYERS * seat_bytes;
	size_t in_len = 4 + (size_t)count * PLAYERS * 4, out_len = 4 + (size_t)count * PLAYERS * 5;
	uint8_t *in = malloc(in_len), *out = malloc(out_len);
	if (!in || !out || bench_envs_observe(e, 0, count, mine) < 0)
		_exit(3);
	if (write_all(fd, "r", 1) < 0)
		_exit(4);
	for (;;) {
		if (read_all(fd, in, in_len) < 0)
			_exit(0); /* the parent is done */
		memcpy(out, in, 4); /* the round, echoed */
		float *rew = (float *)(void *)(out + 4);
		uint8_t *done = out + 4 + (size_t)count * PLAYERS * 4;
		if (bench_envs_step(e, 0, count, (const int32_t *)(void *)(in + 4), mine, rew,
				    done) < 0)
			_exit(5);
		if (write_all(fd, out, out_len) < 0)
			_exit(0);
	}
}

struct parent {
	int *fd;
	uint8_t *seats;
	size_t seat_bytes, in_cap, out_cap;
	uint32_t n_actions;
	uint8_t *in, *out;
	int32_t *act;
	uint64_t *rng;
};

/* The parent's actions for every seat, from the masks in shared memory. */
static void choose(const struct cfg *c, struct parent *p, uint32_t obs_bytes)
{
	for (uint32_t s = 0; s < c->games * PLAYERS; s++) {
		const uint8_t *mask = p->seats + (size_t)s * p->seat_bytes + obs_bytes;
		p->act[s] = xr_policy_random_legal(mask, p->n_actions, &p->rng[s]);
	}
}

/* One step of every game: step_async, then step_wait, in worker order. */
static void step_all(const struct cfg *c, struct parent *p, uint32_t round)
{
	for (uint32_t w = 0; w < c->workers; w++) {
		uint32_t first, count;
		share(c, w, &first, &count);
		memcpy(p->in, &round, 4);
		memcpy(p->in + 4, p->act + (size_t)first * PLAYERS, (size_t)count * PLAYERS * 4);
		if (write_all(p->fd[w], p->in, 4 + (size_t)count * PLAYERS * 4) < 0)
			fail("send actions", EPIPE);
	}
	for (uint32_t w = 0; w < c->workers; w++) {
		uint32_t first, count, echo;
		share(c, w, &first, &count);
		int rc = read_all(p->fd[w], p->out, 4 + (size_t)count * PLAYERS * 5);
		if (rc < 0)
			fail("read reply", rc);
		memcpy(&echo, p->out, 4);
		if (echo != round)
			fail("a reply for another round", EPROTO);
	}
}

static void spawn(const struct cfg *c, struct parent *p, size_t seat_bytes)
{
	for (uint32_t w = 0; w < c->workers; w++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			fail("socketpair", errno);
		pid_t pid = fork();
		if (pid < 0)
			fail("fork", errno);
		if (pid == 0) {
			for (uint32_t j = 0; j < w; j++)
				close(p->fd[j]);
			close(sv[0]);
			worker(c, w, sv[1], p->seats, seat_bytes);
		}
		close(sv[1]);
		p->fd[w] = sv[0];
	}
	for (uint32_t w = 0; w < c->workers; w++) {
		char r;
		if (read_all(p->fd[w], &r, 1) < 0)
			fail("a worker did not start", EPIPE);
	}
}

static void parse(int argc, char **argv, struct cfg *c)
{
	bool bad = (argc - 1) % 2 != 0;

	*c = (struct cfg){.games = 1000, .h = 20, .w = 20, .seconds = 2, .warmup = 0.5};
	for (int i = 1; i + 1 < argc && !bad; i += 2) {
		if (!strcmp(argv[i], "--games"))
			c->games = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--workers"))
			c->workers = (uint32_t)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--board"))
			bad = sscanf(argv[i + 1], "%ux%u", &c->h, &c->w) != 2;
		else if (!strcmp(argv[i], "--seconds"))
			c->seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--warmup"))
			c->warmup = atof(argv[i + 1]);
		else
			bad = true;
	}
	if (!c->workers || c->workers > c->games)
		c->workers = c->games;
	if (!c->games || bad) {
		fprintf(stderr, "usage: baseline_pipe_envs [--games N] [--workers W] [--board HxW] "
				"[--seconds S] [--warmup S]\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct cfg c;
	struct bench_envs *probe;
	struct bench_envs_sizes sz;
	struct parent p = {0};

	parse(argc, argv, &c);
	signal(SIGPIPE, SIG_IGN);
	/* The sizes, from one game of the same shape. */
	if (bench_envs_create(1, c.h, c.w, PLAYERS, 1, &probe) < 0)
		fail("grid game", EINVAL);
	bench_envs_sizes(probe, &sz);
	bench_envs_destroy(probe);
	p.seat_bytes = sz.seat_bytes;
	p.n_actions = sz.n_actions;
	size_t shm = (size_t)c.games * PLAYERS * p.seat_bytes;
	p.seats = mmap(NULL, shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint32_t per = (c.games + c.workers - 1) / c.workers;
	p.in = malloc(4 + (size_t)per * PLAYERS * 4);
	p.out = malloc(4 + (size_t)per * PLAYERS * 5);
	p.fd = calloc(c.workers, sizeof(int));
	p.act = calloc((size_t)c.games * PLAYERS, sizeof(int32_t));
	p.rng = calloc((size_t)c.games * PLAYERS, sizeof(uint64_t));
	if (p.seats == MAP_FAILED || !p.in || !p.out || !p.fd || !p.act || !p.rng)
		fail("memory", ENOMEM);
	for (uint32_t s = 0; s < c.games * PLAYERS; s++)
		p.rng[s] = 0x9e3779b97f4a7c15ull * (s + 1);

	uint64_t t_spawn = now_ns();
	spawn(&c, &p, p.seat_bytes);
	double spawn_s = (double)(now_ns() - t_spawn) / 1e9;
	uint32_t round = 0;
	uint64_t t0 = now_ns(), warm_end = t0 + (uint64_t)(c.warmup * 1e9), t_start = 0;
	uint32_t r_start = 0;
	for (;;) {
		choose(&c, &p, sz.obs_bytes);
		step_all(&c, &p, ++round);
		uint64_t t = now_ns();
		if (!t_start && t >= warm_end) {
			t_start = t;
			r_start = round;
		}
		if (t_start && t - t_start >= (uint64_t)(c.seconds * 1e9))
			break;
	}
	double secs = (double)(now_ns() - t_start) / 1e9;
	double rate = (double)(round - r_start) * c.games / secs;
	for (uint32_t w = 0; w < c.workers; w++)
		close(p.fd[w]);
	while (wait(NULL) > 0)
		;
	printf("{\"baseline\":\"pipe_per_env\",\"games\":%u,\"workers\":%u,\"board\":\"%ux%u\","
	       "\"seconds\":%.2f,\"rounds\":%u,\"spawn_s\":%.2f,\"steps_per_s\":%.0f}\n",
	       c.games, c.workers, c.h, c.w, secs, round - r_start, spawn_s, rate);
	return 0;
}
