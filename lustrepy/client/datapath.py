"""The client's data path: one mount's file data over every OST, for the POSIX layer.

DataPath keeps one Osc per OST (connected lazily, reconnected after
ENOTCONN or an eviction, its address asked of `ost_addresses` again then),
one FileData per open inode (lustrepy.client.filedata), and the thread
pools that fan a file's I/O out over its objects in parallel, which it
hands to each FileData as Pools. Lock callbacks from an OST are routed here
to the file owning the object.

Threads: `pools.write` (`lov-write`) runs Write streams, `pools.read`
(`lov-read`) runs reads, lock requests and small object RPCs,
`pools.readahead` (`lov-readahead`) runs read-ahead; work in the write and
read pools never waits for other work in the same pool (read-ahead, callers
and lock callbacks do the waiting), so the pools cannot starve themselves.

The API is synchronous and thread-safe; trio code calls it through worker
threads. Never imports a server package, never caches anything not covered
by a lock (see filedata), never waits without a deadline.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from lustrepy.client.capas import CapaCache
from lustrepy.client.filebase import Pools
from lustrepy.client.filedata import FileData
from lustrepy.client.osc import Osc
from lustrepy.common.capa import Capa
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.records import Lvb
from lustrepy.rpc.v1 import common_pb2 as cpb

log = logging.getLogger(__name__)


class MirrorMds(Protocol):
    """What the data path asks of the MDS for mirrored files."""

    def mark_stale(self, fid: Fid, mirror_id: int) -> None: ...

    def capas(self, fid: Fid, write: bool) -> list[Capa]: ...

    def layout_of(self, fid: Fid) -> Layout | None: ...


__all__ = ["DataPath", "FileData"]

MiB = 1024 * 1024
ADDRESS_REFRESH_MIN = 0.5       # seconds between two calls of ost_addresses() for a failed connect
_COUNTERS = ("opens", "cache_hits", "cache_misses", "readahead_bytes", "stored_bytes", "flushes", "writeback_errors",
             "revocations", "invalidations", "glimpses", "lock_enqueues", "reconnect_drops")


class DataPath:
    """File data of one mount over every OST."""

    def __init__(self, fsname: str, client_id: str, ost_addresses: Callable[[], dict[int, str]], *,
                 on_invalidate: Callable[[Fid], None], rpc_timeout: float = 30.0,
                 mds: MirrorMds | None = None,
                 on_store: Callable[[Fid, int, bytes], None] | None = None,
                 max_dirty_per_file: int = 32 * MiB, io_threads: int = 16,
                 max_unstable: int = 256 * MiB) -> None:
        if rpc_timeout <= 0 or max_dirty_per_file <= 0 or io_threads < 1:
            raise ValueError("rpc_timeout, max_dirty_per_file and io_threads must be positive")
        self.fsname = fsname
        self.client_id = client_id or f"client-{uuidlib.uuid4()}"
        self.rpc_timeout = rpc_timeout
        self.max_dirty_per_file = max_dirty_per_file
        self.max_unstable = max_unstable        # bytes per OST written and not yet committed, kept to replay
        self._ost_addresses = ost_addresses
        self._on_invalidate = on_invalidate
        self.mds = mds                  # marks mirrors stale and reads layouts anew, for mirrored files
        self.on_store = on_store        # hands fetched bytes to the kernel's page cache (never blocks)
        self._mu = threading.Lock()
        self._addr_mu = threading.Lock()
        self._osc_mu = threading.Lock()         # taken inside _mu (FileData creation), never around it
        self._addresses: dict[int, str] = {}
        self._addresses_at = 0.0
        self._oscs: dict[int, Osc] = {}
        self._files: dict[Fid, FileData] = {}
        self._by_object: dict[tuple[int, int], tuple[FileData, int]] = {}
        self.capas = CapaCache(lambda fid, write: self.mds.capas(fid, write) if self.mds is not None else [])
        self._closed = False
        self._stats = dict.fromkeys(_COUNTERS, 0)
        self._stats_mu = threading.Lock()
        self.pools = Pools(write=ThreadPoolExecutor(io_threads, thread_name_prefix="lov-write"),
                           read=ThreadPoolExecutor(io_threads, thread_name_prefix="lov-read"),
                           readahead=ThreadPoolExecutor(max(2, io_threads // 4), thread_name_prefix="lov-readahead"))

    # -- files ---------------------------------------------------------------------------

    def open(self, fid: Fid, layout: Layout) -> FileData:
        """The FileData of the inode (one per inode, counted per open; each open ends with release())."""
        with self._mu:
            if self._closed:
                raise LpError(errno.ESHUTDOWN, "data path closed")
            fd = self._files.get(fid)
            if fd is None:
                fd = FileData(self, fid, layout, self.max_dirty_per_file, self.pools, timeout=self.rpc_timeout)
                self._files[fid] = fd
                self._index(fd)
            fd.opens += 1
            self._stats["opens"] += 1
        if layout.has_objects and not fd.adopt(layout):
            self.relayout(fd, layout)
        return fd

    def relayout(self, fd: FileData, layout: Layout) -> None:
        """The inode got a (new) layout: the old objects' state is written back and forgotten."""
        if fd.layout.has_objects:
            log.info("%s: layout changed; writing back and dropping the old objects' state", fd.fid)
            fd.flush()
        with self._mu:
            self._unindex(fd)
            fd.set_layout(layout)
            self._index(fd)

    def _index(self, fd: FileData) -> None:
        self.capas.remember(fd.fid, fd.layout)
        for i, key in enumerate(fd.objects):
            self._by_object[key] = (fd, i)

    def _unindex(self, fd: FileData) -> None:
        for key in fd.objects:
            if self._by_object.get(key, (None, 0))[0] is fd:
                del self._by_object[key]

    def closed_one(self, fd: FileData) -> None:
        with self._mu:
            fd.opens = max(0, fd.opens - 1)
            last = fd.opens == 0
        if last:
            fd.last_closed()
            self._maybe_forget(fd)

    def _maybe_forget(self, fd: FileData) -> None:
        with self._mu:
            if fd.opens == 0 and self._files.get(fd.fid) is fd and fd.idle():
                del self._files[fd.fid]
                self._unindex(fd)

    def mirror_failed(self, fid: Fid, mirror_id: int) -> None:
        if self.mds is None:
            raise LpError(errno.EIO, "no MDS to mark a mirror stale at")
        self.mds.mark_stale(fid, mirror_id)

    def layout_of(self, fid: Fid) -> Layout | None:
        return self.mds.layout_of(fid) if self.mds is not None else None

    def layout_changed(self, fid: Fid) -> None:
        """The file's LAYOUT lock is gone: an open file reads its layout again before its next I/O (a
        mirror may be stale now, or added), and the kernel drops its pages (read from a mirror that may
        be stale now)."""
        with self._mu:
            fd = self._files.get(fid)
        if fd is not None and fd.layout.has_objects:
            fd.layout_changed()
            self.invalidate(fd)

    def invalidate(self, fd: FileData) -> None:
        """A lock of the file is gone: the mount drops the kernel's pages and attributes of the inode."""
        self.count("invalidations")
        try:
            self._on_invalidate(fd.fid)
        except Exception:
            log.exception("%s: invalidation hook failed", fd.fid)
        self._maybe_forget(fd)

    # -- OSTs ------------------------------------------------------------------------------

    def osc(self, index: int) -> Osc:
        with self._osc_mu:
            osc = self._oscs.get(index)
            if osc is None:
                if self._closed:
                    raise LpError(errno.ESHUTDOWN, "data path closed")
                osc = self._oscs[index] = Osc(
                    index, self.client_id, self.fsname, lambda refresh: self._address_of(index, refresh),
                    rpc_timeout=self.rpc_timeout,
                    on_blocking=lambda desc: self._on_blocking(desc),
                    on_glimpse=lambda desc: self._on_glimpse(desc),
                    on_lost=lambda: self._on_lost(index), max_unstable=self.max_unstable,
                    capas=functools.partial(self.capas.for_request, index),
                    drop_capas=functools.partial(self.capas.drop_ost, index))
            return osc

    def _address_of(self, index: int, refresh: bool) -> str | None:
        with self._addr_mu:
            stale = refresh and time.monotonic() - self._addresses_at >= ADDRESS_REFRESH_MIN
            if stale or index not in self._addresses:
                try:
                    self._addresses = dict(self._ost_addresses())
                    self._addresses_at = time.monotonic()
                except LpError as e:
                    log.debug("OST addresses unavailable: %s", e)
                except Exception:
                    log.exception("OST addresses unavailable")
            return self._addresses.get(index)

    def _owner(self, desc: cpb.LockDesc) -> tuple[FileData, int] | None:
        with self._mu:
            return self._by_object.get((desc.res.n0, desc.res.n1))

    def _on_blocking(self, desc: cpb.LockDesc) -> None:
        owner = self._owner(desc)
        if owner is not None:
            owner[0].on_blocking(owner[1], desc.cookie)

    def _on_glimpse(self, desc: cpb.LockDesc) -> Lvb | None:
        owner = self._owner(desc)
        return owner[0].glimpse_answer(owner[1]) if owner is not None else None

    def _on_lost(self, index: int) -> None:
        with self._mu:
            files = list(self._files.values())
        for fd in files:
            if fd.locks_lost(index):
                self.count("reconnect_drops")
                self.invalidate(fd)

    # -- life cycle -----------------------------------------------------------------------------

    def count(self, name: str, n: int = 1) -> None:
        with self._stats_mu:
            self._stats[name] = self._stats.get(name, 0) + n

    def close(self) -> None:
        """Write back what is dirty (failures are logged), leave every OSS, stop the threads."""
        with self._mu:
            if self._closed:
                return
            files = list(self._files.values())
        for fd in files:
            try:
                fd.flush()
            except LpError as e:
                log.warning("%s: data not written back at close: %s", fd.fid, e)
        with self._mu, self._osc_mu:
            self._closed = True
            oscs = list(self._oscs.values())
        self.pools.readahead.shutdown(wait=True, cancel_futures=True)
        for osc in oscs:
            osc.close()
        self.pools.write.shutdown(wait=False, cancel_futures=True)
        self.pools.read.shutdown(wait=False, cancel_futures=True)

    def statistics(self) -> dict[str, object]:
        with self._stats_mu:
            out: dict[str, object] = dict(self._stats)
        with self._mu, self._osc_mu:
            files = list(self._files.values())
            oscs = dict(self._oscs)
            out["files"] = len(files)
            out["open_files"] = sum(1 for f in files if f.opens)
        per_file = [f.statistics() for f in files]
        for key in ("dirty_bytes", "inflight_bytes", "cached_bytes", "locks"):
            out[key] = sum(s[key] for s in per_file)
        osts = {i: o.statistics() for i, o in sorted(oscs.items())}
        out["osts"] = osts
        for key in ("write_rpcs", "write_bytes", "read_rpcs", "read_bytes", "connects"):
            out[key] = sum(int(s[key]) for s in osts.values())
        return out
