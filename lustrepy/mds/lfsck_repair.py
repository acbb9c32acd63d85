"""The repairs of the layout check (lfsctl lfsck --repair) that the MDT makes.

An orphan object (handed out by its pool, named by no file, not queued for destruction) goes to
the destroy queue, which osp drains as for an unlinked file, or becomes a file of its own under
/.lustre/lost+found (both directories made on the first need). A file whose recorded size
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
from lustrepy.common.records import Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds import reint, resources
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


def orphans(mdt: Mdt, items: list[Orphan], keep: bool) -> list[Outcome]:
    """Destroy the orphans (through the destroy queue), or with `keep` link them under lost+found."""
    if not items:
        return []
    if not keep:
        out, _ = mdt.store.write(lambda tx: _queue(tx, items))
        mdt.osp.wake()
        return out
    lf = lost_found(mdt)
    with mdt.locks.update([(lf, IBit.UPDATE)]):
        out, _ = mdt.store.write(lambda tx: _link(tx, lf, items))
    return out


def _refusals(tx: TxBase, items: list[Orphan]) -> list[str | None]:
    """Why each item is not an orphan now (None: it is)."""
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
        elif (o.ost_index, o.object_id) not in unused:
            out.append("a file uses it now")
        elif tx.conn.execute("SELECT 1 FROM destroy_queue WHERE ost_index = ? AND object_id = ?",
                             (o.ost_index, o.object_id)).fetchone():
            out.append("already queued for destruction")
        else:
            out.append(None)
    return out


def _queue(tx: Tx, items: list[Orphan]) -> list[Outcome]:
    refused = _refusals(tx, items)
    resources.queue_destroy(tx, {(i.object.ost_index, i.object.object_id)
                                 for i, why in zip(items, refused, strict=True) if why is None})
    return [Outcome(why is None, why or "queued for destruction") for why in refused]


def _link(tx: Tx, lf: Fid, items: list[Orphan]) -> list[Outcome]:
    out = []
    for i, why in zip(items, _refusals(tx, items), strict=True):
        name = lost_name(i.object)
        if why is None and tx.find(ROOT, lf, name) is not None:
            why = f"lost+found/{name.decode()} exists"
        if why is not None:
            out.append(Outcome(False, why))
            continue
        lo = Layout(stripe_count=1, stripe_offset=i.object.ost_index, objects=(i.object,))
        a = tx.create(ROOT, lf, name, ORPHAN_MODE, layout=lo)
        tx.set_size(a.fid, i.size, i.blocks)
        out.append(Outcome(True, f"/.lustre/lost+found/{name.decode()}"))
    return out


def lost_found(mdt: Mdt) -> Fid:
    """/.lustre/lost+found, made (root's, like any update: under the MDS locks) where missing."""
    fid = mdt.root
    for name, mode in LOST_DIRS:
        fid = _subdir(mdt, fid, name, mode)
    return fid


def _subdir(mdt: Mdt, parent: Fid, name: bytes, mode: int) -> Fid:
    for _ in range(2):
        found = mdt.store.read().find(ROOT, parent, name)
        if found is not None:
            if not stat.S_ISDIR(found.mode):
                raise LpError(errno.ENOTDIR, f"{name.decode()} in {parent} is not a directory")
            return found.fid
        op = mpb.ReintOp(mkdir=mpb.MkdirOp(parent=fid_to_pb(parent), name=name, mode=mode))
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
