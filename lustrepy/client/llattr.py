"""Attributes and extended attributes (Lustre's llite setattr and xattr).

setattr applies Linux's rules before anything changes (common.perm; the MDS
checks again), cuts or grows a regular file's objects for a size change, and
has the change made by the backend nsbackend chooses (here for an inode made
under a live write-back-cache grant, else the MDS). Extended attributes of
files made here are kept here; `lustrepy.wbc` is a virtual attribute that
shows a directory's write-back cache state.
"""

from __future__ import annotations

import errno
import json
import stat
import time
from typing import Any

from lustrepy.client.inodes import Inode
from lustrepy.client.llbase import XATTR
from lustrepy.client.llfile import FileOps
from lustrepy.client.replies import Caller, Entry, SetAttrRequest
from lustrepy.client.wbcdata import ROOT as WBC_BOOKKEEPING
from lustrepy.common import perm
from lustrepy.common.dirhash import DMV_XATTR
from lustrepy.common.errors import LpError
from lustrepy.common.layout import LOV_XATTR
from lustrepy.common.protocol import SA
from lustrepy.common.records import Attr, Cred

WBC_XATTR = b"lustrepy.wbc"
LMV_XATTR = b"lustrepy.lmv"       # virtual: a directory's FID and MDT
_SERVER_MADE = frozenset((LOV_XATTR, DMV_XATTR))   # the MDS makes these, also on inodes made for us
NOW_SLACK_NS = 5 * 10**9   # a time this near the clock, set by someone not the owner, is "now" (UTIME_NOW)
_TIME_BITS = int(SA.ATIME | SA.MTIME | SA.CTIME | SA.ATIME_NOW | SA.MTIME_NOW)
_FIELDS = tuple((int(bit), key) for bit, key in (   # plain ints: IntFlag arithmetic is slow
    (SA.MODE, "mode"), (SA.UID, "uid"), (SA.GID, "gid"), (SA.ATIME, "atime_ns"), (SA.MTIME, "mtime_ns"),
    (SA.CTIME, "ctime_ns")))
_SIZE = int(SA.SIZE)


