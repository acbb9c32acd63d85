"""Durability bookkeeping on the MDS: the committer that advances last_committed.

SQLite runs in WAL mode with synchronous=NORMAL, so a commit is not yet on
stable storage. The committer syncs the WAL about once a second when anything
changed, and at once when a client asks (fsync, sync, unmount); only a sync
advances last_committed, which every reply carries so clients know which of
their updates they may forget.
"""

from __future__ import annotations

import logging
import threading

from lustrepy.mds.store import Store

log = logging.getLogger(__name__)


class Committer:
    def __init__(self, store: Store, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self.syncs = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.commit_now()

    @property
    def last_committed(self) -> int:
        return self.store.last_committed()

    def commit_now(self) -> int:
        """Sync the WAL now; returns the transno now durable."""
        self.syncs += 1
        return self.store.sync()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.store.last_transno() > self.store.last_committed():
                    self.commit_now()
            except Exception:  # a failed sync must not kill the committer; log and retry next tick
                log.exception("WAL sync failed")
