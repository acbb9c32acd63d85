"""The client's POSIX layer (Lustre's llite): what each FUSE operation does.

Metadata goes to the MDS through the mdc with intents (lookup+getattr, open,
open+create in one RPC each) and reint updates; file data goes through the
data path (osc/lov). Names, attributes and layouts are cached exactly as long
as the MDS locks that cover them are held, and the kernel gets long timeouts
under those locks; when a lock is called back, the kernel is told to forget
(through the notifier thread, never inline). A regular file's size is the
MDS's only while no one has it open for write (size on MDS); otherwise it
comes from the OSS lock value blocks (glimpse).

Blocking RPCs run in worker threads through lustrepy.rpc.bridge. Raises only
LpError (the FUSE adapter turns it into FUSEError).
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import pyfuse3

from lustrepy.common import perm
from lustrepy.common.errors import LpError, StaleFid
from lustrepy.common.fid import Fid
from lustrepy.common.layout import LOV_XATTR, Layout
from lustrepy.common.names import check_name
from lustrepy.common.protocol import DISP, IT, RENAME, SA
from lustrepy.common.records import Attr, Cred
from lustrepy.client.inodes import Inode, InodeTable, Revoked
from lustrepy.client.closer import Closer
from lustrepy.client.mdc import SIZE_LOST
from lustrepy.client.notify import Notifier
from lustrepy.client.reval import RetryHolds
from lustrepy.client.wbc import Wbc
from lustrepy.client.wbcdata import ROOT as WBC_BOOKKEEPING
from lustrepy.client.wbcdata import WbcData
from lustrepy.client.wbcops import LocalOps
from lustrepy.rpc.bridge import Bridge
from lustrepy.rpc.convert import attr_from_pb, layout_from_pb
from lustrepy.ldlm.inodebits import IBit

log = logging.getLogger(__name__)

LOOKUP_BITS = int(IBit.LOOKUP | IBit.UPDATE | IBit.PERM | IBit.LAYOUT | IBit.XATTR)
WBC_XATTR = b"lustrepy.wbc"
LISTING_MAX = 65536    # a WBC directory with more entries is changed on the server side
LISTING_FH = 1 << 62   # directory handles of local listings: above every inode number
TTL = 86400.0          # kernel caching under a lock: until the lock is called back
LOOKUP_TRIES = 4       # a lookup asks the MDS again when names in its directory changed here meanwhile
NOTIFY_WAIT = 2.0      # seconds a called-back lock waits for the kernel to drop what it covered
_TIME_BITS = SA.ATIME | SA.MTIME | SA.CTIME | SA.ATIME_NOW | SA.MTIME_NOW
NOW_SLACK_NS = 5 * 10**9   # a time this near the clock, set by someone not the owner, is "now" (UTIME_NOW)
BLKSIZE = 1 << 20
# pyfuse3 SetattrFields flag -> (SetattrOp valid bit, SetattrOp field, EntryAttributes field)
_SETATTR_FIELDS = (
    ("update_mode", SA.MODE, "mode", "st_mode"),
    ("update_uid", SA.UID, "uid", "st_uid"),
    ("update_gid", SA.GID, "gid", "st_gid"),
    ("update_atime", SA.ATIME, "atime_ns", "st_atime_ns"),
    ("update_mtime", SA.MTIME, "mtime_ns", "st_mtime_ns"),
    ("update_ctime", SA.CTIME, "ctime_ns", "st_ctime_ns"),
)


@dataclass
class Handle:
    node: Inode
    mds_handle: int
    flags: int
    data: Any = None        # FileData
    wrote: bool = False     # this handle wrote data: its close reports the size
    lazy: bool = False      # a regular file made under a WBC grant: no objects yet, data opened at first write
    closed: bool = False    # released (under Llite._open_mu: an MDS open made after it is closed at once)
    reported: int = -1      # the size this handle's last fsync recorded at the MDS
    cred: Cred | None = None    # who opened it (FUSE's write carries no caller: Linux's rules ask for one)
    sgid_checked: bool = False  # its first write looked at a setgid bit to clear (_drop_sgid)

    @property
    def writer(self) -> bool:
        return self.flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


_GROUPS: dict[tuple[int, int, int], tuple[float, tuple[int, ...]]] = {}
GROUPS_TTL = 1.0        # seconds a process's supplementary groups are reused before /proc is read again


def cred_of(ctx: Any) -> Cred:
    """The caller's credentials, with supplementary groups from /proc (FUSE passes uid/gid only).

    The groups of a (pid, uid, gid) are read once a second at most: a create loop would
    otherwise read /proc for every file."""
    if ctx is None:
        return Cred()
    key = (ctx.pid, ctx.uid, ctx.gid)
    now = time.monotonic()
    hit = _GROUPS.get(key)
    if hit is not None and now - hit[0] < GROUPS_TTL:
        return Cred(ctx.uid, ctx.gid, hit[1])
    if len(_GROUPS) > 4096:
        _GROUPS.clear()
    groups: tuple[int, ...] = ()
    try:
        with open(f"/proc/{ctx.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Groups:"):
                    groups = tuple(int(g) for g in line.split()[1:])
                    break
    except OSError:
        pass
    _GROUPS[key] = (now, groups)
    return Cred(ctx.uid, ctx.gid, groups)


class Llite:
    def __init__(self, mdc, data, notifier: Notifier, wbc: Wbc | None = None) -> None:
        self.mdc = mdc
        self.wbc = wbc
        self.data = data
        self.notify = notifier
        self.table = InodeTable()
        self.meta = Bridge(32)
        self.io = Bridge(32)
        self.handles: dict[int, Handle] = {}
        self._listings: dict[int, list[tuple[bytes, Inode]]] = {}      # directory handles listed locally
        self._listing_dirs: dict[int, int] = {}                         # ... and the directory each lists
        self._listing_fhs = itertools.count(LISTING_FH)
        self.closer = Closer(mdc.close_handles)
        self.holds = RetryHolds()               # files held open for a kernel's second look (reval.py)
        self._open_mu = threading.Lock()        # MDS opens of handles opened here only (_mds_open)
        self._fh = itertools.count(1)
        root = self.table.ensure(mdc.root)
        root.lookups = 1
        self.local = LocalOps(self.table, wbc) if wbc is not None else None
        self.wbcdata: WbcData | None = None
        if wbc is not None:
            wbc.on_refused = self._give_up_grants
            self.wbcdata = wbc.data = WbcData(self.table, data)
            self.wbcdata.record = wbc.record
            self.wbcdata.op_lock = wbc.op_lock
            self.wbcdata.layout_of = self._layout_now

    # ---- lock callbacks (called from lock-client threads) --------------------------------

    def on_blocking(self, desc) -> None:
        self._give_back(desc.cookie)
        # The lock goes back when this returns: the kernel must have dropped what it covered by
        # then, or another client's change (a writer's open, a rename) meets our stale attributes.
        self.notify.wait_sent(NOTIFY_WAIT)

    def _give_back(self, cookie: int) -> None:
        """A lock goes back: a WBC lock's records first; then the kernel forgets what it covered."""
        if self.wbc is not None and self.local is not None:
            g = self.wbc.revoke(cookie)
            if g is not None:
                self._lazy_opens_to_mds(g.cookie)
                for r in self.local.dropped(g):
                    self._forget_revoked(r)
        rev = self.table.revoke(cookie)
        self.mdc.locks.release(cookie)              # a pinned lock goes back once flushed
        if rev is not None:
            self._forget_revoked(rev)

    def _forget_revoked(self, rev: Revoked) -> None:
        if rev.attrs:
            self.notify.inode(rev.ino, attr_only=True)
        for parent, name in rev.entries:
            self.notify.entry(parent, name)

    def _give_up_grants(self) -> None:
        """The MDS refused a record, or forgot our locks: stop working locally, so what we
        show comes from the MDS (in a thread of its own: giving a grant back flushes)."""
        def run() -> None:
            assert self.wbc is not None
            for g in self.wbc.grants():
                self._give_back(g.cookie)
        threading.Thread(target=run, name="wbc-give-up", daemon=True).start()

    def _made_here(self, node: Inode) -> bool:
        """The inode was made under a WBC grant that still lasts."""
        return bool(node.wbc_grant) and self.wbc is not None and self.wbc.live(node.wbc_grant) is not None

    def _parent_fid(self, node: Inode) -> Fid | None:
        """A directory the inode is named in (the one whose default layout it takes)."""
        parent = next((self.table.get(p) for p, _ in sorted(node.names)), None)
        return parent.fid if parent is not None else None

    async def _sync_records(self) -> None:
        """Before a request the MDS answers from its own state: our records get there first."""
        if self.wbc is not None and self.wbc.pending():
            await self.meta.run(self.wbc.flush)

    async def _adopt_grant(self, rep, node: Inode) -> None:
        """A reply brought a WBC lock on `node`: hold it, and know the directory's listing."""
        desc = rep.wbc_lock
        if self.wbc is None or self.local is None or not desc.cookie:
            return
        if not self.mdc.locks.hold(desc.cookie):
            return
        g = self.wbc.adopt(desc)
        if g is None:
            self.mdc.locks.release(desc.cookie)
            self.mdc.locks.drop(desc.cookie)        # not ours to use: back to the MDS
            return
        self.local.adopted(g, node)
        if node.complete is None:
            names = await self.meta.run(self._listing, node.fid)
            with self.table.mu:
                if names is not None and node.complete is None:
                    node.complete = names
            if names is None:                       # too big to list here: the grant is of no use
                await self.meta.run(self._give_back, g.cookie)
                self.mdc.locks.drop(g.cookie)

    def _listing(self, fid: Fid) -> set[bytes] | None:
        names: set[bytes] = set()
        cookie = 0
        while len(names) <= LISTING_MAX:
            rep = self.mdc.readdir(fid, cookie, 1024, False)
            for e in rep.entries:
                if e.name not in (b".", b".."):
                    names.add(e.name)
                cookie = e.cookie
            if rep.eof or not rep.entries:
                return names
        return None

    def on_evicted(self) -> None:
        if self.wbc is not None and self.wbc.held():
            self._give_up_grants()          # the MDS forgot our WBC locks: work on its side again
        for rev in self.table.drop_all_locks():
            self._forget_revoked(rev)

    def on_data_store(self, fid: Fid, offset: int, data: bytes) -> None:
        """Fetched bytes the kernel may keep (the data path holds the PR lock that covers them)."""
        node = self.table.by_fid(fid)
        if node is not None and node.lookups > 0:
            self.notify.store(node.ino, offset, data)

    def on_data_invalidate(self, fid: Fid) -> None:
        """The data path lost a lock on one of the file's objects: the kernel drops its pages."""
        node = self.table.by_fid(fid)
        if node is not None:
            node.size_valid = False
            self.notify.inode(node.ino, attr_only=False)

    # ---- helpers ---------------------------------------------------------------------------

    def _node(self, ino: int) -> Inode:
        node = self.table.get(ino)
        if node is None:
            raise StaleFid(f"inode number {ino}")
        return node

    def _live(self, node: Inode) -> Inode:
        """`node`, unless this client knows it is gone: made here under a grant, it lost its
        last name here while not open (its records destroy it at the MDS). A dentry the
        kernel resolved to it before that gets ESTALE, and the kernel looks the name up again."""
        a = node.attr
        if a is not None and a.nlink == 0 and not node.opens and self._made_here(node):
            raise StaleFid(f"inode {node.fid}")
        return node

    async def _at_mds(self, node: Inode, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A request about `node` to the MDS. ESTALE (the MDS has no such inode any more):
        what is cached of the inode goes before the kernel hears it."""
        try:
            return await self.meta.run(fn, *args, **kwargs)
        except LpError as e:
            if e.errno == errno.ESTALE:
                self._forget_stale(node)
            raise

    def _forget_stale(self, node: Inode) -> None:
        """The MDS has no inode `node` any more: its attributes, names and layout go, and the
        locks that covered them go back (nothing can use them); the kernel forgets the names."""
        if self._made_here(node):
            return                      # what this client made under a grant is known here first
        log.debug("%s is gone at the MDS", node.fid)
        with self.table.mu:
            cookies = list(node.locks)
            pinned = set(node.pinned)
        for c in cookies:
            rev = self.table.revoke(c)
            if c in pinned:
                self.mdc.locks.release(c)
            self.mdc.locks.drop(c)
            if rev is not None:
                self._forget_revoked(rev)
        with self.table.mu:
            node.attr = None

    def _learn(self, rep, *, name: tuple[int, bytes] | None = None, lookup: bool = False) -> Inode:
        attr = attr_from_pb(rep.attr)
        layout = layout_from_pb(rep.layout) if rep.has_layout else None
        lock = rep.lock.cookie if rep.HasField("lock") else 0
        bits = rep.lock.ibits if lock else 0
        node, redundant = self.table.learn(attr.fid, attr, size_valid=rep.attr.size_valid, lock=lock, bits=bits,
                                           layout=layout, name=name, lookup=lookup)
        if redundant:
            self.mdc.locks.drop(lock)
        elif lock and not self.mdc.locks.usable(lock):
            # Called back before it was recorded here (a conflicting update overtook the reply):
            # what it covered is not ours to cache; on_blocking found nothing to forget.
            rev = self.table.revoke(lock)
            if rev is not None:
                self._forget_revoked(rev)
        elif lock and bits & IBit.LOOKUP and stat.S_ISDIR(attr.mode) and lock not in node.pinned:
            # A directory's entry must not be dropped just because the lock LRU is full: the
            # kernel would unhash it under processes whose cwd it is. The server can still
            # call the lock back (on_blocking releases the pin).
            if self.mdc.locks.hold(lock):
                with self.table.mu:
                    node.pinned.add(lock)
        return node

    def _glimpse(self, node: Inode) -> int:
        if node.data is not None:
            return node.data.size()
        if node.layout is None or not node.layout.objects:
            return 0
        fd = self.data.open(node.fid, node.layout)
        try:
            return fd.size()
        finally:
            fd.release(flush=False)     # wrote nothing: a write-back error is for the writer's calls

    async def _fetch(self, node: Inode) -> None:
        rep = await self._at_mds(node, self.mdc.intent, IT.GETATTR, fid=node.fid, ibits=LOOKUP_BITS)
        self._learn(rep)

    async def _attr(self, node: Inode) -> tuple[Attr, float]:
        """Attributes for the kernel, with the attribute timeout they may be cached for."""
        if not node.attr_cached():
            await self._fetch(node)
        attr = node.attr
        assert attr is not None
        if not stat.S_ISREG(attr.mode):
            return attr, TTL if node.attr_cached() else 0.0
        if (node.size_valid and node.data is None) or (node.size_local and node.attr_cached()):
            return attr, TTL if node.attr_cached() else 0.0
        size = await self.io.run(self._glimpse, node)
        cached = node.data is not None and node.data.cached_lock() and node.attr_cached()
        return replace(attr, size=size, blocks=(size + 511) // 512), TTL if cached else 0.0

    def _entry(self, node: Inode, attr: Attr, attr_ttl: float) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = node.ino
        e.generation = 0
        e.entry_timeout = TTL if node.bits & IBit.LOOKUP else 0.0
        e.attr_timeout = attr_ttl
        e.st_mode = attr.mode
        e.st_nlink = attr.nlink
        e.st_uid = attr.uid
        e.st_gid = attr.gid
        e.st_rdev = attr.rdev
        e.st_size = attr.size
        e.st_blksize = node.layout.stripe_size if node.layout is not None and node.layout.objects else BLKSIZE
        e.st_blocks = attr.blocks
        e.st_atime_ns = attr.atime_ns
        e.st_mtime_ns = attr.mtime_ns
        e.st_ctime_ns = attr.ctime_ns
        return e

    async def _entry_of(self, node: Inode) -> pyfuse3.EntryAttributes:
        attr, ttl = await self._attr(node)
        return self._entry(node, attr, ttl)

    def _parent_from(self, rep) -> None:
        """Keep the parent's attributes as our own update left them (the kernel asks next)."""
        if rep.HasField("parent_attr") and rep.parent_attr.fid.seq:
            a = attr_from_pb(rep.parent_attr)
            self.table.learn(a.fid, a, size_valid=False)

    def _stale_after_update(self, *inos: int) -> None:
        """Our own update changed these inodes: refetch their attributes next time."""
        with self.table.mu:
            for ino in inos:
                node = self.table.get(ino)
                if node is not None:
                    node.attr = None

    # ---- ESTALE, and the kernel's second look -----------------------------------------------

    async def _stale_answered(self, ctx, coro: Any) -> Any:
        """Run a handler; when it answers ESTALE, the calling thread's next lookups are the
        kernel's second walk of the path (LOOKUP_REVAL), and hold what they find (reval.py)."""
        try:
            return await coro
        except LpError as e:
            if e.errno == errno.ESTALE:
                self.holds.stale_answered(getattr(ctx, "pid", 0))
            raise

    async def _let_go(self, ino: int | None = None, ctx=None) -> None:
        """Release the hold the caller made for this inode's open, and every hold past its deadline."""
        fhs = self.holds.expired()
        fh = self.holds.take(getattr(ctx, "pid", 0), ino) if ino is not None else None
        for f in ([fh] if fh is not None else []) + fhs:
            await self.release(f)

    # ---- lookups and attributes ---------------------------------------------------------------

    async def lookup(self, parent_ino: int, name: bytes, ctx) -> pyfuse3.EntryAttributes:
        await self._let_go()
        return await self._stale_answered(ctx, self._lookup(parent_ino, name, ctx))

    async def _lookup(self, parent_ino: int, name: bytes, ctx) -> pyfuse3.EntryAttributes:
        parent = self._node(parent_ino)
        if name == b".":
            return await self._entry_of(parent)
        check_name(name)
        # a thread walking its path again after an ESTALE opens what it finds, in the same request
        hold = self.holds.retrying(getattr(ctx, "pid", 0))
        for attempt in range(LOOKUP_TRIES):
            if self.table.known_absent(parent_ino, name):
                self.table.add_negative(parent_ino, name)
                raise _Negative(_negative_entry())
            if self.wbc is not None and self.wbc.local(parent.fid) is not None:
                child = self.table.child(parent_ino, name)
                if child is not None and child.attr_cached() and not hold:
                    with self.table.mu:
                        child.lookups += 1
                    return await self._entry_of(child)
                await self._sync_records()
            changes = self.table.name_changes(parent_ino)
            rep = await self.meta.run(self.mdc.intent_raw, IT.LOOKUP | IT.GETATTR | (IT.OPEN if hold else 0),
                                      cred_of(ctx), parent=parent.fid, name=name, ibits=LOOKUP_BITS,
                                      open_flags=os.O_RDONLY)
            if hold and rep.hdr.errno not in (0, errno.ENOENT, errno.ESTALE):
                hold = False                # not readable by the caller: a plain lookup then
                continue
            if self.table.name_changes(parent_ino) == changes or attempt == LOOKUP_TRIES - 1:
                break
            # This client renamed, linked or removed names in the directory while the MDS
            # answered: the answer may name what a rename replaced here. Ask again (the kernel
            # may be asking after an ESTALE, and retries only once).
            if rep.lock.cookie:
                self.mdc.locks.drop(rep.lock.cookie)
            if rep.open_handle:
                self.closer.submit(rep.open_handle)
        if rep.hdr.errno == errno.ESTALE:           # the directory itself is gone
            self._forget_stale(parent)
        if rep.hdr.errno:
            if rep.lock.cookie:
                # absent, and the parent's UPDATE lock now covers that: the kernel may cache it
                if not self.table.learn_lock(parent.fid, rep.lock.cookie, rep.lock.ibits):
                    self.mdc.locks.drop(rep.lock.cookie)
                self.table.add_negative(parent_ino, name)
                raise _Negative(_negative_entry())
            self.mdc.raise_for(rep)
        node = self._learn(rep, name=(parent_ino, name), lookup=True)
        if rep.open_handle:
            await self._hold(node, rep.open_handle, getattr(ctx, "pid", 0))
        return await self._entry_of(node)

    async def _hold(self, node: Inode, mds_handle: int, tid: int) -> None:
        """Keep a regular file open until the open a retried walk found it for (reval.py);
        anything else is closed again at once."""
        if node.attr is None or not stat.S_ISREG(node.attr.mode):
            self.closer.submit(mds_handle)
            return
        fh, _ = self._new_handle(node, mds_handle, os.O_RDONLY)
        older = self.holds.held(tid, node.ino, fh)
        if older is not None:
            await self.release(older)

    async def getattr(self, ino: int, ctx) -> pyfuse3.EntryAttributes:
        return await self._stale_answered(ctx, self._entry_of(self._live(self._node(ino))))

    async def setattr(self, ino: int, attr, fields, fh: int | None, ctx) -> pyfuse3.EntryAttributes:
        node = self._node(ino)
        cred = cred_of(ctx)
        op: dict[str, Any] = {"valid": 0}
        for flag, bit, field_name, st_name in _SETATTR_FIELDS:
            if getattr(fields, flag):
                op["valid"] |= bit
                op[field_name] = getattr(attr, st_name)
        if not node.attr_cached():
            await self._fetch(node)         # the rules below look at mode and owner: current ones
        a = node.attr
        if a is not None:
            _times_now(op, cred, a)
        h = self.handles.get(fh) if fh is not None else None
        made_here = self.wbcdata is not None and self._made_here(node)
        by_writer = fields.update_size and h is not None and h.writer     # ftruncate: no permission re-check
        if fields.update_size:
            op["valid"] |= SA.SIZE
            op["size"] = attr.st_size
            if by_writer:
                op["open_handle"] = h.mds_handle
        if a is not None:
            # Checked before anything changes (a refused setattr changes nothing); the MDS checks again.
            mode = perm.check_setattr(cred, a, perm.Change(
                op["valid"], op.get("mode", 0), op.get("uid", 0), op.get("gid", 0), op.get("size", 0),
                writer=by_writer))
            if mode != a.mode and not op["valid"] & SA.MODE:
                # setuid/setgid cleared by the change, asked for explicitly: a size kept here
                # never reaches the MDS as this caller's change
                op["valid"] |= SA.MODE
                op["mode"] = mode & 0o7777
        if fields.update_size and a is not None and stat.S_ISREG(a.mode):
            await self.io.run(self._truncate, node, attr.st_size)
        local_cred = cred
        if (fields.update_size and made_here and self.wbcdata is not None
                and self.wbcdata.truncate(node, attr.st_size)):
            op["valid"] &= ~SA.SIZE                 # its bytes are here: cut or grown here
            op.pop("size", None)
            op.pop("open_handle", None)
            if not op["valid"]:
                return await self._entry_of(node)
            if not op["valid"] & ~_TIME_BITS:
                # The times of a truncate checked above (perhaps through a handle, which a
                # record cannot carry): the client's own bookkeeping, as its size records.
                local_cred = WBC_BOOKKEEPING
        return await self._entry_of(await self._apply_setattr(node, op, cred, local_cred))

    async def _apply_setattr(self, node: Inode, op: dict[str, Any], cred: Cred,
                             local_cred: Cred | None = None) -> Inode:
        """A checked setattr: done locally under a WBC grant, else by the MDS."""
        if self.local is not None and self.local.setattr(node, op, local_cred or cred):
            return node
        await self._sync_records()
        rep = await self._at_mds(node, self.mdc.setattr, node.fid, cred, **op)
        return self._learn(rep)

    async def _drop_sgid(self, h: Handle) -> None:
        """The first write through a handle: Linux clears a setgid bit without group-execute
        too when the writer is neither in the file's group nor root (setattr_should_drop_sgid),
        which the kernel's FUSE leaves to the file system (it asks for the other cases)."""
        h.sgid_checked = True
        a, cred = h.node.attr, h.cred
        if (a is None or cred is None or cred.uid == 0 or not stat.S_ISREG(a.mode)
                or a.mode & (stat.S_ISGID | stat.S_IXGRP) != stat.S_ISGID or cred.in_group(a.gid)):
            return
        op: dict[str, Any] = {"valid": SA.MODE, "mode": a.mode & 0o7777 & ~stat.S_ISGID}
        try:
            perm.check_setattr(cred, a, perm.Change(SA.MODE, op["mode"], writer=h.writer))
            await self._apply_setattr(h.node, op, cred)
            self.notify.inode(h.node.ino, attr_only=True)      # the kernel still shows the bit
        except LpError as e:
            log.info("%s: setgid bit not cleared on write: %s", h.node.fid, e.message)

    def _truncate(self, node: Inode, size: int) -> None:
        if node.layout is None or not node.layout.objects:
            return
        fd = node.data if node.data is not None else self.data.open(node.fid, node.layout)
        try:
            fd.truncate(size)
        finally:
            if fd is not node.data:
                fd.release()

    async def readlink(self, ino: int, ctx) -> bytes:
        node = self._node(ino)
        await self._sync_records()
        return await self._at_mds(node, self.mdc.readlink, node.fid, cred_of(ctx))

    # ---- namespace updates -----------------------------------------------------------------------

    async def _made(self, parent_ino: int, name: bytes, rep) -> pyfuse3.EntryAttributes:
        self._parent_from(rep)
        self.table.entry_added(parent_ino, name)
        node = self._learn(rep, name=(parent_ino, name), lookup=True)
        if stat.S_ISDIR(rep.attr.mode) and rep.lock.ibits & IBit.UPDATE:
            node.complete = set()       # new and empty, and ours while the lock lasts
        return await self._entry_of(node)

    async def _wbc_room(self) -> None:
        """The journal is at its bound: the records go to the MDS before more are made."""
        if self.wbc is not None and self.wbc.journal.full:
            await self.meta.run(self.wbc.flush, commit=True)

    def _made_locally(self, parent: Inode, name: bytes, mode: int, rdev: int, ctx,
                      target: bytes = b"") -> Inode | None:
        if self.local is None:
            return None
        g = self.local.grant_for(parent)
        return self.local.create(g, parent, name, mode, rdev, cred_of(ctx), target) if g is not None else None

    async def mknod(self, parent_ino: int, name: bytes, mode: int, rdev: int, ctx) -> pyfuse3.EntryAttributes:
        check_name(name)
        await self._wbc_room()
        parent = self._node(parent_ino)
        node = self._made_locally(parent, name, mode, rdev, ctx)
        if node is not None:
            return await self._entry_of(node)
        await self._sync_records()
        rep = await self.meta.run(self.mdc.create, parent.fid, name, mode, cred_of(ctx), None, rdev)
        return await self._made(parent_ino, name, rep)

    async def mkdir(self, parent_ino: int, name: bytes, mode: int, ctx) -> pyfuse3.EntryAttributes:
        check_name(name)
        await self._wbc_room()
        parent = self._node(parent_ino)
        node = self._made_locally(parent, name, stat.S_IFDIR | (mode & 0o7777), 0, ctx)
        if node is not None:
            return await self._entry_of(node)
        await self._sync_records()
        rep = await self.meta.run(lambda: self.mdc.mkdir(parent.fid, name, mode, cred_of(ctx),
                                                         want_wbc=self.wbc is not None))
        entry = await self._made(parent_ino, name, rep)
        if rep.wbc_lock.cookie:
            await self._adopt_grant(rep, self._node(entry.st_ino))
        return entry

    async def symlink(self, parent_ino: int, name: bytes, target: bytes, ctx) -> pyfuse3.EntryAttributes:
        check_name(name)
        await self._wbc_room()
        parent = self._node(parent_ino)
        node = self._made_locally(parent, name, stat.S_IFLNK | 0o777, 0, ctx, target)
        if node is not None:
            return await self._entry_of(node)
        await self._sync_records()
        rep = await self.meta.run(self.mdc.symlink, parent.fid, name, target, cred_of(ctx))
        return await self._made(parent_ino, name, rep)

    async def link(self, ino: int, new_parent_ino: int, new_name: bytes, ctx) -> pyfuse3.EntryAttributes:
        check_name(new_name)
        node, parent = self._node(ino), self._node(new_parent_ino)
        if self.local is not None:
            await self._wbc_room()
            g = self.local.grant_for(parent)
            if g is not None and self.local.link(g, node, parent, new_name, cred_of(ctx)):
                with self.table.mu:
                    node.lookups += 1           # the kernel holds the new entry
                return await self._entry_of(node)
        await self._sync_records()
        rep = await self._at_mds(node, self.mdc.link, node.fid, parent.fid, new_name, cred_of(ctx))
        self._parent_from(rep)
        self.table.entry_added(new_parent_ino, new_name)
        node = self._learn(rep, name=(new_parent_ino, new_name), lookup=True)
        return await self._entry_of(node)

    def _removed_locally(self, parent: Inode, name: bytes, ctx, rmdir: bool) -> bool:
        if self.local is None:
            return False
        g = self.local.grant_for(parent)
        victim = self.table.child(parent.ino, name)
        if g is None or not self.local.remove(g, parent, name, cred_of(ctx), rmdir=rmdir):
            return False
        if victim is not None:
            self._drop_kept(victim)
        return True

    def _drop_kept(self, victim: Inode) -> None:
        """A file made here lost its last name: the bytes kept for it go too."""
        a = victim.attr
        if self.wbcdata is not None and victim.wbc_data is not None and (a is None or a.nlink == 0):
            self.wbcdata.forget(victim)

    def _lazy_opens_to_mds(self, cookie: int) -> None:
        """A grant goes (its records are at the MDS): the open handles of files made under it that
        the MDS was never told of become MDS opens, so another client's unlink leaves those files
        to their openers (orphans) instead of destroying them. Runs in the lock callback's thread."""
        for h in self._handles_now():
            if h.lazy and not h.mds_handle and h.node.wbc_grant == cookie:
                try:
                    self._mds_open(h)
                except LpError as e:
                    log.warning("%s: telling the MDS of an open file failed: %s", h.node.fid, e.message)

    def _handles_now(self) -> list[Handle]:
        """The open handles (the FUSE thread may add and remove some meanwhile)."""
        for _ in range(8):
            try:
                return list(self.handles.values())
            except RuntimeError:            # changed size during the copy: take it again
                continue
        return []

    def _mds_open(self, h: Handle) -> None:
        """An MDS open for a handle opened here only, once (the FUSE thread and a lock callback
        may both ask); a handle released meanwhile has it closed again. The attributes here stay."""
        with self._open_mu:
            if h.mds_handle or h.closed:
                return
            flags = h.flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)
            rep = self.mdc.intent(IT.OPEN, fid=h.node.fid, open_flags=flags, ibits=LOOKUP_BITS)
            if rep.lock.cookie:
                self.mdc.locks.drop(rep.lock.cookie)
            h.mds_handle = rep.open_handle

    async def _open_at_mds(self, node: Inode | None) -> None:
        """Open handles of a file made here that the MDS was never told of become MDS opens
        before a server-side unlink or rename can leave the file without a name: the MDS
        then keeps it (an orphan) until they close, as for any open file."""
        if node is None:
            return
        node.mds_opens = True           # opens here while the update is on its way tell the MDS too
        for h in self._handles_now():
            if h.node is node and h.lazy and not h.mds_handle:
                try:
                    await self._at_mds(node, self._mds_open, h)
                except LpError as e:
                    if e.errno != errno.ESTALE:
                        raise
                    return                  # gone at the MDS already: nothing there to keep

    async def unlink(self, parent_ino: int, name: bytes, ctx) -> None:
        await self._wbc_room()
        parent = self._node(parent_ino)
        if self._removed_locally(parent, name, ctx, False):
            return
        await self._sync_records()
        await self._open_at_mds(self.table.child(parent_ino, name))
        rep = await self.meta.run(self.mdc.unlink, parent.fid, name, cred_of(ctx))
        self._parent_from(rep)
        self.table.entry_removed(parent_ino, name)
        victim = self.table.remove_name(parent_ino, name)
        if victim is not None:
            self._stale_after_update(victim.ino)

    async def rmdir(self, parent_ino: int, name: bytes, ctx) -> None:
        await self._wbc_room()
        parent = self._node(parent_ino)
        if self._removed_locally(parent, name, ctx, True):
            return
        await self._sync_records()
        rep = await self.meta.run(self.mdc.rmdir, parent.fid, name, cred_of(ctx))
        self._parent_from(rep)
        self.table.entry_removed(parent_ino, name)
        victim = self.table.remove_name(parent_ino, name)
        if victim is not None:
            self._stale_after_update(victim.ino)

    async def rename(self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes,
                     flags: int, ctx) -> None:
        check_name(new_name)
        sp, dp = self._node(old_parent), self._node(new_parent)
        if self.local is not None:
            await self._wbc_room()
            g = self.local.grant_for(sp)
            dg = self.local.grant_for(dp) if g is not None else None
            if g is not None and dg is not None and dg.cookie == g.cookie:
                done = self.local.rename(g, sp, old_name, dp, new_name, flags, cred_of(ctx))
                if isinstance(done, Inode):
                    self._drop_kept(done)
                if done is not False:
                    return
        await self._sync_records()
        await self._open_at_mds(self.table.child(new_parent, new_name))
        rep = await self.meta.run(self.mdc.rename, sp.fid, old_name, dp.fid, new_name, flags, cred_of(ctx))
        moved = self.table.remove_name(old_parent, old_name)
        other = self.table.remove_name(new_parent, new_name)
        self.table.entry_removed(old_parent, old_name)
        self.table.entry_added(new_parent, new_name)
        if flags & RENAME.EXCHANGE:                     # both names still exist
            self.table.entry_added(old_parent, old_name)
        touched = [n.ino for n in (moved, other) if n is not None]
        if old_parent != new_parent:
            touched.append(old_parent)
        self._stale_after_update(*touched)
        self._parent_from(rep)

    # ---- files ------------------------------------------------------------------------------------

    def _new_handle(self, node: Inode, mds_handle: int, flags: int, ctx=None) -> tuple[int, Handle]:
        """A file handle; `ctx` is the opener's (None: a handle of the client's own, never written)."""
        fh = next(self._fh)
        h = Handle(node, mds_handle, flags, cred=cred_of(ctx) if ctx is not None else None)
        self.handles[fh] = h
        with self.table.mu:
            node.opens += 1
        return fh, h

    def _open_data(self, node: Inode) -> Any:
        fd = self.data.open(node.fid, node.layout or Layout(objects=()))
        node.data = fd
        return fd

    async def create(self, parent_ino: int, name: bytes, mode: int, flags: int, ctx):
        check_name(name)
        await self._wbc_room()
        parent = self._node(parent_ino)
        node = self._made_locally(parent, name, mode, 0, ctx)
        if node is not None:
            fh, h = self._new_handle(node, 0, flags, ctx)
            h.lazy = True
            return pyfuse3.FileInfo(fh=fh), await self._entry_of(node)
        await self._sync_records()
        rep = await self.meta.run(lambda: self.mdc.intent_raw(
            IT.OPEN | IT.CREAT, cred_of(ctx), parent=parent.fid, name=name, open_flags=flags | os.O_CREAT,
            mode=mode, want_wbc=self.wbc is not None))
        self.mdc.raise_for(rep)
        if rep.wbc_lock.cookie:
            await self._adopt_grant(rep, parent)
        self._parent_from(rep)
        self.table.entry_added(parent_ino, name)
        node = self._learn(rep, name=(parent_ino, name), lookup=True)
        fh, h = self._new_handle(node, rep.open_handle, flags, ctx)
        if rep.disposition & DISP.OPEN_CREATE:
            node.size_local = True          # empty, and no one else has opened it yet
            h.data = self._open_data(node)  # a new inode: its data state is new, nothing to wait for
        else:                               # it existed (made elsewhere meanwhile): opened as it is
            await self._open_existing_data(fh, h)
        return pyfuse3.FileInfo(fh=fh), await self._entry_of(node)

    async def open(self, ino: int, flags: int, ctx) -> pyfuse3.FileInfo:
        try:
            return await self._stale_answered(ctx, self._open(ino, flags, ctx))
        finally:
            await self._let_go(ino, ctx)    # open now (or failed): the hold made for it has done its job

    async def _open(self, ino: int, flags: int, ctx) -> pyfuse3.FileInfo:
        node = self._live(self._node(ino))
        if (self._made_here(node) and node.attr is not None and node.attr_cached()
                and self._opens_here(node, flags, ctx)):
            # Made here, and never written or only read now: no MDS open yet (a server-side
            # unlink while it is open tells the MDS first, _open_at_mds).
            fh, h = self._new_handle(node, 0, flags, ctx)
            h.lazy = stat.S_ISREG(node.attr.mode)
            if h.lazy and node.mds_opens:
                try:
                    await self._at_mds(node, self._mds_open, h)
                except LpError:
                    await self.release(fh)
                    raise
            return pyfuse3.FileInfo(fh=fh)
        await self._sync_records()
        rep = await self._at_mds(node, self.mdc.intent, IT.OPEN, cred_of(ctx), fid=node.fid,
                                 open_flags=flags, ibits=LOOKUP_BITS)
        node = self._learn(rep)
        fh, h = self._new_handle(node, rep.open_handle, flags, ctx)
        keep = await self._open_existing_data(fh, h)
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep)

    async def _open_existing_data(self, fh: int, h: Handle) -> bool:
        """The data state of an existing inode the MDS opened for `h`; True when the kernel may
        keep the pages it has. With O_TRUNC the MDS has set the size to 0 in the open; the
        objects are cut here under PW extent locks, which calls back every other client's
        locks (their pages and sizes go). An open whose objects cannot be cut fails."""
        node = h.node
        if not stat.S_ISREG(node.attr.mode if node.attr else 0):
            return False
        h.data = await self.io.run(self._open_data, node)
        if not h.flags & os.O_TRUNC:
            return h.data.cached_lock()
        try:
            await self.io.run(h.data.truncate, 0)
        except LpError:
            await self.release(fh)
            raise
        return False

    def _opens_here(self, node: Inode, flags: int, ctx) -> bool:
        """May a file made under a live grant open without an MDS open? Yes while it has no
        objects or is only read; an O_TRUNC open only when its bytes are kept here."""
        if flags & os.O_TRUNC:
            return node.layout is None and self._truncated_here(node, ctx)
        return node.layout is None or flags & os.O_ACCMODE == os.O_RDONLY

    def _truncated_here(self, node: Inode, ctx) -> bool:
        """open(O_TRUNC) of a file made under a live grant, its bytes kept here: cut here, its
        mtime and ctime (and the setuid/setgid bits Linux clears) set by an update record.
        False: the MDS must do it."""
        a = node.attr
        if self.wbcdata is None or self.local is None or a is None:
            return False
        if not stat.S_ISREG(a.mode):
            return True                     # O_TRUNC means nothing to other kinds of file
        cred = cred_of(ctx)
        op: dict[str, Any] = {"valid": SA.MTIME | SA.MTIME_NOW, "mtime_ns": time.time_ns()}
        mode = perm.check_setattr(cred, a, perm.Change(SA.SIZE | op["valid"], writer=True))
        if mode != a.mode:
            op["valid"] |= SA.MODE
            op["mode"] = mode & 0o7777
        if not self.wbcdata.truncate(node, 0):
            return False
        return self.local.setattr(node, op, cred)

    def _h(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise LpError(errno.EBADF, "bad file handle")
        return h

    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self._h(fh)
        if h.data is None:
            if not h.lazy:
                raise LpError(errno.EISDIR, "not a regular file")
            kept = self.wbcdata.read(h.node, off, size) if self.wbcdata is not None else None
            if kept is not None:
                return kept
            if h.node.layout is None or not h.node.layout.objects:
                return b""                          # no objects: nothing written yet
            h.data = await self.io.run(self._open_data, h.node)     # its kept bytes went to its objects
        return await self.io.run(h.data.read, off, size)

    def _layout_now(self, node: Inode) -> Layout | None:
        """The objects of a file made under a grant whose create reached the MDS without them
        (a worker or flusher thread)."""
        rep = self.mdc.intent(IT.LAYOUT, fid=node.fid, ibits=LOOKUP_BITS, parent=self._parent_fid(node))
        if rep.lock.cookie:
            self.mdc.locks.drop(rep.lock.cookie)    # the attributes here are newer than the MDS's
        if not rep.has_layout:
            return None
        layout = layout_from_pb(rep.layout)
        with self.table.mu:
            node.layout = layout
        return layout

    def _keeps_data(self, h: Handle) -> bool:
        """This handle's file keeps its bytes in the client (made under a live grant, no objects yet)."""
        node = h.node
        a = node.attr
        return (self.wbcdata is not None and h.data is None and h.lazy and self._made_here(node)
                and (node.wbc_data is not None or (node.layout is None and a is not None and a.size == 0)))

    async def _ensure_layout(self, h: Handle) -> None:
        """A file created without objects gets its layout (the default) before its first write."""
        node = h.node
        fresh = node.layout is None or not node.layout.objects
        await self._sync_records()
        parent = self._parent_fid(node)
        rep = await self._at_mds(node, self.mdc.intent, IT.LAYOUT, fid=node.fid, ibits=LOOKUP_BITS,
                                 parent=parent)
        self._learn(rep)
        if not h.mds_handle:        # made under a WBC grant: the MDS learns of its writer now
            await self.meta.run(self._mds_open, h)
        old = h.data
        h.data = await self.io.run(self._open_data, node)
        if h.lazy:                  # made under a grant: nobody else holds locks on its objects
            await self.io.run(h.data.lock_whole)
        size = node.attr.size if node.attr is not None else 0
        if fresh and size:          # truncated up at the MDS before it had objects: they take that size
            await self.io.run(h.data.truncate, size)
        h.lazy = False
        if old is not None:
            await self.io.run(old.release)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self._h(fh)
        if h.data is None and not h.lazy:
            raise LpError(errno.EBADF, "not open for data")
        if not h.sgid_checked:
            await self._drop_sgid(h)
        if self._keeps_data(h):
            node = h.node
            at = len(node.wbc_data or b"") if h.flags & os.O_APPEND else off
            assert self.wbcdata is not None and self.wbc is not None
            if self.wbcdata.write(node, at, buf):
                self.wbc.note_data()
                return len(buf)
        if h.lazy or h.data is None or h.node.layout is None or not h.node.layout.objects:
            await self._ensure_layout(h)        # also: the MDS learns of this writer
        h.wrote = True
        h.node.size_valid = h.node.size_local = False
        if h.flags & os.O_APPEND:
            await self.io.run(h.data.append, buf)
        elif not h.data.write_nowait(off, buf):
            await self.io.run(h.data.write, off, buf)
        return len(buf)

    async def flush(self, fh: int) -> None:
        h = self._h(fh)
        if h.data is not None and not h.data.clean():
            await self.io.run(h.data.flush)
        self._refused(h.node.fid)

    async def fsync(self, fh: int, datasync: bool) -> None:
        """The bytes on the OSTs, committed; and (a writer's) the file's size at the MDS, committed
        before this returns: a size the application was told is durable is never lost with a
        close that does not come (fdatasync too, when this handle wrote: the size finds the data)."""
        h = self._h(fh)
        if h.data is not None:
            await self.io.run(h.data.fsync)
        if self.wbc is not None and (not datasync or h.data is None):
            await self._commit_records()        # records, and bytes kept here, reach the MDS and OSTs
        self._refused(h.node.fid)
        if not datasync:
            await self.meta.run(self.closer.drain, self.mdc.timeout)
        size = -1
        if h.data is not None and h.writer and h.mds_handle and (h.wrote or not datasync):
            size = await self.io.run(h.data.size)
        if size >= 0 and size != h.reported:
            await self.meta.run(self.mdc.report_size, h.mds_handle, size)    # the MDS commits it
            h.reported = size
        elif not datasync:
            await self.meta.run(self.mdc.sync)

    def _size_now(self, h: Handle) -> int:
        """The size this writer knows (counts data not yet flushed), or SIZE_LOST when it
        cannot learn it (an OST down): the MDS then takes the size from the objects."""
        try:
            return int(h.data.size())
        except LpError as e:
            log.warning("%s: the size of a file written here is unknown at its close: %s", h.node.fid, e.message)
            return SIZE_LOST

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is None:
            return
        node = h.node
        size = None
        try:
            if h.data is not None:
                if h.wrote:
                    size = await self.io.run(self._size_now, h)
                if not h.data.release_clean():
                    try:
                        await self.io.run(h.data.release)   # flushes what is still dirty
                    except LpError as e:    # close(2) had it from flush; what landed is the objects' to say
                        log.warning("%s: release: %s", node.fid, e.message)
                        if h.wrote:
                            size = SIZE_LOST
        finally:                                            # the MDS hears of the close whatever failed
            with self.table.mu:
                node.opens -= 1
                if node.opens == 0:
                    node.data = None
            with self._open_mu:
                h.closed = True
                mds_handle = h.mds_handle
            if mds_handle:
                self.closer.submit(mds_handle, size)

    def on_reconnected(self) -> None:
        """Connected again after an eviction or an MDS restart: the MDS may have closed our
        opens (and then distrusts the sizes of files written here). A thread opens each open
        file again and reports the size this client knows (not inline: a request waits on it)."""
        handles = [h for h in self._handles_now() if h.mds_handle]
        if handles:
            threading.Thread(target=self._reopen_all, args=(handles,), name="mds-reopen", daemon=True).start()

    def _reopen_all(self, handles: list[Handle]) -> None:
        for h in handles:
            try:
                self._reopen(h)
            except LpError as e:
                log.warning("%s: opening a file again after reconnecting failed: %s", h.node.fid, e.message)

    def _reopen(self, h: Handle) -> None:
        """One handle's MDS open made again (as _mds_open makes a first one); the old open is
        closed, with the size this client knows (a no-op if the MDS forgot it), and the size
        reported on the new one (the MDS trusts its size again)."""
        with self._open_mu:
            if h.closed or not h.mds_handle:
                return
            old = h.mds_handle
        flags = h.flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)
        rep = self.mdc.intent(IT.OPEN, fid=h.node.fid, open_flags=flags, ibits=LOOKUP_BITS)
        if rep.lock.cookie:
            self.mdc.locks.drop(rep.lock.cookie)
        size = self._size_now(h) if h.wrote and h.data is not None else None
        with self._open_mu:
            released = h.closed
            if not released:
                h.mds_handle = rep.open_handle
        self.closer.submit(rep.open_handle if released else old, size)
        if not released and size is not None and size != SIZE_LOST:
            self.mdc.report_size(rep.open_handle, size)

    # ---- directories ---------------------------------------------------------------------------------

    async def opendir(self, ino: int, ctx) -> int:
        node = self._node(ino)
        if node.attr is not None and not node.is_dir:
            raise LpError(errno.ENOTDIR, "not a directory")
        listing = self._local_listing(node)
        if listing is not None:                 # under a WBC grant: listed from what we know
            fh = next(self._listing_fhs)
            self._listings[fh] = listing
            self._listing_dirs[fh] = ino
            return fh
        return ino

    def _local_listing(self, node: Inode) -> list[tuple[bytes, Inode]] | None:
        """A directory under a WBC grant whose every entry we know with its attributes: its listing."""
        if self.local is None or self.local.grant_for(node) is None:
            return None
        with self.table.mu:
            if node.complete is None:
                return None
            out = []
            for name in sorted(node.complete):
                child = self.table.child(node.ino, name)
                if child is None or not child.attr_cached():
                    return None
                out.append((name, child))
            return out

    async def releasedir(self, fh: int) -> None:
        self._listings.pop(fh, None)
        self._listing_dirs.pop(fh, None)

    async def readdir(self, fh: int, start_id: int, token) -> None:
        listing = self._listings.get(fh)
        if listing is not None:
            for i in range(start_id, len(listing)):
                name, child = listing[i]
                attr, ttl = await self._attr(child)
                e = self._entry(child, attr, ttl)
                e.entry_timeout = 0.0
                if not pyfuse3.readdir_reply(token, name, e, i + 1):
                    return
                with self.table.mu:
                    child.lookups += 1
            return
        node = self._node(fh)
        await self._sync_records()
        cookie = start_id
        while True:
            rep = await self._at_mds(node, self.mdc.readdir, node.fid, cookie, 256, True)
            for ent in rep.entries:
                attr = attr_from_pb(ent.attr)
                child, _ = self.table.learn(attr.fid, attr, size_valid=ent.attr.size_valid)
                e = self._entry(child, attr, 0.0)
                e.entry_timeout = 0.0
                if not pyfuse3.readdir_reply(token, ent.name, e, ent.cookie):
                    return
                with self.table.mu:
                    child.lookups += 1
                cookie = ent.cookie
            if rep.eof or not rep.entries:
                return

    async def _commit_records(self) -> None:
        """fsync/syncfs: every record on the MDS and committed (a refused one is reported by
        the next fsync or close of a file it concerns: `_refused`)."""
        if self.wbc is None:
            return
        await self.meta.run(lambda: self.wbc.flush(commit=True))

    def _refused(self, fid: Fid) -> None:
        """Raise the refusal of an update record that concerned this file, once."""
        err = self.wbc.take_error(fid) if self.wbc is not None else None
        if err is not None:
            raise err

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.meta.run(self.closer.drain, self.mdc.timeout)
        await self._commit_records()
        await self.meta.run(self.mdc.sync)
        node = self.table.get(self._listing_dirs.get(fh, fh))
        if node is not None:
            self._refused(node.fid)

    async def statfs(self, ctx) -> pyfuse3.StatvfsData:
        rep = await self.meta.run(self.mdc.statfs)
        t = rep.total
        s = pyfuse3.StatvfsData()
        s.f_bsize = t.bsize or 4096
        s.f_frsize = t.bsize or 4096
        s.f_blocks = t.blocks
        s.f_bfree = t.bfree
        s.f_bavail = t.bavail
        s.f_files = t.files
        s.f_ffree = t.ffree
        s.f_favail = t.ffree
        s.f_namemax = 255
        return s

    # ---- extended attributes --------------------------------------------------------------------------

    async def setxattr(self, ino: int, name: bytes, value: bytes, ctx) -> None:
        node = self._node(ino)
        if self.local is not None and self.local.setxattr(node, name, value, cred_of(ctx)):
            return
        await self._sync_records()
        await self._at_mds(node, self.mdc.setxattr, node.fid, name, value, 0, cred_of(ctx))
        node.wbc_grant = 0          # it has extended attributes now: ask the MDS
        with self.table.mu:
            node.no_xattr.pop(name, None)

    async def getxattr(self, ino: int, name: bytes, ctx) -> bytes:
        # The kernel asks for security.capability before every write: while the XATTR lock is
        # held, a name found absent once is answered here.
        node = self._node(ino)
        if name == WBC_XATTR:
            return await self._wbc_state(node)
        if node.bits & IBit.XATTR and name in node.no_xattr:
            raise LpError(node.no_xattr[name], "no such attribute")
        if name != LOV_XATTR and self._made_here(node):
            with self.table.mu:                 # made here: only what was set here
                value = node.wbc_xattrs.get(name)
            if value is None:
                raise LpError(errno.ENODATA, "no such attribute")
            return value
        await self._sync_records()
        try:
            return await self._at_mds(node, self.mdc.getxattr, node.fid, name, cred_of(ctx))
        except LpError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP) and node.bits & IBit.XATTR and name != LOV_XATTR:
                with self.table.mu:
                    node.no_xattr[name] = e.errno
            raise

    async def _wbc_state(self, node: Inode) -> bytes:
        """The virtual attribute `lustrepy.wbc` of a directory: its write-back cache state, as the
        MDS sees it and as this client does (JSON; read by `lfsctl wbc`)."""
        if not node.is_dir:
            if node.attr is None:           # a type never changes: known here is known
                await self._fetch(node)
            if not node.is_dir:
                raise LpError(errno.ENOTDIR, "the write-back cache state is kept for directories")
        info = await self._at_mds(node, self.mdc.wbc_info, node.fid)
        g = self.wbc.local(node.fid) if self.wbc is not None else None
        st = self.wbc.statistics() if self.wbc is not None else {}
        out = {"mode": info.mode, "holder": info.holder, "contended_for_s": round(info.contended_for_s, 1),
               "conflicts": info.conflicts, "grants": info.grants, "revocations": info.revocations,
               "client": self.mdc.client_id, "client_wbc": self.wbc is not None,
               "held_here": g is not None, "subtree_root": str(g.root) if g is not None else "",
               "records_pending": st.get("pending", 0), "records_flushed": st.get("flushed", 0),
               "client_revocations": st.get("revocations", 0)}
        return json.dumps(out, sort_keys=True).encode()

    async def listxattr(self, ino: int, ctx) -> list[bytes]:
        node = self._node(ino)
        await self._sync_records()
        return await self._at_mds(node, self.mdc.listxattr, node.fid, cred_of(ctx))

    async def removexattr(self, ino: int, name: bytes, ctx) -> None:
        node = self._node(ino)
        if self.local is not None and self.local.setxattr(node, name, None, cred_of(ctx)):
            return
        await self._sync_records()
        await self._at_mds(node, self.mdc.removexattr, node.fid, name, cred_of(ctx))
        with self.table.mu:
            if node.bits & IBit.XATTR and name != LOV_XATTR:   # the layout is virtual: a dir inherits one
                node.no_xattr[name] = errno.ENODATA

    # ---- kernel references ------------------------------------------------------------------------------

    def forget(self, inode_list) -> None:
        for ino, n in inode_list:
            for cookie in self.table.forget(ino, n):
                self.mdc.locks.release(cookie)

    async def flush_all(self) -> None:
        """Unmount: write every dirty byte before the process exits."""
        for h in list(self.handles.values()):
            if h.data is not None:
                await self.io.run(h.data.flush)
        if not await self.io.run(self.closer.drain, self.mdc.timeout):
            log.warning("closes not yet sent to the MDS at unmount: %d", len(self.closer.pending()))
        if self.wbc is not None:
            await self.meta.run(lambda: self.wbc.flush(commit=True))


