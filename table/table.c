/* SPDX-License-Identifier: MIT */
/*
 * The replay table's bookkeeping (table.h). The structures each serve one
 * question and are kept in step by two transitions, xr__tb_fill() and unlive():
 *   insertion order (prev/next)   fifo/lifo samplers and removers
 *   dense array                   uniform draws in O(1)
 *   sum tree of p^alpha           prioritized draws in O(log n)
 *   min tree of positive p^alpha  the largest importance weight
 *   min tree of priorities of live items: the lowest-priority remover's
 *                                 choice (leased ones skipped at removal)
 * A slot goes FREE -> LIVE (fill) -> SPENT (unlive, while leased) -> FREE
 * (the last release), or LIVE -> FREE directly when no lease is held.
 */
#include "table_priv.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* xoshiro256**: fast, and 256 bits of state, so a long run of draws shows
 * no pattern the statistical tests could trip on. */
static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static void seed_rng(uint64_t *s, uint64_t seed)
{
	for (int i = 0; i < 4; i++) { /* splitmix64 fills the state */
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		s[i] = z ^ (z >> 31);
	}
}

/* Uniform in [0, 1), 53 bits. */
static double next_unit(uint64_t *s)
{
	return (double)(next_u64(s) >> 11) * 0x1p-53;
}

/* Uniform in [0, n) without modulo bias (Lemire's multiply-and-reject). */
static uint32_t next_below(uint64_t *s, uint32_t n)
{
	uint64_t m = (next_u64(s) >> 32) * n;

	if ((uint32_t)m < n) {
		uint32_t floor = (uint32_t)(-n) % n;
		while ((uint32_t)m < floor)
			m = (next_u64(s) >> 32) * n;
	}
	return (uint32_t)(m >> 32);
}

static double weight_of(const struct xr_tb *t, double p)
{
	return t->cfg.alpha == 1 ? p : pow(p, t->cfg.alpha);
}

static bool prioritized(const struct xr_tb *t)
{
	return t->cfg.sampler == XR_SAMPLER_PRIORITIZED;
}

static bool lowest_remover(const struct xr_tb *t)
{
	return t->cfg.remover == XR_REMOVER_LOWEST;
}

static int check_cfg(const struct xr_tb_cfg *c, const char **why)
{
	if (c->capacity == 0 || c->capacity > XR_TB_MAX_ITEMS)
		*why = "capacity must be 1 to 2^30 items";
	else if ((unsigned)c->sampler > XR_SAMPLER_LIFO)
		*why = "sampler must be uniform, prioritized, fifo or lifo";
	else if ((unsigned)c->remover > XR_REMOVER_LOWEST)
		*why = "remover must be fifo, lifo or lowest-priority";
	else if (!isfinite(c->alpha) || c->alpha < 0)
		*why = "alpha must be a finite number >= 0";
	else if (!isfinite(c->beta) || c->beta < 0)
		*why = "beta must be a finite number >= 0";
	else if (c->min_size > c->capacity)
		*why = "min_size must not exceed the capacity, or no sample could ever go";
	else
		return 0;
	return -EINVAL;
}

int xr__tb_init(struct xr_tb *t, const struct xr_tb_cfg *cfg, const char **why)
{
	uint32_t n = cfg->capacity;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = check_cfg(cfg, why);
	if (rc < 0)
		return rc;
	rc = xr_limiter_init(&t->lim, cfg->min_size, cfg->samples_per_insert, cfg->error_buffer,
			     why);
	if (rc < 0)
		return rc;
	t->cfg = *cfg;
	t->slot = calloc(n, sizeof(*t->slot));
	t->prio = calloc(n, sizeof(double));
	t->free = malloc(n * sizeof(uint32_t));
	t->prev = malloc(n * sizeof(uint32_t));
	t->next = malloc(n * sizeof(uint32_t));
	t->dense = malloc(n * sizeof(uint32_t));
	t->dense_at = malloc(n * sizeof(uint32_t));
	if (!t->slot || !t->prio || !t->free || !t->prev ||
	    !t->next || !t->dense || !t->dense_at)
		goto nomem;
	if (prioritized(t) &&
	    (xr_sumtree_init(&t->sum, n) < 0 || xr_mintree_init(&t->wmin, n) < 0))
		goto nomem;
	if (lowest_remover(t) && xr_mintree_init(&t->rmin, n) < 0)
		goto nomem;
	/* Slot 0 is handed out first: a small table stays in few pages. */
	for (uint32_t i = 0; i < n; i++)
		t->free[i] = n - 1 - i;
	t->nfree = n;
	t->oldest = t->newest = XR_TB_NO_SLOT;
	seed_rng(t->rng, cfg->seed);
	return 0;
nomem:
	xr__tb_free(t);
	*why = "not enough memory for a table of this capacity";
	return -ENOMEM;
}

