"""The repairs of the layout check (lfsctl lfsck --repair) that the MDT makes.

An orphan object (of this MDT's id range, handed out by its pool, named by no file, not queued
for destruction) goes to the destroy queue, which osp drains as for an unlinked file, or becomes
a file of its own under /.lustre/lost+found (both directories made on the first need); MDT1..
link theirs in /.lustre/lost+found/MDT<index>, a directory of theirs that MDT0 makes on
lfsctl's request (a remote directory, lost_found_dirs). A file whose recorded size
disagrees with its objects gets their size. Each repair checks its conditions again inside the
transaction that makes it, under the MDS locks that call back what clients cache, so a change
made since the check is never undone: that item is skipped and says why. Never talks to an OSS
(lfsctl recreates lost objects on their OSTs itself).
"""

from __future__ import annotations

import errno
import functools
import logging
import stat
from typing import TYPE_CHECKING

from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout, StripeObject
from lustrepy.common.lfsckrec import Orphan, Outcome, SizeFix
from lustrepy.common.objid import group_of, valid_mdt
from lustrepy.common.records import Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds import reint, remote, resources
from lustrepy.mds.inodes import TxBase
from lustrepy.mds.namespace import Tx
from lustrepy.rpc.convert import fid_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

log = logging.getLogger(__name__)

ROOT = Cred(0, 0)
LOST_DIRS = ((b".lustre", 0o755), (b"lost+found", 0o700))
ORPHAN_MODE = stat.S_IFREG | 0o600


def lost_name(o: StripeObject) -> bytes:
    """The name an orphan gets under lost+found: its OST and object id."""
    return f"OST{o.ost_index:04x}-{o.object_id}".encode()


def orphans(mdt: Mdt, items: list[Orphan], keep: bool, into: Fid | None = None) -> list[Outcome]:
    """Destroy the orphans (through the destroy queue), or with `keep` link them under lost+found
    (in directory `into` of this MDT when given: MDT1.. have theirs made by MDT0, lost_found_dirs)."""
    if not items:
        return []
    index = mdt.index
    if not keep:
        out, _ = mdt.store.write(lambda tx: _queue(tx, index, items))
        mdt.osp.wake()
        return out
    if into is None and index != 0:
        return [Outcome(False, "no lost+found directory given (MDT0 makes one for each MDT)")] * len(items)
    if into is None:
        lf, where = lost_found(mdt), "/.lustre/lost+found"
    else:
        why = mdt.store.peek(lambda tx: _not_here(tx, into))
        if why:
            return [Outcome(False, why)] * len(items)
        lf, where = into, str(into)
    with mdt.locks.update([(lf, IBit.UPDATE)]):
        out, _ = mdt.store.write(lambda tx: _link(tx, index, lf, where, items))
    return out


def _not_here(tx: Tx, fid: Fid) -> str:
    """Why orphans cannot be linked in `fid` here ("": they can)."""
    try:
        if remote.remote_mdt(tx, fid) is None and stat.S_ISDIR(tx.getattr(fid).mode):
            return ""
    except LpError:
        pass
    return f"{fid} is not a directory of this MDT"


def _refusals(tx: TxBase, index: int, items: list[Orphan]) -> list[str | None]:
    """Why each item is not an orphan of MDT `index` now (None: it is)."""
    unused = resources.unreferenced(tx, {(i.object.ost_index, i.object.object_id) for i in items})
    registered = {r[0] for r in tx.conn.execute("SELECT ost_index FROM osts")}
    out: list[str | None] = []
    for i in items:
        o = i.object
        pool = resources.pool_range(tx, o.ost_index)
        if o.ost_index not in registered:
            out.append(f"OST index {o.ost_index} is not registered")
        elif pool is None or o.object_id >= pool[0]:
            out.append("not handed out yet (precreated, unused)")
        elif group_of(o.object_id) != index:
            out.append(f"in the object range of MDT{group_of(o.object_id):04x}, not of this MDT")
        elif (o.ost_index, o.object_id) not in unused:
            out.append("a file uses it now")
        elif tx.conn.execute("SELECT 1 FROM destroy_queue WHERE ost_index = ? AND object_id = ?",
                             (o.ost_index, o.object_id)).fetchone():
            out.append("already queued for destruction")
        else:
            out.append(None)
    return out


