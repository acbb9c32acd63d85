"""What a failed SQLite call on the MDT means: the errno a request gets, and
whether the MDT's disk is full.

SQLite says SQLITE_FULL when it cannot grow the database or its WAL, but an
ENOSPC met while growing the WAL's shared-memory index, or while syncing,
comes back as one of the SQLITE_IOERR codes: the free space of the MDT's file
system tells those apart from a failing disk. A damaged database
(SQLITE_CORRUPT, SQLITE_NOTADB) is EIO; a read-only one EROFS. Any other
failure (a constraint, a misuse) is a bug and is left as it is.

Pure mapping: never opens, retries or logs anything.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from lustrepy.common.errors import LpError

# SQLite's primary result codes (the low byte of an extended code)
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26

LOW_SPACE = 1 << 20     # with less free space than this, an I/O error on the MDT is taken for a full disk


class MdtFull(LpError):
    """The MDT's disk is full: the transaction changed nothing (ENOSPC). Unlike the ENOSPC of
    an empty object pool, waiting for precreation does not help."""

    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "the MDT's disk is full")


def primary(e: sqlite3.Error) -> int:
    """The primary result code of a failure (0 when SQLite gave none)."""
    return int(getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF


def low_space(dir: Path) -> bool:
    """The file system holding `dir` has (almost) no space left for its non-root users' files."""
    try:
        sv = os.statvfs(dir)
    except OSError:
        return False
    return sv.f_bavail * (sv.f_frsize or sv.f_bsize) < LOW_SPACE


def classify(e: sqlite3.Error, dir: Path) -> LpError | None:
    """The LpError a failure of the MDT database in `dir` means, or None when it is a bug."""
    code = primary(e)
    if code == SQLITE_FULL or (code == SQLITE_IOERR and low_space(dir)):
        return MdtFull()
    if code == SQLITE_IOERR:
        return LpError(errno.EIO, f"I/O error on the MDT's database ({e})")
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return LpError(errno.EIO, f"the MDT's database is damaged ({e})")
    if code == SQLITE_READONLY:
        return LpError(errno.EROFS, f"the MDT's database is read-only ({e})")
    return None