void xr__tb_free(struct xr_tb *t)
{
	free(t->slot);
	free(t->gen_floor);
	free(t->prio);
	free(t->free);
	free(t->prev);
	free(t->next);
	free(t->dense);
	free(t->dense_at);
	xr_sumtree_free(&t->sum);
	xr_mintree_free(&t->wmin);
	xr_mintree_free(&t->rmin);
	memset(t, 0, sizeof(*t));
}

/* The slot of a key naming an item in state LIVE (or, with spent_ok, SPENT). */
static uint32_t slot_of(const struct xr_tb *t, uint64_t key, bool spent_ok)
{
	uint32_t slot = (uint32_t)key, gen = (uint32_t)(key >> 32);

	if (slot >= t->cfg.capacity || t->slot[slot].gen != gen)
		return XR_TB_NO_SLOT;
	if (t->slot[slot].state == XR_TB_LIVE || (spent_ok && t->slot[slot].state == XR_TB_SPENT))
		return slot;
	return XR_TB_NO_SLOT;
}

uint32_t xr__tb_slot(const struct xr_tb *t, uint64_t key)
{
	uint32_t slot = slot_of(t, key, true);

	if (slot != XR_TB_NO_SLOT && t->slot[slot].state == XR_TB_SPENT && !t->slot[slot].held)
		return XR_TB_NO_SLOT;
	return slot;
}

static void set_priority(struct xr_tb *t, uint32_t slot, double p)
{
	t->prio[slot] = p;
	if (prioritized(t)) {
		double w = weight_of(t, p);
		xr_sumtree_set(&t->sum, slot, w);
		xr_mintree_set(&t->wmin, slot, w > 0 ? w : INFINITY);
	}
	if (lowest_remover(t) && !t->slot[slot].hidden)
		xr_mintree_set(&t->rmin, slot, p);
}

/* table_priv.h */
void xr__tb_fill(struct xr_tb *t, uint32_t slot, double p)
{
	t->slot[slot].state = XR_TB_LIVE;
	t->slot[slot].times = 0;
	t->slot[slot].held = 0;
	t->prev[slot] = t->newest;
	t->next[slot] = XR_TB_NO_SLOT;
	if (t->newest != XR_TB_NO_SLOT)
		t->next[t->newest] = slot;
	else
		t->oldest = slot;
	t->newest = slot;
	t->dense_at[slot] = t->size;
	t->dense[t->size] = slot;
	t->size++;
	t->used++;
	set_priority(t, slot, p);
}

static void release_slot(struct xr_tb *t, uint32_t slot)
{
	t->slot[slot].state = XR_TB_FREE;
	t->free[t->nfree++] = slot;
	t->used--;
}

/* A live item leaves the table: out of every structure, counted as a
 * removal; its slot is free at once, or when its last lease ends. */
