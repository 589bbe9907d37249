/* SPDX-License-Identifier: MIT */
/*
 * The Lease and Batch types: a batch's records as numpy arrays over the
 * ring (LeasedArray views), or copied out where they cannot be viewed.
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
 */
#include "xring_py.h"

#include <string.h>

PyObject *leased_array_type; /* xring._array.LeasedArray */

/* ---- Lease ---- */

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

PyTypeObject LeaseType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Lease",
	.tp_basicsize = sizeof(Lease),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "The lease under a batch's arrays (internal).",
	.tp_dealloc = (destructor)lease_dealloc,
	.tp_getset = lease_getset,
};

Lease *lease_new(Reader *rd, const xr_batch *b)
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

PyObject *raise_released(const char *fmt, const char *field)
{
	PyObject *mod = PyImport_ImportModule("xring._errors");

	if (mod) {
		PyObject *cls = PyObject_GetAttrString(mod, "ReleasedError");
		if (cls) {
			PyErr_Format(cls, fmt, field);
			Py_DECREF(cls);
		}
		Py_DECREF(mod);
	}
	return NULL;
}

const char *const field_names[F_COUNT] = {
	"obs", "action", "reward", "done", "truncated", "mask", "game_id", "player_id", "turn",
	"seq", "t_ns", "applied", "applied_by",
};

/* The numpy type of a field and where it sits in a record of template t. */
int field_layout(const xr_exp_template *t, int f, int *typenum, uint32_t *off, int *nd,
		 npy_intp *dims)
{
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
	case F_APPLIED: *typenum = NPY_INT32; *off = t->off_applied; return 0;
	case F_APPLIED_BY: *typenum = NPY_UINT8; *off = t->off_applied_by; return 0;
	}
	return -1;
}

