/* SPDX-License-Identifier: MIT */
/*
 * xring._xring's private header: the objects its files share and the calls
 * they make across files. What the extension is: atop module.c. Why ring
 * memory under an array stays leased (Lease, Batch, arrays): the Lifetimes
 * essay atop batch.c. How read() waits and lets signals in: the Waiting
 * essay atop reader.c. Games at runtime (Games): atop games.c.
 */
#ifndef XRING_PY_H
#define XRING_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <structmember.h>

/* One numpy C-API table for the whole extension: module.c fills it
 * (import_array, with XRING_PY_IMPORT_NUMPY defined), the other files
 * share it. Without this each file would have its own, never filled. */
#define PY_ARRAY_UNIQUE_SYMBOL xring_py_numpy_api
#ifndef XRING_PY_IMPORT_NUMPY
#define NO_IMPORT_ARRAY
#endif
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <stdbool.h>
#include <stdint.h>

#include "xring/error.h"
#include "xring/reader.h"
#include "xring/record.h"

/* ---- the objects ---- */

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

typedef struct {
	PyObject_HEAD
	Reader *reader;         /* strong reference */
	xr_batch b;
	bool held;              /* the C lease is still ours */
	bool released;          /* batch.release() was called */
} Lease;

enum {
	F_OBS, F_ACTION, F_REWARD, F_DONE, F_TRUNCATED, F_MASK, F_GAME_ID, F_PLAYER_ID, F_TURN,
	F_SEQ, F_T_NS, F_APPLIED, F_APPLIED_BY, F_COUNT,
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

extern PyTypeObject ReaderType; /* reader.c */
extern PyTypeObject LeaseType;  /* batch.c */
extern PyTypeObject BatchType;  /* batch.c */
extern PyTypeObject GamesType;  /* games.c */
extern PyTypeObject AgentType, ObsBatchType, AgentLeaseType; /* agent.c */
extern PyTypeObject TableType;  /* table.c */
extern PyTypeObject ProducerType; /* producer.c */
PyObject *table_create_fn(PyObject *mod, PyObject *args); /* table.c */
PyObject *table_drop_fn(PyObject *mod, PyObject *args);   /* table.c */
extern PyObject *leased_array_type; /* xring._array.LeasedArray (batch.c; module.c sets it) */

/* What open_reader's arguments ask for, checked. It points into itself
 * (opts.filter at filter, filter.games at games...) and into the call's
 * arguments (name, opts.stream...): use it in place, during that call. */
struct open_args {
	const char *name;        /* the engine's */
	xr_reader_opts opts;     /* .filter: &filter, or NULL when it lets all through */
	xr_filter filter;
	xr_id_range games[XR_FILTER_RANGES_MAX], players[XR_FILTER_RANGES_MAX];
	uint32_t min, max;       /* min_batch, batch */
	int64_t max_wait_ns;
	bool spin;
};

/* ---- calls across files ---- */

/* Takes an object's lock; when another thread holds it, waits with the GIL
 * released (that thread may need the GIL to get to its release: a sample
 * or write waiting in slices, a close asked meanwhile). */
static inline void lock_nogil(PyThread_type_lock lock)
{
	if (!PyThread_acquire_lock(lock, NOWAIT_LOCK)) {
		Py_BEGIN_ALLOW_THREADS
		PyThread_acquire_lock(lock, WAIT_LOCK);
		Py_END_ALLOW_THREADS
	}
}

/* errors.c: sets the xring._errors exception for code; returns NULL. */
PyObject *raise_xr(int code, const char *what);
/* What a call was, for the codes that mean something else in each. */
enum {
	KIND_READER = 0, /* attach, read...: xring._errors._BY_CODE */
	KIND_GAMES = 1,  /* a game request: NoSuchGameError, GameLimitError */
	KIND_AGENT = 2,  /* an agent's attach: TooManyAgentsError */
	KIND_SEATS = 3,  /* a claim of seats: SeatTakenError */
	KIND_TABLE = 4,  /* a replay table's: NoSuchTableError, TableExistsError */
	KIND_PRODUCER = 5, /* a producer's: NoProducerSlotError, ProducerEndedError */
};
/* errors.c: the same with the engine's reason (NULL or "": the code's
 * text); kind: KIND_*, what the call was. */
PyObject *raise_xr_reason(int code, const char *what, const char *reason, int kind);

/* options.c: seconds into ns, clamped: <= 0 or NaN is 0, past 31 years "forever". */
int64_t secs_to_ns(double s);
/* reattach.c: a reattach's timeout (None: -1, for ever) into *ns: 0, or -1
 * with ValueError (NaN, negative) or TypeError set. */
int reattach_timeout(PyObject *o, int64_t *ns);
/* reattach.c: call(ctx, slice) in slices of at most 50 ms, the GIL released
 * in each, signal handlers run between, until it returns other than
 * -ETIMEDOUT or -EAGAIN or timeout_ns (< 0: never) has passed; its last
 * return in *rc, xr_last_reason() of a failed one in reason. 0, or -1 with
 * the exception a signal handler raised (Ctrl-C). */
int reattach_sliced(int (*call)(void *ctx, int64_t slice_ns), void *ctx, int64_t timeout_ns,
		    char *reason, size_t len, int *rc);
/* options.c: open_reader's arguments into *a: 0, or -1 with an exception set. */
int open_args_parse(PyObject *args, PyObject *kw, struct open_args *a);

/* reader.c: a new Reader attached as a asks, or NULL with an exception set. */
PyObject *reader_open(const struct open_args *a);
/* reader.c: gives a batch back now, or when the thread in read() returns. */
void reader_release(Reader *self, xr_batch *b);
/* reader.c: detaches the C reader, if still attached. */
void reader_detach_now(Reader *self);

/* batch.c: the names of the fields (F_*), as Python knows them. */
extern const char *const field_names[F_COUNT];
/* batch.c: the numpy type of field f, where it sits in a record of template
 * t, and its dimensions per record (*nd of them into dims): 0, or -1 for no
 * such field. */
int field_layout(const xr_exp_template *t, int f, int *typenum, uint32_t *off, int *nd,
		 npy_intp *dims);
/* batch.c: a read-only LeasedArray of field f over count records, the first
 * starting at `first` (its record data), `stride` bytes apart; its base is
 * `base` (a new reference is taken). None for a mask the game lacks. */
PyObject *field_array(const xr_exp_template *t, int f, const void *first, npy_intp count,
		      npy_intp stride, PyObject *base);
/* batch.c: every field of count records copied into new arrays fields[0..F_COUNT)
 * (records: frames[i], or contiguous from first when frames is NULL): 0, or
 * -1 with an exception set (fields made so far are the caller's to free). */
int gather_fields(const xr_exp_template *t, const xr_frame *first,
		  const xr_frame *const *frames, uint32_t count, PyObject **fields);
/* batch.c: the steps of gather_fields(), for records that are not frames
 * (a table's items): new arrays for count records (0 or -1 with an
 * exception); record i from rec[0..len), verified (-1, no exception, when
 * it is not an Experience of t's shape); the arrays made read-only. */
int fields_new(const xr_exp_template *t, uint32_t count, PyObject **fields);
int fields_put(const xr_exp_template *t, PyObject **fields, uint32_t i, const void *rec,
	       size_t len);
void fields_seal(PyObject **fields);
/* batch.c: raises xring.ReleasedError with fmt (one %s: field); NULL. */
PyObject *raise_released(const char *fmt, const char *field);
/* batch.c: a Lease on b (NULL: on no records, only the mapping), or NULL. */
Lease *lease_new(Reader *rd, const xr_batch *b);
/* batch.c: the Batch over b (a lease on it, or a copy), or NULL with an exception set. */
PyObject *batch_new(Reader *rd, const xr_batch *b);

/* dlpack.c: dlpack(array) -> a DLPack capsule viewing it (no copy). */
PyObject *mod_dlpack(PyObject *mod, PyObject *arg);

#endif
