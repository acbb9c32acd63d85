"""Validation of directory-entry names, symlink targets and xattr names (all bytes, as on Linux)."""

from __future__ import annotations

import errno

from lustrepy.common.errors import LpError

NAME_MAX = 255
PATH_MAX = 4096
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536


def check_name(name: bytes) -> None:
    """Raise LpError unless `name` is a valid single path component."""
    if not name or name in (b".", b".."):
        raise LpError(errno.EINVAL, f"invalid name {name!r}")
    if b"/" in name or b"\0" in name:
        raise LpError(errno.EINVAL, "name contains '/' or NUL")
    if len(name) > NAME_MAX:
        raise LpError(errno.ENAMETOOLONG, f"name longer than {NAME_MAX} bytes")


def check_symlink_target(target: bytes) -> None:
    if not target or b"\0" in target:
        raise LpError(errno.EINVAL, "empty symlink target or NUL in it")
    if len(target) >= PATH_MAX:
        raise LpError(errno.ENAMETOOLONG, f"symlink target of {PATH_MAX} bytes or more")


def check_xattr(name: bytes, value: bytes | None = None) -> None:
    if not name or b"\0" in name:
        raise LpError(errno.EINVAL, "empty xattr name or NUL in it")
    if len(name) > XATTR_NAME_MAX:
        raise LpError(errno.ERANGE, f"xattr name longer than {XATTR_NAME_MAX} bytes")
    if value is not None and len(value) > XATTR_SIZE_MAX:
        raise LpError(errno.E2BIG, f"xattr value larger than {XATTR_SIZE_MAX} bytes")
