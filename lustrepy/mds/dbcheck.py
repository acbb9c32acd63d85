"""Start-up checks of the MDT database file, each ending in one line for the admin.

- header(): the file is an SQLite database at all (an empty file, a text file
  or an unreadable one is named as such, before SQLite touches it);
- integrity(): PRAGMA quick_check (or integrity_check) finds no damaged page;
- wal_loss(): what SQLite dropped from the WAL when it opened it. SQLite
  replays the WAL up to the last commit frame whose checksum chain is intact
  and silently ignores the rest (and all of it when the WAL's header is bad).
  After a crash that is the torn end of the last, unsynced, commit; whole
  commits past that point mean the log was damaged (or written out of order
  by a power cut) and transactions are lost. The check reads the WAL's frame
  headers and the index SQLite built (the first WalIndexHdr of the -shm file,
  https://sqlite.org/walformat.html), never the pages.

Never writes the database (keep_wal copies the WAL aside); refusals are
QuietError, warnings are returned.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
from pathlib import Path

from lustrepy.common.errors import QuietError

SQLITE_MAGIC = b"SQLite format 3\0"
_WAL_MAGIC = (0x377F0682, 0x377F0683)     # checksums little-endian, big-endian
_WAL_VERSION = 3007000
_WAL_HDR = 32
_FRAME_HDR = 24
_SHM_MXFRAME = 16                           # offset of mxFrame in the -shm file's first WalIndexHdr
CHECKS = ("quick", "full", "none")


def header(db: Path) -> None:
    """QuietError naming the problem when `db` cannot be an SQLite database."""
    try:
        with open(db, "rb") as f:
            head = f.read(100)
    except OSError as e:
        raise QuietError(f"{db}: cannot read the MDT database: {e.strerror}") from None
    if not head:
        raise QuietError(f"{db}: empty file, not an MDT database (a format that never finished?)")
    if not head.startswith(SQLITE_MAGIC):
        raise QuietError(f"{db}: not an SQLite database, so not an MDT (it starts with {head[:16]!r})")
    if len(head) < 100:
        raise QuietError(f"{db}: the MDT database is truncated ({len(head)} bytes)")


def integrity(conn: sqlite3.Connection, db: Path, how: str) -> None:
    """Run SQLite's check (`how`: quick, full or none); QuietError with its first finding."""
    if how == "none":
        return
    pragma = "quick_check(20)" if how == "quick" else "integrity_check(20)"
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as e:
        raise QuietError(f"{db}: the MDT database is damaged ({e}); restore it from a backup") from None
    if rows != ["ok"]:
        more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
        raise QuietError(f"{db}: the MDT database is damaged: {_one_line(rows[0])}{more} (PRAGMA {pragma}); "
                         "restore it from a backup, or start with --start-check none to serve what is readable")


def wal_loss(db: Path) -> str | None:
    """One line saying what SQLite dropped from `db`'s WAL as it opened it (call after a first
    read on a connection), or None when it dropped no commit."""
    wal = Path(f"{db}-wal")
    try:
        with open(wal, "rb") as f:
            hdr = f.read(_WAL_HDR)
            size = os.fstat(f.fileno()).st_size
            if len(hdr) < _WAL_HDR or size <= _WAL_HDR:
                return None
            magic, version, page, _, salt1, salt2, c1, c2 = struct.unpack(">8I", hdr)
            if (magic not in _WAL_MAGIC or version != _WAL_VERSION or not _page_size_ok(page)
                    or _checksum(hdr[:24], magic == _WAL_MAGIC[1]) != (c1, c2)):
                return (f"{wal}: the log's header is damaged: its {size - _WAL_HDR} bytes of transactions "
                        "are ignored and the MDT starts from the database file alone")
            frame = _FRAME_HDR + page
            valid = _mx_frame(db)
            if valid is None:
                return None
            lost = 0
            for i in range(valid, (size - _WAL_HDR) // frame):
                f.seek(_WAL_HDR + i * frame)
                fh = f.read(_FRAME_HDR)
                if len(fh) < _FRAME_HDR:
                    break
                _, commit, s1, s2 = struct.unpack(">4I", fh[:16])
                if (s1, s2) == (salt1, salt2) and commit:
                    lost += 1
    except OSError:
        return None
    if not lost:
        return None
    return (f"{wal}: {lost} committed transactions after frame {valid} are unreadable (a damaged log, or "
            "written out of order before a power cut): the MDT starts from the last readable commit")


def keep_wal(db: Path) -> str:
    """Copy `db`'s WAL as found to mdt.db-wal.damaged for the admin (SQLite's first write
    resets it); the line to log."""
    wal = Path(f"{db}-wal")
    try:
        shutil.copyfile(wal, f"{wal}.damaged")
    except OSError as e:
        return f"cannot keep a copy of {wal}: {e.strerror}"
    return f"a copy of the log as found is {wal}.damaged"


def _mx_frame(db: Path) -> int | None:
    """The number of WAL frames SQLite took as valid, from its index (None: no index)."""
    try:
        with open(f"{db}-shm", "rb") as f:
            raw = f.read(_SHM_MXFRAME + 4)
    except OSError:
        return None
    if len(raw) < _SHM_MXFRAME + 4:
        return None
    return int(struct.unpack("=I", raw[_SHM_MXFRAME:])[0])


def _page_size_ok(n: int) -> bool:
    return 512 <= n <= 65536 and n & (n - 1) == 0


def _checksum(data: bytes, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of `data` (a multiple of 8 bytes), from zero."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    s0 = s1 = 0
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
