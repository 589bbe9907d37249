/* SPDX-License-Identifier: MIT */
#ifndef XR_TABLE_TABLE_PRIV_H
#define XR_TABLE_TABLE_PRIV_H

#include "table.h"

/* A free slot becomes a live item of priority p, the newest; the restore
 * (checkpoint.c) rebuilds a table through it, as inserts do. */
void xr__tb_fill(struct xr_tb *t, uint32_t slot, double p);

#endif