def _times_now(op: dict[str, Any], cred: Cred, a: Attr) -> None:
    """Times to be set to "now" (utimensat's UTIME_NOW, touch): pyfuse3 hands them over as
    the kernel's current time, like explicit ones. Only the owner may set explicit times,
    anyone who may write may set "now": a time near the clock, asked by someone who is
    not the owner, goes to the MDS as "now". The owner's times stay exactly as given."""
    if cred.uid == 0 or cred.uid == a.uid:
        return
    now = time.time_ns()
    for bit, now_bit, key in ((SA.ATIME, SA.ATIME_NOW, "atime_ns"), (SA.MTIME, SA.MTIME_NOW, "mtime_ns")):
        if op["valid"] & bit and abs(op[key] - now) <= NOW_SLACK_NS:
            op["valid"] = (op["valid"] & ~bit) | now_bit
            del op[key]


def _negative_entry() -> pyfuse3.EntryAttributes:
    """An absent name the kernel may cache (until the parent's UPDATE lock is called back)."""
    e = pyfuse3.EntryAttributes()
    e.st_ino = 0
    e.entry_timeout = TTL
    return e


class _Negative(Exception):
    """A lookup found nothing and the kernel may cache that: carries the negative entry."""

    def __init__(self, entry: pyfuse3.EntryAttributes) -> None:
        self.entry = entry
