/* SPDX-License-Identifier: MIT */
/*
 * Experience verifier and reader.
 *
 * Input is untrusted: a record from another process's ring, a file, bytes
 * built by flatc or a Python program. Nothing in it is followed before it is
 * checked, and every check is done in 64-bit arithmetic on offsets relative
 * to the buffer start, so no sum can wrap and no pointer is formed outside
 * [buf, buf + len).
 *
 * What is accepted is the FlatBuffers format, not our builder's particular
 * layout: objects may come in any order (official builders write back to
 * front), vtables may be shared or lie after their table, default-valued
 * fields may be omitted, and a vtable may be shorter (older writer) or longer
 * (newer schema) than ours. The checks follow the official C++ verifier,
 * tightened where a well-formed builder never does otherwise:
 *
 *   buffer   len >= 8; root uoffset 4-aligned, >= 4, and the table in range
 *   ident    bytes 4..7 are an identifier only when the root leaves room for
 *            one and they are printable ASCII (a vtable or zero padding in
 *            that place never is); an identifier other than "XREX" rejects
 *   table    4-aligned, soffset in range; vtable 2-aligned, in range, size
 *            >= 4 and even; table size >= 4 and in range; nesting depth
 *            bounded
 *   field    voffset 0 = absent (default); else >= 4, inside the table size,
 *            and naturally aligned relative to the buffer start
 *   offset   uoffset target in range and 4-aligned
 *   vector   length prefix in range, length * element size fits in what is
 *            left of the buffer (computed in 64 bits)
 *   Tensor   dtype known; ndim <= XR_EXP_MAX_DIMS; every dim >= 1;
 *            product(dims) * dtype size == data length (overflow-checked).
 *            Data alignment is not required: flatc does not align it.
 *
 * bool fields read any non-zero byte as true, as the official readers do.
 * An empty mask or extras vector reads as absent (NULL, 0). Absent scalars
 * read as the schema's defaults: 0 / false, but applied -1 (and applied_by
 * NONE), so a record of a writer older than those fields reads as "no step
 * reported".
 *
 * applied_by is an enum, yet any value is accepted and passed through: a
 * newer schema may add action sources (FlatBuffers enums grow like tables
 * do, and this reader already accepts a newer writer's longer vtables), and
 * nothing here depends on the value -- unlike dtype, which sizes the obs
 * data and so must be known. Refusing would also promise nothing to batch
 * readers, who read the byte in place without this verifier.
 */
#include <stdint.h>
#include <string.h>

#include "xring/error.h"
#include "record/schema_ids.h"
#include "xring/record.h"

/* Experience -> Tensor is two levels; anything deeper is not our schema.
 * The bound keeps the depth argument honest if the schema grows nesting. */
#define MAX_DEPTH 8

struct rd {
	const uint8_t *b;
	uint64_t len;
};

/* A table whose header and vtable have been checked. */
struct tbl {
	uint64_t pos;      /* table start */
	uint64_t vt;       /* vtable start */
	uint32_t nslots;   /* field entries in the vtable */
	uint32_t tsize;    /* table size from the vtable */
};

static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int in_range(const struct rd *r, uint64_t pos, uint64_t n)
{
	return pos <= r->len && n <= r->len - pos;
}

static int table_open(const struct rd *r, uint64_t pos, int depth,
		      struct tbl *t)
{
	int64_t vt;
	uint32_t vsize, tsize;

	if (depth > MAX_DEPTH || pos % 4 || !in_range(r, pos, 4))
		return -1;
	/* soffset: the vtable is at table - soffset, either side. */
	vt = (int64_t)pos - (int32_t)ld32(r->b + pos);
	if (vt < 0 || vt % 2 || !in_range(r, (uint64_t)vt, 4))
		return -1;
	vsize = ld16(r->b + vt);
	tsize = ld16(r->b + vt + 2);
	if (vsize < 4 || vsize % 2 || !in_range(r, (uint64_t)vt, vsize))
		return -1;
	if (tsize < 4 || !in_range(r, pos, tsize))
		return -1;
	t->pos = pos;
	t->vt = (uint64_t)vt;
	t->nslots = (vsize - 4) / 2;
	t->tsize = tsize;
	return 0;
}

/* Position of field id, width w bytes: 0 if absent, -1 if malformed. */
static int64_t field(const struct rd *r, const struct tbl *t, unsigned int id,
		     unsigned int w)
{
	uint32_t fo;
	uint64_t pos;

	if (id >= t->nslots)
		return 0;
	fo = ld16(r->b + t->vt + 4 + 2 * id);
	if (!fo)
		return 0;
	if (fo < 4 || fo + w > t->tsize)
		return -1;
	pos = t->pos + fo;
	if (pos % w)
		return -1;
	return (int64_t)pos;
}

/* Target of the uoffset stored in field id: 0 if absent, -1 if malformed.
 * A target is never 0 (the root uoffset lives there), so 0 is free. */
static int64_t follow(const struct rd *r, const struct tbl *t, unsigned int id)
{
	int64_t pos = field(r, t, id, 4);
	uint64_t tgt;

	if (pos <= 0)
		return pos;
	tgt = (uint64_t)pos + ld32(r->b + pos);
	if (tgt % 4 || !in_range(r, tgt, 4))
		return -1;
	return (int64_t)tgt;
}

