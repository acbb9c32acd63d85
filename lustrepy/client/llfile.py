"""Files: open, create, read, write, flush, fsync, close (Lustre's llite file).

A regular file's bytes go through the data path (lov/osc, `LliteBase.data`),
or stay in this client while it was made here under a write-back-cache grant
and has no objects yet (wbcdata). Opens are MDS opens, except of files made
here under a live grant that nobody else can see; a close tells the MDS the
size a writer knows (closer.py). Answers are `replies.Opened` and `Entry`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from typing import Any

from lustrepy.client.llbase import IT_LAYOUT, IT_OPEN, LOOKUP_BITS, Handle
from lustrepy.common.fid import Fid
from lustrepy.client.llnamei import NameOps
from lustrepy.client.inodes import Inode
from lustrepy.client.mdc import SIZE_LOST
from lustrepy.client.replies import Caller, Entry, Opened
from lustrepy.common import perm
from lustrepy.common.errors import LpError
from lustrepy.common.names import check_name
from lustrepy.common.layout import Layout
from lustrepy.common.protocol import SA
from lustrepy.rpc.convert import layout_from_pb

log = logging.getLogger(__name__)


class FileOps(NameOps):
    # ---- data-path events (called from lock-client threads) ----------------------------------------

    def on_data_store(self, fid: Fid, offset: int, data: bytes) -> None:
        """Fetched bytes the kernel may keep (the data path holds the PR lock that covers them)."""
        node = self.table.by_fid(fid)
        if node is not None and node.lookups > 0:
            self.notify.store(node.ino, offset, data)

    def on_data_invalidate(self, fid: Fid) -> None:
        """The data path lost a lock on one of the file's objects: the kernel drops its pages."""
        node = self.table.by_fid(fid)
        if node is not None:
            with self.table.mu:
                node.size_valid = False
            self.notify.inode(node.ino, attr_only=False)

    async def create(self, parent_ino: int, name: bytes, mode: int, flags: int,
                     caller: Caller) -> tuple[Opened, Entry]:
        check_name(name)
        parent = self._node(parent_ino)
        made = await self._ns(parent).create(parent, name, mode, flags, caller.cred)
        node = made.node
        fh, h = self._new_handle(node, made.mds_handle, flags, caller)
        if made.local:
            h.lazy = True                   # no objects yet: its data opens at its first write
        elif made.fresh:
            with self.table.mu:
                node.size_local = True      # empty, and no one else has opened it yet
            h.data = self._open_data(node, made.layout)     # new: its data state is new, nothing to wait for
        else:                               # it existed (made elsewhere meanwhile): opened as it is
            await self._open_existing_data(fh, h, made.layout)
        return Opened(fh), await self._entry_of(node)

    async def open(self, ino: int, flags: int, caller: Caller) -> Opened:
        try:
            return await self._stale_answered(caller, self._open(ino, flags, caller))
        finally:
            await self._let_go(ino, caller)     # open now (or failed): the hold made for it has done its job

    async def _open(self, ino: int, flags: int, caller: Caller) -> Opened:
        node = self._live(self._node(ino))
        here = self._open_here(node, flags, caller)
        if here is not None:
            # Made here, and never written or only read now: no MDS open yet (a server-side
            # unlink while it is open tells the MDS first, _open_at_mds).
            fh, h = here
            if h.lazy and node.mds_opens:
                try:
                    await self._at_mds(node, self._mds_open, h, in_thread=True)
                except LpError:
                    await self.release(fh)
                    raise
            return Opened(fh)
        await self._sync_records()
        rep = await self._at_mds(node, self.mdc.intent, IT_OPEN, caller.cred, fid=node.fid,
                                 open_flags=flags, ibits=LOOKUP_BITS)
        node = self._learn(rep)
        fh, h = self._new_handle(node, rep.open_handle, flags, caller)
        keep = await self._open_existing_data(fh, h, layout_from_pb(rep.layout) if rep.has_layout else None)
        return Opened(fh, keep)

    async def _open_existing_data(self, fh: int, h: Handle, layout: Layout | None) -> bool:
        """The data state of an existing inode the MDS opened for `h`; True when the kernel may
        keep the pages it has. With O_TRUNC the MDS has set the size to 0 in the open; the
        objects are cut here under PW extent locks, which calls back every other client's
        locks (their pages and sizes go). An open whose objects cannot be cut fails."""
        node = h.node
        if not stat.S_ISREG(node.attr.mode if node.attr else 0):
            return False
        h.data = await self.io.run(self._open_data, node, layout)
        if not h.flags & os.O_TRUNC:
            return h.data.cached_lock()
        try:
            await self.io.run(h.data.truncate, 0)
        except LpError:
            await self.release(fh)
            raise
        return False

    def _open_here(self, node: Inode, flags: int, caller: Caller) -> tuple[int, Handle] | None:
        """A handle opened without an MDS open (see `_opens_here`), or None. Made under
        `Wbc.op_lock`, which a local unlink or rename holds from its check that the file is
        not open to the name's removal: an open cannot slip in between (it would keep a
        file whose records destroy it at the MDS, its kept bytes gone)."""
        if self.wbc is None or not self._made_here(node):
            return None
        with self.wbc.op_lock:
            self._live(node)                # unnamed here meanwhile: ESTALE, the kernel looks again
            if not (node.attr is not None and node.attr_cached() and self._made_here(node)
                    and self._opens_here(node, flags, caller)):
                return None
            fh, h = self._new_handle(node, 0, flags, caller)
            h.lazy = stat.S_ISREG(node.attr.mode)
        return fh, h

    def _opens_here(self, node: Inode, flags: int, caller: Caller) -> bool:
        """May a file made under a live grant open without an MDS open? Yes while it has no
        objects or is only read; an O_TRUNC open only when its bytes are kept here."""
        if flags & os.O_TRUNC:
            return node.layout is None and self._truncated_here(node, caller)
        return node.layout is None or flags & os.O_ACCMODE == os.O_RDONLY

    def _truncated_here(self, node: Inode, caller: Caller) -> bool:
        """open(O_TRUNC) of a file made under a live grant, its bytes kept here: cut here, its
        mtime and ctime (and the setuid/setgid bits Linux clears) set by an update record.
        False: the MDS must do it."""
        a = node.attr
        if self.wbcdata is None or self.local is None or a is None:
            return False
        if not stat.S_ISREG(a.mode):
            return True                     # O_TRUNC means nothing to other kinds of file
        cred = caller.cred
        op: dict[str, Any] = {"valid": int(SA.MTIME | SA.MTIME_NOW), "mtime_ns": time.time_ns()}
        mode = perm.check_setattr(cred, a, perm.Change(SA.SIZE | op["valid"], writer=True))
        if mode != a.mode:
            op["valid"] |= int(SA.MODE)
            op["mode"] = mode & 0o7777
        if not self.wbcdata.truncate(node, 0):
            return False
        return self.local.setattr(node, op, cred)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self._h(fh)
        if h.data is None:
            if not h.lazy:
                raise LpError(errno.EISDIR, "not a regular file")
            kept = self.wbcdata.read(h.node, off, size) if self.wbcdata is not None else None
            if kept is not None:
                return kept
            layout = await self.io.run(self._layout_of, h.node)
            if layout is None or not layout.has_objects:
                return _zeros(h.node, off, size)
            h.data = await self.io.run(self._open_data, h.node, layout)     # its kept bytes went to its objects
        if not h.data.layout.has_objects:
            return _zeros(h.node, off, size)
        hit = h.data.read_nowait(off, size)
        if hit is not None:
            return hit
        return await self.io.run(h.data.read, off, size)

    def _keeps_data(self, h: Handle) -> bool:
        """This handle's file keeps its bytes in the client (made under a live grant, no objects yet)."""
        node = h.node
        a = node.attr
        return (self.wbcdata is not None and h.data is None and h.lazy and self._made_here(node)
                and (node.wbc_data is not None or (node.layout is None and a is not None and a.size == 0)))

    async def _ensure_layout(self, h: Handle) -> None:
        """A file created without objects gets its layout (the default) before its first write."""
        node = h.node
        fresh = node.layout is None or not node.layout.has_objects
        await self._sync_records()
        parent = self._parent_fid(node)
        rep = await self._at_mds(node, self.mdc.intent, IT_LAYOUT, fid=node.fid, ibits=LOOKUP_BITS,
                                 parent=parent)
        self._learn(rep)
        if not h.mds_handle:        # made under a WBC grant: the MDS learns of its writer now
            await self.meta.run(self._mds_open, h)
        old = h.data
        h.data = await self.io.run(self._open_data, node, layout_from_pb(rep.layout) if rep.has_layout else None)
        if h.lazy:                  # made under a grant: nobody else holds locks on its objects
            await self.io.run(h.data.lock_whole)
        size = node.attr.size if node.attr is not None else 0
        if fresh and size:          # truncated up at the MDS before it had objects: they take that size
            await self.io.run(h.data.truncate, size)
        h.lazy = False
        if old is not None:
            await self.io.run(old.release)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self._h(fh)
        if h.data is None and not h.lazy:
            raise LpError(errno.EBADF, "not open for data")
        if not h.sgid_checked:
            await self._drop_sgid(h)
        if self._keeps_data(h):
            node = h.node
            at = len(node.wbc_data or b"") if h.flags & os.O_APPEND else off
            assert self.wbcdata is not None and self.wbc is not None
            if self.wbcdata.write(node, at, buf):
                self.wbc.note_data()
                return len(buf)
        if h.lazy or h.data is None or h.node.layout is None or not h.node.layout.has_objects:
            await self._ensure_layout(h)        # also: the MDS learns of this writer
        h.wrote = True
        with self.table.mu:
            h.node.size_valid = h.node.size_local = False
        if h.flags & os.O_APPEND:
            await self.io.run(h.data.append, buf)
        elif not h.data.write_nowait(off, buf):
            await self.io.run(h.data.write, off, buf)
        return len(buf)

    async def flush(self, fh: int) -> None:
        h = self._h(fh)
        if h.data is not None and not h.data.clean():
            await self.io.run(h.data.flush)
        self._refused(h.node.fid)

    async def fsync(self, fh: int, datasync: bool) -> None:
        """The bytes on the OSTs, committed; and (a writer's) the file's size at the MDS, committed
        before this returns: a size the application was told is durable is never lost with a
        close that does not come (fdatasync too, when this handle wrote: the size finds the data)."""
        h = self._h(fh)
        if h.data is not None:
            await self.io.run(h.data.fsync)
        if self.wbc is not None and (not datasync or h.data is None):
            await self._commit_records()        # records, and bytes kept here, reach the MDS and OSTs
        self._refused(h.node.fid)
        if not datasync:
            await self.meta.run(self.closer.drain, self.mdc.timeout)
        size = -1
        if h.data is not None and h.writer and h.mds_handle and (h.wrote or not datasync):
            size = await self.io.run(h.data.size)
        if size >= 0 and size != h.reported:
            await self.meta.run(self.mdc.report_size, h.mds_handle, size)    # the MDS commits it
            h.reported = size
        elif not datasync:
            await self.meta.run(self.mdc.sync)

    def _size_now(self, h: Handle) -> int:
        """The size this writer knows (counts data not yet flushed), or SIZE_LOST when it
        cannot learn it (an OST down): the MDS then takes the size from the objects."""
        try:
            return int(h.data.size())
        except LpError as e:
            log.warning("%s: the size of a file written here is unknown at its close: %s", h.node.fid, e.message)
            return SIZE_LOST

    async def release(self, fh: int) -> None:
        h = self._drop_handle(fh)
        if h is None:
            return
        node = h.node
        size = None
        try:
            if h.data is not None:
                if h.wrote:
                    size = await self.io.run(self._size_now, h)
                if not h.data.release_clean():
                    try:
                        await self.io.run(h.data.release)   # flushes what is still dirty
                    except LpError as e:    # close(2) had it from flush; what landed is the objects' to say
                        log.warning("%s: release: %s", node.fid, e.message)
                        if h.wrote:
                            size = SIZE_LOST
        finally:                                            # the MDS hears of the close whatever failed
            with self.table.mu:
                node.opens -= 1
                if node.opens == 0:
                    node.data = None
            with self._open_mu:
                h.closed = True
                mds_handle = h.mds_handle
            if mds_handle:
                self.closer.submit(mds_handle, size)

    def on_reconnected(self) -> None:
        """Connected again after an eviction or an MDS restart: the MDS may have closed our
        opens (and then distrusts the sizes of files written here). A thread opens each open
        file again and reports the size this client knows (not inline: a request waits on it)."""
        handles = [h for h in self._handles_now() if h.mds_handle]
        if handles:
            threading.Thread(target=self._reopen_all, args=(handles,), name="mds-reopen", daemon=True).start()

    def _reopen_all(self, handles: list[Handle]) -> None:
        for h in handles:
            try:
                self._reopen(h)
            except LpError as e:
                log.warning("%s: opening a file again after reconnecting failed: %s", h.node.fid, e.message)

    def _reopen(self, h: Handle) -> None:
        """One handle's MDS open made again (as _mds_open makes a first one); the old open is
        closed, with the size this client knows (a no-op if the MDS forgot it), and the size
        reported on the new one (the MDS trusts its size again)."""
        with self._open_mu:
            if h.closed or not h.mds_handle:
                return
            old = h.mds_handle
        flags = h.flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)
        rep = self.mdc.intent(IT_OPEN, fid=h.node.fid, open_flags=flags, ibits=LOOKUP_BITS)
        if rep.lock.cookie:
            self.mdc.locks.drop(rep.lock.cookie)
        size = self._size_now(h) if h.wrote and h.data is not None else None
        with self._open_mu:
            released = h.closed
            if not released:
                h.mds_handle = rep.open_handle
        self.closer.submit(rep.open_handle if released else old, size)
        if not released and size is not None and size != SIZE_LOST:
            self.mdc.report_size(rep.open_handle, size)

    async def _drop_sgid(self, h: Handle) -> None:
        """The first write through a handle: Linux clears a setgid bit without group-execute
        too when the writer is neither in the file's group nor root (setattr_should_drop_sgid),
        which the kernel's FUSE leaves to the file system (it asks for the other cases)."""
        h.sgid_checked = True
        a, cred = h.node.attr, h.cred
        if (a is None or cred is None or cred.uid == 0 or not stat.S_ISREG(a.mode)
                or a.mode & (stat.S_ISGID | stat.S_IXGRP) != stat.S_ISGID or cred.in_group(a.gid)):
            return
        op: dict[str, Any] = {"valid": int(SA.MODE), "mode": a.mode & 0o7777 & ~stat.S_ISGID}
        try:
            perm.check_setattr(cred, a, perm.Change(SA.MODE, op["mode"], writer=h.writer))
            await self._ns_of(h.node).setattr(h.node, op, cred)
            self.notify.inode(h.node.ino, attr_only=True)      # the kernel still shows the bit
        except LpError as e:
            log.info("%s: setgid bit not cleared on write: %s", h.node.fid, e.message)

    def _truncate(self, node: Inode, size: int) -> None:
        fd = node.data
        layout = fd.layout if fd is not None else self._layout_of(node)
        if layout is None or not layout.has_objects:
            return                  # no objects yet: they take the MDS's size when made (_ensure_layout)
        if fd is None:
            fd = self.data.open(node.fid, layout)
        try:
            fd.truncate(size)
        finally:
            if fd is not node.data:
                fd.release()


def _zeros(node: Inode, off: int, size: int) -> bytes:
    """A read of a file without objects: nothing was written to it, but a truncate at the MDS
    may have given it a size (its objects take that size when they are made), and up to it
    the file reads as zeros."""
    a = node.attr
    end = min(off + size, a.size if a is not None else 0)
    return bytes(max(0, end - off))
