"""Unix permission rules of the namespace: mode bits, ownership, the sticky bit.

Pure functions of an Attr and a Cred, raising LpError with the errno Linux
gives. Never touches the database.
"""

from __future__ import annotations

import errno
import stat

from lustrepy.common.errors import LpError
from lustrepy.common.records import Attr, Cred

R, W, X = 4, 2, 1


def allowed(cred: Cred, a: Attr, mask: int) -> bool:
    """May `cred` access `a` for every bit of `mask` (R|W|X)? Root may do anything
    but execute a non-directory that has no execute bit at all."""
    if cred.uid == 0:
        return not (mask & X) or stat.S_ISDIR(a.mode) or bool(a.mode & 0o111)
    if cred.uid == a.uid:
        bits = (a.mode >> 6) & 7
    elif cred.in_group(a.gid):
        bits = (a.mode >> 3) & 7
    else:
        bits = a.mode & 7
    return bits & mask == mask


def require(cred: Cred, a: Attr, mask: int) -> None:
    if not allowed(cred, a, mask):
        raise LpError(errno.EACCES, f"permission denied on {a.fid}")


def is_owner(cred: Cred, a: Attr) -> bool:
    """Owner or root (Linux's inode_owner_or_capable)."""
    return cred.uid == 0 or cred.uid == a.uid


def require_owner(cred: Cred, a: Attr, what: str) -> None:
    if not is_owner(cred, a):
        raise LpError(errno.EPERM, f"only the owner or root may {what}")


def check_sticky(cred: Cred, parent: Attr, victim: Attr) -> None:
    """In a sticky directory only the victim's owner, the directory's owner or root
    may remove or rename the victim (EPERM)."""
    if parent.mode & stat.S_ISVTX and cred.uid not in (0, parent.uid, victim.uid):
        raise LpError(errno.EPERM, "sticky directory: not the owner")


def may_lookup(cred: Cred, parent: Attr) -> None:
    """Searching a directory: ENOTDIR for a non-directory, EACCES without x."""
    if not stat.S_ISDIR(parent.mode):
        raise LpError(errno.ENOTDIR, f"{parent.fid} is not a directory")
    require(cred, parent, X)


def may_delete(cred: Cred, parent: Attr, victim: Attr, isdir: bool) -> None:
    """Removing `victim` from `parent` (Linux's may_delete): EACCES, EPERM (sticky),
    then ENOTDIR / EISDIR when the victim is not of the kind the caller removes."""
    require(cred, parent, W | X)
    check_sticky(cred, parent, victim)
    if isdir and not stat.S_ISDIR(victim.mode):
        raise LpError(errno.ENOTDIR, "not a directory")
    if not isdir and stat.S_ISDIR(victim.mode):
        raise LpError(errno.EISDIR, "is a directory")


def may_create(cred: Cred, parent: Attr) -> None:
    require(cred, parent, W | X)
