/* SPDX-License-Identifier: MIT */
/*
 * The engine host (engine/host.h). Its thread runs one loop while the
 * writers run: sleep on an eventfd for up to the housekeeping period, then
 * beat the heart and copy reader progress into the reader table for tools.
 * Writers end by writing that eventfd (so the loop notices at once), and
 * xr_host_stop() writes it too, from a signal handler if need be: the
 * loop then cancels every writer's wait (xr_writer_cancel), so a shard
 * paused for a slow reader stops at once instead of at its next timeout.
 * With --metrics-addr the same poll serves the metrics endpoint
 * (engine/metrics.c), whose sockets never block; housekeeping keeps its
 * period whatever the endpoint's clients do.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/host.h"
#include "engine/producers.h"
#include "engine/metrics.h"
#include "shm/arena_priv.h"
#include "shm/peers.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_HOUSEKEEPING_MS 100 /* heartbeat and reader progress, 10 Hz */

struct xr_host {
	xr_arena *a;
	xr_server *srv;
	struct xr_gdir *dir;          /* the game directory, or NULL */
	struct xr_prods *prods;       /* producer slots' thread, or NULL */
	struct xr_metrics *metrics;   /* --metrics-addr, or NULL */
	int wake_fd;                  /* eventfd: a writer ended, or stop */
	_Atomic int stop;             /* the writers' stop flag (a lock-free
				       * atomic: a signal handler sets it) */
	_Atomic uint32_t ended;       /* writer threads that ended */
	/* the synthetic writer's thread */
	xr_writer *synth_w;
	const xr_exp_template *synth_t;
	const struct xr_synth_opts *synth_o;
	struct xr_synth_result *synth_res;
	int synth_rc;
};

/* Unmaps the arena, the table thread ended first: it keeps the tables'
 * figures in the arena (their views). Nothing else may call into the
 * tables then (the control server stopped, or never started). */
static void drop_arena(struct xr_host *h)
{
	xr__gdir_stop_tables(h->dir);
	xr_arena_destroy(h->a);
}

int xr_host_create(const xr_arena_spec *spec, const xr_server_opts *so,
		   const struct xr_gdir_opts *go, struct xr_host **out, char *why, size_t why_len)
{
	struct xr_host *h = calloc(1, sizeof(*h));
	int rc;

	why[0] = '\0';
	if (!h)
		return -ENOMEM;
	h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->wake_fd < 0) {
		rc = -errno;
		free(h);
		return rc;
	}
	if (go && (rc = xr__gdir_create(go, &h->dir)) < 0) {
		snprintf(why, why_len, "the game directory: %s", strerror(-rc));
		goto fail;
	}
	/* Named only once the control socket listens: whoever finds the
	 * arena by its name can attach at once. */
	rc = xr__arena_create_unnamed(spec, &h->a);
	if (rc < 0) {
		snprintf(why, why_len, "%s", xr_arena_last_note());
		goto fail;
	}
	if (h->dir) {
		xr__gdir_set_arena(h->dir, h->a);
		/* Producer rings' writer: the engine's own thread, like the
		 * shards, so it runs from here to the arena's close. */
		struct xr_prod_opts po = {.engine_uid = (uint32_t)geteuid(),
					  .lease_timeout_ns = go->lease_timeout_ns,
					  .high_watermark = go->high_watermark,
					  .low_watermark = go->low_watermark};
		rc = xr__prods_create(h->a, &po, &h->prods, why, why_len);
		if (rc < 0) {
			drop_arena(h);
			goto fail;
		}
		xr__gdir_set_producers(h->dir, h->prods);
		/* Declared tables exist, restored, before anyone can connect. */
		rc = xr__gdir_make_tables(h->dir, why, why_len);
		if (rc < 0) {
			xr__prods_destroy(h->prods);
			drop_arena(h);
			goto fail;
		}
	}
	/* Game requests are served from the first connection on: a client
	 * that finds the socket finds the games. Orders wait in the shards'
	 * queues until the shards run. */
	rc = xr__server_start_games(h->a, so, h->dir ? &xr__gdir_hooks : NULL, h->dir, &h->srv);
	if (rc < 0) {
		snprintf(why, why_len, "%s", xr_server_last_note());
		xr__prods_destroy(h->prods);
		drop_arena(h);
		goto fail;
	}
	if (h->dir)
		xr__gdir_serve(h->dir); /* tables' feeds attach through the socket */
	rc = xr__arena_publish(h->a);
	if (rc < 0) {
		snprintf(why, why_len, "%s", xr_arena_last_note());
		xr__server_set_games(h->srv, NULL, NULL);
		xr__prods_destroy(h->prods);
		xr_arena_close(h->a);
		xr_server_stop(h->srv);
		drop_arena(h);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	xr__gdir_destroy(h->dir);
	close(h->wake_fd);
	free(h);
	return rc;
}

xr_arena *xr_host_arena(struct xr_host *h)
{
	return h->a;
}

void xr_host_serve_metrics(struct xr_host *h, struct xr_metrics *m)
{
	h->metrics = m;
}

const char *xr_host_socket(const struct xr_host *h)
{
	return xr_server_path(h->srv);
}

