"""Paths of an MDT's inodes, for lfsctl lfsck's reports, read through a snapshot connection.

On MDT0 a path runs from the root ("/dir/file"); on any MDT a path that reaches a directory whose
name is on another MDT stops there and starts with that directory's FID ("[0x...:0x...:0x0]/file"),
which lfsctl turns into the full path with the stubs the other MDTs report. Reads only.
"""

from __future__ import annotations

import sqlite3

from lustrepy.common.fid import ROOT_FID, Fid


def path_of(conn: sqlite3.Connection, iid: int) -> str:
    """One of inode `iid`'s names from the root ("/dir/file"), or from the nearest directory whose
    name is on another MDT ("[fid]/file": that directory's FID, which the name's MDT knows); ""
    when it has none (unlinked, open)."""
    parts: list[bytes] = []
    seen: set[int] = set()
    while iid not in seen:
        seen.add(iid)
        r = conn.execute("SELECT parent, name FROM dentries WHERE child = ? ORDER BY id LIMIT 1", (iid,)).fetchone()
        if r is None:
            return _anchored(conn, iid, parts)
        parts.append(bytes(r[1]))
        iid = r[0]
    return ""


def _anchored(conn: sqlite3.Connection, iid: int, parts: list[bytes]) -> str:
    """The path of `parts` (innermost first) below inode `iid`, which no dentry here names."""
    r = conn.execute("SELECT seq, oid, ver, EXISTS (SELECT 1 FROM remote_names n WHERE n.inode = i.id) "
                     "FROM inodes i WHERE i.id = ?", (iid,)).fetchone()
    if r is None:
        return ""
    fid = Fid(r[0], r[1], r[2])
    top = "" if fid == ROOT_FID else str(fid) if r[3] else None
    if top is None:
        return ""
    return join_path(top, *reversed(parts)) if parts else top or "/"


def join_path(top: str, *names: bytes) -> str:
    """`names` below the directory whose path is `top` ("" or "/": the root)."""
    return top.rstrip("/") + "".join("/" + n.decode("utf-8", "surrogateescape") for n in names)
