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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from lustrepy.client.mdc import Mdc, list_all
from lustrepy.common.capa import Capa
from lustrepy.common.dirhash import Stripes
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.fld import FldView
from lustrepy.common.protocol import IT
from lustrepy.common.records import Cred
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import check_rep, fid_from_pb
from lustrepy.rpc.dirwire import stripes_from_pb
from lustrepy.common.errors import from_wire
from lustrepy.rpc.fldwire import view_from_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

log = logging.getLogger(__name__)

HANDLE_SHIFT = 56           # an MDT's index in the top byte of the open handles it gives
COOKIE_SHIFT = 56           # a striped directory's stripe in the top bits of its readdir cookies
STRIPES_KEPT = 4096         # striped directories whose stripes a client remembers
_CREAT, _OPEN, _GETATTR = int(IT.CREAT), int(IT.OPEN), int(IT.GETATTR)


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


class _Striped:
    """What a client knows of a striped directory: its stripes and each one's last attributes."""

    __slots__ = ("stripes", "attrs")

    def __init__(self, stripes: Stripes, master: cpb.Attr) -> None:
        self.stripes = stripes
        self.attrs: list[cpb.Attr | None] = [None] * stripes.count
        self.attrs[0] = _copy(master)

    def merged(self) -> cpb.Attr:
        """The directory's attributes: links, size and blocks summed, the latest times."""
        a = _copy(self.attrs[0])
        for b in self.attrs[1:]:
            if b is None:
                continue
            a.nlink += max(0, b.nlink - 2)
            a.size += b.size
            a.blocks += b.blocks
            a.mtime_ns, a.ctime_ns = max(a.mtime_ns, b.mtime_ns), max(a.ctime_ns, b.ctime_ns)
            a.atime_ns = max(a.atime_ns, b.atime_ns)
        return a


def _copy(a: cpb.Attr | None) -> cpb.Attr:
    out = cpb.Attr()
    if a is not None:
        out.CopyFrom(a)
    return out


