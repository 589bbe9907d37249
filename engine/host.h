/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_HOST_H
#define XR_ENGINE_HOST_H

/*
 * The engine host: the one object that owns an engine's parts and their
 * order. It creates the arena (with its reader slots and wake table), starts
 * the control server on it, runs the writers (the games' shards, or the
 * synthetic writer) while its own thread keeps the engine's one
 * housekeeping timer (the heartbeat tools read, and the reader progress
 * they show), and shuts down in order: writers stopped, arena closed
 * (readers drain, then see XR_ECLOSED), server stopped (hang up, slots
 * freed), arena destroyed. Ownership runs downwards only: the host ends its
 * parts; no part ends another.
 */

#include <signal.h>
#include <stddef.h>

#include "engine/engine.h"
#include "engine/games.h"
#include "engine/synthetic.h"
#include "xring/arena.h"
#include "xring/server.h"

struct xr_host;

/* Creates the arena of spec and serves it; with go, a game directory
 * (engine/games.h) that serves the game verbs from the first connection
 * on, and plays them once xr_host_run_games() runs the shards. 0 and the
 * host in *out, or the error of the part that failed, with why[] saying
 * what and what to do (the arena's note, or the server's). */
int xr_host_create(const xr_arena_spec *spec, const xr_server_opts *so,
		   const struct xr_gdir_opts *go, struct xr_host **out, char *why, size_t why_len);

xr_arena *xr_host_arena(struct xr_host *h);

/* Serves the stats region in the Prometheus format from m (engine/
 * metrics.h, opened by the caller before xr_host_create(), so that the
 * endpoint listens before the control socket answers) in the host's
 * housekeeping loop, once xr_host_run_*() runs. The host owns m from here
 * on. */
struct xr_metrics;
void xr_host_serve_metrics(struct xr_host *h, struct xr_metrics *m);
const char *xr_host_socket(const struct xr_host *h);

/* Runs the games (eo->shard.stop is the host's own; eo->games its game
 * directory, if any) until their count or xr_host_stop(), keeping house
 * meanwhile. Once the shards end, game requests are refused (stopping).
 * 0 or the first shard's error. */
int xr_host_run_games(struct xr_host *h, const xr_exp_template *t, struct xr_engine_opts *eo,
		      struct xr_shard_result *res);

/* The same for the synthetic writer, on ring 0 of stream 0. */
int xr_host_run_synth(struct xr_host *h, const xr_exp_template *t, struct xr_synth_opts *so,
		      struct xr_synth_result *res);

/* Asks the running writers to stop: they leave their waits at once and
 * end their turn. Async-signal-safe (a SIGTERM handler calls it). */
void xr_host_stop(struct xr_host *h);

/* Shuts down in order (above) and frees the host. */
void xr_host_destroy(struct xr_host *h);

#endif
