/* SPDX-License-Identifier: MIT */
/*
 * The Reader type: read() and its waiting, iteration, stats, close and
 * reattach, arm/fileno for selectors, ring_buffer, facts, and the releases
 * deferred while another thread is in read().
 *
 * Waiting. read() makes one xr_reader_read() per phase (a full batch until
 * max_wait, then any record until its timeout) with the GIL released. A
 * signal that arrives while the reader sleeps ends the call with -EINTR
 * (CPython installs its handlers without SA_RESTART): signal handlers run,
 * and unless one raised (Ctrl-C), the wait resumes with the time left. A
 * spinning reader (spin=True) never sleeps, so signals cannot interrupt it:
 * it waits in slices of at most 50 ms, checking for signals between them,
 * and takes the batch only when the slice that ends its phase does, so that
 * a partial batch is never handed out before max_wait.
 */
#include "xring_py.h"
#include "client/reader_priv.h"

#include <errno.h>
#include <time.h>

#define SLICE_NS 50000000ll /* longest wait without looking at signals */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void reader_flush_deferred(Reader *self)
{
	for (uint32_t i = 0; i < self->n_deferred; i++)
		if (self->r)
			xr_batch_release(self->r, &self->deferred[i]);
	self->n_deferred = 0;
}

/* Gives a batch back now, or when the thread in read() returns (the C
 * reader is its alone meanwhile). */
void reader_release(Reader *self, xr_batch *b)
{
	if (!self->r)
		return;
	if (self->busy && self->n_deferred < XR_HELD_MAX) {
		self->deferred[self->n_deferred++] = *b;
		self->deferred_total++;
	} else
		xr_batch_release(self->r, b); /* not busy (deferred holds every lease) */
}

void reader_detach_now(Reader *self)
{
	if (self->r) {
		xr_reader_detach(self->r);
		self->r = NULL;
	}
}

static int check_open(Reader *self)
{
	if (self->closed || !self->r) {
		PyErr_SetString(PyExc_ValueError, "this reader is closed");
		return -1;
	}
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError,
				"another thread is in read() on this reader: a Reader is used by one "
				"thread at a time (attach one per thread)");
		return -1;
	}
	return 0;
}

/* A spinning reader's wait for want records until `until` (-1: forever),
 * in slices with signals checked between them (see Waiting, above):
 * returns what xr_reader_read returns, or -1 with an exception set. */
static int spin_wait(Reader *self, uint32_t want, int64_t until, xr_batch *b)
{
	for (;;) {
		int64_t now = now_ns(), left = until < 0 ? SLICE_NS : until - now;
		bool last = until >= 0 && left <= SLICE_NS;
		int n;

		if (left < 0)
			left = 0;
		if (left > SLICE_NS)
			left = SLICE_NS;
		self->busy = true;
		Py_BEGIN_ALLOW_THREADS
		n = last ? xr_reader_read(self->r, want, self->max, left, b)
			 : xr_reader_wait(self->r, want, left);
		Py_END_ALLOW_THREADS
		self->busy = false;
		reader_flush_deferred(self);
		if (last || n < 0)
			return n;
		/* With no deadline, the library's check for a wait on our own
		 * batch is ours to make, between slices. */
		if (n == 0 && until < 0 && (n = xr__reader_held_back(self->r)) < 0)
			return n;
		/* A wait ends early with fewer than want only when no more can
		 * come (the engine closed, a full walk, a writer blocked on our
		 * lease): take them now rather than spin until the end. */
		if (n > 0 && ((uint32_t)n >= want || now_ns() - now < left))
			return xr_reader_read(self->r, want, self->max, 0, b);
		if (PyErr_CheckSignals() < 0)
			return -1;
	}
}

/* Waits for want records until `until` (-1: forever) and takes them, or
 * what is there when it ends: one call, resumed after a signal whose
 * handlers did not raise. Returns the count (0: none came), or -1 with an
 * exception set. */
static int wait_and_take(Reader *self, uint32_t want, int64_t until, xr_batch *b)
{
	int n;

	if (self->spin)
		n = spin_wait(self, want, until, b);
	else
		for (;;) {
			int64_t left = until < 0 ? -1 : until - now_ns();
			self->busy = true;
			Py_BEGIN_ALLOW_THREADS
			n = xr_reader_read(self->r, want, self->max, left < -1 ? 0 : left, b);
			Py_END_ALLOW_THREADS
			self->busy = false;
			reader_flush_deferred(self);
			if (n != -EINTR)
				break;
			if (PyErr_CheckSignals() < 0)
				return -1;
		}
	if (n < 0 && !PyErr_Occurred())
		raise_xr(n, "read");
	return n < 0 ? -1 : n;
}

