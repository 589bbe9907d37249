/* SPDX-License-Identifier: MIT */
/*
 * open_reader's Python arguments into the C reader's options (xr_reader_opts,
 * xr_filter) and the Python Reader's settings, each checked here so that a
 * bad argument is a ValueError or TypeError naming it, not an errno later.
 */
#include "xring_py.h"

#include <string.h>

#define FOREVER_NS 1000000000000000000ll /* 31 years: "no limit", and no overflow */

/* Seconds from Python into ns, clamped (a float past int64 is undefined
 * behaviour to convert): inf and anything past 31 years is FOREVER_NS. */
int64_t secs_to_ns(double s)
{
	if (!(s > 0))
		return 0;
	if (s >= 1e9)
		return FOREVER_NS;
	return (int64_t)(s * 1e9);
}

/* open_reader's arguments as they come, before any check. */
struct raw_args {
	const char *stream, *policy, *terminal, *transport, *label, *group;
	unsigned batch, min_batch, min_turn, engine_uid;
	double max_wait, sample_rate;
	unsigned long long sample_seed, history;
	PyObject *games, *players, *reward;
	int spin, idle_poll;
};

static int ranges_from(PyObject *seq, xr_id_range *out, uint32_t *n, const char *what)
{
	Py_ssize_t len;

	*n = 0;
	if (seq == Py_None)
		return 0;
	len = PySequence_Size(seq);
	if (len < 0)
		return -1;
	if (len == 0 || len > XR_FILTER_RANGES_MAX) {
		PyErr_Format(PyExc_ValueError, "%s: 1 to %d (lo, hi) ranges", what,
			     XR_FILTER_RANGES_MAX);
		return -1;
	}
	for (Py_ssize_t i = 0; i < len; i++) {
		PyObject *it = PySequence_GetItem(seq, i);
		unsigned long lo, hi;
		if (!it || !PyArg_ParseTuple(it, "kk", &lo, &hi)) {
			Py_XDECREF(it);
			PyErr_Format(PyExc_TypeError, "%s: ranges must be (lo, hi) pairs", what);
			return -1;
		}
		Py_DECREF(it);
		if (lo > hi || hi > UINT32_MAX) {
			PyErr_Format(PyExc_ValueError, "%s: range (%lu, %lu) is empty or too large",
				     what, lo, hi);
			return -1;
		}
		out[(*n)++] = (xr_id_range){(uint32_t)lo, (uint32_t)hi};
	}
	return 0;
}

/* batch, min_batch (0: batch) and max_wait into the Reader's settings. */
static int sizes_from(const struct raw_args *in, struct open_args *a)
{
	unsigned batch = in->batch, min_batch = in->min_batch;

	if (batch == 0 || batch > XR_BATCH_MAX) {
		PyErr_Format(PyExc_ValueError, "batch must be 1..%d", XR_BATCH_MAX);
		return -1;
	}
	if (min_batch == 0)
		min_batch = batch;
	if (min_batch > batch) {
		PyErr_Format(PyExc_ValueError, "min_batch (%u) must be <= batch (%u)", min_batch,
			     batch);
		return -1;
	}
	if (!(in->max_wait >= 0)) {
		PyErr_Format(PyExc_ValueError, "max_wait must be >= 0 seconds");
		return -1;
	}
	a->min = min_batch;
	a->max = batch;
	a->max_wait_ns = secs_to_ns(in->max_wait);
	return 0;
}

/* The filter arguments into a->filter; a->opts.filter points at it only
 * when it would hold some record back. */
