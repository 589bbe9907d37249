/* SPDX-License-Identifier: MIT */
/*
 * Experience records: the template and the in-place builder.
 *
 * Byte layout of a record built here (offsets from the record start R; all
 * integers little-endian; FlatBuffers terms: uoffset = u32 forward offset from
 * where it is stored, soffset = s32, vtable = table - soffset, voffset = u16).
 *
 *   0    u32      root uoffset = 44              -> Experience table
 *   4    char[4]  file identifier "XREX"
 *   8    Experience vtable, 32 bytes:
 *          u16 vtable size 32, u16 table size 64,
 *          14 x u16 field offsets (slot = schema id; 0 = field absent)
 *   40   4 bytes zero padding (puts the table at 4 mod 8, so that its u64
 *        fields at +4 and +12 are 8-aligned)
 *   44   Experience table, 64 bytes:
 *          +0  s32 soffset = 36 (44 - 8)
 *          +4  u64 seq          abs 48   slot 0
 *          +12 u64 t_ns         abs 56   slot 1
 *          +20 u32 game_id      abs 64   slot 2
 *          +24 u32 player_id    abs 68   slot 3
 *          +28 u32 turn         abs 72   slot 4
 *          +32 u32 obs          abs 76   slot 5  uoffset -> Tensor table
 *          +36 s32 action       abs 80   slot 6
 *          +40 f32 reward       abs 84   slot 7
 *          +44 u32 legal_mask   abs 88   slot 10 uoffset -> mask vector
 *          +48 u32 extras       abs 92   slot 11 uoffset -> extras vector
 *          +52 u8  done         abs 96   slot 8
 *          +53 u8  truncated    abs 97   slot 9
 *          +54 u8  applied_by   abs 98   slot 13
 *          +55 1 byte zero padding
 *          +56 s32 applied      abs 100  slot 12
 *          +60 4 bytes zero padding (the table size stays a multiple of 8)
 *   108  Tensor vtable, 10 bytes: u16 10, u16 16, 3 x u16 field offsets
 *   118  2 bytes zero padding
 *   120  Tensor table, 16 bytes:
 *          +0  s32 soffset = 12 (120 - 108)
 *          +4  u32 shape        abs 124  slot 1  uoffset -> shape vector
 *          +8  u32 data         abs 128  slot 2  uoffset -> data vector
 *          +12 u8  dtype        abs 132  slot 0
 *          +13 3 bytes zero padding
 *   136  shape vector: u32 ndim, ndim x s32 dims (always present, may be empty)
 *   then, only if mask_len > 0, at the next 4-aligned offset:
 *        mask vector: u32 mask_len, mask_len bytes
 *   then, only if extras_len > 0, at the next 4-aligned offset:
 *        extras vector: u32 extras_len, extras_len bytes
 *   then zero padding up to P - 4, where P is the smallest offset with
 *        P >= previous end + 4 and (XR_EXP_DEST_SKEW + P) % 64 == 0:
 *        obs data vector: u32 obs_bytes at P - 4, obs_bytes bytes at P
 *   then zero padding up to size = round_up(P + obs_bytes, 8).
 *
 * Every scalar is naturally aligned relative to R, as the FlatBuffers verifier
 * demands; R itself is at least 8-aligned in ring memory (64k + 16), so the
 * scalars are aligned in memory too. A vector absent from the shape
 * (mask_len or extras_len 0) has a zero vtable entry and its table slot stays
 * zero; readers then see the field as absent, like a default-omitting
 * builder would write it. Scalars are always present (force-defaults) so
 * their offsets do not depend on their values.
 *
 * Everything from 0 up to the first variable byte (the mask data, else the
 * extras data, else the obs data) is the same in every record of a template:
 * that prefix is head[0..head_len), copied by one memcpy. The scalars are
 * then stored over their zero slots, and the at most two vector headers that
 * lie after head (extras and obs lengths, with the zero padding before them)
 * and the tail padding are written; the mask, extras and obs bytes themselves
 * are never touched.
 *
 * The layout only depends on the shape, so a writer can pick the stride of a
 * ring's frames once per stream, and readers see each field of a batch as a
 * strided array (DESIGN.md, invariant 7).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "record/schema_ids.h"
#include "xring/record.h"

/* Fixed part of the layout; see the table at the top of the file. */
enum {
	L_ROOT = 0,
	L_IDENT = 4,
	L_EXP_VT = 8,
	L_EXP_VT_SIZE = 4 + 2 * EXP_NFIELDS,
	L_EXP = L_EXP_VT + L_EXP_VT_SIZE + 4, /* + 4 bytes of padding */
	L_EXP_SIZE = 64,
	L_TEN_VT = L_EXP + L_EXP_SIZE,
	L_TEN_VT_SIZE = 4 + 2 * TEN_NFIELDS,
	L_TEN = 120,
	L_TEN_SIZE = 16,
	L_SHAPE = L_TEN + L_TEN_SIZE,
};

