"""How the MDT's store copes with its disk: a failure of the database becomes what it
means (sqlerr.classify) and is logged once, not once a request; a full disk puts the
store in full mode, where the reserve (reserve.py) is given back and only what adds to
the namespace is refused, until the disk has room again.

Used by Store under its writer lock, on the write connection, and nowhere else: holds no
lock of its own, runs no thread and decides nothing about namespace rules.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from lustrepy.common.errors import LpError
from lustrepy.mds.reserve import Reserve
from lustrepy.mds.sqlerr import MdtFull, classify, low_space

log = logging.getLogger(__name__)


class DiskState:
    """The MDT in `dir`: its reserve, whether it is in full mode, the failure last logged."""

    def __init__(self, dir: Path, reserve: int) -> None:
        self.dir = dir
        self.reserve = Reserve(dir, reserve)
        self.full = False           # full mode: nothing may add to the namespace (Tx.full)
        self._trouble = ""          # the failure last logged, until a write succeeds again

    def at_start(self) -> None:
        """Before the database is opened: on a disk with no room left (SQLite needs some even to
        open it: its WAL index), the reserve is given back and the store starts in full mode."""
        if low_space(self.dir) and self.reserve.release():
            self.full = True
            log.warning("%s: the disk is full at start: the reserve is released; new files, directories, links, "
                        "renames and xattrs fail with ENOSPC until space is freed", self.dir)

    def open(self) -> None:
        """Once open: set the reserve aside, if it is not already (nor in full mode)."""
        if self.full:
            return
        if self.reserve.size and not self.reserve.held() and not self.reserve.take():
            log.warning("%s: no room for the reserve of %d bytes: a full disk will stop opens and unlinks too",
                        self.dir, self.reserve.size)

    def failed(self, e: sqlite3.Error) -> LpError | None:
        """What a database failure means (None: a bug, to raise as it is); logged once until a
        write succeeds again."""
        mapped = classify(e, self.dir)
        if mapped is None:
            return None
        if isinstance(mapped, MdtFull):
            if self.reserve.held():
                return mapped               # the store goes into full mode, and says so
            self.full = True
        if mapped.message != self._trouble:
            self._trouble = mapped.message
            if isinstance(mapped, MdtFull):
                log.warning("%s: the disk is full (%s): changes fail with ENOSPC until space is freed", self.dir, e)
            else:
                log.error("%s: %s", self.dir, mapped.message)
        return mapped

    @contextlib.contextmanager
    def meaning(self) -> Iterator[None]:
        """Database failures inside become what they mean; bugs stay as they are."""
        try:
            yield
        except sqlite3.Error as e:
            mapped = self.failed(e)
            if mapped is None:
                raise
            raise mapped from e

    def succeeded(self) -> None:
        """A write succeeded: a failure logged before is over (full mode ends in room_again only)."""
        if self._trouble and not self.full:
            self._recovered()

    def go_full(self, conn: sqlite3.Connection) -> bool:
        """A write found the disk full: full mode, the reserve's space given back and the WAL
        folded into the database with it. False when there was no reserve to give."""
        self.full = True
        if not self.reserve.release():
            return False
        log.warning("%s: the disk is full: its reserve (%d bytes) is released; new files, directories, links, "
                    "renames and xattrs fail with ENOSPC until space is freed, the rest goes on",
                    self.dir, self.reserve.size)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:
            log.warning("%s: checkpoint after releasing the reserve failed: %s", self.dir, e)
        return True

    def room_again(self, conn: sqlite3.Connection) -> bool:
        """Not in full mode, or full mode ends now: the file system has room for the reserve
        twice over and the reserve is taken again (with no reserve: a write that changes
        nothing succeeds)."""
        if not self.full:
            return True
        if self.reserve.size:
            if not (self.reserve.room_again() and self.reserve.take()):
                return False
        else:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("UPDATE meta SET last_transno = last_transno")
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                rollback(conn, self.dir)
                self.failed(e)
                return False
        self._recovered()
        return True

    def _recovered(self) -> None:
        log.warning("%s: writes succeed again%s", self.dir, " (the disk has room: all changes are accepted)"
                    if self.full else f" (after: {self._trouble})")
        self._trouble = ""
        self.full = False


def rollback(conn: sqlite3.Connection, dir: Path) -> None:
    """End a failed transaction, if SQLite has not ended it already (it rolls back by itself
    on a full disk or an I/O error)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            log.warning("%s: rollback failed: %s", dir, e)
