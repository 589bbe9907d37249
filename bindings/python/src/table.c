/* SPDX-License-Identifier: MIT */
/*
 * The Table type: one trainer's handle on a replay table (xring/table.h).
 * xring.Engine.table() and create_table() make them; xring.Table
 * (bindings/python/xring/__init__.py) wraps this in the Python API.
 *
 * Memory. `items` is a read-only numpy view of the whole table, shape
 * (capacity, item_size) of uint8, over the engine's item store as this
 * process maps it: no copy. A sample returns copies of its keys, slots,
 * probabilities and weights (small), and its items are items[slots]: a
 * gather into a new array, the one copy any batch needs. Each view holds a
 * reference to the Table, so the mapping outlives every array over it:
 * close() ends the trainer (its connection and leases) at once, and the
 * mapping goes when the Table and its last view do.
 *
 * Threads and signals. One C call at a time (the object's lock, taken with
 * the GIL released while waiting). A sample or insert that may wait asks
 * the engine in slices of at most 100 ms and looks for signals between
 * them, so Ctrl-C interrupts a long wait within a slice; a new request
 * replaces the one the engine had parked.
 */
#include "xring_py.h"

#include <errno.h>
#include <math.h>
#include <pythread.h>
#include <string.h>

#include "util/clock.h"
#include "xring/table.h"

#define SLICE_MS 100

typedef struct {
	PyObject_HEAD
	xr_table *t;             /* NULL once closed */
	PyThread_type_lock lock;
	uint32_t capacity, item_size;
	bool closing;            /* close() called: disconnected, still mapped */
	bool close_asked;        /* close() waits for the lock: a waiting call
				  * gives up at its next slice (under the GIL) */
	char name[40];
} Table;

static int table_enter(Table *self)
{
	lock_nogil(self->lock);
	if (!self->t || self->closing) {
		PyThread_release_lock(self->lock);
		PyErr_SetString(PyExc_ValueError, "this table is closed");
		return -1;
	}
	return 0;
}

static void table_leave(Table *self)
{
	PyThread_release_lock(self->lock);
}

static PyObject *fail(int rc, const char *what)
{
	char reason[512];

	snprintf(reason, sizeof(reason), "%s", xr_last_reason());
	return raise_xr_reason(rc, what, reason, KIND_TABLE);
}

/* A 1-d array of n elements of type typenum, a copy of src. */
static PyObject *copy_array(int typenum, const void *src, uint32_t n, size_t elem)
{
	npy_intp dim = n;
	PyObject *a = PyArray_SimpleNew(1, &dim, typenum);

	if (a && n)
		memcpy(PyArray_DATA((PyArrayObject *)a), src, n * elem);
	return a;
}

/* Waits in slices: calls fn with at most SLICE_MS until it returns other
 * than -ETIMEDOUT or the whole timeout (ms; < 0: an hour) has passed,
 * checking signals between slices. -2 with an exception set on a signal. */
static int sliced(Table *self, int timeout_ms, int (*fn)(Table *, int, void *), void *arg)
{
	uint64_t end = xr__now_ns() + (timeout_ms < 0 ? 3600000ull : (uint64_t)timeout_ms) * 1000000ull;
	int rc;

	for (;;) {
		uint64_t now = xr__now_ns();
		int left = now >= end ? 0 : (int)((end - now) / 1000000);
		int ms = left < SLICE_MS ? left : SLICE_MS;
		Py_BEGIN_ALLOW_THREADS
		rc = fn(self, ms, arg);
		Py_END_ALLOW_THREADS
		if (rc != -ETIMEDOUT || ms == left)
			return rc;
		if (PyErr_CheckSignals() < 0)
			return -2;
		if (self->close_asked) {
			PyErr_SetString(PyExc_ValueError, "this table was closed (by another thread)");
			return -2;
		}
	}
}

struct sample_call {
	uint32_t n;
	const uint64_t *release; /* sent with the first slice only */
	uint32_t n_release;
	xr_sample s;
};

static int do_sample(Table *self, int ms, void *arg)
{
	struct sample_call *c = arg;
	int rc = xr_table_sample_release(self->t, c->n, ms, c->release, c->n_release, &c->s);

	c->n_release = 0;
	return rc;
}

