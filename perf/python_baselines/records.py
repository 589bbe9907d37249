# SPDX-License-Identifier: MIT
"""What every pipeline carries: xring frames of Experience records, as the
engine wrote them into its ring, back to back (frame header, record,
padding: `stride` bytes each). The baselines ship these exact bytes, taken
from a ring; their consumers view each field in a message the way xring's
Batch views it in the ring: one strided numpy array per field.
"""
import numpy as np

# The fields a training step takes from a batch, in every pipeline.
FIELDS = ("obs", "action", "reward", "done", "mask")


class Layout:
    """Where the fields are in a frame. fields: {name: (offset in the frame,
    dtype string, shape of one record's value, its strides)}."""

    def __init__(self, stride, record_bytes, fields):
        self.stride = stride
        self.record_bytes = record_bytes
        self.fields = fields
        self._used = [(n,) + tuple(fields[n]) for n in FIELDS if n in fields]

    def to_dict(self):
        return {"stride": self.stride, "record_bytes": self.record_bytes,
                "fields": {k: list(v) for k, v in self.fields.items()}}

    @classmethod
    def from_dict(cls, d):
        return cls(d["stride"], d["record_bytes"],
                   {k: (v[0], v[1], tuple(v[2]), tuple(v[3])) for k, v in d["fields"].items()})

    def views(self, buf, n):
        """The used fields of the n records in buf as read-only strided
        arrays over it (no copy): what a consumer hands to training."""
        s = self.stride
        return [np.ndarray((n,) + shape, dtype, buffer=buf, offset=off, strides=(s,) + strides)
                for _, off, dtype, shape, strides in self._used]

    def field(self, buf, n, name):
        off, dtype, shape, strides = self.fields[name]
        return np.ndarray((n,) + shape, dtype, buffer=buf, offset=off,
                          strides=(self.stride,) + strides)


def capture(reader, ring_buffer_of, n):
    """Takes one batch of n records from an xring reader and returns
    (payload, layout, seq): the bytes of its n frames (a copy), where each
    field sits in a frame, and the records' seq numbers (to check that a
    baseline delivered these records). The reader must have batch=n."""
    b = reader.read()
    if b is None or len(b) != n or b.copied:
        raise RuntimeError(f"capture: wanted a view batch of {n} records, got "
                           f"{None if b is None else (len(b), b.copied)}")
    rb = ring_buffer_of(b.ring)
    base = rb.__array_interface__["data"][0]
    names = ("obs", "action", "reward", "done", "truncated", "mask", "game_id", "player_id",
             "turn", "seq", "t_ns")
    arrs = {k: getattr(b, k) for k in names}
    arrs = {k: a for k, a in arrs.items() if a is not None}
    stride = arrs["obs"].strides[0]
    rec_bytes = reader.facts()["record_bytes"]
    lowest = min(a.__array_interface__["data"][0] for a in arrs.values()) - base
    # The frame header (include/xring/types.h): u32 size, u32 len, u64 seq,
    # at a frame boundary at or below the record's lowest field.
    start = None
    for off in range(lowest - lowest % 8, max(lowest - stride, -1), -8):
        hdr = rb[off:off + 16].view(np.uint32)
        if hdr[0] == stride and hdr[1] == rec_bytes and \
                int(rb[off + 8:off + 16].view(np.uint64)[0]) == b.first_seq:
            start = off
            break
    if start is None:
        raise RuntimeError("capture: no frame header found below the first record")
    fields = {}
    for k, a in arrs.items():
        off = a.__array_interface__["data"][0] - base - start
        end = off + (a[0].nbytes if a.ndim > 1 else a.itemsize)
        if not 0 <= off or end > stride:
            raise RuntimeError(f"capture: field {k} is not inside its frame")
        fields[k] = (off, a.dtype.str, a.shape[1:], a.strides[1:])
    payload = rb[start:start + n * stride].tobytes()
    seq = np.array(arrs["seq"].copy())
    del arrs, a, rb
    b.release()
    return payload, Layout(stride, rec_bytes, fields), seq
