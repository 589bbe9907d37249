# SPDX-License-Identifier: MIT
"""xring's exceptions, and how C error codes map to them."""

import errno

__all__ = [
    "XringError", "NoEngineError", "PermissionRefusedError", "EngineClosedError",
    "EvictedError", "TooManyReadersError", "PolicyError", "LayoutError",
    "TooManyBatchesHeldError", "ReleasedError", "NoSuchGameError", "GameLimitError",
    "NoSuchTableError", "TableExistsError", "NoProducerSlotError", "ProducerEndedError",
    "SeatTakenError", "TooManyAgentsError", "DeadlockError",
]

_XR_BASE = 5000


class XringError(Exception):
    """Base of xring's errors. ``code`` is the C code (negative errno or
    XR_E*), ``name`` its symbol, ``reason`` the one-line explanation (from the
    engine when it refused us)."""

    def __init__(self, message, code=0, name="", reason=""):
        super().__init__(message)
        self.code = code
        self.name = name
        self.reason = reason


class NoEngineError(XringError, FileNotFoundError):
    """No engine of that name runs (or it has no such stream)."""


class PermissionRefusedError(XringError, PermissionError):
    """The engine refused this user (--allow-uid/--allow-gid), or the arena
    cannot be opened."""


class EngineClosedError(XringError):
    """The engine stopped (or died), and everything it wrote has been read."""


class EvictedError(XringError):
    """The engine detached this reader (a cursor that cannot be right, or it
    was taken for dead). Reattach."""


class TooManyReadersError(XringError):
    """The engine's reader slots are all taken (--max-readers)."""


class PolicyError(XringError, ValueError):
    """A lossless reader on a lossy stream."""


class LayoutError(XringError):
    """The engine was built with an incompatible xring."""


class TooManyBatchesHeldError(XringError):
    """64 batches are held already (their arrays alive count): release some."""


class DeadlockError(XringError):
    """A read with no timeout would wait for good: the engine's writer is
    stopped until a batch this reader holds is released (a batch is held
    while its arrays are alive), and what the read waits for comes after it.
    Release the oldest batch, or read with a timeout. Code -EDEADLK."""


class ReleasedError(XringError, RuntimeError):
    """A released batch's arrays were touched: their records may be
    overwritten. Copy what you keep before release()."""


class NoSuchTableError(XringError, LookupError):
    """Engine.table() named a replay table the engine does not have (create
    it first: Engine.create_table())."""


class TableExistsError(XringError, FileExistsError):
    """Engine.create_table() named a table the engine has already."""


class TableLimitError(XringError):
    """Engine.create_table() refused for a limit: ``code`` -EDQUOT when this
    uid created its 4 tables (dropped ones still open count), -ENOSPC when
    the engine hosts its 16, -E2BIG for a table too large, -EAGAIN when this
    uid (not the engine's) created tables of too many items lately (the
    reason says when this one fits)."""


class TooManyRequestsError(XringError):
    """The engine refused a request for its request rate (code -EAGAIN):
    one connection's, or one uid's over all its connections (xring engine
    --max-requests-per-uid, 256 a second by default). The reason says when
    to try again."""


class TableDroppedError(XringError, LookupError):
    """The replay table was dropped (Engine.drop_table()) while this Table
    had it open: every request but a release now fails so (code -EIDRM). Its samples'
    arrays stay readable, and unchanging, until the Table closes."""


class NoSuchGameError(XringError, LookupError):
    """A game request named what the engine does not have: destroy or reset
    of an id that is no live game (the reason names the id, and says whether
    it was destroyed or never created), or create of a shape (game, board,
    players, obs_dtype) no stream of the engine carries (the reason lists
    the shapes it does)."""


class GameLimitError(XringError):
    """The engine refused to create (or reset) games for a limit: ``code``
    -EBUSY when --max-games or this uid's share (--max-games-per-uid) would
    be passed (the reason says the cap and the count; destroy games first),
    -EAGAIN when this uid's rate (--max-creates-per-uid) stayed exceeded for
    30 s of retries, or a shard has too many resets waiting (retry later)."""


class SeatTakenError(XringError):
    """A claim refused because a seat of it is held already, by another
    agent or by another claim of this one: ``reason`` names the seat and its
    holder (agent index, label, pid, uid). Code -EBUSY."""


class TooManyAgentsError(XringError):
    """An agent's attach refused: ``code`` -EBUSY when --max-agents agents are
    attached, -EAGAIN when some slots still belong to agents gone a moment ago
    whose shards have not moved on yet (retry in a moment)."""


