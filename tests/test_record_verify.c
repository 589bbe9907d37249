/* SPDX-License-Identifier: MIT */
/*
 * The verifier on hostile input: every truncation, every single-byte
 * corruption, and one targeted case per rule it enforces. Each buffer is
 * handed over in a heap block of exactly its length, so under ASan a read
 * past the end is caught where it happens. Also: buffers built by Debian's
 * flatc 2.0.8 (back-to-front, defaults omitted) and by hand (vtable after its
 * table, short and long vtables, no identifier) read correctly, and a record
 * without applied/applied_by (an older writer's) reads them as -1 / NONE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xring/error.h"
#include "xring/record.h"

#include "record_samples.h"

#include "record_check.h"

/* Verify buf[0..len) from an exact-size heap copy; fill *v (may be NULL).
 * On success, check that every pointer of the view stays inside the copy
 * and read every byte it covers, so ASan sees any escape. */
static int verify_copy(const uint8_t *buf, size_t len, xr_exp_view *out)
{
	uint8_t *c = malloc(len ? len : 1);
	xr_exp_view v;
	unsigned int sum = 0;
	int rc;

	if (!c) {
		perror("malloc");
		exit(1);
	}
	memcpy(c, buf, len);
	rc = xr_exp_view_init(&v, c, len);
	CHECK(rc == 0 || rc == XR_EBADREC, "unexpected return %d", rc);
	if (rc == 0) {
		const uint8_t *end = c + len;
		const uint8_t *o = v.obs;

		CHECK(v.obs_ndim <= XR_EXP_MAX_DIMS, "ndim %u", v.obs_ndim);
		CHECK(!o || (o >= c && o <= end &&
			     v.obs_bytes <= (uint64_t)(end - o)),
		      "obs escapes the buffer");
		CHECK(o || v.obs_bytes == 0, "obs bytes without obs");
		CHECK(!v.mask || (v.mask >= c && v.mask <= end &&
				  v.mask_len <= (size_t)(end - v.mask)),
		      "mask escapes the buffer");
		CHECK(!v.extras || (v.extras >= c && v.extras <= end &&
				    v.extras_len <= (size_t)(end - v.extras)),
		      "extras escapes the buffer");
		CHECK((v.mask != NULL) == (v.mask_len != 0), "mask NULL/len");
		CHECK((v.extras != NULL) == (v.extras_len != 0),
		      "extras NULL/len");
		CHECK((unsigned int)v.obs_dtype < XR_DTYPE_COUNT, "dtype %d",
		      v.obs_dtype);
		for (uint64_t i = 0; o && i < v.obs_bytes; i++)
			sum += o[i];
		for (uint32_t i = 0; v.mask && i < v.mask_len; i++)
			sum += v.mask[i];
		for (uint32_t i = 0; v.extras && i < v.extras_len; i++)
			sum += v.extras[i];
		if (out)
			*out = v;
	}
	free(c);
	/* Keep the reads observable. */
	__asm__ volatile("" : : "r"(sum));
	return rc;
}

static void check_flatc_full(void)
{
	xr_exp_view v;
	int rc = verify_copy(flatc_full, sizeof(flatc_full), &v);

	CHECK(rc == 0, "flatc full record rejected");
	if (rc)
		return;
	CHECK(v.f.seq == 1234567890123ull && v.f.t_ns == 99 &&
	      v.f.game_id == 7 && v.f.player_id == 1 && v.f.turn == 3 &&
	      v.f.action == -4 && v.f.reward == 0.5f && v.f.done &&
	      !v.f.truncated, "flatc full: scalars");
	/* Built before the schema had them: the defaults. */
	CHECK(v.f.applied == -1 && v.f.applied_by == XR_SRC_NONE,
	      "flatc full: applied %d by %u, want -1 by NONE", v.f.applied,
	      v.f.applied_by);
	CHECK(v.obs_dtype == XR_DTYPE_I16 && v.obs_ndim == 2 &&
	      v.obs_dims[0] == 2 && v.obs_dims[1] == 3 && v.obs_bytes == 12,
	      "flatc full: tensor header");
	CHECK(v.mask_len == 3 && v.extras_len == 1, "flatc full: vectors");
}