static PyArrayObject *as_array(PyObject *o, int typenum, const char *what);

/* sample(n, timeout_ms[, release]) -> (keys, slots, probabilities, weights),
 * each a numpy copy; the items stay leased until release(keys). The keys in
 * release (the last batch's) are released first, in the same request. */
static PyObject *table_sample(Table *self, PyObject *args)
{
	unsigned int n;
	int timeout_ms;
	struct sample_call c = {0};
	PyObject *out = NULL, *release = Py_None;
	PyArrayObject *rel = NULL;

	if (!PyArg_ParseTuple(args, "Ii|O", &n, &timeout_ms, &release))
		return NULL;
	if (n < 1 || n > 1024)
		return PyErr_Format(PyExc_ValueError, "a sample is 1 to 1024 items, not %u", n);
	if (release != Py_None) {
		rel = as_array(release, NPY_UINT64, "release");
		if (!rel)
			return NULL;
		if (PyArray_SIZE(rel) > 1024) {
			Py_DECREF(rel);
			return PyErr_Format(PyExc_ValueError, "a sample releases at most 1024 keys");
		}
		c.release = PyArray_DATA(rel);
		c.n_release = (uint32_t)PyArray_SIZE(rel);
	}
	if (table_enter(self) < 0) {
		Py_XDECREF(rel);
		return NULL;
	}
	c.n = n;
	int rc = sliced(self, timeout_ms, do_sample, &c);
	if (rc >= 0) {
		PyObject *k = copy_array(NPY_UINT64, c.s.keys, c.s.n, 8);
		PyObject *sl = copy_array(NPY_UINT32, c.s.slots, c.s.n, 4);
		PyObject *p = copy_array(NPY_FLOAT64, c.s.prob, c.s.n, 8);
		PyObject *w = copy_array(NPY_FLOAT64, c.s.weight, c.s.n, 8);
		if (k && sl && p && w)
			out = PyTuple_Pack(4, k, sl, p, w);
		Py_XDECREF(k);
		Py_XDECREF(sl);
		Py_XDECREF(p);
		Py_XDECREF(w);
		if (!out) {
			/* Nobody will release what was sampled: do it now. */
			uint64_t keys[1024];
			memcpy(keys, c.s.keys, c.s.n * sizeof(uint64_t));
			xr_table_release(self->t, keys, c.s.n);
		}
	}
	table_leave(self);
	Py_XDECREF(rel);
	if (rc == -2)
		return NULL;
	if (rc < 0)
		return fail(rc, "sample");
	return out;
}

/* A C-contiguous array of `typenum` from o (a copy only if it is not one
 * already); NULL with an exception. */
static PyArrayObject *as_array(PyObject *o, int typenum, const char *what)
{
	PyArrayObject *a = (PyArrayObject *)PyArray_FROMANY(o, typenum, 0, 0,
							      NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED |
								      NPY_ARRAY_FORCECAST);
	if (!a)
		PyErr_Format(PyExc_TypeError, "%s must be an array of numbers", what);
	return a;
}

