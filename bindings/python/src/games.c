/* SPDX-License-Identifier: MIT */
/*
 * The Games type: one control connection to an engine for its games at
 * runtime (xring/games.h): create, destroy, reset, list, close. xring.Engine
 * opens one on first use and keeps it (bindings/python/xring/__init__.py).
 *
 * Ownership. Games created owned=True belong to this connection: the
 * engine destroys them when it ends, which is close(), the object's
 * deallocation (garbage collection) or the process's death, crash
 * included (the kernel closes the socket, the engine sees it go).
 *
 * Threads. An xr_games is for one thread at a time; this object is shared
 * by whoever holds the Engine, so each call takes the object's lock (with
 * the GIL released while it waits, and while the C call blocks on the
 * engine). Calls from several threads are served one after the other.
 * A call holds a reference to the object, so deallocation never meets one
 * in progress.
 *
 * Signals. The C calls wait for the engine's reply (5 s at most; a list
 * page refused by the request rate is retried for up to 30 s as the engine
 * says, other refusals come back at once); they resume after EINTR, so
 * Ctrl-C takes effect when the call returns.
 */
#include "xring_py.h"

#include <errno.h>
#include <pythread.h>
#include <string.h>

#include "xring/games.h"

/* Larger counts are refused here, before memory is set aside for their ids
 * (the engine itself hosts at most 10,000,000 games). */
#define GAMES_CREATE_MAX 10000000ull

typedef struct {
	PyObject_HEAD
	xr_games *c;            /* NULL once closed */
	PyThread_type_lock lock; /* one C call at a time (see Threads) */
	char engine[64];
} Games;

/* Takes the object's lock, the GIL released while it waits; -1 with an
 * exception set if the connection is closed (perhaps while waiting). */
static int games_enter(Games *self)
{
	lock_nogil(self->lock);
	if (!self->c) {
		PyThread_release_lock(self->lock);
		PyErr_SetString(PyExc_ValueError, "this games connection is closed");
		return -1;
	}
	return 0;
}

static void games_leave(Games *self)
{
	PyThread_release_lock(self->lock);
}

/* An int argument in lo..hi, into *out: 0, or -1 with a TypeError (not an
 * integer: bool, float, str...) or a ValueError naming the argument. */
static int int_arg(PyObject *o, const char *what, unsigned long long lo, unsigned long long hi,
		   unsigned long long *out)
{
	PyObject *i;
	unsigned long long v;

	if (PyBool_Check(o) || !PyIndex_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be an int, not %.80s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	i = PyNumber_Index(o);
	if (!i)
		return -1;
	v = PyLong_AsUnsignedLongLong(i); /* OverflowError: negative, or past 2^64 */
	Py_DECREF(i);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		if (!PyErr_ExceptionMatches(PyExc_OverflowError))
			return -1;
		PyErr_Clear();
	} else if (v >= lo && v <= hi) {
		*out = v;
		return 0;
	}
	PyErr_Format(PyExc_ValueError, "%s must be %llu..%llu, not %R", what, lo, hi, o);
	return -1;
}

/* A str argument or None, at most max - 1 bytes. */
static int str_arg(PyObject *o, const char *what, size_t max, const char **out)
{
	Py_ssize_t len;

	if (o == Py_None) {
		*out = NULL;
		return 0;
	}
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str or None, not %.80s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	*out = PyUnicode_AsUTF8AndSize(o, &len);
	if (!*out)
		return -1;
	if ((size_t)len >= max || strlen(*out) != (size_t)len) {
		PyErr_Format(PyExc_ValueError, "%s %R is too long (at most %zu characters)", what, o,
			     max - 1);
		return -1;
	}
	return 0;
}

/* create(n, game=None, board_h=0, board_w=0, players=0, obs_dtype=None,
 * turn_limit=0, seed=0, owned=True) -> list of ids. */
