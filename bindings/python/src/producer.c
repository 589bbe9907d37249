/* SPDX-License-Identifier: MIT */
/*
 * The Producer type: an external producer (xring/producer.h) from Python.
 * xring.Engine.producer() makes one; xring.Producer wraps it.
 *
 * Records are built in place in the producer's staging ring with the
 * stream's template (xr_exp_build), the observation and mask copied from
 * the caller's arrays: one copy, from the caller's memory into shared
 * memory, as a C producer does. write() takes one record, write_many() a
 * batch (each array with the batch on its first axis, scalars broadcast);
 * both publish once at their end.
 *
 * Threads and signals: one C call at a time (the object's lock, taken with
 * the GIL released while waiting, as Table's). A write that waits for room
 * waits in slices of at most 100 ms and looks for signals between them.
 */
#include "xring_py.h"

#include <errno.h>
#include <pythread.h>
#include <string.h>

#include "util/clock.h"
#include "xring/producer.h"

#define SLICE_NS 100000000ll

typedef struct {
	PyObject_HEAD
	xr_producer *p;          /* NULL once closed */
	PyThread_type_lock lock;
	xr_exp_template tpl;     /* the stream's, ours: it outlives close() */
	const xr_exp_template *t; /* &tpl once open */
	bool close_asked;        /* close() waits: a waiting write gives up */
} Producer;

static PyObject *fail(int rc, const char *what)
{
	char reason[512];

	snprintf(reason, sizeof(reason), "%s", xr_last_reason());
	return raise_xr_reason(rc, what, reason, KIND_PRODUCER);
}

static int enter(Producer *self)
{
	lock_nogil(self->lock);
	if (!self->p) {
		PyThread_release_lock(self->lock);
		PyErr_SetString(PyExc_ValueError, "this producer is closed");
		return -1;
	}
	return 0;
}

static void leave(Producer *self)
{
	PyThread_release_lock(self->lock);
}

/* Room for one record, waiting up to timeout_ns (< 0: for ever) in slices
 * with the GIL released. 0, or -1 with an exception. */
static int reserve(Producer *self, int64_t timeout_ns, void **dst)
{
	uint64_t start = xr__now_ns();
	int rc;

	while ((rc = xr_producer_reserve(self->p, self->t->size, dst)) == -EAGAIN) {
		int64_t left = timeout_ns < 0 ? SLICE_NS
					      : timeout_ns - (int64_t)(xr__now_ns() - start);
		if (left <= 0) {
			xr_producer_publish(self->p);
			PyErr_SetString(PyExc_TimeoutError, "write: no room in the staging ring in "
					"time (the stream's readers hold the ring: lossless)");
			return -1;
		}
		Py_BEGIN_ALLOW_THREADS
		rc = xr_producer_wait(self->p, self->t->size, left < SLICE_NS ? left : SLICE_NS);
		Py_END_ALLOW_THREADS
		if (rc < 0 && rc != -ETIMEDOUT) {
			fail(rc, "write");
			return -1;
		}
		if (PyErr_CheckSignals() < 0)
			return -1;
		if (self->close_asked) {
			PyErr_SetString(PyExc_ValueError, "this producer was closed (by another thread)");
			return -1;
		}
	}
	if (rc < 0) {
		fail(rc, "write");
		return -1;
	}
	return 0;
}

/* The columns of a write: each an array of n (n = 0: a scalar). */
struct cols {
	PyArrayObject *obs, *mask;
	PyArrayObject *action, *reward, *done, *truncated, *game_id, *player_id, *turn, *applied,
		*applied_by, *t_ns;
};

/* A column of a write: one value, or one per record (many). Nothing is
 * cast that would change a value: a float into an integer field is a
 * TypeError, an integer past its field's range (a negative into an
 * unsigned one) a ValueError; only the flags (done, truncated) take any
 * value's truth. */