/* read(timeout_s or None) -> Batch, or None when nothing came in time. */
static PyObject *reader_read(Reader *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout_obj = Py_None;
	int64_t start = now_ns(), end = -1;
	xr_batch b;
	int n;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout_obj) ||
	    check_open(self) < 0)
		return NULL;
	if (timeout_obj != Py_None) {
		double t = PyFloat_AsDouble(timeout_obj);
		if (t == -1 && PyErr_Occurred())
			return NULL;
		end = start + secs_to_ns(t);
	}
	/* Until max_wait: a full batch of min, or what there is when it ends
	 * (xr_reader_read's own max_wait). Then, until the timeout: any
	 * record. The timeout does not cut the first phase. */
	n = wait_and_take(self, self->min, start + self->max_wait_ns, &b);
	if (n == 0 && (end < 0 || now_ns() < end))
		n = wait_and_take(self, 1, end, &b);
	if (n < 0)
		return NULL;
	if (n == 0)
		Py_RETURN_NONE;
	return batch_new(self, &b);
}

static PyObject *reader_iternext(Reader *self)
{
	for (;;) {
		PyObject *args = PyTuple_New(0), *b;
		if (!args)
			return NULL;
		b = reader_read(self, args, NULL);
		Py_DECREF(args);
		if (b == Py_None) {
			Py_DECREF(b);
			continue;
		}
		if (!b) {
			/* The engine finished: the iteration ends, like EOF. Any
			 * other error (KeyboardInterrupt...) goes on up. The error
			 * is set aside while the class is looked up. */
			PyObject *type, *val, *tb;
			PyErr_Fetch(&type, &val, &tb);
			PyObject *mod = PyImport_ImportModule("xring._errors");
			PyObject *cls = mod ? PyObject_GetAttrString(mod, "EngineClosedError") : NULL;
			Py_XDECREF(mod);
			PyErr_Clear();
			if (cls && type && PyErr_GivenExceptionMatches(type, cls)) {
				Py_XDECREF(type);
				Py_XDECREF(val);
				Py_XDECREF(tb);
			} else {
				PyErr_Restore(type, val, tb);
			}
			Py_XDECREF(cls);
		}
		return b;
	}
}

static PyObject *reader_stats(Reader *self, PyObject *unused)
{
	xr_reader_stats s;
	int rc;

	(void)unused;
	if (check_open(self) < 0)
		return NULL;
	rc = xr_reader_stats_get(self->r, &s);
	if (rc < 0)
		return raise_xr(rc, "stats");
	PyObject *d = Py_BuildValue(
		"{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:K,s:K,s:K,s:d,s:d,s:d,s:O}", "written", s.written,
		"read", s.read, "filtered", s.filtered, "dropped", s.dropped, "pending", s.pending,
		"sleeps", s.sleeps, "wakeups", s.wakeups, "lag_bytes", s.lag_bytes, "held", s.held,
		"batches", self->batches, "copies", self->copies, "deferred", self->deferred_total,
		"wake_p50_us",
		(double)s.wake_ns_p50 / 1e3, "wake_p99_us", (double)s.wake_ns_p99 / 1e3,
		"wake_max_us", (double)s.wake_ns_max / 1e3, "idle_poll",
		s.idle_poll ? Py_True : Py_False);
	if (d && s.members) {
		/* A group member's: the group's own account. */
		PyObject *g = Py_BuildValue("{s:I,s:K,s:K,s:K}", "members", s.members, "group_done",
					    s.group_done, "group_held", s.group_held,
					    "redelivered", s.redelivered);
		if (!g || PyDict_Update(d, g) < 0) {
			Py_XDECREF(g);
			Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(g);
	}
	return d;
}

/* The stream's facts and record layout, at attach and after a reattach. The
 * name is copied: the facts point into the arena, which detach unmaps. */
static int reader_learn_stream(Reader *self)
{
	xr_reader_stream_facts(self->r, &self->facts);
	snprintf(self->stream_name, sizeof(self->stream_name), "%s", self->facts.name);
	self->facts.name = self->stream_name;
	self->experience = self->facts.record_kind == XR_RECORD_EXPERIENCE &&
			   xr_exp_template_init(&self->tpl, &self->facts.shape) == 0;
	if (!self->experience) {
		PyErr_Format(PyExc_ValueError,
			     "stream %s does not carry Experience records: the Python reader "
			     "reads Experience streams only",
			     self->stream_name);
		return -1;
	}
	return 0;
}

static PyObject *reader_close(Reader *self, PyObject *unused)
{
	(void)unused;
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "close(): another thread is in read()");
		return NULL;
	}
	if (!self->closed) {
		self->closed = true;
		if (self->outstanding == 0)
			reader_detach_now(self);
	}
	Py_RETURN_NONE;
}

