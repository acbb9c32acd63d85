"""Intent execution: a lock request that says what the client means to do.

LOOKUP/GETATTR, OPEN, OPEN|CREAT and LAYOUT each return the lock and the
result in one reply. The MDS takes the lock for the client, executes the
intent under it, and re-checks that the name still binds to the FID it
locked (a rename may have raced with the lookup). A failed lookup by name
returns a PR UPDATE lock on the parent, under which the client may cache the
negative entry.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Callable

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.names import check_name
from lustrepy.common.protocol import DISP, IT, IT_MODIFYING, SA, check_bits
from lustrepy.common.records import Attr, Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.wire import mode_from_pb
from lustrepy.common import perm
from lustrepy.mds import remote
from lustrepy.mds.namespace import Tx
from lustrepy.mds.records import SetAttr
from lustrepy.mds.wire import add_stripes, attr_pb, new_file_pb
from lustrepy.rpc.convert import fid_from_pb, layout_from_pb, layout_to_pb, rep_err, rep_ok
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

Encode = Callable[[mpb.IntentReply, int], bytes]

DEFAULT_BITS = int(IBit.LOOKUP | IBit.UPDATE | IBit.PERM)
# Plain ints on the request path: an IntFlag operation costs about 60 times an int's.
_UPDATE, _LAYOUT, _PERM = int(IBit.UPDATE), int(IBit.LAYOUT), int(IBit.PERM)
_NEW_FILE_BITS = DEFAULT_BITS | int(IBit.LAYOUT | IBit.XATTR)
_IT_OPEN, _IT_CREAT, _IT_LAYOUT = int(IT.OPEN), int(IT.CREAT), int(IT.LAYOUT)
_IT_WITH_LAYOUT = int(IT.OPEN | IT.LAYOUT | IT.CREAT)
_IT_LOOKS = int(IT.LOOKUP | IT.GETATTR | IT.READDIR)
_NEG = int(DISP.LOOKUP_EXECD | DISP.LOOKUP_NEG)
_POS = int(DISP.LOOKUP_EXECD | DISP.LOOKUP_POS)
_POS_OPENED = int(DISP.LOOKUP_EXECD | DISP.LOOKUP_POS | DISP.OPEN_OPEN)
_CREATED = int(DISP.LOOKUP_EXECD | DISP.LOOKUP_NEG | DISP.OPEN_CREATE | DISP.OPEN_OPEN)
# Lustre's O_LOV_DELAY_CREATE is O_NOCTTY|O_ASYNC; FUSE passes O_ASYNC on: create without
# objects, so `lfs setstripe`-style tools can set the layout before the first write.
O_LOV_DELAY_CREATE = os.O_ASYNC
_RETRIES = 4


def is_modifying(req: mpb.IntentRequest) -> bool:
    return bool(req.ops & IT_MODIFYING)


def check_wire_values(req: mpb.IntentRequest) -> None:
    """EINVAL for an intent op, inode bit or lock mode the protocol does not define."""
    check_bits(IT, req.ops, "intent op")
    check_bits(IBit, req.ibits, "inode")
    if req.lock_mode:
        mode_from_pb(req.lock_mode)


def may_open(attr: Attr, cred: Cred, flags: int) -> None:
    """POSIX open permission and type checks for an existing inode."""
    acc = flags & os.O_ACCMODE
    if stat.S_ISDIR(attr.mode) and (acc != os.O_RDONLY or flags & os.O_TRUNC):
        raise LpError(errno.EISDIR, "is a directory")
    if flags & os.O_DIRECTORY and not stat.S_ISDIR(attr.mode):
        raise LpError(errno.ENOTDIR, "not a directory")
    want = 0
    if acc in (os.O_RDONLY, os.O_RDWR):
        want |= perm.R
    if acc in (os.O_WRONLY, os.O_RDWR) or flags & os.O_TRUNC:
        want |= perm.W
    perm.require(cred, attr, want)


def _bits(req: mpb.IntentRequest, attr: Attr) -> int:
    bits = req.ibits or DEFAULT_BITS
    if stat.S_ISREG(attr.mode) and req.ops & _IT_WITH_LAYOUT:
        bits |= _LAYOUT
    return bits


def _mode(req: mpb.IntentRequest) -> LockMode:
    return mode_from_pb(req.lock_mode) if req.lock_mode else LockMode.PR


def _resolve(tx: Tx, cred: Cred, req: mpb.IntentRequest) -> Attr:
    if req.name:
        return tx.lookup(cred, fid_from_pb(req.parent), req.name)
    return tx.getattr(fid_from_pb(req.fid))


def _reply(tx: Tx, attr: Attr, disposition: int, with_layout: bool) -> mpb.IntentReply:
    rep = mpb.IntentReply(hdr=rep_ok(), disposition=disposition, attr=attr_pb(tx, attr))
    if with_layout and stat.S_ISREG(attr.mode):
        _add_layout(rep, tx.get_layout(attr.fid))
    add_stripes(tx, attr, rep)
    return rep


def _add_layout(rep: mpb.IntentReply, lo: Layout | None) -> None:
    if lo is not None:
        rep.layout.CopyFrom(layout_to_pb(lo))
        rep.has_layout = True


def _locked(mdt: Mdt, client_id: str, cred: Cred, req: mpb.IntentRequest,
            finish: Callable[[Attr], mpb.IntentReply]) -> mpb.IntentReply:
    """Resolve, lock the child for the client, re-check the binding, then finish under the lock."""
    for _ in range(_RETRIES):
        try:
            attr = _resolve(mdt.store.read(), cred, req)
        except LpError as e:
            if e.errno != errno.ENOENT or not req.name:
                raise
            parent = fid_from_pb(req.parent)
            if mdt.wbc.contended(parent):
                # Under contention the next create there would call this lock back at once:
                # the client keeps no negative entry (Lustre's lockless mode for contended resources).
                return mpb.IntentReply(hdr=rep_err(e), disposition=_NEG)
            lock = mdt.locks.grant(client_id, parent, LockMode.PR, _UPDATE)
            rep = mpb.IntentReply(hdr=rep_err(e), disposition=_NEG, lock=lock)
            return rep
        bits = _bits(req, attr)
        if bits & _UPDATE and stat.S_ISDIR(attr.mode) and mdt.wbc.contended(attr.fid):
            # clients take turns creating there: an UPDATE lock would be called back by the next
            # create; its attributes go uncached instead (one getattr, no callback per create)
            bits = bits & ~_UPDATE or int(IBit.LOOKUP)
        lock = mdt.locks.grant(client_id, attr.fid, _mode(req), bits)
        try:
            again = _resolve(mdt.store.read(), cred, req)
        except LpError:
            mdt.locks.cancel(client_id, lock.cookie)
            continue
        if again.fid != attr.fid:
            mdt.locks.cancel(client_id, lock.cookie)
            continue
        try:
            rep = finish(again)
        except BaseException:
            mdt.locks.cancel(client_id, lock.cookie)
            raise
        rep.lock.CopyFrom(lock)
        return rep
    raise LpError(errno.EAGAIN, "name changed repeatedly during lookup")


def execute(mdt: Mdt, req: mpb.IntentRequest, cred: Cred, client_id: str, encode: Encode) -> mpb.IntentReply:
    check_wire_values(req)
    if req.name:
        check_name(req.name)
        # Another client's WBC records may change this name: they reach the MDS first.
        mdt.wbc.revoke_for(client_id, fid_from_pb(req.parent))
    ops = req.ops
    if req.name and mdt.mdts.several and ops & (_IT_CREAT | _IT_OPEN | _IT_LOOKS):
        stub = mdt.store.peek(lambda tx: remote.named_remote(tx, cred, fid_from_pb(req.parent), req.name))
        if stub is not None:            # no lock: the client asks the inode's MDT for the rest
            a, where = stub
            if ops & _IT_CREAT and req.open_flags & os.O_EXCL:
                raise LpError(errno.EEXIST, f"{req.name!r} exists")
            return mpb.IntentReply(hdr=rep_ok(), disposition=_POS, attr=attr_pb(mdt.store.read(), a),
                                   remote=True, remote_mdt=where)
    if ops & _IT_CREAT:
        return _open_create(mdt, req, cred, client_id, encode)
    if ops & _IT_OPEN:
        return _open(mdt, req, cred, client_id, encode)
    if ops & _IT_LAYOUT:
        return _layout(mdt, req, cred, client_id, encode)
    if ops & _IT_LOOKS:
        with_layout = bool(req.ibits & _LAYOUT)
        return _locked(mdt, client_id, cred, req,
                       lambda a: _reply(mdt.store.read(), a, _POS, with_layout))
    raise LpError(errno.EINVAL, f"intent names no known operation (ops={ops:#x})")


def _writer(flags: int) -> bool:
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR) or bool(flags & os.O_TRUNC)


def _open_existing(tx: Tx, cred: Cred, attr: Attr, client_id: str, flags: int) -> int:
    """Open an existing inode (permissions checked): the handle. O_TRUNC of a regular file
    sets its size to 0 and its mtime and ctime to now in the same transaction, through the
    new handle (as Linux's open does: no second permission check); the client cuts the
    objects next, under its extent locks."""
    writer = stat.S_ISREG(attr.mode) and _writer(flags)
    handle = tx.open(attr.fid, client_id, writer=writer)
    if writer and flags & os.O_TRUNC:
        tx.setattr(cred, attr.fid, SetAttr(valid=SA.SIZE, size=0, open_handle=handle))
    return handle


def _open(mdt: Mdt, req: mpb.IntentRequest, cred: Cred, client_id: str, encode: Encode) -> mpb.IntentReply:
    def finish(attr: Attr) -> mpb.IntentReply:
        may_open(attr, cred, req.open_flags)
        writer = stat.S_ISREG(attr.mode) and _writer(req.open_flags)
        if writer or req.open_flags & os.O_TRUNC:
            mdt.nodemap.check_writable(client_id)

        def fn(tx: Tx) -> mpb.IntentReply:
            handle = _open_existing(tx, cred, attr, client_id, req.open_flags)
            rep = _reply(tx, tx.getattr(attr.fid), _POS_OPENED, True)
            rep.open_handle = handle
            return rep

        if not writer:
            return mdt.store.write(fn, client_id=client_id, xid=req.hdr.xid, encode=encode)[0]
        # a writer makes other clients' cached sizes stale: call their attribute locks back
        with mdt.locks.update([(attr.fid, _UPDATE)], on_behalf=client_id):
            return mdt.store.write(fn, client_id=client_id, xid=req.hdr.xid, encode=encode)[0]

    return _locked(mdt, client_id, cred, req, finish)


def _requested_layout(mdt: Mdt, req: mpb.IntentRequest) -> Layout | None:
    if not req.has_layout:
        return None
    lo = layout_from_pb(req.layout)
    mdt.check_layout(lo)
    return Layout(lo.stripe_size, lo.stripe_count, lo.stripe_offset, lo.pattern)


def _open_create(mdt: Mdt, req: mpb.IntentRequest, cred: Cred, client_id: str,
                 encode: Encode) -> mpb.IntentReply:
    if not req.name:
        raise LpError(errno.EINVAL, "create needs a parent and a name")
    flags = req.open_flags
    parent = fid_from_pb(req.parent)
    mdt.wbc.track(parent, client_id)
    if mdt.store.peek(lambda tx: tx.find(cred, parent, req.name)) is not None:
        if flags & os.O_EXCL:
            raise LpError(errno.EEXIST, "file exists")
        return _open(mdt, req, cred, client_id, encode)
    mdt.nodemap.check_writable(client_id)
    mode = req.create_mode or 0o644
    if not stat.S_IFMT(mode):
        mode |= stat.S_IFREG
    if not stat.S_ISREG(mode):
        raise LpError(errno.EINVAL, "open(O_CREAT) creates regular files only")
    requested = _requested_layout(mdt, req)
    new_fid: Fid | None = fid_from_pb(req.new_fid) if req.HasField("new_fid") else None
    if new_fid is not None and new_fid.is_zero():
        new_fid = None

    def fn(tx: Tx) -> mpb.IntentReply:
        attr = tx.find(cred, parent, req.name)
        if attr is not None:            # created by someone else meanwhile
            if flags & os.O_EXCL:
                raise LpError(errno.EEXIST, "file exists")
            may_open(attr, cred, flags)
            if _writer(flags):
                mdt.nodemap.check_writable(client_id)
            handle = _open_existing(tx, cred, attr, client_id, flags)
            rep = _reply(tx, tx.getattr(attr.fid), _POS_OPENED, True)
            rep.open_handle = handle
            return rep
        delay = flags & O_LOV_DELAY_CREATE and requested is None
        lo = None if delay else mdt.allocate(tx, requested or tx.default_layout(parent))
        attr = tx.create(cred, parent, req.name, mode, 0, fid=new_fid, layout=lo)
        writer = _writer(flags)
        handle = tx.open(attr.fid, client_id, writer=writer)
        rep = mpb.IntentReply(hdr=rep_ok(), disposition=_CREATED, attr=new_file_pb(attr, writer=writer))
        _add_layout(rep, lo)            # as stored
        rep.open_handle = handle
        rep.parent_attr.CopyFrom(attr_pb(tx, tx.getattr(parent)))
        return rep

    # Out of contention, also the PERM bits: a lock given while it was contended (no UPDATE bit,
    # see _locked) is called back then, so that a client left alone there gets its WBC grant.
    bits = _UPDATE if mdt.wbc.contended(parent) else _UPDATE | _PERM
    with mdt.locks.update(mdt.wbc.outside(client_id, [(parent, bits)]), on_behalf=client_id):
        rep, _ = mdt.write_with_objects(fn, client_id=client_id, xid=req.hdr.xid, encode=encode)
    child = fid_from_pb(rep.attr.fid)
    rep.lock.CopyFrom(mdt.locks.grant(client_id, child, LockMode.PR, _NEW_FILE_BITS))
    if req.want_wbc:
        wbc = mdt.wbc.try_grant(client_id, parent)
        if wbc is not None:
            rep.wbc_lock.CopyFrom(wbc)
    return rep


def _layout(mdt: Mdt, req: mpb.IntentRequest, cred: Cred, client_id: str, encode: Encode) -> mpb.IntentReply:
    requested = _requested_layout(mdt, req)
    default_from = fid_from_pb(req.parent) if req.HasField("parent") and req.parent.seq else mdt.root

    def finish(attr: Attr) -> mpb.IntentReply:
        def fn(tx: Tx) -> mpb.IntentReply:
            a = tx.getattr(attr.fid)
            if stat.S_ISREG(a.mode) and tx.get_layout(a.fid) is None:
                perm.require(cred, a, perm.W)
                from_dir = tx.layout_dir(a.fid, default_from)
                tx.set_layout(a.fid, mdt.allocate(tx, requested or tx.default_layout(from_dir), a.fid))
            return _reply(tx, tx.getattr(a.fid), _POS, True)

        return mdt.write_with_objects(fn, client_id=client_id, xid=req.hdr.xid, encode=encode)[0]

    req.ibits |= _LAYOUT
    return _locked(mdt, client_id, cred, req, finish)
