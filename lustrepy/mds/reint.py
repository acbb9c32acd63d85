"""Reint: namespace updates sent as single requests, executed and committed atomically.

mkdir, mknod/create, symlink, link, unlink, rmdir, rename, setattr,
setxattr/removexattr. Each runs as one store transaction (with its reply
row, so a resend is answered, never re-executed) while the MDS holds EX
locks on every inode whose cached state the update changes. The layout
xattr `lustrepy.lov` is served here too: on a directory it is the default
layout for new files, on a regular file without objects it allocates them.
run() is the one way an update executes: replay.py replays a client's
update records (write-back cache) through it as well.
"""

from __future__ import annotations

import errno
import stat
import time
from typing import TYPE_CHECKING, Any, Callable

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.dirhash import DMV_XATTR, decode_default
from lustrepy.common.layout import LOV_XATTR, decode_lov, lov_names_objects
from lustrepy.common.names import check_name, check_symlink_target, check_xattr
from lustrepy.common.protocol import RENAME, SA, XATTR, check_bits
from lustrepy.common.records import Attr, Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.ldlm.modes import LockMode
from lustrepy.mds import dirstripe, mirrors, remote
from lustrepy.mds.locking import ALL_BUT_OPEN
from lustrepy.mds.namespace import SetAttr, Tx
from lustrepy.mds.wire import add_stripes, attr_pb
from lustrepy.rpc.convert import fid_from_pb, layout_from_pb, layout_to_pb, rep_ok
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

_RETRIES = 4
_REPLAY_CLIMB = 5.0     # seconds a replayed record's move may spend gathering ancestors over the MDTs
CREATORS = ("create", "mkdir", "symlink")


class _Moved(Exception):
    """A name no longer binds to the FID locked for it; take the locks again."""


def _fid(m: cpb.Fid) -> Fid | None:
    f = fid_from_pb(m)
    return None if f.is_zero() else f


def _child(mdt: Mdt, cred: Cred, parent: Fid, name: bytes) -> Fid | None:
    try:
        return mdt.store.read().lookup(cred, parent, name).fid
    except LpError as e:
        if e.errno == errno.ENOENT:
            return None
        raise


def _expect(tx: Tx, cred: Cred, parent: Fid, name: bytes, fid: Fid | None) -> None:
    """Inside the transaction: the binding must still be what was locked."""
    try:
        now = tx.lookup(cred, parent, name).fid
    except LpError as e:
        if e.errno != errno.ENOENT:
            raise
        now = None
    if now != fid:
        raise _Moved()


def _reply(attr: Attr | None, tx: Tx, with_layout: bool = True) -> mpb.ReintReply:
    rep = mpb.ReintReply(hdr=rep_ok())
    if attr is not None:
        rep.attr.CopyFrom(attr_pb(tx, attr))
        add_stripes(tx, attr, rep)
        if with_layout and stat.S_ISREG(attr.mode):
            lo = tx.get_layout(attr.fid)
            if lo is not None:
                rep.layout.CopyFrom(layout_to_pb(lo))
                rep.has_layout = True
    return rep


TxFn = Callable[[Tx], mpb.ReintReply]
Locks = list[tuple[Fid | None, int]]
# a handler: the locks an update takes, and the transaction that makes it
Handler = Callable[["Mdt", Any, Cred], tuple[Locks, TxFn]]


def execute(mdt: Mdt, req: mpb.ReintRequest, cred: Cred, client_id: str,
            encode: Callable[[mpb.ReintReply, int], bytes]) -> mpb.ReintReply:
    """The Reint RPC: run the update with its reply row, then lock a new object for the client."""
    kind, rep, _ = run(mdt, req.op, cred, client_id, xid=req.hdr.xid, encode=encode)
    # Objects of removed files are destroyed by osp's next round (every half second), in
    # batches: waking it per unlink would cost an OSS RPC and a transaction per file.
    # A directory made on another MDT is locked there (its attributes change there).
    if kind in CREATORS and rep.attr.fid.seq and not _elsewhere(mdt, req.op):
        # nobody else can hold a lock on a new object: the grant is immediate
        bits = IBit.LOOKUP | IBit.UPDATE | IBit.PERM | IBit.XATTR | (IBit.LAYOUT if stat.S_ISREG(rep.attr.mode) else 0)
        rep.lock.CopyFrom(mdt.locks.grant(client_id, fid_from_pb(rep.attr.fid), LockMode.PR, bits))
    return rep


