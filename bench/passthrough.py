"""A minimal pass-through FUSE file system (pyfuse3 + trio): the baseline lustrepy is measured against.

    python bench/passthrough.py SRC MNT [--debug]

Mirrors the local directory SRC on MNT, with the settings a fair Python FUSE
file system would use: 1 s kernel entry and attribute timeouts, kernel page
caching kept across opens (keep_cache), default_permissions. Handlers call
the blocking system calls inline (one trio thread, no worker threads), so
the figures show what the FUSE round trip and Python cost, nothing more.

Enough for the benchmark workloads and ordinary shell tools (lookup,
getattr, setattr, readdir, open, create, read, write, release, unlink,
mkdir, rmdir, rename, statfs, fsync, symlink, readlink); no hard links,
device nodes or xattrs. Inodes are remembered as (parent inode, name), so a
renamed directory keeps its children reachable. Runs in the foreground;
SIGTERM or SIGINT unmounts it. Never writes outside SRC.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import stat
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pyfuse3
import trio

log = logging.getLogger(__name__)

TIMEOUT_S = 1.0
T = TypeVar("T")


def _os(fn: Callable[..., T], *args: Any) -> T:
    """Run one system call; an OSError becomes the FUSEError the kernel expects."""
    try:
        return fn(*args)
    except OSError as e:
        raise pyfuse3.FUSEError(e.errno or errno.EIO) from None


class Passthrough(pyfuse3.Operations):
    enable_writeback_cache = False

    def __init__(self, src: str) -> None:
        super().__init__()
        self.src = os.path.abspath(src)
        # inode -> (parent inode, name); the root is the one inode with no name. An entry stays
        # while the kernel holds lookups on the inode or it is the parent of another entry.
        self.names: dict[int, tuple[int, bytes]] = {}
        self.lookups: dict[int, int] = {}
        self.kids: dict[int, int] = {}         # inode -> number of entries in `names` under it
        self.fds: dict[int, int] = {}          # open fd -> inode (stat of files unlinked while open)
        self.root_ino = os.lstat(self.src).st_ino

    # ---- inodes ---------------------------------------------------------------

    def _ino(self, st_ino: int) -> int:
        return pyfuse3.ROOT_INODE if st_ino == self.root_ino else st_ino

    def path(self, inode: int) -> bytes:
        parts = []
        while inode != pyfuse3.ROOT_INODE:
            try:
                inode, name = self.names[inode]
            except KeyError:
                raise pyfuse3.FUSEError(errno.ESTALE) from None
            parts.append(name)
        return os.path.join(os.fsencode(self.src), *reversed(parts))

    def _child(self, parent: int, name: bytes) -> bytes:
        return os.path.join(self.path(parent), name)

    def _name(self, ino: int, parent: int, name: bytes) -> None:
        old = self.names.get(ino)
        if old == (parent, name):
            return
        self.names[ino] = (parent, name)
        self.kids[parent] = self.kids.get(parent, 0) + 1
        if old is not None:
            self.kids[old[0]] -= 1
            self._drop(old[0])

    def _drop(self, ino: int) -> None:
        """Forget inodes the kernel no longer holds and no remembered entry lies under."""
        while ino in self.names and not self.lookups.get(ino) and not self.kids.get(ino):
            parent, _ = self.names.pop(ino)
            self.kids.pop(ino, None)
            self.kids[parent] -= 1
            ino = parent

    def _remember(self, parent: int, name: bytes, st: os.stat_result) -> pyfuse3.EntryAttributes:
        """An entry handed to the kernel: one more lookup on its inode."""
        ino = self._ino(st.st_ino)
        if ino != pyfuse3.ROOT_INODE:
            self._name(ino, parent, name)
            self.lookups[ino] = self.lookups.get(ino, 0) + 1
        return self._attr(st)

    def _attr(self, st: os.stat_result) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = self._ino(st.st_ino)
        a.generation = 0
        a.entry_timeout = TIMEOUT_S
        a.attr_timeout = TIMEOUT_S
        a.st_mode, a.st_nlink, a.st_uid, a.st_gid = st.st_mode, st.st_nlink, st.st_uid, st.st_gid
        a.st_rdev, a.st_size, a.st_blksize, a.st_blocks = st.st_rdev, st.st_size, st.st_blksize, st.st_blocks
        a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
        return a

    def _stat(self, inode: int) -> os.stat_result:
        try:
            st = os.lstat(self.path(inode))
            if self._ino(st.st_ino) == inode:
                return st
        except OSError:
            pass
        for fd, ino in self.fds.items():              # unlinked or replaced, but still open
            if ino == inode:
                return _os(os.fstat, fd)
        raise pyfuse3.FUSEError(errno.ESTALE)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, n in inode_list:
            left = self.lookups.get(inode, 0) - n
            if left > 0:
                self.lookups[inode] = left
            else:
                self.lookups.pop(inode, None)
                self._drop(inode)

    # ---- attributes -----------------------------------------------------------

    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if name == b".":
            return self._attr(self._stat(parent_inode))
        if name == b"..":
            up = self.names.get(parent_inode, (pyfuse3.ROOT_INODE, b""))[0]
            return self._attr(self._stat(up))
        return self._remember(parent_inode, name, _os(os.lstat, self._child(parent_inode, name)))

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attr(self._stat(inode))

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        target: int | bytes = fh if fh is not None else self.path(inode)
        if fields.update_size:
            _os(os.truncate, target, attr.st_size)
        if fields.update_mode:
            _os(os.chmod, target, stat.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            _os(os.chown, target, attr.st_uid if fields.update_uid else -1,
                attr.st_gid if fields.update_gid else -1)
        if fields.update_atime or fields.update_mtime:
            st = _os(os.stat, target)
            ns = (attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                  attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns)
            _os(lambda: os.utime(target, ns=ns))
        return self._attr(_os(os.fstat, fh) if fh is not None else self._stat(inode))

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        sv = _os(os.statvfs, self.src)
        out = pyfuse3.StatvfsData()
        for f in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_favail",
                  "f_namemax"):
            setattr(out, f, getattr(sv, f))
        return out

    # ---- directories ----------------------------------------------------------

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        # Entries in name order; the offset of an entry is its position + 1.
        with _os(os.scandir, self.path(fh)) as it:
            names = sorted(e.name for e in it)
        for i in range(start_id, len(names)):
            name = os.fsencode(names[i])
            try:
                st = os.lstat(os.path.join(self.path(fh), name))
            except OSError:
                continue                                  # removed meanwhile
            if not pyfuse3.readdir_reply(token, name, self._attr(st), i + 1):
                break
            self._remember(fh, name, st)                  # readdirplus: the kernel took a lookup

    async def releasedir(self, fh: int) -> None:
        pass

    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = self._child(parent_inode, name)
        _os(os.symlink, target, path)
        return self._remember(parent_inode, name, _os(os.lstat, path))

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return _os(os.readlink, self.path(inode))  # type: ignore[no-any-return]  # bytes in, bytes out

    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        path = self._child(parent_inode, name)
        _os(os.mkdir, path, stat.S_IMODE(mode))
        return self._remember(parent_inode, name, _os(os.lstat, path))

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        _os(os.rmdir, self._child(parent_inode, name))

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        _os(os.unlink, self._child(parent_inode, name))

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: pyfuse3.RequestContext) -> None:
        old, new = self._child(parent_inode_old, name_old), self._child(parent_inode_new, name_new)
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        if flags & pyfuse3.RENAME_NOREPLACE and os.path.lexists(new):  # noqa: ASYNC240 (inline by design)
            raise pyfuse3.FUSEError(errno.EEXIST)
        st = _os(os.lstat, old)
        _os(os.rename, old, new)
        ino = self._ino(st.st_ino)
        if ino in self.names:
            self._name(ino, parent_inode_new, name_new)

    # ---- files ----------------------------------------------------------------

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        fd = _os(os.open, self.path(inode), flags & ~os.O_CREAT)
        if self._ino(os.fstat(fd).st_ino) != inode:         # the name now holds another file
            os.close(fd)
            raise pyfuse3.FUSEError(errno.ESTALE)
        self.fds[fd] = inode
        return pyfuse3.FileInfo(fh=fd, keep_cache=True)

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        fd = _os(os.open, self._child(parent_inode, name), flags | os.O_CREAT, stat.S_IMODE(mode))
        attr = self._remember(parent_inode, name, _os(os.fstat, fd))
        self.fds[fd] = attr.st_ino
        return pyfuse3.FileInfo(fh=fd, keep_cache=True), attr

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return _os(os.pread, fh, size, off)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return _os(os.pwrite, fh, buf, off)

    async def flush(self, fh: int) -> None:
        pass

    async def fsync(self, fh: int, datasync: bool) -> None:
        _os(os.fdatasync if datasync else os.fsync, fh)

    async def release(self, fh: int) -> None:
        self.fds.pop(fh, None)
        _os(os.close, fh)


async def serve() -> None:
    """Run the session until it ends (unmounted from outside) or SIGTERM/SIGINT arrives."""
    async with trio.open_nursery() as nursery:
        async def on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info("signal %d: unmounting", signum)
                    nursery.cancel_scope.cancel()
                    return

        async def session() -> None:
            await pyfuse3.main()
            nursery.cancel_scope.cancel()

        nursery.start_soon(on_signal)
        nursery.start_soon(session)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="passthrough", description="Mirror SRC on MNT through FUSE (benchmark baseline).")
    ap.add_argument("src")
    ap.add_argument("mnt")
    ap.add_argument("--debug", action="store_true", help="log every FUSE request")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if ns.debug else logging.WARNING,
                        format="passthrough: %(levelname)s %(message)s")
    for d in (ns.src, ns.mnt):
        if not os.path.isdir(d):
            print(f"passthrough: {d} is not a directory", file=sys.stderr)
            return 1
    opts = set(pyfuse3.default_options) | {"fsname=passthrough", "subtype=passthrough"}
    if ns.debug:
        opts.add("debug")
    try:
        pyfuse3.init(Passthrough(ns.src), ns.mnt, opts)
    except RuntimeError as e:
        print(f"passthrough: cannot mount {ns.mnt}: {e}", file=sys.stderr)
        return 1
    try:
        trio.run(serve)
    finally:
        pyfuse3.close(unmount=True)       # a no-op when it was unmounted from outside
    return 0


if __name__ == "__main__":
    sys.exit(main())