static int reader_reattach_call(void *ctx, int64_t slice_ns)
{
	return xr_reader_reattach(ctx, slice_ns);
}

static PyObject *reader_reattach(Reader *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout_o = Py_None;
	int64_t timeout;
	char reason[512] = "";
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout_o) ||
	    check_open(self) < 0)
		return NULL;
	/* A negative number has meant "for ever" here (as None does). */
	if (timeout_o != Py_None && PyNumber_Check(timeout_o)) {
		double t = PyFloat_AsDouble(timeout_o);
		if (t == -1 && PyErr_Occurred())
			return NULL;
		if (t < 0)
			timeout_o = Py_None;
	}
	if (reattach_timeout(timeout_o, &timeout) < 0)
		return NULL;
	if (self->outstanding) {
		PyErr_SetString(PyExc_RuntimeError,
				"reattach: batches or arrays of this reader are still alive; "
				"release and drop them first");
		return NULL;
	}
	self->busy = true;
	int interrupted = reattach_sliced(reader_reattach_call, self->r, timeout, reason,
					  sizeof(reason), &rc);
	self->busy = false;
	if (interrupted < 0)
		return NULL;
	if (rc < 0)
		return raise_xr_reason(rc, "reattach", reason, 0);
	/* The restarted engine may have another shape: arrays follow it. */
	if (reader_learn_stream(self) < 0)
		return NULL;
	self->batches = self->copies = 0;
	Py_RETURN_NONE;
}

/* arm(min=None) -> True: asleep, wait for fileno() to be readable; False:
 * min records are there already, read them. */
static PyObject *reader_arm(Reader *self, PyObject *args)
{
	unsigned min = 0;
	int rc;

	if (!PyArg_ParseTuple(args, "|I", &min) || check_open(self) < 0)
		return NULL;
	rc = xr_reader_arm(self->r, min ? min : self->min);
	if (rc == -ENOTSUP) {
		PyErr_SetString(PyExc_ValueError, "arm(): a spinning reader (spin=True) is not "
						  "woken: it has nothing to arm");
		return NULL;
	}
	if (rc < 0)
		return raise_xr(rc, "arm");
	return PyBool_FromLong(rc == 0);
}

static PyObject *reader_fileno(Reader *self, PyObject *unused)
{
	(void)unused;
	if (check_open(self) < 0)
		return NULL;
	return PyLong_FromLong(xr_reader_fd(self->r));
}

/* ring_buffer(k) -> read-only uint8 array over ring k's whole mapping (the
 * ring twice). Every batch of ring k is a view into it. */