static void check_flatc_min(void)
{
	xr_exp_view v;
	int rc = verify_copy(flatc_min, sizeof(flatc_min), &v);

	CHECK(rc == 0, "flatc minimal record rejected");
	if (rc)
		return;
	CHECK(v.f.turn == 5 && v.f.seq == 0 && v.f.t_ns == 0 &&
	      v.f.game_id == 0 && v.f.player_id == 0 && v.f.action == 0 &&
	      v.f.reward == 0.0f && !v.f.done && !v.f.truncated &&
	      v.f.applied == -1 && v.f.applied_by == XR_SRC_NONE,
	      "flatc min: defaults");
	CHECK(!v.obs && v.obs_bytes == 0 && v.obs_ndim == 0 && !v.mask &&
	      !v.mask_len && !v.extras && !v.extras_len,
	      "flatc min: absent vectors");
}

/* flatc with the fields: applied 0 (written, not its default -1) by POLICY. */
static void check_flatc_applied(void)
{
	xr_exp_view v;
	int rc = verify_copy(flatc_applied, sizeof(flatc_applied), &v);

	CHECK(rc == 0, "flatc record with applied rejected");
	if (rc)
		return;
	CHECK(v.f.turn == 2 && v.f.action == 5 && v.f.applied == 0 &&
	      v.f.applied_by == XR_SRC_POLICY && !v.obs,
	      "flatc applied: turn %u action %d applied %d by %u", v.f.turn,
	      v.f.action, v.f.applied, v.f.applied_by);
}

/* Exact contents of the flatc data, checked once outside verify_copy. */
static void check_flatc_data(void)
{
	static const uint8_t data[12] = {1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0};
	static const uint8_t mask[3] = {1, 0, 1};
	xr_exp_view v;

	if (xr_exp_view_init(&v, flatc_full, sizeof(flatc_full)))
		return;
	CHECK(v.obs && !memcmp(v.obs, data, 12), "flatc full: obs bytes");
	CHECK(v.mask && !memcmp(v.mask, mask, 3), "flatc full: mask bytes");
	CHECK(v.extras && v.extras[0] == 0xff, "flatc full: extras bytes");
}

static void put16(uint8_t *p, uint16_t x)
{
	memcpy(p, &x, 2);
}

