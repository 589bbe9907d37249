/* SPDX-License-Identifier: MIT */
/*
 * The Agent and ObsBatch types: acting for seats from Python (the C API is
 * xring/agent.h; xring.Agent, the Python class users get from
 * Engine.agent(), subclasses Agent and turns game ids into claims).
 *
 * Lifetimes. An agent holds one batch at a time (xr_agent_recv releases
 * the one before), so unlike a Reader's Batch an ObsBatch cannot keep its
 * records leased for as long as its arrays live. Three objects carry it:
 *   Agent       owns the C batch (cur, held) and knows the ObsBatch over
 *               it and its lease (cur_batch, cur_lease, borrowed: each
 *               clears its pointer as it goes). The lease is marked
 *               through cur_lease, not through the ObsBatch: arrays kept
 *               after the ObsBatch is gone must still raise.
 *   ObsBatch    what recv() returns; holds an AgentLease until the batch
 *               is answered or released, which marks it released at once.
 *   AgentLease  the base of the ObsBatch's arrays (LeasedArray views): its
 *               `released` makes them raise ReleasedError once the batch
 *               is answered, released, or followed by the next recv(); and
 *               it holds the Agent, whose mapping of the ring stays while
 *               any array lives (close() detaches when the last one goes).
 * What reaches the memory without asking the array (np.asarray, a torch
 * tensor) may see newer records after the release: copy what you keep.
 * claim() and release_claim() move the agent to a new reader (a new
 * mapping of the ring: xr_agent_claim re-subscribes), so they refuse while
 * any array of the old one lives (like Reader.reattach).
 *
 * Copies. The C batch is a list of frames (the agent's seats' records, in
 * ring order). Records of one stream all have the stream's size, so when
 * no other record lies between them they are equally spaced and each
 * field is one strided view, as in a Batch. Otherwise (records of other
 * seats between them) the fields are copied out; the C batch stays held
 * all the same, for send() to answer.
 *
 * Waiting. recv() is one xr_agent_recv() with the GIL released. A signal
 * that arrives while it sleeps ends the call with -EINTR (CPython's
 * handlers are installed without SA_RESTART): Python's handlers run, and
 * unless one raised (Ctrl-C), the wait resumes with the time left. A
 * spinning agent never sleeps: it waits in slices of at most 50 ms,
 * checking for signals between them (reader.c does the same).
 *
 * Threads. An Agent is for one thread at a time; while one waits in recv()
 * (GIL released), the others' calls raise RuntimeError. Arrays and batches
 * that other threads drop meanwhile touch no C state.
 *
 * Fork. A forked child must not use its parent's agent (requests of both
 * would mix on one connection, and the child's copy of the socket would
 * keep the parent's seats held after the parent died): xring's at-fork
 * handler calls _drop_after_fork(), which closes the child's copies of
 * the agent's connection and page without a word to the engine; every
 * later call raises ValueError. A child attaches an agent of its own.
 */
#include "xring_py.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xring/agent.h"

#define SLICE_NS 50000000ll /* longest wait without looking at signals */
#define CLAIMS_MAX 16       /* claims one agent holds at once (xr_agent_claim) */

typedef struct Agent Agent;

typedef struct {
	PyObject_HEAD
	Agent *agent;           /* strong reference: the mapping under the arrays */
	bool released;
} AgentLease;

typedef struct ObsBatch {
	PyObject_HEAD
	AgentLease *lease;      /* NULL once answered or released */
	const xr_exp_template *tpl; /* the Agent's, while lease holds it */
	const uint8_t *first;   /* the first record's data (views) */
	npy_intp stride;
	uint32_t count, ring, dropped;
	const char *copy_reason; /* NULL: views of the ring */
	bool released;
	PyObject *fields[F_COUNT];
} ObsBatch;