static void unlive(struct xr_tb *t, uint32_t slot)
{
	uint32_t p = t->prev[slot], n = t->next[slot], last;

	if (p != XR_TB_NO_SLOT)
		t->next[p] = n;
	else
		t->oldest = n;
	if (n != XR_TB_NO_SLOT)
		t->prev[n] = p;
	else
		t->newest = p;
	last = t->dense[--t->size];
	t->dense[t->dense_at[slot]] = last;
	t->dense_at[last] = t->dense_at[slot];
	if (prioritized(t)) {
		xr_sumtree_set(&t->sum, slot, 0);
		xr_mintree_set(&t->wmin, slot, INFINITY);
	}
	if (lowest_remover(t))
		xr_mintree_set(&t->rmin, slot, INFINITY);
	t->slot[slot].hidden = 0;
	t->lim.removes++;
	if (t->slot[slot].held)
		t->slot[slot].state = XR_TB_SPENT;
	else
		release_slot(t, slot);
}

/*
 * The lowest-priority live item no lease holds. rmin holds the priority of
 * every live item but those found leased here: samples and releases, the
 * frequent operations, leave it alone, and the leased items met on the way
 * down are taken out (+infinity, slot.hidden) until their last lease ends
 * (xr__tb_release puts them back). So each lease costs at most one hiding,
 * however many inserts look; and one call hides at most XR_TB_SKIP_MAX
 * before it gives up for now (the insert then waits, as for a table all
 * leased), so that a trainer leasing the lowest items on purpose makes no
 * insert cost more than that.
 */
static uint32_t lowest_unleased(struct xr_tb *t)
{
	for (uint32_t n = 0; n < XR_TB_SKIP_MAX && xr_mintree_min(&t->rmin) < INFINITY; n++) {
		uint32_t s = xr_mintree_argmin(&t->rmin);
		if (!t->slot[s].held)
			return s;
		t->slot[s].hidden = 1;
		xr_mintree_set(&t->rmin, s, INFINITY);
	}
	return XR_TB_NO_SLOT;
}

/* The live unleased item the remover takes, or XR_TB_NO_SLOT. */
static uint32_t victim(struct xr_tb *t)
{
	uint32_t s;

	switch (t->cfg.remover) {
	case XR_REMOVER_LOWEST:
		return lowest_unleased(t);
	case XR_REMOVER_LIFO: /* at most XR_TB_SKIP_MAX leased items stepped over */
		s = t->newest;
		for (uint32_t n = 0; s != XR_TB_NO_SLOT && t->slot[s].held; s = t->prev[s])
			if (++n == XR_TB_SKIP_MAX)
				return XR_TB_NO_SLOT;
		return s;
	default:
		s = t->oldest;
		for (uint32_t n = 0; s != XR_TB_NO_SLOT && t->slot[s].held; s = t->next[s])
			if (++n == XR_TB_SKIP_MAX)
				return XR_TB_NO_SLOT;
		return s;
	}
}

/* A priority must be a finite number >= 0, and in a prioritized table one
 * whose weight (p^alpha) leaves room for a whole table of such weights
 * below infinity: one trainer's huge priority would otherwise make the sum
 * infinite and every draw of every trainer meaningless. */
static bool bad_priority(const struct xr_tb *t, double p)
{
	if (!isfinite(p) || p < 0)
		return true;
	if (!prioritized(t))
		return false;
	double w = weight_of(t, p);
	return !isfinite(w) || w > DBL_MAX / (2.0 * t->cfg.capacity);
}

int xr__tb_insert(struct xr_tb *t, double p, uint64_t *key, uint32_t *slot,
		    uint64_t *evicted)
{
	uint32_t s;

	*evicted = 0;
	if (bad_priority(t, p))
		return -EINVAL;
	if (!xr_limiter_can_insert(&t->lim, 1))
		return -EAGAIN;
	if (!t->nfree) {
		s = victim(t);
		if (s == XR_TB_NO_SLOT)
			return -EBUSY;
		*evicted = xr__tb_key(t, s);
		unlive(t, s);
	}
	s = t->free[--t->nfree];
	/* Generation 0 is never handed out: key 0 means "no key" to callers
	 * (xr__tb_insert's evicted, the service's lease map). */
	if (++t->slot[s].gen == 0)
		t->slot[s].gen = 1;
	if (t->gen_floor && t->slot[s].gen <= t->gen_floor[s])
		t->slot[s].gen = t->gen_floor[s] + 1 ? t->gen_floor[s] + 1 : 1;
	xr__tb_fill(t, s, p);
	t->lim.inserts++;
	*key = xr__tb_key(t, s);
	*slot = s;
	return 0;
}

