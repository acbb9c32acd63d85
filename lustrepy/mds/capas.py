"""The MDS's side of object capabilities (common/capa.py): whom it signs them for, and its keys.

A client gets capabilities for every object of a file (all its mirrors) when
it holds an open handle on the file, or when its credentials (as the nodemap
maps them) may open it: for writing when it holds a handle open for writing
or may write the file, and is not a read-only client; for reading otherwise.
The keys rotate by themselves (KeyRing.current) and go to every OSS in the
reply to its heartbeat.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from lustrepy.common import capa, perm
from lustrepy.common.errors import LpError
from lustrepy.common.fid import Fid
from lustrepy.common.records import Cred
from lustrepy.mds.nodemap import client_name
from lustrepy.rpc import tls
from lustrepy.rpc.convert import capa_to_pb, fid_from_pb, rep_ok
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt
    from lustrepy.mds.namespace import Tx

MAX_OBJECTS = 4096          # a layout holds at most this many objects (4 mirrors of 1024 stripes)


def _opened(mdt: Mdt, fid: Fid, client_id: str) -> tuple[bool, bool]:
    """(any handle, a writer's handle) this client holds on the file."""
    def q(tx: Tx) -> tuple[bool, bool]:
        iid, _ = tx._node(fid)
        rows = tx.conn.execute("SELECT writer FROM opens WHERE inode = ? AND client_id = ?",
                               (iid, client_id)).fetchall()
        return bool(rows), any(w for (w,) in rows)
    return mdt.store.peek(q)


def issue(mdt: Mdt, client_id: str, cred: Cred, fid: Fid, write: bool) -> tuple[list[capa.Capa], int]:
    """Capabilities for each object of the file, and its layout's generation; EACCES when the
    client may not have them, EROFS for writing by a read-only client."""
    if write:
        mdt.nodemap.check_writable(client_id)
    attr = mdt.store.peek(lambda tx: tx.getattr(fid))
    lo = mdt.store.peek(lambda tx: tx._layout_of(tx._node(fid)[0]))
    if lo is None or not lo.has_objects:
        return [], 0 if lo is None else lo.generation
    held, writing = _opened(mdt, fid, client_id)
    ok = writing if write else held
    if not ok and not perm.allowed(cred, attr, perm.W if write else perm.R):
        raise LpError(errno.EACCES, f"{fid}: no capability for {'writing' if write else 'reading'}")
    objs = lo.all_objects()
    if len(objs) > MAX_OBJECTS:
        raise LpError(errno.EINVAL, f"{fid}: {len(objs)} objects")
    mode = capa.READ | capa.WRITE if write else capa.READ
    name = client_name(client_id)
    return [mdt.capa_keys.issue(name, o.ost_index, o.object_id, mode, mdt.capa_lifetime) for o in objs], \
        lo.generation


def reply(mdt: Mdt, request: mpb.CapaRequest, cred: Cred) -> mpb.CapaReply:
    got, gen = issue(mdt, request.hdr.client_id, cred, fid_from_pb(request.fid), request.write)
    return mpb.CapaReply(hdr=rep_ok(), capas=[capa_to_pb(c) for c in got], generation=gen)


def keys_pb(mdt: Mdt) -> list[mpb.CapaKey]:
    """The keys for an OSS's heartbeat reply: over mutual TLS only (none in plaintext mode)."""
    if tls.current() is None:
        return []
    mdt.capa_keys.current()         # a new one when the last is old
    return [mpb.CapaKey(id=i, key=k, made=t) for i, k, t in mdt.capa_keys.export()]