struct Agent {
	PyObject_HEAD
	xr_agent *a;            /* NULL once detached or dropped after a fork */
	pid_t pid;              /* the process that attached it */
	char engine[64];
	uint32_t max;           /* records per recv, at most */
	int64_t max_wait_ns;    /* recv()'s default wait; -1: for ever */
	bool spin;
	bool closed;            /* close() called: detach when no lease is out */
	bool forked;            /* dropped in a forked child */
	bool busy;              /* a thread is in a call with the GIL released */
	bool has_tpl;
	xr_exp_template tpl;
	bool held;              /* cur is the C batch held */
	xr_obs_batch cur;
	ObsBatch *cur_batch;    /* borrowed: the ObsBatch over cur, if alive */
	AgentLease *cur_lease;  /* borrowed: its lease, while alive (it outlives
				 * the ObsBatch when arrays of it are kept) */
	Py_ssize_t outstanding; /* AgentLeases alive */
	uint32_t claims[CLAIMS_MAX], n_claims;
	int32_t *act;           /* actions converted to int32 (max of them) */
	uint64_t batches, copies;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void agent_detach_now(Agent *self)
{
	xr_agent *a = self->a;

	self->a = NULL;
	self->held = false;
	if (a)
		xr_agent_detach(a); /* in a forked child: its copies only */
}

/* ---- AgentLease ---- */

static void alease_dealloc(AgentLease *self)
{
	Agent *ag = self->agent;

	if (ag) {
		if (ag->cur_lease == self)
			ag->cur_lease = NULL;
		if (--ag->outstanding == 0 && ag->closed)
			agent_detach_now(ag);
		Py_DECREF(ag);
	}
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *alease_get_released(AgentLease *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->released || self->agent->closed);
}

static PyGetSetDef alease_getset[] = {
	{"released", (getter)alease_get_released, NULL,
	 "True once the batch was answered or released, or its agent closed: views of it "
	 "raise.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject AgentLeaseType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.AgentLease",
	.tp_basicsize = sizeof(AgentLease),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "What keeps an agent's ring mapped under its batches' arrays (internal).",
	.tp_dealloc = (destructor)alease_dealloc,
	.tp_getset = alease_getset,
};

static AgentLease *alease_new(Agent *ag)
{
	AgentLease *l = PyObject_New(AgentLease, &AgentLeaseType);

	if (!l)
		return NULL;
	Py_INCREF(ag);
	l->agent = ag;
	l->released = false;
	ag->outstanding++;
	return l;
}

/* ---- ObsBatch ---- */

/* The held batch's Python side ends: its arrays raise from now on, and its
 * lease goes (the arrays handed out keep theirs until they go). */
static void end_batch_py(Agent *self)
{
	ObsBatch *ob = self->cur_batch;

	if (self->cur_lease)
		self->cur_lease->released = true;
	self->cur_lease = NULL;
	self->cur_batch = NULL;
	if (!ob)
		return;
	ob->released = true;
	if (ob->lease)
		ob->lease->released = true;
	for (int f = 0; f < F_COUNT; f++)
		Py_CLEAR(ob->fields[f]);
	Py_CLEAR(ob->lease);
}

/* Releases the held batch, both sides, unanswered. */
static void drop_batch(Agent *self)
{
	end_batch_py(self);
	if (self->held && self->a)
		xr_agent_release_batch(self->a, &self->cur);
	self->held = false;
}

/* Why the records of b cannot be one strided view, or NULL: they can, at
 * *first, *stride bytes apart. */
static const char *why_copy(const Agent *self, const xr_obs_batch *b, const uint8_t **first,
			    npy_intp *stride)
{
	const xr_frame *const *fr = b->frames;
	const uint8_t *f0 = (const uint8_t *)fr[0];
	npy_intp step = b->count > 1 ? (const uint8_t *)fr[1] - f0 : (npy_intp)fr[0]->size;

	*first = xr_frame_data(fr[0]);
	*stride = step;
	if (step <= 0)
		return "records out of ring order";
	for (uint32_t i = 0; i < b->count; i++) {
		if (fr[i]->len != self->tpl.size)
			return "a record not of the stream's layout";
		if ((const uint8_t *)fr[i] != f0 + (npy_intp)i * step)
			return "records of other seats lie between the agent's";
	}
	return NULL;
}

static PyObject *obs_new(Agent *self, const xr_obs_batch *b)
{
	ObsBatch *ob = PyObject_New(ObsBatch, &ObsBatchType);

	if (!ob)
		return NULL;
	memset(ob->fields, 0, sizeof(ob->fields));
	ob->count = b->count;
	ob->ring = b->ring;
	ob->dropped = b->dropped;
	ob->released = false;
	ob->tpl = &self->tpl;
	ob->lease = alease_new(self);
	if (!ob->lease) {
		ob->released = true;
		Py_DECREF(ob);
		return NULL;
	}
	ob->copy_reason = why_copy(self, b, &ob->first, &ob->stride);
	self->batches++;
	if (ob->copy_reason) {
		self->copies++;
		xr_reader_note_copy(xr_agent_reader(self->a));
		if (gather_fields(&self->tpl, b->frames[0], b->frames, b->count, ob->fields) < 0) {
			Py_DECREF(ob);
			return NULL;
		}
	}
	self->cur_batch = ob;
	self->cur_lease = ob->lease;
	return (PyObject *)ob;
}

static void obs_dealloc(ObsBatch *self)
{
	if (self->lease && self->lease->agent->cur_batch == self)
		self->lease->agent->cur_batch = NULL;
	for (int f = 0; f < F_COUNT; f++)
		Py_CLEAR(self->fields[f]);
	Py_CLEAR(self->lease);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *obs_field(ObsBatch *self, void *closure)
{
	int f = (int)(intptr_t)closure;

	if (self->released)
		return raise_released("obs_batch.%s: this batch was answered or released (send(), "
				      "step(), release(), or the next recv()); its records may be "
				      "overwritten (copy what you keep first)",
				      field_names[f]);
	if (!self->fields[f]) {
		self->fields[f] = field_array(self->tpl, f, self->first, self->count, self->stride,
					      (PyObject *)self->lease);
		if (!self->fields[f])
			return NULL;
	}
	Py_INCREF(self->fields[f]);
	return self->fields[f];
}

static PyObject *obs_get_count(ObsBatch *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->count);
}

static PyObject *obs_get_ring(ObsBatch *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->ring);
}

static PyObject *obs_get_dropped(ObsBatch *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->dropped);
}

static PyObject *obs_get_released(ObsBatch *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->released);
}

static PyObject *obs_get_copied(ObsBatch *self, void *c)
{
	(void)c;
	if (!self->copy_reason)
		Py_RETURN_NONE;
	return PyUnicode_FromString(self->copy_reason);
}

static Py_ssize_t obs_len(ObsBatch *self)
{
	return self->count;
}

static PyObject *obs_torch(ObsBatch *self, PyObject *unused)
{
	(void)unused;
	PyObject *mod = PyImport_ImportModule("xring.torch");
	if (!mod)
		return NULL;
	PyObject *t = PyObject_CallMethod(mod, "tensors", "O", (PyObject *)self);
	Py_DECREF(mod);
	return t;
}