/* release(keys) -> how many of them this trainer held. */
static PyObject *table_release(Table *self, PyObject *keys_o)
{
	PyArrayObject *k = as_array(keys_o, NPY_UINT64, "keys");
	int rc;

	if (!k)
		return NULL;
	if (table_enter(self) < 0) {
		Py_DECREF(k);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = xr_table_release(self->t, PyArray_DATA(k), (uint32_t)PyArray_SIZE(k));
	Py_END_ALLOW_THREADS
	table_leave(self);
	Py_DECREF(k);
	if (rc < 0)
		return fail(rc, "release");
	return PyLong_FromLong(rc);
}

/* update(keys, priorities) -> (updated, refused). */
static PyObject *table_update(Table *self, PyObject *args)
{
	PyObject *ko, *po;
	PyArrayObject *k = NULL, *p = NULL;
	uint32_t refused = 0;
	int rc;

	if (!PyArg_ParseTuple(args, "OO", &ko, &po))
		return NULL;
	k = as_array(ko, NPY_UINT64, "keys");
	p = k ? as_array(po, NPY_FLOAT64, "priorities") : NULL;
	if (!p)
		goto out_err;
	if (PyArray_SIZE(k) != PyArray_SIZE(p)) {
		PyErr_Format(PyExc_ValueError, "%zd keys but %zd priorities",
			     (Py_ssize_t)PyArray_SIZE(k), (Py_ssize_t)PyArray_SIZE(p));
		goto out_err;
	}
	if (table_enter(self) < 0)
		goto out_err;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_table_update(self->t, PyArray_DATA(k), PyArray_DATA(p), (uint32_t)PyArray_SIZE(k),
			     &refused);
	Py_END_ALLOW_THREADS
	table_leave(self);
	Py_DECREF(k);
	Py_DECREF(p);
	if (rc < 0)
		return fail(rc, "update priorities");
	return Py_BuildValue("(iI)", rc, refused);
out_err:
	Py_XDECREF(k);
	Py_XDECREF(p);
	return NULL;
}

struct insert_call {
	const uint8_t *items;
	const double *prio;
	uint32_t n, done;
	uint64_t *keys;
};

static int do_insert(Table *self, int ms, void *arg)
{
	struct insert_call *c = arg;
	int rc = xr_table_insert(self->t, c->items + (uint64_t)c->done * self->item_size,
				 c->prio + c->done, c->n - c->done, ms, c->keys + c->done);

	if (rc > 0) {
		c->done += (uint32_t)rc;
		/* Not all in this slice: look for signals, then go on. */
		return c->done == c->n ? (int)c->done : -ETIMEDOUT;
	}
	return rc;
}

/* insert(items, priorities, timeout_ms) -> keys (numpy uint64) of the items
 * inserted: all of them, or those before the timeout. */
static PyObject *table_insert(Table *self, PyObject *args)
{
	PyObject *io, *po, *out = NULL;
	PyArrayObject *it = NULL, *p = NULL;
	int timeout_ms;

	if (!PyArg_ParseTuple(args, "OOi", &io, &po, &timeout_ms))
		return NULL;
	it = as_array(io, NPY_UINT8, "items");
	p = it ? as_array(po, NPY_FLOAT64, "priorities") : NULL;
	if (!p)
		goto out;
	npy_intp n = PyArray_SIZE(p);
	if (n < 1 || n > (1 << 24) || PyArray_NBYTES(it) != n * (npy_intp)self->item_size) {
		PyErr_Format(PyExc_ValueError,
			     "%zd priorities need %zd bytes of items (%u each), not %zd",
			     (Py_ssize_t)n, (Py_ssize_t)(n * (npy_intp)self->item_size),
			     self->item_size, (Py_ssize_t)PyArray_NBYTES(it));
		goto out;
	}
	npy_intp dim = n;
	PyObject *keys = PyArray_ZEROS(1, &dim, NPY_UINT64, 0);
	if (!keys)
		goto out;
	if (table_enter(self) < 0) {
		Py_DECREF(keys);
		goto out;
	}
	struct insert_call c = {.items = PyArray_DATA(it), .prio = PyArray_DATA(p),
				.n = (uint32_t)n, .keys = PyArray_DATA((PyArrayObject *)keys)};
	int rc = sliced(self, timeout_ms, do_insert, &c);
	table_leave(self);
	if (rc == -2 || (rc < 0 && !c.done)) {
		Py_DECREF(keys);
		if (rc != -2)
			fail(rc, "insert");
		goto out;
	}
	if (c.done < (uint32_t)n) {
		/* Part of them: the keys of those that went. */
		PyObject *part = copy_array(NPY_UINT64, PyArray_DATA((PyArrayObject *)keys), c.done, 8);
		Py_DECREF(keys);
		keys = part;
	}
	out = keys;
out:
	Py_XDECREF(it);
	Py_XDECREF(p);
	return out;
}

/* checkpoint(path) / restore(path) -> items written / restored. */
static PyObject *by_path(Table *self, PyObject *args, int (*fn)(xr_table *, const char *),
			 const char *what)
{
	const char *path;
	int rc;

	if (!PyArg_ParseTuple(args, "s", &path))
		return NULL;
	if (table_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = fn(self->t, path);
	Py_END_ALLOW_THREADS
	table_leave(self);
	if (rc < 0)
		return fail(rc, what);
	return PyLong_FromLong(rc);
}

static PyObject *table_checkpoint(Table *self, PyObject *args)
{
	return by_path(self, args, xr_table_checkpoint, "checkpoint");
}

static PyObject *table_restore(Table *self, PyObject *args)
{
	return by_path(self, args, xr_table_restore, "restore");
}

static PyObject *table_stats(Table *self, PyObject *unused)
{
	xr_table_stats s;

	(void)unused;
	if (table_enter(self) < 0)
		return NULL;
	xr_table_get_stats(self->t, &s);
	table_leave(self);
	static const char *const feeds[] = {"none", "feeding", "failed"};
	return Py_BuildValue("{sKsKsKsKsKsIsIsIsssK}", "size", (unsigned long long)s.size,
			     "leases", (unsigned long long)s.leases, "inserts",
			     (unsigned long long)s.inserts, "samples", (unsigned long long)s.samples,
			     "removes", (unsigned long long)s.removes, "trainers", s.trainers,
			     "capacity", s.capacity, "item_size", s.item_size, "feed",
			     s.feed < 3 ? feeds[s.feed] : "?", "feed_dropped",
			     (unsigned long long)s.feed_dropped);
}

/* What the items are: {"item": "record"}, or for transitions where each
 * field lies (xring/table.h). */
static PyObject *table_layout(Table *self, PyObject *unused)
{
	xr_item_layout l;

	(void)unused;
	if (table_enter(self) < 0)
		return NULL;
	xr_table_item_layout(self->t, &l);
	table_leave(self);
	if (l.item != XR_ITEM_TRANSITION && !l.obs_bytes)
		return Py_BuildValue("{ss}", "item", "record");
	PyObject *shape = PyTuple_New(l.shape.obs_ndim);
	if (!shape)
		return NULL;
	for (uint32_t i = 0; i < l.shape.obs_ndim; i++)
		PyTuple_SET_ITEM(shape, i, PyLong_FromLong(l.shape.obs_dims[i]));
	if (l.item != XR_ITEM_TRANSITION)
		return Py_BuildValue("{sssIsIsssN}", "item", "record", "obs_bytes", l.obs_bytes,
				     "mask_len", l.mask_len, "obs_dtype",
				     xr_dtype_name(l.shape.obs_dtype), "obs_shape", shape);
	return Py_BuildValue("{sssIsIsIsIsIsIsssN}", "item", "transition", "obs_off", l.obs_off,
			     "next_obs_off", l.next_obs_off, "mask_off", l.mask_off,
			     "next_mask_off", l.next_mask_off, "obs_bytes", l.obs_bytes,
			     "mask_len", l.mask_len, "obs_dtype", xr_dtype_name(l.shape.obs_dtype),
			     "obs_shape", shape);
}

/* _records(slots) -> a tuple of arrays, one per field (field_names' order),
 * copied out of the records in those slots of a table fed from an
 * Experience stream; each record is verified first (the table's memory is
 * the engine's, but a restore may have brought anything). For Sample: the
 * slots are its leased ones, which nothing rewrites meanwhile. */
static PyObject *table_records(Table *self, PyObject *arg)
{
	PyObject *fields[F_COUNT] = {0}, *out = NULL;
	xr_item_layout l;
	xr_exp_template tpl;

	/* A Sample's own slots: uint32, 1-d, at most a batch. Nothing is
	 * converted (a cast would wrap 2**32 to slot 0). */
	if (!PyArray_Check(arg) || PyArray_TYPE((PyArrayObject *)arg) != NPY_UINT32 ||
	    PyArray_NDIM((PyArrayObject *)arg) != 1 ||
	    PyArray_DIM((PyArrayObject *)arg, 0) > 1024 /* a sample's most */) {
		PyErr_SetString(PyExc_TypeError, "_records: slots must be a 1-d numpy uint32 array "
				"of at most 1024 (a Sample's)");
		return NULL;
	}
	PyArrayObject *slots = (PyArrayObject *)PyArray_FROMANY(arg, NPY_UINT32, 1, 1,
								NPY_ARRAY_CARRAY_RO);
	if (!slots)
		return NULL;
	if (table_enter(self) < 0)
		goto out;
	xr_table_item_layout(self->t, &l);
	if (!l.obs_bytes || l.item != XR_ITEM_RECORD || xr_exp_template_init(&tpl, &l.shape) < 0) {
		PyErr_SetString(PyExc_AttributeError,
				"this table's items are not records of a known shape (only a table "
				"fed from an Experience stream's records has them)");
		goto leave;
	}
	npy_intp n = PyArray_DIM(slots, 0);
	const uint32_t *sl = PyArray_DATA(slots);
	if (fields_new(&tpl, (uint32_t)n, fields) < 0)
		goto leave;
	for (npy_intp i = 0; i < n; i++) {
		const void *item = xr_table_item(self->t, sl[i]);
		if (!item) {
			PyErr_Format(PyExc_ValueError, "slot %u is past the table's capacity %u",
				     sl[i], self->capacity);
			goto leave;
		}
		if (fields_put(&tpl, fields, (uint32_t)i, item, self->item_size) < 0) {
			PyErr_Format(PyExc_ValueError, "the item in slot %u is not an Experience "
				     "record of the fed stream's shape", sl[i]);
			goto leave;
		}
	}
	fields_seal(fields);
	out = PyTuple_New(F_COUNT);
	for (int f = 0; out && f < F_COUNT; f++) {
		PyTuple_SET_ITEM(out, f, fields[f]);
		fields[f] = NULL;
	}
leave:
	table_leave(self);
out:
	for (int f = 0; f < F_COUNT; f++)
		Py_XDECREF(fields[f]);
	Py_DECREF(slots);
	return out;
}

/* Ends the trainer now (its leases end); the mapping stays for the views
 * until dealloc. */
static PyObject *table_close(Table *self, PyObject *unused)
{
	(void)unused;
	/* Another thread's sample or insert may hold the lock for as long as
	 * it waits: it gives up at its next slice, and we wait without the
	 * GIL, which it needs to get there. */
	self->close_asked = true;
	lock_nogil(self->lock);
	if (self->t && !self->closing) {
		self->closing = true;
		Py_BEGIN_ALLOW_THREADS
		xr_table_disconnect(self->t);
		Py_END_ALLOW_THREADS
	}
	PyThread_release_lock(self->lock);
	Py_RETURN_NONE;
}

/* A new view each time (caching it would make a cycle with its base). */
static PyObject *table_get_items(Table *self, void *c)
{
	(void)c;
	if (!self->t)
		return PyErr_Format(PyExc_ValueError, "this table is closed");
	npy_intp dims[2] = {self->capacity, self->item_size};
	const uint8_t *p0 = xr_table_item(self->t, 0);
	const uint8_t *p1 = self->capacity > 1 ? xr_table_item(self->t, 1) : p0 + 64;
	npy_intp strides[2] = {(npy_intp)(p1 - p0), 1};
	PyObject *a = PyArray_New(&PyArray_Type, 2, dims, NPY_UINT8, strides, (void *)p0, 0, 0,
				  NULL);
	if (!a)
		return NULL;
	/* Read-only (the mapping is), and keeping us (the mapping) alive. */
	PyArray_CLEARFLAGS((PyArrayObject *)a, NPY_ARRAY_WRITEABLE);
	Py_INCREF(self);
	if (PyArray_SetBaseObject((PyArrayObject *)a, (PyObject *)self) < 0) {
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

static PyObject *table_get_closed(Table *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->t == NULL || self->closing);
}

/* Table(engine, name, engine_uid=0): opens table `name` as a trainer. */
static PyObject *table_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"engine", "name", "engine_uid", NULL};
	const char *engine, *name;
	unsigned int uid = 0;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|I", kwlist, &engine, &name, &uid))
		return NULL;
	Table *self = (Table *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	snprintf(self->name, sizeof(self->name), "%s", name);
	self->lock = PyThread_allocate_lock();
	if (!self->lock) {
		Py_DECREF(self);
		return PyErr_NoMemory();
	}
	xr_table_open_opts o = {.engine_uid = uid};
	xr_table *t = NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_table_open(engine, name, &o, &t);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		Py_DECREF(self);
		return fail(rc, "open table");
	}
	xr_table_stats s;
	xr_table_get_stats(t, &s);
	self->t = t;
	self->capacity = s.capacity;
	self->item_size = s.item_size;
	return (PyObject *)self;
}

static void table_dealloc(Table *self)
{
	/* Every view holds a reference to us: they are gone. */
	if (self->t)
		xr_table_close(self->t);
	self->t = NULL;
	if (self->lock)
		PyThread_free_lock(self->lock);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *table_repr(Table *self)
{
	return PyUnicode_FromFormat("<xring._xring.Table %s, %u items of %u bytes, %s>", self->name,
				    self->capacity, self->item_size,
				    self->t && !self->closing ? "open" : "closed");
}

/* create_table(engine, name, capacity, item_size, sampler, remover, alpha,
 * beta, max_times_sampled, min_size, samples_per_insert, error_buffer,
 * seed, engine_uid, source, priority[, item]): the xring.Engine.create_table()
 * checks come first. */
PyObject *table_create_fn(PyObject *mod, PyObject *args)
{
	const char *engine, *name, *source = NULL;
	xr_table_opts o = {0};
	unsigned long long min_size, seed;
	int rc;

	(void)mod;
	if (!PyArg_ParseTuple(args, "ssIIIIddIKddKIzd|I", &engine, &name, &o.capacity,
			      &o.item_size, &o.sampler, &o.remover, &o.alpha, &o.beta,
			      &o.max_times_sampled, &min_size, &o.samples_per_insert,
			      &o.error_buffer, &seed, &o.engine_uid, &source, &o.priority, &o.item))
		return NULL;
	o.source = source;
	o.min_size = min_size;
	o.seed = seed;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_table_create(engine, name, &o);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return fail(rc, "create table");
	Py_RETURN_NONE;
}

/* drop_table(engine, name, engine_uid): xring.Engine.drop_table(). */
PyObject *table_drop_fn(PyObject *mod, PyObject *args)
{
	const char *engine, *name;
	xr_table_open_opts o = {0};
	int rc;

	(void)mod;
	if (!PyArg_ParseTuple(args, "ssI", &engine, &name, &o.engine_uid))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_table_drop(engine, name, &o);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return fail(rc, "drop table");
	Py_RETURN_NONE;
}

static PyMethodDef table_methods[] = {
	{"sample", (PyCFunction)table_sample, METH_VARARGS,
	 "sample(n, timeout_ms[, release]) -> (keys, slots, probabilities, weights)"},
	{"release", (PyCFunction)table_release, METH_O, "release(keys) -> how many were held"},
	{"update", (PyCFunction)table_update, METH_VARARGS,
	 "update(keys, priorities) -> (updated, refused)"},
	{"insert", (PyCFunction)table_insert, METH_VARARGS,
	 "insert(items, priorities, timeout_ms) -> keys"},
	{"checkpoint", (PyCFunction)table_checkpoint, METH_VARARGS,
	 "checkpoint(path) -> items written (the engine's uid only)"},
	{"restore", (PyCFunction)table_restore, METH_VARARGS,
	 "restore(path) -> items restored (the engine's uid only)"},
	{"stats", (PyCFunction)table_stats, METH_NOARGS, "the table's figures"},
	{"layout", (PyCFunction)table_layout, METH_NOARGS,
	 "what the items are, and where a transition's fields lie"},
	{"_records", (PyCFunction)table_records, METH_O,
	 "_records(slots) -> every field of the records in a Sample's leased slots (internal)"},
	{"close", (PyCFunction)table_close, METH_NOARGS,
	 "ends this trainer now (its leases); views of items stay readable"},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef table_getset[] = {
	{"items", (getter)table_get_items, NULL,
	 "every slot's item, (capacity, item_size) uint8, read-only, no copy", NULL},
	{"closed", (getter)table_get_closed, NULL, "close() was called", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject TableType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Table",
	.tp_basicsize = sizeof(Table),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Table(engine, name, engine_uid=0): a trainer of a replay table (use\n"
		  "xring.Engine.table()).",
	.tp_new = table_new,
	.tp_repr = (reprfunc)table_repr,
	.tp_dealloc = (destructor)table_dealloc,
	.tp_methods = table_methods,
	.tp_getset = table_getset,
};
