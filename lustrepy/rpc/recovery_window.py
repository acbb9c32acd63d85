"""Recovery after a server restart: the window in which the clients it knew replay what it lost.

A server (the MDS, or an OSS) makes its transactions durable about once a
second, so a crash (or a replay barrier) can lose transactions whose replies
clients already have. Each client keeps those requests until last_committed
covers them (client.mdc, client.osc). At start the server reads the clients it
must wait for and, if there are any, opens a recovery window: a known client
connects, says how many requests it kept, and sends them (a Replay RPC). When
every known client has sent all of its own, or the window ends, the requests
of all clients are applied in transno order on one thread, each by `apply`;
those that no longer apply fail alone and are reported to their client. A
request at or below the last transno the restart kept is already there and is
not run again. `on_end` gets the clients that did not come back (the MDS
evicts them and closes their opens). Until then, new requests are refused and
clients send them again a moment later.

Knows nothing of gRPC or of what a request does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

MAX_KEPT = 1_000_000        # replays one recovery takes from all clients together


@dataclass
class _Client:
    items: list[mpb.ReplayItem] = field(default_factory=list)
    finished: bool = False          # sent everything it kept
    failures: list[mpb.ReplayFailure] = field(default_factory=list)


class RecoveryWindow:
    """The recovery state of one MDT start (see the module docstring)."""

    def __init__(self, expected: Iterable[str], window: float, base: int,
                 apply: Callable[[str, mpb.ReplayItem], mpb.ReplayFailure | None],
                 on_end: Callable[[list[str]], None]) -> None:
        self._mu = threading.Condition()
        self._expected = set(expected)
        self._clients: dict[str, _Client] = {}
        self._apply = apply
        self._on_end = on_end               # called with the clients that did not come back
        self._base = base                   # the last transno the restart kept: replays up to it are done
        self.window = window
        self._started = time.monotonic()
        self._deadline = self._started + window
        self.state = "recovering" if self._expected else "none"
        self._ending = False
        self._applier: int | None = None    # the thread applying replays
        self.applied = self.failed = self.evicted = 0
        self.took_s = 0.0
        self._kept = 0

    # ---- for request handling -----------------------------------------------------------------

    def blocks(self) -> bool:
        """New requests must wait (recovery under way, and this is not the applying thread)."""
        return self.state == "recovering" and self._applier != threading.get_ident()

    def connected(self, client_id: str, replays: int) -> bool:
        """A client connects, with `replays` updates kept: True when recovery awaits them."""
        with self._mu:
            if self.state != "recovering" or client_id not in self._expected or self._ending:
                return False
            c = self._clients.setdefault(client_id, _Client())
            c.finished = replays == 0
            c.items.clear()
            end = self._all_in()
        if end:
            self._end("every client is back")
        return replays > 0

    def add(self, client_id: str, items: Iterable[mpb.ReplayItem], last: bool) -> bool:
        """Updates a client replays; False when recovery takes none from it (over, or the client
        was not known at the restart)."""
        with self._mu:
            c = self._clients.get(client_id)
            if self.state != "recovering" or c is None or c.finished or self._ending:
                return False
            items = list(items)
            self._kept += len(items)
            if self._kept > MAX_KEPT:
                log.warning("recovery: more than %d replays; %s's are dropped", MAX_KEPT, client_id)
                c.finished = True
            else:
                c.items.extend(items)
                c.finished = last
            end = self._all_in()
        if end:
            self._end("every client has replayed")
        return True

    def outcome(self, client_id: str, timeout: float) -> tuple[bool, list[mpb.ReplayFailure]]:
        """Wait up to `timeout` for recovery to end: (over, this client's failed replays)."""
        deadline = time.monotonic() + timeout
        with self._mu:
            while self.state == "recovering":
                left = deadline - time.monotonic()
                if left <= 0:
                    return False, []
                self._mu.wait(left)
            c = self._clients.get(client_id)
            return True, list(c.failures) if c is not None else []

    def tick(self) -> None:
        """Called periodically: the window ends at its deadline whoever is missing."""
        if self.state == "recovering" and time.monotonic() >= self._deadline:
            self._end("the recovery window ended")

    def state_pb(self) -> mpb.RecoveryState:
        with self._mu:
            back = sum(c.finished for c in self._clients.values())
            left = max(0.0, self._deadline - time.monotonic()) if self.state == "recovering" else 0.0
            return mpb.RecoveryState(state=self.state, clients_expected=len(self._expected),
                                     clients_recovered=back, clients_evicted=self.evicted,
                                     replays_applied=self.applied, replays_failed=self.failed,
                                     time_left_s=left, took_s=self.took_s)

    # ---- the end -----------------------------------------------------------------------------

    def _all_in(self) -> bool:
        return all(cid in self._clients and self._clients[cid].finished for cid in self._expected)

    def _end(self, why: str) -> None:
        with self._mu:
            if self._ending or self.state != "recovering":
                return
            self._ending = True
        threading.Thread(target=self._finish, args=(why,), name="recovery", daemon=True).start()

    def _finish(self, why: str) -> None:
        self._applier = threading.get_ident()
        with self._mu:
            items = sorted(((it.transno, it.xid, cid, it) for cid, c in self._clients.items() for it in c.items
                            if it.transno > self._base), key=lambda t: (t[0], t[1]))
            missing = sorted(cid for cid in self._expected
                             if cid not in self._clients or not self._clients[cid].finished)
        log.info("recovery: %s; applying %d replays in transno order", why, len(items))
        t0 = time.monotonic()
        for _, _, cid, it in items:
            try:
                failure = self._apply(cid, it)
            except Exception:  # one bad replay must not stop the others
                log.exception("replay of xid %d from %s failed", it.xid, cid)
                failure = mpb.ReplayFailure(xid=it.xid, errno=5, message="internal error in replay")
            with self._mu:
                if failure is None:
                    self.applied += 1
                else:
                    self.failed += 1
                    self._clients[cid].failures.append(failure)
        try:
            self._on_end(missing)
        except Exception:  # the service must resume even if closing a gone client's opens fails
            log.exception("recovery: ending for %s failed", missing)
        with self._mu:
            self.evicted = len(missing)
            self.took_s = time.monotonic() - self._started
            self.state = "complete"
            self._applier = None
            self._mu.notify_all()
        log.info("recovery complete in %.1fs: %d replays applied (%.0f/s), %d failed, %d clients evicted",
                 self.took_s, self.applied, self.applied / max(time.monotonic() - t0, 1e-6), self.failed,
                 len(missing))