static void put32(uint8_t *p, uint32_t x)
{
	memcpy(p, &x, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t x;

	memcpy(&x, p, 4);
	return x;
}

/*
 * Hand-made buffers in shapes our builder never produces:
 *   vtable after its table (negative soffset), a short vtable (only turn),
 *   a long vtable (slots past the schema), no file identifier.
 */
static void check_hand_built(void)
{
	uint8_t b[64];
	xr_exp_view v;

	/* 0: root = 8 | 4: zero | 8: table {soffset -8, u32 turn 77} |
	 * 16: vtable {14, 8, 0, 0, 0, 0, 4} */
	memset(b, 0, sizeof(b));
	put32(b, 8);
	put32(b + 8, (uint32_t)-8);
	put32(b + 12, 77);
	put16(b + 16, 14);
	put16(b + 18, 8);
	put16(b + 28, 4);
	CHECK(verify_copy(b, 32, &v) == 0 && v.f.turn == 77 && !v.obs,
	      "vtable after table rejected");
	/* The same vtable with slots for 16 fields; slots 14 and 15 are
	 * fields a newer schema added: ignored. */
	put16(b + 16, 36);
	put16(b + 48, 4);
	put16(b + 50, 4);
	CHECK(verify_copy(b, 52, &v) == 0 && v.f.turn == 77 &&
	      v.f.applied == -1 && v.f.applied_by == XR_SRC_NONE,
	      "long vtable rejected");
	/* ...but the vtable must fit in the buffer. */
	CHECK(verify_copy(b, 51, NULL) == XR_EBADREC,
	      "vtable past the end accepted");
	/* Slots 12 and 13, applied and applied_by, both on the u32 at +4
	 * (77): read as stored. */
	put16(b + 44, 4);
	put16(b + 46, 4);
	CHECK(verify_copy(b, 52, &v) == 0 && v.f.applied == 77 &&
	      v.f.applied_by == 77, "applied/applied_by in a long vtable");

	/* Root at 4, directly after the root offset: no room for an
	 * identifier. table {soffset -8 -> vtable 12}, vtable {6, 4, 0}. */
	memset(b, 0, sizeof(b));
	put32(b, 4);
	put32(b + 4, (uint32_t)-8);
	put16(b + 12, 6);
	put16(b + 14, 4);
	CHECK(verify_copy(b, 20, &v) == 0 && v.f.seq == 0,
	      "root at 4 rejected");
	/* vtable of size 4: no fields at all. */
	put16(b + 12, 4);
	CHECK(verify_copy(b, 16, &v) == 0, "empty vtable rejected");
}

/* Shape used by most targeted cases: i16 [2,3], mask 3, extras 2. */
static xr_exp_template tmpl;
static uint8_t *good;   /* a valid record of tmpl, 64-aligned + skew */
static uint8_t *good_base;

static void make_good(const xr_exp_shape *s, xr_exp_template *t,
		      uint8_t **base, uint8_t **rec)
{
	xr_exp_fields f = {.seq = 1, .t_ns = 2, .game_id = 3, .player_id = 4,
			   .turn = 5, .action = 6, .reward = 7.0f,
			   .done = true, .applied = 9,
			   .applied_by = XR_SRC_AGENT};
	xr_exp_slots slots;
	int rc = xr_exp_template_init(t, s);

	if (rc) {
		fprintf(stderr, "template_init failed: %d\n", rc);
		exit(1);
	}
	*base = aligned_alloc(64, (t->size + 64 + 63) & ~63u);
	if (!*base) {
		perror("aligned_alloc");
		exit(1);
	}
	*rec = *base + XR_EXP_DEST_SKEW;
	xr_exp_build(t, *rec, &f, &slots);
	for (uint64_t i = 0; i < t->obs_bytes; i++)
		((uint8_t *)slots.obs)[i] = (uint8_t)(i * 7 + 1);
	if (slots.mask)
		memset(slots.mask, 1, s->mask_len);
	if (slots.extras)
		memset(slots.extras, 0xee, s->extras_len);
}

/* A patched copy of good must be rejected (or accepted, per expect). */
#define PATCH(expect, what, ...)                                              \
	do {                                                                  \
		uint8_t *b_ = malloc(tmpl.size);                              \
		uint8_t *b = b_;                                              \
		int rc_;                                                      \
		memcpy(b, good, tmpl.size);                                   \
		__VA_ARGS__;                                                  \
		rc_ = verify_copy(b, tmpl.size, NULL);                        \
		CHECK(rc_ == (expect), "%s: got %d", what, rc_);              \
		free(b_);                                                     \
	} while (0)

/* Positions in our layout (record/experience.c): the Experience table at
 * 44 (64 bytes) with its vtable at 8, the Tensor table at 120 with its
 * vtable at 108, the shape vector at 136. */
enum { EXP = 44, EXP_SIZE = 64, EXP_VT = 8, TEN = 120, TEN_VT = 108, SHAPE = 136 };

/* Vtable entry of schema id `id` in our layout. */
#define SLOT(id) (EXP_VT + 4 + 2 * (id))

static void check_targeted(void)
{
	const uint32_t n = tmpl.size;
	const uint32_t ovec = EXP + 32; /* obs uoffset slot */
	const uint32_t mvec = EXP + 44; /* legal_mask uoffset slot */

	PATCH(0, "unpatched record");

	/* Root offset. */
	PATCH(XR_EBADREC, "root = len", put32(b, n));
	PATCH(XR_EBADREC, "root = len - 2", put32(b, n - 2));
	PATCH(XR_EBADREC, "root = 0xfffffffc", put32(b, 0xfffffffc));
	PATCH(XR_EBADREC, "root unaligned", put32(b, EXP + 1));
	PATCH(XR_EBADREC, "root = 0", put32(b, 0));

	/* File identifier. */
	PATCH(XR_EBADREC, "identifier XREY", memcpy(b + 4, "XREY", 4));
	PATCH(XR_EBADREC, "identifier ABCD", memcpy(b + 4, "ABCD", 4));
	PATCH(0, "no identifier (zero)", memset(b + 4, 0, 4));
	PATCH(0, "no identifier (not text)", memcpy(b + 4, "\0REX", 4));

	/* soffset and vtable. */
	PATCH(XR_EBADREC, "vtable before buffer", put32(b + EXP, 0x7fffffff));
	PATCH(XR_EBADREC, "vtable past end", put32(b + EXP, (uint32_t)-(int32_t)n));
	PATCH(XR_EBADREC, "vtable odd", put32(b + EXP, EXP - EXP_VT - 1));
	PATCH(XR_EBADREC, "vtable size 2", put16(b + EXP_VT, 2));
	PATCH(XR_EBADREC, "vtable size 0", put16(b + EXP_VT, 0));
	PATCH(XR_EBADREC, "vtable size odd", put16(b + EXP_VT, 27));
	PATCH(XR_EBADREC, "vtable size huge", put16(b + EXP_VT, 0xfffe));
	PATCH(XR_EBADREC, "table size huge", put16(b + EXP_VT + 2, 0xffff));
	PATCH(XR_EBADREC, "table size 3", put16(b + EXP_VT + 2, 3));
	PATCH(XR_EBADREC, "tensor vtable out of range",
	      put32(b + TEN, 0x80000000u));
	PATCH(XR_EBADREC, "tensor table size past end",
	      put16(b + TEN_VT + 2, (uint16_t)(n - TEN + 1)));
	/* A vtable shorter than the schema: later fields default. */
	PATCH(0, "short vtable", put16(b + EXP_VT, 4 + 2 * 5));

	/* Field placement. */
	PATCH(XR_EBADREC, "seq outside table", put16(b + EXP_VT + 4, EXP_SIZE));
	PATCH(XR_EBADREC, "seq straddles table end",
	      put16(b + EXP_VT + 4, EXP_SIZE - 4));
	PATCH(XR_EBADREC, "seq misaligned", put16(b + EXP_VT + 4, 6));
	PATCH(XR_EBADREC, "seq over soffset", put16(b + EXP_VT + 4, 2));
	PATCH(XR_EBADREC, "game_id misaligned", put16(b + EXP_VT + 8, 21));
	PATCH(XR_EBADREC, "applied misaligned", put16(b + SLOT(12), 54));
	PATCH(XR_EBADREC, "applied outside table", put16(b + SLOT(12), EXP_SIZE));
	PATCH(XR_EBADREC, "applied_by outside table",
	      put16(b + SLOT(13), EXP_SIZE));
	PATCH(0, "seq absent", put16(b + EXP_VT + 4, 0));
	PATCH(XR_EBADREC, "dtype outside tensor table",
	      put16(b + TEN_VT + 4, 16));

	/* uoffsets. */
	PATCH(XR_EBADREC, "obs uoffset out of range",
	      put32(b + ovec, 0xfffffff0u));
	PATCH(XR_EBADREC, "obs uoffset to end", put32(b + ovec, n - ovec));
	PATCH(XR_EBADREC, "obs uoffset unaligned",
	      put32(b + ovec, get32(b + ovec) + 2));
	PATCH(XR_EBADREC, "mask uoffset out of range",
	      put32(b + mvec, n - mvec));
	PATCH(XR_EBADREC, "mask uoffset wraps 32 bits",
	      put32(b + mvec, 0xfffffffcu));
	PATCH(0, "obs absent", put16(b + EXP_VT + 4 + 2 * 5, 0));

	/* Vector lengths. */
	PATCH(XR_EBADREC, "mask length 0xffffffff",
	      put32(b + tmpl.off_mask - 4, 0xffffffffu));
	PATCH(XR_EBADREC, "mask length one past end",
	      put32(b + tmpl.off_mask - 4, n - tmpl.off_mask + 1));
	PATCH(XR_EBADREC, "extras length 0x80000000",
	      put32(b + tmpl.off_extras - 4, 0x80000000u));
	/* 4 * 0x40000001 wraps to 4 in 32 bits. */
	PATCH(XR_EBADREC, "shape length wraps 32 bits",
	      put32(b + SHAPE, 0x40000001u));
	PATCH(XR_EBADREC, "shape length 0x40000000",
	      put32(b + SHAPE, 0x40000000u));
	PATCH(XR_EBADREC, "data length past end",
	      put32(b + tmpl.off_obs - 4, n));
	PATCH(XR_EBADREC, "data length 0xffffffff",
	      put32(b + tmpl.off_obs - 4, 0xffffffffu));
	PATCH(0, "empty mask vector reads as absent",
	      put32(b + tmpl.off_mask - 4, 0));

	/* Tensor contents. */
	PATCH(XR_EBADREC, "dtype 12", b[TEN + 12] = 12);
	PATCH(XR_EBADREC, "dtype 255", b[TEN + 12] = 255);
	PATCH(XR_EBADREC, "dtype u8 with i16 data size", b[TEN + 12] = 0);
	PATCH(0, "dtype u16 (same size)", b[TEN + 12] = 2);
	PATCH(XR_EBADREC, "dim changed", put32(b + SHAPE + 4, 3));
	PATCH(XR_EBADREC, "dim 0", put32(b + SHAPE + 4, 0));
	PATCH(XR_EBADREC, "dim -2", put32(b + SHAPE + 4, (uint32_t)-2));
	PATCH(XR_EBADREC, "shape emptied (scalar, wrong size)",
	      put32(b + SHAPE, 0));
	PATCH(0, "dims swapped", put32(b + SHAPE + 4, 3);
	      put32(b + SHAPE + 8, 2));
	PATCH(XR_EBADREC, "data length 0", put32(b + tmpl.off_obs - 4, 0));
	PATCH(XR_EBADREC, "data absent", put16(b + TEN_VT + 8, 0));
	PATCH(0, "shape absent and data one element",
	      put16(b + TEN_VT + 6, 0); put32(b + tmpl.off_obs - 4, 2));
}

/* A patched copy of good, read: 0 and *v, or the verifier's error. */
static int read_patched(xr_exp_view *v, uint16_t slot12, uint16_t slot13,
			int vt_fields, int by)
{
	uint8_t *b = malloc(tmpl.size);
	int rc;

	if (!b) {
		perror("malloc");
		exit(1);
	}
	memcpy(b, good, tmpl.size);
	put16(b + SLOT(12), slot12);
	put16(b + SLOT(13), slot13);
	if (vt_fields >= 0)
		put16(b + EXP_VT, (uint16_t)(4 + 2 * vt_fields));
	if (by >= 0)
		b[tmpl.off_applied_by] = (uint8_t)by;
	rc = verify_copy(b, tmpl.size, v);
	free(b);
	return rc;
}

/* applied and applied_by: read where the vtable says, the schema's
 * defaults (-1, NONE) where it says nothing -- absent slots or a vtable
 * that ends before them, as an older writer's does -- and any applied_by
 * byte accepted as it is (a newer writer's source; see record/verify.c). */
static void check_applied(void)
{
	const uint16_t s12 = (uint16_t)(tmpl.off_applied - EXP);
	const uint16_t s13 = (uint16_t)(tmpl.off_applied_by - EXP);
	xr_exp_view v;

	CHECK(read_patched(&v, s12, s13, -1, -1) == 0 && v.f.applied == 9 &&
	      v.f.applied_by == XR_SRC_AGENT, "applied as built");
	CHECK(read_patched(&v, 0, s13, -1, -1) == 0 && v.f.applied == -1 &&
	      v.f.applied_by == XR_SRC_AGENT, "applied absent: not -1");
	CHECK(read_patched(&v, s12, 0, -1, -1) == 0 && v.f.applied == 9 &&
	      v.f.applied_by == XR_SRC_NONE, "applied_by absent: not NONE");
	CHECK(read_patched(&v, s12, s13, 12, -1) == 0 && v.f.applied == -1 &&
	      v.f.applied_by == XR_SRC_NONE && v.f.turn == 5 && v.mask_len == 3,
	      "vtable of the 12 older fields: applied %d by %u", v.f.applied,
	      v.f.applied_by);
	CHECK(read_patched(&v, s12, s13, 13, -1) == 0 && v.f.applied == 9 &&
	      v.f.applied_by == XR_SRC_NONE, "vtable ending after applied");
	CHECK(read_patched(&v, s12, s13, -1, XR_SRC_ILLEGAL) == 0 &&
	      v.f.applied_by == XR_SRC_ILLEGAL, "applied_by ILLEGAL");
	CHECK(read_patched(&v, s12, s13, -1, XR_SRC_DELAY + 1) == 0 &&
	      v.f.applied_by == XR_SRC_DELAY + 1,
	      "applied_by past DELAY not passed through");
	CHECK(read_patched(&v, s12, s13, -1, 255) == 0 && v.f.applied_by == 255,
	      "applied_by 255 not passed through");
}

/* ndim 9: a record with 8 dims of 1 whose shape length is bumped to 9.
 * The 9th "dim" is the mask's length (1), so only the ndim rule fails. */
static void check_ndim(void)
{
	xr_exp_shape s = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 8,
			  .obs_dims = {1, 1, 1, 1, 1, 1, 1, 1}, .mask_len = 1};
	xr_exp_template t;
	uint8_t *base, *rec;

	make_good(&s, &t, &base, &rec);
	CHECK(verify_copy(rec, t.size, NULL) == 0, "ndim 8 rejected");
	CHECK(get32(rec + SHAPE + 4 + 32) == 1, "layout assumption");
	put32(rec + SHAPE, 9);
	CHECK(verify_copy(rec, t.size, NULL) == XR_EBADREC, "ndim 9 accepted");
	free(base);

	/* Product overflow: dims 65536 x 65536 x 1 with 0 data bytes is
	 * consistent only if the product wraps in 32 bits. */
	s.obs_ndim = 3;
	s.mask_len = 0;
	make_good(&s, &t, &base, &rec);
	put32(rec + SHAPE + 4, 65536);
	put32(rec + SHAPE + 8, 65536);
	put32(rec + t.off_obs - 4, 0);
	CHECK(verify_copy(rec, t.size, NULL) == XR_EBADREC,
	      "wrapping shape product accepted");
	/* 2^31 * 2 * ... in 64 bits also must not wrap: all dims max. */
	for (int i = 0; i < 3; i++)
		put32(rec + SHAPE + 4 + 4 * i, 0x7fffffff);
	CHECK(verify_copy(rec, t.size, NULL) == XR_EBADREC,
	      "huge shape product accepted");
	free(base);
}