def run(mdt: Mdt, op: mpb.ReintOp, cred: Cred, client_id: str, *, xid: int = 0,
        encode: Callable[[mpb.ReintReply, int], bytes] | None = None, now_ns: int = 0,
        wrap: Callable[[TxFn], TxFn] | None = None, replayed: bool = False) -> tuple[str, mpb.ReintReply, int]:
    """Execute one update for `client_id` as one transaction: the Reint RPC and the replay of
    update records both come here.

    The MDS holds EX locks on what the update changes, taken on behalf of the client (its own
    locks are not called back). The transaction sets the times now_ns (0: the clock now); with
    encode, it saves the reply to (client_id, xid). `wrap` may add steps to the transaction,
    which commit or roll back with the update. Returns (operation kind, reply, transno). With
    several MDTs, a rename moving a directory to another parent holds the rename lock (a
    `replayed` record's does not: mds/dnetree.py says why) and checks the new parent's ancestors
    over every MDT.
    """
    kind = op.WhichOneof("op")
    if kind is None:
        raise LpError(errno.EINVAL, "reint carries no operation")
    body = getattr(op, kind)
    handler = _HANDLERS[kind]
    parent = _parent_of(kind, body)
    across = _across(mdt, kind, body, cred)
    if across is not None:
        assert parent is not None
        finish = _finisher(parent, wrap)
        got = mdt.dne.resumed(client_id, xid, finish, encode)      # a resend of a logged operation
        return (kind, *(got if got is not None else across(cred, client_id, xid, finish, encode)))

    def here(climbed: dict[Fid, frozenset[Fid]]) -> tuple[mpb.ReintReply, int]:
        return _run_here(mdt, handler, body, cred, client_id, xid, encode, now_ns, wrap, parent, climbed)
    moving = None if kind != "rename" or not mdt.mdts.several else _moving_dir(mdt, body, cred)
    if moving is not None:
        sp, dp = fid_from_pb(body.src_parent), fid_from_pb(body.dst_parent)
        if replayed:
            return kind, *here(mdt.dne.climbed_now(sp, dp, moving, time.monotonic() + _REPLAY_CLIMB))
        return kind, *mdt.dne.move_here(sp, dp, moving, here, time.monotonic() + mdt.cfg.dne_wait)
    out = here({})
    if kind == "setattr" and body.valid & (SA.UID | SA.GID) and mdt.mdts.several:
        mdt.dne.wake()                      # its names on other MDTs take the new owner (remote.owner_changed)
    return kind, *out


def _moving_dir(mdt: Mdt, body: mpb.RenameOp, cred: Cred) -> bool | None:
    """Does this rename move a directory to another parent? (None: no; else whether a directory
    moves the other way too, an exchange.) Errors are left to the rename itself."""
    sp, dp = fid_from_pb(body.src_parent), fid_from_pb(body.dst_parent)
    if sp == dp:
        return None

    def isdir(parent: Fid, name: bytes) -> bool:
        try:
            return stat.S_ISDIR(mdt.store.read().lookup(cred, parent, name).mode)
        except LpError:
            return False
    there = bool(body.flags & RENAME.EXCHANGE) and isdir(dp, body.dst_name)
    return there if isdir(sp, body.src_name) or there else None


