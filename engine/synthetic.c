/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "engine/synthetic.h"
#include "util/atomics.h"
#include "util/clock.h"
#include "xring/error.h"
#include "xring/writer.h"

#define XR_SYNTH_STOP_CHECK_NS 100000000ull /* longest sleep without looking at stop */

void xr_synth_fields(uint64_t seq, uint32_t games, xr_exp_fields *f)
{
	uint64_t g = games ? games : 1;
	uint64_t mix = seq * 0x9e3779b97f4a7c15ull;

	f->seq = seq;
	f->game_id = (uint32_t)(seq % g);
	f->turn = (uint32_t)(seq / g);
	f->player_id = f->turn & 1;
	f->action = (int32_t)(mix >> 60);
	f->reward = (float)((int)((mix >> 32) % 2001) - 1000) / 1000.0f;
	f->done = (f->turn % 100) == 99;
	f->truncated = false;
	f->applied = -1; /* no game is played: no step to report */
	f->applied_by = XR_SRC_NONE;
}

void xr_synth_fill(uint64_t seq, uint8_t *obs, uint64_t n)
{
	uint64_t w = seq * 0x9e3779b97f4a7c15ull, i = 0;

	/* Word stores: generating the bytes should cost about what writing
	 * them costs. */
	for (; i + 8 <= n; i += 8, w += 0x0101010101010101ull)
		memcpy(obs + i, &w, 8);
	for (; i < n; i++)
		obs[i] = (uint8_t)(w >> (8 * (i & 7)));
}

int xr_synth_run(xr_writer *w, const xr_exp_template *t,
		 const struct xr_synth_opts *o, struct xr_synth_result *res)
{
	uint64_t start = xr__now_ns();
	uint32_t batch = o->batch ? o->batch : 64;
	uint64_t now = start;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (o->lease_timeout_ns)
		xr_writer_set_lease_timeout(w, o->lease_timeout_ns);
	while (!(o->stop && xr_load_relaxed(o->stop)) && (!o->count || res->written + res->dropped < o->count)) {
		if (o->rate) {
			/* Pace: the n-th record is due at start + n / rate. */
			uint64_t due = start + (res->written + res->dropped) * 1000000000ull / o->rate;
			if ((int64_t)(due - now) > 0) {
				/* Sleep in slices so that a stop is seen within one
				 * even at a record a second. */
				uint64_t slice = due - now;
				if (slice > XR_SYNTH_STOP_CHECK_NS)
					slice = XR_SYNTH_STOP_CHECK_NS;
				xr_writer_publish(w);
				xr__sleep_ns(slice);
				now = xr__now_ns();
				if ((int64_t)(due - now) > 0)
					continue;
			}
		}
		now = xr__now_ns();
		for (uint32_t i = 0; i < batch; i++) {
			void *p;
			uint64_t seq = xr_writer_next_seq(w);
			int r = xr_writer_reserve(w, t->size, &p);

			if (r == -EAGAIN) {
				res->waits++;
				r = xr_writer_wait(w, t->size, XR_SYNTH_STOP_CHECK_NS);
				if (r == -ETIMEDOUT || r == -EINTR || (o->stop && xr_load_relaxed(o->stop)))
					break;
				continue;
			}
			if (r == XR_EDROPPED) {
				res->dropped++;
			} else if (r < 0) {
				rc = r;
				goto out;
			} else {
				xr_exp_fields f;
				xr_exp_slots s;

				xr_synth_fields(seq, o->games, &f);
				f.t_ns = now;
				xr_exp_build(t, p, &f, &s);
				xr_synth_fill(seq, s.obs, t->obs_bytes);
				if (s.mask)
					memset(s.mask, 1, t->shape.mask_len);
				xr_writer_commit(w);
				res->written++;
			}
			if ((o->count && res->written + res->dropped >= o->count) || o->rate)
				break;
		}
		xr_writer_publish(w);
	}
out:
	xr_writer_publish(w);
	res->elapsed_ns = xr__now_ns() - start;
	return rc;
}
