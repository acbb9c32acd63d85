"""Object semantics over the object store: ids, precreation, bulk I/O, punch,
destroy, statfs, sync and capacity.

Rules kept here:
- Object ids are handed out by `precreate` only, in increasing order within the
  range of the MDT that asks (common/objid.py); that range's LAST_ID (the
  highest id it ever created, lastid.py) is made durable before the ids are
  returned, and the objects themselves exist on disk before that. An id beyond
  its range's LAST_ID names no object (ENOENT), whatever the disk holds.
- Every write chunk carries a crc32c of its data, checked before anything is
  written (EBADMSG); no byte past MAX_FILE_SIZE (EFBIG); writing or reading an
  object that does not exist is ENOENT (writes.py).
- Every block of every object has a crc32c at rest, kept with each change and
  checked on every read; bytes that do not match are answered EBADMSG, never
  returned (integrity.py).
- A full OST answers ENOSPC and loses nothing already acknowledged: space is
  checked (against --capacity) and allocated (fallocate) before a chunk's data
  is written; a chunk that still fails leaves the object's size as it was.
- Destroy is idempotent.

Errors leave here as LpError with a POSIX errno. Never speaks gRPC and never
decides who may call (exports are the service's business).
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import threading
from array import array
from dataclasses import dataclass
from typing import Callable, Generator

from lustrepy.common.errors import LpError
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.common.objid import MAX_MDTS, group_last, valid_mdt
from lustrepy.common.records import Lvb, Statfs
from lustrepy.oss.barrier import Barrier
from lustrepy.oss.errmap import lvb_of, oserr
from lustrepy.oss.identity import OstIdentity
from lustrepy.oss.integrity import Integrity
from lustrepy.oss.lastid import LAST_ID_FILE as LAST_ID_FILE, LastIds
from lustrepy.oss.osd import FANOUT, ObjStat, Osd
from lustrepy.oss.writes import WriteSession

log = logging.getLogger(__name__)

MAX_PRECREATE = 20_000            # objects per Precreate call (larger asks are cut)
DIRTY_AHEAD = 64                  # ids recorded in the dirty log with a new object (see csum.DirtyLog)
DEFAULT_READ_CHUNK = 1024 * 1024
MIN_READ_CHUNK = 4096
MAX_READ_CHUNK = 16 * 1024 * 1024
_OBJ_LOCKS = 64

@dataclass(frozen=True, slots=True)
class ReadPiece:
    """One piece of a read: data at `offset`; `eof` when it reaches the object's end."""

    offset: int
    data: bytes
    eof: bool