/* One lease and one sample on a live item; it leaves the table when it has
 * been sampled max_times_sampled times (its lease keeps its bytes). */
static void take(struct xr_tb *t, uint32_t slot)
{
	t->slot[slot].held++;
	t->leases++;
	t->slot[slot].times++;
	t->lim.samples++;
	if (t->cfg.max_times_sampled && t->slot[slot].times >= t->cfg.max_times_sampled)
		unlive(t, slot);
}

/* The importance weight of a draw of weight ws when the smallest is wmin:
 * (wmin / ws)^beta, with the common betas spared a pow(). */
static double importance(double beta, double wmin, double ws)
{
	double r = wmin / ws;

	if (beta == 1)
		return r;
	if (beta == 0.5)
		return sqrt(r);
	return beta == 0 ? 1 : pow(r, beta);
}

/*
 * importance() of a batch's draws, ws[0..m) into w[0..m). With glibc's
 * vector math library and AVX2, four pow()s at once (_ZGVdN4vv_pow, within
 * 4 ulp of pow(), which is within 1 ulp): a scalar pow() a draw was 13 % of
 * a prioritized batch of 256 from a million items (perf/bench_table).
 */
#if defined(XR_HAVE_MVEC) && defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__m256d _ZGVdN4vv_pow(__m256d x, __m256d y); /* libmvec's AVX2 pow() */

__attribute__((target("avx2"))) static uint32_t importance_avx2(double beta, double wmin,
								 const double *ws, double *w,
								 uint32_t m)
{
	__m256d vb = _mm256_set1_pd(beta), vm = _mm256_set1_pd(wmin);
	uint32_t k = 0;

	for (; k + 4 <= m; k += 4)
		_mm256_storeu_pd(w + k, _ZGVdN4vv_pow(_mm256_div_pd(vm, _mm256_loadu_pd(ws + k)), vb));
	return k;
}
#endif

static void importance_many(double beta, double wmin, const double *ws, double *w, uint32_t m)
{
	uint32_t k = 0;

#if defined(XR_HAVE_MVEC) && defined(__x86_64__) && defined(__GNUC__)
	/* The betas importance() spares a pow() stay scalar. */
	if (beta != 1 && beta != 0.5 && beta != 0 && __builtin_cpu_supports("avx2"))
		k = importance_avx2(beta, wmin, ws, w, m);
#endif
	for (; k < m; k++)
		w[k] = importance(beta, wmin, ws[k]);
}

/* One draw at a time: fifo and lifo, and tables where max_times_sampled
 * may take an item out of the table in the middle of the batch. */
static int sample_one_by_one(struct xr_tb *t, uint32_t want, uint64_t *keys, double *prob,
			     double *weight)
{
	bool ordered = t->cfg.sampler == XR_SAMPLER_FIFO || t->cfg.sampler == XR_SAMPLER_LIFO;
	bool lifo = t->cfg.sampler == XR_SAMPLER_LIFO;
	uint32_t k, walk = lifo ? t->newest : t->oldest;

	for (k = 0; k < want && t->size; k++) {
		uint32_t s;
		double pr = 1, w = 1;

		if (ordered) {
			if (walk == XR_TB_NO_SLOT)
				break;
			s = walk;
			walk = lifo ? t->prev[s] : t->next[s]; /* before take() unlinks s */
		} else if (prioritized(t) && xr_sumtree_total(&t->sum) > 0) {
			double total = xr_sumtree_total(&t->sum);
			s = xr_sumtree_find(&t->sum, next_unit(t->rng) * total);
			double ws = xr_sumtree_get(&t->sum, s);
			pr = ws / total;
			w = importance(t->cfg.beta, xr_mintree_min(&t->wmin), ws);
		} else {
			/* Uniform, or prioritized with every priority zero (no
			 * item is more likely than another: uniform, weight 1). */
			s = t->dense[next_below(t->rng, t->size)];
			pr = 1.0 / t->size;
		}
		keys[k] = xr__tb_key(t, s);
		if (prob)
			prob[k] = pr;
		if (weight)
			weight[k] = w;
		take(t, s);
	}
	return (int)k;
}