static PyObject *obs_repr(ObsBatch *self)
{
	if (self->copy_reason)
		return PyUnicode_FromFormat("<xring.ObsBatch of %u records from ring %u, copied (%s)%s>",
					    self->count, self->ring, self->copy_reason,
					    self->released ? ", released" : "");
	return PyUnicode_FromFormat("<xring.ObsBatch of %u records from ring %u, in place%s>",
				    self->count, self->ring, self->released ? ", released" : "");
}

#define FIELD(name, f, doc) {name, (getter)obs_field, NULL, doc, (void *)(intptr_t)(f)}
static PyGetSetDef obs_getset[] = {
	FIELD("obs", F_OBS, "observations, (N, C, H, W) uint8 or float32"),
	FIELD("mask", F_MASK, "legal-action masks, (N, A) uint8 (None if the game has none)"),
	FIELD("reward", F_REWARD, "reward the seat's previous step left, (N,) float32"),
	FIELD("done", F_DONE, "episode ended, (N,) bool (no answer is asked for)"),
	FIELD("truncated", F_TRUNCATED, "episode cut short, (N,) bool (no answer is asked for)"),
	FIELD("game_id", F_GAME_ID, "game ids, (N,) uint32"),
	FIELD("player_id", F_PLAYER_ID, "player ids, (N,) uint32"),
	FIELD("turn", F_TURN, "turns, (N,) uint32"),
	FIELD("seq", F_SEQ, "sequence numbers in the ring, (N,) uint64"),
	FIELD("applied", F_APPLIED,
	      "the action the seat's previous step applied (-1: none yet), (N,) int32"),
	FIELD("applied_by", F_APPLIED_BY,
	      "who chose `applied` (xring.SOURCES: 2 AGENT, 3.. the fallbacks), (N,) uint8"),
	FIELD("action", F_ACTION, "-1 in an agent's seat's record (the answer is the agent's), "
				  "(N,) int32"),
	FIELD("t_ns", F_T_NS, "engine time of the step (CLOCK_MONOTONIC ns), (N,) uint64"),
	{"count", (getter)obs_get_count, NULL, "records in the batch (len(batch))", NULL},
	{"ring", (getter)obs_get_ring, NULL, "the ring (shard) the batch came from", NULL},
	{"dropped", (getter)obs_get_dropped, NULL,
	 "records lost before this batch (an agent reads lossy)", NULL},
	{"released", (getter)obs_get_released, NULL, "answered or released", NULL},
	{"copied", (getter)obs_get_copied, NULL,
	 "None when the arrays are views of the ring; else why they are a copy", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};
#undef FIELD

static PyMethodDef obs_methods[] = {
	{"torch", (PyCFunction)obs_torch, METH_NOARGS,
	 "torch() -> dict of torch tensors over the same memory (DLPack, no copy);\n"
	 "valid until the batch is answered or released."},
	{NULL, NULL, 0, NULL},
};

static PySequenceMethods obs_as_seq = {.sq_length = (lenfunc)obs_len};

PyTypeObject ObsBatchType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.ObsBatch",
	.tp_basicsize = sizeof(ObsBatch),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "The records of an agent's seats waiting for its answers, as numpy arrays\n"
		  "over the ring; valid until they are answered (Agent.send/step) or released.",
	.tp_repr = (reprfunc)obs_repr,
	.tp_dealloc = (destructor)obs_dealloc,
	.tp_getset = obs_getset,
	.tp_methods = obs_methods,
	.tp_as_sequence = &obs_as_seq,
};

/* ---- Agent ---- */

static int agent_check(Agent *self)
{
	if (self->forked || self->pid != getpid()) {
		PyErr_Format(PyExc_ValueError,
			     "this agent was attached by process %d: a forked child attaches an "
			     "agent of its own (Engine.agent())",
			     (int)self->pid);
		return -1;
	}
	if (self->closed || !self->a) {
		PyErr_SetString(PyExc_ValueError, "this agent is closed");
		return -1;
	}
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError,
				"another thread is in a call of this agent: an Agent is used by one "
				"thread at a time");
		return -1;
	}
	return 0;
}

/* The stream's record layout, once a claim gave the agent a reader. */
static int learn_template(Agent *self)
{
	xr_reader *r = xr_agent_reader(self->a);
	xr_stream_facts sf;

	if (!r)
		return 0;
	xr_reader_stream_facts(r, &sf);
	if (sf.record_kind != XR_RECORD_EXPERIENCE || xr_exp_template_init(&self->tpl, &sf.shape) < 0) {
		PyErr_Format(PyExc_ValueError, "stream %s does not carry Experience records",
			     sf.name);
		return -1;
	}
	self->has_tpl = true;
	return 0;
}

/* Waits for a batch until wait_ns from now (-1: for ever), as the Waiting
 * essay above says. The count (0: none came), or -1 with an exception set. */
static int wait_recv(Agent *self, int64_t wait_ns, uint32_t min, xr_obs_batch *b)
{
	int64_t until = wait_ns < 0 ? -1 : now_ns() + wait_ns;

	for (;;) {
		int64_t left = until < 0 ? -1 : until - now_ns(), slice;
		int n;

		if (until >= 0 && left < 0)
			left = 0;
		slice = self->spin && (left < 0 || left > SLICE_NS) ? SLICE_NS : left;
		self->busy = true;
		Py_BEGIN_ALLOW_THREADS
		n = xr_agent_recv(self->a, min, self->max, slice, b);
		Py_END_ALLOW_THREADS
		self->busy = false;
		if (n == -EINTR || (n == 0 && slice != left)) {
			if (PyErr_CheckSignals() < 0)
				return -1;
			continue;
		}
		if (n < 0) {
			raise_xr_reason(n, "recv", n == -EINVAL ? xr_last_reason() : NULL, 0);
			return -1;
		}
		return n;
	}
}