static PyObject *games_create(Games *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"n",	       "game",	     "board_h", "board_w", "players",
				 "obs_dtype", "turn_limit", "seed",    "owned",	  NULL};
	PyObject *n_o, *game_o = Py_None, *dtype_o = Py_None;
	PyObject *h_o = NULL, *w_o = NULL, *p_o = NULL, *t_o = NULL, *s_o = NULL;
	unsigned long long n, h = 0, w = 0, players = 0, turns = 0, seed = 0;
	int owned = 1;
	xr_game_spec spec = {0};

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOOOOOp", kwlist, &n_o, &game_o, &h_o,
					 &w_o, &p_o, &dtype_o, &t_o, &s_o, &owned))
		return NULL;
	if (int_arg(n_o, "n", 1, GAMES_CREATE_MAX, &n) < 0 ||
	    (h_o && int_arg(h_o, "board_h", 0, 4096, &h) < 0) ||
	    (w_o && int_arg(w_o, "board_w", 0, 4096, &w) < 0) ||
	    (p_o && int_arg(p_o, "players", 0, 8, &players) < 0) ||
	    (t_o && int_arg(t_o, "turn_limit", 0, 100000000, &turns) < 0) ||
	    (s_o && int_arg(s_o, "seed", 0, UINT64_MAX - (n - 1), &seed) < 0) ||
	    str_arg(game_o, "game", sizeof(((xr_game_info *)0)->game), &spec.game) < 0 ||
	    str_arg(dtype_o, "obs_dtype", sizeof(((xr_game_info *)0)->obs_dtype), &spec.obs_dtype) < 0)
		return NULL;
	spec.board_h = (uint32_t)h;
	spec.board_w = (uint32_t)w;
	spec.players = (uint32_t)players;
	spec.turn_limit = (uint32_t)turns;
	spec.owned = owned;

	uint32_t *ids = PyMem_RawMalloc((size_t)n * sizeof(*ids));
	if (!ids)
		return PyErr_NoMemory();
	if (games_enter(self) < 0) {
		PyMem_RawFree(ids);
		return NULL;
	}
	/* One request of up to XR_GAMES_REQUEST_MAX at a time (each all or
	 * nothing), so that a refusal comes with its own code and reason. */
	unsigned long long made = 0;
	int rc = 0;
	char reason[512] = "";
	while (made < n) {
		uint32_t k = n - made < XR_GAMES_REQUEST_MAX ? (uint32_t)(n - made)
							     : XR_GAMES_REQUEST_MAX;
		spec.seed = (uint64_t)(seed + made);
		Py_BEGIN_ALLOW_THREADS
		rc = xr_games_create(self->c, &spec, k, ids + made);
		Py_END_ALLOW_THREADS
		if (rc < 0) {
			snprintf(reason, sizeof(reason), "%s", xr_last_reason());
			break;
		}
		made += (unsigned)rc;
		if ((uint32_t)rc != k) { /* not for k <= XR_GAMES_REQUEST_MAX: all or nothing */
			snprintf(reason, sizeof(reason), "the engine made %d of %u games", rc, k);
			rc = -EPROTO;
			break;
		}
	}
	games_leave(self);

	PyObject *list = PyList_New((Py_ssize_t)made);
	for (unsigned long long j = 0; list && j < made; j++) {
		PyObject *id = PyLong_FromUnsignedLong(ids[j]);
		if (!id)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)j, id);
	}
	PyMem_RawFree(ids);
	if (!list)
		return NULL;
	if (rc >= 0)
		return list;
	/* Refused: the exception carries the ids made before the refusal
	 * (exc.created; xring.Engine.create_games destroys them). */
	raise_xr_reason(rc, "create games", reason, KIND_GAMES);
	PyObject *type, *val, *tb;
	PyErr_Fetch(&type, &val, &tb);
	PyErr_NormalizeException(&type, &val, &tb);
	if (val && PyObject_SetAttrString(val, "created", list) < 0)
		PyErr_Clear();
	Py_DECREF(list);
	PyErr_Restore(type, val, tb);
	return NULL;
}

/* ids from any iterable of ints into a new array (PyMem_RawFree it), or
 * NULL with an exception set. */
static uint32_t *ids_from(PyObject *seq, uint32_t *n)
{
	PyObject *fast = PySequence_Fast(seq, "ids must be an iterable of ints");
	uint32_t *ids;

	if (!fast)
		return NULL;
	Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
	if ((unsigned long long)len > UINT32_MAX) {
		Py_DECREF(fast);
		PyErr_SetString(PyExc_ValueError, "too many ids");
		return NULL;
	}
	ids = PyMem_RawMalloc(len ? (size_t)len * sizeof(*ids) : 1);
	if (!ids) {
		Py_DECREF(fast);
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < len; i++) {
		unsigned long long v;
		if (int_arg(PySequence_Fast_GET_ITEM(fast, i), "a game id", 0, UINT32_MAX - 1, &v) <
		    0) {
			Py_DECREF(fast);
			PyMem_RawFree(ids);
			return NULL;
		}
		ids[i] = (uint32_t)v;
	}
	Py_DECREF(fast);
	*n = (uint32_t)len;
	return ids;
}

/* destroy(ids): each request of up to XR_GAMES_REQUEST_MAX ids is all or
 * nothing; ids of the requests before a refused one are destroyed. */