void xr_host_stop(struct xr_host *h)
{
	uint64_t one = 1;

	xr_store_relaxed(&h->stop, 1); /* a flag to look at: orders nothing */
	if (write(h->wake_fd, &one, sizeof(one)) < 0)
		return; /* a full counter is readable already */
}

static void writer_ended(void *p)
{
	struct xr_host *h = p;
	uint64_t one = 1;

	xr_fetch_add_sc(&h->ended, 1);
	if (write(h->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* The engine's one housekeeping timer: until `writers` writer threads have
 * ended. On stop, every one of the n_ws writers' waits is cancelled once. */
static void keep_house(struct xr_host *h, xr_writer *const *ws, uint32_t n_ws, uint32_t writers)
{
	bool cancelled = false;
	uint64_t due = 0; /* the next heartbeat, CLOCK_MONOTONIC */

	while (xr_load_sc(&h->ended) < writers) {
		struct pollfd pf[2 + XR_METRICS_CONNS] = {{.fd = h->wake_fd, .events = POLLIN}};
		uint64_t v, now = xr__now_ns();
		int n = h->metrics ? xr__metrics_pollfds(h->metrics, pf + 1) : 0;
		int ms = now >= due ? 0 : (int)((due - now) / 1000000 + 1);
		int mt = h->metrics ? xr__metrics_timeout_ms(h->metrics, now) : -1;

		if (mt >= 0 && mt < ms)
			ms = mt;
		/* Drained, whatever woke it: a writer's end is counted in
		 * `ended`, a stop in `stop`. */
		int ready = poll(pf, (nfds_t)(1 + n), ms);
		if (ready > 0 && (pf[0].revents & POLLIN) && read(h->wake_fd, &v, sizeof(v)) < 0)
			v = 0;
		if (h->metrics)
			xr__metrics_serve(h->metrics, pf + 1, ready > 0 ? n : 0, h->a);
		now = xr__now_ns();
		if (now >= due || (ready > 0 && pf[0].revents)) {
			xr_arena_heartbeat(h->a);
			xr__peers_mirror(h->a);
			due = now + XR_HOUSEKEEPING_MS * 1000000ull;
		}
		if (xr_load_relaxed(&h->stop) && !cancelled) {
			for (uint32_t k = 0; k < n_ws; k++)
				xr_writer_cancel(ws[k]);
			cancelled = true;
		}
	}
	xr__peers_mirror(h->a);
}

int xr_host_run_games(struct xr_host *h, const xr_exp_template *t, struct xr_engine_opts *eo,
		      struct xr_shard_result *res)
{
	xr_writer *ws[XR_MAX_RINGS];
	struct xr_engine *e;
	int rc;

	eo->shard.stop = &h->stop;
	eo->games = h->dir;
	xr_store_sc(&h->ended, 0);
	rc = xr_engine_start(h->a, t, eo, writer_ended, h, &e);
	if (rc < 0) {
		memset(res, 0, sizeof(*res));
		return rc;
	}
	/* Every ring's writer: a shard may wait on any of its streams. */
	keep_house(h, ws, xr_engine_writers(e, ws, XR_MAX_RINGS), xr_engine_shards(e));
	/* No shard takes orders any more: say so to whoever asks. */
	if (h->dir)
		xr__server_set_games(h->srv, NULL, NULL);
	return xr_engine_join(e, res);
}

static void *synth_main(void *p)
{
	struct xr_host *h = p;

	pthread_setname_np(pthread_self(), "xr-synth");
	h->synth_rc = xr_synth_run(h->synth_w, h->synth_t, h->synth_o, h->synth_res);
	writer_ended(h);
	return NULL;
}

int xr_host_run_synth(struct xr_host *h, const xr_exp_template *t, struct xr_synth_opts *so,
		      struct xr_synth_result *res)
{
	pthread_t th;
	int rc = xr_arena_writer(h->a, 0, 0, &h->synth_w);

	if (rc < 0)
		return rc;
	so->stop = &h->stop;
	h->synth_t = t;
	h->synth_o = so;
	h->synth_res = res;
	xr_store_sc(&h->ended, 0);
	rc = -pthread_create(&th, NULL, synth_main, h);
	if (rc < 0)
		return rc;
	keep_house(h, &h->synth_w, 1, 1);
	pthread_join(th, NULL);
	return h->synth_rc;
}

void xr_host_destroy(struct xr_host *h)
{
	if (!h)
		return;
	/* No hook runs from here on (the games' ones are unset after the
	 * shards end; here for good), so the producer thread, the last
	 * writer, can stop. */
	if (h->srv)
		xr__server_set_games(h->srv, NULL, NULL);
	xr__prods_destroy(h->prods);
	if (h->dir)
		xr__gdir_set_producers(h->dir, NULL);
	/* Readers drain what was published, then see XR_ECLOSED; the hangup
	 * that follows is then no news to them. */
	xr_arena_close(h->a);
	xr_server_stop(h->srv);
	drop_arena(h);
	xr__gdir_destroy(h->dir); /* no server to call it now */
	xr__metrics_close(h->metrics);
	close(h->wake_fd);
	free(h);
}
