"""Object storage device: objects as files in a local directory, nothing else.

An object with id N lives at DIR/O/<N & 0xff as 2 hex digits>/<N in decimal>.
Small metadata files (LAST_ID and LAST_ID.<mdt>, ost.json) sit at DIR's top
and are replaced atomically (temp file + fsync + rename + fsync of the
directory).

This module knows files, offsets and bytes. It never decides what an object
means (identity, id allocation, capacity, errno policy belong to ofd), never
speaks gRPC, and raises plain OSError.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass
from typing import Iterator

log = logging.getLogger(__name__)

OBJ_DIR = "O"
FANOUT = 256


@dataclass(frozen=True, slots=True)
class ObjStat:
    """What the store knows of one object: size and allocation (512-byte blocks) and times."""

    size: int
    blocks: int
    mtime_ns: int
    atime_ns: int
    ctime_ns: int


def _objstat(st: os.stat_result) -> ObjStat:
    if not stat.S_ISREG(st.st_mode):        # damage: a directory or device where an object should be
        raise OSError(errno.EUCLEAN, "not a regular file")
    return ObjStat(st.st_size, st.st_blocks, st.st_mtime_ns, st.st_atime_ns, st.st_ctime_ns)


class Osd:
    """Files for objects under `root`; every method is a thin, blocking file-system call."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.objdir = os.path.join(self.root, OBJ_DIR)

    # -- layout of the directory ------------------------------------------

    def make_dirs(self) -> None:
        """Create O/00 .. O/ff (idempotent) and make the entries durable."""
        os.makedirs(self.objdir, exist_ok=True)
        for i in range(FANOUT):
            os.makedirs(os.path.join(self.objdir, f"{i:02x}"), exist_ok=True)
        self._fsync_dir(self.objdir)
        self._fsync_dir(self.root)

    def subdir(self, oid: int) -> str:
        return os.path.join(self.objdir, f"{oid & 0xff:02x}")

    def path(self, oid: int) -> str:
        return os.path.join(self.subdir(oid), str(oid))

    # -- small metadata files at the top ----------------------------------

    def read_meta(self, name: str) -> bytes | None:
        """Contents of DIR/name, or None when it does not exist."""
        try:
            with open(os.path.join(self.root, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def meta_names(self, prefix: str) -> list[str]:
        """The names of DIR's top-level entries that start with `prefix`."""
        with os.scandir(self.root) as it:
            return sorted(e.name for e in it if e.name.startswith(prefix))

    def write_meta(self, name: str, data: bytes) -> None:
        """Replace DIR/name atomically and durably: temp + fsync + rename + fsync(dir)."""
        final = os.path.join(self.root, name)
        tmp = f"{final}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self.pwrite_all(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, final)
        except OSError:
            _unlink_quiet(tmp)
            raise
        self._fsync_dir(self.root)

    # -- objects -----------------------------------------------------------

    def create(self, oid: int) -> None:
        """Create object `oid` empty (an existing file of that id is emptied)."""
        fd = os.open(self.path(oid), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.close(fd)

    def create_new(self, oid: int) -> bool:
        """Create object `oid` empty unless it exists (never touches an existing one); True when created."""
        try:
            fd = os.open(self.path(oid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    def sync_dirs_of(self, oids: range | list[int]) -> None:
        """Make the directory entries of `oids` durable."""
        subs = {oid & 0xff for oid in (oids if len(oids) < FANOUT else range(FANOUT))}
        for s in sorted(subs):
            self._fsync_dir(os.path.join(self.objdir, f"{s:02x}"))

    def open_rw(self, oid: int) -> int:
        """An fd to write object `oid`; FileNotFoundError when it does not exist."""
        return os.open(self.path(oid), os.O_RDWR)

    def open_ro(self, oid: int) -> int:
        return os.open(self.path(oid), os.O_RDONLY)

    def stat(self, oid: int) -> ObjStat:
        return _objstat(os.stat(self.path(oid)))

    @staticmethod
    def fstat(fd: int) -> ObjStat:
        return _objstat(os.fstat(fd))

    @staticmethod
    def pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
        """Write all of `data` at `offset` (pwrite may write less than asked)."""
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[n:]
            offset += n

    @staticmethod
    def pread(fd: int, length: int, offset: int) -> bytes:
        """Up to `length` bytes at `offset`; holes read as zeros, short only at end of file."""
        out = os.pread(fd, length, offset)
        if len(out) == length or not out:
            return out
        parts = [out]
        got = len(out)
        while got < length:
            more = os.pread(fd, length - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    @staticmethod
    def pread_into(fd: int, buf: memoryview, offset: int) -> int:
        """Fill buf from `offset`; returns the bytes read, fewer only at end of file."""
        got = 0
        while got < len(buf):
            n = os.preadv(fd, [buf[got:]], offset + got)
            if n <= 0:
                break
            got += n
        return got

    @staticmethod
    def allocated(fd: int, offset: int, length: int) -> bool:
        """True when [offset, offset+length) holds no hole (writing it needs no new space)."""
        try:
            hole = os.lseek(fd, offset, os.SEEK_HOLE)
        except OSError:          # offset at or past the end of file (ENXIO), or no SEEK_HOLE
            return False
        return hole >= offset + length

    @staticmethod
    def truncate(fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    @staticmethod
    def fsync(fd: int) -> None:
        os.fsync(fd)

    def unlink(self, oid: int) -> bool:
        """Remove object `oid`; False when it was already absent."""
        try:
            os.unlink(self.path(oid))
        except FileNotFoundError:
            return False
        return True

    def scan(self, with_blocks: bool) -> Iterator[tuple[int, int]]:
        """Every object as (id, allocated 512-byte blocks or 0 when not asked for)."""
        for i in range(FANOUT):
            sub = os.path.join(self.objdir, f"{i:02x}")
            try:
                it = os.scandir(sub)
            except FileNotFoundError:
                continue
            with it:
                for ent in it:
                    if not ent.name.isdigit():
                        continue
                    blocks = 0
                    if with_blocks:
                        try:
                            blocks = ent.stat(follow_symlinks=False).st_blocks
                        except FileNotFoundError:
                            continue
                    yield int(ent.name), blocks

    def list_subdir(self, sub: int) -> list[tuple[int, ObjStat]]:
        """The objects in sub-directory `sub` (0..FANOUT-1) by id, with their attributes (an object
        removed while listed is left out)."""
        out = []
        try:
            it = os.scandir(os.path.join(self.objdir, f"{sub:02x}"))
        except FileNotFoundError:
            return []
        with it:
            for ent in it:
                if ent.name.isdigit():
                    try:
                        out.append((int(ent.name), _objstat(ent.stat(follow_symlinks=False))))
                    except FileNotFoundError:
                        continue
        return sorted(out, key=lambda t: t[0])

    def statvfs(self) -> os.statvfs_result:
        return os.statvfs(self.root)

    @staticmethod
    def sync_all() -> None:
        os.sync()

    @staticmethod
    def _fsync_dir(path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as e:
        log.debug("could not remove %s: %s", path, e)