/* A vector field of elements of size es: *n elements at *data. Absent
 * leaves *data NULL and *n 0. Returns 0 or -1. */
static int vector(const struct rd *r, const struct tbl *t, unsigned int id,
		  unsigned int es, const uint8_t **data, uint32_t *n)
{
	int64_t pos = follow(r, t, id);
	uint32_t cnt;

	*data = NULL;
	*n = 0;
	if (pos <= 0)
		return (int)pos;
	cnt = ld32(r->b + pos);
	/* cnt * es < 2^35: no overflow in 64 bits. */
	if (!in_range(r, (uint64_t)pos + 4, (uint64_t)cnt * es))
		return -1;
	*data = r->b + pos + 4;
	*n = cnt;
	return 0;
}

static int scalar(const struct rd *r, const struct tbl *t, unsigned int id,
		  unsigned int w, void *out)
{
	int64_t pos = field(r, t, id, w);

	if (pos > 0)
		memcpy(out, r->b + pos, w);
	return pos < 0 ? -1 : 0;
}

static int read_tensor(const struct rd *r, uint64_t pos, int depth,
		       xr_exp_view *v)
{
	struct tbl t;
	uint8_t dtype = 0;
	const uint8_t *shape, *data;
	uint32_t ndim, len;
	uint64_t n;

	if (table_open(r, pos, depth, &t) ||
	    scalar(r, &t, TEN_DTYPE, 1, &dtype) ||
	    vector(r, &t, TEN_SHAPE, 4, &shape, &ndim) ||
	    vector(r, &t, TEN_DATA, 1, &data, &len))
		return -1;
	n = xr_dtype_size((xr_dtype)dtype);
	if (!n || ndim > XR_EXP_MAX_DIMS)
		return -1;
	for (uint32_t i = 0; i < ndim; i++) {
		int32_t dim = (int32_t)ld32(shape + 4 * i);

		/* n <= 2^32 here and dim < 2^31: the product fits. */
		if (dim < 1)
			return -1;
		n *= (uint64_t)dim;
		if (n > UINT32_MAX)
			return -1;
		v->obs_dims[i] = dim;
	}
	if (n != len)
		return -1;
	v->obs_dtype = (xr_dtype)dtype;
	v->obs_ndim = ndim;
	v->obs = data;
	v->obs_bytes = len;
	return 0;
}

static int is_ident_char(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

static int read_experience(const struct rd *r, xr_exp_view *v)
{
	struct tbl t;
	uint32_t root;
	int64_t obs;
	uint8_t done = 0, truncated = 0;

	memset(v, 0, sizeof(*v));
	v->f.applied = -1; /* the schema's default; NONE is 0 */
	if (r->len < 8)
		return -1;
	root = ld32(r->b);
	if (root < 4)
		return -1;
	if (root >= 8 && is_ident_char(r->b[4]) && is_ident_char(r->b[5]) &&
	    is_ident_char(r->b[6]) && is_ident_char(r->b[7]) &&
	    memcmp(r->b + 4, "XREX", 4))
		return -1;
	if (table_open(r, root, 1, &t))
		return -1;
	if (scalar(r, &t, EXP_SEQ, 8, &v->f.seq) ||
	    scalar(r, &t, EXP_T_NS, 8, &v->f.t_ns) ||
	    scalar(r, &t, EXP_GAME_ID, 4, &v->f.game_id) ||
	    scalar(r, &t, EXP_PLAYER_ID, 4, &v->f.player_id) ||
	    scalar(r, &t, EXP_TURN, 4, &v->f.turn) ||
	    scalar(r, &t, EXP_ACTION, 4, &v->f.action) ||
	    scalar(r, &t, EXP_REWARD, 4, &v->f.reward) ||
	    scalar(r, &t, EXP_DONE, 1, &done) ||
	    scalar(r, &t, EXP_TRUNCATED, 1, &truncated) ||
	    scalar(r, &t, EXP_APPLIED, 4, &v->f.applied) ||
	    scalar(r, &t, EXP_APPLIED_BY, 1, &v->f.applied_by) ||
	    vector(r, &t, EXP_LEGAL_MASK, 1, &v->mask, &v->mask_len) ||
	    vector(r, &t, EXP_EXTRAS, 1, &v->extras, &v->extras_len))
		return -1;
	v->f.done = done != 0;
	v->f.truncated = truncated != 0;
	if (!v->mask_len)
		v->mask = NULL;
	if (!v->extras_len)
		v->extras = NULL;
	obs = follow(r, &t, EXP_OBS);
	if (obs < 0 || (obs > 0 && read_tensor(r, (uint64_t)obs, 2, v)))
		return -1;
	return 0;
}

int xr_exp_view_init(xr_exp_view *v, const void *buf, size_t len)
{
	struct rd r = { .b = buf, .len = len };

	if (!v || (!buf && len))
		return XR_EBADREC;
	if (read_experience(&r, v))
		return XR_EBADREC;
	return 0;
}

int xr_exp_verify(const void *buf, size_t len)
{
	xr_exp_view v;

	return xr_exp_view_init(&v, buf, len);
}
