"""Small-file data under a WBC grant: kept by the client until the file's
create record reaches the MDS, then written to the file's new objects.

A regular file made under a grant has no objects yet. Its first bytes (up to
`per_file` of them, `total` for all such files) stay in the client, in the
inode (`wbc_data`), and reads, sizes and truncates are answered from there.
When records are flushed, the create records of these files ask the MDS for
objects (the batch reply brings the layouts); the data is then written to
the objects, and one setattr record per file gives the MDS the file's size
and blocks. Nobody else can reach such a file before the grant is given
back, and giving it back flushes records and data first: so these writes
need no extent locks.

A file past the bounds, or written through the ordinary data path, gets its
layout and MDS open the usual way (llite), after a flush of its data here.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Callable

from lustrepy.client.inodes import Inode, InodeTable
from lustrepy.client.lov import per_object_ranges, retry_reconnecting
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.protocol import SA
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

PER_FILE = 1 << 20
TOTAL = 64 << 20
BATCH_BYTES = 2 << 20          # bytes of small writes per RPC to one OST
ROOT = Cred(0, 0)               # size records are the client's own bookkeeping


class WbcData:
    def __init__(self, table: InodeTable, data, *, per_file: int = PER_FILE, total: int = TOTAL) -> None:
        self.table = table
        self.data = data                    # lustrepy.client.datapath.DataPath
        self.per_file = per_file
        self.total = total
        self.record: Callable[..., int] | None = None       # Wbc.record
        self.op_lock: threading.RLock = threading.RLock()   # Wbc.op_lock
        self.layout_of: Callable[[Inode], Layout | None] | None = None   # asks the MDS (IT_LAYOUT)
        self._mu = threading.Lock()
        self._dirty: dict[Fid, Inode] = {}
        self._bytes = 0
        self.stats = {"files_written": 0, "bytes_written": 0}

    # ---- the FUSE side (table.mu held by none) ------------------------------------------------

    def write(self, node: Inode, off: int, buf: bytes) -> bool:
        """Keep the bytes in the client; False when past the bounds (the caller goes the usual way)."""
        end = off + len(buf)
        with self.table.mu:
            cur = node.wbc_data
            have = len(cur) if cur is not None else 0
            grow = max(0, end - have)
            if end > self.per_file:
                return False
            with self._mu:
                if self._bytes + grow > self.total:
                    return False
                self._bytes += grow
                self._dirty[node.fid] = node
            if cur is None:
                cur = node.wbc_data = bytearray()
            if off > len(cur):
                cur.extend(bytes(off - len(cur)))
            cur[off:end] = buf
            node.wbc_version += 1
            now = time.time_ns()
            if node.attr is not None:
                size = len(cur)
                node.attr = replace(node.attr, size=size, blocks=_blocks(size), mtime_ns=now, ctime_ns=now)
        return True

    def read(self, node: Inode, off: int, size: int) -> bytes | None:
        with self.table.mu:
            cur = node.wbc_data
            return bytes(cur[off:off + size]) if cur is not None else None

    def truncate(self, node: Inode, size: int) -> bool:
        """A size change of a file whose data is here (or that has no objects yet); False otherwise."""
        with self.table.mu:
            cur = node.wbc_data
            a = node.attr
            if size > self.per_file or (cur is None and (node.layout is not None or a is None or a.size != 0)):
                return False            # past the bound, or its size is the MDS's (objects, or a size set there)
            if cur is None and size == 0:
                return True             # empty and staying so: nothing to keep
            with self._mu:
                if cur is None:                     # no objects and nothing kept: start keeping
                    if self._bytes + size > self.total:
                        return False
                    cur = node.wbc_data = bytearray()
                    self._dirty[node.fid] = node
                self._bytes += size - len(cur)
            if size < len(cur):
                del cur[size:]
            else:
                cur.extend(bytes(size - len(cur)))
            node.wbc_version += 1
            if node.attr is not None:
                node.attr = replace(node.attr, size=size, blocks=_blocks(size))
        return True

    def forget(self, node: Inode) -> None:
        """The file is gone (unlinked under the grant): its bytes are never written."""
        with self.table.mu:
            cur, node.wbc_data = node.wbc_data, None
        with self._mu:
            if self._dirty.pop(node.fid, None) is not None and cur is not None:
                self._bytes -= len(cur)

    # ---- the flusher side ---------------------------------------------------------------------

    def wants_layout(self, fid: Fid) -> bool:
        with self._mu:
            return fid in self._dirty

    def pending(self) -> bool:
        with self._mu:
            return bool(self._dirty)

    def write_back(self, layouts: dict[Fid, Layout], applied: Callable[[int], bool]) -> int:
        """Write the kept bytes of every file the MDS has (its create record applied) to its
        objects; returns how many files were written.

        Runs in the flusher (never in the FUSE thread). The pieces of all files go to each
        OST together, a few unary RPCs per OST, the OSTs in parallel."""
        with self._mu:
            todo = [n for n in self._dirty.values() if applied(n.wbc_create_seq)]
        if not todo:
            return 0
        files = [f for node in todo if (f := self._snapshot(node, layouts.get(node.fid))) is not None]
        for f in files:
            self.data.capas.remember(f.node.fid, f.layout)
        per_ost: dict[int, list[tuple[int, int, bytes]]] = {}
        for f in files:
            for m in f.layout.write_targets():            # every mirror of a mirrored file
                for stripe, pieces in per_object_ranges(m.layout, 0, len(f.data)).items():
                    obj = m.layout.objects[stripe]
                    per_ost.setdefault(obj.ost_index, []).extend(
                        (obj.object_id, p.object_offset, f.data[p.file_offset:p.file_offset + p.length])
                        for p in pieces)
        futures: list[tuple[int, Future]] = [
            (ost, self.data.pools.write.submit(retry_reconnecting, f"OST{ost:04x}", self.data.rpc_timeout,
                                               self.data.osc(ost).write_many, batch))
            for ost, pieces in per_ost.items() for batch in _batches(pieces, BATCH_BYTES)]
        failed: set[int] = set()
        first_error: LpError | None = None
        for ost, fut in futures:
            try:
                fut.result()
            except LpError as e:
                log.warning("writing new files' data to OST %d failed: %s", ost, e.message)
                failed.add(ost)
                first_error = first_error or e
        done = 0
        for f in files:
            objs = [m.layout.objects[i] for m in f.layout.write_targets() for i in per_object_ranges(m.layout, 0, len(f.data))]
            if any(o.ost_index in failed for o in objs):
                continue
            self._written(f)
            done += 1
        if first_error is not None:
            raise first_error
        return done

    def _snapshot(self, node: Inode, layout: Layout | None) -> _Kept | None:
        with self.table.mu:
            cur, version = node.wbc_data, node.wbc_version
            snap = bytes(cur) if cur is not None else None
            attr = node.attr
            layout = layout or node.layout
        if snap is None or attr is None:
            return None
        if layout is None or not layout.has_objects:
            layout = self.layout_of(node) if self.layout_of is not None else None
            if layout is None or not layout.has_objects:
                raise LpError(errno.EIO, f"{node.fid}: no objects to write its data to")
        return _Kept(node, snap, version, layout, attr.mtime_ns, attr.ctime_ns)

    def _written(self, f: _Kept) -> None:
        """The file's bytes are on its objects: the MDS learns its size, and the client lets them go."""
        node, snap = f.node, f.data
        assert self.record is not None
        # The times as this client shows them now, taken with the record appended under the lock
        # local changes take: a utimes made while the bytes were on their way is not undone, and
        # the MDS's ctime stays the one this client showed (writing back changes nothing visible).
        with self.op_lock:
            with self.table.mu:
                a = node.attr
                mtime, ctime = (a.mtime_ns, a.ctime_ns) if a is not None else (f.mtime_ns, f.ctime_ns)
                gone = (a is not None and a.nlink == 0) or node.wbc_data is None
            with self._mu:
                gone = gone or self._dirty.get(node.fid) is not node
            if gone:                    # unlinked here meanwhile: no size record after its unlink
                return
            self.record(ROOT, time.time_ns(), setattr=mpb.SetattrOp(
                fid=fid_to_pb(node.fid), valid=SA.SIZE | SA.SIZE_KNOWN | SA.MTIME | SA.CTIME, size=len(snap), mtime_ns=mtime,
                ctime_ns=ctime, blocks=_blocks(len(snap))))
        with self.table.mu:
            node.layout = f.layout
            forget = node.wbc_version == f.version
            if forget:
                node.wbc_data = None
        if forget:
            with self._mu:
                if self._dirty.get(node.fid) is node:
                    del self._dirty[node.fid]
                    self._bytes -= len(snap)
        self.stats["files_written"] += 1
        self.stats["bytes_written"] += len(snap)


@dataclass(frozen=True, slots=True)
class _Kept:
    """A file's kept bytes as taken for writing back."""

    node: Inode
    data: bytes
    version: int
    layout: Layout
    mtime_ns: int
    ctime_ns: int


def _blocks(size: int) -> int:
    """512-byte blocks shown for `size` bytes, as the client shows them for any file whose size
    it works out itself (llite's glimpse): what the OST's disk reports depends on when it
    allocates, so the figure shown before and after the bytes go out would differ."""
    return (size + 511) // 512


def _batches(pieces: list[tuple[int, int, bytes]], limit: int) -> list[list[tuple[int, int, bytes]]]:
    """Pieces cut into runs of at most `limit` bytes (one piece may pass it alone)."""
    out: list[list[tuple[int, int, bytes]]] = []
    cur: list[tuple[int, int, bytes]] = []
    size = 0
    for p in pieces:
        if cur and size + len(p[2]) > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(p)
        size += len(p[2])
    if cur:
        out.append(cur)
    return out
