"""Errors: the errno-carrying exception (and its ESTALE kind for identifiers that name
nothing any more, and its kind for data that fails its checksum at rest), the quiet user
error, and the wire errno table.

POSIX results cross the wire as Linux errno numbers (as Lustre's ptlrpc does);
`to_wire`/`from_wire` are the only places that translate, and any number not in
the table becomes EIO. gRPC status codes never carry POSIX results.
"""

from __future__ import annotations

import errno as _errno
import os

# Linux numbering of every errno that may travel in a reply.
WIRE_ERRNO: dict[str, int] = {
    "EPERM": 1, "ENOENT": 2, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7,
    "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14,
    "EBUSY": 16, "EEXIST": 17, "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20,
    "EISDIR": 21, "EINVAL": 22, "ENFILE": 23, "EMFILE": 24, "ETXTBSY": 26,
    "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29, "EROFS": 30, "EMLINK": 31,
    "ERANGE": 34, "EDEADLK": 35, "ENAMETOOLONG": 36, "ENOSYS": 38,
    "ENOTEMPTY": 39, "ELOOP": 40, "ENODATA": 61, "ENOTSUP": 95,
    "EOVERFLOW": 75, "EBADMSG": 74, "EPROTO": 71, "EALREADY": 114,
    "ENOTCONN": 107, "ESHUTDOWN": 108, "ETIMEDOUT": 110, "ECONNREFUSED": 111,
    "EINPROGRESS": 115, "ESTALE": 116, "EDQUOT": 122, "ECANCELED": 125, "EKEYEXPIRED": 127,
    "EREMCHG": 78,
}

_HOST_TO_WIRE = {getattr(_errno, n): w for n, w in WIRE_ERRNO.items() if hasattr(_errno, n)}
_WIRE_TO_HOST: dict[int, int] = {w: getattr(_errno, n) for n, w in WIRE_ERRNO.items() if hasattr(_errno, n)}


def to_wire(err: int) -> int:
    """Host errno -> wire errno (EIO for anything unknown)."""
    if err == 0:
        return 0
    return _HOST_TO_WIRE.get(err, WIRE_ERRNO["EIO"])


def from_wire(err: int) -> int:
    """Wire errno -> host errno (EIO for anything unknown)."""
    if err == 0:
        return 0
    return _WIRE_TO_HOST.get(err, _errno.EIO)


class LpError(Exception):
    """An operation failed with a POSIX errno; `message` is one line for humans."""

    def __init__(self, err: int, message: str = "") -> None:
        self.errno = err
        self.message = message or os.strerror(err)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{_errno.errorcode.get(self.errno, self.errno)}: {self.message}"


class StaleFid(LpError):
    """An identifier (a FID, or a client's inode number) that names no inode any more:
    ESTALE, the one errno for that everywhere. The Linux VFS answers it by walking the
    path again with LOOKUP_REVAL (a fresh lookup of every name), as for NFS and Lustre, so
    a reader whose dentry still names a file that a rename replaced finds the new one. A
    name looked up in a directory that exists but lacks it stays ENOENT."""

    def __init__(self, what: object) -> None:
        super().__init__(_errno.ESTALE, f"{what} no longer exists")


class BadData(LpError):
    """A server holds bytes that do not match their checksum at rest (EBADMSG on the wire): EIO to
    the application, which never gets those bytes. A client that has another copy of them (a
    mirror) may read that instead; `BadData` is how it tells this from other I/O errors."""

    def __init__(self, message: str) -> None:
        super().__init__(_errno.EIO, message)


class QuietError(Exception):
    """A user-facing failure: printed as one line, no traceback, with an exit code."""

    def __init__(self, message: str, exitcode: int = 1) -> None:
        self.exitcode = exitcode
        super().__init__(message)
