/* SPDX-License-Identifier: MIT */
/*
 * xring._xring: the CPython extension under the xring package. It wraps the
 * C reader library (include/xring/reader.h) and turns batches into numpy
 * arrays that are views of the ring, not copies.
 *
 * Lifetimes. Three objects carry a batch:
 *   Lease   holds the C lease (xr_batch) and a reference to its Reader. It
 *           ends the lease when the last reference to it goes.
 *   Batch   what read() returns; holds the Lease until batch.release().
 *   arrays  numpy arrays (xring.LeasedArray) whose base is the Lease, and
 *           torch tensors made from them through DLPack.
 * So the ring memory under an array or tensor stays leased as long as the
 * array lives: nothing ever reads recycled memory. batch.release() marks the
 * Lease released at once (a LeasedArray touched after that raises
 * xring.ReleasedError) and gives the lease back to the writer as soon as no
 * array holds it. A Reader closed while leases are out detaches when the
 * last one goes, so the mapping outlives every view of it.
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "xring/error.h"
#include "xring/reader.h"
#include "xring/record.h"

#define SLICE_NS 50000000ll /* longest wait without looking at signals */
#define FOREVER_NS 1000000000000000000ll /* 31 years: "no limit", and no overflow */

/* Seconds from Python into ns, clamped (a float past int64 is undefined
 * behaviour to convert): inf and anything past 31 years is FOREVER_NS. */
static int64_t secs_to_ns(double s)
{
	if (!(s > 0))
		return 0;
	if (s >= 1e9)
		return FOREVER_NS;
	return (int64_t)(s * 1e9);
}

static PyObject *leased_array_type; /* xring._array.LeasedArray */

/* ---- errors: built by xring._errors, so the classes live in Python ---- */

