/* SPDX-License-Identifier: MIT */
#include "transition.h"

_Static_assert(sizeof(xr_transition) == XR_TRANSITION_OBS, "a transition's header");

static uint32_t round16(uint64_t n)
{
	return (uint32_t)((n + 15) & ~15ull);
}

void xr__trans_layout(const xr_exp_shape *sh, xr_item_layout *l)
{
	xr_exp_template t;
	uint64_t obs = xr_exp_template_init(&t, sh) == 0 ? t.obs_bytes : 0;

	*l = (xr_item_layout){.item = XR_ITEM_TRANSITION, .obs_off = XR_TRANSITION_OBS,
			      .obs_bytes = (uint32_t)obs, .mask_len = sh->mask_len, .shape = *sh};
	l->next_obs_off = l->obs_off + round16(obs);
	l->mask_off = l->next_obs_off + round16(obs);
	l->next_mask_off = l->mask_off + round16(sh->mask_len);
}

uint32_t xr__trans_item_size(const xr_exp_shape *sh)
{
	xr_item_layout l;

	xr__trans_layout(sh, &l);
	return l.next_mask_off + round16(l.mask_len);
}
