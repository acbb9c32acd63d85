"""Checksums at rest, as files beside the objects: a crc32c per block of every object, the blocks
known bad, and the objects changed since the last commit.

- DIR/O/xx/<id>.crc (a "sidecar"): one little-endian uint32 per BLOCK-byte block of object <id>,
  entry i for bytes [i*BLOCK, (i+1)*BLOCK) cut at the object's end. An entry of 0 (also one past
  the sidecar's end, or a missing sidecar) means "no checksum recorded": the block reads as
  zeros (a hole never written), or its crc is 0. Sidecars are named so the object scans
  (`Osd.scan`, lfsck's listing) pass them over.
- DIR/bad_blocks.json: {"mismatches": n, "bad": {"<id>": [block, ...]}}, the blocks found not
  to match their checksum and the total of mismatches ever found, replaced atomically at each
  change (rare).
- DIR/csum_dirty: the ids (little-endian uint64, appended) of objects whose bytes or checksums
  may have changed since the last commit. An id is appended and fdatasync'ed before the first
  change of its object after a commit; a commit fsyncs those objects and their sidecars and then
  rewrites the file with the ids still being changed. After an unclean stop the next start
  recomputes the checksums of the objects listed (their bytes and sidecars were not written
  together), so a crash at any moment gives no false mismatch.

Raises plain OSError; knows nothing of what objects mean (ofd and integrity decide that).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from lustrepy.oss.osd import Osd

log = logging.getLogger(__name__)

BLOCK = 64 * 1024
SUFFIX = ".crc"
BAD_FILE = "bad_blocks.json"
DIRTY_FILE = "csum_dirty"
_ENTRY = 4


def nblocks(size: int) -> int:
    """Blocks an object of `size` bytes has (the last one may be short)."""
    return -(-size // BLOCK)


class Sidecars:
    """The per-object checksum files of one OST. Callers serialise changes of one object (its lock)."""

    def __init__(self, osd: Osd) -> None:
        self.osd = osd

    def path(self, oid: int) -> str:
        return self.osd.path(oid) + SUFFIX

    def get(self, oid: int, first: int, count: int) -> list[int]:
        """Entries first..first+count-1 (0 where none is recorded)."""
        try:
            fd = os.open(self.path(oid), os.O_RDONLY)
        except FileNotFoundError:
            return [0] * count
        try:
            raw = os.pread(fd, count * _ENTRY, first * _ENTRY)
        finally:
            os.close(fd)
        out = list(struct.unpack(f"<{len(raw) // _ENTRY}I", raw[:len(raw) - len(raw) % _ENTRY]))
        return out + [0] * (count - len(out))

    def put(self, oid: int, first: int, crcs: list[int]) -> None:
        if not crcs:
            return
        fd = os.open(self.path(oid), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            self.osd.pwrite_all(fd, struct.pack(f"<{len(crcs)}I", *crcs), first * _ENTRY)
        finally:
            os.close(fd)

    def cut(self, oid: int, blocks: int) -> None:
        """Forget the entries of blocks from `blocks` on (the object got shorter)."""
        try:
            os.truncate(self.path(oid), blocks * _ENTRY)
        except FileNotFoundError:
            pass

    def remove(self, oid: int) -> None:
        try:
            os.unlink(self.path(oid))
        except FileNotFoundError:
            pass

    def fsync(self, oid: int) -> None:
        try:
            fd = os.open(self.path(oid), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class BadBlocks:
    """The blocks known bad and the count of mismatches found, kept in DIR/bad_blocks.json. Thread-safe."""

    def __init__(self, osd: Osd) -> None:
        self.osd = osd
        self._mu = threading.Lock()         # _bad, mismatches, and the file's replacement
        self._bad: dict[int, set[int]] = {}
        self.mismatches = 0
        raw = osd.read_meta(BAD_FILE)
        if raw:
            try:
                doc = json.loads(raw)
                self.mismatches = int(doc.get("mismatches", 0))
                self._bad = {int(k): {int(b) for b in v} for k, v in doc.get("bad", {}).items() if v}
            except (ValueError, TypeError, AttributeError):
                log.error("%s is damaged: the list of bad blocks starts empty", os.path.join(osd.root, BAD_FILE))

    def of(self, oid: int) -> frozenset[int]:
        with self._mu:
            return frozenset(self._bad.get(oid, ()))

    def add(self, oid: int, block: int) -> bool:
        """Count a mismatch and remember the block; False when it was known already (not counted)."""
        with self._mu:
            blocks = self._bad.setdefault(oid, set())
            if block in blocks:
                return False
            blocks.add(block)
            self.mismatches += 1
            self._save()
        return True

    def clear(self, oid: int, blocks: set[int] | None = None) -> None:
        """The blocks (all of them when None) are good again: rewritten whole, cut off, or destroyed."""
        with self._mu:
            have = self._bad.get(oid)
            if not have or (blocks is not None and not have & blocks):
                return
            if blocks is None:
                del self._bad[oid]
            else:
                have -= blocks
                if not have:
                    del self._bad[oid]
            self._save()

    def clear_from(self, oid: int, first: int) -> None:
        with self._mu:
            have = self._bad.get(oid, set())
            gone = {b for b in have if b >= first}
        if gone:
            self.clear(oid, gone)

    def snapshot(self) -> tuple[int, list[tuple[int, int]]]:
        """(mismatches ever found, the bad blocks as (object, block) in order)."""
        with self._mu:
            return self.mismatches, sorted((o, b) for o, bs in self._bad.items() for b in bs)

    def _save(self) -> None:
        doc = {"mismatches": self.mismatches,
               "bad": {str(o): sorted(bs) for o, bs in sorted(self._bad.items())}}
        try:
            self.osd.write_meta(BAD_FILE, (json.dumps(doc) + "\n").encode())
        except OSError as e:
            log.error("cannot record %s: %s", BAD_FILE, e.strerror or e)


class DirtyLog:
    """The objects changed since the last commit, durable before their change (DIR/csum_dirty).

    `begin(oids)` before changing objects' bytes or checksums, `end(oids)` after; `take()` at a
    commit's start gives the objects to make durable, `settle()` after they are, or
    `restore(taken)` when the commit failed. Thread-safe.

    Recording costs an fdatasync, so it is shared: the threads that wait for the file while one
    syncs are all recorded by the next one's single append and sync (group commit); and a new
    object is recorded with the ids `ahead(oid)` names (the next precreated ones, which new
    files get in order), so a run of small new files costs one sync per AHEAD objects. An id
    recorded but never written costs only a look at it after a crash.
    """

    def __init__(self, osd: Osd, ahead: Callable[[int], Iterable[int]] | None = None) -> None:
        self.osd = osd
        self.path = os.path.join(osd.root, DIRTY_FILE)
        self._ahead = ahead
        self._mu = threading.Lock()         # _dirty, _queued, _active
        self._file_mu = threading.Lock()    # the file: appends and its replacement
        self._dirty: set[int] = set()       # recorded in the file (durable)
        self._queued: set[int] = set()      # to record at the next append
        self._active: Counter[int] = Counter()
        self._fd = -1
        self.appends = 0

    def left_over(self) -> list[int]:
        """The objects the file lists at start (changed since the last commit of an unclean stop)."""
        raw = self.osd.read_meta(DIRTY_FILE) or b""
        return sorted(set(struct.unpack(f"<{len(raw) // 8}Q", raw[:len(raw) - len(raw) % 8])))

    def begin(self, oids: Iterable[int]) -> None:
        """These objects are about to change: return once they are recorded durably (at once when
        they are since the last commit). Each needs its `end` afterwards."""
        oids = list(oids)
        with self._mu:
            self._active.update(oids)
            new = [oid for oid in oids if oid not in self._dirty]
            if not new:
                return
            for oid in new:
                if oid not in self._queued and self._ahead is not None:
                    self._queued.update(o for o in self._ahead(oid) if o not in self._dirty)
            self._queued.update(new)
        try:
            with self._file_mu:
                with self._mu:
                    if all(oid in self._dirty for oid in new):
                        return              # recorded by another thread's append meanwhile
                    batch = sorted(self._queued)
                    self._queued = set()
                try:
                    if self._fd < 0:
                        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    self.osd.pwrite_all(self._fd, struct.pack(f"<{len(batch)}Q", *batch), 0)   # O_APPEND
                    os.fdatasync(self._fd)
                except OSError:
                    with self._mu:
                        self._queued.update(batch)
                    raise
                self.appends += 1
                with self._mu:
                    self._dirty.update(batch)
        except OSError:
            self.end(oids)
            raise

    def end(self, oids: Iterable[int]) -> None:
        with self._mu:
            self._active.subtract(oids)
            for oid in set(oids):
                if self._active[oid] <= 0:
                    del self._active[oid]

    def take(self) -> set[int]:
        """A commit starts: the objects it must make durable (those being changed stay listed)."""
        with self._mu:
            taken = self._dirty
            self._dirty = {oid for oid in taken if oid in self._active}
            return taken

    def restore(self, taken: set[int]) -> None:
        with self._mu:
            self._dirty |= taken

    def settle(self) -> None:
        """The objects taken are durable: the file lists only those changed since."""
        with self._file_mu:
            with self._mu:
                ids = sorted(self._dirty)
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self.osd.write_meta(DIRTY_FILE, struct.pack(f"<{len(ids)}Q", *ids))

    def close(self) -> None:
        with self._file_mu:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