/* Cutting the record anywhere before its last used byte must reject;
 * dropping only the trailing padding is harmless. */
static void check_truncations(const uint8_t *rec, size_t size, size_t used,
			      const char *what)
{
	int bad = 0;

	for (size_t len = 0; len < size; len++) {
		int rc = verify_copy(rec, len, NULL);

		if ((len < used && rc != XR_EBADREC) || (len >= used && rc)) {
			if (!bad++)
				fprintf(stderr, "%s: truncation to %zu: %d\n",
					what, len, rc);
		}
	}
	CHECK(bad == 0, "%s: %d truncations misjudged", what, bad);
	CHECK(xr_exp_verify(NULL, 0) == XR_EBADREC, "NULL buffer accepted");
	CHECK(xr_exp_view_init(NULL, rec, size) == XR_EBADREC,
	      "NULL view accepted");
}

/* Every byte, several values: reject, or a view that stays inside. */
static void check_corruptions(const uint8_t *rec, size_t size,
			      const char *what)
{
	uint8_t *b = malloc(size);
	unsigned long accepted = 0, total = 0;

	if (!b) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < size; i++) {
		const uint8_t o = rec[i];
		const uint8_t vals[] = {o ^ 0x01, o ^ 0x80, 0x00, 0xff,
					(uint8_t)(o + 4), (uint8_t)(o - 4),
					(uint8_t)(o ^ 0x40)};

		for (size_t k = 0; k < sizeof(vals); k++) {
			if (vals[k] == o)
				continue;
			memcpy(b, rec, size);
			b[i] = vals[k];
			accepted += verify_copy(b, size, NULL) == 0;
			total++;
		}
	}
	free(b);
	printf("%s: %lu single-byte corruptions, %lu still valid\n", what,
	       total, accepted);
}

