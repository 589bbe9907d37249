/* SPDX-License-Identifier: MIT */
/*
 * Build records of many shapes with xr_exp_build(), read them back with
 * xr_exp_view_init(), and check every field, every offset the template
 * promises, the 64-byte data alignment at ring skew, that build writes
 * every fixed byte (no stale ring bytes survive) yet never touches the
 * caller's obs/mask/extras bytes, and that the layout is the same for every
 * record of a template. Runs without huge pages; meaningful under ASan.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xring/error.h"
#include "xring/record.h"

#include "record_check.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic across runs and machines. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* A destination like ring space: 64-aligned + XR_EXP_DEST_SKEW, filled with
 * junk so that bytes build forgets to write show up. */
struct dest {
	uint8_t *base;
	uint8_t *p;
};

static void dest_alloc(struct dest *d, uint32_t size, uint8_t junk)
{
	size_t n = ((size_t)size + XR_EXP_DEST_SKEW + 63) & ~(size_t)63;

	d->base = aligned_alloc(64, n);
	if (!d->base) {
		perror("aligned_alloc");
		exit(1);
	}
	memset(d->base, junk, n);
	d->p = d->base + XR_EXP_DEST_SKEW;
}

static void fill(uint8_t *p, uint64_t n, uint32_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static int filled(const uint8_t *p, uint64_t n, uint32_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(seed + i * 7))
			return 0;
	return 1;
}

static void random_fields(xr_exp_fields *f)
{
	static const float rewards[] = {0.0f, -1.0f, 1.5f, 1e-30f, -3.4e38f};
	uint64_t r = rnd();

	f->seq = rnd();
	f->t_ns = rnd();
	f->game_id = (uint32_t)rnd();
	f->player_id = (uint32_t)rnd();
	f->turn = (uint32_t)rnd();
	f->action = (int32_t)(uint32_t)rnd();
	f->reward = rewards[r % 5] + (float)(r % 1000) / 7.0f;
	f->done = (r >> 20) & 1;
	f->truncated = (r >> 21) & 1;
	f->applied = (int32_t)(uint32_t)rnd();
	f->applied_by = (uint8_t)(r >> 24); /* any byte: unknown sources too */
}

static int fields_equal(const xr_exp_fields *a, const xr_exp_fields *b)
{
	return a->seq == b->seq && a->t_ns == b->t_ns &&
	       a->game_id == b->game_id && a->player_id == b->player_id &&
	       a->turn == b->turn && a->action == b->action &&
	       !memcmp(&a->reward, &b->reward, sizeof(float)) &&
	       a->done == b->done && a->truncated == b->truncated &&
	       a->applied == b->applied && a->applied_by == b->applied_by;
}

/* Build one record of shape s into a fresh destination, check it, and
 * return the destination (caller frees) so layouts can be compared. */