def _run_here(mdt: Mdt, handler: Handler, body: Any, cred: Cred, client_id: str, xid: int,
              encode: Callable[[mpb.ReintReply, int], bytes] | None, now_ns: int,
              wrap: Callable[[TxFn], TxFn] | None, parent: Fid | None,
              climbed: dict[Fid, frozenset[Fid]]) -> tuple[mpb.ReintReply, int]:
    """run() of an update of this MDT alone: locks, then one transaction, again when a name
    moved meanwhile."""
    for _ in range(_RETRIES):
        locks, fn = handler(mdt, body, cred)
        if parent is not None:
            fn = _with_parent(fn, parent)
        if wrap is not None:
            fn = wrap(fn)
        if climbed:
            fn = _knowing(fn, climbed)
        try:
            with mdt.locks.update(mdt.wbc.outside(client_id, locks), on_behalf=client_id):
                rep, transno = mdt.write_with_objects(fn, client_id=client_id, xid=xid, encode=encode,
                                                      now_ns=now_ns)
        except _Moved:
            continue
        return rep, transno
    raise LpError(errno.EAGAIN, "names changed repeatedly during the update")


def _knowing(fn: TxFn, climbed: dict[Fid, frozenset[Fid]]) -> TxFn:
    def known(tx: Tx) -> mpb.ReintReply:
        tx.climbed = climbed
        return fn(tx)
    return known


def _elsewhere(mdt: Mdt, op: mpb.ReintOp) -> bool:
    return op.WhichOneof("op") == "mkdir" and op.mkdir.remote and op.mkdir.mdt_index != mdt.index


def _across(mdt: Mdt, kind: str, body: Any, cred: Cred) -> Callable[..., tuple[mpb.ReintReply, int]] | None:
    """The operation across MDTs this update is (mds/dne.py), or None for a local one."""
    if kind == "mkdir" and body.remote and body.mdt_index != mdt.index:
        parent = fid_from_pb(body.parent)
        return lambda c, cid, xid, fin, enc: mdt.dne.mkdir(c, cid, xid, parent, body.name, body.mode,
                                                           body.mdt_index, fin, enc)
    if kind == "mkdir" and body.stripe_count > 1:
        parent = fid_from_pb(body.parent)
        return lambda c, cid, xid, fin, enc: mdt.dne.mkdir_striped(c, cid, xid, parent, body.name, body.mode,
                                                                   body.stripe_count, body.stripe_hash, fin, enc)
    if not mdt.mdts.several:
        return None
    if kind == "mkdir" and not body.remote and not body.stripe_count:      # the parent's default striping
        parent = fid_from_pb(body.parent)
        default = mdt.store.peek(lambda tx: dirstripe.default_of(tx, parent))
        if default is not None and default[0] > 1:
            return lambda c, cid, xid, fin, enc: mdt.dne.mkdir_striped(c, cid, xid, parent, body.name, body.mode,
                                                                       default[0], default[1], fin, enc,
                                                                       inherit=default)
    if kind in ("rmdir", "unlink"):
        parent = fid_from_pb(body.parent)
        try:
            stub = mdt.store.peek(lambda tx: remote.named_remote(tx, cred, parent, body.name))
            striped = None if stub is not None or kind == "unlink" else mdt.store.peek(
                lambda tx: dirstripe.check_remove(tx, cred, parent, body.name))
        except LpError:
            return None         # the local path says what is wrong
        if striped is not None:
            fid = striped[0]
            return lambda c, cid, xid, fin, enc: mdt.dne.rmdir_striped(c, cid, xid, parent, body.name, fid, fin, enc)
        if stub is None:
            return None
        if kind == "rmdir":
            return lambda c, cid, xid, fin, enc: mdt.dne.rmdir(c, cid, xid, parent, body.name, fin, enc)
        return lambda c, cid, xid, fin, enc: mdt.dne.unlink(c, cid, xid, parent, body.name, fin, enc)
    if kind == "link":
        fid, parent = fid_from_pb(body.fid), fid_from_pb(body.parent)
        if mdt.dne.mdt_of(fid) != mdt.index:
            return lambda c, cid, xid, fin, enc: mdt.dne.link(c, cid, xid, fid, parent, body.name, fin, enc)
    if kind == "rename":
        sp, dp = fid_from_pb(body.src_parent), fid_from_pb(body.dst_parent)
        if mdt.dne.mdt_of(dp) != mdt.index or _names_stub(mdt, cred, (sp, body.src_name), (dp, body.dst_name)):
            return lambda c, cid, xid, fin, enc: mdt.dne.rename(c, cid, xid, sp, body.src_name, dp, body.dst_name,
                                                                body.flags, fin, enc)
    return None


