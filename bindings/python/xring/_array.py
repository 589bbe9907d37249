# SPDX-License-Identifier: MIT
"""LeasedArray: the numpy arrays of a batch, which check its lease.

A batch's arrays are views of the ring. Their base (followed through views of
views) is the batch's lease; every way of touching the data that Python code
goes through checks that the batch was not released, and raises
ReleasedError if it was. The ring under the array stays leased while the
array lives, so even code that reaches the memory another way (the buffer
protocol, a torch tensor) never reads recycled records.
"""

import numpy as np

from ._errors import ReleasedError

__all__ = ["LeasedArray"]


def _lease_of(a):
    b = a.base
    while isinstance(b, np.ndarray):
        b = b.base
    return b


def _check(a):
    lease = _lease_of(a)
    if lease is not None and getattr(lease, "released", False):
        raise ReleasedError(
            "this array belongs to a released batch: its records may be overwritten "
            "(copy what you keep, e.g. arr.copy(), before batch.release())")


def _plain(x):
    if isinstance(x, LeasedArray):
        _check(x)
        return x.view(np.ndarray)
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(y) for y in x)
    return x


class LeasedArray(np.ndarray):
    """An ndarray over ring memory that refuses use after its batch's release."""

    __slots__ = ()

    def __array__(self, dtype=None):
        _check(self)
        a = self.view(np.ndarray)
        return a if dtype is None else a.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = _plain(inputs)
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        args = _plain(args)
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        return func(*args, **kwargs)

    def __repr__(self):
        _check(self)
        return repr(self.view(np.ndarray)).replace("array(", "LeasedArray(", 1)

    def __reduce__(self):
        _check(self)
        return self.view(np.ndarray).copy().__reduce__()

    def __dlpack__(self, stream=None):
        _check(self)
        from . import _xring
        return _xring.dlpack(self)

    def __dlpack_device__(self):
        return (1, 0)

    __hash__ = None

    def copy(self, order="C"):
        """A plain ndarray with the data: keep this past release()."""
        _check(self)
        return self.view(np.ndarray).copy(order)


def _checked(name, keep_type):
    impl = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        _check(self)
        # Views stay LeasedArrays; anything computed comes back plain.
        return impl(self if keep_type else self.view(np.ndarray), *args, **kwargs)
    method.__name__ = name
    method.__doc__ = impl.__doc__
    return method


# Reductions and the like: checked before numpy runs them. (numpy 1.24 also
# leaks a reference to the array when one of them fails inside, which would
# keep the batch leased for ever.)
# Conversions to Python values, str, astype, tolist: the same. Comparisons
# too: numpy turns an error inside them into a warning and an answer.
for _name in ("sum", "mean", "max", "min", "any", "all", "prod", "std", "var", "argmax",
              "argmin", "cumsum", "cumprod", "ptp", "round", "clip", "nonzero", "sort",
              "argsort", "searchsorted", "dot", "trace", "take", "compress", "repeat",
              "choose", "flatten", "fill", "tofile", "dump", "dumps", "byteswap",
              "tolist", "item", "tobytes", "astype", "__str__", "__bool__", "__float__",
              "__int__", "__index__"):
    setattr(LeasedArray, _name, _checked(_name, False))
for _name in ("ravel", "reshape", "transpose", "squeeze", "swapaxes", "diagonal", "view",
              "__getitem__", "__setitem__", "__iter__",
              "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(LeasedArray, _name, _checked(_name, True))
del _name