static PyArrayObject *column(PyObject *o, int typenum, const char *name, npy_intp n, bool many)
{
	/* What the value is, as it is (a Python float stays a float: asked
	 * for as an integer, numpy would truncate it). A Python int is taken
	 * by Python's own conversion, which says when it does not fit. */
	PyArrayObject *raw = NULL, *a = NULL;
	if (PyLong_Check(o) && !PyBool_Check(o)) {
		int over = 0;
		long long v = PyLong_AsLongLongAndOverflow(o, &over);
		if (over > 0) {
			unsigned long long u = PyLong_AsUnsignedLongLong(o);
			if (u == (unsigned long long)-1 && PyErr_Occurred()) {
				PyErr_Format(PyExc_ValueError, "%s: past the field's range", name);
				return NULL;
			}
			raw = (PyArrayObject *)PyArray_Scalar(&u, PyArray_DescrFromType(NPY_UINT64),
							      NULL);
			raw = raw ? (PyArrayObject *)PyArray_FromAny((PyObject *)raw, NULL, 0, 0,
								     NPY_ARRAY_CARRAY_RO, NULL)
				  : NULL;
		} else if (over < 0 || (v == -1 && PyErr_Occurred())) {
			PyErr_Clear();
			PyErr_Format(PyExc_ValueError, "%s: past the field's range", name);
			return NULL;
		} else {
			npy_intp none = 0;
			raw = (PyArrayObject *)PyArray_SimpleNew(0, &none, NPY_INT64);
			if (raw)
				*(int64_t *)PyArray_DATA(raw) = v;
		}
	} else {
		raw = (PyArrayObject *)PyArray_FromAny(o, NULL, 0, 1, NPY_ARRAY_CARRAY_RO, NULL);
	}
	int as = typenum == NPY_BOOL ? NPY_BOOL : typenum == NPY_FLOAT32 ? NPY_FLOAT64
		 : typenum == NPY_UINT64			   ? NPY_UINT64
								   : NPY_INT64;

	if (!raw)
		return NULL;
	bool integral = PyArray_ISINTEGER(raw) || PyArray_ISBOOL(raw);
	if (as != NPY_BOOL && !integral && !(as == NPY_FLOAT64 && PyArray_ISFLOAT(raw))) {
		PyErr_Format(PyExc_TypeError, "%s: %s, not a value of %s", name,
			     as == NPY_FLOAT64 ? "a number" : "an integer", Py_TYPE(o)->tp_name);
		goto out;
	}
	if (PyArray_NDIM(raw) == 1 && (!many || PyArray_DIM(raw, 0) != n)) {
		PyErr_Format(PyExc_ValueError, "%s: one value%s", name,
			     many ? " or one per record" : "");
		goto out;
	}
	/* Integers into 64 bits without wrapping: an unsigned past INT64_MAX
	 * fits only an unsigned field, a negative none. */
	if (as == NPY_INT64 || as == NPY_UINT64) {
		bool neg = false, huge = false;
		PyArrayObject *w = (PyArrayObject *)PyArray_FROMANY((PyObject *)raw,
				PyArray_ISUNSIGNED(raw) ? NPY_UINT64 : NPY_INT64, 0, 1,
				NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
		if (!w)
			goto out;
		for (npy_intp i = 0; i < PyArray_SIZE(w); i++) {
			if (PyArray_TYPE(w) == NPY_UINT64)
				huge |= ((const uint64_t *)PyArray_DATA(w))[i] > INT64_MAX;
			else
				neg |= ((const int64_t *)PyArray_DATA(w))[i] < 0;
		}
		Py_DECREF(w);
		if (neg && as == NPY_UINT64) {
			PyErr_Format(PyExc_ValueError, "%s: a negative value, in a field of none", name);
			goto out;
		}
		if (huge && as == NPY_INT64) {
			PyErr_Format(PyExc_ValueError, "%s: a value past the field's range", name);
			goto out;
		}
	}
	a = (PyArrayObject *)PyArray_FROMANY((PyObject *)raw, as, 0, 1,
					     NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
	if (a && as == NPY_INT64) {
		int64_t lo = typenum == NPY_INT32 ? INT32_MIN : 0;
		int64_t hi = typenum == NPY_INT32 ? INT32_MAX : typenum == NPY_UINT8 ? UINT8_MAX
										       : UINT32_MAX;
		const int64_t *v = PyArray_DATA(a);
		for (npy_intp i = 0; i < PyArray_SIZE(a); i++)
			if (v[i] < lo || v[i] > hi) {
				PyErr_Format(PyExc_ValueError, "%s: %lld is past the field's range "
					     "%lld..%lld", name, (long long)v[i], (long long)lo,
					     (long long)hi);
				Py_CLEAR(a);
				break;
			}
	}
out:
	Py_DECREF(raw);
	return a;
}

static double col_at(PyArrayObject *a, npy_intp i)
{
	if (PyArray_NDIM(a) == 0)
		i = 0;
	switch (PyArray_TYPE(a)) {
	case NPY_INT64: return (double)((const int64_t *)PyArray_DATA(a))[i];
	case NPY_FLOAT64: return ((const double *)PyArray_DATA(a))[i];
	case NPY_BOOL: return ((const npy_bool *)PyArray_DATA(a))[i];
	}
	return 0;
}

static uint64_t col_u64(PyArrayObject *a, npy_intp i)
{
	return ((const uint64_t *)PyArray_DATA(a))[PyArray_NDIM(a) ? i : 0];
}

static void cols_free(struct cols *c)
{
	PyArrayObject **all = (PyArrayObject **)c;

	for (size_t i = 0; i < sizeof(*c) / sizeof(*all); i++)
		Py_XDECREF(all[i]);
}

/* The exception of a write that stopped after `done` of n records (they
 * are published: readers get them): says so in its message and in its
 * `written` attribute, so that a caller who tries again does not write
 * them twice. */
static void partly(npy_intp done, npy_intp n)
{
	PyObject *type, *value, *tb;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (value) {
		PyObject *written = PyLong_FromLongLong((long long)done);
		PyObject *msg = PyUnicode_FromFormat("%S (%lld of the %lld records were written "
						     "before it: e.written)",
						     value, (long long)done, (long long)n);
		if (written)
			PyObject_SetAttrString(value, "written", written);
		if (msg) {
			PyObject *args = PyTuple_Pack(1, msg);
			if (args) {
				PyObject_SetAttrString(value, "args", args);
				Py_DECREF(args);
			}
		}
		Py_XDECREF(written);
		Py_XDECREF(msg);
	}
	PyErr_Restore(type, value, tb);
}

/* write(obs, action, reward, done, truncated, game_id, player_id, turn,
 * mask, applied, applied_by, t_ns, timeout_ns, many) -> records written */
static PyObject *producer_write(Producer *self, PyObject *args)
{
	PyObject *o[12];
	long long timeout_ns;
	int many;
	struct cols c = {0};
	PyObject *out = NULL;

	if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOLp", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
			      &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &timeout_ns, &many))
		return NULL;
	if (enter(self) < 0)
		return NULL;
	const xr_exp_template *t = self->t;
	int obs_type = t->shape.obs_dtype == XR_DTYPE_F32 ? NPY_FLOAT32 : NPY_UINT8;
	if (t->shape.obs_dtype != XR_DTYPE_F32 && t->shape.obs_dtype != XR_DTYPE_U8) {
		PyErr_SetString(PyExc_TypeError, "write: this stream's observations are of a dtype "
				"the Python producer does not build (u8 and f32 only)");
		goto out;
	}
	/* The observation as it is: of the stream's dtype, or safely cast to
	 * it (a float array into a u8 stream is a TypeError, not a rounding). */
	c.obs = (PyArrayObject *)PyArray_FROMANY(o[0], obs_type, 0, 0, NPY_ARRAY_CARRAY_RO);
	if (!c.obs)
		goto out;
	npy_intp n = many ? (PyArray_NDIM(c.obs) ? PyArray_DIM(c.obs, 0) : -1) : 1;
	if (n < 0 || (uint64_t)PyArray_NBYTES(c.obs) != (uint64_t)n * t->obs_bytes) {
		PyErr_Format(PyExc_ValueError, "write: obs must be %s%llu bytes of the stream's "
			     "dtype (its shape), not %lld bytes", many ? "n x " : "",
			     (unsigned long long)t->obs_bytes, (long long)PyArray_NBYTES(c.obs));
		goto out;
	}
	if (o[8] != Py_None) {
		c.mask = (PyArrayObject *)PyArray_FROMANY(o[8], NPY_UINT8, 0, 0, NPY_ARRAY_CARRAY_RO);
		if (!c.mask)
			goto out;
		if ((uint64_t)PyArray_NBYTES(c.mask) != (uint64_t)n * t->shape.mask_len) {
			PyErr_Format(PyExc_ValueError, "write: mask must be %s%u bytes", many ? "n x " : "",
				     t->shape.mask_len);
			goto out;
		}
	}
	if (!(c.action = column(o[1], NPY_INT32, "action", n, many)) ||
	    !(c.reward = column(o[2], NPY_FLOAT32, "reward", n, many)) ||
	    !(c.done = column(o[3], NPY_BOOL, "done", n, many)) ||
	    !(c.truncated = column(o[4], NPY_BOOL, "truncated", n, many)) ||
	    !(c.game_id = column(o[5], NPY_UINT32, "game_id", n, many)) ||
	    !(c.player_id = column(o[6], NPY_UINT32, "player_id", n, many)) ||
	    !(c.turn = column(o[7], NPY_UINT32, "turn", n, many)) ||
	    !(c.applied = column(o[9], NPY_INT32, "applied", n, many)) ||
	    !(c.applied_by = column(o[10], NPY_UINT8, "applied_by", n, many)) ||
	    !(c.t_ns = column(o[11], NPY_UINT64, "t_ns", n, many)))
		goto out;
	npy_intp i;
	for (i = 0; i < n; i++) {
		void *dst;
		if (reserve(self, timeout_ns, &dst) < 0)
			break;
		xr_exp_fields f = {
			.t_ns = col_u64(c.t_ns, i), .game_id = (uint32_t)col_at(c.game_id, i),
			.player_id = (uint32_t)col_at(c.player_id, i),
			.turn = (uint32_t)col_at(c.turn, i), .action = (int32_t)col_at(c.action, i),
			.reward = (float)col_at(c.reward, i), .done = col_at(c.done, i) != 0,
			.truncated = col_at(c.truncated, i) != 0,
			.applied = (int32_t)col_at(c.applied, i),
			.applied_by = (uint8_t)col_at(c.applied_by, i)};
		xr_exp_slots s;
		xr_exp_build(t, dst, &f, &s);
		memcpy(s.obs, (const char *)PyArray_DATA(c.obs) + (size_t)i * t->obs_bytes,
		       t->obs_bytes);
		if (t->shape.mask_len)
			c.mask ? memcpy(s.mask,
					(const char *)PyArray_DATA(c.mask) +
						(size_t)i * t->shape.mask_len,
					t->shape.mask_len)
			       : memset(s.mask, 1, t->shape.mask_len); /* no mask: all legal */
		if (t->shape.extras_len)
			memset(s.extras, 0, t->shape.extras_len);
		xr_producer_commit(self->p);
	}
	int rc = xr_producer_publish(self->p);
	if (i == n && rc < 0)
		fail(rc, "write");
	else if (i == n)
		out = PyLong_FromLongLong((long long)n);
	else if (i > 0)
		partly(i, n);
out:
	cols_free(&c);
	leave(self);
	return out;
}

