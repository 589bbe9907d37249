/* SPDX-License-Identifier: MIT */
/*
 * xring error codes into Python exceptions. The classes are built by
 * xring._errors, so that they live in Python.
 */
#include "xring_py.h"

#include <errno.h>
#include <string.h>

PyObject *raise_xr_reason(int code, const char *what, const char *reason, int kind)
{
	PyObject *mod = PyImport_ImportModule("xring._errors");

	if (!mod)
		return NULL;
	PyObject *exc = PyObject_CallMethod(mod, "make", "issi", code, what,
					    reason && reason[0] ? reason : xr_strerror(code), kind);
	Py_DECREF(mod);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

PyObject *raise_xr(int code, const char *what)
{
	/* The engine's reason belongs to a refused attach; the library's own
	 * to the read errors it explains (a wait on one's own batch, a
	 * malformed frame), set by the call that failed. */
	bool attaching = !strcmp(what, "attach") || !strcmp(what, "reattach");
	bool reading = !strcmp(what, "read") || !strcmp(what, "arm");
	bool said = attaching || (reading && (code == -EDEADLK || code == -EPROTO));

	return raise_xr_reason(code, what, said ? xr_last_reason() : NULL, KIND_READER);
}