class NoProducerSlotError(XringError):
    """A producer's open refused: ``code`` -EBUSY when every producer slot of
    the stream is taken, -ENOTSUP when the engine has none (start it with
    --producers N), -EDQUOT when this uid holds its most."""


class ProducerEndedError(XringError):
    """The engine ended this producer: it refused a record it wrote
    (``code`` XR_EBADREC: not a well-formed Experience record of the
    stream's shape; -EPROTO: a staging ring it broke), with its reason.
    The records before it are in the ring."""


class _InvalidError(XringError, ValueError):
    pass


class _TimeoutError(XringError, TimeoutError):
    pass


_BY_CODE = {
    -errno.ENOENT: NoEngineError,
    -errno.EACCES: PermissionRefusedError,
    -errno.EPERM: PermissionRefusedError,
    -(_XR_BASE + 2): EngineClosedError,
    -(_XR_BASE + 3): EvictedError,
    -errno.EBUSY: TooManyReadersError,
    -(_XR_BASE + 6): PolicyError,
    -(_XR_BASE + 1): LayoutError,
    -errno.ENOBUFS: TooManyBatchesHeldError,
    -errno.EDEADLK: DeadlockError,
    -errno.EINVAL: _InvalidError,
    -errno.ETIMEDOUT: _TimeoutError,
    -errno.ECONNRESET: EngineClosedError,
}


# A game request's codes, where they mean something else than at attach.
_BY_CODE_GAMES = {
    **_BY_CODE,
    -errno.ENOENT: NoSuchGameError,
    -errno.EBUSY: GameLimitError,
    -errno.EAGAIN: GameLimitError,
}


# An agent's attach: its slot table.
_BY_CODE_AGENT = {
    **_BY_CODE,
    -errno.EBUSY: TooManyAgentsError,
    -errno.EAGAIN: TooManyAgentsError,
}

# A claim of seats: a seat held (-EBUSY, the reason naming the seat), a range
# past the agent's capacity (-ENOSPC). A claim attaches the agent's reader
# anew, whose refusals keep their meaning (a -EBUSY without a seat in its
# reason is the reader's: its slots).
_BY_CODE_SEATS = {
    **_BY_CODE,
    -errno.ENOSPC: _InvalidError,
}

# A replay table's request: its name unknown or taken, a wait cut short.
_BY_CODE_TABLE = {
    **_BY_CODE,
    -errno.ENOENT: NoSuchTableError,
    -errno.EEXIST: TableExistsError,
    -errno.EIDRM: TableDroppedError,
    -errno.EAGAIN: _TimeoutError,   # a wait of 0 s: the limiter said no now
}

# A producer's: no slot for it, or the engine ended it.
_BY_CODE_PRODUCER = {
    **_BY_CODE,
    -errno.EBUSY: NoProducerSlotError,
    -errno.ENOTSUP: NoProducerSlotError,
    -errno.EDQUOT: NoProducerSlotError,
    -(_XR_BASE + 4): ProducerEndedError,
    -errno.EPROTO: ProducerEndedError,
}

# make()'s kind (xring_py.h's KIND_*): what the call was.
_KIND_READER, _KIND_GAMES, _KIND_AGENT, _KIND_SEATS, _KIND_TABLE, _KIND_PRODUCER = range(6)


def make(code, what, reason, kind=_KIND_READER):
    """The exception for C error `code` from operation `what`, of kind
    `kind`: 0 (or False) an attach or a read, 1 (or True) a game request (not
    opening the connection for them, which is an attach), 2 an agent's
    attach, 3 a claim of seats, 4 a replay table's request, 5 a producer's."""
    from . import _xring
    name, text = _xring.strerror(code)
    kind = int(kind)
    if kind == _KIND_SEATS and code == -errno.EBUSY and "seat (" in (reason or ""):
        cls = SeatTakenError
    elif code == -errno.EAGAIN and "too many requests" in (reason or ""):
        cls = TooManyRequestsError  # control/server.c's rate, whatever the request
    elif kind == _KIND_TABLE and what == "create table" and code in (
            -errno.EDQUOT, -errno.ENOSPC, -errno.E2BIG, -errno.EAGAIN):
        cls = TableLimitError
    else:
        table = {_KIND_GAMES: _BY_CODE_GAMES, _KIND_AGENT: _BY_CODE_AGENT,
                 _KIND_SEATS: _BY_CODE_SEATS, _KIND_TABLE: _BY_CODE_TABLE,
                 _KIND_PRODUCER: _BY_CODE_PRODUCER}.get(kind, _BY_CODE)
        cls = table.get(code, XringError)
    msg = f"{what}: {reason}" if reason else f"{what}: {text}"
    if reason and reason != text:
        msg += f" [{name}]"
    return cls(msg, code, name, reason or text)
