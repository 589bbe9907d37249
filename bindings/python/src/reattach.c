/* SPDX-License-Identifier: MIT */
/*
 * What Reader.reattach() and Agent.reattach() share: the timeout argument,
 * and a wait for the engine to come back that Ctrl-C ends. The C calls
 * (xr_reader_reattach(), xr_agent_reattach()) wait in one piece; here they
 * are called in slices of at most 50 ms, the GIL released in each and the
 * signal handlers run between them, as reads and receives wait. A slice
 * that ends with the engine not back yet (-ETIMEDOUT), or refused for the
 * rate (-EAGAIN), is followed by the next while time is left; each C call
 * after a failed one goes on from where that one stopped.
 */
#include "xring_py.h"

#include <errno.h>
#include <math.h>
#include <time.h>

#define SLICE_NS 50000000ll

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int reattach_timeout(PyObject *o, int64_t *ns)
{
	if (o == Py_None) {
		*ns = -1;
		return 0;
	}
	double t = PyFloat_AsDouble(o);
	if (t == -1 && PyErr_Occurred())
		return -1;
	if (isnan(t) || t < 0) {
		PyErr_SetString(PyExc_ValueError, "reattach: timeout must be a number >= 0, or None");
		return -1;
	}
	*ns = secs_to_ns(t);
	return 0;
}

int reattach_sliced(int (*call)(void *ctx, int64_t slice_ns), void *ctx, int64_t timeout_ns,
		    char *reason, size_t len, int *rc)
{
	int64_t end = timeout_ns < 0 ? INT64_MAX : mono_ns() + timeout_ns;

	for (;;) {
		int64_t left = end == INT64_MAX ? SLICE_NS : end - mono_ns();
		int64_t slice = left < 0 ? 0 : left < SLICE_NS ? left : SLICE_NS;
		Py_BEGIN_ALLOW_THREADS
		*rc = call(ctx, slice);
		if (*rc < 0)
			snprintf(reason, len, "%s", xr_last_reason());
		Py_END_ALLOW_THREADS
		if ((*rc != -ETIMEDOUT && *rc != -EAGAIN) || mono_ns() >= end)
			return 0;
		if (PyErr_CheckSignals() < 0)
			return -1;
	}
}
