"""What one MDT holds of names across MDTs, for the name check of lfsctl lfsck.

Read from a snapshot connection (layoutscan.open_snapshot), never written: the stubs (each name
here of an inode on another MDT, with that name's path here), the remote names (names another
MDT holds of an inode here), which inodes are this MDT's, and the operations across MDTs this MDT
coordinates and has not finished (dne_log), whose names and inode may disagree between MDTs
until they are carried through. lfsctl compares what every MDT says (ctl/lfsck_names.py).

A striped directory's master names each further stripe as a stub would (named `.stripeK` in the
master), and each stripe says so of itself as a remote name would: a stripe its master does not
list, or a listed one its MDT does not have, shows up as any name whose two sides disagree.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from typing import Any

from lustrepy.common.fid import Fid
from lustrepy.common.lfsckrec import CrossName, Pending
from lustrepy.mds.mdtpaths import join_path, path_of

log = logging.getLogger(__name__)

_STUBS = ("SELECT i.seq, i.oid, i.ver, r.mdt, p.seq, p.oid, p.ver, d.name, d.parent FROM remote_inodes r "
          "JOIN inodes i ON i.id = r.inode JOIN dentries d ON d.child = i.id JOIN inodes p ON p.id = d.parent")
_REMOTE = ("SELECT i.seq, i.oid, i.ver, r.mdt, r.parent_seq, r.parent_oid, r.parent_ver, r.name "
           "FROM remote_names r JOIN inodes i ON i.id = r.inode")
_SHARDS = ("SELECT i.seq, i.oid, i.ver, s.idx, s.master_mdt, s.master_seq, s.master_oid, s.master_ver "
           "FROM dir_stripes s JOIN inodes i ON i.id = s.inode WHERE s.idx > 0")
_FID = " WHERE i.seq = ? AND i.oid = ? AND i.ver = ?"


def stripe_name(index: int) -> bytes:
    return b".stripe%d" % index


def stubs(conn: sqlite3.Connection, fids: Iterable[Fid] | None = None) -> list[CrossName]:
    """Every name here of an inode on another MDT (of `fids` only, when given), with its path;
    and every further stripe of the striped directories whose master is here."""
    rows = _rows(conn, _STUBS, fids, " ORDER BY d.id")
    dirs: dict[int, str] = {}
    out = []
    for seq, oid, ver, mdt, ps, po, pv, name, pid in rows:
        if pid not in dirs:
            dirs[pid] = path_of(conn, pid)
        path = join_path(dirs[pid], bytes(name)) if dirs[pid] else ""
        out.append(CrossName(Fid(seq, oid, ver), int(mdt), Fid(ps, po, pv), bytes(name), path))
    want = None if fids is None else set(fids)
    for iid, ms, mo, mv, text in conn.execute("SELECT inode, master_seq, master_oid, master_ver, stripes "
                                              "FROM dir_stripes WHERE idx = 0 ORDER BY inode"):
        master = Fid(ms, mo, mv)
        for k, (s, o, v, mdt) in enumerate(json.loads(text)[1:], start=1):
            f = Fid(s, o, v)
            if want is None or f in want:
                out.append(CrossName(f, int(mdt), master, stripe_name(k), f"{path_of(conn, iid)} (stripe {k})"))
    return out


def remote_names(conn: sqlite3.Connection, fids: Iterable[Fid] | None = None) -> list[CrossName]:
    """Every name another MDT holds of an inode here (of `fids` only, when given), and each
    stripe here of a striped directory whose master is on another MDT."""
    out = [CrossName(Fid(seq, oid, ver), int(mdt), Fid(ps, po, pv), bytes(name))
           for seq, oid, ver, mdt, ps, po, pv, name in _rows(conn, _REMOTE, fids, " ORDER BY r.inode")]
    for seq, oid, ver, idx, mdt, ms, mo, mv in _rows(conn, _SHARDS, fids, " ORDER BY i.id"):
        out.append(CrossName(Fid(seq, oid, ver), int(mdt), Fid(ms, mo, mv), stripe_name(int(idx))))
    return out


def _rows(conn: sqlite3.Connection, sql: str, fids: Iterable[Fid] | None, order: str) -> list[Any]:
    if fids is None:
        return conn.execute(sql + order).fetchall()
    where = _FID.replace(" WHERE ", " AND ") if " WHERE " in sql else _FID
    out: list[Any] = []
    for f in dict.fromkeys(fids):
        out += conn.execute(sql + where, (f.seq, f.oid, f.ver)).fetchall()
    return out


def inodes(conn: sqlite3.Connection, fids: Iterable[Fid]) -> dict[Fid, str]:
    """Those of `fids` that are inodes of this MDT (not stubs), each with a path."""
    out = {}
    for f in dict.fromkeys(fids):
        r = conn.execute("SELECT i.id FROM inodes i WHERE i.seq = ? AND i.oid = ? AND i.ver = ? AND NOT EXISTS "
                         "(SELECT 1 FROM remote_inodes r WHERE r.inode = i.id)", (f.seq, f.oid, f.ver)).fetchone()
        if r is not None:
            out[f] = path_of(conn, r[0])
    return out


def pending(conn: sqlite3.Connection) -> list[Pending]:
    """The operations across MDTs logged here and not finished, oldest first."""
    out = []
    for op_id, text, created in conn.execute("SELECT id, op, created_ns FROM dne_log ORDER BY id"):
        try:
            out.append(_pending(int(op_id), json.loads(text), int(created)))
        except (ValueError, KeyError, TypeError) as e:
            log.warning("lfsck: logged operation %d across MDTs is unreadable: %s", op_id, e)
    return out


def _pending(op_id: int, e: dict[str, Any], created_ns: int) -> Pending:
    """The inode, names and MDTs a logged operation names, whatever its kind (mds/dne.py writes them)."""
    fid = Fid(*e["fid"]) if e.get("fid") else None
    names = tuple((Fid(*e[p]), bytes.fromhex(e[n])) for p, n in (("parent", "name"), ("dparent", "dname"))
                  if p in e and n in e)
    mdts = {int(e[k]) for k in ("mdt", "fid_mdt") if k in e and not isinstance(e[k], list)}
    if e.get("kind") in ("smkdir", "srmdir"):        # a striped directory's stripes, made or removed
        master = Fid(*(e["master"] if "master" in e else e["fid"]))
        count = len(e["mdts"]) if "mdts" in e else len(e["stripes"])
        names += tuple((master, stripe_name(k)) for k in range(1, count))
        mdts |= set(e["mdts"]) if "mdts" in e else {int(x[3]) for x in e["stripes"]}
    return Pending(op_id, str(e.get("kind", "?")), fid, names, tuple(sorted(mdts)), created_ns)