/* recv(timeout=None) -> ObsBatch or None */
static PyObject *agent_recv(Agent *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", "min", NULL};
	PyObject *timeout_obj = Py_None;
	int64_t wait = self->max_wait_ns;
	unsigned long long min = 1;
	xr_obs_batch b;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OK", kwlist, &timeout_obj, &min) ||
	    agent_check(self) < 0)
		return NULL;
	if (min < 1 || min > self->max) {
		PyErr_Format(PyExc_ValueError, "recv(): min must be 1..%u (the agent's batch), not %llu",
			     self->max, min);
		return NULL;
	}
	if (timeout_obj != Py_None) {
		double t = PyFloat_AsDouble(timeout_obj);
		if (t == -1 && PyErr_Occurred())
			return NULL;
		wait = secs_to_ns(t);
	}
	/* xr_agent_recv releases the held batch first: its arrays end now. */
	end_batch_py(self);
	self->held = false;
	int n = wait_recv(self, wait, (uint32_t)min, &b);
	if (n <= 0)
		return n < 0 ? NULL : (Py_INCREF(Py_None), Py_None);
	self->cur = b;
	self->held = true;
	return obs_new(self, &b);
}

/* n actions as int32 (for the held batch, or refs' rows): a pointer into
 * the array (*keep holds it) or into buf (n of them); NULL with an
 * exception set (and nothing changed). */
static const int32_t *actions_from(PyObject *obj, uint32_t n, int32_t *buf, const char *what,
				   PyObject **keep)
{
	PyArrayObject *arr = (PyArrayObject *)PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);

	*keep = NULL;
	if (!arr)
		return NULL;
	if (!PyArray_ISINTEGER(arr)) {
		PyErr_Format(PyExc_TypeError, "actions must be integers, not %R",
			     (PyObject *)PyArray_DESCR(arr));
		goto fail;
	}
	if (PyArray_NDIM(arr) != 1 || PyArray_DIM(arr, 0) != (npy_intp)n) {
		PyObject *shape = PyObject_GetAttrString((PyObject *)arr, "shape");
		PyErr_Format(PyExc_ValueError,
			     "actions: one per record of the %s, shape (%u,), not %R: nothing "
			     "was sent",
			     what, n, shape ? shape : Py_None);
		Py_XDECREF(shape);
		goto fail;
	}
	if (PyArray_TYPE(arr) == NPY_INT32 && PyArray_ISCARRAY_RO(arr)) {
		*keep = (PyObject *)arr;
		return PyArray_DATA(arr);
	}
	/* Any other integer type: through 64 bits, each checked to fit. */
	bool u64 = PyArray_ISUNSIGNED(arr) && PyArray_ITEMSIZE(arr) == 8;
	PyArrayObject *w = (PyArrayObject *)PyArray_FROM_OTF((PyObject *)arr,
							     u64 ? NPY_UINT64 : NPY_INT64,
							     NPY_ARRAY_IN_ARRAY);
	Py_DECREF(arr);
	if (!w)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		int64_t v;
		if (u64) {
			uint64_t u = ((const uint64_t *)PyArray_DATA(w))[i];
			v = u > INT32_MAX ? INT64_MAX : (int64_t)u;
		} else
			v = ((const int64_t *)PyArray_DATA(w))[i];
		if (v < INT32_MIN || v > INT32_MAX) {
			PyErr_Format(PyExc_ValueError,
				     "actions[%u] does not fit an int32: nothing was sent", i);
			Py_DECREF(w);
			return NULL;
		}
		buf[i] = (int32_t)v;
	}
	Py_DECREF(w);
	return buf;
fail:
	Py_DECREF(arr);
	return NULL;
}

/* Answers the held batch; 0, or -1 with an exception set. */
static int do_send(Agent *self, PyObject *actions)
{
	PyObject *keep;
	const int32_t *act;

	if (agent_check(self) < 0)
		return -1;
	if (!self->held) {
		PyErr_SetString(PyExc_ValueError, "send(): no batch is held (recv() first; a batch "
						  "is answered once)");
		return -1;
	}
	act = actions_from(actions, self->cur.count, self->act, "batch", &keep);
	if (!act)
		return -1;
	int rc = xr_agent_send(self->a, &self->cur, act);
	Py_XDECREF(keep);
	end_batch_py(self);
	self->held = false;
	if (rc < 0) {
		raise_xr_reason(rc, "send", xr_last_reason(), 0);
		return -1;
	}
	return 0;
}

/* xr_seat_ref is three little words: refs() hands them out as rows of a
 * (n, 3) uint64 array, and answer() takes such rows back as they are. */
_Static_assert(sizeof(xr_seat_ref) == 3 * sizeof(uint64_t) &&
		       offsetof(xr_seat_ref, game) == 8 && offsetof(xr_seat_ref, turn) == 16,
	       "xr_seat_ref is not three uint64 words");