int xr__tb_sample(struct xr_tb *t, uint32_t n, uint64_t *keys, double *prob, double *weight)
{
	enum { CHUNK = 256 };
	uint32_t want = (uint32_t)xr_limiter_samples_allowed(&t->lim, n);

	if (!want || !t->size)
		return -EAGAIN;
	if (t->cfg.sampler == XR_SAMPLER_FIFO || t->cfg.sampler == XR_SAMPLER_LIFO ||
	    t->cfg.max_times_sampled)
		return sample_one_by_one(t, want, keys, prob, weight);
	/*
	 * Uniform and prioritized without max_times_sampled: no draw of the
	 * batch changes what the next may draw (take() only counts), so the
	 * draws are made together, a chunk at a time, and the memory each
	 * will touch is asked for before it is read: the misses of a batch
	 * overlap instead of following one another.
	 */
	for (uint32_t base = 0; base < want; base += CHUNK) {
		uint32_t m = want - base < CHUNK ? want - base : CHUNK, s[CHUNK];
		double pr[CHUNK], w[CHUNK];

		if (prioritized(t) && xr_sumtree_total(&t->sum) > 0) {
			double total = xr_sumtree_total(&t->sum), u[CHUNK];
			double wmin = xr_mintree_min(&t->wmin);
			for (uint32_t k = 0; k < m; k++)
				u[k] = next_unit(t->rng) * total;
			/* The slots' lines asked for as the descents find them:
			 * take() writes each. */
			xr_sumtree_find_many(&t->sum, u, s, pr, t->slot, sizeof(t->slot[0]), m);
			importance_many(t->cfg.beta, wmin, pr, w, m);
			for (uint32_t k = 0; k < m; k++)
				pr[k] /= total;
		} else {
			uint32_t r[CHUNK];
			for (uint32_t k = 0; k < m; k++) {
				r[k] = next_below(t->rng, t->size);
				__builtin_prefetch(&t->dense[r[k]]);
			}
			for (uint32_t k = 0; k < m; k++) {
				s[k] = t->dense[r[k]];
				__builtin_prefetch(&t->slot[s[k]], 1);
				pr[k] = 1.0 / t->size;
				w[k] = 1;
			}
		}
		for (uint32_t k = 0; k < m; k++) {
			keys[base + k] = xr__tb_key(t, s[k]);
			if (prob)
				prob[base + k] = pr[k];
			if (weight)
				weight[base + k] = w[k];
			take(t, s[k]);
		}
	}
	return (int)want;
}

int xr__tb_release(struct xr_tb *t, uint64_t key)
{
	uint32_t s = slot_of(t, key, true);

	if (s == XR_TB_NO_SLOT || !t->slot[s].held)
		return -ESTALE;
	t->leases--;
	if (--t->slot[s].held)
		return 0;
	if (t->slot[s].state == XR_TB_SPENT) {
		release_slot(t, s);
	} else if (t->slot[s].hidden) {
		t->slot[s].hidden = 0;
		xr_mintree_set(&t->rmin, s, t->prio[s]);
	}
	return 0;
}

int xr__tb_update_check(const struct xr_tb *t, uint64_t key, double p, uint32_t *slot)
{
	if (bad_priority(t, p))
		return -EINVAL;
	*slot = slot_of(t, key, false);
	return *slot == XR_TB_NO_SLOT ? -ESTALE : 0;
}

int xr__tb_update(struct xr_tb *t, uint64_t key, double p)
{
	uint32_t s;
	int rc = xr__tb_update_check(t, key, p, &s);

	if (rc == 0)
		set_priority(t, s, p);
	return rc;
}

int xr__tb_remove(struct xr_tb *t, uint64_t key)
{
	uint32_t s = slot_of(t, key, false);

	if (s == XR_TB_NO_SLOT)
		return -ESTALE;
	unlive(t, s);
	return 0;
}
