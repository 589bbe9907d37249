/* SPDX-License-Identifier: MIT */
/*
 * A table's checkpoint (table.h): what it holds, and how a restore refuses
 * anything but a checkpoint this code wrote, intact.
 *
 *   header      magic "XRTABLE" + format byte (2), the configuration, the
 *               limiter's three counts, the random state, the live count,
 *               the item size and the caller's tag of what items are
 *   generations every slot's, live or not: a restored table must never
 *               hand out again a key it handed out before the checkpoint
 *   items       live items oldest first: slot, times sampled, priority,
 *               each followed by its io->item_size bytes
 *   trailer     FNV-1a 64 of everything above
 *
 * Host byte order: a checkpoint moves between runs of one machine, not
 * between machines (the magic would not match on the other byte order).
 * The restore checks each field as it reads it, so the table it builds
 * holds the invariants the live one did: the slots distinct, priorities
 * finite and >= 0, no item past max_times_sampled, and the limiter's
 * inserts - removes equal to the items restored (the rate limiter then
 * stands where it stood: no sampler waits for ever after a restore).
 */
#include "table_priv.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define GENS 1024 /* generations moved per put() or get() */

static const char magic[8] = {'X', 'R', 'T', 'A', 'B', 'L', 'E', 2};

struct head {
	char magic[8];
	uint32_t capacity, sampler, remover, max_times_sampled;
	double alpha, beta;
	uint64_t min_size;
	double samples_per_insert, error_buffer;
	uint64_t seed;
	uint64_t inserts, samples, removes;
	uint64_t rng[4];
	uint32_t count, item_size;
	uint8_t item_tag[XR_TB_TAG];
};

struct entry {
	uint32_t slot, times;
	double prio;
};

struct io {
	const struct xr_tb_io *io;
	uint64_t fnv;
};

static void hash(struct io *s, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		s->fnv = (s->fnv ^ b[i]) * 0x100000001b3ull;
}

static int put(struct io *s, const void *p, size_t n)
{
	hash(s, p, n);
	return s->io->put(s->io->ctx, p, n);
}

static int get(struct io *s, void *p, size_t n)
{
	int rc = s->io->get(s->io->ctx, p, n);

	if (rc == 0)
		hash(s, p, n);
	return rc;
}

int xr__tb_save(const struct xr_tb *t, const struct xr_tb_io *io)
{
	struct io s = {io, 0xcbf29ce484222325ull};
	struct head h;
	int rc;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, magic, sizeof(magic));
	h.capacity = t->cfg.capacity;
	h.sampler = t->cfg.sampler;
	h.remover = t->cfg.remover;
	h.max_times_sampled = t->cfg.max_times_sampled;
	h.alpha = t->cfg.alpha;
	h.beta = t->cfg.beta;
	h.min_size = t->cfg.min_size;
	h.samples_per_insert = t->cfg.samples_per_insert;
	h.error_buffer = t->cfg.error_buffer;
	h.seed = t->cfg.seed;
	h.inserts = t->lim.inserts;
	h.samples = t->lim.samples;
	h.removes = t->lim.removes;
	memcpy(h.rng, t->rng, sizeof(h.rng));
	h.count = t->size;
	h.item_size = (uint32_t)io->item_size;
	memcpy(h.item_tag, io->item_tag, sizeof(h.item_tag));
	rc = put(&s, &h, sizeof(h));
	for (uint32_t i = 0; rc == 0 && i < t->cfg.capacity; i += GENS) {
		uint32_t g[GENS], m = t->cfg.capacity - i < GENS ? t->cfg.capacity - i : GENS;
		for (uint32_t j = 0; j < m; j++)
			g[j] = t->slot[i + j].gen;
		rc = put(&s, g, m * sizeof(uint32_t));
	}
	for (uint32_t i = t->oldest; rc == 0 && i != XR_TB_NO_SLOT; i = t->next[i]) {
		struct entry e = {.slot = i, .times = t->slot[i].times, .prio = t->prio[i]};
		rc = put(&s, &e, sizeof(e));
		if (rc == 0 && io->item_size)
			rc = put(&s, io->item(io->ctx, i), io->item_size);
	}
	if (rc == 0) {
		uint64_t sum = s.fnv;
		rc = put(&s, &sum, sizeof(sum));
	}
	return rc;
}

static int bad(struct xr_tb *t, const char **why, const char *what)
{
	xr__tb_free(t);
	*why = what;
	return -EINVAL;
}

