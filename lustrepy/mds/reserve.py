"""The MDT's reserve: disk space held back in a file beside the database
(mdt.reserve) so that a full disk still lets the MDS serve opens, closes,
unlinks and attribute changes.

SQLite needs free space for more than new rows: every transaction appends to
the WAL, and folding the WAL back into the database (a checkpoint) grows the
database by the pages new rows took. On a full disk both fail, and then even
a read-only open (which records its handle) would fail. When a write first
fails for lack of space the store releases the reserve and checkpoints, and
from then on refuses only what makes the namespace grow (new inodes, names,
xattrs: ENOSPC) until the file system has room for the reserve twice over;
then it takes the reserve again and accepts everything.

Knows files and free space only: never touches the database.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = "mdt.reserve"
DEFAULT_RESERVE = 16 << 20


class Reserve:
    """The reserve file of the MDT in `dir`, `size` bytes (0: none kept)."""

    def __init__(self, dir: Path, size: int) -> None:
        self.path = Path(dir) / RESERVE_NAME
        self.size = size

    def held(self) -> bool:
        try:
            return self.size > 0 and self.path.stat().st_blocks * 512 >= self.size
        except OSError:
            return False

    def take(self) -> bool:
        """Set the reserve aside (allocated, not sparse); False when the disk has no room for it."""
        if self.size <= 0:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            log.debug("cannot set the reserve %s aside: %s", self.path, e.strerror)
            self.path.unlink(missing_ok=True)       # a part is no reserve: give the space back
            return False
        return True

    def release(self) -> bool:
        """Give the reserve's space back to the file system; False when none was held."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def room_again(self) -> bool:
        """The file system has room for the reserve twice over (so taking it leaves room)."""
        try:
            sv = os.statvfs(self.path.parent)
        except OSError:
            return False
        return sv.f_bavail * (sv.f_frsize or sv.f_bsize) >= 2 * self.size