/* refs() -> (n, 3) uint64 array */
static PyObject *agent_refs(Agent *self, PyObject *unused)
{
	(void)unused;
	if (agent_check(self) < 0)
		return NULL;
	if (!self->held) {
		PyErr_SetString(PyExc_ValueError, "refs(): no batch is held (recv() first)");
		return NULL;
	}
	npy_intp dims[2] = {(npy_intp)self->cur.count, 3};
	PyObject *out = PyArray_ZEROS(2, dims, NPY_UINT64, 0);
	if (!out)
		return NULL;
	int rc = xr_agent_refs(self->a, &self->cur,
			       (xr_seat_ref *)PyArray_DATA((PyArrayObject *)out));
	if (rc < 0) {
		Py_DECREF(out);
		raise_xr_reason(rc, "refs", xr_last_reason(), 0);
		return NULL;
	}
	return out;
}

/* answer(refs, actions) -> int */
static PyObject *agent_answer(Agent *self, PyObject *args)
{
	PyObject *refs_obj, *actions, *keep = NULL;
	PyArrayObject *refs;
	int32_t *buf = NULL;
	const int32_t *act;
	int rc;

	if (!PyArg_ParseTuple(args, "OO", &refs_obj, &actions) || agent_check(self) < 0)
		return NULL;
	refs = (PyArrayObject *)PyArray_FROM_OTF(refs_obj, NPY_UINT64, NPY_ARRAY_IN_ARRAY);
	if (!refs)
		return NULL;
	if (PyArray_NDIM(refs) != 2 || PyArray_DIM(refs, 1) != 3 ||
	    PyArray_DIM(refs, 0) > INT32_MAX) {
		PyErr_SetString(PyExc_ValueError, "answer(): refs must be rows of refs(), shape "
						  "(n, 3) uint64: nothing was sent");
		goto out;
	}
	uint32_t n = (uint32_t)PyArray_DIM(refs, 0);
	if (!(buf = PyMem_RawMalloc((n ? n : 1) * sizeof(*buf)))) {
		PyErr_NoMemory();
		goto out;
	}
	act = actions_from(actions, n, buf, "refs", &keep);
	if (!act)
		goto out;
	rc = xr_agent_answer(self->a, (const xr_seat_ref *)PyArray_DATA(refs), act, n);
	Py_XDECREF(keep);
	PyMem_RawFree(buf);
	Py_DECREF(refs);
	if (rc < 0) {
		raise_xr_reason(rc, "answer", xr_last_reason(), 0);
		return NULL;
	}
	return PyLong_FromLong(rc);
out:
	PyMem_RawFree(buf);
	Py_DECREF(refs);
	return NULL;
}

static PyObject *agent_send(Agent *self, PyObject *actions)
{
	if (do_send(self, actions) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* step(actions, timeout=None) -> ObsBatch or None */
static PyObject *agent_step(Agent *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"actions", "timeout", NULL};
	PyObject *actions, *timeout = Py_None;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &actions, &timeout) ||
	    do_send(self, actions) < 0)
		return NULL;
	PyObject *a = PyTuple_Pack(1, timeout);
	if (!a)
		return NULL;
	PyObject *b = agent_recv(self, a, NULL);
	Py_DECREF(a);
	return b;
}

static PyObject *agent_release(Agent *self, PyObject *unused)
{
	(void)unused;
	if (agent_check(self) < 0)
		return NULL;
	drop_batch(self);
	Py_RETURN_NONE;
}

/* Before a claim or a release: the held batch goes, and no array of this
 * reader may outlive it (the claim maps the ring anew). */
static int before_reclaim(Agent *self, const char *what)
{
	if (agent_check(self) < 0)
		return -1;
	drop_batch(self);
	if (self->outstanding) {
		PyErr_Format(PyExc_RuntimeError,
			     "%s: %zd arrays (or ring_buffer()s) of this agent's batches are still "
			     "alive, and the %s maps the ring anew: drop them first (copy what you "
			     "keep)",
			     what, self->outstanding, what);
		return -1;
	}
	return 0;
}

/* _claim(ranges, players) -> tuple of claim ids: one claim per (lo, hi),
 * all or none. */
static PyObject *agent_claim(Agent *self, PyObject *args)
{
	PyObject *seq, *fast;
	unsigned int players;
	uint32_t lo[CLAIMS_MAX], hi[CLAIMS_MAX], ids[CLAIMS_MAX], made = 0;
	char reason[512] = "";
	int rc = 0;

	if (!PyArg_ParseTuple(args, "OI", &seq, &players))
		return NULL;
	fast = PySequence_Fast(seq, "ranges must be a sequence of (lo, hi)");
	if (!fast)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
	if (n < 1 || n > CLAIMS_MAX - (Py_ssize_t)self->n_claims) {
		PyErr_Format(PyExc_ValueError,
			     "these games make %zd ranges of consecutive ids, and the agent holds %u "
			     "claims: an agent holds at most %d (one per range); claim fewer, wider "
			     "ranges",
			     n, self->n_claims, CLAIMS_MAX);
		Py_DECREF(fast);
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		unsigned long l, h;
		if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "kk", &l, &h) ||
		    l > h || h >= UINT32_MAX) {
			if (!PyErr_Occurred())
				PyErr_Format(PyExc_ValueError, "games %lu..%lu: not a range of ids", l, h);
			Py_DECREF(fast);
			return NULL;
		}
		lo[i] = (uint32_t)l;
		hi[i] = (uint32_t)h;
	}
	Py_DECREF(fast);
	if (before_reclaim(self, "claim") < 0)
		return NULL;
	self->busy = true;
	Py_BEGIN_ALLOW_THREADS
	for (; made < (uint32_t)n; made++) {
		rc = xr_agent_claim(self->a, lo[made], hi[made], players, &ids[made]);
		if (rc < 0) {
			snprintf(reason, sizeof(reason), "%s", xr_last_reason());
			break;
		}
	}
	if (rc < 0)
		for (uint32_t i = 0; i < made; i++)
			xr_agent_release(self->a, ids[i]);
	Py_END_ALLOW_THREADS
	self->busy = false;
	if (rc < 0)
		return raise_xr_reason(rc, "claim", reason, KIND_SEATS);
	for (uint32_t i = 0; i < made; i++)
		self->claims[self->n_claims++] = ids[i];
	if (learn_template(self) < 0)
		return NULL;
	PyObject *out = PyTuple_New(made);
	for (uint32_t i = 0; out && i < made; i++) {
		PyObject *id = PyLong_FromUnsignedLong(ids[i]);
		if (!id)
			Py_CLEAR(out);
		else
			PyTuple_SET_ITEM(out, i, id);
	}
	return out;
}

