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

from lustrepy.common.errors import LpError
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
        try:
            self.commit_now()
        except (OSError, LpError) as e:
            log.error("final WAL sync failed: %s", e)

    @property
    def last_committed(self) -> int:
        return self.store.last_committed()

    def commit_now(self) -> int:
        """Sync the WAL now; returns the transno now durable."""
        self.syncs += 1
        return self.store.sync()

    def _run(self) -> None:
        failing = ""                # the failure last logged: a disk that keeps failing is logged once
        while not self._stop.wait(self.interval):
            try:
                if self.store.last_transno() > self.store.last_committed():
                    self.commit_now()
            except (OSError, LpError) as e:  # a failed sync must not kill the committer: retry next tick
                if str(e) != failing:
                    log.error("WAL sync failed (last_committed stays at %d until one succeeds): %s",
                              self.store.last_committed(), e)
                failing = str(e)
                continue
            except Exception:  # a bug: logged with its traceback, and the committer goes on
                log.exception("WAL sync failed")
                continue
            if failing:
                log.warning("WAL sync succeeds again")
                failing = ""