static void check_one(const xr_exp_template *t, const xr_exp_fields *f,
		      uint8_t junk, struct dest *d, const char *what)
{
	const xr_exp_shape *s = &t->shape;
	xr_exp_slots slots;
	xr_exp_view v;
	int rc;

	dest_alloc(d, t->size, junk);
	/* Pre-fill the caller's regions: build must leave them alone. */
	fill(d->p + t->off_obs, t->obs_bytes, 11);
	if (s->mask_len)
		fill(d->p + t->off_mask, s->mask_len, 22);
	if (s->extras_len)
		fill(d->p + t->off_extras, s->extras_len, 33);

	xr_exp_build(t, d->p, f, &slots);

	CHECK(slots.obs == d->p + t->off_obs, "%s: obs slot", what);
	CHECK(slots.mask == (s->mask_len ? d->p + t->off_mask : NULL),
	      "%s: mask slot", what);
	CHECK(slots.extras == (s->extras_len ? d->p + t->off_extras : NULL),
	      "%s: extras slot", what);
	CHECK(((uintptr_t)slots.obs & (XR_EXP_DATA_ALIGN - 1)) == 0,
	      "%s: obs data at %p not 64-aligned", what, slots.obs);
	CHECK(filled(d->p + t->off_obs, t->obs_bytes, 11),
	      "%s: build touched obs bytes", what);
	CHECK(!s->mask_len || filled(d->p + t->off_mask, s->mask_len, 22),
	      "%s: build touched mask bytes", what);
	CHECK(!s->extras_len ||
	      filled(d->p + t->off_extras, s->extras_len, 33),
	      "%s: build touched extras bytes", what);

	rc = xr_exp_view_init(&v, d->p, t->size);
	CHECK(rc == 0, "%s: view_init: %s", what, xr_strerror(rc));
	if (rc)
		return;
	CHECK(fields_equal(&v.f, f), "%s: scalar fields differ", what);
	CHECK(v.obs_dtype == s->obs_dtype, "%s: dtype %d != %d", what,
	      v.obs_dtype, s->obs_dtype);
	CHECK(v.obs_ndim == s->obs_ndim, "%s: ndim %u != %u", what,
	      v.obs_ndim, s->obs_ndim);
	for (uint32_t i = 0; i < s->obs_ndim && i < XR_EXP_MAX_DIMS; i++)
		CHECK(v.obs_dims[i] == s->obs_dims[i], "%s: dim %u", what, i);
	CHECK(v.obs == d->p + t->off_obs, "%s: view obs pointer", what);
	CHECK(v.obs_bytes == t->obs_bytes, "%s: obs bytes %llu != %llu", what,
	      (unsigned long long)v.obs_bytes,
	      (unsigned long long)t->obs_bytes);
	CHECK(v.mask == (s->mask_len ? d->p + t->off_mask : NULL),
	      "%s: view mask pointer", what);
	CHECK(v.mask_len == s->mask_len, "%s: mask len", what);
	CHECK(v.extras == (s->extras_len ? d->p + t->off_extras : NULL),
	      "%s: view extras pointer", what);
	CHECK(v.extras_len == s->extras_len, "%s: extras len", what);

	/* The scalar offsets the template publishes are where the values
	 * are: a strided batch view reads them there. */
	CHECK(!memcmp(d->p + t->off_seq, &f->seq, 8), "%s: off_seq", what);
	CHECK(!memcmp(d->p + t->off_t_ns, &f->t_ns, 8), "%s: off_t_ns", what);
	CHECK(!memcmp(d->p + t->off_game_id, &f->game_id, 4),
	      "%s: off_game_id", what);
	CHECK(!memcmp(d->p + t->off_player_id, &f->player_id, 4),
	      "%s: off_player_id", what);
	CHECK(!memcmp(d->p + t->off_turn, &f->turn, 4), "%s: off_turn", what);
	CHECK(!memcmp(d->p + t->off_action, &f->action, 4),
	      "%s: off_action", what);
	CHECK(!memcmp(d->p + t->off_reward, &f->reward, 4),
	      "%s: off_reward", what);
	CHECK(d->p[t->off_done] == f->done, "%s: off_done", what);
	CHECK(d->p[t->off_truncated] == f->truncated, "%s: off_truncated",
	      what);
	CHECK(!memcmp(d->p + t->off_applied, &f->applied, 4),
	      "%s: off_applied", what);
	CHECK(d->p[t->off_applied_by] == f->applied_by, "%s: off_applied_by",
	      what);
	/* Scalars naturally aligned in memory, so numpy views need no
	 * unaligned access. */
	CHECK(((uintptr_t)(d->p + t->off_seq) & 7) == 0 &&
	      ((uintptr_t)(d->p + t->off_t_ns) & 7) == 0 &&
	      ((uintptr_t)(d->p + t->off_game_id) & 3) == 0 &&
	      ((uintptr_t)(d->p + t->off_reward) & 3) == 0 &&
	      ((uintptr_t)(d->p + t->off_applied) & 3) == 0,
	      "%s: scalars misaligned", what);
	/* Verifier agrees with itself, and trailing padding is optional. */
	CHECK(xr_exp_verify(d->p, t->size) == 0, "%s: verify", what);
}

static void check_template_invariants(const xr_exp_template *t,
				      const char *what)
{
	const xr_exp_shape *s = &t->shape;
	uint64_t end = t->off_obs + t->obs_bytes;

	CHECK(t->size % 8 == 0, "%s: size %u not a multiple of 8", what,
	      t->size);
	CHECK(end <= t->size && t->size - end < 8, "%s: size %u vs end %llu",
	      what, t->size, (unsigned long long)end);
	CHECK(t->head_len <= sizeof(t->head), "%s: head_len %u", what,
	      t->head_len);
	CHECK(t->head_len <= t->off_obs, "%s: head covers obs", what);
	CHECK((XR_EXP_DEST_SKEW + t->off_obs) % XR_EXP_DATA_ALIGN == 0,
	      "%s: off_obs %u not 64-aligned at skew", what, t->off_obs);
	CHECK(!s->mask_len || t->head_len <= t->off_mask,
	      "%s: head covers mask", what);
	CHECK(!s->extras_len || t->head_len <= t->off_extras,
	      "%s: head covers extras", what);
	CHECK(s->mask_len || t->off_mask == 0, "%s: off_mask for no mask",
	      what);
	CHECK(s->extras_len || t->off_extras == 0,
	      "%s: off_extras for no extras", what);
	CHECK(t->off_mask % 4 == 0 && t->off_extras % 4 == 0,
	      "%s: vector data not 4-aligned", what);
}

