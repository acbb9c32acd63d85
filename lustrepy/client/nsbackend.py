"""Where a namespace change is made: by the MDS, or here under a write-back-cache grant.

llite asks `LliteBase._ns(directory)` (or `_ns_of(inode)` for a change to an
inode itself) for the backend of one change and calls it; it never branches
on the write-back cache itself. Both backends have the same methods and
return the inode the change made or touched:

- `RemoteNamespace`: the change goes to the MDS through the mdc (after the
  update records this client has pending, which the MDS must see first).
- `LocalNamespace`: the directory is covered by a WBC grant whose listing
  this client knows; the change is journalled as an update record and
  applied to the inode table (wbcops.LocalOps) with no RPC. When LocalOps
  cannot act here (the grant is being called back, an object this client
  did not make, ...), the change goes to the MDS as above.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import TYPE_CHECKING, Any

from lustrepy.client.inodes import Inode
from lustrepy.client.nsiface import Created
from lustrepy.client.wbc import Grant
from lustrepy.common.layout import LOV_XATTR
from lustrepy.common.protocol import DISP, IT, RENAME, SA
from lustrepy.common.records import Cred
from lustrepy.rpc.convert import layout_from_pb
from lustrepy.ldlm.inodebits import IBit

if TYPE_CHECKING:
    from lustrepy.client.llbase import LliteBase

IT_OPEN_CREAT = int(IT.OPEN | IT.CREAT)
RENAME_EXCHANGE = int(RENAME.EXCHANGE)
UPDATE, XATTR = int(IBit.UPDATE), int(IBit.XATTR)
DISP_OPEN_CREATE = int(DISP.OPEN_CREATE)


def _wants_grant(ll: Any, parent: Inode) -> bool:
    """Ask the MDS for a WBC grant on `parent` with a create or mkdir in it: not for a directory
    found too big to list a moment ago (each offer would cost its listing, LliteBase._adopt_grant)."""
    return ll.wbc is not None and time.monotonic() >= parent.no_grant_until


def _new_here(node: Inode, bits: int) -> None:
    """What this client knows of an inode the MDS just made for it, under the lock that came
    with it: a directory holds no names, and nothing has extended attributes."""
    if stat.S_ISDIR(node.attr.mode if node.attr is not None else 0) and bits & UPDATE:
        node.complete = set()
    if bits & XATTR:
        node.xattrs_none = True


_SIZE = int(SA.SIZE)


class RemoteNamespace:
    def __init__(self, ll: "LliteBase") -> None:
        self.ll = ll

    def _made(self, parent: Inode, name: bytes, rep: Any) -> Inode:
        ll = self.ll
        ll._parent_from(rep)
        ll.table.entry_added(parent.ino, name)
        node = ll._learn(rep, name=(parent.ino, name), lookup=True)
        with ll.table.mu:
            _new_here(node, rep.lock.ibits)
        return node

    async def mknod(self, parent: Inode, name: bytes, mode: int, rdev: int, cred: Cred) -> Inode:
        ll = self.ll
        await ll._sync_records()
        rep = await ll._mds(ll.mdc.create, parent.fid, name, mode, cred, None, rdev)
        return self._made(parent, name, rep)

    async def mkdir(self, parent: Inode, name: bytes, mode: int, cred: Cred) -> Inode:
        ll = self.ll
        await ll._sync_records()
        rep = await ll._mds(lambda: ll.mdc.mkdir(parent.fid, name, mode, cred, want_wbc=_wants_grant(ll, parent)))
        node = self._made(parent, name, rep)
        if rep.wbc_lock.cookie:
            await ll._adopt_grant(rep, node)
        return node

    async def symlink(self, parent: Inode, name: bytes, target: bytes, cred: Cred) -> Inode:
        ll = self.ll
        await ll._sync_records()
        rep = await ll._mds(ll.mdc.symlink, parent.fid, name, target, cred)
        return self._made(parent, name, rep)

    async def create(self, parent: Inode, name: bytes, mode: int, flags: int, cred: Cred) -> Created:
        ll = self.ll
        await ll._sync_records()
        rep = await ll._mds(lambda: ll.mdc.intent_raw(
            IT_OPEN_CREAT, cred, parent=parent.fid, name=name, open_flags=flags | os.O_CREAT,
            mode=mode, want_wbc=_wants_grant(ll, parent)))
        ll.mdc.raise_for(rep)
        if rep.wbc_lock.cookie:
            await ll._adopt_grant(rep, parent)
        ll._parent_from(rep)
        ll.table.entry_added(parent.ino, name)
        node = ll._learn(rep, name=(parent.ino, name), lookup=True)
        fresh = bool(rep.disposition & DISP_OPEN_CREATE)
        if fresh:
            with ll.table.mu:
                _new_here(node, rep.lock.ibits)
        layout = layout_from_pb(rep.layout) if rep.has_layout else None
        return Created(node, layout, rep.open_handle, fresh, False)

    async def link(self, node: Inode, parent: Inode, name: bytes, cred: Cred) -> Inode:
        ll = self.ll
        await ll._sync_records()
        rep = await ll._at_mds(node, ll.mdc.link, node.fid, parent.fid, name, cred)
        ll._parent_from(rep)
        ll.table.entry_added(parent.ino, name)
        return ll._learn(rep, name=(parent.ino, name), lookup=True)

    async def remove(self, parent: Inode, name: bytes, cred: Cred, *, rmdir: bool) -> None:
        ll = self.ll
        await ll._sync_records()
        if not rmdir:
            await ll._open_at_mds(ll.table.child(parent.ino, name))
        rep = await ll._mds(ll.mdc.rmdir if rmdir else ll.mdc.unlink, parent.fid, name, cred)
        ll._parent_from(rep)
        ll.table.entry_removed(parent.ino, name)
        victim = ll.table.remove_name(parent.ino, name)
        if victim is not None:
            ll._stale_after_update(victim.ino)

    async def rename(self, sp: Inode, old: bytes, dp: Inode, new: bytes, flags: int, cred: Cred) -> None:
        ll = self.ll
        await ll._sync_records()
        await ll._open_at_mds(ll.table.child(dp.ino, new))
        rep = await ll._mds(ll.mdc.rename, sp.fid, old, dp.fid, new, flags, cred)
        moved = ll.table.remove_name(sp.ino, old)
        other = ll.table.remove_name(dp.ino, new)
        ll.table.entry_removed(sp.ino, old)
        ll.table.entry_added(dp.ino, new)
        if flags & RENAME_EXCHANGE:                     # both names still exist
            ll.table.entry_added(sp.ino, old)
        touched = [n.ino for n in (moved, other) if n is not None]
        if sp.ino != dp.ino:
            touched.append(sp.ino)
            if ll.mdc.stripes(dp.fid) is not None:
                touched.append(dp.ino)      # striped: its links and times are its stripes' together
        ll._stale_after_update(*touched)
        ll._parent_from(rep)

    async def setattr(self, node: Inode, op: dict[str, Any], cred: Cred, local_cred: Cred | None = None) -> Inode:
        ll = self.ll
        await ll._sync_records()
        if op["valid"] & _SIZE and ll.closer.busy():
            # A close queued here carries the size its handle knew: it must not land after this
            # change of the size and undo it (a file without objects keeps its size on the MDS).
            await ll.meta.run(ll.closer.drain, ll.mdc.timeout)
        rep = await ll._at_mds(node, ll.mdc.setattr, node.fid, cred, **op)
        return ll._learn(rep)

    async def setxattr(self, node: Inode, name: bytes, value: bytes | None, cred: Cred) -> None:
        ll = self.ll
        await ll._sync_records()
        if value is None:
            await ll._at_mds(node, ll.mdc.removexattr, node.fid, name, cred)
            with ll.table.mu:
                if node.bits & XATTR and name != LOV_XATTR:   # the layout is virtual: a dir inherits one
                    node.no_xattr[name] = errno.ENODATA
            return
        await ll._at_mds(node, ll.mdc.setxattr, node.fid, name, value, 0, cred)
        with ll.table.mu:
            node.wbc_grant = 0          # it has extended attributes now: ask the MDS
            node.no_xattr.pop(name, None)
            node.xattrs_none = False


class LocalNamespace:
    """Changes under grant `g` (None: changes to an inode made here, which LocalOps checks)."""

    def __init__(self, ll: "LliteBase", g: Grant | None) -> None:
        assert ll.local is not None
        self.ll = ll
        self.local = ll.local
        self.g = g
        self.remote = ll.remote

    async def _made(self, parent: Inode, name: bytes, mode: int, rdev: int, cred: Cred,
                    target: bytes = b"") -> Inode | None:
        await self.ll._wbc_room()
        if self.g is None:
            return None
        return self.local.create(self.g, parent, name, mode, rdev, cred, target)

    async def mknod(self, parent: Inode, name: bytes, mode: int, rdev: int, cred: Cred) -> Inode:
        node = await self._made(parent, name, mode, rdev, cred)
        return node if node is not None else await self.remote.mknod(parent, name, mode, rdev, cred)

    async def mkdir(self, parent: Inode, name: bytes, mode: int, cred: Cred) -> Inode:
        node = await self._made(parent, name, stat.S_IFDIR | (mode & 0o7777), 0, cred)
        return node if node is not None else await self.remote.mkdir(parent, name, mode, cred)

    async def symlink(self, parent: Inode, name: bytes, target: bytes, cred: Cred) -> Inode:
        node = await self._made(parent, name, stat.S_IFLNK | 0o777, 0, cred, target)
        return node if node is not None else await self.remote.symlink(parent, name, target, cred)

    async def create(self, parent: Inode, name: bytes, mode: int, flags: int, cred: Cred) -> Created:
        node = await self._made(parent, name, mode, 0, cred)
        if node is None:
            return await self.remote.create(parent, name, mode, flags, cred)
        return Created(node, None, 0, True, True)

    async def link(self, node: Inode, parent: Inode, name: bytes, cred: Cred) -> Inode:
        ll = self.ll
        await ll._wbc_room()
        if self.g is not None and self.local.link(self.g, node, parent, name, cred):
            with ll.table.mu:
                node.lookups += 1           # the kernel holds the new entry
            return node
        return await self.remote.link(node, parent, name, cred)

    async def remove(self, parent: Inode, name: bytes, cred: Cred, *, rmdir: bool) -> None:
        ll = self.ll
        await ll._wbc_room()
        victim = ll.table.child(parent.ino, name)
        if self.g is not None and self.local.remove(self.g, parent, name, cred, rmdir=rmdir):
            if victim is not None:
                ll._drop_kept(victim)
            return
        await self.remote.remove(parent, name, cred, rmdir=rmdir)

    async def rename(self, sp: Inode, old: bytes, dp: Inode, new: bytes, flags: int, cred: Cred) -> None:
        ll = self.ll
        await ll._wbc_room()
        dg = self.local.grant_for(dp) if self.g is not None else None
        if self.g is not None and dg is not None and dg.cookie == self.g.cookie:
            done = self.local.rename(self.g, sp, old, dp, new, flags, cred)
            if isinstance(done, Inode):
                ll._drop_kept(done)
            if done is not False:
                return
        await self.remote.rename(sp, old, dp, new, flags, cred)

    async def setattr(self, node: Inode, op: dict[str, Any], cred: Cred, local_cred: Cred | None = None) -> Inode:
        if self.local.setattr(node, op, local_cred or cred):
            return node
        return await self.remote.setattr(node, op, cred)

    async def setxattr(self, node: Inode, name: bytes, value: bytes | None, cred: Cred) -> None:
        if not self.local.setxattr(node, name, value, cred):
            await self.remote.setxattr(node, name, value, cred)