static PyObject *producer_flush(Producer *self, PyObject *arg)
{
	long long timeout_ns = PyLong_AsLongLong(arg);
	int rc;

	if (timeout_ns == -1 && PyErr_Occurred())
		return NULL;
	if (enter(self) < 0)
		return NULL;
	uint64_t start = xr__now_ns();
	for (;;) {
		int64_t left = timeout_ns < 0 ? SLICE_NS : timeout_ns - (int64_t)(xr__now_ns() - start);
		Py_BEGIN_ALLOW_THREADS
		rc = xr_producer_flush(self->p, left < SLICE_NS ? (left < 0 ? 0 : left) : SLICE_NS);
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT || (timeout_ns >= 0 && left <= SLICE_NS))
			break;
		if (PyErr_CheckSignals() < 0 || self->close_asked) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "this producer was closed");
			leave(self);
			return NULL;
		}
	}
	leave(self);
	if (rc == -ETIMEDOUT) {
		PyErr_SetString(PyExc_TimeoutError, "flush: the engine has not taken every "
				"published record yet (its ring is full: lossless readers hold it)");
		return NULL;
	}
	if (rc < 0)
		return fail(rc, "flush");
	Py_RETURN_NONE;
}

static PyObject *producer_stats(Producer *self, PyObject *unused)
{
	xr_producer_stats s;

	(void)unused;
	if (enter(self) < 0)
		return NULL;
	xr_producer_get_stats(self->p, &s);
	leave(self);
	return Py_BuildValue("{sKsKsKsKsIsIsKsK}", "records", (unsigned long long)s.records,
			     "dropped", (unsigned long long)s.dropped, "published",
			     (unsigned long long)s.published, "pending_bytes",
			     (unsigned long long)s.pending_bytes, "ring", s.ring, "max_len",
			     s.max_len, "resume_tag", (unsigned long long)s.resume_tag,
			     "resume_taken", (unsigned long long)s.resume_taken);
}