static PyObject *games_destroy(Games *self, PyObject *arg)
{
	uint32_t n = 0, *ids = ids_from(arg, &n);
	char reason[512] = "";
	int rc = 0;

	if (!ids)
		return NULL;
	if (n && games_enter(self) == 0) {
		Py_BEGIN_ALLOW_THREADS
		rc = xr_games_destroy(self->c, ids, n);
		Py_END_ALLOW_THREADS
		if (rc < 0)
			snprintf(reason, sizeof(reason), "%s", xr_last_reason());
		games_leave(self);
	} else if (n) {
		PyMem_RawFree(ids);
		return NULL;
	}
	PyMem_RawFree(ids);
	if (rc < 0)
		return raise_xr_reason(rc, "destroy games", reason, KIND_GAMES);
	Py_RETURN_NONE;
}

/* reset(id, seed) */
static PyObject *games_reset(Games *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"id", "seed", NULL};
	PyObject *id_o, *seed_o;
	unsigned long long id, seed;
	char reason[512] = "";
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO", kwlist, &id_o, &seed_o) ||
	    int_arg(id_o, "id", 0, UINT32_MAX - 1, &id) < 0 ||
	    int_arg(seed_o, "seed", 0, UINT64_MAX, &seed) < 0 || games_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_games_reset(self->c, (uint32_t)id, (uint64_t)seed);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		snprintf(reason, sizeof(reason), "%s", xr_last_reason());
	games_leave(self);
	if (rc < 0)
		return raise_xr_reason(rc, "reset game", reason, KIND_GAMES);
	Py_RETURN_NONE;
}

static PyObject *info_dict(const xr_game_info *g)
{
	return Py_BuildValue("{s:I,s:s,s:(II),s:I,s:s,s:I,s:K,s:I,s:I,s:I,s:K,s:I,s:i,s:O,s:O}",
			     "id", g->id, "game", g->game, "board", g->board_h, g->board_w,
			     "players", g->players, "obs_dtype", g->obs_dtype, "turn_limit",
			     g->turn_limit, "seed", (unsigned long long)g->seed, "stream", g->stream,
			     "shard", g->shard, "turn", g->turn, "episodes",
			     (unsigned long long)g->episodes, "owner_uid", g->owner_uid,
			     "owner_pid", g->owner_pid, "owned", g->owned ? Py_True : Py_False,
			     "mine", g->mine ? Py_True : Py_False);
}

#define LIST_PAGE 256

/* list() -> list of dicts, by id. Pages of LIST_PAGE, one lock each: games
 * created or destroyed between pages show or not, each game at most once
 * (ids only grow). */
static PyObject *games_list(Games *self, PyObject *unused)
{
	xr_game_info *page = PyMem_RawMalloc(LIST_PAGE * sizeof(*page));
	PyObject *out = PyList_New(0);
	uint32_t from = 0;
	char reason[512] = "";
	int n;

	(void)unused;
	if (!page || !out) {
		PyMem_RawFree(page);
		Py_XDECREF(out);
		return PyErr_NoMemory();
	}
	for (;;) {
		if (games_enter(self) < 0)
			goto fail;
		Py_BEGIN_ALLOW_THREADS
		n = xr_games_list(self->c, from, page, LIST_PAGE, NULL);
		Py_END_ALLOW_THREADS
		if (n < 0)
			snprintf(reason, sizeof(reason), "%s", xr_last_reason());
		games_leave(self);
		if (n < 0) {
			raise_xr_reason(n, "list games", reason, KIND_GAMES);
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			PyObject *d = info_dict(&page[i]);
			if (!d || PyList_Append(out, d) < 0) {
				Py_XDECREF(d);
				goto fail;
			}
			Py_DECREF(d);
		}
		if (n < LIST_PAGE || page[n - 1].id == UINT32_MAX - 1)
			break;
		from = page[n - 1].id + 1;
	}
	PyMem_RawFree(page);
	return out;
fail:
	PyMem_RawFree(page);
	Py_DECREF(out);
	return NULL;
}

static void games_close_now(Games *self)
{
	xr_games *c = self->c;

	self->c = NULL;
	if (c) {
		Py_BEGIN_ALLOW_THREADS
		xr_games_close(c);
		Py_END_ALLOW_THREADS
	}
}

static PyObject *games_close(Games *self, PyObject *unused)
{
	(void)unused;
	lock_nogil(self->lock);
	games_close_now(self);
	PyThread_release_lock(self->lock);
	Py_RETURN_NONE;
}