/* _release(claim id) */
static PyObject *agent_release_claim(Agent *self, PyObject *arg)
{
	unsigned long id = PyLong_AsUnsignedLong(arg);
	uint32_t k;
	char reason[512] = "";
	int rc;

	if (id == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	if (agent_check(self) < 0)
		return NULL;
	for (k = 0; k < self->n_claims && self->claims[k] != id; k++)
		;
	if (k == self->n_claims)
		return PyErr_Format(PyExc_LookupError, "release_claim: %lu is no claim of this agent "
						       "(its claims: Agent.claims)",
				    id);
	if (before_reclaim(self, "release_claim") < 0)
		return NULL;
	self->busy = true;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_agent_release(self->a, (uint32_t)id);
	if (rc < 0)
		snprintf(reason, sizeof(reason), "%s", xr_last_reason());
	Py_END_ALLOW_THREADS
	self->busy = false;
	if (rc < 0 && rc != -ENOENT)
		return raise_xr_reason(rc, "release_claim", reason, KIND_SEATS);
	self->claims[k] = self->claims[--self->n_claims];
	Py_RETURN_NONE;
}

/* reattach(timeout=None): attaches again to the restarted engine of the
 * same name and claims the same seats (new claim ids: Agent.claims). */
static int agent_reattach_call(void *ctx, int64_t slice_ns)
{
	return xr_agent_reattach(ctx, slice_ns);
}

/* reattach(timeout=None): attaches again to the restarted engine of the
 * same name and claims the same seats (new claim ids: Agent.claims). */
static PyObject *agent_reattach(Agent *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	PyObject *timeout_o = Py_None;
	int64_t timeout;
	char reason[512] = "";
	uint32_t ids[CLAIMS_MAX];
	int rc, n;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &timeout_o) ||
	    reattach_timeout(timeout_o, &timeout) < 0)
		return NULL;
	if (agent_check(self) < 0 || before_reclaim(self, "reattach") < 0)
		return NULL;
	self->busy = true;
	int interrupted = reattach_sliced(agent_reattach_call, self->a, timeout, reason,
					  sizeof(reason), &rc);
	self->busy = false;
	/* The claims it holds now, made or not: the new engine's ids. */
	n = xr_agent_claims(self->a, ids, CLAIMS_MAX);
	self->n_claims = 0;
	for (int i = 0; i < n && i < CLAIMS_MAX; i++)
		self->claims[self->n_claims++] = ids[i];
	if (interrupted < 0)
		return NULL;
	if (rc < 0)
		return raise_xr_reason(rc, "reattach", reason, KIND_SEATS);
	self->batches = 0;
	if (learn_template(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *agent_stats(Agent *self, PyObject *unused)
{
	xr_agent_stats s;
	int rc;

	(void)unused;
	if (agent_check(self) < 0)
		return NULL;
	rc = xr_agent_stats_get(self->a, &s);
	if (rc < 0)
		return raise_xr(rc, "stats");
	return Py_BuildValue(
		"{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:I,"
		"s:K,s:K,s:K}",
		"actions", s.actions, "timeouts", s.timeouts, "late", s.late, "wrong_turn",
		s.wrong_turn, "out_of_range", s.out_of_range, "illegal", s.illegal, "fallbacks",
		s.fallbacks, "waiting", s.waiting, "rtt_count", s.rtt_count, "rtt_p50_ns",
		s.rtt_p50_ns, "rtt_p99_ns", s.rtt_p99_ns, "rtt_p999_ns", s.rtt_p999_ns, "records",
		s.records, "sent", s.sent, "skipped", s.skipped, "dropped", s.dropped, "evictions",
		s.evictions, "agent",
		s.agent, "claims", s.claims, "seats", s.seats, "batches", self->batches, "copies",
		self->copies);
}

static PyObject *agent_fileno(Agent *self, PyObject *unused)
{
	(void)unused;
	if (agent_check(self) < 0)
		return NULL;
	return PyLong_FromLong(xr_agent_fd(self->a));
}

/* arm(min=1) -> True: asleep, wait for fileno(); False: records are there. */
static PyObject *agent_arm(Agent *self, PyObject *args)
{
	unsigned min = 1;
	int rc;

	if (!PyArg_ParseTuple(args, "|I", &min) || agent_check(self) < 0)
		return NULL;
	if (!xr_agent_reader(self->a))
		return PyErr_Format(PyExc_ValueError, "arm(): this agent holds no seats: claim some");
	rc = xr_agent_arm(self->a, min ? min : 1);
	if (rc == -ENOTSUP)
		return PyErr_Format(PyExc_ValueError, "arm(): a spinning agent (spin=True) is not "
						      "woken: it has nothing to arm");
	if (rc < 0)
		return raise_xr(rc, "arm");
	return PyBool_FromLong(rc == 0);
}

/* ring_buffer(k) -> read-only uint8 array over ring k's mapping. */
static PyObject *agent_ring_buffer(Agent *self, PyObject *args)
{
	unsigned k;
	const void *base;
	uint64_t len;

	if (!PyArg_ParseTuple(args, "I", &k) || agent_check(self) < 0)
		return NULL;
	xr_reader *r = xr_agent_reader(self->a);
	if (!r)
		return PyErr_Format(PyExc_ValueError, "ring_buffer(): this agent holds no seats, "
						      "and maps no ring: claim some");
	if (xr_reader_ring_memory(r, k, &base, &len) < 0)
		return PyErr_Format(PyExc_IndexError, "no ring %u in this stream", k);
	npy_intp dims[1] = {(npy_intp)len};
	PyObject *a = PyArray_New(&PyArray_Type, 1, dims, NPY_UINT8, NULL, (void *)base, 0, 0,
				  NULL);
	if (!a)
		return NULL;
	AgentLease *l = alease_new(self);
	if (!l) {
		Py_DECREF(a);
		return NULL;
	}
	if (PyArray_SetBaseObject((PyArrayObject *)a, (PyObject *)l) < 0) { /* steals l */
		Py_DECREF(a);
		return NULL;
	}
	return a;
}

static PyObject *agent_close(Agent *self, PyObject *unused)
{
	(void)unused;
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "close(): another thread is in a call of this "
						    "agent");
		return NULL;
	}
	if (!self->closed) {
		if (!self->forked && self->pid == getpid())
			drop_batch(self);
		else
			end_batch_py(self);
		self->closed = true;
		if (self->outstanding == 0)
			agent_detach_now(self);
	}
	Py_RETURN_NONE;
}

