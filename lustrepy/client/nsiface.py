"""The namespace backend interface: what llite asks of the place a namespace change is
made (nsbackend implements it twice: the MDS, and this client under a write-back-cache
grant), and the record an open with O_CREAT answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from lustrepy.client.inodes import Inode
from lustrepy.common.layout import Layout
from lustrepy.common.records import Cred


@dataclass(frozen=True, slots=True)
class Created:
    """A regular file made (or found, without O_EXCL) by an open with O_CREAT."""

    node: Inode
    layout: Layout | None   # the objects the reply named (None: none yet)
    mds_handle: int     # 0: made here under a grant, not open at the MDS
    fresh: bool         # new and empty: no one else has opened it
    local: bool         # made here under a grant


class Namespace(Protocol):
    async def mknod(self, parent: Inode, name: bytes, mode: int, rdev: int, cred: Cred) -> Inode: ...
    async def mkdir(self, parent: Inode, name: bytes, mode: int, cred: Cred) -> Inode: ...
    async def symlink(self, parent: Inode, name: bytes, target: bytes, cred: Cred) -> Inode: ...
    async def create(self, parent: Inode, name: bytes, mode: int, flags: int, cred: Cred) -> Created: ...
    async def link(self, node: Inode, parent: Inode, name: bytes, cred: Cred) -> Inode: ...
    async def remove(self, parent: Inode, name: bytes, cred: Cred, *, rmdir: bool) -> None: ...
    async def rename(self, sp: Inode, old: bytes, dp: Inode, new: bytes, flags: int, cred: Cred) -> None: ...
    async def setattr(self, node: Inode, op: dict[str, Any], cred: Cred, local_cred: Cred | None = None) -> Inode: ...
    async def setxattr(self, node: Inode, name: bytes, value: bytes | None, cred: Cred) -> None: ...
