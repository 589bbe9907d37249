/* SPDX-License-Identifier: MIT */
#ifndef XR_CLI_TABLE_SPEC_H
#define XR_CLI_TABLE_SPEC_H

/*
 * A replay table declared on the engine's command line (or config file):
 *
 *     --table NAME:CAPACITY[:KEY=VALUE,...]
 *
 * keys: item_size, sampler (uniform|prioritized|fifo|lifo), remover
 * (fifo|lifo|lowest-priority), alpha, beta, max_times_sampled, min_size,
 * samples_per_insert, error_buffer, seed, source (a stream: the engine
 * feeds the table), priority, item (record|transition), restore (a
 * checkpoint file the table starts from). The engine creates it once its
 * control socket answers, before its games play (docs/replay.md).
 */

#include <stddef.h>

#include "xring/table.h"

#define XR_CLI_TABLES_MAX 16

struct xr_cli_table {
	char spec[512];       /* the text, cut in place: name and source point in */
	const char *name;
	const char *restore;  /* a checkpoint to restore it from, or NULL */
	xr_table_opts opts;
};

/* Parses v into *t. 0, or -1 with what is wrong in why. */
int xr_cli_table_parse(const char *v, struct xr_cli_table *t, char *why, size_t len);

#endif
