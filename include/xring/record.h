/* SPDX-License-Identifier: MIT */
#ifndef XRING_RECORD_H
#define XRING_RECORD_H

/*
 * Experience records: standard FlatBuffers bytes (schema/experience.fbs,
 * file identifier "XREX"), built in place and read without copies.
 *
 * Writing. A stream's records all have the same shapes (observation dtype and
 * dims, mask length, extras length), so every record has the same byte layout.
 * xr_exp_template_init() computes that layout once; xr_exp_build() then writes
 * a record straight into its destination (normally ring space handed out by
 * xr_writer_reserve()): it copies the template's fixed bytes (root offset,
 * vtables, vector headers), stores the scalars, and returns where the
 * observation, mask and extras bytes go so the caller fills them in place.
 * There is no scratch buffer and no second copy.
 *
 * Every record built from one template has its fields at the same offsets
 * (xr_exp_template.off_*), and its observation data 64-byte aligned provided
 * the destination is 64-byte aligned minus XR_EXP_DEST_SKEW (see below). A
 * batch of such records laid out with a constant stride is therefore a set of
 * strided arrays: field f of record i is at base + i * stride + off_f.
 *
 * Reading. xr_exp_view_init() verifies a buffer of unknown origin completely
 * (bounds, alignment, offsets, vtables, vector lengths, dtype and shape
 * consistency) before it fills the view; nothing is trusted until it returns
 * 0. Records built by flatc or the official runtimes, which may omit default
 * fields or order things differently, are read just as well.
 *
 * None of these functions allocate; none keep pointers after they return
 * except the view, whose pointers point into the caller's buffer and are valid
 * as long as that buffer is.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xring/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element type of a tensor. The values are the schema's DType enum. */
typedef enum xr_dtype {
	XR_DTYPE_U8 = 0,
	XR_DTYPE_I8 = 1,
	XR_DTYPE_U16 = 2,
	XR_DTYPE_I16 = 3,
	XR_DTYPE_U32 = 4,
	XR_DTYPE_I32 = 5,
	XR_DTYPE_U64 = 6,
	XR_DTYPE_I64 = 7,
	XR_DTYPE_F16 = 8,
	XR_DTYPE_F32 = 9,
	XR_DTYPE_F64 = 10,
	XR_DTYPE_BOOL = 11,
} xr_dtype;

#define XR_DTYPE_COUNT 12
#define XR_EXP_MAX_DIMS 8
/* Observation data is aligned to this many bytes. */
#define XR_EXP_DATA_ALIGN 64
/* Records sit in ring frames behind a 16-byte frame header, and frames start
 * 64-byte aligned; the template aligns observation data for a destination
 * address that is == XR_EXP_DEST_SKEW (mod 64). */
#define XR_EXP_DEST_SKEW 16

/* Who chose the action a record's `applied` field names. The values are the
 * schema's ActionSource enum; xr_exp_fields.applied_by holds one. A record
 * from a newer writer may carry a value past XR_SRC_DELAY (a source this
 * build does not know): the reader passes it through as it is, so treat
 * unknown values as "some fallback" and never index a table with one
 * unchecked. */
typedef enum xr_action_source {
	XR_SRC_NONE = 0,         /* no step yet in this episode (its first record) */
	XR_SRC_POLICY = 1,       /* the engine's built-in policy (no agent holds the seat) */
	XR_SRC_AGENT = 2,        /* the agent holding the seat: its action, for this turn, legal */
	XR_SRC_TIMEOUT = 3,      /* fallback: the agent sent nothing for this turn in time */
	XR_SRC_WRONG_TURN = 4,   /* fallback: the agent's action was tagged for another turn */
	XR_SRC_OUT_OF_RANGE = 5, /* fallback: the agent's action is not 0..n_actions-1 */
	XR_SRC_ILLEGAL = 6,      /* fallback: the agent's action is illegal under the mask */
	XR_SRC_DELAY = 7,        /* fallback: --input-delay K, one of an episode's first K
				  * steps, which no answer can be for */
} xr_action_source;

/* Size in bytes of one element of dtype, or 0 for an unknown dtype. */
XR_API size_t xr_dtype_size(xr_dtype dtype);
/* "u8", "f32", ... or NULL for an unknown dtype. */
XR_API const char *xr_dtype_name(xr_dtype dtype);
/* Parses "u8", "f32", ...: the dtype, or -EINVAL. */
XR_API int xr_dtype_parse(const char *name);

/* The shapes shared by every record of a stream. */
typedef struct xr_exp_shape {
	xr_dtype obs_dtype;
	uint32_t obs_ndim;                  /* 0..XR_EXP_MAX_DIMS; 0: one element */
	int32_t obs_dims[XR_EXP_MAX_DIMS];  /* each >= 1 */
	uint32_t mask_len;                  /* legal-action mask bytes; 0 = none */
	uint32_t extras_len;                /* opaque extra bytes; 0 = none */
} xr_exp_shape;

