"""Directories, the file system, and the kernel's references (Lustre's llite dir).

A directory is listed from the MDS (readdir with attributes), or from what
this client knows when a write-back-cache grant covers it and every entry is
known here. Entries go to the kernel through an `Emit` callable (fs.py hands
them to FUSE); statfs answers an `FsStat`.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import replace
from typing import Iterable

from lustrepy.client.inodes import Inode
from lustrepy.client.llbase import LliteBase, entry
from lustrepy.client.replies import Caller, Emit, Entry, FsStat
from lustrepy.common.errors import LpError
from lustrepy.rpc.convert import attr_from_pb

log = logging.getLogger(__name__)

DOTS = 2        # offsets 1 and 2 are "." and ".."; an entry's offset is its cookie plus DOTS


class DirOps(LliteBase):
    async def opendir(self, ino: int, caller: Caller) -> int:
        node = self._node(ino)
        if node.attr is not None and not node.is_dir:
            raise LpError(errno.ENOTDIR, "not a directory")
        listing = self._local_listing(node)
        if listing is not None:                 # under a WBC grant: listed from what we know
            fh = next(self._listing_fhs)
            self._listings[fh] = listing
            self._listing_dirs[fh] = ino
            return fh
        return ino

    def _local_listing(self, node: Inode) -> list[tuple[bytes, Inode]] | None:
        """A directory under a WBC grant whose every entry we know with its attributes: its listing."""
        if self.local is None or self.local.grant_for(node) is None:
            return None
        with self.table.mu:
            if node.complete is None:
                return None
            out = []
            for name in sorted(node.complete):
                child = self.table.child(node.ino, name)
                if child is None or not child.attr_cached():
                    return None
                out.append((name, child))
            return out

    async def releasedir(self, fh: int) -> None:
        self._listings.pop(fh, None)
        self._listing_dirs.pop(fh, None)

    async def readdir(self, fh: int, start_id: int, emit: Emit) -> None:
        """Entries from offset `start_id` on, each handed to `emit` until it takes no more:
        "." and ".." at offsets 1 and 2 (POSIX lists them, and `ls -a` shows them), then the
        directory's entries, each at its cookie plus DOTS."""
        if start_id < DOTS and not await self._dots(self._listing_dirs.get(fh, fh), start_id, emit):
            return
        start = max(start_id - DOTS, 0)
        listing = self._listings.get(fh)
        if listing is not None:
            for i in range(start, len(listing)):
                name, child = listing[i]
                attr, ttl = await self._attr(child)
                if not emit(name, replace(entry(child, attr, ttl), entry_ttl=0.0), i + 1 + DOTS):
                    return
                with self.table.mu:
                    child.lookups += 1
            return
        node = self._node(fh)
        await self._sync_records()
        cookie = start
        while True:
            rep = await self._at_mds(node, self.mdc.readdir, node.fid, cookie, 256, True)
            for ent in rep.entries:
                attr = attr_from_pb(ent.attr)
                if ent.remote:
                    # An inode of another MDT: the listing's attributes are its name's stub's, not
                    # to be kept as the inode's; the kernel asks the inode's MDT when it needs them
                    # (a listing goes on while that MDT is away).
                    child = self.table.ensure(attr.fid)
                else:
                    child, _ = self.table.learn(attr.fid, attr, size_valid=ent.attr.size_valid)
                if not emit(ent.name, replace(entry(child, attr, 0.0), entry_ttl=0.0), ent.cookie + DOTS):
                    return
                with self.table.mu:
                    child.lookups += 1
                cookie = ent.cookie
            if rep.eof or not rep.entries:
                return

    async def _dots(self, ino: int, start_id: int, emit: Emit) -> bool:
        """"." and ".." from offset `start_id`; False when `emit` took no more. The kernel keeps
        no reference for them (no lookup count); ".." names the parent this client knows (the
        directory itself at the root, or when it knows none)."""
        node = self._node(ino)
        attr, _ = await self._attr(node)
        with self.table.mu:
            parent = min((p for p, _ in node.names), default=node.ino)
        for off, name, dot in ((1, b".", node.ino), (2, b"..", parent))[start_id:]:
            if not emit(name, Entry(dot, attr), off):
                return False
        return True

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.meta.run(self.closer.drain, self.mdc.timeout)
        await self._commit_records()
        await self.meta.run(self.mdc.sync)
        node = self.table.get(self._listing_dirs.get(fh, fh))
        if node is not None:
            self._refused(node.fid)

    async def statfs(self, caller: Caller) -> FsStat:
        rep = await self.meta.run(self.mdc.statfs)
        t = rep.total
        return FsStat(t.bsize or 4096, t.blocks, t.bfree, t.bavail, t.files, t.ffree)

    def forget(self, inode_list: Iterable[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            for cookie in self.table.forget(ino, n):
                self.mdc.locks.release(cookie)

    async def flush_all(self) -> None:
        """Unmount: write every dirty byte before the process exits."""
        for h in self._handles_now():
            if h.data is not None:
                await self.io.run(h.data.flush)
        if not await self.io.run(self.closer.drain, self.mdc.timeout):
            log.warning("closes not yet sent to the MDS at unmount: %d", len(self.closer.pending()))
        await self._commit_records()