static PyObject *agent_drop_after_fork(Agent *self, PyObject *unused)
{
	(void)unused;
	self->forked = true;
	self->busy = false;
	end_batch_py(self);
	agent_detach_now(self); /* the C library closes this process's copies only */
	Py_RETURN_NONE;
}

static PyObject *agent_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

static PyObject *agent_exit(Agent *self, PyObject *args)
{
	(void)args;
	return agent_close(self, NULL);
}

static PyObject *agent_get_closed(Agent *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->closed || self->forked);
}

static PyObject *agent_get_claims(Agent *self, void *c)
{
	PyObject *t = PyTuple_New(self->n_claims);

	(void)c;
	for (uint32_t i = 0; t && i < self->n_claims; i++) {
		PyObject *id = PyLong_FromUnsignedLong(self->claims[i]);
		if (!id)
			Py_CLEAR(t);
		else
			PyTuple_SET_ITEM(t, i, id);
	}
	return t;
}

static PyObject *agent_get_batch(Agent *self, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(self->max);
}

static PyObject *agent_get_max_wait(Agent *self, void *c)
{
	(void)c;
	if (self->max_wait_ns < 0)
		Py_RETURN_NONE;
	return PyFloat_FromDouble((double)self->max_wait_ns / 1e9);
}

static PyObject *agent_get_engine(Agent *self, void *c)
{
	(void)c;
	return PyUnicode_FromString(self->engine);
}

static PyObject *agent_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "stream", "label", "capacity", "batch", "max_wait",
				 "spin", "engine_uid", NULL};
	const char *name, *stream = NULL, *label = "python";
	unsigned int capacity = 0, batch = 1024, uid = 0;
	PyObject *wait_o = Py_None;
	int spin = 0, rc;
	int64_t wait = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zzIIOpI", kwlist, &name, &stream, &label,
					 &capacity, &batch, &wait_o, &spin, &uid))
		return NULL;
	if (batch < 1 || batch > XR_BATCH_MAX)
		return PyErr_Format(PyExc_ValueError, "batch must be 1..%d, not %u", XR_BATCH_MAX,
				    batch);
	if (wait_o != Py_None) {
		double t = PyFloat_AsDouble(wait_o);
		if (t == -1 && PyErr_Occurred())
			return NULL;
		if (!(t >= 0))
			return PyErr_Format(PyExc_ValueError, "max_wait must be >= 0 seconds or None "
							      "(for ever)");
		wait = secs_to_ns(t);
	}
	if (strlen(name) >= sizeof(((Agent *)0)->engine))
		return PyErr_Format(PyExc_ValueError, "engine name %s is too long", name);
	Agent *self = (Agent *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	snprintf(self->engine, sizeof(self->engine), "%s", name);
	self->pid = getpid();
	self->max = batch;
	self->max_wait_ns = wait;
	self->spin = spin;
	self->act = PyMem_RawMalloc((size_t)batch * sizeof(int32_t));
	if (!self->act) {
		Py_DECREF(self);
		return PyErr_NoMemory();
	}
	xr_agent_opts o = {.stream = stream, .label = label, .capacity = capacity,
			   .wait = spin ? XR_WAIT_SPIN : XR_WAIT_DEFAULT, .engine_uid = uid};
	xr_agent *a = NULL;
	char reason[512] = "";
	Py_BEGIN_ALLOW_THREADS
	rc = xr_agent_attach(name, &o, &a);
	if (rc < 0)
		snprintf(reason, sizeof(reason), "%s", xr_last_reason());
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		Py_DECREF(self);
		return raise_xr_reason(rc, "attach agent", reason, KIND_AGENT);
	}
	self->a = a;
	return (PyObject *)self;
}

