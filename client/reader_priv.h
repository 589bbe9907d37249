/* SPDX-License-Identifier: MIT */
#ifndef XR_CLIENT_READER_PRIV_H
#define XR_CLIENT_READER_PRIV_H

/* What tests may reach of a reader beyond xring/reader.h: its slot, and
 * the page it writes (to play a reader that writes nonsense there). */

#include "shm/layout.h"
#include "xring/reader.h"

/* The reader's slot in its engine's reader table. */
uint32_t xr__reader_slot(const xr_reader *r);

/* -EDEADLK, with the reason set, when a wait with no deadline would be for
 * good (every ring's writer waits for a batch r holds); else 0. For callers
 * that wait in slices (the Python binding's spin mode), which the library's
 * own check, made only for waits with no deadline, does not see. */
int xr__reader_held_back(const xr_reader *r);

/* The page this reader writes: its sleep word and cursors (cursors[ring],
 * by the ring's index in the arena). */
struct xr_peer_page *xr__reader_page(xr_reader *r);

/* Its control connection. */
int xr__reader_sock(const xr_reader *r);

/* Its slot's entry in the reader table, as the engine wrote it. */
const struct xr_reader_info *xr__reader_info(const xr_reader *r);

/* The arena the reader maps (read-only): for the agent table. */
struct xr_arena;
const struct xr_arena *xr__reader_arena(const xr_reader *r);

/* A group member's page (opts.group), or NULL: to play a member that
 * writes nonsense there. */
struct xr_gpage;
struct xr_gpage *xr__reader_group_page(xr_reader *r);

#endif