int xr__tb_restore(struct xr_tb *t, const struct xr_tb_io *io, const char **why)
{
	struct io s = {io, 0xcbf29ce484222325ull};
	struct xr_tb_cfg cfg;
	struct head h;
	uint64_t sum, times = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	rc = get(&s, &h, sizeof(h));
	if (rc < 0) {
		*why = "the checkpoint ends inside its header";
		return rc == -ENODATA ? -EINVAL : rc;
	}
	if (memcmp(h.magic, magic, 7))
		return bad(t, why, "not a table checkpoint (magic)");
	if (h.magic[7] != magic[7])
		return bad(t, why, "a table checkpoint of another format (an older xring's?)");
	if (h.item_size != io->item_size)
		return bad(t, why, "the checkpoint's items are of another size than this table's");
	if (memcmp(h.item_tag, io->item_tag, sizeof(h.item_tag)))
		return bad(t, why, "the checkpoint's items are not this table's kind (records of "
			   "another stream shape, or transitions and records)");
	cfg = (struct xr_tb_cfg){
		.capacity = h.capacity, .sampler = (enum xr_table_sampler)h.sampler,
		.remover = (enum xr_table_remover)h.remover, .alpha = h.alpha, .beta = h.beta,
		.max_times_sampled = h.max_times_sampled, .min_size = h.min_size,
		.samples_per_insert = h.samples_per_insert, .error_buffer = h.error_buffer,
		.seed = h.seed};
	if (h.sampler > XR_SAMPLER_LIFO || h.remover > XR_REMOVER_LOWEST)
		return bad(t, why, "the checkpoint names no sampler or remover there is");
	if (io->max_capacity && h.capacity > io->max_capacity) {
		*why = "the checkpoint's capacity is larger than this table's (or than a restore "
		       "may make)";
		return -E2BIG;
	}
	rc = xr__tb_init(t, &cfg, why);
	if (rc < 0)
		return rc == -EINVAL ? -EINVAL : rc;
	if (h.count > h.capacity)
		return bad(t, why, "the checkpoint holds more items than its capacity");
	if (h.inserts < h.removes || h.inserts - h.removes != h.count)
		return bad(t, why, "the checkpoint's limiter counts do not match its items");
	/* Where a limiter can stand: samples only take D down while D - n >=
	 * min_diff, so D >= min(0, min_diff); inserts only take it past
	 * max_diff while the table is below min_size, so D <= max(0, max_diff
	 * + spi * min_size). A D outside could stop inserts and samples both
	 * for good. */
	if (t->lim.spi > 0) {
		double d = (double)h.inserts * t->lim.spi - (double)h.samples;
		double lo = t->lim.min_diff < 0 ? t->lim.min_diff : 0;
		double hi = t->lim.max_diff + t->lim.spi * (double)h.min_size;
		if (!(d >= lo - 1 && d <= (hi > 0 ? hi : 0) + 1))
			return bad(t, why, "the checkpoint's limiter stands where no limiter can");
	}
	for (uint32_t i = 0; rc == 0 && i < h.capacity; i += GENS) {
		uint32_t g[GENS], m = h.capacity - i < GENS ? h.capacity - i : GENS;
		rc = get(&s, g, m * sizeof(uint32_t));
		for (uint32_t j = 0; rc == 0 && j < m; j++)
			t->slot[i + j].gen = g[j];
	}
	if (rc < 0) {
		xr__tb_free(t);
		*why = "the checkpoint ends inside its generations";
		return rc == -ENODATA ? -EINVAL : rc;
	}
	for (uint32_t k = 0; k < h.count; k++) {
		struct entry e;

		rc = get(&s, &e, sizeof(e));
		if (rc < 0) {
			xr__tb_free(t);
			*why = "the checkpoint ends inside its items";
			return rc == -ENODATA ? -EINVAL : rc;
		}
		if (e.slot >= h.capacity || t->slot[e.slot].state != XR_TB_FREE || !t->slot[e.slot].gen)
			return bad(t, why, "an item's slot is out of range, repeated, or never filled");
		if (!isfinite(e.prio) || e.prio < 0)
			return bad(t, why, "an item's priority is negative or not a number");
		if (h.max_times_sampled && e.times >= h.max_times_sampled)
			return bad(t, why, "an item was sampled more than max_times_sampled");
		times += e.times;
		if (times > h.samples)
			return bad(t, why, "the items were sampled more often than the table was");
		xr__tb_fill(t, e.slot, e.prio);
		t->slot[e.slot].times = e.times;
		if (io->item_size) {
			rc = get(&s, io->item(io->ctx, e.slot), io->item_size);
			if (rc < 0) {
				xr__tb_free(t);
				*why = "the checkpoint ends inside an item's bytes";
				return rc == -ENODATA ? -EINVAL : rc;
			}
		}
	}
	/* Free slots: every one not filled, lowest handed out first. */
	t->nfree = 0;
	for (uint32_t i = h.capacity; i-- > 0;)
		if (t->slot[i].state == XR_TB_FREE)
			t->free[t->nfree++] = i;
	{
		uint64_t want = s.fnv;
		rc = get(&s, &sum, sizeof(sum));
		if (rc < 0 || sum != want)
			return bad(t, why, "the checkpoint's checksum does not match: altered or cut short");
	}
	t->lim.inserts = h.inserts;
	t->lim.samples = h.samples;
	t->lim.removes = h.removes;
	memcpy(t->rng, h.rng, sizeof(t->rng));
	return 0;
}
