"""The pyfuse3 Operations of a lustrepy mount: a thin adapter over llite.

Each handler calls the matching Llite method. pyfuse3 handlers may raise
nothing but FUSEError (anything else takes the mount down), so an LpError
becomes FUSEError(errno) here and any other exception is logged and becomes
EIO. No file system logic lives in this module.
"""

from __future__ import annotations

import errno
import functools
import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

import pyfuse3

from lustrepy.common.errors import LpError
from lustrepy.client.llite import Llite, _Negative

log = logging.getLogger(__name__)

T = TypeVar("T")


def _guard(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(self: "LustreOperations", *args: Any) -> T:
        t0 = time.perf_counter() if log.isEnabledFor(logging.DEBUG) else 0.0
        try:
            return await fn(self, *args)
        except pyfuse3.FUSEError:
            raise
        except LpError as e:
            if e.errno == errno.EIO:        # never expected: worth a line for the admin
                log.warning("%s: %s", fn.__name__, e.message)
            raise pyfuse3.FUSEError(e.errno) from None
        except Exception:
            log.exception("%s%r failed", fn.__name__, args[:3])
            raise pyfuse3.FUSEError(errno.EIO) from None
        finally:
            if t0:
                log.debug("%s %.3f ms", fn.__name__, (time.perf_counter() - t0) * 1e3)
    return wrapper


class LustreOperations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, ll: Llite) -> None:
        super().__init__()
        self.ll = ll

    @_guard
    async def lookup(self, parent_inode, name, ctx):
        try:
            return await self.ll.lookup(parent_inode, name, ctx)
        except _Negative as n:
            return n.entry

    async def forget(self, inode_list):
        try:
            self.ll.forget(inode_list)
        except Exception:   # forget must never raise
            log.exception("forget failed")

    @_guard
    async def getattr(self, inode, ctx):
        return await self.ll.getattr(inode, ctx)

    @_guard
    async def setattr(self, inode, attr, fields, fh, ctx):
        return await self.ll.setattr(inode, attr, fields, fh, ctx)

    @_guard
    async def readlink(self, inode, ctx):
        return await self.ll.readlink(inode, ctx)

    @_guard
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        return await self.ll.mknod(parent_inode, name, mode, rdev, ctx)

    @_guard
    async def mkdir(self, parent_inode, name, mode, ctx):
        return await self.ll.mkdir(parent_inode, name, mode, ctx)

    @_guard
    async def unlink(self, parent_inode, name, ctx):
        await self.ll.unlink(parent_inode, name, ctx)

    @_guard
    async def rmdir(self, parent_inode, name, ctx):
        await self.ll.rmdir(parent_inode, name, ctx)

    @_guard
    async def symlink(self, parent_inode, name, target, ctx):
        return await self.ll.symlink(parent_inode, name, target, ctx)

    @_guard
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        await self.ll.rename(parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx)

    @_guard
    async def link(self, inode, new_parent_inode, new_name, ctx):
        return await self.ll.link(inode, new_parent_inode, new_name, ctx)

    @_guard
    async def open(self, inode, flags, ctx):
        return await self.ll.open(inode, flags, ctx)

    @_guard
    async def create(self, parent_inode, name, mode, flags, ctx):
        return await self.ll.create(parent_inode, name, mode, flags, ctx)

    @_guard
    async def read(self, fh, off, size):
        return await self.ll.read(fh, off, size)

    @_guard
    async def write(self, fh, off, buf):
        return await self.ll.write(fh, off, buf)

    @_guard
    async def flush(self, fh):
        await self.ll.flush(fh)

    @_guard
    async def fsync(self, fh, datasync):
        await self.ll.fsync(fh, datasync)

    @_guard
    async def release(self, fh):
        await self.ll.release(fh)

    @_guard
    async def opendir(self, inode, ctx):
        return await self.ll.opendir(inode, ctx)

    @_guard
    async def readdir(self, fh, start_id, token):
        await self.ll.readdir(fh, start_id, token)

    @_guard
    async def releasedir(self, fh):
        await self.ll.releasedir(fh)

    @_guard
    async def fsyncdir(self, fh, datasync):
        await self.ll.fsyncdir(fh, datasync)

    @_guard
    async def statfs(self, ctx):
        return await self.ll.statfs(ctx)

    @_guard
    async def setxattr(self, inode, name, value, ctx):
        await self.ll.setxattr(inode, name, value, ctx)

    @_guard
    async def getxattr(self, inode, name, ctx):
        return await self.ll.getxattr(inode, name, ctx)

    @_guard
    async def listxattr(self, inode, ctx):
        return await self.ll.listxattr(inode, ctx)

    @_guard
    async def removexattr(self, inode, name, ctx):
        await self.ll.removexattr(inode, name, ctx)

    async def access(self, inode, mode, ctx):
        return True     # the kernel checks permissions (default_permissions); the MDS checks again
