/* SPDX-License-Identifier: MIT */
/*
 * dlpack(array): a DLPack capsule over a numpy array, no copy, from which
 * torch makes a tensor. The capsule holds the array, and so the array's
 * lease, until torch is done with the tensor.
 */
#include "xring_py.h"

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

PyObject *mod_dlpack(PyObject *mod, PyObject *arg)
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
