/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_TABLE_PRIV_H
#define XR_TABLE_TABLE_PRIV_H

#include "table.h"

/* A free slot becomes a live item of priority p, the newest; the restore
 * (checkpoint.c) rebuilds a table through it, as inserts do. */
void xr__table_fill(struct xr_table *t, uint32_t slot, double p);

#endif