int main(void)
{
	xr_exp_shape s = {.obs_dtype = XR_DTYPE_I16, .obs_ndim = 2,
			  .obs_dims = {2, 3}, .mask_len = 3,
			  .extras_len = 2};

	make_good(&s, &tmpl, &good_base, &good);

	check_flatc_full();
	check_flatc_min();
	check_flatc_applied();
	check_flatc_data();
	check_hand_built();
	check_targeted();
	check_applied();
	check_ndim();
	check_truncations(good, tmpl.size, tmpl.off_obs + tmpl.obs_bytes,
			  "builder record");
	check_truncations(flatc_full, sizeof(flatc_full), sizeof(flatc_full),
			  "flatc record");
	check_truncations(flatc_min, sizeof(flatc_min), sizeof(flatc_min),
			  "flatc minimal record");
	check_truncations(flatc_applied, sizeof(flatc_applied),
			  sizeof(flatc_applied), "flatc record with applied");
	check_corruptions(good, tmpl.size, "builder record");
	check_corruptions(flatc_full, sizeof(flatc_full), "flatc record");
	free(good_base);

	if (failures) {
		fprintf(stderr, "test_record_verify: %d check(s) failed\n",
			failures);
		return 1;
	}
	printf("test_record_verify: ok\n");
	return 0;
}
