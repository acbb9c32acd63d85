"""The state and the shared steps of the client's POSIX layer (llite).

`LliteBase` holds what every llite part works on: the inode table, the open
file handles, the metadata and data clients, the write-back cache and the
kernel's cache (through a `KernelCache`, the notifier threads in a mount).
It answers lock callbacks (from lock-client threads) and holds the steps the
namespace, file, attribute and directory parts share: learning an MDS reply,
attributes for the kernel, a request about an inode to the MDS, handles.

No FUSE type appears here: attributes go out as `replies.Entry`.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

from lustrepy.client.closer import Closer
from lustrepy.client.inodes import Inode, InodeTable, Revoked
from lustrepy.client.nsiface import Namespace
from lustrepy.client.replies import BLKSIZE, TTL, Caller, Entry
from lustrepy.client.reval import RetryHolds
from lustrepy.client.wbc import Grant, Wbc
from lustrepy.client.wbcdata import WbcData
from lustrepy.client.wbcops import LocalOps
from lustrepy.common.errors import LpError, StaleFid
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.protocol import IT
from lustrepy.common.records import Attr, Cred
from lustrepy.ldlm.inodebits import IBit
from lustrepy.rpc import inline
from lustrepy.rpc.bridge import Bridge
from lustrepy.rpc.convert import attr_from_pb, layout_from_pb


log = logging.getLogger(__name__)

# plain ints (an IntFlag operation costs some 60 times an int one), from the one source
IT_LOOKUP, IT_GETATTR, IT_OPEN, IT_CREAT, IT_LAYOUT = (int(i) for i in (IT.LOOKUP, IT.GETATTR, IT.OPEN, IT.CREAT,
                                                                      IT.LAYOUT))
LOOKUP, UPDATE, PERM, LAYOUT, XATTR = (int(b) for b in (IBit.LOOKUP, IBit.UPDATE, IBit.PERM, IBit.LAYOUT, IBit.XATTR))
LOOKUP_BITS = LOOKUP | UPDATE | PERM | LAYOUT | XATTR
BIG_DIR_RETRY_S = 60.0  # no grant is asked again for this long for a directory too big to list (Wbc.dir_max)
LISTING_FH = 1 << 62   # directory handles of local listings: above every inode number
CLOSE_WAIT = 2.0        # seconds a lock callback waits for the closes queued before it
NOTIFY_WAIT = 2.0      # seconds a called-back lock waits for the kernel to drop what it covered
MDS_SPIN_S = 0.002     # seconds an MDS reply is polled for on the trio thread while no other FUSE request is in flight


class KernelCache(Protocol):
    """What llite tells the kernel's caches (notify.Notifier in a mount); never blocks."""

    def inode(self, ino: int, attr_only: bool) -> None: ...
    def entry(self, parent: int, name: bytes) -> None: ...
    def store(self, ino: int, offset: int, data: bytes) -> None: ...
    def wait_sent(self, timeout: float) -> bool: ...


@dataclass
class Handle:
    node: Inode
    mds_handle: int
    flags: int
    data: Any = None        # FileData
    wrote: bool = False     # this handle wrote data: its close reports the size
    lazy: bool = False      # a regular file made under a WBC grant: no objects yet, data opened at first write
    closed: bool = False    # released (under LliteBase._open_mu: an MDS open made after it is closed at once)
    reported: int = -1      # the size this handle's last fsync recorded at the MDS
    cred: Cred | None = None    # who opened it (FUSE's write carries no caller: Linux's rules ask for one)
    sgid_checked: bool = False  # its first write looked at a setgid bit to clear (_drop_sgid)

    @property
    def writer(self) -> bool:
        return self.flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