def _names_stub(mdt: Mdt, cred: Cred, *names: tuple[Fid, bytes]) -> bool:
    """Does one of the names bind an inode of another MDT (whose names must change there too)?"""
    def any_stub(tx: Tx) -> bool:
        return any(remote.named_remote(tx, cred, p, n) is not None for p, n in names)
    try:
        return bool(mdt.store.peek(any_stub))
    except LpError:
        return False            # the local path says what is wrong


def _finisher(parent: Fid, wrap: Callable[[TxFn], TxFn] | None
              ) -> Callable[[Tx, Attr | cpb.Attr | None], mpb.ReintReply]:
    """The reply of an operation across MDTs, made in the coordinator's last transaction."""
    def finish(tx: Tx, attr: Attr | cpb.Attr | None) -> mpb.ReintReply:
        def base(t: Tx) -> mpb.ReintReply:
            if isinstance(attr, cpb.Attr):      # as the inode's MDT answered
                return mpb.ReintReply(hdr=rep_ok(), attr=attr)
            return _reply(attr, t, with_layout=False)
        fn: TxFn = base
        if _ours(tx, parent):           # not a rename's destination on another MDT
            fn = _with_parent(fn, parent)
        return (wrap(fn) if wrap is not None else fn)(tx)
    return finish


def _ours(tx: Tx, fid: Fid) -> bool:
    """Is `fid` an inode of this MDT (not a stub of another's, not unknown)?"""
    try:
        return remote.remote_mdt(tx, fid) is None
    except LpError:
        return False


def _parent_of(kind: str, op: Any) -> Fid | None:
    if kind in ("create", "mkdir", "symlink", "link", "unlink", "rmdir"):
        return fid_from_pb(op.parent)
    if kind == "rename":
        return fid_from_pb(op.dst_parent)
    return None


def _with_parent(fn: TxFn, parent: Fid) -> TxFn:
    """Make the reply carry the parent's attributes as the update left them."""
    def wrapped(tx: Tx) -> mpb.ReintReply:
        rep = fn(tx)
        rep.parent_attr.CopyFrom(attr_pb(tx, tx.getattr(parent)))
        return rep
    return wrapped