static void agent_dealloc(Agent *self)
{
	/* No lease or batch is alive: each holds a reference to us. */
	agent_detach_now(self);
	PyMem_RawFree(self->act);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *agent_repr(Agent *self)
{
	char wait[32];

	if (self->max_wait_ns < 0)
		snprintf(wait, sizeof(wait), "None");
	else
		snprintf(wait, sizeof(wait), "%g s", (double)self->max_wait_ns / 1e9);
	return PyUnicode_FromFormat("<xring.Agent of engine %s: %u claims, batch %u, max_wait %s, "
				    "%s>",
				    self->engine, self->n_claims, self->max, wait,
				    self->forked ? "forked (unusable here)"
				    : self->closed ? "closed" : "open");
}

static PyMethodDef agent_methods[] = {
	{"recv", (PyCFunction)(void (*)(void))agent_recv, METH_VARARGS | METH_KEYWORDS,
	 "recv(timeout=None, min=1) -> ObsBatch or None\n\n"
	 "The next records of the agent's seats (min..batch of them, or fewer if the\n"
	 "wait ends first), waiting up to timeout seconds (None: the agent's max_wait;\n"
	 "its None: for ever); None if none came. The batch held before is released first. The GIL is released\n"
	 "while waiting, and Ctrl-C interrupts."},
	{"send", (PyCFunction)agent_send, METH_O,
	 "send(actions): answers the held batch, actions[i] for record i (an integer\n"
	 "array of len(batch)), each written into its seat's action slot; then the\n"
	 "batch is released. A wrong length raises ValueError and sends nothing."},
	{"step", (PyCFunction)(void (*)(void))agent_step, METH_VARARGS | METH_KEYWORDS,
	 "step(actions, timeout=None) -> ObsBatch or None: send(actions), then recv(timeout)."},
	{"refs", (PyCFunction)agent_refs, METH_NOARGS,
	 "refs() -> (len(batch), 3) uint64 array: a copy of what identifies each record of\n"
	 "the held batch (its seat, turn and tag), to answer it with answer() after the\n"
	 "batch is released. Rows are opaque: select, reorder and stack them freely."},
	{"answer", (PyCFunction)agent_answer, METH_VARARGS,
	 "answer(refs, actions) -> int: answers the records refs' rows name, actions[i]\n"
	 "for row i, whether their batch is still held or not (a policy that needs\n"
	 "records of several batches before it acts). Final records and seats no\n"
	 "longer held are skipped; returns how many answers were written."},
	{"release", (PyCFunction)agent_release, METH_NOARGS,
	 "Releases the held batch unanswered (its seats get their fallbacks)."},
	{"_claim", (PyCFunction)agent_claim, METH_VARARGS, NULL},
	{"_release", (PyCFunction)agent_release_claim, METH_O, NULL},
	{"reattach", (PyCFunction)(void (*)(void))agent_reattach, METH_VARARGS | METH_KEYWORDS,
	 "reattach(timeout=None): after the engine restarted (recv raised ClosedError), attach "
	 "to the new one of the same name and claim the same seats again (new claim ids: "
	 "claims). Waits up to timeout seconds (None: forever) for it to come up."},
	{"stats", (PyCFunction)agent_stats, METH_NOARGS,
	 "stats() -> dict: the engine's counts of this agent (actions, timeouts, late,\n"
	 "wrong_turn, out_of_range, illegal, fallbacks, waiting, rtt_count, rtt_p50_ns,\n"
	 "rtt_p99_ns, rtt_p999_ns: twice a second), and its own (records, sent, skipped,\n"
	 "dropped, evictions, agent, claims, seats, batches, copies)."},
	{"fileno", (PyCFunction)agent_fileno, METH_NOARGS,
	 "The descriptor the engine wakes this agent on (for selectors), or -1 (spin=True,\n"
	 "or no seats). It changes with claim() and release_claim()."},
	{"arm", (PyCFunction)agent_arm, METH_VARARGS,
	 "arm(min=1) -> bool: True: wait for fileno() to be readable, then recv(0);\n"
	 "False: records are there already."},
	{"ring_buffer", (PyCFunction)agent_ring_buffer, METH_VARARGS,
	 "ring_buffer(k) -> read-only uint8 array over ring k's mapping (in-place views of\n"
	 "the agent's batches are inside it)."},
	{"close", (PyCFunction)agent_close, METH_NOARGS,
	 "Detaches (at once, or when the last array of its batches is gone): its seats go\n"
	 "back to the built-in policy."},
	{"_drop_after_fork", (PyCFunction)agent_drop_after_fork, METH_NOARGS, NULL},
	{"__enter__", agent_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)agent_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef agent_getset[] = {
	{"closed", (getter)agent_get_closed, NULL, "close() was called (or a fork left it)", NULL},
	{"claims", (getter)agent_get_claims, NULL, "the ids of the claims it holds", NULL},
	{"batch", (getter)agent_get_batch, NULL, "records per recv(), at most", NULL},
	{"max_wait", (getter)agent_get_max_wait, NULL,
	 "seconds recv() waits by default (None: for ever)", NULL},
	{"engine", (getter)agent_get_engine, NULL, "the engine's name", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject AgentType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Agent",
	.tp_basicsize = sizeof(Agent),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "An agent of an engine: acts for seats (use xring.Engine.agent()).",
	.tp_new = agent_new,
	.tp_repr = (reprfunc)agent_repr,
	.tp_dealloc = (destructor)agent_dealloc,
	.tp_methods = agent_methods,
	.tp_getset = agent_getset,
};
