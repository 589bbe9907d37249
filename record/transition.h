/* SPDX-License-Identifier: MIT */
#ifndef XR_RECORD_TRANSITION_H
#define XR_RECORD_TRANSITION_H

/*
 * Where the fields of a transition item lie (xring/table.h,
 * XR_ITEM_TRANSITION), for records of a given shape: the engine builds items
 * by it (engine/transitions.c) and trainers read them by it.
 */

#include <stdint.h>

#include "xring/record.h"
#include "xring/table.h"

void xr__trans_layout(const xr_exp_shape *sh, xr_item_layout *l);
/* Bytes of one item: the last field's end, rounded to 16. */
uint32_t xr__trans_item_size(const xr_exp_shape *sh);

#endif