/* The precomputed layout of one record. Plain data: may be copied, shared
 * between threads read-only, and placed in shared memory. */
typedef struct xr_exp_template {
	uint32_t size;        /* bytes of one record (a multiple of 8) */
	uint32_t head_len;    /* bytes of head[] copied by xr_exp_build():
			       * all bytes before the first mask, extras or
			       * obs byte */
	xr_exp_shape shape;
	uint64_t obs_bytes;   /* bytes of observation data */
	/* Offsets from the record start of each field's value. */
	uint32_t off_seq, off_t_ns, off_game_id, off_player_id, off_turn;
	uint32_t off_action, off_reward, off_done, off_truncated;
	uint32_t off_applied;    /* int32: xr_exp_fields.applied */
	uint32_t off_applied_by; /* uint8: xr_exp_fields.applied_by */
	uint32_t off_obs;     /* first byte of observation data */
	uint32_t off_mask;    /* first byte of the mask (0 if mask_len == 0) */
	uint32_t off_extras;  /* first byte of extras (0 if extras_len == 0) */
	/* The record's fixed bytes: everything but scalars and data. The
	 * template covers the whole record up to off_obs at most. */
	uint8_t head[512];
} xr_exp_template;

/* Scalar fields of one record. The builder writes every one as given; a
 * zeroed struct therefore says applied 0 (not the schema's default -1):
 * a producer with no step to report sets applied = -1, applied_by =
 * XR_SRC_NONE. */
typedef struct xr_exp_fields {
	uint64_t seq;
	uint64_t t_ns;
	uint32_t game_id;
	uint32_t player_id;
	uint32_t turn;
	int32_t action;
	float reward;
	bool done;
	bool truncated;
	/* The action applied at this player's previous step: the one that led
	 * to this record's observation, reward and done/truncated; -1 in an
	 * episode's first record (no step yet). */
	int32_t applied;
	/* Who chose `applied`: an xr_action_source (XR_SRC_NONE with -1). */
	uint8_t applied_by;
} xr_exp_fields;

/* Where xr_exp_build() wants the variable bytes. NULL where the shape has
 * none (mask_len == 0, extras_len == 0). */
typedef struct xr_exp_slots {
	void *obs;
	void *mask;
	void *extras;
} xr_exp_slots;

/* Computes the layout for records of shape s.
 * Returns 0, or -EINVAL for a bad shape (unknown dtype, ndim too large, a dim
 * < 1, or a record that would exceed 2 GiB / not fit head[]). */
XR_API int xr_exp_template_init(xr_exp_template *t, const xr_exp_shape *s);

/* Writes one record into dst (t->size bytes, writable), with scalar fields f,
 * and returns in *slots where the caller must write obs, mask and extras.
 * The caller owns dst. Never fails for a template that xr_exp_template_init()
 * accepted; the bytes in the slots are left as they were (the caller fills
 * them). Thread-safe: t is only read. */
XR_API void xr_exp_build(const xr_exp_template *t, void *dst,
			 const xr_exp_fields *f, xr_exp_slots *slots);

/* A verified record's fields. Pointers point into the verified buffer. */
typedef struct xr_exp_view {
	xr_exp_fields f;
	xr_dtype obs_dtype;
	uint32_t obs_ndim;
	int32_t obs_dims[XR_EXP_MAX_DIMS];
	const void *obs;        /* NULL if the record has no observation */
	uint64_t obs_bytes;
	const uint8_t *mask;    /* NULL if absent or empty */
	uint32_t mask_len;
	const uint8_t *extras;  /* NULL if absent or empty */
	uint32_t extras_len;
} xr_exp_view;

/* Verifies that buf[0..len) is a well-formed Experience FlatBuffer and fills
 * *v. Absent scalar fields read as their schema defaults (0 / false, but
 * applied -1 and applied_by XR_SRC_NONE, as in a record of an older writer);
 * any non-zero bool byte reads as true; applied_by is passed through as
 * stored, a value past XR_SRC_DELAY included (see xr_action_source). The file identifier is optional, but a
 * buffer carrying a different one is rejected. buf needs no alignment.
 * Returns 0, or XR_EBADREC for anything malformed (v is then undefined).
 * Safe on arbitrary bytes: never reads outside buf[0..len). Thread-safe.
 * docs/record-format.md lists every check. */
XR_API int xr_exp_view_init(xr_exp_view *v, const void *buf, size_t len);

/* Only verifies; same rules and returns as xr_exp_view_init(). */
XR_API int xr_exp_verify(const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