static PyObject *raise_xr(int code, const char *what)
{
	PyObject *mod = PyImport_ImportModule("xring._errors");
	/* The engine's reason belongs to a refused attach, nothing else. */
	bool attaching = !strcmp(what, "attach") || !strcmp(what, "reattach");
	const char *reason = attaching ? xr_last_reason() : NULL;

	if (!mod)
		return NULL;
	PyObject *exc = PyObject_CallMethod(mod, "make", "iss", code, what,
					    reason && reason[0] ? reason : xr_strerror(code));
	Py_DECREF(mod);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* ---- Reader ---- */

typedef struct {
	PyObject_HEAD
	xr_reader *r;
	uint32_t min, max;
	int64_t max_wait_ns;
	xr_stream_facts facts;  /* facts.name points at stream_name */
	char stream_name[XR_STREAM_NAME_MAX + 1];
	xr_exp_template tpl;
	bool experience;        /* records are Experience with a template */
	bool spin;              /* XR_WAIT_SPIN: no sleep for a signal to cut */
	bool closed;            /* close() called: detach when no lease is out */
	Py_ssize_t outstanding; /* Leases (and ring views) alive */
	uint64_t batches, copies;
	uint64_t deferred_total; /* releases that waited for a read() to end */
	/* A thread is in read() with the GIL released: the C reader is its
	 * alone. Leases that end meanwhile (in other threads) queue here and
	 * are released when it returns. */
	bool busy;
	uint32_t n_deferred;
	xr_batch deferred[XR_HELD_MAX];
} Reader;

static void reader_flush_deferred(Reader *self)
{
	for (uint32_t i = 0; i < self->n_deferred; i++)
		if (self->r)
			xr_batch_release(self->r, &self->deferred[i]);
	self->n_deferred = 0;
}

/* Gives a batch back now, or when the thread in read() returns (the C
 * reader is its alone meanwhile). */
static void reader_release(Reader *self, xr_batch *b)
{
	if (!self->r)
		return;
	if (self->busy && self->n_deferred < XR_HELD_MAX) {
		self->deferred[self->n_deferred++] = *b;
		self->deferred_total++;
	} else
		xr_batch_release(self->r, b); /* not busy (deferred holds every lease) */
}

static void reader_detach_now(Reader *self)
{
	if (self->r) {
		xr_reader_detach(self->r);
		self->r = NULL;
	}
}

/* ---- Lease ---- */

typedef struct {
	PyObject_HEAD
	Reader *reader;         /* strong reference */
	xr_batch b;
	bool held;              /* the C lease is still ours */
	bool released;          /* batch.release() was called */
} Lease;

static void lease_end(Lease *self)
{
	Reader *rd = self->reader;

	if (self->held)
		reader_release(rd, &self->b);
	self->held = false;
}

static void lease_dealloc(Lease *self)
{
	Reader *rd = self->reader;

	lease_end(self);
	if (rd) {
		if (--rd->outstanding == 0 && rd->closed)
			reader_detach_now(rd);
		Py_DECREF(rd);
	}
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *lease_get_released(Lease *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->released || self->reader->closed);
}

static PyGetSetDef lease_getset[] = {
	{"released", (getter)lease_get_released, NULL,
	 "True once the batch was released or its reader closed: views of it raise.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LeaseType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Lease",
	.tp_basicsize = sizeof(Lease),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "The lease under a batch's arrays (internal).",
	.tp_dealloc = (destructor)lease_dealloc,
	.tp_getset = lease_getset,
};

static Lease *lease_new(Reader *rd, const xr_batch *b)
{
	Lease *l = PyObject_New(Lease, &LeaseType);

	if (!l)
		return NULL;
	Py_INCREF(rd);
	l->reader = rd;
	rd->outstanding++;
	if (b) {
		l->b = *b;
		l->held = true;
	} else {
		memset(&l->b, 0, sizeof(l->b));
		l->held = false;
	}
	l->released = false;
	return l;
}

/* ---- Batch ---- */

enum {
	F_OBS, F_ACTION, F_REWARD, F_DONE, F_TRUNCATED, F_MASK, F_GAME_ID, F_PLAYER_ID, F_TURN,
	F_SEQ, F_T_NS, F_COUNT,
};

static const char *const field_names[F_COUNT] = {
	"obs", "action", "reward", "done", "truncated", "mask", "game_id", "player_id", "turn",
	"seq", "t_ns",
};

typedef struct {
	PyObject_HEAD
	Reader *reader;
	Lease *lease;           /* NULL once released, or when copied */
	uint32_t count, ring, dropped;
	uint64_t first_seq;
	const char *copy_reason; /* NULL: views of the ring */
	bool released;
	PyObject *fields[F_COUNT];
} Batch;

static PyTypeObject BatchType;

/* The numpy type of a field and where it sits in a record. */
static int field_layout(const Reader *rd, int f, int *typenum, uint32_t *off, int *nd,
			npy_intp *dims)
{
	const xr_exp_template *t = &rd->tpl;
	const xr_exp_shape *s = &t->shape;

	*nd = 0;
	switch (f) {
	case F_OBS:
		*typenum = s->obs_dtype == XR_DTYPE_F32 ? NPY_FLOAT32 : NPY_UINT8;
		*off = t->off_obs;
		for (uint32_t d = 0; d < s->obs_ndim; d++)
			dims[(*nd)++] = s->obs_dims[d];
		return 0;
	case F_MASK:
		*typenum = NPY_UINT8;
		*off = t->off_mask;
		dims[(*nd)++] = s->mask_len;
		return 0;
	case F_ACTION: *typenum = NPY_INT32; *off = t->off_action; return 0;
	case F_REWARD: *typenum = NPY_FLOAT32; *off = t->off_reward; return 0;
	case F_DONE: *typenum = NPY_BOOL; *off = t->off_done; return 0;
	case F_TRUNCATED: *typenum = NPY_BOOL; *off = t->off_truncated; return 0;
	case F_GAME_ID: *typenum = NPY_UINT32; *off = t->off_game_id; return 0;
	case F_PLAYER_ID: *typenum = NPY_UINT32; *off = t->off_player_id; return 0;
	case F_TURN: *typenum = NPY_UINT32; *off = t->off_turn; return 0;
	case F_SEQ: *typenum = NPY_UINT64; *off = t->off_seq; return 0;
	case F_T_NS: *typenum = NPY_UINT64; *off = t->off_t_ns; return 0;
	}
	return -1;
}

/* A view of field f over the batch's records: shape (count, *dims), the
 * first axis striding from record to record. Base: the Lease. */
static PyObject *field_view(Batch *self, int f)
{
	Reader *rd = self->reader;
	const xr_batch *b = &self->lease->b;
	npy_intp dims[1 + XR_EXP_MAX_DIMS], strides[1 + XR_EXP_MAX_DIMS];
	int typenum, nd;
	uint32_t off;

	if (field_layout(rd, f, &typenum, &off, &nd, dims + 1) < 0 ||
	    (f == F_MASK && rd->tpl.shape.mask_len == 0)) {
		Py_RETURN_NONE;
	}
	PyArray_Descr *descr = PyArray_DescrFromType(typenum);
	npy_intp item = descr->elsize;
	dims[0] = self->count;
	strides[nd] = item;
	for (int d = nd; d > 1; d--)
		strides[d - 1] = strides[d] * dims[d];
	strides[0] = b->stride;
	char *data = (char *)xr_frame_data(b->first) + off;
	PyObject *a = PyArray_NewFromDescr((PyTypeObject *)leased_array_type, descr, nd + 1, dims,
					   strides, data, 0 /* read-only */, NULL);
	if (!a)
		return NULL;
	Py_INCREF(self->lease);
	if (PyArray_SetBaseObject((PyArrayObject *)a, (PyObject *)self->lease) < 0) {
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

/* Copies every field out of records that cannot be viewed as one strided
 * array (filtered-out records between them, or a record not of the
 * stream's layout). Owned arrays, no lease. */
static int gather(Batch *self, const xr_batch *b)
{
	Reader *rd = self->reader;
	const xr_frame *fr = NULL;

	for (int f = 0; f < F_COUNT; f++) {
		npy_intp dims[1 + XR_EXP_MAX_DIMS];
		int typenum, nd;
		uint32_t off;

		field_layout(rd, f, &typenum, &off, &nd, dims + 1);
		if (f == F_MASK && rd->tpl.shape.mask_len == 0) {
			Py_INCREF(Py_None);
			self->fields[f] = Py_None;
			continue;
		}
		dims[0] = self->count;
		self->fields[f] = PyArray_SimpleNew(nd + 1, dims, typenum);
		if (!self->fields[f])
			return -1;
	}
	for (uint32_t i = 0; i < self->count; i++) {
		xr_exp_view v;
		fr = b->frames ? b->frames[i] : i ? xr_frame_next(fr) : b->first;
		if (xr_exp_view_init(&v, xr_frame_data(fr), fr->len) < 0 ||
		    v.obs_bytes != rd->tpl.obs_bytes || v.mask_len != rd->tpl.shape.mask_len) {
			PyErr_Format(PyExc_ValueError,
				     "record seq %llu is not an Experience of this stream's shape",
				     (unsigned long long)fr->seq);
			return -1;
		}
#define PUT(f, T, val) ((T *)PyArray_DATA((PyArrayObject *)self->fields[f]))[i] = (val)
		PUT(F_ACTION, int32_t, v.f.action);
		PUT(F_REWARD, float, v.f.reward);
		PUT(F_DONE, npy_bool, v.f.done);
		PUT(F_TRUNCATED, npy_bool, v.f.truncated);
		PUT(F_GAME_ID, uint32_t, v.f.game_id);
		PUT(F_PLAYER_ID, uint32_t, v.f.player_id);
		PUT(F_TURN, uint32_t, v.f.turn);
		PUT(F_SEQ, uint64_t, v.f.seq);
		PUT(F_T_NS, uint64_t, v.f.t_ns);
#undef PUT
		memcpy((char *)PyArray_DATA((PyArrayObject *)self->fields[F_OBS]) +
			       (size_t)i * v.obs_bytes,
		       v.obs, v.obs_bytes);
		if (v.mask_len)
			memcpy((char *)PyArray_DATA((PyArrayObject *)self->fields[F_MASK]) +
				       (size_t)i * v.mask_len,
			       v.mask, v.mask_len);
	}
	for (int f = 0; f < F_COUNT; f++)
		if (self->fields[f] != Py_None)
			PyArray_CLEARFLAGS((PyArrayObject *)self->fields[f], NPY_ARRAY_WRITEABLE);
	return 0;
}

/* Whether the batch's records can be viewed in place: back to back at one
 * stride, each exactly the stream's record. The reader's walk already knows
 * (stride and len), so this costs nothing per record. */
static const char *why_copy(const Reader *rd, const xr_batch *b)
{
	if (b->frames)
		return "filtered: records that did not pass lie between those that did";
	if (!b->stride)
		return "records of different sizes";
	if (b->len != rd->tpl.size)
		return "a record not of the stream's layout";
	return NULL;
}

static PyObject *batch_new(Reader *rd, const xr_batch *b)
{
	Batch *self = PyObject_GC_New(Batch, &BatchType);

	if (!self)
		return NULL;
	Py_INCREF(rd);
	self->reader = rd;
	self->lease = NULL;
	self->count = b->count;
	self->ring = b->ring;
	self->dropped = b->dropped;
	self->first_seq = b->first_seq;
	self->released = false;
	memset(self->fields, 0, sizeof(self->fields));
	self->copy_reason = why_copy(rd, b);
	rd->batches++;
	if (self->copy_reason) {
		/* Copy out, then give the records back at once. Allocating may run
		 * other threads, one of which may be in read() by the time we
		 * release: reader_release defers then. */
		int rc = gather(self, b);
		xr_batch tmp = *b;
		reader_release(rd, &tmp);
		rd->copies++;
		PyObject_GC_Track(self);
		if (rc < 0) {
			Py_DECREF(self);
			return NULL;
		}
		return (PyObject *)self;
	}
	self->lease = lease_new(rd, b);
	if (!self->lease) {
		xr_batch tmp = *b;
		reader_release(rd, &tmp);
		self->reader = rd;
		PyObject_GC_Track(self);
		Py_DECREF(self);
		return NULL;
	}
	PyObject_GC_Track(self);
	return (PyObject *)self;
}

static int batch_traverse(Batch *self, visitproc visit, void *arg)
{
	for (int f = 0; f < F_COUNT; f++)
		Py_VISIT(self->fields[f]);
	Py_VISIT(self->lease);
	Py_VISIT(self->reader);
	return 0;
}

static int batch_clear(Batch *self)
{
	for (int f = 0; f < F_COUNT; f++)
		Py_CLEAR(self->fields[f]);
	Py_CLEAR(self->lease);
	Py_CLEAR(self->reader);
	return 0;
}

static void batch_dealloc(Batch *self)
{
	PyObject_GC_UnTrack(self);
	batch_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *batch_release(Batch *self, PyObject *unused)
{
	(void)unused;
	if (!self->released) {
		self->released = true;
		if (self->lease)
			self->lease->released = true;
		/* Arrays handed out keep the Lease (and so the ring) until
		 * they go; the batch's own cache goes now. */
		for (int f = 0; f < F_COUNT; f++)
			Py_CLEAR(self->fields[f]);
		Py_CLEAR(self->lease);
	}
	Py_RETURN_NONE;
}

static PyObject *batch_field(Batch *self, void *closure)
{
	int f = (int)(intptr_t)closure;

	if (self->released) {
		PyObject *mod = PyImport_ImportModule("xring._errors");
		if (mod) {
			PyObject *cls = PyObject_GetAttrString(mod, "ReleasedError");
			if (cls) {
				PyErr_Format(cls, "batch.%s: this batch was released; its records "
						  "may be overwritten (copy what you keep before release())",
					     field_names[f]);
				Py_DECREF(cls);
			}
			Py_DECREF(mod);
		}
		return NULL;
	}
	if (!self->fields[f]) {
		self->fields[f] = field_view(self, f);
		if (!self->fields[f])
			return NULL;
	}
	Py_INCREF(self->fields[f]);
	return self->fields[f];
}

static PyObject *batch_get_ring(Batch *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->ring);
}

static PyObject *batch_get_dropped(Batch *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->dropped);
}

static PyObject *batch_get_first_seq(Batch *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(self->first_seq);
}

static PyObject *batch_get_released(Batch *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->released);
}

static PyObject *batch_get_copied(Batch *self, void *c)
{
	(void)c;
	if (!self->copy_reason)
		Py_RETURN_NONE;
	return PyUnicode_FromString(self->copy_reason);
}

static Py_ssize_t batch_len(Batch *self)
{
	return self->count;
}

static PyObject *batch_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

static PyObject *batch_exit(Batch *self, PyObject *args)
{
	(void)args;
	return batch_release(self, NULL);
}

#define FIELD(name, f, doc) {name, (getter)batch_field, NULL, doc, (void *)(intptr_t)(f)}
static PyGetSetDef batch_getset[] = {
	FIELD("obs", F_OBS, "observations, (N, C, H, W) uint8 or float32"),
	FIELD("action", F_ACTION, "actions, (N,) int32"),
	FIELD("reward", F_REWARD, "rewards, (N,) float32"),
	FIELD("done", F_DONE, "episode ended, (N,) bool"),
	FIELD("truncated", F_TRUNCATED, "episode cut at the turn limit, (N,) bool"),
	FIELD("mask", F_MASK, "legal-action masks, (N, A) uint8 (None if the game has none)"),
	FIELD("game_id", F_GAME_ID, "game ids, (N,) uint32"),
	FIELD("player_id", F_PLAYER_ID, "player ids, (N,) uint32"),
	FIELD("turn", F_TURN, "turns, (N,) uint32"),
	FIELD("seq", F_SEQ, "sequence numbers in the ring, (N,) uint64"),
	FIELD("t_ns", F_T_NS, "engine time of the step (CLOCK_MONOTONIC ns), (N,) uint64"),
	{"ring", (getter)batch_get_ring, NULL, "the ring (shard) the batch came from", NULL},
	{"dropped", (getter)batch_get_dropped, NULL, "records lost just before it (lossy)", NULL},
	{"first_seq", (getter)batch_get_first_seq, NULL, "seq of the first record", NULL},
	{"released", (getter)batch_get_released, NULL, "release() was called", NULL},
	{"copied", (getter)batch_get_copied, NULL,
	 "None when the arrays are views of the ring; else why they are a copy", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

/* torch() -> dict of tensors: xring.torch.tensors(batch). */
static PyObject *batch_torch(Batch *self, PyObject *unused)
{
	(void)unused;
	PyObject *mod = PyImport_ImportModule("xring.torch");
	if (!mod)
		return NULL;
	PyObject *t = PyObject_CallMethod(mod, "tensors", "O", (PyObject *)self);
	Py_DECREF(mod);
	return t;
}

static PyMethodDef batch_methods[] = {
	{"torch", (PyCFunction)batch_torch, METH_NOARGS,
	 "torch() -> dict of torch tensors over the same memory (DLPack, no copy);\n"
	 "each keeps the records leased while it lives."},
	{"release", (PyCFunction)batch_release, METH_NOARGS,
	 "Gives the records back to the writer. Arrays taken from the batch raise\n"
	 "xring.ReleasedError from now on; the ring stays leased until they are gone."},
	{"__enter__", batch_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)batch_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PySequenceMethods batch_as_seq = {.sq_length = (lenfunc)batch_len};

static PyObject *batch_repr(Batch *self)
{
	unsigned long long last = self->first_seq + (self->count ? self->count - 1 : 0);

	if (self->copy_reason)
		return PyUnicode_FromFormat("<xring.Batch of %u records from ring %u, seq %llu.., "
					    "copied (%s)%s>",
					    self->count, self->ring,
					    (unsigned long long)self->first_seq, self->copy_reason,
					    self->released ? ", released" : "");
	return PyUnicode_FromFormat("<xring.Batch of %u records from ring %u, seq %llu..%llu, "
				    "in place%s>",
				    self->count, self->ring, (unsigned long long)self->first_seq,
				    last, self->released ? ", released" : "");
}

static PyTypeObject BatchType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Batch",
	.tp_basicsize = sizeof(Batch),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Records read in one call, as numpy arrays over the ring.",
	.tp_repr = (reprfunc)batch_repr,
	.tp_dealloc = (destructor)batch_dealloc,
	.tp_traverse = (traverseproc)batch_traverse,
	.tp_clear = (inquiry)batch_clear,
	.tp_getset = batch_getset,
	.tp_methods = batch_methods,
	.tp_as_sequence = &batch_as_seq,
};

/* ---- Reader methods ---- */

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
	return Py_BuildValue(
		"{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:K,s:K,s:K,s:d,s:d,s:d,s:O}", "written", s.written,
		"read", s.read, "filtered", s.filtered, "dropped", s.dropped, "pending", s.pending,
		"sleeps", s.sleeps, "wakeups", s.wakeups, "lag_bytes", s.lag_bytes, "held", s.held,
		"batches", self->batches, "copies", self->copies, "deferred", self->deferred_total,
		"wake_p50_us",
		(double)s.wake_ns_p50 / 1e3, "wake_p99_us", (double)s.wake_ns_p99 / 1e3,
		"wake_max_us", (double)s.wake_ns_max / 1e3, "idle_poll",
		s.idle_poll ? Py_True : Py_False);
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

static PyObject *reader_reattach(Reader *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	double timeout = -1;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|d", kwlist, &timeout) || check_open(self) < 0)
		return NULL;
	if (self->outstanding) {
		PyErr_SetString(PyExc_RuntimeError,
				"reattach: batches or arrays of this reader are still alive; "
				"release and drop them first");
		return NULL;
	}
	self->busy = true;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_reader_reattach(self->r, timeout < 0 ? -1 : secs_to_ns(timeout));
	Py_END_ALLOW_THREADS
	self->busy = false;
	if (rc < 0)
		return raise_xr(rc, "reattach");
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
	 "The reader's eventfd (for selectors), or -1. Call arm() before waiting on it."},
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

static PyTypeObject ReaderType = {
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

/* ---- module functions ---- */

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

static PyObject *mod_open_reader(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "stream", "batch", "min_batch", "max_wait", "policy",
				 "games", "players", "min_turn", "terminal", "reward_range",
				 "sample_rate", "sample_seed", "spin", "transport", "label",
				 "idle_poll", "engine_uid", NULL};
	const char *name, *stream = NULL, *policy = NULL, *terminal = NULL, *transport = NULL;
	const char *label = "python";
	unsigned batch = 256, min_batch = 0, min_turn = 0;
	double max_wait = 0.01, sample_rate = 0;
	unsigned long long sample_seed = 0;
	PyObject *games = Py_None, *players = Py_None, *reward = Py_None;
	int spin = 0, idle_poll = 0;
	unsigned int engine_uid = 0;
	xr_id_range g[XR_FILTER_RANGES_MAX], p[XR_FILTER_RANGES_MAX];
	xr_filter f = {.games = g, .players = p};
	bool filtered = false;

	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zIIdzOOIzOdKpzspI", kwlist, &name, &stream,
					 &batch, &min_batch, &max_wait, &policy, &games, &players,
					 &min_turn, &terminal, &reward, &sample_rate, &sample_seed,
					 &spin, &transport, &label, &idle_poll, &engine_uid))
		return NULL;
	if (batch == 0 || batch > XR_BATCH_MAX)
		return PyErr_Format(PyExc_ValueError, "batch must be 1..%d", XR_BATCH_MAX);
	if (min_batch == 0)
		min_batch = batch;
	if (min_batch > batch)
		return PyErr_Format(PyExc_ValueError, "min_batch (%u) must be <= batch (%u)",
				    min_batch, batch);
	if (!(max_wait >= 0))
		return PyErr_Format(PyExc_ValueError, "max_wait must be >= 0 seconds");
	if (ranges_from(games, g, &f.n_games, "games") < 0 ||
	    ranges_from(players, p, &f.n_players, "players") < 0)
		return NULL;
	f.min_turn = min_turn;
	if (terminal) {
		if (!strcmp(terminal, "only"))
			f.terminal = XR_TERMINAL_ONLY;
		else if (!strcmp(terminal, "none"))
			f.terminal = XR_TERMINAL_NONE;
		else
			return PyErr_Format(PyExc_ValueError,
					    "terminal must be 'only', 'none' or None, not %s", terminal);
	}
	if (reward != Py_None) {
		if (!PyArg_ParseTuple(reward, "ff", &f.reward_min, &f.reward_max))
			return NULL;
		if (!(f.reward_min <= f.reward_max))
			return PyErr_Format(PyExc_ValueError, "reward_range (lo, hi) needs lo <= hi");
		f.has_reward_range = 1;
	}
	if (sample_rate != 0 && !(sample_rate > 0 && sample_rate <= 1))
		return PyErr_Format(PyExc_ValueError, "sample_rate must be in (0, 1]");
	f.sample_rate = sample_rate;
	f.sample_seed = sample_seed;
	filtered = f.n_games || f.n_players || f.min_turn || f.terminal || f.has_reward_range ||
		   (f.sample_rate > 0 && f.sample_rate < 1);

	xr_reader_opts o = {.stream = stream, .label = label, .filter = filtered ? &f : NULL,
			    .wait = spin ? XR_WAIT_SPIN
					 : idle_poll ? XR_WAIT_IDLE_POLL : XR_WAIT_DEFAULT,
			    .engine_uid = engine_uid};
	if (policy && xr_policy_parse(policy, &o.policy) < 0)
		return PyErr_Format(PyExc_ValueError,
				    "policy must be 'lossless', 'lossy' or None, not %s", policy);
	if (transport && xr_transport_parse(transport, &o.transport) < 0)
		return PyErr_Format(PyExc_ValueError, "transport must be auto, control or direct");
	if (o.transport == XR_TRANSPORT_DIRECT)
		return PyErr_Format(PyExc_ValueError,
				    "transport 'direct' is gone: readers attach through the engine's "
				    "control socket, which is how it knows who holds each slot");

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
	self->min = min_batch;
	self->max = batch;
	self->max_wait_ns = secs_to_ns(max_wait);
	self->spin = spin;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_reader_attach(name, &o, &self->r);
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

/* The DLPack structures (dlpack.h, v0.6 ABI), for torch tensors over the
 * ring: numpy refuses to export read-only arrays through DLPack. */
typedef struct {
	int32_t device_type, device_id;
} DLDevice;
typedef struct {
	uint8_t code, bits;
	uint16_t lanes;
} DLDataType;
typedef struct {
	void *data;
	DLDevice device;
	int32_t ndim;
	DLDataType dtype;
	int64_t *shape, *strides;
	uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
	DLTensor dl_tensor;
	void *manager_ctx;
	void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

struct dl_holder {
	DLManagedTensor t;
	PyObject *array;     /* keeps the array, and so its lease, alive */
	int64_t shape[NPY_MAXDIMS], strides[NPY_MAXDIMS];
};

static void dl_deleter(DLManagedTensor *t)
{
	struct dl_holder *h = t->manager_ctx;
	PyGILState_STATE st = PyGILState_Ensure();

	Py_XDECREF(h->array);
	PyMem_RawFree(h);
	PyGILState_Release(st);
}

static void dl_capsule_destructor(PyObject *cap)
{
	/* Unconsumed capsules still own their tensor. */
	if (PyCapsule_IsValid(cap, "dltensor")) {
		DLManagedTensor *t = PyCapsule_GetPointer(cap, "dltensor");
		if (t && t->deleter)
			t->deleter(t);
	}
}

static PyObject *mod_dlpack(PyObject *mod, PyObject *arg)
{
	(void)mod;
	if (!PyArray_Check(arg))
		return PyErr_Format(PyExc_TypeError, "dlpack() takes a numpy array");
	PyArrayObject *a = (PyArrayObject *)arg;
	int nd = PyArray_NDIM(a);
	npy_intp item = PyArray_ITEMSIZE(a);
	DLDataType dt = {0, (uint8_t)(item * 8), 1};

	switch (PyArray_TYPE(a)) {
	case NPY_UINT8: case NPY_UINT32: case NPY_UINT64: dt.code = 1; break; /* kDLUInt */
	case NPY_INT32: case NPY_INT64: dt.code = 0; break;                   /* kDLInt */
	case NPY_FLOAT32: case NPY_FLOAT64: dt.code = 2; break;               /* kDLFloat */
	case NPY_BOOL: dt.code = 1; break; /* as uint8: older torch lacks kDLBool */
	default:
		return PyErr_Format(PyExc_TypeError, "dlpack(): unsupported dtype");
	}
	struct dl_holder *h = PyMem_RawCalloc(1, sizeof(*h));
	if (!h)
		return PyErr_NoMemory();
	for (int d = 0; d < nd; d++) {
		if (PyArray_STRIDE(a, d) % item) {
			PyMem_RawFree(h);
			return PyErr_Format(PyExc_ValueError,
					    "dlpack(): a stride is not a multiple of the item size");
		}
		h->shape[d] = PyArray_DIM(a, d);
		h->strides[d] = PyArray_STRIDE(a, d) / item;
	}
	Py_INCREF(arg);
	h->array = arg;
	h->t = (DLManagedTensor){
		.dl_tensor = {.data = PyArray_DATA(a), .device = {1 /* kDLCPU */, 0}, .ndim = nd,
			      .dtype = dt, .shape = h->shape, .strides = h->strides},
		.manager_ctx = h,
		.deleter = dl_deleter,
	};
	PyObject *cap = PyCapsule_New(&h->t, "dltensor", dl_capsule_destructor);
	if (!cap) {
		Py_DECREF(arg);
		PyMem_RawFree(h);
	}
	return cap;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *args)
{
	int code;

	(void)mod;
	if (!PyArg_ParseTuple(args, "i", &code))
		return NULL;
	return Py_BuildValue("(ss)", xr_err_name(code), xr_strerror(code));
}

static PyObject *mod_set_array_type(PyObject *mod, PyObject *arg)
{
	(void)mod;
	if (!PyType_Check(arg) || !PyType_IsSubtype((PyTypeObject *)arg, &PyArray_Type))
		return PyErr_Format(PyExc_TypeError, "an ndarray subclass is needed");
	Py_XDECREF(leased_array_type);
	Py_INCREF(arg);
	leased_array_type = arg;
	Py_RETURN_NONE;
}

/* control_path(name, engine_uid=0): where a trusted engine called name
 * answers, or None. */
static PyObject *mod_control_path(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "engine_uid", NULL};
	const char *name;
	unsigned int uid = 0;
	char path[128];
	int rc;

	(void)mod;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|I", kwlist, &name, &uid))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_engine_socket(name, uid, path, sizeof(path));
	Py_END_ALLOW_THREADS
	if (rc < 0)
		Py_RETURN_NONE;
	return PyUnicode_FromString(path);
}

static PyMethodDef mod_methods[] = {
	{"control_path", (PyCFunction)(void (*)(void))mod_control_path, METH_VARARGS | METH_KEYWORDS,
	 "Where a trusted engine of that name answers, or None."},
	{"open_reader", (PyCFunction)(void (*)(void))mod_open_reader, METH_VARARGS | METH_KEYWORDS,
	 "Attaches a Reader (use xring.Engine.reader())."},
	{"dlpack", mod_dlpack, METH_O, "A DLPack capsule viewing a numpy array (no copy)."},
	{"strerror", mod_strerror, METH_VARARGS, "(name, text) of an xring error code."},
	{"_set_array_type", mod_set_array_type, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "xring._xring", "xring's C extension (see the xring package).", -1,
	mod_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__xring(void);
PyMODINIT_FUNC PyInit__xring(void)
{
	PyObject *m;

	import_array();
	if (PyType_Ready(&LeaseType) < 0 || PyType_Ready(&BatchType) < 0 ||
	    PyType_Ready(&ReaderType) < 0)
		return NULL;
	m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	Py_INCREF(&PyArray_Type);
	leased_array_type = (PyObject *)&PyArray_Type;
	Py_INCREF(&ReaderType);
	PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType);
	Py_INCREF(&BatchType);
	PyModule_AddObject(m, "Batch", (PyObject *)&BatchType);
	Py_INCREF(&LeaseType);
	PyModule_AddObject(m, "Lease", (PyObject *)&LeaseType);
	PyModule_AddIntConstant(m, "BATCH_MAX", XR_BATCH_MAX);
	PyModule_AddIntConstant(m, "HELD_MAX", XR_HELD_MAX);
	return m;
}