/* In a fork()ed child (xring's at-fork handler): lets go of the parent's
 * connection without taking the lock, which a thread of the parent may
 * have held at the fork and which nobody in the child would ever release.
 * xr_games_close() in a process other than the opener closes only this
 * copy of the socket: the parent's connection and its games stay the
 * parent's. The old lock is left as it is (freeing a lock that may be held
 * is not allowed); a new one serves any later call, which finds the object
 * closed. */
static PyObject *games_drop_after_fork(Games *self, PyObject *unused)
{
	PyThread_type_lock fresh = PyThread_allocate_lock();

	(void)unused;
	if (!fresh)
		return PyErr_NoMemory();
	xr_games_close(self->c);
	self->c = NULL;
	self->lock = fresh;
	Py_RETURN_NONE;
}

static PyObject *games_enter_ctx(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

static PyObject *games_exit_ctx(Games *self, PyObject *args)
{
	(void)args;
	return games_close(self, NULL);
}

static PyObject *games_get_closed(Games *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->c == NULL);
}

static PyObject *games_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "engine_uid", NULL};
	const char *name;
	PyObject *uid_o = NULL;
	unsigned long long uid = 0;
	char reason[512] = "";
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|O", kwlist, &name, &uid_o) ||
	    (uid_o && int_arg(uid_o, "engine_uid", 0, UINT32_MAX - 1, &uid) < 0))
		return NULL;
	Games *self = (Games *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	snprintf(self->engine, sizeof(self->engine), "%s", name);
	self->lock = PyThread_allocate_lock();
	if (!self->lock) {
		Py_DECREF(self);
		return PyErr_NoMemory();
	}
	xr_games_opts o = {.engine_uid = (uint32_t)uid};
	xr_games *c = NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = xr_games_open(name, &o, &c);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		snprintf(reason, sizeof(reason), "%s", xr_last_reason());
		Py_DECREF(self);
		return raise_xr_reason(rc, "open games", reason, KIND_READER);
	}
	self->c = c;
	return (PyObject *)self;
}

static void games_dealloc(Games *self)
{
	/* No call is in progress: each holds a reference. Closing ends the
	 * connection: the engine destroys the games it owns. */
	if (self->c)
		xr_games_close(self->c);
	self->c = NULL;
	if (self->lock)
		PyThread_free_lock(self->lock);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *games_repr(Games *self)
{
	return PyUnicode_FromFormat("<xring._xring.Games of engine %s, %s>", self->engine,
				    self->c ? "open" : "closed");
}

static PyMethodDef games_methods[] = {
	{"create", (PyCFunction)(void (*)(void))games_create, METH_VARARGS | METH_KEYWORDS,
	 "create(n, game=None, board_h=0, board_w=0, players=0, obs_dtype=None,\n"
	 "       turn_limit=0, seed=0, owned=True) -> list of ids\n\n"
	 "Creates n games (game j seeded seed + j). Zero or None: what the engine's\n"
	 "streams carry. On a refusal the exception's `created` lists the ids made\n"
	 "before it (requests of up to 1024 games are all or nothing)."},
	{"destroy", (PyCFunction)games_destroy, METH_O,
	 "destroy(ids): destroys these games (requests of up to 1024 ids are all or\n"
	 "nothing)."},
	{"reset", (PyCFunction)(void (*)(void))games_reset, METH_VARARGS | METH_KEYWORDS,
	 "reset(id, seed): ends the game's episode in flight; its next is seed's."},
	{"list", (PyCFunction)games_list, METH_NOARGS,
	 "list() -> list of dicts, one per live game, by id."},
	{"close", (PyCFunction)games_close, METH_NOARGS,
	 "Closes the connection: the engine destroys the games it created owned."},
	{"_drop_after_fork", (PyCFunction)games_drop_after_fork, METH_NOARGS,
	 "In a forked child: closes this process's copy of the parent's connection (the\n"
	 "parent's stays open, and its games), without waiting for the lock."},
	{"__enter__", games_enter_ctx, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)games_exit_ctx, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef games_getset[] = {
	{"closed", (getter)games_get_closed, NULL, "close() was called", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject GamesType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "xring._xring.Games",
	.tp_basicsize = sizeof(Games),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Games(name, engine_uid=0): a control connection for an engine's games at\n"
		  "runtime (use xring.Engine.create_games() and friends).",
	.tp_new = games_new,
	.tp_repr = (reprfunc)games_repr,
	.tp_dealloc = (destructor)games_dealloc,
	.tp_methods = games_methods,
	.tp_getset = games_getset,
};