static PyObject *producer_close(Producer *self, PyObject *unused)
{
	(void)unused;
	self->close_asked = true;
	lock_nogil(self->lock);
	xr_producer *p = self->p;
	self->p = NULL;
	PyThread_release_lock(self->lock);
	if (p) {
		Py_BEGIN_ALLOW_THREADS
		xr_producer_close(p);
		Py_END_ALLOW_THREADS
	}
	Py_RETURN_NONE;
}

static PyObject *producer_fileno(Producer *self, PyObject *unused)
{
	(void)unused;
	if (!self->p)
		return PyErr_Format(PyExc_ValueError, "this producer is closed");
	return PyLong_FromLong(xr_producer_fd(self->p));
}

static PyObject *producer_get_closed(Producer *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->p == NULL);
}

/* The stream's record layout: what write() takes. */
static PyObject *producer_get_shape(Producer *self, void *c)
{
	(void)c;
	if (!self->t)
		Py_RETURN_NONE;
	PyObject *dims = PyTuple_New(self->t->shape.obs_ndim);
	if (!dims)
		return NULL;
	for (uint32_t i = 0; i < self->t->shape.obs_ndim; i++)
		PyTuple_SET_ITEM(dims, i, PyLong_FromLong(self->t->shape.obs_dims[i]));
	return Py_BuildValue("{sNsssIsI}", "obs_shape", dims, "obs_dtype",
			     xr_dtype_name(self->t->shape.obs_dtype), "mask_len",
			     self->t->shape.mask_len, "record_bytes", self->t->size);
}