class Lmv:
    """Mdc's interface over the MDTs; attributes it does not route are MDT0's Mdc's."""

    def __init__(self, mdc0: Mdc, make: Callable[[str], Mdc]) -> None:
        self.mdc0 = mdc0
        self._make = make                   # a connected Mdc for an MDT's address
        self._mu = threading.Lock()
        self._mdcs: dict[int, Mdc] = {0: mdc0}
        self.view = FldView(())
        self.locks = LockView(self)
        self._stripes: OrderedDict[Fid, _Striped] = OrderedDict()   # under _mu

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
        if by_name:
            parent = kw["parent"]
            rep, index = self._named(parent, kw["name"], cred, lambda p: self._intent_at(ops, cred, check,
                                                                                      {**kw, "parent": p}))
        else:
            rep, index = self._intent_at(ops, cred, check, kw)
        if rep.HasField("stripes") and not rep.hdr.errno:
            self._merge(rep, cred)
        return rep

    def _intent_at(self, ops: int, cred: Cred | None, check: bool, kw: dict[str, Any]) -> tuple[mpb.IntentReply, int]:
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
        return self._tag(rep, index), index

    # ---- striped directories ----------------------------------------------------------------

    def stripes(self, fid: Fid) -> Stripes | None:
        """The stripes of a striped directory this client has heard of (None: plain, or not heard of)."""
        with self._mu:
            got = self._stripes.get(fid)
            if got is None:
                return None
            self._stripes.move_to_end(fid)
            return got.stripes

    def _keep(self, rep: Any) -> _Striped | None:
        """Remember the stripes a reply names (its attr is the master's as that MDT has it)."""
        if not rep.HasField("stripes") or len(rep.stripes.fids) < 2:
            return None
        try:
            s = stripes_from_pb(rep.stripes)
        except ValueError as e:
            raise LpError(errno.EPROTO, f"bad stripes from the MDS: {e}") from None
        with self._mu:
            got = self._stripes.get(s.fids[0])
            if got is None or got.stripes != s:
                got = self._stripes[s.fids[0]] = _Striped(s, rep.attr)
            else:
                got.attrs[0] = _copy(rep.attr)
            self._stripes.move_to_end(s.fids[0])
            while len(self._stripes) > STRIPES_KEPT:
                self._stripes.popitem(last=False)
        return got

    def _shard(self, parent: Fid, name: bytes) -> tuple[Fid, int]:
        s = self.stripes(parent)
        return (parent, 0) if s is None else (s.fids[s.index_of(name)], s.index_of(name))

    def _learn_stripes(self, fid: Fid, cred: Cred | None) -> None:
        m = self.at(fid)
        rep = m.intent(_GETATTR, cred, fid=fid)
        self._drop_lock(m, rep)
        if self._merge(rep, cred) is None:
            raise LpError(errno.EIO, f"MDT says {fid} is striped, but gives no stripes")

    @staticmethod
    def _drop_lock(m: Mdc, rep: Any) -> None:
        if rep.lock.cookie and m.locks is not None:
            m.locks.drop(rep.lock.cookie)

    def _named(self, parent: Fid, name: bytes, cred: Cred | None, fn: Callable[[Fid], Any], *,
               merge: bool = True) -> Any:
        """fn(the stripe of `parent` that holds `name`), asking for the stripes again when the
        MDT says the name belongs to another stripe (a directory striped since we last looked).
        The parent's attributes in the reply become the striped directory's (unless `merge` is
        False: a rename's reply speaks of its destination, merged by the inner call)."""
        for attempt in (0, 1):
            p, k = self._shard(parent, name)
            try:
                out = fn(p)
            except LpError as e:
                if e.errno != errno.EREMCHG or attempt:
                    raise
                self._learn_stripes(parent, cred)
                continue
            rep = out[0] if isinstance(out, tuple) else out
            if from_wire(rep.hdr.errno) == errno.EREMCHG and not attempt:
                self._learn_stripes(parent, cred)
                continue
            if merge and rep.HasField("parent_attr") and fid_from_pb(rep.parent_attr.fid) == p:
                with self._mu:
                    got = self._stripes.get(parent)
                    if got is not None:
                        got.attrs[k] = _copy(rep.parent_attr)
                        rep.parent_attr.CopyFrom(got.merged())
            return out
        raise AssertionError("unreachable")

    def _merge(self, rep: Any, cred: Cred | None) -> _Striped | None:
        """A striped directory's attributes are its stripes' together (links, size, times)."""
        got = self._keep(rep)
        if got is None:
            return None
        for k in range(1, got.stripes.count):
            self._reread(got, k, cred)
        with self._mu:
            rep.attr.CopyFrom(got.merged())
        return got

    def _reread(self, got: _Striped, k: int, cred: Cred | None) -> None:
        """Stripe k's attributes, from its MDT (the lock that comes with them is given back)."""
        m = self.mdc(got.stripes.mdts[k])
        r = m.intent(_GETATTR, cred, fid=got.stripes.fids[k])
        self._drop_lock(m, r)
        with self._mu:
            got.attrs[k] = _copy(r.attr)

    def _fan(self, fid: Fid, rep: Any, fn: Callable[[Mdc, Fid], Any]) -> Any:
        """Apply a change made to a striped directory's master to its other stripes (their
        owner, mode and ACLs rule who may make names in them); the reply's attributes become
        the directory's."""
        with self._mu:
            got = self._stripes.get(fid)
        if got is None:
            return rep
        s = got.stripes
        for k in range(1, s.count):
            r = fn(self.mdc(s.mdts[k]), s.fids[k])
            if r.HasField("attr") and r.attr.fid.seq:
                with self._mu:
                    got.attrs[k] = _copy(r.attr)
        if rep.HasField("attr") and rep.attr.fid.seq:
            with self._mu:
                got.attrs[0] = _copy(rep.attr)
                rep.attr.CopyFrom(got.merged())
        return rep

    # ---- updates ------------------------------------------------------------------------

    def mkdir(self, parent: Fid, name: bytes, mode: int = 0o755, cred: Cred | None = None, **kw: Any) -> Any:
        rep = self._named(parent, name, cred, lambda p: self.at(p).mkdir(p, name, mode, cred, **kw))
        self._keep(rep)
        return rep

    def create(self, parent: Fid, name: bytes, *a: Any, **kw: Any) -> Any:
        return self._named(parent, name, kw.get("cred"), lambda p: self.at(p).create(p, name, *a, **kw))

    def symlink(self, parent: Fid, name: bytes, *a: Any, **kw: Any) -> Any:
        return self._named(parent, name, kw.get("cred"), lambda p: self.at(p).symlink(p, name, *a, **kw))

    def link(self, fid: Fid, parent: Fid, name: bytes, *a: Any, **kw: Any) -> Any:
        """To the directory's MDT, which carries a link to another MDT's file through."""
        return self._named(parent, name, kw.get("cred"), lambda p: self.at(p).link(fid, p, name, *a, **kw))

    def unlink(self, parent: Fid, name: bytes, *a: Any, **kw: Any) -> Any:
        return self._named(parent, name, kw.get("cred"), lambda p: self.at(p).unlink(p, name, *a, **kw))

    def rmdir(self, parent: Fid, name: bytes, *a: Any, **kw: Any) -> Any:
        return self._named(parent, name, kw.get("cred"), lambda p: self.at(p).rmdir(p, name, *a, **kw))

    def rename(self, sp: Fid, sn: bytes, dp: Fid, dn: bytes, *a: Any, **kw: Any) -> Any:
        """To the source directory's MDT, which carries a rename to another MDT's directory through."""
        cred = kw.get("cred")
        rep = self._named(sp, sn, cred, lambda s: self._named(
            dp, dn, cred, lambda d: self.at(s).rename(s, sn, d, dn, *a, **kw)), merge=False)
        with self._mu:
            got = self._stripes.get(sp)
        if got is not None:             # both stripes changed (links, times): the directory's now
            ks, kd = got.stripes.index_of(sn), got.stripes.index_of(dn)
            if sp != dp or ks != kd:    # (one stripe: its reply said it)
                for k in {ks, kd} if sp == dp else {ks}:
                    self._reread(got, k, cred)
            if sp == dp:
                with self._mu:
                    rep.parent_attr.CopyFrom(got.merged())
        return rep

    def setattr(self, fid: Fid, cred: Cred | None = None, **attrs: Any) -> Any:
        if attrs.get("open_handle"):
            attrs["open_handle"] = self._split(attrs["open_handle"])[1]
        rep = self.at(fid).setattr(fid, cred, **attrs)
        return self._fan(fid, rep, lambda m, f: m.setattr(f, cred, **{k: v for k, v in attrs.items()
                                                                      if k != "open_handle"}))

    def setxattr(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self._fan(fid, self.at(fid).setxattr(fid, *a, **kw), lambda m, f: m.setxattr(f, *a, **kw))

    def removexattr(self, fid: Fid, *a: Any, **kw: Any) -> Any:
        return self._fan(fid, self.at(fid).removexattr(fid, *a, **kw), lambda m, f: m.removexattr(f, *a, **kw))

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

    def readdir(self, fid: Fid, cookie: int = 0, max_entries: int = 1024, with_attrs: bool = False,
                cred: Cred | None = None) -> mpb.ReaddirReply:
        """A striped directory lists its stripes one after the other, each entry's cookie
        carrying its stripe in the top bits (a stable order across calls)."""
        s = self.stripes(fid)
        if s is None:
            return self.at(fid).readdir(fid, cookie, max_entries, with_attrs, cred)
        k, c = cookie >> COOKIE_SHIFT, cookie & ((1 << COOKIE_SHIFT) - 1)
        while k < s.count:
            rep = self.mdc(s.mdts[k]).readdir(s.fids[k], c, max_entries, with_attrs, cred)
            for e in rep.entries:
                if e.cookie >> COOKIE_SHIFT:
                    raise LpError(errno.EOVERFLOW, f"directory cookie {e.cookie:#x} too large for a stripe")
                e.cookie |= k << COOKIE_SHIFT
            if rep.entries:
                rep.eof = rep.eof and k == s.count - 1
                return rep
            k, c = k + 1, 0
        return mpb.ReaddirReply(eof=True)

    def listdir(self, fid: Fid, cred: Cred | None = None) -> list[mpb.DirEntry]:
        return list_all(self.readdir, fid, cred)

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
