/* SPDX-License-Identifier: MIT */
#ifndef XR_ENGINE_SYNTHETIC_H
#define XR_ENGINE_SYNTHETIC_H

/*
 * The synthetic writer: stands in for the engine's games until they exist.
 * It writes Experience records with a u8 observation of a given size, into
 * one ring, at a given rate, built in place through the stream's template.
 * Contents are a function of the sequence number (xr_synth_fill), so any
 * reader can check every byte.
 */

#include <signal.h>
#include <stdint.h>

#include "xring/arena.h"
#include "xring/record.h"

struct xr_synth_opts {
	uint64_t count;        /* records to write; 0 = until *stop */
	uint64_t rate;         /* records per second; 0 = as fast as possible */
	uint32_t games;        /* game ids cycle over [0, games) */
	uint32_t batch;        /* records per publish */
	/* How long a lossy reader's batch may stand in the writer's way
	 * (xr_writer_set_lease_timeout). 0: the writer's default (10 s). */
	uint64_t lease_timeout_ns;
	_Atomic int *stop;     /* set (relaxed) from any thread or a signal handler */
};

struct xr_synth_result {
	uint64_t written;      /* records committed */
	uint64_t dropped;      /* lossy: records dropped at the writer */
	uint64_t waits;        /* lossless: waits for readers (ring full, or past the
				* high watermark) */
	uint64_t elapsed_ns;
};

/* The fields and observation bytes of record `seq` (deterministic). */
void xr_synth_fields(uint64_t seq, uint32_t games, xr_exp_fields *f);
void xr_synth_fill(uint64_t seq, uint8_t *obs, uint64_t n);

/* Runs the writer; returns 0 or a negative error (stop is not an error). */
int xr_synth_run(xr_writer *w, const xr_exp_template *t,
		 const struct xr_synth_opts *o, struct xr_synth_result *res);

#endif