class AttrOps(FileOps):
    async def setattr(self, ino: int, req: SetAttrRequest, fh: int | None, caller: Caller) -> Entry:
        node = self._node(ino)
        cred = caller.cred
        op: dict[str, Any] = {"valid": 0}
        valid = int(req.valid)
        for bit, key in _FIELDS:
            if valid & bit:
                op["valid"] |= bit
                op[key] = getattr(req, key)
        update_size = bool(valid & _SIZE)
        if not node.attr_cached():
            await self._fetch(node)         # the rules below look at mode and owner: current ones
        a = node.attr
        if a is not None:
            _times_now(op, cred, a)
        h = self.handles.get(fh) if fh is not None else None
        made_here = self.wbcdata is not None and self._made_here(node)
        by_writer = update_size and h is not None and h.writer     # ftruncate: no permission re-check
        if update_size:
            op["valid"] |= int(SA.SIZE)
            op["size"] = req.size
            if by_writer and h is not None:
                op["open_handle"] = h.mds_handle
        if a is not None:
            # Checked before anything changes (a refused setattr changes nothing); the MDS checks again.
            mode = perm.check_setattr(cred, a, perm.Change(
                op["valid"], op.get("mode", 0), op.get("uid", 0), op.get("gid", 0), op.get("size", 0),
                writer=by_writer))
            if mode != a.mode and not op["valid"] & SA.MODE:
                # setuid/setgid cleared by the change, asked for explicitly: a size kept here
                # never reaches the MDS as this caller's change
                op["valid"] |= int(SA.MODE)
                op["mode"] = mode & 0o7777
        local_cred = cred
        cut_objects = update_size and a is not None and stat.S_ISREG(a.mode)
        if (update_size and made_here and self.wbcdata is not None
                and self.wbcdata.truncate(node, req.size)):
            cut_objects = False                         # its bytes are here: cut or grown here
            op["valid"] &= ~int(SA.SIZE)
            op.pop("size", None)
            op.pop("open_handle", None)
            if not op["valid"]:
                return await self._entry_of(node)
            if not op["valid"] & ~_TIME_BITS:
                # The times of a truncate checked above (perhaps through a handle, which a
                # record cannot carry): the client's own bookkeeping, as its size records.
                local_cred = WBC_BOOKKEEPING
        # The MDS first (it may refuse; it records the size as one the objects decide until
        # a writer reports one), then the objects: a client that dies in between leaves
        # the objects' size in force, never an MDS size that disagrees with them.
        done = await self._ns_of(node).setattr(node, op, cred, local_cred)
        if cut_objects:
            await self.io.run(self._truncate, node, req.size)
        return await self._entry_of(done)


    # ---- extended attributes --------------------------------------------------------------------------

    async def setxattr(self, ino: int, name: bytes, value: bytes, caller: Caller) -> None:
        node = self._node(ino)
        await self._ns_of(node).setxattr(node, name, value, caller.cred)

    async def getxattr(self, ino: int, name: bytes, caller: Caller) -> bytes:
        # The kernel asks for security.capability before every write: while the XATTR lock is
        # held, a name found absent once is answered here.
        node = self._node(ino)
        if name == WBC_XATTR:
            return await self._wbc_state(node)
        if name == LMV_XATTR:
            return await self._lmv_state(node)
        server_made = name in _SERVER_MADE
        if node.bits & XATTR and not server_made and (name in node.no_xattr or node.xattrs_none):
            raise LpError(node.no_xattr.get(name, errno.ENODATA), "no such attribute")
        if not server_made and self._made_here(node):
            with self.table.mu:                 # made here: only what was set here
                value = node.wbc_xattrs.get(name)
            if value is None:
                raise LpError(errno.ENODATA, "no such attribute")
            return value
        await self._sync_records()
        try:
            return await self._at_mds(node, self.mdc.getxattr, node.fid, name, caller.cred)
        except LpError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP) and node.bits & XATTR and not server_made:
                with self.table.mu:
                    node.no_xattr[name] = e.errno
            raise

    async def _wbc_state(self, node: Inode) -> bytes:
        """The virtual attribute `lustrepy.wbc` of a directory: its write-back cache state, as the
        MDS sees it and as this client does (JSON; read by `lfsctl wbc`)."""
        if not node.is_dir:
            if node.attr is None:           # a type never changes: known here is known
                await self._fetch(node)
            if not node.is_dir:
                raise LpError(errno.ENOTDIR, "the write-back cache state is kept for directories")
        info = await self._at_mds(node, self.mdc.wbc_info, node.fid)
        g = self.wbc.local(node.fid) if self.wbc is not None else None
        st = self.wbc.statistics() if self.wbc is not None else {}
        out = {"mode": info.mode, "holder": info.holder, "contended_for_s": round(info.contended_for_s, 1),
               "conflicts": info.conflicts, "grants": info.grants, "revocations": info.revocations,
               "client": self.mdc.client_id, "client_wbc": self.wbc is not None,
               "held_here": g is not None, "subtree_root": str(g.root) if g is not None else "",
               "records_pending": st.get("pending", 0), "records_flushed": st.get("flushed", 0),
               "client_revocations": st.get("revocations", 0)}
        return json.dumps(out, sort_keys=True).encode()

    async def _lmv_state(self, node: Inode) -> bytes:
        """The virtual attribute `lustrepy.lmv` of a directory: its FID, the MDT that holds its
        entries and, for a striped directory, each stripe's MDT and FID, its hash (JSON; read by
        `lfsctl getdirstripe` and `lfsctl mkdir`)."""
        await self._fetch(node)                 # the stripes come with the attributes
        if not node.is_dir:
            raise LpError(errno.ENOTDIR, "directory placement is kept for directories")
        mdt = await self.meta.run(self.mdc.mdt_of, node.fid)
        out: dict[str, Any] = {"fid": str(node.fid), "mdt": mdt, "mdt_count": self.mdc.view.count(),
                               "stripe_count": 0, "hash": "none", "stripes": []}
        s = self.mdc.stripes(node.fid) if hasattr(self.mdc, "stripes") else None
        if s is not None:
            out.update(stripe_count=s.count, hash=s.hash_type,
                       stripes=[{"mdt": m, "fid": str(f)} for f, m in zip(s.fids, s.mdts, strict=True)])
        return json.dumps(out, sort_keys=True).encode()

    async def listxattr(self, ino: int, caller: Caller) -> list[bytes]:
        node = self._node(ino)
        await self._sync_records()
        return await self._at_mds(node, self.mdc.listxattr, node.fid, caller.cred)

    async def removexattr(self, ino: int, name: bytes, caller: Caller) -> None:
        node = self._node(ino)
        await self._ns_of(node).setxattr(node, name, None, caller.cred)


def _times_now(op: dict[str, Any], cred: Cred, a: Attr) -> None:
    """Times to be set to "now" (utimensat's UTIME_NOW, touch): pyfuse3 hands them over as
    the kernel's current time, like explicit ones. Only the owner may set explicit times,
    anyone who may write may set "now": a time near the clock, asked by someone who is
    not the owner, goes to the MDS as "now". The owner's times stay exactly as given."""
    if cred.uid == 0 or cred.uid == a.uid:
        return
    now = time.time_ns()
    for bit, now_bit, key in ((SA.ATIME, SA.ATIME_NOW, "atime_ns"), (SA.MTIME, SA.MTIME_NOW, "mtime_ns")):
        if op["valid"] & bit and abs(op[key] - now) <= NOW_SLACK_NS:
            op["valid"] = (op["valid"] & ~int(bit)) | int(now_bit)
            del op[key]