/* Field positions inside the Experience table, indexed by schema id. */
static const uint16_t exp_field_off[EXP_NFIELDS] = {
	[EXP_SEQ] = 4,
	[EXP_T_NS] = 12,
	[EXP_GAME_ID] = 20,
	[EXP_PLAYER_ID] = 24,
	[EXP_TURN] = 28,
	[EXP_OBS] = 32,
	[EXP_ACTION] = 36,
	[EXP_REWARD] = 40,
	[EXP_LEGAL_MASK] = 44,
	[EXP_EXTRAS] = 48,
	[EXP_DONE] = 52,
	[EXP_TRUNCATED] = 53,
	[EXP_APPLIED] = 56,
	[EXP_APPLIED_BY] = 54,
};

static const uint16_t ten_field_off[TEN_NFIELDS] = {
	[TEN_DTYPE] = 12,
	[TEN_SHAPE] = 4,
	[TEN_DATA] = 8,
};

_Static_assert(L_EXP == 44 && L_EXP % 8 == 4,
	       "u64 fields at table +4/+12 must land 8-aligned");
_Static_assert(L_EXP_SIZE % 8 == 0 && L_EXP_SIZE >= 60,
	       "the table holds applied at +56..+60 and is a multiple of 8");
_Static_assert(L_TEN_VT + L_TEN_VT_SIZE <= L_TEN && L_TEN % 4 == 0,
	       "Tensor table must follow its vtable, 4-aligned");
_Static_assert(XR_EXP_DATA_ALIGN == 64 && XR_EXP_DEST_SKEW % 8 == 0,
	       "the record start must stay 8-aligned in ring memory");

/* Largest record: uoffsets are unsigned 32-bit, but the official runtimes
 * refuse buffers of 2 GiB or more. */
#define XR_EXP_MAX_SIZE 0x7fffffffu

static const struct {
	size_t size;
	const char *name;
} dtypes[XR_DTYPE_COUNT] = {
	[XR_DTYPE_U8] = {1, "u8"},
	[XR_DTYPE_I8] = {1, "i8"},
	[XR_DTYPE_U16] = {2, "u16"},
	[XR_DTYPE_I16] = {2, "i16"},
	[XR_DTYPE_U32] = {4, "u32"},
	[XR_DTYPE_I32] = {4, "i32"},
	[XR_DTYPE_U64] = {8, "u64"},
	[XR_DTYPE_I64] = {8, "i64"},
	[XR_DTYPE_F16] = {2, "f16"},
	[XR_DTYPE_F32] = {4, "f32"},
	[XR_DTYPE_F64] = {8, "f64"},
	[XR_DTYPE_BOOL] = {1, "bool"},
};

size_t xr_dtype_size(xr_dtype dtype)
{
	/* The enum may hold any int read from an untrusted source. */
	unsigned int d = (unsigned int)dtype;

	return d < XR_DTYPE_COUNT ? dtypes[d].size : 0;
}

const char *xr_dtype_name(xr_dtype dtype)
{
	unsigned int d = (unsigned int)dtype;

	return d < XR_DTYPE_COUNT ? dtypes[d].name : NULL;
}

int xr_dtype_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	/* Case-insensitive, so the schema's names ("F32", "BOOL") work too. */
	for (int d = 0; d < XR_DTYPE_COUNT; d++)
		if (!strcasecmp(name, dtypes[d].name))
			return d;
	return -EINVAL;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

