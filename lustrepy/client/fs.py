"""The pyfuse3 Operations of a lustrepy mount: a thin adapter over llite.

Each handler turns FUSE's arguments into llite's plain records (a request
context into a `Caller`, setattr fields into a `SetAttrRequest`), calls the
matching Llite method, and builds pyfuse3's reply from what it answers: this
module alone builds entries, readdir replies, negative entries, file infos
and statvfs. pyfuse3 handlers may raise nothing but FUSEError (anything else
takes the mount down), so an LpError becomes FUSEError(errno) here and any
other exception is logged and becomes EIO. No file system logic lives here.
"""

from __future__ import annotations

import errno
import functools
import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

import pyfuse3

from lustrepy.client.callers import Callers
from lustrepy.client.llite import Llite
from lustrepy.client.replies import Caller, Entry, Opened, SetAttrRequest
from lustrepy.common.errors import LpError
from lustrepy.common.protocol import SA

log = logging.getLogger(__name__)

T = TypeVar("T")


def _guard(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(self: "LustreOperations", *args: Any) -> T:
        t0 = time.perf_counter() if log.isEnabledFor(logging.DEBUG) else 0.0
        self.ll.in_flight += 1
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
            self.ll.in_flight -= 1
            if t0:
                log.debug("%s %.3f ms", fn.__name__, (time.perf_counter() - t0) * 1e3)
    return wrapper


# pyfuse3 SetattrFields flag -> (SA bit, EntryAttributes field, SetAttrRequest field)
_SETATTR = (
    ("update_mode", SA.MODE, "st_mode", "mode"),
    ("update_uid", SA.UID, "st_uid", "uid"),
    ("update_gid", SA.GID, "st_gid", "gid"),
    ("update_size", SA.SIZE, "st_size", "size"),
    ("update_atime", SA.ATIME, "st_atime_ns", "atime_ns"),
    ("update_mtime", SA.MTIME, "st_mtime_ns", "mtime_ns"),
    ("update_ctime", SA.CTIME, "st_ctime_ns", "ctime_ns"),
)


def entry_attributes(e: Entry) -> pyfuse3.EntryAttributes:
    out = pyfuse3.EntryAttributes()
    out.st_ino = e.ino
    out.generation = 0
    out.entry_timeout = e.entry_ttl
    out.attr_timeout = e.attr_ttl
    a = e.attr
    if a is not None:
        out.st_mode = a.mode
        out.st_nlink = a.nlink
        out.st_uid = a.uid
        out.st_gid = a.gid
        out.st_rdev = a.rdev
        out.st_size = a.size
        out.st_blksize = e.blksize
        out.st_blocks = a.blocks
        out.st_atime_ns = a.atime_ns
        out.st_mtime_ns = a.mtime_ns
        out.st_ctime_ns = a.ctime_ns
    return out


def file_info(o: Opened) -> pyfuse3.FileInfo:
    return pyfuse3.FileInfo(fh=o.fh, keep_cache=o.keep_cache)


def setattr_request(attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields) -> SetAttrRequest:
    valid = 0
    values: dict[str, int] = {}
    for flag, bit, st_name, key in _SETATTR:
        if getattr(fields, flag):
            valid |= int(bit)
            values[key] = getattr(attr, st_name)
    return SetAttrRequest(valid, **values)


class LustreOperations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, ll: Llite) -> None:
        super().__init__()
        self.ll = ll
        self.callers = Callers(lambda fn: ll.meta.run(fn))

    async def _caller(self, ctx: Any) -> Caller:
        return await self.callers.of(ctx.pid, ctx.uid, ctx.gid)

    @_guard
    async def lookup(self, parent_inode, name, ctx):
        return entry_attributes(await self.ll.lookup(parent_inode, name, await self._caller(ctx)))

    async def forget(self, inode_list):
        try:
            self.ll.forget(inode_list)
        except Exception:   # forget must never raise
            log.exception("forget failed")

    @_guard
    async def getattr(self, inode, ctx):
        return entry_attributes(await self.ll.getattr(inode, await self._caller(ctx)))

    @_guard
    async def setattr(self, inode, attr, fields, fh, ctx):
        return entry_attributes(await self.ll.setattr(inode, setattr_request(attr, fields), fh,
                                                      await self._caller(ctx)))

    @_guard
    async def readlink(self, inode, ctx):
        return await self.ll.readlink(inode, await self._caller(ctx))

    @_guard
    async def mknod(self, parent_inode, name, mode, rdev, ctx):
        return entry_attributes(await self.ll.mknod(parent_inode, name, mode, rdev, await self._caller(ctx)))

    @_guard
    async def mkdir(self, parent_inode, name, mode, ctx):
        return entry_attributes(await self.ll.mkdir(parent_inode, name, mode, await self._caller(ctx)))

    @_guard
    async def unlink(self, parent_inode, name, ctx):
        await self.ll.unlink(parent_inode, name, await self._caller(ctx))

    @_guard
    async def rmdir(self, parent_inode, name, ctx):
        await self.ll.rmdir(parent_inode, name, await self._caller(ctx))

    @_guard
    async def symlink(self, parent_inode, name, target, ctx):
        return entry_attributes(await self.ll.symlink(parent_inode, name, target, await self._caller(ctx)))

    @_guard
    async def rename(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx):
        await self.ll.rename(parent_inode_old, name_old, parent_inode_new, name_new, flags,
                             await self._caller(ctx))

    @_guard
    async def link(self, inode, new_parent_inode, new_name, ctx):
        return entry_attributes(await self.ll.link(inode, new_parent_inode, new_name, await self._caller(ctx)))

    @_guard
    async def open(self, inode, flags, ctx):
        return file_info(await self.ll.open(inode, flags, await self._caller(ctx)))

    @_guard
    async def create(self, parent_inode, name, mode, flags, ctx):
        opened, entry = await self.ll.create(parent_inode, name, mode, flags, await self._caller(ctx))
        return file_info(opened), entry_attributes(entry)

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
        return await self.ll.opendir(inode, await self._caller(ctx))

    @_guard
    async def readdir(self, fh, start_id, token):
        await self.ll.readdir(fh, start_id, lambda name, e, nxt: pyfuse3.readdir_reply(
            token, name, entry_attributes(e), nxt))

    @_guard
    async def releasedir(self, fh):
        await self.ll.releasedir(fh)

    @_guard
    async def fsyncdir(self, fh, datasync):
        await self.ll.fsyncdir(fh, datasync)

    @_guard
    async def statfs(self, ctx):
        st = await self.ll.statfs(await self._caller(ctx))
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = st.bsize
        s.f_blocks, s.f_bfree, s.f_bavail = st.blocks, st.bfree, st.bavail
        s.f_files, s.f_ffree, s.f_favail = st.files, st.ffree, st.ffree
        s.f_namemax = st.namemax
        return s

    @_guard
    async def setxattr(self, inode, name, value, ctx):
        await self.ll.setxattr(inode, name, value, await self._caller(ctx))

    @_guard
    async def getxattr(self, inode, name, ctx):
        return await self.ll.getxattr(inode, name, await self._caller(ctx))

    @_guard
    async def listxattr(self, inode, ctx):
        return await self.ll.listxattr(inode, await self._caller(ctx))

    @_guard
    async def removexattr(self, inode, name, ctx):
        await self.ll.removexattr(inode, name, await self._caller(ctx))

    async def access(self, inode, mode, ctx):
        return True     # the kernel checks permissions (default_permissions); the MDS checks again
