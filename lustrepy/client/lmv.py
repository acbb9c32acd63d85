"""The client's metadata layer over several MDTs (Lustre's lmv): one Mdc per MDT, each request
sent to the MDT that owns its FID or its parent directory's.

Where a FID lives comes from the FID location view (common/fld.py), fetched from MDT0 at mount
and again when a FID's sequence is not in it. A lookup whose name binds a directory of another
MDT (a remote directory, or a file renamed there) is followed there by FID in the same call,
and its answer (attributes and lock, taken from the inode's MDT) is the caller's. Open handles of MDT1.. carry their MDT in
the top byte, so closes go where the open was; MDT0's are unchanged. Locks stay per MDT: the
`locks` view finds the lock client holding a cookie. A rename goes to the source directory's
MDT, which carries a rename into another MDT's directory through (a directory moving between
MDTs says EXDEV there, and `mv` copies); a link goes to the directory's MDT, which carries a
link to another MDT's file through. A name
that binds a file of another MDT is followed as a remote directory's is. With one MDT every
call goes to the one Mdc as before. Synchronous and thread-safe, as Mdc is.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import Any

from lustrepy.client.mdc import Mdc
from lustrepy.common.capa import Capa
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.fld import FldView
from lustrepy.common.protocol import IT
from lustrepy.common.records import Cred
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import check_rep, fid_from_pb
from lustrepy.rpc.fldwire import view_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

HANDLE_SHIFT = 56           # an MDT's index in the top byte of the open handles it gives
_CREAT, _OPEN = int(IT.CREAT), int(IT.OPEN)


class LockView:
    """The lock clients of every MDT, seen as one (cookies are drawn at random per server)."""

    def __init__(self, lmv: Lmv) -> None:
        self._lmv = lmv

    def _of(self, cookie: int) -> Any:
        mdcs = self._lmv.all()
        if len(mdcs) == 1:
            return mdcs[0].locks
        for m in mdcs:
            if m.locks is not None and m.locks.has(cookie):
                return m.locks
        return None

    def usable(self, cookie: int) -> bool:
        lc = self._of(cookie)
        return lc is not None and bool(lc.usable(cookie))

    def hold(self, cookie: int) -> bool:
        lc = self._of(cookie)
        return lc is not None and bool(lc.hold(cookie))

    def release(self, cookie: int) -> None:
        lc = self._of(cookie)
        if lc is not None:
            lc.release(cookie)

    def drop(self, cookie: int) -> None:
        lc = self._of(cookie)
        if lc is not None:
            lc.drop(cookie)


class Lmv:
    """Mdc's interface over the MDTs; attributes it does not route are MDT0's Mdc's."""

    def __init__(self, mdc0: Mdc, make: Callable[[str], Mdc]) -> None:
        self.mdc0 = mdc0
        self._make = make                   # a connected Mdc for an MDT's address
        self._mu = threading.Lock()
        self._mdcs: dict[int, Mdc] = {0: mdc0}
        self.view = FldView(())
        self.locks = LockView(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.mdc0, name)

    # ---- where things are ------------------------------------------------------------

    def refresh(self) -> FldView:
        """Fetch the FID location view from MDT0 (one MDT when it has none to give)."""
        try:
            # a bare header: Mdc.hdr would count the xid as unanswered for good (replied_xid stops)
            hdr = cpb.ReqHdr(client_id=self.mdc0.client_id, conn_gen=self.mdc0.conn_gen)
            rep = call(self.mdc0.grpc_stub.Fld, mpb.FldRequest(hdr=hdr), timeout=self.mdc0.timeout)
            check_rep(rep.hdr)
            view = view_from_pb(rep.ranges, rep.mdts)
        except LpError as e:
            if e.errno != errno.ENOSYS:
                raise
            view = FldView(())
        with self._mu:
            self.view = view
        return view

    def all(self) -> list[Mdc]:
        with self._mu:
            return list(self._mdcs.values())

    def mdt_of(self, fid: Fid) -> int:
        if not self.view.ranges:
            return 0                        # an MDS that keeps no FID location view: one MDT
        i = self.view.mdt_of(fid)
        if i is None:
            i = self.refresh().mdt_of(fid)
            if i is None:
                raise LpError(errno.ESTALE, f"no MDT holds the sequence of {fid}")
        return i

    def mdc(self, index: int) -> Mdc:
        with self._mu:
            m = self._mdcs.get(index)
        if m is not None:
            return m
        address = next((x.address for x in self.view.mdts if x.index == index), "")
        if not address:
            address = next((x.address for x in self.refresh().mdts if x.index == index), "")
        if not address:
            raise LpError(errno.ENOTCONN, f"MDT{index:04x} is not known to MDT0")
        made = self._make(address)
        with self._mu:
            m = self._mdcs.setdefault(index, made)
        if m is not made:
            made.close()
        return m

    def at(self, fid: Fid) -> Mdc:
        if len(self._mdcs) == 1 and not self.view.ranges:
            return self.mdc0
        return self.mdc(self.mdt_of(fid))

    # ---- handles ------------------------------------------------------------------------

    @staticmethod
    def _split(handle: int) -> tuple[int, int]:
        return handle >> HANDLE_SHIFT, handle & ((1 << HANDLE_SHIFT) - 1)

    def _tag(self, rep: Any, index: int) -> Any:
        if index and getattr(rep, "open_handle", 0):
            rep.open_handle |= index << HANDLE_SHIFT
        return rep

    def close_handles(self, items: list[tuple[int, int | None]], cred: Cred | None = None, *,
                      keep_open: bool = False) -> None:
        by: dict[int, list[tuple[int, int | None]]] = {}
        for h, size in items:
            i, raw = self._split(h)
            by.setdefault(i, []).append((raw, size))
        for i, its in by.items():
            self.mdc(i).close_handles(its, cred, keep_open=keep_open)

    def close_handle(self, handle: int, cred: Cred | None = None, size: int | None = None) -> None:
        self.close_handles([(handle, size)], cred)

    def report_size(self, handle: int, size: int, cred: Cred | None = None) -> None:
        self.close_handles([(handle, size)], cred, keep_open=True)

    # ---- intents ------------------------------------------------------------------------

    def intent(self, ops: int, cred: Cred | None = None, **kw: Any) -> mpb.IntentReply:
        return self._intent(ops, cred, True, kw)

    def intent_raw(self, ops: int, cred: Cred | None = None, **kw: Any) -> mpb.IntentReply:
        return self._intent(ops, cred, False, kw)

    def _intent(self, ops: int, cred: Cred | None, check: bool, kw: dict[str, Any]) -> mpb.IntentReply:
        by_name = kw.get("name") and kw.get("parent") is not None
        where = kw["parent"] if by_name else kw.get("fid")
        index = self.mdt_of(where) if where is not None and self.view.ranges else 0
        m = self.mdc(index)
        rep = m.intent(ops, cred, check=check, **kw)
        if rep.remote:                      # the name binds a directory of another MDT: ask it
            fid = fid_from_pb(rep.attr.fid)
            rest = {k: v for k, v in kw.items() if k not in ("parent", "name", "fid", "mode", "layout", "new_fid")}
            index = rep.remote_mdt
            if ops & _CREAT:                # it exists: open it there
                ops = (ops & ~_CREAT) | _OPEN
            rep = self.mdc(index).intent(ops, cred, check=check, fid=fid, **rest)
        return self._tag(rep, index)

    # ---- updates ------------------------------------------------------------------------

    def mkdir(self, parent: Fid, name: bytes, mode: int = 0o755, cred: Cred | None = None, **kw: Any) -> Any:
        return self.at(parent).mkdir(parent, name, mode, cred, **kw)

    def create(self, parent: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(parent).create(parent, *a, **kw)

    def symlink(self, parent: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(parent).symlink(parent, *a, **kw)

    def link(self, fid: Fid, parent: Fid, *a: Any, **kw: Any) -> Any:
        """To the directory's MDT, which carries a link to another MDT's file through."""
        return self.at(parent).link(fid, parent, *a, **kw)

    def unlink(self, parent: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(parent).unlink(parent, *a, **kw)

    def rmdir(self, parent: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(parent).rmdir(parent, *a, **kw)

    def rename(self, sp: Fid, sn: bytes, dp: Fid, *a: Any, **kw: Any) -> Any:
        """To the source directory's MDT, which carries a rename to another MDT's directory through."""
        return self.at(sp).rename(sp, sn, dp, *a, **kw)

    def setattr(self, fid: Fid, cred: Cred | None = None, **attrs: Any) -> Any:
        if attrs.get("open_handle"):
            attrs["open_handle"] = self._split(attrs["open_handle"])[1]
        return self.at(fid).setattr(fid, cred, **attrs)

    def setxattr(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).setxattr(fid, *a, **kw)

    def removexattr(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).removexattr(fid, *a, **kw)

    def reint(self, cred: Cred | None = None, **op: Any) -> Any:
        """A generic update: sent where its first FID (parent, or the object) lives."""
        for key in ("mkdir", "create", "symlink", "link", "unlink", "rmdir", "rename", "setattr", "setxattr",
                    "removexattr", "mirror"):
            body = op.get(key)
            if body is not None:
                for f in ("parent", "src_parent", "fid"):     # rename goes where its source is
                    if f in body.DESCRIPTOR.fields_by_name and body.HasField(f):
                        return self.at(fid_from_pb(getattr(body, f))).reint(cred, **op)
        return self.mdc0.reint(cred, **op)

    # ---- reads --------------------------------------------------------------------------

    def readdir(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).readdir(fid, *a, **kw)

    def listdir(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).listdir(fid, *a, **kw)

    def getxattr(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).getxattr(fid, *a, **kw)

    def listxattr(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).listxattr(fid, *a, **kw)

    def readlink(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self.at(fid).readlink(fid, *a, **kw)

    def capas(self, fid: Fid, write: bool) -> list[Capa]:
        return self.at(fid).capas(fid, write)

    def wbc_info(self, fid: Fid) -> Any:
        return self.at(fid).wbc_info(fid)

    def sync(self) -> int:
        out = 0
        for m in self.all():
            got = m.sync()
            if m is self.mdc0:
                out = got
        return out

    def close(self) -> None:
        for m in self.all():
            m.close()