static PyObject *producer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"engine", "stream", "stage_bytes", "engine_uid", "ring", NULL};
	const char *engine, *stream = NULL;
	unsigned long long stage = 0;
	unsigned int uid = 0, ring = 0;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zKII", kwlist, &engine, &stream, &stage, &uid,
					 &ring))
		return NULL;
	Producer *self = (Producer *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	self->lock = PyThread_allocate_lock();
	if (!self->lock) {
		Py_DECREF(self);
		return PyErr_NoMemory();
	}
	xr_producer_opts o = {.stream = stream, .stage_bytes = stage, .engine_uid = uid,
			      .ring = ring};
	xr_producer *p = NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_producer_open(engine, &o, &p);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		Py_DECREF(self);
		return fail(rc, "open producer");
	}
	self->p = p;
	self->tpl = *xr_producer_template(p); /* Experience streams only: never NULL */
	self->t = &self->tpl;
	return (PyObject *)self;
}

static void producer_dealloc(Producer *self)
{
	if (self->p)
		xr_producer_close(self->p);
	if (self->lock)
		PyThread_free_lock(self->lock);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef producer_methods[] = {
	{"_write", (PyCFunction)producer_write, METH_VARARGS,
	 "_write(obs, action, reward, done, truncated, game_id, player_id, turn, mask, applied, "
	 "applied_by, t_ns, timeout_ns, many) -> records written (internal)"},
	{"_flush", (PyCFunction)producer_flush, METH_O, "_flush(timeout_ns) (internal)"},
	{"stats", (PyCFunction)producer_stats, METH_NOARGS, "the producer's figures"},
	{"close", (PyCFunction)producer_close, METH_NOARGS,
	 "publishes and ends the producer: the engine takes what was published"},
	{"fileno", (PyCFunction)producer_fileno, METH_NOARGS,
	 "the doorbell: readable when the engine gave room back"},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef producer_getset[] = {
	{"closed", (getter)producer_get_closed, NULL, "close() was called", NULL},
	{"layout", (getter)producer_get_shape, NULL, "the stream's record shape", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ProducerType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Producer",
	.tp_basicsize = sizeof(Producer),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Producer(engine, stream=None, stage_bytes=0, engine_uid=0, ring=0): an external\n"
		  "producer of a stream (use xring.Engine.producer()).",
	.tp_new = producer_new,
	.tp_dealloc = (destructor)producer_dealloc,
	.tp_methods = producer_methods,
	.tp_getset = producer_getset,
};