def _queue(tx: Tx, index: int, items: list[Orphan]) -> list[Outcome]:
    refused = _refusals(tx, index, items)
    resources.queue_destroy(tx, {(i.object.ost_index, i.object.object_id)
                                 for i, why in zip(items, refused, strict=True) if why is None})
    return [Outcome(why is None, why or "queued for destruction") for why in refused]


def _link(tx: Tx, index: int, lf: Fid, where: str, items: list[Orphan]) -> list[Outcome]:
    out = []
    for i, why in zip(items, _refusals(tx, index, items), strict=True):
        name = lost_name(i.object)
        if why is None and tx.find(ROOT, lf, name) is not None:
            why = f"lost+found/{name.decode()} exists"
        if why is not None:
            out.append(Outcome(False, why))
            continue
        lo = Layout(stripe_count=1, stripe_offset=i.object.ost_index, objects=(i.object,))
        a = tx.create(ROOT, lf, name, ORPHAN_MODE, layout=lo)
        tx.set_size(a.fid, i.size, i.blocks)
        out.append(Outcome(True, f"{where}/{name.decode()}"))
    return out


def lost_found(mdt: Mdt) -> Fid:
    """/.lustre/lost+found, made (root's, like any update: under the MDS locks) where missing."""
    fid = mdt.root
    for name, mode in LOST_DIRS:
        fid = _subdir(mdt, fid, name, mode, mdt.index)
    return fid


def lost_found_dirs(mdt: Mdt, indexes: list[int]) -> list[tuple[Fid, str]]:
    """MDT0: /.lustre/lost+found/MDT<index> for each index, a directory on that MDT where it links
    its orphans (made where missing); each one's FID and path."""
    if not indexes:
        return []
    if mdt.index != 0:
        raise LpError(errno.EINVAL, "only MDT0 holds /.lustre/lost+found")
    known = {m.index for m in mdt.mdts.view().mdts}
    for i in indexes:
        if i == 0 or not valid_mdt(i) or i not in known:
            raise LpError(errno.EINVAL, f"no lost+found directory of MDT index {i} to make: no such other MDT")
    lf = lost_found(mdt)
    out = []
    for i in indexes:
        name = f"MDT{i:04x}".encode()
        out.append((_subdir(mdt, lf, name, 0o700, i), f"/.lustre/lost+found/{name.decode()}"))
    return out


def _subdir(mdt: Mdt, parent: Fid, name: bytes, mode: int, on: int = 0) -> Fid:
    """Directory `name` in `parent`, made (on MDT `on`) where missing."""
    for _ in range(2):
        found = mdt.store.read().find(ROOT, parent, name)
        if found is not None:
            if not stat.S_ISDIR(found.mode):
                raise LpError(errno.ENOTDIR, f"{name.decode()} in {parent} is not a directory")
            return found.fid
        op = mpb.ReintOp(mkdir=mpb.MkdirOp(parent=fid_to_pb(parent), name=name, mode=mode,
                                           remote=on != mdt.index, mdt_index=on))
        try:
            _, rep, _ = reint.run(mdt, op, ROOT, "")
        except LpError as e:
            if e.errno == errno.EEXIST:
                continue                # made meanwhile: look it up again
            raise
        log.info("made %s in %s for lfsck", name.decode(), parent)
        return Fid(rep.attr.fid.seq, rep.attr.fid.oid, rep.attr.fid.ver)
    raise LpError(errno.EAGAIN, f"{name.decode()} in {parent} keeps changing")


def sizes(mdt: Mdt, items: list[SizeFix]) -> list[Outcome]:
    """Set each file's size to its objects', each in its own transaction under an UPDATE lock."""
    out = []
    for fix in items:
        with mdt.locks.update([(fix.fid, IBit.UPDATE)]):
            r, _ = mdt.store.write(functools.partial(_set_size, fix))
        out.append(r)
    return out


def _set_size(fix: SizeFix, tx: Tx) -> Outcome:
    try:
        size, _, valid = tx.size_state(fix.fid)
    except LpError:
        return Outcome(False, "the file is gone")
    if not valid:
        return Outcome(False, "a writer has it open, or its size is being learned")
    if size != fix.seen:
        return Outcome(False, f"its size changed since the check (now {size})")
    tx.set_size(fix.fid, fix.size, fix.blocks)
    return Outcome(True, f"size set to {fix.size}")