static void check_shape(const xr_exp_shape *s, const char *what)
{
	xr_exp_template t;
	xr_exp_fields f[3];
	struct dest d[3];
	uint8_t junk[3] = {0x00, 0xa5, 0xff};
	int rc = xr_exp_template_init(&t, s);

	CHECK(rc == 0, "%s: template_init: %d", what, rc);
	if (rc)
		return;
	check_template_invariants(&t, what);

	for (int i = 0; i < 3; i++) {
		random_fields(&f[i]);
		check_one(&t, &f[i], junk[i], &d[i], what);
	}
	/* Constant layout: records of one template differ only in the scalar
	 * slots and the caller's bytes, whatever junk the ring held before.
	 * Make records 1 and 2 equal in those and compare all bytes. */
	memcpy(d[1].p + t.off_seq, d[2].p + t.off_seq, 8);
	memcpy(d[1].p + t.off_t_ns, d[2].p + t.off_t_ns, 8);
	memcpy(d[1].p + t.off_game_id, d[2].p + t.off_game_id, 4);
	memcpy(d[1].p + t.off_player_id, d[2].p + t.off_player_id, 4);
	memcpy(d[1].p + t.off_turn, d[2].p + t.off_turn, 4);
	memcpy(d[1].p + t.off_action, d[2].p + t.off_action, 4);
	memcpy(d[1].p + t.off_reward, d[2].p + t.off_reward, 4);
	d[1].p[t.off_done] = d[2].p[t.off_done];
	d[1].p[t.off_truncated] = d[2].p[t.off_truncated];
	memcpy(d[1].p + t.off_applied, d[2].p + t.off_applied, 4);
	d[1].p[t.off_applied_by] = d[2].p[t.off_applied_by];
	CHECK(!memcmp(d[1].p, d[2].p, t.size),
	      "%s: records of one template differ outside their values",
	      what);
	/* And the head really is the record's prefix. */
	CHECK(!memcmp(d[0].p, t.head, t.off_seq),
	      "%s: record prefix != template head", what);
	for (int i = 0; i < 3; i++)
		free(d[i].base);
}

static void test_shapes(void)
{
	static const uint32_t masks[] = {0, 1, 3, 4, 400, 4097};
	static const uint32_t extras[] = {0, 1, 5, 64};
	char what[160];
	int n = 0;

	for (int dt = 0; dt < XR_DTYPE_COUNT; dt++) {
		for (uint32_t nd = 0; nd <= XR_EXP_MAX_DIMS; nd++) {
			for (int k = 0; k < 6; k++) {
				xr_exp_shape s = {0};

				s.obs_dtype = (xr_dtype)dt;
				s.obs_ndim = nd;
				for (uint32_t i = 0; i < nd; i++)
					s.obs_dims[i] = 1 + (int32_t)(rnd() %
						(nd > 4 ? 3 : 9));
				s.mask_len = masks[(uint32_t)(k + dt) % 6];
				s.extras_len = extras[(uint32_t)(k + nd) % 4];
				snprintf(what, sizeof(what),
					 "%s ndim %u mask %u extras %u",
					 xr_dtype_name(s.obs_dtype), nd,
					 s.mask_len, s.extras_len);
				check_shape(&s, what);
				n++;
			}
		}
	}
	/* The shape the docs use as their example, and a large one. */
	{
		xr_exp_shape s = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 3,
				  .obs_dims = {9, 20, 20}, .mask_len = 400};
		xr_exp_template t;

		check_shape(&s, "docs example u8 9x20x20 mask 400");
		/* docs/record-format.md prints these numbers. */
		if (!xr_exp_template_init(&t, &s)) {
			CHECK(t.off_seq == 48 && t.off_t_ns == 56 &&
			      t.off_game_id == 64 && t.off_player_id == 68 &&
			      t.off_turn == 72 && t.off_action == 80 &&
			      t.off_reward == 84 && t.off_done == 96 &&
			      t.off_truncated == 97 && t.off_applied_by == 98 &&
			      t.off_applied == 100,
			      "docs example: scalar offsets moved");
			CHECK(t.off_mask == 156 && t.off_obs == 560 &&
			      t.obs_bytes == 3600 && t.size == 4160 &&
			      t.head_len == 156 && t.off_extras == 0,
			      "docs example: mask %u obs %u size %u head %u",
			      t.off_mask, t.off_obs, t.size, t.head_len);
		}
	}
	{
		xr_exp_shape s = {.obs_dtype = XR_DTYPE_F32, .obs_ndim = 4,
				  .obs_dims = {3, 64, 64, 17},
				  .mask_len = 4096, .extras_len = 100};

		check_shape(&s, "large f32 3x64x64x17");
	}
	printf("roundtrip: %d shapes ok\n", n + 2);
}