class Ofd:
    """The objects of one OST. Thread-safe: gRPC handlers call it from many threads."""

    def __init__(self, osd: Osd, ident: OstIdentity, capacity: int | None = None, checksums: bool = True) -> None:
        if capacity is not None and capacity <= 0:
            raise LpError(errno.EINVAL, f"capacity must be positive, not {capacity}")
        self.osd = osd
        self.ident = ident
        self.capacity = capacity
        self._meta_lock = threading.Lock()          # every LAST_ID's change, the id index, precreation
        self._space_lock = threading.Lock()         # used/reserved bytes
        self._obj_locks = [threading.Lock() for _ in range(_OBJ_LOCKS)]
        self._ids = array("Q")                      # sorted ids of existing objects
        self.last_ids = LastIds(osd)                # per MDT range: the highest id created
        self._used = 0                              # allocated bytes of all objects (with capacity only)
        self._reserved = 0
        self.barrier = Barrier(osd)                 # set by a replay barrier (tests of recovery)
        try:
            self.barrier.roll_back()                # a barrier set before the last stop: go back to it
        except OSError as e:
            raise oserr(e, "going back to the replay barrier") from None
        self._load()
        self.integrity = Integrity(osd, ident.name, self._obj_lock, enabled=checksums, ahead=self._next_ids)
        try:
            self.integrity.recover(self._ids.tolist)
        except OSError as e:
            raise oserr(e, "recomputing checksums after an unclean stop") from None

    # -- start-up ----------------------------------------------------------

    def _load(self) -> None:
        ids: list[int] = []
        used_blocks = 0
        for oid, blocks in self.osd.scan(with_blocks=self.capacity is not None):
            ids.append(oid)
            used_blocks += blocks
        ids.sort()
        self.last_ids.load(ids)
        self._ids = array("Q", ids)
        self._used = used_blocks * 512
        log.debug("%s: %d objects, last ids %s%s", self.ident.name, len(ids), self.last_ids.all() or "none",
                  f", {self._used} of {self.capacity} bytes used" if self.capacity is not None else "")

    # -- ids ----------------------------------------------------------------

    @property
    def last_id(self) -> int:
        """MDT0's LAST_ID: the one LAST_ID of a file system of one MDT."""
        return self.last_ids.of(0)

    def check_oid(self, oid: int) -> None:
        """ENOENT unless `oid` was ever created here (up to its MDT range's LAST_ID)."""
        self.last_ids.check(oid)

    def _next_ids(self, oid: int) -> range:
        """The ids after `oid` new files will get next (up to DIRTY_AHEAD of them, all precreated):
        recorded in the dirty log with it (no lock: a stale LAST_ID only records fewer)."""
        return self.last_ids.ahead(oid, DIRTY_AHEAD)

    def object_ids(self) -> list[int]:
        """The ids of the objects that exist, in order (a copy)."""
        with self._meta_lock:
            return self._ids.tolist()

    def object_count(self) -> int:
        return len(self._ids)

    def exists(self, oid: int) -> bool:
        with self._meta_lock:
            i = bisect.bisect_left(self._ids, oid)
            return i < len(self._ids) and self._ids[i] == oid

    def precreate(self, count: int, mdt_index: int = 0) -> tuple[int, int]:
        """Create the next objects of MDT `mdt_index`'s range, [LAST_ID+1, LAST_ID+n] (n = count,
        at most MAX_PRECREATE, no further than the range's end); returns the range.

        If the disk fills part way, the objects made so far are kept and returned. EINVAL for no
        such MDT, ENOSPC when its range has no id left.
        """
        if count <= 0:
            raise LpError(errno.EINVAL, f"precreate count must be positive, not {count}")
        if not valid_mdt(mdt_index):
            raise LpError(errno.EINVAL, f"no MDT index {mdt_index}: object ids exist for MDTs 0..{MAX_MDTS - 1}")
        with self._meta_lock:
            first = self.last_ids.of(mdt_index) + 1
            count = min(count, MAX_PRECREATE, group_last(mdt_index) - first + 1)
            if count <= 0:
                raise LpError(errno.ENOSPC, f"{self.ident.name}: every object id of MDT{mdt_index}'s range is "
                              f"used (up to {group_last(mdt_index)})")
            made = 0
            failure: OSError | None = None
            for oid in range(first, first + count):
                try:
                    self.osd.create(oid)
                except OSError as e:
                    failure = e
                    break
                made += 1
            if made == 0:
                assert failure is not None
                raise oserr(failure, f"cannot create object {first}")
            last = first + made - 1
            try:
                self.osd.sync_dirs_of(range(first, last + 1))
                self.last_ids.record(mdt_index, last)
            except OSError as e:
                raise oserr(e, "cannot record LAST_ID") from None
            # ids of a higher range than any existing object's go at the end; others are inserted
            at = bisect.bisect_left(self._ids, first)
            self._ids[at:at] = array("Q", range(first, last + 1))
        if failure is not None:
            log.warning("precreate stopped after %d of %d objects: %s", made, count, failure)
        log.debug("precreated objects %d..%d of MDT%d", first, last, mdt_index)
        return first, last

    def list_objects(self, cursor: int, limit: int) -> tuple[list[tuple[int, ObjStat]], int]:
        """The objects on disk from sub-directory `cursor` on, whole sub-directories until at least
        `limit` objects (lfsck), each with its attributes; and the cursor to go on from (FANOUT:
        done). Reads the directory, not the id index: an object lost or left behind shows as it is."""
        out: list[tuple[int, ObjStat]] = []
        while cursor < FANOUT and len(out) < limit:
            try:
                out += self.osd.list_subdir(cursor)
            except OSError as e:
                raise oserr(e, f"listing objects of sub-directory {cursor:02x}") from None
            cursor += 1
        return out, cursor

    def recreate(self, oids: list[int]) -> list[int]:
        """Create, empty, the objects of `oids` that should exist (ids up to their MDT range's
        LAST_ID) but do not (lfsck repairing a file whose object was lost); existing ones are left
        alone. Returns the ids created. EINVAL for an id never handed out (0, or above LAST_ID)."""
        made: list[int] = []
        with self._meta_lock:
            bad = [oid for oid in oids if not self.last_ids.created(oid)]
            if bad:
                raise LpError(errno.EINVAL, f"objects {bad[:8]} lie outside what their MDT's range created "
                              f"(LAST_ID {self.last_ids.all() or 0})")
            for oid in sorted(set(oids)):
                try:
                    if not self.osd.create_new(oid):
                        continue
                except OSError as e:
                    raise oserr(e, f"cannot create object {oid}") from None
                made.append(oid)
                self.integrity.destroyed(oid)       # no checksums or bad blocks of the object lost
                i = bisect.bisect_left(self._ids, oid)
                if i == len(self._ids) or self._ids[i] != oid:
                    self._ids.insert(i, oid)
            try:
                self.osd.sync_dirs_of(made)
            except OSError as e:
                raise oserr(e, "cannot sync the recreated objects' directories") from None
        if made:
            log.warning("%s: recreated %d lost objects empty: %s", self.ident.name, len(made), made[:16])
        return made

    # -- bulk data ------------------------------------------------------------

    def write_session(self) -> WriteSession:
        return WriteSession(self)

    def read(self, oid: int, offset: int, length: int, chunk_size: int = 0) -> Generator[ReadPiece, None, None]:
        """Pieces of [offset, offset+length) up to the object's end; holes read as zeros.

        Always yields at least one piece; ENOENT is raised before the first one.
        """
        self.check_oid(oid)
        chunk = DEFAULT_READ_CHUNK if chunk_size <= 0 else max(MIN_READ_CHUNK, min(chunk_size, MAX_READ_CHUNK))
        try:
            fd = self.osd.open_ro(oid)
        except OSError as e:
            raise oserr(e, f"object {oid}") from None
        return self._read_pieces(fd, oid, offset, length, chunk)

    def _read_pieces(self, fd: int, oid: int, offset: int, length: int, chunk: int) -> Generator[ReadPiece, None, None]:
        try:
            size = self.osd.fstat(fd).size
            end = min(offset + length, size)
            if offset >= end:
                yield ReadPiece(offset, b"", offset >= size)
                return
            pos = offset
            while pos < end:
                n = min(chunk, end - pos)
                try:
                    data = self.osd.pread(fd, n, pos)
                    data = self.integrity.check_read(fd, oid, pos, data, size) or data
                except OSError as e:
                    raise oserr(e, f"reading object {oid}") from None
                if len(data) < n:             # truncated under us: stop at the new end
                    yield ReadPiece(pos, data, True)
                    return
                pos += n
                yield ReadPiece(pos - n, data, pos >= size)
        finally:
            os.close(fd)

    def read_into(self, oid: int, offset: int, length: int,
                  out: Callable[[int], memoryview]) -> tuple[memoryview, bool]:
        """One piece of [offset, offset+length), at most MAX_READ_CHUNK, read into out(n): the bytes
        and whether they reach the object's end. Holes read as zeros; ENOENT when no such object."""
        self.check_oid(oid)
        try:
            fd = self.osd.open_ro(oid)
        except OSError as e:
            raise oserr(e, f"object {oid}") from None
        try:
            size = self.osd.fstat(fd).size
            n = max(0, min(length, MAX_READ_CHUNK, size - offset))
            buf = out(n)
            got = self.osd.pread_into(fd, buf, offset) if n else 0
            again = self.integrity.check_read(fd, oid, offset, buf[:got], size)
            if again is not None:               # read again under the object's lock: these match
                got = len(again)
                buf[:got] = again
        except OSError as e:
            raise oserr(e, f"reading object {oid}") from None
        finally:
            os.close(fd)
        return buf[:got], got < n or offset + got >= size

    # -- attributes, punch, destroy, sync ------------------------------------

    def getattr(self, oid: int) -> Lvb:
        self.check_oid(oid)
        try:
            return lvb_of(self.osd.stat(oid))
        except OSError as e:
            raise oserr(e, f"object {oid}") from None

    def lvb(self, oid: int) -> Lvb:
        """The object's LVB as the lock server wants it: zeros for an absent object; a damaged
        one is EIO (its lock is refused), never a size of 0 the client would believe."""
        try:
            return lvb_of(self.osd.stat(oid))
        except FileNotFoundError:
            return Lvb()
        except OSError as e:
            raise oserr(e, f"object {oid}") from None

    def punch(self, oid: int, size: int) -> Lvb:
        """Truncate (or extend with a hole) object `oid` to `size` bytes."""
        self.check_oid(oid)
        if size > MAX_FILE_SIZE:
            raise LpError(errno.EFBIG, f"size {size} exceeds the maximum file size")
        integ = self.integrity
        if integ.enabled:
            try:
                integ.dirty.begin([oid])
            except OSError as e:
                raise oserr(e, f"recording a change of object {oid}") from None
        try:
            with self._obj_lock(oid):
                after = self._punch_locked(oid, size)
        finally:
            if integ.enabled:
                integ.dirty.end([oid])
        return lvb_of(after)

    def _punch_locked(self, oid: int, size: int) -> ObjStat:
        try:
            fd = self.osd.open_rw(oid)
        except OSError as e:
            raise oserr(e, f"object {oid}") from None
        try:
            self.barrier.before_change(oid)
            before = self.osd.fstat(fd)
            plan = self.integrity.plan_punch(fd, oid, before.size, size)
            self.osd.truncate(fd, size)
            try:
                self.integrity.apply(oid, plan, before.size)
            except OSError:
                self.integrity.redo(fd, oid)        # the checksums of what is on disk now
                raise
            after = self.osd.fstat(fd)
        except OSError as e:
            raise oserr(e, f"punching object {oid}") from None
        finally:
            os.close(fd)
        self._account(after.blocks - before.blocks)
        return after

    def destroy(self, oids: list[int]) -> int:
        """Remove objects; absent ones count as done. Returns how many were removed now."""
        removed = 0
        for oid in oids:
            if oid <= 0:
                continue
            with self._obj_lock(oid):
                try:
                    blocks = self.osd.stat(oid).blocks if self.capacity is not None else 0
                    gone = self.osd.unlink(oid)
                except FileNotFoundError:
                    gone = False
                except OSError as e:    # damage: left in place for an admin, the others still go
                    oserr(e, f"destroying object {oid} (left in place)")
                    continue
                if gone:
                    self._account(-blocks)
                self.integrity.destroyed(oid)
            with self._meta_lock:
                i = bisect.bisect_left(self._ids, oid)
                if i < len(self._ids) and self._ids[i] == oid:
                    self._ids.pop(i)
            removed += int(gone)
        return removed

    def sync(self, oid: int) -> None:
        """Make object `oid` (and its checksums) durable; 0 = everything on this OST's file system."""
        if oid == 0:
            self.osd.sync_all()
        else:
            self._fsync(oid, missing_ok=False)

    def sync_objects(self, oids: set[int]) -> None:
        """Make these objects' bytes durable (those destroyed meanwhile are skipped), with the
        checksums of every object changed since the last commit; then the dirty log forgets them."""
        integ = self.integrity
        if not integ.enabled:
            for oid in sorted(oids):
                self._fsync(oid, missing_ok=True)
            return
        taken = integ.dirty.take()
        try:
            for oid in sorted(oids | taken):
                self._fsync(oid, missing_ok=True)
            if taken:
                self.osd.sync_dirs_of(sorted(taken))   # the entries of checksum files made since
            integ.dirty.settle()
        except OSError as e:
            integ.dirty.restore(taken)
            raise oserr(e, "recording the objects changed since the last commit") from None
        except LpError:
            integ.dirty.restore(taken)
            raise

    def _fsync(self, oid: int, missing_ok: bool) -> None:
        try:
            fd = self.osd.open_ro(oid)
        except FileNotFoundError as e:
            if missing_ok:
                return
            raise oserr(e, f"object {oid}") from None
        except OSError as e:
            raise oserr(e, f"object {oid}") from None
        try:
            self.osd.fsync(fd)
            self.integrity.sidecars.fsync(oid)
        except OSError as e:
            raise oserr(e, f"syncing object {oid}") from None
        finally:
            os.close(fd)

    # -- space ------------------------------------------------------------------

    def statfs(self) -> Statfs:
        try:
            sv = self.osd.statvfs()
        except OSError as e:
            raise oserr(e, "statfs") from None
        bsize = sv.f_frsize or sv.f_bsize or 4096
        blocks, bfree, bavail = sv.f_blocks, sv.f_bfree, sv.f_bavail
        if self.capacity is not None:
            with self._space_lock:
                left = max(0, self.capacity - self._used - self._reserved)
            blocks = self.capacity // bsize
            bfree = min(bfree, left // bsize)
            bavail = min(bavail, left // bsize)
        return Statfs(bsize=bsize, blocks=blocks, bfree=bfree, bavail=bavail, files=sv.f_files, ffree=sv.f_ffree)

    def _reserve(self, nbytes: int) -> None:
        if self.capacity is None or nbytes == 0:
            return
        with self._space_lock:
            if self._used + self._reserved + nbytes > self.capacity:
                raise LpError(errno.ENOSPC, f"{self.ident.name} is full ({self._used} of {self.capacity} bytes used)")
            self._reserved += nbytes

    def _unreserve(self, nbytes: int) -> None:
        if self.capacity is None or nbytes == 0:
            return
        with self._space_lock:
            self._reserved -= nbytes

    def _account(self, delta_blocks: int) -> None:
        if self.capacity is None or delta_blocks == 0:
            return
        with self._space_lock:
            self._used = max(0, self._used + delta_blocks * 512)

    def _obj_lock(self, oid: int) -> threading.Lock:
        return self._obj_locks[oid % _OBJ_LOCKS]