int xr_exp_template_init(xr_exp_template *t, const xr_exp_shape *s)
{
	uint64_t obs_bytes, pos, p, size;
	uint32_t first;
	uint8_t *h;

	if (!t || !s)
		return -EINVAL;
	obs_bytes = xr_dtype_size(s->obs_dtype);
	if (!obs_bytes || s->obs_ndim > XR_EXP_MAX_DIMS)
		return -EINVAL;
	for (uint32_t i = 0; i < s->obs_ndim; i++) {
		if (s->obs_dims[i] < 1)
			return -EINVAL;
		/* Both factors are < 2^31, so the product cannot wrap before
		 * the check stops it. */
		obs_bytes *= (uint64_t)s->obs_dims[i];
		if (obs_bytes > XR_EXP_MAX_SIZE)
			return -EINVAL;
	}

	memset(t, 0, sizeof(*t));
	t->shape = *s;
	/* Dims past ndim are not part of the shape: keep the copy canonical
	 * so templates of equal shapes compare equal byte for byte. */
	for (uint32_t i = s->obs_ndim; i < XR_EXP_MAX_DIMS; i++)
		t->shape.obs_dims[i] = 0;
	t->obs_bytes = obs_bytes;

	pos = L_SHAPE + 4 + 4 * (uint64_t)s->obs_ndim;
	if (s->mask_len) {
		t->off_mask = (uint32_t)(pos + 4);
		pos = align_up(pos + 4 + s->mask_len, 4);
	}
	if (s->extras_len) {
		t->off_extras = (uint32_t)(pos + 4);
		pos = align_up(pos + 4 + s->extras_len, 4);
	}
	/* P = smallest offset >= pos + 4 with (SKEW + P) % 64 == 0. */
	p = align_up(pos + 4 + XR_EXP_DEST_SKEW, XR_EXP_DATA_ALIGN) -
	    XR_EXP_DEST_SKEW;
	size = align_up(p + obs_bytes, 8);
	if (size > XR_EXP_MAX_SIZE)
		return -EINVAL;
	t->off_obs = (uint32_t)p;
	t->size = (uint32_t)size;

	first = t->off_mask ? t->off_mask : t->off_extras ? t->off_extras : t->off_obs;
	if (first > sizeof(t->head))
		return -EINVAL; /* cannot happen with <= 8 dims; keep it true */
	t->head_len = first;

	t->off_seq = L_EXP + exp_field_off[EXP_SEQ];
	t->off_t_ns = L_EXP + exp_field_off[EXP_T_NS];
	t->off_game_id = L_EXP + exp_field_off[EXP_GAME_ID];
	t->off_player_id = L_EXP + exp_field_off[EXP_PLAYER_ID];
	t->off_turn = L_EXP + exp_field_off[EXP_TURN];
	t->off_action = L_EXP + exp_field_off[EXP_ACTION];
	t->off_reward = L_EXP + exp_field_off[EXP_REWARD];
	t->off_done = L_EXP + exp_field_off[EXP_DONE];
	t->off_truncated = L_EXP + exp_field_off[EXP_TRUNCATED];
	t->off_applied = L_EXP + exp_field_off[EXP_APPLIED];
	t->off_applied_by = L_EXP + exp_field_off[EXP_APPLIED_BY];

	/* The head: everything before the first variable byte. Scalars stay
	 * zero here; xr_exp_build() stores them. Bytes of head past the
	 * vectors it covers are padding and stay zero. */
	h = t->head;
	put32(h + L_ROOT, L_EXP - L_ROOT);
	memcpy(h + L_IDENT, "XREX", 4);

	put16(h + L_EXP_VT, L_EXP_VT_SIZE);
	put16(h + L_EXP_VT + 2, L_EXP_SIZE);
	for (int i = 0; i < EXP_NFIELDS; i++) {
		uint16_t off = exp_field_off[i];

		if ((i == EXP_LEGAL_MASK && !s->mask_len) ||
		    (i == EXP_EXTRAS && !s->extras_len))
			off = 0;
		put16(h + L_EXP_VT + 4 + 2 * i, off);
	}
	put32(h + L_EXP, (uint32_t)(L_EXP - L_EXP_VT));
	put32(h + L_EXP + exp_field_off[EXP_OBS],
	      L_TEN - (L_EXP + exp_field_off[EXP_OBS]));
	if (s->mask_len)
		put32(h + L_EXP + exp_field_off[EXP_LEGAL_MASK],
		      t->off_mask - 4 - (L_EXP + exp_field_off[EXP_LEGAL_MASK]));
	if (s->extras_len)
		put32(h + L_EXP + exp_field_off[EXP_EXTRAS],
		      t->off_extras - 4 - (L_EXP + exp_field_off[EXP_EXTRAS]));

	put16(h + L_TEN_VT, L_TEN_VT_SIZE);
	put16(h + L_TEN_VT + 2, L_TEN_SIZE);
	for (int i = 0; i < TEN_NFIELDS; i++)
		put16(h + L_TEN_VT + 4 + 2 * i, ten_field_off[i]);
	put32(h + L_TEN, L_TEN - L_TEN_VT);
	put32(h + L_TEN + ten_field_off[TEN_SHAPE],
	      L_SHAPE - (L_TEN + ten_field_off[TEN_SHAPE]));
	put32(h + L_TEN + ten_field_off[TEN_DATA],
	      t->off_obs - 4 - (L_TEN + ten_field_off[TEN_DATA]));
	h[L_TEN + ten_field_off[TEN_DTYPE]] = (uint8_t)s->obs_dtype;

	put32(h + L_SHAPE, s->obs_ndim);
	for (uint32_t i = 0; i < s->obs_ndim; i++)
		put32(h + L_SHAPE + 4 + 4 * i, (uint32_t)s->obs_dims[i]);
	/* The vector header right before the first variable byte. */
	if (s->mask_len)
		put32(h + t->off_mask - 4, s->mask_len);
	else if (s->extras_len)
		put32(h + t->off_extras - 4, s->extras_len);
	else
		put32(h + t->off_obs - 4, (uint32_t)obs_bytes);
	return 0;
}