static PyObject *reader_ring_buffer(Reader *self, PyObject *args)
{
	unsigned k;
	const void *base;
	uint64_t len;

	if (!PyArg_ParseTuple(args, "I", &k) || check_open(self) < 0)
		return NULL;
	if (xr_reader_ring_memory(self->r, k, &base, &len) < 0)
		return PyErr_Format(PyExc_IndexError, "no ring %u in this stream", k);
	npy_intp dims[1] = {(npy_intp)len};
	PyObject *a = PyArray_New(&PyArray_Type, 1, dims, NPY_UINT8, NULL, (void *)base, 0, 0,
				  NULL);
	if (!a)
		return NULL;
	/* A lease without records keeps the mapping alive under the array. */
	Lease *l = lease_new(self, NULL);
	if (!l) {
		Py_DECREF(a);
		return NULL;
	}
	/* Steals l, even when it fails. */
	if (PyArray_SetBaseObject((PyArrayObject *)a, (PyObject *)l) < 0) {
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

static PyObject *reader_facts(Reader *self, PyObject *unused)
{
	const xr_exp_shape *s = &self->facts.shape;
	PyObject *dims = PyTuple_New(s->obs_ndim);

	(void)unused;
	if (self->closed || !self->r) {
		Py_XDECREF(dims);
		PyErr_SetString(PyExc_ValueError, "this reader is closed");
		return NULL;
	}
	if (!dims)
		return NULL;
	for (uint32_t d = 0; d < s->obs_ndim; d++)
		PyTuple_SET_ITEM(dims, d, PyLong_FromLong(s->obs_dims[d]));
	return Py_BuildValue("{s:s,s:s,s:I,s:K,s:N,s:s,s:I,s:I,s:I}", "stream", self->facts.name,
			     "policy", self->facts.policy == XR_POLICY_LOSSY ? "lossy" : "lossless",
			     "rings", self->facts.n_rings, "ring_capacity", self->facts.ring_capacity,
			     "obs_shape", dims,
			     "obs_dtype", s->obs_dtype == XR_DTYPE_F32 ? "float32" : "uint8",
			     "mask_len", s->mask_len, "record_bytes", self->tpl.size, "batch",
			     self->max);
}

static PyObject *reader_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

static PyObject *reader_exit(Reader *self, PyObject *args)
{
	(void)args;
	return reader_close(self, NULL);
}

static void reader_dealloc(Reader *self)
{
	/* No Lease can be alive: each holds a reference to us. */
	reader_detach_now(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *reader_get_closed(Reader *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->closed);
}

static PyMethodDef reader_methods[] = {
	{"read", (PyCFunction)(void (*)(void))reader_read, METH_VARARGS | METH_KEYWORDS,
	 "read(timeout=None) -> Batch or None\n\n"
	 "Waits up to max_wait for min_batch records, then takes what there is (at\n"
	 "least one, at most batch); with nothing there, waits up to timeout seconds\n"
	 "(None: for ever) and returns None. The GIL is released while waiting and\n"
	 "Ctrl-C interrupts. Raises EngineClosedError once the engine closed and\n"
	 "everything it wrote was read."},
	{"stats", (PyCFunction)reader_stats, METH_NOARGS,
	 "stats() -> dict: written, read, filtered, dropped, pending, sleeps, wakeups,\n"
	 "lag_bytes, held, batches, copies, wake_p50_us, wake_p99_us, wake_max_us"},
	{"close", (PyCFunction)reader_close, METH_NOARGS,
	 "Detaches (at once, or when the last array of its batches is gone)."},
	{"reattach", (PyCFunction)(void (*)(void))reader_reattach, METH_VARARGS | METH_KEYWORDS,
	 "reattach(timeout=-1): the same reader, attached to a restarted engine."},
	{"fileno", (PyCFunction)reader_fileno, METH_NOARGS,
	 "The descriptor the engine wakes this reader on (for selectors), or -1 (spin=True). Call arm() before waiting on it; never read from it."},
	{"arm", (PyCFunction)reader_arm, METH_VARARGS,
	 "arm(min=min_batch) -> bool\n\n"
	 "Tells the engine to write fileno() when min records are there. True: wait\n"
	 "for fileno() to be readable, then read(timeout=0). False: they are there\n"
	 "already, read now."},
	{"ring_buffer", (PyCFunction)reader_ring_buffer, METH_VARARGS,
	 "ring_buffer(k) -> read-only uint8 array over ring k's mapping."},
	{"facts", (PyCFunction)reader_facts, METH_NOARGS, "The stream's shape and policy."},
	{"__enter__", reader_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)reader_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
	{"closed", (getter)reader_get_closed, NULL, "close() was called", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyObject *reader_repr(Reader *self)
{
	char wait[32];

	/* %f is not among PyUnicode_FromFormat's formats. */
	snprintf(wait, sizeof(wait), "%g", (double)self->max_wait_ns / 1e9);
	return PyUnicode_FromFormat("<xring.Reader of stream %s: batch %u, min_batch %u, "
				    "max_wait %s s, %s>",
				    self->stream_name, self->max, self->min, wait,
				    self->closed ? "closed" : "open");
}

PyTypeObject ReaderType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Reader",
	.tp_basicsize = sizeof(Reader),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A reader of one stream of an engine (use xring.Engine.reader()).",
	.tp_repr = (reprfunc)reader_repr,
	.tp_dealloc = (destructor)reader_dealloc,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)reader_iternext,
	.tp_methods = reader_methods,
	.tp_getset = reader_getset,
};

PyObject *reader_open(const struct open_args *a)
{
	Reader *self = PyObject_New(Reader, &ReaderType);
	if (!self)
		return NULL;
	self->r = NULL;
	self->closed = false;
	self->outstanding = 0;
	self->batches = self->copies = 0;
	self->deferred_total = 0;
	self->busy = false;
	self->n_deferred = 0;
	self->min = a->min;
	self->max = a->max;
	self->max_wait_ns = a->max_wait_ns;
	self->spin = a->spin;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_reader_attach(a->name, &a->opts, &self->r);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		Py_DECREF(self);
		return raise_xr(rc, "attach");
	}
	if (reader_learn_stream(self) < 0) {
		Py_DECREF(self);
		return NULL;
	}
	return (PyObject *)self;
}
