/* SPDX-License-Identifier: MIT */
/*
 * xring._xring: the CPython extension under the xring package. It wraps the
 * C reader library (include/xring/reader.h) and turns batches into numpy
 * arrays that are views of the ring, not copies; the games API
 * (include/xring/games.h), an engine's games at runtime; and the agent API
 * (include/xring/agent.h), acting for seats.
 *
 * Its files, one concept each: module.c (this: the module and its
 * functions), options.c (open_reader's arguments), reader.c (Reader),
 * batch.c (Lease, Batch, their arrays), dlpack.c (torch's way in), games.c
 * (Games: an engine's games at runtime), agent.c (Agent, ObsBatch: acting
 * for seats), errors.c (error codes into exceptions), reattach.c (the
 * reattaches' wait, which Ctrl-C ends); xring_py.h declares
 * what they share.
 */
#define XRING_PY_IMPORT_NUMPY /* this file fills the numpy C-API table */
#include "xring_py.h"

#include "xring/games.h"

static PyObject *mod_open_reader(PyObject *mod, PyObject *args, PyObject *kw)
{
	struct open_args a;

	(void)mod;
	if (open_args_parse(args, kw, &a) < 0)
		return NULL;
	return reader_open(&a);
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
	{"create_table", table_create_fn, METH_VARARGS,
	 "Creates a replay table (use xring.Engine.create_table())."},
	{"drop_table", table_drop_fn, METH_VARARGS,
	 "Drops a replay table (use xring.Engine.drop_table())."},
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
	    PyType_Ready(&ReaderType) < 0 || PyType_Ready(&GamesType) < 0 ||
	    PyType_Ready(&AgentLeaseType) < 0 || PyType_Ready(&ObsBatchType) < 0 ||
	    PyType_Ready(&AgentType) < 0 || PyType_Ready(&TableType) < 0 ||
	    PyType_Ready(&ProducerType) < 0)
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
	Py_INCREF(&GamesType);
	PyModule_AddObject(m, "Games", (PyObject *)&GamesType);
	Py_INCREF(&AgentType);
	PyModule_AddObject(m, "Agent", (PyObject *)&AgentType);
	Py_INCREF(&TableType);
	PyModule_AddObject(m, "Table", (PyObject *)&TableType);
	Py_INCREF(&ProducerType);
	PyModule_AddObject(m, "Producer", (PyObject *)&ProducerType);
	Py_INCREF(&ObsBatchType);
	PyModule_AddObject(m, "ObsBatch", (PyObject *)&ObsBatchType);
	PyObject *names = PyTuple_New(F_COUNT);
	for (int f = 0; names && f < F_COUNT; f++)
		PyTuple_SET_ITEM(names, f, PyUnicode_FromString(field_names[f]));
	if (!names || PyModule_AddObject(m, "FIELD_NAMES", names) < 0) {
		Py_XDECREF(names);
		Py_DECREF(m);
		return NULL;
	}
	PyModule_AddIntConstant(m, "BATCH_MAX", XR_BATCH_MAX);
	PyModule_AddIntConstant(m, "HELD_MAX", XR_HELD_MAX);
	PyModule_AddIntConstant(m, "GAMES_REQUEST_MAX", XR_GAMES_REQUEST_MAX);
	return m;
}