/* Zero [from, data - 4) and store a vector length before data. */
static void vec_header(uint8_t *d, uint32_t from, uint32_t data, uint32_t len)
{
	memset(d + from, 0, data - 4 - from);
	put32(d + data - 4, len);
}

void xr_exp_build(const xr_exp_template *t, void *dst,
		  const xr_exp_fields *f, xr_exp_slots *slots)
{
	const xr_exp_shape *s = &t->shape;
	uint8_t *d = dst;
	uint32_t end = t->head_len;
	uint32_t obs_end = t->off_obs + (uint32_t)t->obs_bytes;

	memcpy(d, t->head, t->head_len);
	put64(d + t->off_seq, f->seq);
	put64(d + t->off_t_ns, f->t_ns);
	put32(d + t->off_game_id, f->game_id);
	put32(d + t->off_player_id, f->player_id);
	put32(d + t->off_turn, f->turn);
	memcpy(d + t->off_action, &f->action, 4);
	memcpy(d + t->off_reward, &f->reward, 4);
	d[t->off_done] = f->done;
	d[t->off_truncated] = f->truncated;
	memcpy(d + t->off_applied, &f->applied, 4);
	d[t->off_applied_by] = f->applied_by;

	/* The head ends at the first variable byte; the headers of the
	 * vectors after it are written here, around the caller's bytes. */
	if (s->mask_len)
		end = t->off_mask + s->mask_len;
	if (s->extras_len) {
		if (s->mask_len)
			vec_header(d, end, t->off_extras, s->extras_len);
		end = t->off_extras + s->extras_len;
	}
	if (end != t->off_obs)
		vec_header(d, end, t->off_obs, (uint32_t)t->obs_bytes);
	memset(d + obs_end, 0, t->size - obs_end);

	slots->obs = d + t->off_obs;
	slots->mask = s->mask_len ? d + t->off_mask : NULL;
	slots->extras = s->extras_len ? d + t->off_extras : NULL;
}
