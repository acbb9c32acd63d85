"""Per-operation and per-client RPC accounting for a server: counts, bytes, errors, latency histograms.

`RpcStats.record` runs once per served RPC, on the hot path: one uncontended
mutex, a few dict lookups and one histogram bucket; nothing allocates after
an op or client is first seen. `snapshot` copies the tables into frozen
records for the Stats RPC. Per-client rows are bounded (the longest idle are
forgotten first). Never does I/O, never reads anything but the monotonic clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lustrepy.common import histogram

MAX_CLIENTS = 4096


@dataclass(frozen=True, slots=True)
class OpTotals:
    """One operation kind since the server started."""

    op: str
    count: int
    errors: int
    total_us: int
    bytes: int
    hist: tuple[int, ...] = ()      # histogram.bucket counts of service time (trailing zeros trimmed)


@dataclass(frozen=True, slots=True)
class ClientTotals:
    """One client's operations (count, errors, total_us and bytes; no histograms) and its idle time."""

    client_id: str
    idle_s: float
    ops: tuple[OpTotals, ...]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    uptime_s: float
    ops: tuple[OpTotals, ...]
    clients: tuple[ClientTotals, ...]


class _Op:
    __slots__ = ("count", "errors", "total_us", "bytes", "hist")

    def __init__(self, with_hist: bool) -> None:
        self.count = self.errors = self.total_us = self.bytes = 0
        self.hist = histogram.new() if with_hist else []

    def totals(self, op: str) -> OpTotals:
        return OpTotals(op, self.count, self.errors, self.total_us, self.bytes, tuple(histogram.trimmed(self.hist)))


class _Client:
    __slots__ = ("ops", "last_seen")

    def __init__(self, now: float) -> None:
        self.ops: dict[str, _Op] = {}
        self.last_seen = now


class RpcStats:
    """Thread-safe accounting of one server's RPCs."""

    def __init__(self, max_clients: int = MAX_CLIENTS) -> None:
        self.started = time.monotonic()
        self.max_clients = max_clients
        self._mu = threading.Lock()
        self._ops: dict[str, _Op] = {}
        self._clients: dict[str, _Client] = {}

    def record(self, op: str, client_id: str, us: int, nbytes: int = 0, failed: bool = False) -> None:
        """One RPC served: its kind, caller (may be empty), service time, bytes moved, outcome."""
        now = time.monotonic()
        b = histogram.bucket(us)
        with self._mu:
            o = self._ops.get(op)
            if o is None:
                o = self._ops[op] = _Op(True)
            o.count += 1
            o.total_us += us
            o.bytes += nbytes
            o.hist[b] += 1
            if failed:
                o.errors += 1
            if not client_id:
                return
            c = self._clients.get(client_id)
            if c is None:
                if len(self._clients) >= self.max_clients:
                    self._forget_idlest_locked()
                c = self._clients[client_id] = _Client(now)
            c.last_seen = now
            co = c.ops.get(op)
            if co is None:
                co = c.ops[op] = _Op(False)
            co.count += 1
            co.total_us += us
            co.bytes += nbytes
            if failed:
                co.errors += 1

    def snapshot(self) -> StatsSnapshot:
        with self._mu:
            now = time.monotonic()
            ops = tuple(o.totals(k) for k, o in sorted(self._ops.items()))
            clients = tuple(ClientTotals(cid, now - c.last_seen, tuple(o.totals(k) for k, o in sorted(c.ops.items())))
                            for cid, c in sorted(self._clients.items()))
        return StatsSnapshot(now - self.started, ops, clients)

    def _forget_idlest_locked(self) -> None:
        idlest = min(self._clients, key=lambda cid: self._clients[cid].last_seen)
        del self._clients[idlest]