static void test_bad_shapes(void)
{
	xr_exp_template t;
	xr_exp_shape ok = {.obs_dtype = XR_DTYPE_U8, .obs_ndim = 1,
			   .obs_dims = {4}};
	xr_exp_shape s;

	CHECK(xr_exp_template_init(&t, &ok) == 0, "valid shape refused");
	CHECK(xr_exp_template_init(NULL, &ok) == -EINVAL, "NULL template");
	CHECK(xr_exp_template_init(&t, NULL) == -EINVAL, "NULL shape");
	s = ok;
	s.obs_dtype = (xr_dtype)XR_DTYPE_COUNT;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "dtype 12 accepted");
	s.obs_dtype = (xr_dtype)-1;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "dtype -1 accepted");
	s = ok;
	s.obs_ndim = XR_EXP_MAX_DIMS + 1;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "ndim 9 accepted");
	s = ok;
	s.obs_dims[0] = 0;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "dim 0 accepted");
	s.obs_dims[0] = -5;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "dim -5 accepted");
	s = ok;
	s.obs_ndim = 3;
	s.obs_dims[0] = s.obs_dims[1] = s.obs_dims[2] = 0x7fffffff;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL,
	      "overflowing obs accepted");
	s = ok;
	s.obs_dtype = XR_DTYPE_F64;
	s.obs_dims[0] = 0x10000000; /* 2 GiB of data */
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "2 GiB obs accepted");
	s = ok;
	s.mask_len = 0x7ffffff0;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL, "2 GiB mask accepted");
	s = ok;
	s.mask_len = 0xffffffff;
	s.extras_len = 0xffffffff;
	CHECK(xr_exp_template_init(&t, &s) == -EINVAL,
	      "4 GiB mask+extras accepted");
	/* Dims past ndim are ignored. */
	s = ok;
	s.obs_dims[5] = -1;
	CHECK(xr_exp_template_init(&t, &s) == 0 && t.shape.obs_dims[5] == 0,
	      "dims past ndim not ignored");
}

static void test_dtypes(void)
{
	static const size_t sizes[XR_DTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 8, 8,
						     2, 4, 8, 1};
	char upper[16];

	for (int d = 0; d < XR_DTYPE_COUNT; d++) {
		const char *name = xr_dtype_name((xr_dtype)d);

		CHECK(name != NULL, "dtype %d has no name", d);
		if (!name)
			continue;
		CHECK(xr_dtype_size((xr_dtype)d) == sizes[d], "size of %s",
		      name);
		CHECK(xr_dtype_parse(name) == d, "parse %s", name);
		for (size_t i = 0; i <= strlen(name) && i < sizeof(upper); i++)
			upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ?
					  name[i] - 32 : name[i]);
		CHECK(xr_dtype_parse(upper) == d, "parse %s", upper);
	}
	CHECK(xr_dtype_size((xr_dtype)XR_DTYPE_COUNT) == 0, "size of 12");
	CHECK(xr_dtype_size((xr_dtype)-1) == 0, "size of -1");
	CHECK(xr_dtype_name((xr_dtype)XR_DTYPE_COUNT) == NULL, "name of 12");
	CHECK(xr_dtype_parse("f128") == -EINVAL, "parse f128");
	CHECK(xr_dtype_parse("") == -EINVAL, "parse empty");
	CHECK(xr_dtype_parse(NULL) == -EINVAL, "parse NULL");
	CHECK(!strcmp(xr_dtype_name(XR_DTYPE_BOOL), "bool"), "bool name");
}

/* Edge values of every scalar survive the trip bit for bit. */
static void test_edge_scalars(void)
{
	xr_exp_shape s = {.obs_dtype = XR_DTYPE_F16, .obs_ndim = 2,
			  .obs_dims = {2, 3}, .extras_len = 3};
	xr_exp_fields cases[4] = {
		{0, 0, 0, 0, 0, 0, 0.0f, false, false, 0, XR_SRC_NONE},
		{UINT64_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX,
		 INT32_MIN, -0.0f, true, true, INT32_MIN, UINT8_MAX},
		{1, 2, 3, 4, 5, INT32_MAX, INFINITY, true, false, INT32_MAX,
		 XR_SRC_ILLEGAL},
		{42, 43, 44, 45, 46, -1, NAN, false, true, -1, XR_SRC_NONE},
	};
	xr_exp_template t;
	struct dest d;

	CHECK(xr_exp_template_init(&t, &s) == 0, "edge template");
	for (int i = 0; i < 4; i++) {
		char what[32];

		snprintf(what, sizeof(what), "edge scalars %d", i);
		check_one(&t, &cases[i], 0x5a, &d, what);
		free(d.base);
	}
}

int main(void)
{
	test_dtypes();
	test_bad_shapes();
	test_edge_scalars();
	test_shapes();
	if (failures) {
		fprintf(stderr, "test_record_roundtrip: %d check(s) failed\n",
			failures);
		return 1;
	}
	printf("test_record_roundtrip: ok\n");
	return 0;
}
