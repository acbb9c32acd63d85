"""The OST's transactions: numbers for replies, periodic commits, and what a restart must wait for
(Lustre's target layer: last_rcvd and the commit callbacks).

Every write or punch an OSS answers gets a transaction number (transno); the reply carries it
with `last_committed`, the highest transno known durable. A committer thread makes the objects
changed since the last commit durable (fsync) every `interval` seconds, then records the new
last_committed in DIR/last_rcvd. A client keeps each write's bytes until last_committed covers
it, so a crash of the OSS host loses nothing a client was told was written: the client replays it.

Transnos carry the start count in their high bits ((boot << BOOT_SHIFT) + n), so those of a new
start are above every earlier one and replays (old numbers) sort before new requests. The clients
that wrote since the last commit are recorded in DIR/writers before their first such write is
answered: at a restart those are the clients recovery waits for (no one else has anything to
replay). A replay barrier (`barrier`) stops the commits: nothing after it counts as durable.
Thread-safe; raises LpError.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lustrepy.common.errors import LpError
from lustrepy.oss.osd import Osd

log = logging.getLogger(__name__)

LAST_RCVD = "last_rcvd"         # {"boot": n, "last_committed": t}
WRITERS = "writers"             # ["client id", ...]: clients with writes above last_committed
BOOT_SHIFT = 40
DEFAULT_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a modifying reply carries: its transno and the last one known durable."""

    transno: int
    last_committed: int


class Tgt:
    """Transnos, commits and the writers record of one OST (see the module docstring)."""

    def __init__(self, osd: Osd, sync_objects: Callable[[set[int]], None],
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.osd = osd
        self._sync_objects = sync_objects
        self.interval = interval
        boot, committed = self._load()
        self.expected = self._load_writers()            # clients the restart waits for
        self.boot = boot + 1
        self.base = committed                           # durable before this start: not replayed again
        self.last_committed = committed
        self._last = self.boot << BOOT_SHIFT            # the last transno handed out
        self._mu = threading.Lock()                     # _last, _dirty, _writers, _committing, barrier
        self._commit_mu = threading.Lock()              # one commit at a time
        self._file_mu = threading.Lock()                # DIR/writers
        self._dirty: set[int] = set()
        self._writers: set[str] = set()
        self._committing: set[str] = set()
        self.barrier = False
        self.commits = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_rcvd(committed)

    # ---- start-up ---------------------------------------------------------------------------

    def _load(self) -> tuple[int, int]:
        raw = self.osd.read_meta(LAST_RCVD)
        if raw is None:
            return 0, 0
        try:
            doc = json.loads(raw)
            return int(doc["boot"]), int(doc["last_committed"])
        except (ValueError, KeyError, TypeError):
            raise LpError(errno.EIO, f"{os.path.join(self.osd.root, LAST_RCVD)} is damaged") from None

    def _load_writers(self) -> frozenset[str]:
        raw = self.osd.read_meta(WRITERS)
        if raw is None:
            return frozenset()
        try:
            doc = json.loads(raw)
            if not isinstance(doc, list):
                raise ValueError
            return frozenset(str(c) for c in doc)
        except ValueError:
            log.warning("%s is damaged: no client is waited for", os.path.join(self.osd.root, WRITERS))
            return frozenset()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ost-commit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the committer after a last commit (a clean stop loses nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self.commit()
        except LpError as e:
            log.error("last commit failed: %s", e)

    # ---- transactions -----------------------------------------------------------------------

    def stamp(self, client_id: str, oids: Iterable[int]) -> Stamp:
        """A change to `oids` by `client_id` is done: its transno (the client is recorded first)."""
        with self._mu:
            self._last += 1
            t = self._last
            self._dirty.update(oids)
            new = client_id not in self._writers and client_id not in self._committing
            if new:
                self._writers.add(client_id)
        if new:
            self._save_writers()
        return Stamp(t, self.last_committed)

    def committed(self) -> int:
        return self.last_committed

    def commit(self) -> int:
        """Make every change answered so far durable; the new last_committed (unchanged under a barrier)."""
        with self._commit_mu:
            with self._mu:
                if self.barrier or self._last <= self.last_committed:
                    return self.last_committed
                upto, dirty = self._last, self._dirty
                self._dirty = set()
                self._committing |= self._writers
                self._writers = set()
            try:
                self._sync_objects(dirty)
                self._save_rcvd(upto)
            except (LpError, OSError) as e:
                with self._mu:
                    self._dirty |= dirty
                    self._writers |= self._committing
                    self._committing = set()
                raise LpError(getattr(e, "errno", None) or errno.EIO, f"commit failed: {e}") from None
            with self._mu:
                self.last_committed = max(self.last_committed, upto)
                self._committing = set()
                self.commits += 1
            self._save_writers()
            return self.last_committed

    def recovered(self) -> None:
        """Recovery is over: the clients waited for are no longer recorded as writers."""
        self._save_writers()

    def set_barrier(self) -> int:
        """Commit what is answered, then stop counting anything as durable; returns the barrier's transno."""
        self.commit()
        with self._mu:
            self.barrier = True
            return self._last

    # ---- files ----------------------------------------------------------------------------

    def _save_rcvd(self, committed: int) -> None:
        doc = {"boot": self.boot, "last_committed": committed}
        try:
            self.osd.write_meta(LAST_RCVD, (json.dumps(doc) + "\n").encode())
        except OSError as e:
            raise LpError(e.errno or errno.EIO, f"cannot record {LAST_RCVD}: {e.strerror or e}") from None

    def _save_writers(self) -> None:
        with self._file_mu:
            with self._mu:
                clients = sorted(self._writers | self._committing)
            try:
                self.osd.write_meta(WRITERS, (json.dumps(clients) + "\n").encode())
            except OSError as e:
                raise LpError(e.errno or errno.EIO, f"cannot record {WRITERS}: {e.strerror or e}") from None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.commit()
            except LpError as e:
                log.error("%s", e)
