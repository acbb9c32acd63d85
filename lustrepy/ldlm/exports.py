"""The export table of a lock server, sans-I/O: which clients are connected, under
which connection generation, with which callback stream, and which are evicted.

An export is a connected client. `connect` gives it a fresh conn_gen and a
reconnect replaces the old export; a request is accepted only under the current
conn_gen of an export that is not evicted. Streams are named by ids the table
hands out; the shell (lockd) owns the objects behind them.

Pure bookkeeping, as resource.Namespace is: times are handed in (`now`); this
module never does I/O, never reads a clock, never drops locks (core.LockCore
does that around it) and is not thread-safe (lockd serialises calls).
"""

from __future__ import annotations

import errno
import itertools
from dataclasses import dataclass

from lustrepy.common.errors import LpError


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """A connected (or evicted) client as listed by `lfsctl clients`."""

    client_id: str
    conn_gen: int
    peer: str
    callback_stream: bool
    granted_locks: int
    connected_s: float
    evicted: bool
    idle_s: float = 0.0         # since its last checked request (or its connect)


@dataclass(slots=True)
class Export:
    """One client's export; mutated only by ExportTable."""

    client_id: str
    conn_gen: int
    peer: str
    connected_at: float
    last_seen: float            # time of its last checked request; listings only
    evicted: bool = False
    stream: int | None = None   # id of the bound callback stream


class ExportTable:
    """Every export of one lock server, by client id."""

    def __init__(self, first_conn_gen: int = 1) -> None:
        if first_conn_gen <= 0:
            raise ValueError("first_conn_gen must be positive")
        self._conn_gens = itertools.count(first_conn_gen)
        self._stream_ids = itertools.count(1)
        self._exports: dict[str, Export] = {}

    def connect(self, client_id: str, peer: str, now: float) -> tuple[Export, Export | None]:
        """A new export for client_id (EINVAL for an empty id): (the new one, the one it replaces)."""
        if not client_id:
            raise LpError(errno.EINVAL, "empty client id")
        old = self._exports.get(client_id)
        new = self._exports[client_id] = Export(client_id, next(self._conn_gens), peer, now, now)
        return new, old

    def check(self, client_id: str, conn_gen: int) -> Export:
        """The current, live export of (client_id, conn_gen); LpError(ENOTCONN) otherwise."""
        exp = self._exports.get(client_id)
        if exp is None:
            raise LpError(errno.ENOTCONN, "not connected")
        if exp.conn_gen != conn_gen:
            raise LpError(errno.ENOTCONN, "evicted" if exp.evicted else "not connected (stale connection)")
        if exp.evicted:
            raise LpError(errno.ENOTCONN, "evicted")
        return exp

    def check_owner(self, owner: str) -> None:
        """LpError(ENOTCONN) unless owner has an export that is not evicted."""
        exp = self._exports.get(owner)
        if exp is None:
            raise LpError(errno.ENOTCONN, f"{owner} not connected")
        if exp.evicted:
            raise LpError(errno.ENOTCONN, "evicted")

    def get(self, client_id: str) -> Export | None:
        return self._exports.get(client_id)

    def remove(self, client_id: str) -> Export | None:
        return self._exports.pop(client_id, None)

    def live_stream(self, client_id: str) -> int | None:
        """The stream callbacks to client_id go on: None when it has none or is evicted."""
        exp = self._exports.get(client_id)
        if exp is None or exp.evicted:
            return None
        return exp.stream

    def new_stream(self, exp: Export) -> tuple[int, int | None]:
        """Bind a new stream to exp: (its id, the id of the stream it replaces)."""
        old, exp.stream = exp.stream, next(self._stream_ids)
        return exp.stream, old

    def seen(self, exp: Export, now: float) -> None:
        """A request of exp's was checked at `now`."""
        exp.last_seen = now

    def mark_evicted(self, exp: Export) -> int | None:
        """exp is evicted: it gets no more callbacks. Returns the id of the stream to close."""
        exp.evicted = True
        return self.drop_stream(exp)

    def drop_stream(self, exp: Export) -> int | None:
        """exp's stream is closed by the server: returns its id (None when none was bound)."""
        stream, exp.stream = exp.stream, None
        return stream

    def unbind(self, client_id: str, stream: int) -> None:
        """Stream `stream` ended: the export has no stream unless a newer one replaced it."""
        exp = self._exports.get(client_id)
        if exp is not None and exp.stream == stream:
            exp.stream = None

    def all(self) -> list[Export]:
        """Every export, by client id."""
        return sorted(self._exports.values(), key=lambda e: e.client_id)

    def __len__(self) -> int:
        return len(self._exports)