class LliteBase:
    def __init__(self, mdc: Any, data: Any, notifier: KernelCache, wbc: Wbc | None = None) -> None:
        self.mdc = mdc
        self.wbc = wbc
        self.data = data
        self.notify = notifier
        self.table = InodeTable()
        self.meta = Bridge(32)
        self.io = Bridge(32)
        self.in_flight = 0                      # FUSE requests being served (fs.py counts; the trio thread only)
        self.handles: dict[int, Handle] = {}    # open files by handle; changed under _handles_mu
        self._handles_mu = threading.Lock()     # handles: the FUSE thread changes, lock callbacks read
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
        self.remote: Namespace          # the backends (nsbackend), set by llite.Llite
        self._local_ns: Callable[[Grant | None], Namespace] | None = None

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
        if self.closer.pending():
            # Closes queued before the callback reach the MDS before the lock goes back: the
            # change that asked for it (an unlink, a rename over the file) sees them closed.
            self.closer.drain(CLOSE_WAIT)
        rev = self.table.revoke(cookie)
        self.mdc.locks.release(cookie)              # a pinned lock goes back once flushed
        if rev is not None:
            self._forget_revoked(rev)

    def _forget_revoked(self, rev: Revoked) -> None:
        if rev.layout_lost is not None:
            self.data.layout_changed(rev.layout_lost)
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
        ready = self.wbc.opened(desc) or await self.meta.run(self.wbc.ready, desc)     # an MDT's first: asks it
        if (g := self.wbc.adopt(desc) if ready else None) is None:
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
                node.no_grant_until = time.monotonic() + BIG_DIR_RETRY_S     # the trio thread's alone
                await self.meta.run(self._give_back, g.cookie)
                self.mdc.locks.drop(g.cookie)
    def _listing(self, fid: Fid) -> set[bytes] | None:
        names: set[bytes] = set()
        cookie = 0
        while len(names) <= (limit := self.wbc.dir_max if self.wbc is not None else 0):
            rep = self.mdc.readdir(fid, cookie, 1024, False)
            for e in rep.entries:
                if e.name not in (b".", b".."):
                    names.add(e.name)
                cookie = e.cookie
            if rep.eof or not rep.entries:
                return names if len(names) <= limit else None
        return None

    def on_evicted(self) -> None:
        if self.wbc is not None and self.wbc.held():
            self._give_up_grants()          # the MDS forgot our WBC locks: work on its side again
        for rev in self.table.drop_all_locks():
            self._forget_revoked(rev)

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

    async def _mds(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """An mdc request made on the trio thread, other FUSE requests served while its reply is
        on its way (rpc/inline.py). fn holds no threading lock across its request."""
        return await inline.run(fn, *args, spin=MDS_SPIN_S if self.in_flight <= 1 else 0.0, **kwargs)

    async def _at_mds(self, node: Inode, fn: Any, *args: Any, in_thread: bool = False, **kwargs: Any) -> Any:
        """A request about `node` to the MDS (with in_thread, fn runs in a worker thread).
        ESTALE (the MDS has no such inode any more): what is cached of the inode goes before
        the kernel hears it."""
        try:
            if in_thread:
                return await self.meta.run(fn, *args, **kwargs)
            return await self._mds(fn, *args, **kwargs)
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
        elif lock and bits & LOOKUP and stat.S_ISDIR(attr.mode) and lock not in node.pinned:
            # A directory's entry must not be dropped just because the lock LRU is full: the
            # kernel would unhash it under processes whose cwd it is. The server can still
            # call the lock back (on_blocking releases the pin).
            if self.mdc.locks.hold(lock):
                with self.table.mu:
                    node.pinned.add(lock)
        return node

    def _layout_of(self, node: Inode) -> Layout | None:
        """The file's objects (None: it has none yet), in a worker thread: the layout cached
        under its LAYOUT lock, else the MDS's. A lock called back between a reply and a use of
        its layout clears the cached one: a file with objects never counts as one without."""
        lo = node.layout
        if lo is not None or self._made_here(node):     # made here: no layout is no objects
            return lo
        rep = self.mdc.intent(IT_GETATTR, fid=node.fid, ibits=LOOKUP_BITS)
        self._learn(rep)
        return layout_from_pb(rep.layout) if rep.has_layout else None

    def _glimpse(self, node: Inode) -> int:
        if (data := node.data) is not None:     # read once: a release elsewhere may clear it
            return data.size()
        layout = self._layout_of(node)
        if layout is None or not layout.has_objects:
            a = node.attr                       # no objects: the size is the MDS's (a truncate's)
            return a.size if a is not None else 0
        fd = self.data.open(node.fid, layout)
        try:
            return fd.size()
        finally:
            fd.release(flush=False)     # wrote nothing: a write-back error is for the writer's calls

    async def _fetch(self, node: Inode) -> None:
        rep = await self._at_mds(node, self.mdc.intent, IT_GETATTR, fid=node.fid, ibits=LOOKUP_BITS)
        self._learn(rep)

    async def _attr(self, node: Inode) -> tuple[Attr, float]:
        """Attributes for the kernel, with the attribute timeout they may be cached for."""
        if not node.attr_cached():
            await self._fetch(node)
        attr = node.attr
        assert attr is not None
        data = node.data
        if (not stat.S_ISREG(attr.mode) or (node.size_valid and data is None)
                or (data is not None and not data.layout.has_objects)       # no objects: the MDS's size
                or (node.size_local and node.attr_cached())):
            return attr, TTL if node.attr_cached() else 0.0
        size = data.size_nowait() if data is not None else None
        if size is None:
            size = await self.io.run(self._glimpse, node)
        cached = data is not None and data.cached_lock() and node.attr_cached()
        return replace(attr, size=size, blocks=(size + 511) // 512), TTL if cached else 0.0

    async def _entry_of(self, node: Inode) -> Entry:
        attr, ttl = await self._attr(node)
        return entry(node, attr, ttl)

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

    async def release(self, fh: int) -> None:
        """Close a file handle (llfile.FileOps)."""
        raise NotImplementedError

    # ---- where a change is made (nsbackend) ----------------------------------------------------

    def _ns(self, parent: Inode) -> Namespace:
        """The backend of a change of names in directory `parent`: here, under a WBC grant
        whose listing this client knows; else the MDS."""
        g = self.local.grant_for(parent) if self.local is not None else None
        return self._local_ns(g) if g is not None and self._local_ns is not None else self.remote

    def _ns_of(self, node: Inode) -> Namespace:
        """The backend of a change to `node` itself: here if it was made under a live grant."""
        if self._local_ns is not None and self._made_here(node):
            return self._local_ns(None)
        return self.remote

    async def _wbc_room(self) -> None:
        """The journal is at its bound: the records go to the MDS before more are made."""
        if self.wbc is not None and self.wbc.journal.full:
            await self.meta.run(self.wbc.flush, commit=True)


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
        """The open handles now (the FUSE thread adds and removes them; lock callbacks ask)."""
        with self._handles_mu:
            return list(self.handles.values())

    def _mds_open(self, h: Handle) -> None:
        """An MDS open for a handle opened here only, once (the FUSE thread and a lock callback
        may both ask); a handle released meanwhile has it closed again. The attributes here stay."""
        with self._open_mu:
            if h.mds_handle or h.closed:
                return
            flags = h.flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)
            rep = self.mdc.intent(IT_OPEN, fid=h.node.fid, open_flags=flags, ibits=LOOKUP_BITS)
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
                    await self._at_mds(node, self._mds_open, h, in_thread=True)
                except LpError as e:
                    if e.errno != errno.ESTALE:
                        raise
                    return                  # gone at the MDS already: nothing there to keep

    def _new_handle(self, node: Inode, mds_handle: int, flags: int,
                    caller: Caller | None = None) -> tuple[int, Handle]:
        """A file handle; `caller` is the opener (None: a handle of the client's own, never written)."""
        fh = next(self._fh)
        h = Handle(node, mds_handle, flags, cred=caller.cred if caller is not None else None)
        with self._handles_mu:
            self.handles[fh] = h
        with self.table.mu:
            node.opens += 1
        return fh, h

    def _open_data(self, node: Inode, layout: Layout | None) -> Any:
        """The data state of `node` over `layout` (None: no objects yet), the layout of the
        reply that opened it: never read back from the inode, whose cached layout a lock
        callback may clear meanwhile (the handle would see a file without objects: empty)."""
        fd = self.data.open(node.fid, layout or Layout(objects=()))
        with self.table.mu:
            node.data = fd
        return fd

    def _drop_handle(self, fh: int) -> Handle | None:
        with self._handles_mu:
            return self.handles.pop(fh, None)

    def _h(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise LpError(errno.EBADF, "bad file handle")
        return h

    def _layout_now(self, node: Inode) -> Layout | None:
        """The objects of a file made under a grant whose create reached the MDS without them
        (a worker or flusher thread)."""
        rep = self.mdc.intent(IT_LAYOUT, fid=node.fid, ibits=LOOKUP_BITS, parent=self._parent_fid(node))
        if rep.lock.cookie:
            self.mdc.locks.drop(rep.lock.cookie)    # the attributes here are newer than the MDS's
        if not rep.has_layout:
            return None
        layout = layout_from_pb(rep.layout)
        with self.table.mu:
            node.layout = layout
        return layout

    async def _commit_records(self) -> None:
        """fsync/syncfs: every record on the MDS and committed (a refused one is reported by
        the next fsync or close of a file it concerns: `_refused`)."""
        wbc = self.wbc
        if wbc is None:
            return
        await self.meta.run(lambda: wbc.flush(commit=True))

    def _refused(self, fid: Fid) -> None:
        """Raise the refusal of an update record, or of a replay, that concerned this file, once."""
        err = (self.wbc.take_error(fid) if self.wbc is not None else None) or self.mdc.replay.take_error(fid)
        if err is not None:
            raise err


def entry(node: Inode, attr: Attr, attr_ttl: float) -> Entry:
    """What the kernel is told of `node`: the attributes, how long it may keep them and the
    name, and the block size (the stripe size once the file has objects)."""
    layout = node.layout
    return Entry(node.ino, attr, attr_ttl, TTL if node.bits & LOOKUP else 0.0,
                 layout.stripe_size if layout is not None and layout.has_objects else BLKSIZE)