def _create(mdt: Mdt, op: mpb.CreateOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_name(op.name)
    parent = fid_from_pb(op.parent)
    mode = op.mode if stat.S_IFMT(op.mode) else op.mode | stat.S_IFREG
    requested = None
    if op.has_layout:
        lo = layout_from_pb(op.layout)
        mdt.check_layout(lo)
        requested = lo

    def fn(tx: Tx) -> mpb.ReintReply:
        lo = None
        if stat.S_ISREG(mode) and not op.delay_layout:
            lo = mdt.allocate(tx, requested or tx.default_layout(parent), _fid(op.fid))
        return _reply(tx.create(cred, parent, op.name, mode, op.rdev, fid=_fid(op.fid), layout=lo), tx)

    return [(parent, IBit.UPDATE)], fn


def _mkdir(mdt: Mdt, op: mpb.MkdirOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_name(op.name)
    parent = fid_from_pb(op.parent)
    return [(parent, IBit.UPDATE)], lambda tx: _reply(tx.mkdir(cred, parent, op.name, op.mode, fid=_fid(op.fid)), tx)


def _symlink(mdt: Mdt, op: mpb.SymlinkOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_name(op.name)
    check_symlink_target(op.target)
    parent = fid_from_pb(op.parent)
    return [(parent, IBit.UPDATE)], lambda tx: _reply(
        tx.symlink(cred, parent, op.name, op.target, fid=_fid(op.fid)), tx)


def _link(mdt: Mdt, op: mpb.LinkOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_name(op.name)
    parent, fid = fid_from_pb(op.parent), fid_from_pb(op.fid)
    return [(parent, IBit.UPDATE), (fid, IBit.UPDATE)], lambda tx: _reply(tx.link(cred, fid, parent, op.name), tx)


def _unlink(mdt: Mdt, op: mpb.UnlinkOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_name(op.name)
    parent = fid_from_pb(op.parent)
    child = _child(mdt, cred, parent, op.name)

    def fn(tx: Tx) -> mpb.ReintReply:
        _expect(tx, cred, parent, op.name, child)
        return _reply(tx.unlink(cred, parent, op.name).attr, tx, with_layout=False)

    return [(parent, IBit.UPDATE), (child, ALL_BUT_OPEN)], fn


def _rmdir(mdt: Mdt, op: mpb.RmdirOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_name(op.name)
    parent = fid_from_pb(op.parent)
    child = _child(mdt, cred, parent, op.name)

    def fn(tx: Tx) -> mpb.ReintReply:
        _expect(tx, cred, parent, op.name, child)
        return _reply(tx.rmdir(cred, parent, op.name), tx)

    return [(parent, IBit.UPDATE), (child, ALL_BUT_OPEN)], fn


def _rename(mdt: Mdt, op: mpb.RenameOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_bits(RENAME, op.flags, "rename flag")
    check_name(op.src_name)
    check_name(op.dst_name)
    sp, dp = fid_from_pb(op.src_parent), fid_from_pb(op.dst_parent)
    src = _child(mdt, cred, sp, op.src_name)
    dst = _child(mdt, cred, dp, op.dst_name)
    if mdt.mdts.several and mdt.store.peek(lambda tx: any(remote.remote_mdt(tx, f) is not None
                                                          for f in (src, dst) if f is not None)):
        raise LpError(errno.EAGAIN, "a name of the rename binds another MDT's inode by now; try again")

    def fn(tx: Tx) -> mpb.ReintReply:
        _expect(tx, cred, sp, op.src_name, src)
        _expect(tx, cred, dp, op.dst_name, dst)
        tx.rename(cred, sp, op.src_name, dp, op.dst_name, op.flags)
        return _reply(tx.getattr(src) if src is not None else None, tx)

    locks: Locks = [(sp, IBit.UPDATE), (dp, IBit.UPDATE), (src, IBit.LOOKUP | IBit.UPDATE),
             (dst, IBit.LOOKUP | IBit.UPDATE if op.flags & RENAME.EXCHANGE else ALL_BUT_OPEN)]
    return locks, fn


def _setattr(mdt: Mdt, op: mpb.SetattrOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_bits(SA, op.valid, "setattr")
    fid = fid_from_pb(op.fid)
    sa = SetAttr(valid=op.valid, mode=op.mode, uid=op.uid, gid=op.gid, size=op.size,
                 atime_ns=op.atime_ns, mtime_ns=op.mtime_ns, ctime_ns=op.ctime_ns, open_handle=op.open_handle,
                 blocks=op.blocks)
    bits = IBit.UPDATE | (IBit.PERM if op.valid & (SA.MODE | SA.UID | SA.GID) else 0)

    def fn(tx: Tx) -> mpb.ReintReply:
        a = tx.setattr(cred, fid, sa)
        if sa.valid & (SA.UID | SA.GID):
            remote.owner_changed(tx, fid)       # names of it on other MDTs follow (mdt.dne.wake)
        return _reply(a, tx)
    return [(fid, bits)], fn


def _setxattr(mdt: Mdt, op: mpb.SetxattrOp, cred: Cred) -> tuple[Locks, TxFn]:
    check_bits(XATTR, op.flags, "setxattr flag")
    fid = fid_from_pb(op.fid)
    check_xattr(op.name, op.value)
    if op.name == LOV_XATTR:
        lo = decode_lov(op.value)
        mdt.check_layout(lo)

        def set_lov(tx: Tx) -> mpb.ReintReply:
            a = tx.getattr(fid)
            if stat.S_ISDIR(a.mode):
                tx.set_default_layout(cred, fid, lo)
            elif stat.S_ISREG(a.mode):
                if tx.get_layout(fid) is not None:
                    if lov_names_objects(op.value):
                        # another file's layout, copied with its xattrs (cp -a, mv between MDTs):
                        # this file keeps its own
                        return _reply(tx.getattr(fid), tx)
                    raise LpError(errno.EEXIST, "file already has a layout")
                if cred.uid not in (0, a.uid):
                    raise LpError(errno.EPERM, "only the owner sets a file's layout")
                tx.set_layout(fid, mdt.allocate(tx, lo, fid))
            else:
                raise LpError(errno.EINVAL, "layouts apply to directories and regular files")
            return _reply(tx.getattr(fid), tx)

        return [(fid, IBit.LAYOUT | IBit.XATTR)], set_lov

    if op.name == DMV_XATTR:
        default = decode_default(op.value)
        return [(fid, IBit.XATTR)], lambda tx: _reply(dirstripe.set_default(tx, cred, fid, default), tx)

    def set_one(tx: Tx) -> mpb.ReintReply:
        tx.setxattr(cred, fid, op.name, op.value, op.flags)
        return _reply(tx.getattr(fid), tx)

    return [(fid, IBit.XATTR)], set_one


def _removexattr(mdt: Mdt, op: mpb.RemovexattrOp, cred: Cred) -> tuple[Locks, TxFn]:
    fid = fid_from_pb(op.fid)
    check_xattr(op.name)
    if op.name == LOV_XATTR:
        def rm_lov(tx: Tx) -> mpb.ReintReply:
            a = tx.getattr(fid)
            if not stat.S_ISDIR(a.mode):
                raise LpError(errno.EPERM, "a file's layout cannot be removed")
            tx.set_default_layout(cred, fid, None)
            return _reply(tx.getattr(fid), tx)

        return [(fid, IBit.LAYOUT | IBit.XATTR)], rm_lov

    if op.name == DMV_XATTR:
        return [(fid, IBit.XATTR)], lambda tx: _reply(dirstripe.set_default(tx, cred, fid, None), tx)

    def remove_one(tx: Tx) -> mpb.ReintReply:
        tx.removexattr(cred, fid, op.name)
        return _reply(tx.getattr(fid), tx)

    return [(fid, IBit.XATTR)], remove_one


def _mirror(mdt: Mdt, op: mpb.MirrorOp, cred: Cred) -> tuple[Locks, TxFn]:
    fid = fid_from_pb(op.fid)
    locks: Locks = [(fid, IBit.LAYOUT | IBit.XATTR)]
    parent = None
    if op.action == mpb.MirrorOp.SPLIT and not op.destroy:     # a new name beside the file
        tx0 = mdt.store.read()
        where = mirrors.name_of(tx0, tx0._node(fid)[0])
        if where is None:
            raise LpError(errno.EINVAL, f"{fid} has no name to keep its mirror beside")
        parent = where[0]
        locks.append((parent, IBit.UPDATE))

    def change(tx: Tx) -> mpb.ReintReply:
        if op.action == mpb.MirrorOp.STALE:
            return _reply(mirrors.mark_stale(tx, fid, op.mirror_id), tx)
        if op.action == mpb.MirrorOp.EXTEND:
            return _reply(mirrors.extend(tx, fid, op.count, mdt.add_mirrors), tx)
        if op.action == mpb.MirrorOp.SPLIT:
            return _reply(mirrors.split(tx, fid, op.mirror_id, op.destroy, parent), tx)
        raise LpError(errno.EINVAL, f"unknown mirror action {op.action}")

    return locks, change


_HANDLERS: dict[str, Handler] = {
    "create": _create, "mkdir": _mkdir, "symlink": _symlink, "link": _link, "unlink": _unlink,
    "rmdir": _rmdir, "rename": _rename, "setattr": _setattr, "setxattr": _setxattr,
    "removexattr": _removexattr, "mirror": _mirror,
}
