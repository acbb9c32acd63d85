"""Unix permission rules of the namespace: mode bits, ownership, the sticky bit,
and what a setattr may change (`check_setattr`).

Pure functions of an Attr and a Cred, raising LpError with the errno Linux
gives. The MDS applies them to every request and every replayed update
record; a client applies the same ones to the changes it makes locally under
a write-back-cache grant, so that it refuses exactly what the MDS would.
Never does I/O and never keeps state.
"""

from __future__ import annotations

import errno
import stat

from dataclasses import dataclass

from lustrepy.common.errors import LpError
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.common.protocol import SA
from lustrepy.common.records import Attr, Cred

R, W, X = 4, 2, 1
SXID = stat.S_ISUID | stat.S_ISGID


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


# ---- setattr ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Change:
    """The part of a setattr the permission rules look at: `valid` (SA bits) and the
    values asked for. `writer`: the change comes through a handle open for writing
    (ftruncate), which stands for write permission as an fd does on Linux."""

    valid: int
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    writer: bool = False


def kill_sxid(cred: Cred, mode: int, gid: int) -> int:
    """Permission bits after a change of owner or contents (Linux's
    setattr_should_drop_suidgid): setuid goes; setgid goes when group-executable, or
    when the caller is neither in the group nor root."""
    mode &= ~stat.S_ISUID
    if mode & stat.S_ISGID and (mode & stat.S_IXGRP or (cred.uid != 0 and not cred.in_group(gid))):
        mode &= ~stat.S_ISGID
    return mode


def drops_sxid_only(old: int, new: int) -> bool:
    """Is `new` the permission bits `old` less setuid and/or setgid, and nothing else?
    That is the mode change the kernel asks for when a write, truncate or chown by
    someone else has to clear them (it is sent as the caller's own setattr)."""
    old, new = old & 0o7777, new & 0o7777
    return new != old and new & ~old == 0 and (old ^ new) & ~SXID == 0


_MODE, _UID, _GID, _SIZE = int(SA.MODE), int(SA.UID), int(SA.GID), int(SA.SIZE)
_ATIME, _MTIME, _CTIME = int(SA.ATIME), int(SA.MTIME), int(SA.CTIME)
_ATIME_NOW, _MTIME_NOW = int(SA.ATIME_NOW), int(SA.MTIME_NOW)


def check_setattr(cred: Cred, a: Attr, ch: Change) -> int:
    """Check a setattr of the inode `a` by `cred` as Linux does, in Linux's order, and
    return the inode's st_mode after it (setuid/setgid cleared where Linux clears them).

    Raises LpError: EISDIR / EINVAL / EACCES / EFBIG for a size; EPERM for an owner or
    group change that is not the caller's to make, for a mode change by someone who
    is not the owner (unless it only drops setuid/setgid and the caller may write),
    for explicit times by someone who is not the owner; EACCES for times set to "now"
    by someone who may not write."""
    v = int(ch.valid)     # plain ints below: IntFlag arithmetic costs microseconds a time
    owner = is_owner(cred, a)
    writer = ch.writer or allowed(cred, a, W)
    kill = False
    if v & _SIZE:
        if stat.S_ISDIR(a.mode):
            raise LpError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(a.mode) or ch.size < 0:
            raise LpError(errno.EINVAL, "only a regular file has a size to set")
        if not writer:
            raise LpError(errno.EACCES, f"permission denied on {a.fid}")
        if ch.size > MAX_FILE_SIZE:
            raise LpError(errno.EFBIG, f"size {ch.size} beyond the largest file")
        kill = cred.uid != 0 and bool(a.mode & SXID)
    gid = a.gid
    if v & _UID:
        if not (cred.uid == 0 or (cred.uid == a.uid and ch.uid == a.uid)):
            raise LpError(errno.EPERM, "only root may change a file's owner")
    if v & _GID:
        if not (cred.uid == 0 or (cred.uid == a.uid and (ch.gid == a.gid or cred.in_group(ch.gid)))):
            raise LpError(errno.EPERM, "only the owner may change the group, to one of its own")
        gid = ch.gid
    if v & (_UID | _GID) and not stat.S_ISDIR(a.mode):
        kill = True
    mode = a.mode
    if v & _MODE:
        if owner:
            mode = stat.S_IFMT(a.mode) | (ch.mode & 0o7777)
            if mode & stat.S_ISGID and cred.uid != 0 and not cred.in_group(gid):
                mode &= ~stat.S_ISGID
        elif drops_sxid_only(a.mode, ch.mode) and writer:
            mode = stat.S_IFMT(a.mode) | (ch.mode & 0o7777)
        else:
            raise LpError(errno.EPERM, "only the owner or root may change the mode")
    elif kill:
        mode = stat.S_IFMT(a.mode) | kill_sxid(cred, a.mode & 0o7777, gid)
    explicit = bool((v & _ATIME and not v & _ATIME_NOW) or (v & _MTIME and not v & _MTIME_NOW))
    if explicit and not owner:
        raise LpError(errno.EPERM, "only the owner or root may set explicit times")
    if v & (_ATIME_NOW | _MTIME_NOW) and not owner and not writer:
        raise LpError(errno.EACCES, "permission denied setting times")
    if v & _CTIME and not owner and not writer:
        raise LpError(errno.EPERM, "only the owner or a writer may set ctime")
    return mode