static int filter_from(const struct raw_args *in, struct open_args *a)
{
	xr_filter *f = &a->filter;

	f->games = a->games;
	f->players = a->players;
	if (ranges_from(in->games, a->games, &f->n_games, "games") < 0 ||
	    ranges_from(in->players, a->players, &f->n_players, "players") < 0)
		return -1;
	f->min_turn = in->min_turn;
	if (in->terminal) {
		if (!strcmp(in->terminal, "only"))
			f->terminal = XR_TERMINAL_ONLY;
		else if (!strcmp(in->terminal, "none"))
			f->terminal = XR_TERMINAL_NONE;
		else {
			PyErr_Format(PyExc_ValueError, "terminal must be 'only', 'none' or None, not %s",
				     in->terminal);
			return -1;
		}
	}
	if (in->reward != Py_None) {
		if (!PyArg_ParseTuple(in->reward, "ff", &f->reward_min, &f->reward_max))
			return -1;
		if (!(f->reward_min <= f->reward_max)) {
			PyErr_Format(PyExc_ValueError, "reward_range (lo, hi) needs lo <= hi");
			return -1;
		}
		f->has_reward_range = 1;
	}
	if (in->sample_rate != 0 && !(in->sample_rate > 0 && in->sample_rate <= 1)) {
		PyErr_Format(PyExc_ValueError, "sample_rate must be in (0, 1]");
		return -1;
	}
	f->sample_rate = in->sample_rate;
	f->sample_seed = in->sample_seed;
	bool filtered = f->n_games || f->n_players || f->min_turn || f->terminal ||
			f->has_reward_range || (f->sample_rate > 0 && f->sample_rate < 1);
	a->opts.filter = filtered ? f : NULL;
	return 0;
}

/* The rest of the C reader's options (its filter is filter_from's). */
static int opts_from(const struct raw_args *in, struct open_args *a)
{
	xr_reader_opts *o = &a->opts;

	o->stream = in->stream;
	o->label = in->label;
	o->wait = in->spin ? XR_WAIT_SPIN : in->idle_poll ? XR_WAIT_IDLE_POLL : XR_WAIT_DEFAULT;
	o->engine_uid = in->engine_uid;
	o->history = in->history;
	o->group = in->group;
	a->spin = in->spin;
	if (in->policy && xr_policy_parse(in->policy, &o->policy) < 0) {
		PyErr_Format(PyExc_ValueError, "policy must be 'lossless', 'lossy' or None, not %s",
			     in->policy);
		return -1;
	}
	if (in->transport && xr_transport_parse(in->transport, &o->transport) < 0) {
		PyErr_Format(PyExc_ValueError, "transport must be auto, control or direct");
		return -1;
	}
	if (o->transport == XR_TRANSPORT_DIRECT) {
		PyErr_Format(PyExc_ValueError,
			     "transport 'direct' is gone: readers attach through the engine's "
			     "control socket, which is how it knows who holds each slot");
		return -1;
	}
	return 0;
}

/* Sizes, then filter, then the rest: the order the checks have always run
 * in, so that a call with two bad arguments keeps getting the same error. */
int open_args_parse(PyObject *args, PyObject *kw, struct open_args *a)
{
	static char *kwlist[] = {"name", "stream", "batch", "min_batch", "max_wait", "policy",
				 "games", "players", "min_turn", "terminal", "reward_range",
				 "sample_rate", "sample_seed", "spin", "transport", "label",
				 "idle_poll", "engine_uid", "history", "group", NULL};
	struct raw_args in = {.label = "python", .batch = 256, .max_wait = 0.01,
			      .games = Py_None, .players = Py_None, .reward = Py_None};

	memset(a, 0, sizeof(*a));
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zIIdzOOIzOdKpzspIKz", kwlist, &a->name,
					 &in.stream, &in.batch, &in.min_batch, &in.max_wait,
					 &in.policy, &in.games, &in.players, &in.min_turn,
					 &in.terminal, &in.reward, &in.sample_rate, &in.sample_seed,
					 &in.spin, &in.transport, &in.label, &in.idle_poll,
					 &in.engine_uid, &in.history, &in.group))
		return -1;
	if (sizes_from(&in, a) < 0 || filter_from(&in, a) < 0 || opts_from(&in, a) < 0)
		return -1;
	return 0;
}