PyObject *field_array(const xr_exp_template *t, int f, const void *first, npy_intp count,
		      npy_intp stride, PyObject *base)
{
	npy_intp dims[1 + XR_EXP_MAX_DIMS], strides[1 + XR_EXP_MAX_DIMS];
	int typenum, nd;
	uint32_t off;

	if (field_layout(t, f, &typenum, &off, &nd, dims + 1) < 0 ||
	    (f == F_MASK && t->shape.mask_len == 0)) {
		Py_RETURN_NONE;
	}
	PyArray_Descr *descr = PyArray_DescrFromType(typenum);
	npy_intp item = descr->elsize;
	dims[0] = count;
	strides[nd] = item;
	for (int d = nd; d > 1; d--)
		strides[d - 1] = strides[d] * dims[d];
	strides[0] = stride;
	char *data = (char *)first + off;
	PyObject *a = PyArray_NewFromDescr((PyTypeObject *)leased_array_type, descr, nd + 1, dims,
					   strides, data, 0 /* read-only */, NULL);
	if (!a)
		return NULL;
	Py_INCREF(base);
	if (PyArray_SetBaseObject((PyArrayObject *)a, base) < 0) {
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

/* A view of field f over the batch's records: shape (count, *dims), the
 * first axis striding from record to record. Base: the Lease. */
static PyObject *field_view(Batch *self, int f)
{
	const xr_batch *b = &self->lease->b;

	return field_array(&self->reader->tpl, f, xr_frame_data(b->first), self->count, b->stride,
			   (PyObject *)self->lease);
}

int fields_new(const xr_exp_template *t, uint32_t count, PyObject **fields)
{
	for (int f = 0; f < F_COUNT; f++) {
		npy_intp dims[1 + XR_EXP_MAX_DIMS];
		int typenum, nd;
		uint32_t off;

		field_layout(t, f, &typenum, &off, &nd, dims + 1);
		if (f == F_MASK && t->shape.mask_len == 0) {
			Py_INCREF(Py_None);
			fields[f] = Py_None;
			continue;
		}
		dims[0] = count;
		fields[f] = PyArray_SimpleNew(nd + 1, dims, typenum);
		if (!fields[f])
			return -1;
	}
	return 0;
}

int fields_put(const xr_exp_template *t, PyObject **fields, uint32_t i, const void *rec,
	       size_t len)
{
	xr_exp_view v;

	if (xr_exp_view_init(&v, rec, len) < 0 || v.obs_bytes != t->obs_bytes ||
	    v.mask_len != t->shape.mask_len || v.obs_dtype != t->shape.obs_dtype ||
	    v.obs_ndim != t->shape.obs_ndim)
		return -1;
	for (uint32_t d = 0; d < v.obs_ndim; d++)
		if (v.obs_dims[d] != t->shape.obs_dims[d])
			return -1;
#define PUT(f, T, val) ((T *)PyArray_DATA((PyArrayObject *)fields[f]))[i] = (val)
	PUT(F_ACTION, int32_t, v.f.action);
	PUT(F_REWARD, float, v.f.reward);
	PUT(F_DONE, npy_bool, v.f.done);
	PUT(F_TRUNCATED, npy_bool, v.f.truncated);
	PUT(F_GAME_ID, uint32_t, v.f.game_id);
	PUT(F_PLAYER_ID, uint32_t, v.f.player_id);
	PUT(F_TURN, uint32_t, v.f.turn);
	PUT(F_SEQ, uint64_t, v.f.seq);
	PUT(F_T_NS, uint64_t, v.f.t_ns);
	PUT(F_APPLIED, int32_t, v.f.applied);
	PUT(F_APPLIED_BY, uint8_t, v.f.applied_by);
#undef PUT
	memcpy((char *)PyArray_DATA((PyArrayObject *)fields[F_OBS]) + (size_t)i * v.obs_bytes,
	       v.obs, v.obs_bytes);
	if (v.mask_len)
		memcpy((char *)PyArray_DATA((PyArrayObject *)fields[F_MASK]) +
			       (size_t)i * v.mask_len,
		       v.mask, v.mask_len);
	return 0;
}

void fields_seal(PyObject **fields)
{
	for (int f = 0; f < F_COUNT; f++)
		if (fields[f] != Py_None)
			PyArray_CLEARFLAGS((PyArrayObject *)fields[f], NPY_ARRAY_WRITEABLE);
}

int gather_fields(const xr_exp_template *t, const xr_frame *first,
		  const xr_frame *const *frames, uint32_t count, PyObject **fields)
{
	const xr_frame *fr = NULL;

	if (fields_new(t, count, fields) < 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		fr = frames ? frames[i] : i ? xr_frame_next(fr) : first;
		if (fields_put(t, fields, i, xr_frame_data(fr), fr->len) < 0) {
			PyErr_Format(PyExc_ValueError,
				     "record seq %llu is not an Experience of this stream's shape",
				     (unsigned long long)fr->seq);
			return -1;
		}
	}
	fields_seal(fields);
	return 0;
}

/* Copies every field out of records that cannot be viewed as one strided
 * array (filtered-out records between them, or a record not of the
 * stream's layout). Owned arrays, no lease. */
static int gather(Batch *self, const xr_batch *b)
{
	return gather_fields(&self->reader->tpl, b->first, b->frames, self->count, self->fields);
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

PyObject *batch_new(Reader *rd, const xr_batch *b)
{
	Batch *self = PyObject_GC_New(Batch, &BatchType);

	if (!self) {
		/* No Batch to carry the lease: give the records back now. */
		xr_batch tmp = *b;
		reader_release(rd, &tmp);
		return NULL;
	}
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
		xr_reader_note_copy(rd->r);
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

	if (self->released)
		return raise_released("batch.%s: this batch was released; its records may be "
				      "overwritten (copy what you keep before release())",
				      field_names[f]);
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
	FIELD("applied", F_APPLIED,
	      "the action the player's previous step applied (-1: none yet, an episode's "
	      "first record), (N,) int32"),
	FIELD("applied_by", F_APPLIED_BY,
	      "who chose `applied` (xring.SOURCES: 0 NONE, 1 POLICY, 2 AGENT, 3 TIMEOUT, "
	      "4 WRONG_TURN, 5 OUT_OF_RANGE, 6 ILLEGAL), (N,) uint8"),
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

PyTypeObject BatchType = {
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
