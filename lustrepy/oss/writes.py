"""A write session: the chunks of one Write or WriteMany request, for one or more objects, then
one reply; each chunk checked, space reserved, bytes written and their checksums at rest kept.

Rules kept here (with ofd's): every chunk carries a crc32c of its data, checked before anything
is written (EBADMSG); no byte past MAX_FILE_SIZE (EFBIG); a full OST answers ENOSPC and a chunk
that fails leaves the object's size as it was. The object is recorded in the dirty log before
its bytes change, and its block checksums are updated under the object's lock right after
(integrity.py). Never speaks gRPC.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from typing import Protocol

import crc32c

from lustrepy.common.errors import LpError
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.common.records import Lvb
from lustrepy.oss.barrier import Barrier
from lustrepy.oss.errmap import NO_SPACE, lvb_of, oserr
from lustrepy.oss.identity import OstIdentity
from lustrepy.oss.integrity import Integrity
from lustrepy.oss.osd import Osd

log = logging.getLogger("lustrepy.oss.ofd")

ALLOC_UNIT = 4096                 # space reservations are counted in whole blocks of this size


class Objects(Protocol):
    """What a write session needs of the OST's object layer (ofd.Ofd)."""

    osd: Osd
    ident: OstIdentity
    barrier: Barrier
    integrity: Integrity

    def _obj_lock(self, oid: int) -> threading.Lock: ...

    def check_oid(self, oid: int) -> None: ...

    def _reserve(self, nbytes: int) -> None: ...

    def _unreserve(self, nbytes: int) -> None: ...

    def _account(self, delta_blocks: int) -> None: ...


class WriteSession:
    """The writes of one Write stream: chunks for one or more objects, then one reply.

    Keeps each touched object open until `close`; `finish` syncs them when any
    chunk asked for it and returns the bytes written and the last object's LVB.
    """

    def __init__(self, ofd: Objects) -> None:
        self.ofd = ofd
        self.written = 0
        self.want_sync = False
        self._fds: dict[int, int] = {}
        self._last_oid = 0
        self._begun: set[int] = set()           # recorded in the dirty log until close

    def write(self, oid: int, offset: int, data: bytes | bytearray | memoryview, crc: int, sync: bool = False) -> None:
        """Check and write one chunk; on any error nothing of this chunk is visible."""
        self.ofd.check_oid(oid)
        if crc32c.crc32c(data) != crc:
            raise LpError(errno.EBADMSG, f"checksum mismatch in a chunk for object {oid} at offset {offset}")
        end = offset + len(data)
        if end > MAX_FILE_SIZE:
            raise LpError(errno.EFBIG, f"write to object {oid} ends at {end}, past the maximum file size")
        self.want_sync = self.want_sync or sync
        fd = self._fd(oid)
        self._last_oid = oid
        if not data:
            return
        if oid not in self._begun:
            self.prepare([oid])
        self._write_locked(fd, oid, offset, data)
        self.written += len(data)

    def prepare(self, oids: list[int]) -> None:
        """These objects are about to be written: recorded as changing (one sync for all of them)
        until the session closes."""
        new = [oid for oid in dict.fromkeys(oids) if oid not in self._begun]
        if not new or not self.ofd.integrity.enabled:
            return
        try:
            self.ofd.integrity.dirty.begin(new)
        except OSError as e:
            raise oserr(e, f"recording a change of objects {new[:8]}") from None
        self._begun.update(new)

    def _write_locked(self, fd: int, oid: int, offset: int, data: bytes | bytearray | memoryview) -> None:
        ofd, osd = self.ofd, self.ofd.osd
        end = offset + len(data)
        with ofd._obj_lock(oid):
            try:
                ofd.barrier.before_change(oid)
                before = osd.fstat(fd)
                need = 0 if osd.allocated(fd, offset, len(data)) else _span(offset, end)
            except OSError as e:
                raise oserr(e, f"object {oid}") from None
            ofd._reserve(need)
            failure: OSError | None = None
            plan = None
            try:
                plan = ofd.integrity.plan_write(fd, oid, before.size, offset, data)
                self._apply(fd, oid, offset, data, before.size, need)
            except OSError as e:
                failure = e
            finally:
                ofd._unreserve(need)
            if failure is None:
                try:
                    ofd.integrity.apply(oid, plan, before.size)
                except OSError as e:
                    failure = e
            if failure is not None:
                ofd.integrity.redo(fd, oid)         # the checksums of what is on disk now
            try:
                after = osd.fstat(fd)
                ofd._account(after.blocks - before.blocks)
            except OSError as e:
                failure = failure or e
            if failure is not None:
                raise oserr(failure, f"writing object {oid}")

    def _apply(self, fd: int, oid: int, offset: int, data: bytes | bytearray | memoryview, old_size: int, need: int) -> None:
        osd = self.ofd.osd
        try:
            if need:
                try:
                    os.posix_fallocate(fd, offset, len(data))
                except OSError as e:
                    if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
            osd.pwrite_all(fd, data, offset)
        except OSError as e:
            self._restore_size(fd, oid, old_size)
            if e.errno in NO_SPACE:
                log.warning("%s: out of space writing object %d: %s", self.ofd.ident.name, oid, e.strerror)
            raise

    def _restore_size(self, fd: int, oid: int, old_size: int) -> None:
        try:
            if self.ofd.osd.fstat(fd).size > old_size:
                self.ofd.osd.truncate(fd, old_size)
        except OSError as e:
            log.error("cannot restore the size of object %d after a failed write: %s", oid, e)

    def finish(self) -> tuple[int, Lvb]:
        """Sync if asked (the objects and their checksums); returns (bytes written, LVB of the last object written)."""
        osd = self.ofd.osd
        try:
            if self.want_sync:
                for oid, fd in self._fds.items():
                    osd.fsync(fd)
                    self.ofd.integrity.sidecars.fsync(oid)
            lvb = lvb_of(osd.fstat(self._fds[self._last_oid])) if self._last_oid else Lvb()
        except OSError as e:
            raise oserr(e, "syncing written objects") from None
        return self.written, lvb

    def objects(self) -> list[int]:
        """The objects this session wrote."""
        return list(self._fds)

    def lvbs(self) -> dict[int, Lvb]:
        """The LVB of every object this session wrote, from the descriptors it holds."""
        try:
            return {oid: lvb_of(self.ofd.osd.fstat(fd)) for oid, fd in self._fds.items()}
        except OSError as e:
            raise oserr(e, "reading written objects' attributes") from None

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._begun:
            self.ofd.integrity.dirty.end(self._begun)
            self._begun.clear()

    def __enter__(self) -> WriteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fd(self, oid: int) -> int:
        fd = self._fds.get(oid)
        if fd is None:
            try:
                fd = self.ofd.osd.open_rw(oid)
            except OSError as e:
                raise oserr(e, f"object {oid}") from None
            self._fds[oid] = fd
        return fd


def _span(start: int, end: int) -> int:
    """Bytes of whole allocation blocks that [start, end) touches."""
    first = start - start % ALLOC_UNIT
    last = -(-end // ALLOC_UNIT) * ALLOC_UNIT
    return last - first
