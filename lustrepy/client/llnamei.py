"""Names: lookups, attributes, and the changes of names (Lustre's llite namei).

A lookup asks the MDS with one intent (lookup+getattr, and an open when the
kernel walks a path again after ESTALE: reval.py); every change of names is
made by the backend nsbackend chooses for its directory, the MDS or this
client under a write-back-cache grant. Answers are `replies.Entry` records.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from lustrepy.client.llbase import IT_GETATTR, IT_LOOKUP, IT_OPEN, LOOKUP, LOOKUP_BITS, LliteBase
from lustrepy.client.inodes import Inode
from lustrepy.client.replies import NEGATIVE, Caller, Entry
from lustrepy.common.errors import LpError
from lustrepy.common.names import check_name

LOOKUP_TRIES = 4       # a lookup asks the MDS again when names in its directory changed here meanwhile


class NameOps(LliteBase):
    # ---- ESTALE, and the kernel's second look -----------------------------------------------

    async def _stale_answered(self, caller: Caller, coro: Any) -> Any:
        """Run a handler; when it answers ESTALE, the calling thread's next lookups are the
        kernel's second walk of the path (LOOKUP_REVAL), and hold what they find (reval.py)."""
        try:
            return await coro
        except LpError as e:
            if e.errno == errno.ESTALE:
                self.holds.stale_answered(caller.pid)
            raise

    async def _let_go(self, ino: int | None = None, caller: Caller | None = None) -> None:
        """Release the hold the caller made for this inode's open, and every hold past its deadline."""
        fhs = self.holds.expired()
        fh = self.holds.take(caller.pid if caller is not None else 0, ino) if ino is not None else None
        for f in ([fh] if fh is not None else []) + fhs:
            await self.release(f)

    # ---- lookups and attributes ---------------------------------------------------------------

    async def lookup(self, parent_ino: int, name: bytes, caller: Caller) -> Entry:
        """The entry of `name` in the directory; a negative entry (ino 0) when it is absent
        and the kernel may cache that."""
        await self._let_go()
        return await self._stale_answered(caller, self._lookup(parent_ino, name, caller))

    async def _lookup(self, parent_ino: int, name: bytes, caller: Caller) -> Entry:
        parent = self._node(parent_ino)
        if name == b".":
            return await self._entry_of(parent)
        check_name(name)
        # a thread walking its path again after an ESTALE opens what it finds, in the same request
        hold = self.holds.retrying(caller.pid)
        for attempt in range(LOOKUP_TRIES):
            if self.table.known_absent(parent_ino, name):
                self.table.add_negative(parent_ino, name)
                return NEGATIVE
            # Taken before our records go out: a name changed here while they do (the flush
            # runs in a worker) is not in what the MDS answers.
            changes = self.table.name_changes(parent_ino)
            child = self.table.child(parent_ino, name)
            if child is not None and not hold and child.bits & LOOKUP and child.attr_cached():
                with self.table.mu:         # the name and the attributes are under locks held here
                    child.lookups += 1
                return await self._entry_of(child)
            if self.wbc is not None and self.wbc.local(parent.fid) is not None:
                child = self.table.child(parent_ino, name)
                if child is not None and child.attr_cached() and (not hold or await self._held_here(child, caller)):
                    with self.table.mu:
                        child.lookups += 1
                    return await self._entry_of(child)
                await self._sync_records()
            rep = await self._mds(self.mdc.intent_raw, IT_LOOKUP | IT_GETATTR | (IT_OPEN if hold else 0),
                                      caller.cred, parent=parent.fid, name=name, ibits=LOOKUP_BITS,
                                      open_flags=os.O_RDONLY)
            if hold and rep.hdr.errno not in (0, errno.ENOENT, errno.ESTALE):
                hold = False                # not readable by the caller: a plain lookup then
                continue
            if self.table.name_changes(parent_ino) == changes or attempt == LOOKUP_TRIES - 1:
                break
            # This client renamed, linked or removed names in the directory while the MDS
            # answered: the answer may name what a rename replaced here. Ask again (the kernel
            # may be asking after an ESTALE, and retries only once).
            if rep.lock.cookie:
                self.mdc.locks.drop(rep.lock.cookie)
            if rep.open_handle:
                self.closer.submit(rep.open_handle)
        if rep.hdr.errno == errno.ESTALE:           # the directory itself is gone
            self._forget_stale(parent)
        if rep.hdr.errno:
            if rep.lock.cookie:
                # absent, and the parent's UPDATE lock now covers that: the kernel may cache it
                if not self.table.learn_lock(parent.fid, rep.lock.cookie, rep.lock.ibits):
                    self.mdc.locks.drop(rep.lock.cookie)
                self.table.add_negative(parent_ino, name)
                return NEGATIVE
            self.mdc.raise_for(rep)
        node = self._learn(rep, name=(parent_ino, name), lookup=True)
        if rep.open_handle:
            await self._hold(node, rep.open_handle, caller.pid)
        return await self._entry_of(node)

    async def _held_here(self, node: Inode, caller: Caller) -> bool:
        """A retried walk found `node` in a directory of a live grant: True when it needs no
        hold from the MDS, because it is not a regular file, or because it was made here and
        is now held open here. Such a hold is a local open made under `Wbc.op_lock` (a local
        unlink or rename over the file checks for opens under it), so the name's removal goes
        to the MDS, which keeps the file while it is open. False: ask the MDS."""
        assert self.wbc is not None
        with self.wbc.op_lock:
            a = node.attr
            if a is not None and not stat.S_ISREG(a.mode):
                return True
            if a is None or a.nlink == 0 or node.mds_opens or not self._made_here(node):
                return False
            fh, h = self._new_handle(node, 0, os.O_RDONLY)
            h.lazy = True
        older = self.holds.held(caller.pid, node.ino, fh)
        if older is not None:
            await self.release(older)
        return True

    async def _hold(self, node: Inode, mds_handle: int, tid: int) -> None:
        """Keep a regular file open until the open a retried walk found it for (reval.py);
        anything else is closed again at once."""
        if node.attr is None or not stat.S_ISREG(node.attr.mode):
            self.closer.submit(mds_handle)
            return
        fh, _ = self._new_handle(node, mds_handle, os.O_RDONLY)
        older = self.holds.held(tid, node.ino, fh)
        if older is not None:
            await self.release(older)

    async def getattr(self, ino: int, caller: Caller) -> Entry:
        return await self._stale_answered(caller, self._entry_of(self._live(self._node(ino))))


    async def readlink(self, ino: int, caller: Caller) -> bytes:
        node = self._node(ino)
        await self._sync_records()
        return await self._at_mds(node, self.mdc.readlink, node.fid, caller.cred)

    async def mknod(self, parent_ino: int, name: bytes, mode: int, rdev: int, caller: Caller) -> Entry:
        check_name(name)
        parent = self._node(parent_ino)
        return await self._entry_of(await self._ns(parent).mknod(parent, name, mode, rdev, caller.cred))

    async def mkdir(self, parent_ino: int, name: bytes, mode: int, caller: Caller) -> Entry:
        check_name(name)
        parent = self._node(parent_ino)
        return await self._entry_of(await self._ns(parent).mkdir(parent, name, mode, caller.cred))

    async def symlink(self, parent_ino: int, name: bytes, target: bytes, caller: Caller) -> Entry:
        check_name(name)
        parent = self._node(parent_ino)
        return await self._entry_of(await self._ns(parent).symlink(parent, name, target, caller.cred))

    async def link(self, ino: int, new_parent_ino: int, new_name: bytes, caller: Caller) -> Entry:
        check_name(new_name)
        node, parent = self._node(ino), self._node(new_parent_ino)
        return await self._entry_of(await self._ns(parent).link(node, parent, new_name, caller.cred))

    async def unlink(self, parent_ino: int, name: bytes, caller: Caller) -> None:
        parent = self._node(parent_ino)
        await self._ns(parent).remove(parent, name, caller.cred, rmdir=False)

    async def rmdir(self, parent_ino: int, name: bytes, caller: Caller) -> None:
        parent = self._node(parent_ino)
        await self._ns(parent).remove(parent, name, caller.cred, rmdir=True)

    async def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                     flags: int, caller: Caller) -> None:
        check_name(new_name)
        sp, dp = self._node(old_parent), self._node(new_parent)
        await self._ns(sp).rename(sp, old_name, dp, new_name, flags, caller.cred)
