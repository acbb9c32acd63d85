"""Checksums at rest on one OST: what a write, a punch or a destroy does to them, and the check of
every block a read returns (files in csum.py).

Rules kept here:
- A write stores the crc32c of every block it touches, before its bytes (a full disk fails it
  with the object untouched). A block it covers whole takes the crc of
  the new bytes; a block it covers in part is read first, checked against its recorded crc, and
  takes the crc of the block as it is after the write (read-modify-checksum). A block that does
  not match before such a write is recorded bad and stays bad: only a write covering it whole
  clears it (the repair entry point). Bad bytes are never blessed.
- A change of size rewrites the crc of the old or new last block (checked first, as above);
  blocks past the end are forgotten with their bad marks. Holes read as zeros and match.
- A read checks every block it returns. A mismatch found without the object's lock is read again
  under it (a write in progress is not a mismatch); one that holds is counted, logged once,
  recorded bad and answered EBADMSG (`Corrupt`). Bytes that do not match are never returned.
- The object's changes are recorded in the dirty log before they start (csum.DirtyLog), and the
  objects it lists at start, after an unclean stop, get their checksums recomputed from disk.

Callers hold the object's lock (`lock_of(oid)`) for `plan_*`, `apply`, `redo` and `rebuild`;
`check_read` and `scan` take it themselves only to recheck. Raises LpError (EBADMSG) for bad
data and plain OSError for failed file operations.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import crc32c

from lustrepy.common.errors import LpError
from lustrepy.oss.csum import BLOCK, BadBlocks, DirtyLog, Sidecars, nblocks
from lustrepy.oss.osd import Osd

log = logging.getLogger(__name__)

Buf = bytes | bytearray | memoryview
OFF_MARK = "csum_off"           # DIR/csum_off: the OST ran without checksums; rebuild them all at the next start
FORMAT_MARK = "csum_format"     # DIR/csum_format: every object has checksums of this block size
_SCAN_RUN = 16                  # blocks read at once by scan and rebuild


class Corrupt(LpError):
    """Bytes on disk that do not match their checksum: EBADMSG, so a client can tell it from other I/O errors."""

    def __init__(self, ost: str, oid: int, blocks: Iterable[int]) -> None:
        bl = sorted(blocks)
        super().__init__(errno.EBADMSG, f"{ost}: object {oid} block{'s' if len(bl) > 1 else ''} "
                                        f"{', '.join(map(str, bl[:8]))} do{'' if len(bl) > 1 else 'es'} not "
                                        "match the checksum recorded at rest")
        self.oid = oid
        self.blocks = bl


@dataclass(slots=True)
class Plan:
    """The checksums a change will leave: crc by block, the blocks it rewrites whole, the new block count."""

    crcs: dict[int, int] = field(default_factory=dict)
    whole: set[int] = field(default_factory=set)
    blocks: int = 0
    recorded: bool = False      # the checksums are written already (a write records them before its bytes)


@lru_cache(maxsize=64)
def _zero_crc(n: int) -> int:
    return int(crc32c.crc32c(bytes(n)))


def matches(crc: int, recorded: int, length: int) -> bool:
    """Does a block of `length` bytes with crc `crc` match the recorded entry (0: a hole, or a crc of 0)?"""
    return crc == recorded or (recorded == 0 and crc == _zero_crc(length))


class Integrity:
    """The checksums of one OST's objects. Thread-safe under the callers' object locks."""

    def __init__(self, osd: Osd, name: str, lock_of: Callable[[int], threading.Lock], enabled: bool = True,
                 ahead: Callable[[int], Iterable[int]] | None = None) -> None:
        self.osd = osd
        self.name = name
        self.lock_of = lock_of
        self.enabled = enabled
        self.sidecars = Sidecars(osd)
        self.bad = BadBlocks(osd)
        self.dirty = DirtyLog(osd, ahead)
        self.read_failures = 0          # reads answered EBADMSG (no lock: a lost increment costs nothing)

    # ---- start-up -----------------------------------------------------------------------------

    def recover(self, objects: Callable[[], Iterable[int]]) -> int:
        """At start: recompute the checksums of the objects changed since the last commit (all of them
        after a start without checksums); returns how many were recomputed."""
        mark = os.path.join(self.osd.root, OFF_MARK)
        if not self.enabled:
            if not os.path.exists(mark):
                self.osd.write_meta(OFF_MARK, b"checksums off: rebuilt at the next start with them\n")
            return 0
        fmt = f"crc32c {BLOCK}\n".encode()
        everything = os.path.exists(mark) or self.osd.read_meta(FORMAT_MARK) != fmt
        todo = list(objects()) if everything else self.dirty.left_over()
        done = 0
        for oid in todo:
            with self.lock_of(oid):
                try:
                    self.rebuild(oid)
                    done += 1
                except FileNotFoundError:
                    self.sidecars.remove(oid)
        for oid in todo:
            self.sidecars.fsync(oid)
        if todo:
            self.osd.sync_dirs_of(todo)
        self.dirty.settle()
        if everything:
            self.osd.write_meta(FORMAT_MARK, fmt)
            if os.path.exists(mark):
                os.unlink(mark)
        if everything and done:
            log.warning("%s: computed the checksums at rest of all %d objects", self.name, done)
        elif done:
            log.warning("%s: recomputed the checksums of %d objects changed since the last commit", self.name, done)
        return done

    def rebuild(self, oid: int) -> None:
        """Recompute every block's checksum from the bytes on disk (bad marks stay)."""
        fd = self.osd.open_ro(oid)
        try:
            size = self.osd.fstat(fd).size
            pos = 0
            while pos < size:
                data = self.osd.pread(fd, min(_SCAN_RUN * BLOCK, size - pos), pos)
                if not data:
                    break
                self.sidecars.put(oid, pos // BLOCK, _crcs(data))
                pos += len(data)
            self.sidecars.cut(oid, nblocks(pos))
        finally:
            os.close(fd)

    # ---- changes (under the object's lock) ----------------------------------------------------

    def plan_write(self, fd: int, oid: int, old_size: int, offset: int, data: Buf) -> Plan | None:
        """Before writing `data` at `offset`: compute and record the checksums the blocks will have
        afterwards. Recorded first, so that a full disk fails the write before its bytes change (a
        write that fails after this has its checksums recomputed, `redo`); a reader that sees the
        new checksums before the bytes looks again under the object's lock, after the write."""
        if not self.enabled or not data:
            return None
        end = offset + len(data)
        new_size = max(old_size, end)
        touched = set(range(offset // BLOCK, (end - 1) // BLOCK + 1))
        if old_size % BLOCK and new_size > old_size:
            touched.add(old_size // BLOCK)          # the old last block grows
        plan = Plan(blocks=nblocks(new_size))
        view = memoryview(data)
        for b in sorted(touched):
            start = b * BLOCK
            new_len = min(BLOCK, new_size - start)
            ws, we = max(offset, start), min(end, start + new_len)
            if ws == start and we == start + new_len:
                plan.crcs[b] = int(crc32c.crc32c(view[ws - offset:we - offset]))
                plan.whole.add(b)
                continue
            buf = bytearray(new_len)
            old = self._old_block(fd, oid, b, old_size)
            buf[:len(old)] = old[:new_len]
            if ws < we:
                buf[ws - start:we - start] = view[ws - offset:we - offset]
            plan.crcs[b] = int(crc32c.crc32c(buf))
        self._record(oid, plan, old_size)
        plan.recorded = True
        return plan

    def plan_punch(self, fd: int, oid: int, old_size: int, new_size: int) -> Plan | None:
        """Before cutting or extending the object to `new_size`: the last block's new checksum."""
        if not self.enabled or new_size == old_size:
            return None
        plan = Plan(blocks=nblocks(new_size))
        edge = min(old_size, new_size)
        if edge % BLOCK:
            b = edge // BLOCK
            new_len = min(BLOCK, new_size - b * BLOCK)
            buf = bytearray(new_len)
            old = self._old_block(fd, oid, b, old_size)
            buf[:min(len(old), new_len)] = old[:new_len]
            plan.crcs[b] = int(crc32c.crc32c(buf))
        return plan

    def apply(self, oid: int, plan: Plan | None, old_size: int) -> None:
        """The change is on disk: record its checksums (unless recorded before it), forget blocks past
        the end, clear the bad marks of blocks rewritten whole."""
        if plan is None:
            return
        if not plan.recorded:
            self._record(oid, plan, old_size)
        if plan.whole:
            self.bad.clear(oid, plan.whole)

    def _record(self, oid: int, plan: Plan, old_size: int) -> None:
        runs: list[tuple[int, list[int]]] = []
        for b in sorted(plan.crcs):
            if runs and runs[-1][0] + len(runs[-1][1]) == b:
                runs[-1][1].append(plan.crcs[b])
            else:
                runs.append((b, [plan.crcs[b]]))
        if plan.blocks < nblocks(old_size):
            self.sidecars.cut(oid, plan.blocks)
            self.bad.clear_from(oid, plan.blocks)
        elif plan.blocks > nblocks(old_size):       # no entry left past the old end: the gap is holes
            self.sidecars.cut(oid, nblocks(old_size))
        for first, crcs in runs:
            self.sidecars.put(oid, first, crcs)

    def redo(self, fd: int, oid: int) -> None:
        """A change failed part way: take the checksums from what is on disk now."""
        if not self.enabled:
            return
        try:
            self.rebuild(oid)
        except OSError as e:
            log.error("%s: cannot recompute the checksums of object %d: %s", self.name, oid, e)

    def destroyed(self, oid: int) -> None:
        self.sidecars.remove(oid)
        self.bad.clear(oid)

    def _old_block(self, fd: int, oid: int, b: int, size: int) -> bytes:
        """Block b's bytes before a change, checked: a mismatch is recorded bad (and stays bad)."""
        length = max(0, min(BLOCK, size - b * BLOCK))
        if length == 0:
            return b""
        old = self.osd.pread(fd, length, b * BLOCK)
        if not matches(int(crc32c.crc32c(old)), self.sidecars.get(oid, b, 1)[0], len(old)):
            self._found(oid, b, "before a partial rewrite")
        return old

    # ---- reads --------------------------------------------------------------------------------

    def check_read(self, fd: int, oid: int, offset: int, data: Buf, size: int) -> bytes | None:
        """Check the blocks `data` (read at `offset`, object size `size`) covers. None: they match.
        Bytes: they did not at first, but do as read again under the object's lock (return these
        instead). Raises Corrupt when they do not."""
        if not self.enabled or not data:
            return None
        first, last = offset // BLOCK, (offset + len(data) - 1) // BLOCK
        known = self.bad.of(oid)
        if known and any(first <= b <= last for b in known):
            self.read_failures += 1
            raise Corrupt(self.name, oid, [b for b in known if first <= b <= last])
        if not self._mismatches(fd, oid, offset, data, size):
            return None
        with self.lock_of(oid):                 # a write in between is no mismatch: look again, alone
            size = self.osd.fstat(fd).size
            again = self.osd.pread(fd, min(len(data), max(0, size - offset)), offset)
            bad = self._mismatches(fd, oid, offset, again, size)
            for b in bad:
                self._found(oid, b, "on read")
        if bad:
            self.read_failures += 1
            raise Corrupt(self.name, oid, bad)
        return again

    def _mismatches(self, fd: int, oid: int, offset: int, data: Buf, size: int) -> list[int]:
        if not data:
            return []
        end = offset + len(data)
        first, last = offset // BLOCK, (end - 1) // BLOCK
        recorded = self.sidecars.get(oid, first, last - first + 1)
        view = memoryview(data)
        out = []
        for b in range(first, last + 1):
            start = b * BLOCK
            blen = max(0, min(BLOCK, size - start))
            if start >= offset and start + blen <= end:
                block: Buf = view[start - offset:start - offset + blen]
            else:                               # an edge block: check it whole, and that data agrees with it
                block = self.osd.pread(fd, blen, start)
                lo, hi = max(offset, start), min(end, start + blen)
                if len(block) != blen or block[lo - start:hi - start] != view[lo - offset:hi - offset]:
                    out.append(b)
                    continue
            if not matches(int(crc32c.crc32c(block)), recorded[b - first], blen):
                out.append(b)
        return out

    # ---- scrub --------------------------------------------------------------------------------

    def scan(self, oid: int, pos: int, run_blocks: int = _SCAN_RUN) -> tuple[int, int, list[int]]:
        """Check one run of blocks of `oid` from byte `pos`: (bytes checked, the next position or -1
        at the end, the blocks newly found bad). FileNotFoundError when the object is gone."""
        fd = self.osd.open_ro(oid)
        try:
            size = self.osd.fstat(fd).size
            if pos >= size:
                return 0, -1, []
            data = self.osd.pread(fd, min(run_blocks * BLOCK, size - pos), pos)
            known = self.bad.of(oid)
            suspects = [b for b in self._mismatches(fd, oid, pos, data, size) if b not in known]
            found = self._confirm(fd, oid, suspects) if suspects else []
            nxt = pos + len(data)
            return len(data), (nxt if data and nxt < size else -1), found
        finally:
            os.close(fd)

    def _confirm(self, fd: int, oid: int, blocks: list[int]) -> list[int]:
        """Read the suspect blocks again under the object's lock; those still wrong are recorded bad."""
        found = []
        with self.lock_of(oid):
            size = self.osd.fstat(fd).size
            for b in blocks:
                if b * BLOCK >= size:
                    continue
                block = self.osd.pread(fd, min(BLOCK, size - b * BLOCK), b * BLOCK)
                if not matches(int(crc32c.crc32c(block)), self.sidecars.get(oid, b, 1)[0], len(block)):
                    if self._found(oid, b, "by scrub"):
                        found.append(b)
        return found

    def _found(self, oid: int, b: int, how: str) -> bool:
        new = self.bad.add(oid, b)
        if new:
            log.error("%s: object %d block %d (bytes %d..%d) does not match its checksum (found %s)",
                      self.name, oid, b, b * BLOCK, (b + 1) * BLOCK - 1, how)
        return new


def _crcs(data: Buf) -> list[int]:
    view = memoryview(data)
    return [int(crc32c.crc32c(view[i:i + BLOCK])) for i in range(0, len(view), BLOCK)]
