"""The client's inode table: FUSE inode numbers, lookup counts, and what is
cached about each inode under which MDS lock.

The inode number is the FID's flattening (the same on every client; the root
is 1). Cached attributes, layout and names stay valid exactly as long as the
MDS lock bits that cover them are held; `revoke` drops what a cancelled lock
covered and says what the kernel must forget. Thread-safe: FUSE handlers and
lock-callback threads both use it. Never does I/O.
"""

from __future__ import annotations

import stat
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.common.records import Attr
from lustrepy.ldlm.inodebits import IBit

ATTR_BITS = int(IBit.UPDATE | IBit.PERM)     # a plain int: tested on every attribute use


@dataclass
class Inode:
    ino: int
    fid: Fid
    lookups: int = 0
    attr: Attr | None = None
    size_valid: bool = False            # attr.size is authoritative (size on MDS)
    layout: Layout | None = None
    locks: dict[int, int] = field(default_factory=dict)     # MDS lock cookie -> ibits
    names: set[tuple[int, bytes]] = field(default_factory=set)  # dentries the kernel may cache
    negatives: set[bytes] = field(default_factory=set)      # absent names cached in this directory
    opens: int = 0
    data: Any = None                    # the FileData while open
    pinned: set[int] = field(default_factory=set)   # lock cookies held while the kernel knows the inode
    size_local: bool = False            # created here and not written since: attr.size (0) is exact
    # Every name in this directory, when known: a directory this client made holds exactly
    # what this client put in it for as long as the client keeps its UPDATE lock (anyone
    # else's change calls that lock back). Absent names are then answered without an RPC.
    complete: set[bytes] | None = None
    no_xattr: dict[bytes, int] = field(default_factory=dict)  # absent names -> errno, under the XATTR lock
    xattrs_none: bool = False           # made by the MDS for this client, and no name set since: every name
                                        # is absent while the XATTR lock lasts
    wbc_grant: int = 0                  # made under this WBC grant (its lock cookie), while it lasts
    wbc_data: bytearray | None = None   # its bytes, kept here until its objects exist (wbcdata)
    wbc_version: int = 0                # bumped by every change of wbc_data
    wbc_create_seq: int = 0             # the update record that creates it
    wbc_xattrs: dict[bytes, bytes] = field(default_factory=dict)  # user.* attributes set under the grant
    name_changes: int = 0               # names this client added or removed in this directory itself
    mds_opens: bool = False             # made here, and a server-side update names it: every open tells the MDS
    no_grant_until: float = 0.0         # a directory too big to list: no WBC grant asked for it before this
                                        # (time.monotonic; read and written on the trio thread only)

    @property
    def bits(self) -> int:
        b = 0
        for v in self.locks.values():
            b |= v
        return b

    def attr_cached(self) -> bool:
        return self.attr is not None and self.bits & ATTR_BITS == ATTR_BITS

    @property
    def is_dir(self) -> bool:
        return self.attr is not None and stat.S_ISDIR(self.attr.mode)


def _kept(node: Inode) -> bool:
    """Does this client keep the inode when the kernel forgets it (a cache drop)? Yes while a
    write-back-cache grant covers it: made here and still named, or a directory whose every
    entry is known (lookups and changes in such a directory then go on here, as before the
    drop); and while locks cover its names and attributes, which the next lookup of one of
    its names is then answered from (Lustre's clients match cached locks the same way)."""
    a = node.attr
    if a is not None and a.nlink == 0:
        return False
    if node.complete is not None or (bool(node.wbc_grant) and a is not None):
        return True
    return bool(node.names) and node.attr_cached() and node.bits & IBit.LOOKUP != 0


@dataclass(frozen=True, slots=True)
class Revoked:
    """What the kernel must forget after a lock was cancelled."""

    ino: int
    attrs: bool
    entries: tuple[tuple[int, bytes], ...]
    layout_lost: Fid | None = None      # a file's LAYOUT lock went: its open data reads the layout anew


KEEP_MAX = 50_000       # inodes in the table past which a forgotten one is not kept (about 1.8 KB each)


class InodeTable:
    def __init__(self) -> None:
        self.mu = threading.RLock()
        self._by_ino: dict[int, Inode] = {}
        self._by_cookie: dict[int, int] = {}
        self._dentries: dict[tuple[int, bytes], int] = {}   # (parent ino, name) -> ino

    def get(self, ino: int) -> Inode | None:
        with self.mu:
            return self._by_ino.get(ino)

    def by_fid(self, fid: Fid) -> Inode | None:
        return self.get(fid.ino())

    def ensure(self, fid: Fid) -> Inode:
        with self.mu:
            ino = fid.ino()
            node = self._by_ino.get(ino)
            if node is None or node.fid != fid:
                node = self._by_ino[ino] = Inode(ino, fid)
            return node

    def learn(self, fid: Fid, attr: Attr, *, size_valid: bool, lock: int = 0, bits: int = 0,
              layout: Layout | None = None, name: tuple[int, bytes] | None = None,
              lookup: bool = False) -> tuple[Inode, bool]:
        """Record what a reply told about an inode and the lock that covers it; returns the
        inode and whether the lock adds nothing to those already held (the caller gives it back)."""
        with self.mu:
            node = self.ensure(fid)
            kept = node.wbc_data
            if kept is not None and attr.size != len(kept):
                # its bytes are kept here (wbcdata), on their way to its objects: the MDS
                # learns their size after them, so their length is the file's size
                attr = replace(attr, size=len(kept), blocks=(len(kept) + 511) // 512)
            node.attr = attr
            node.size_valid = size_valid
            if layout is not None:
                node.layout = layout
            redundant = False
            if lock:
                had = node.bits
                redundant = bits & ~had == 0
                if not redundant:
                    node.locks[lock] = bits
                    self._by_cookie[lock] = node.ino
                if bits & IBit.LOOKUP and not had & IBit.LOOKUP:
                    # names learned while no LOOKUP lock covered the inode may be stale by now
                    # (nothing called them back): from here on, a name it has is a current one
                    for d in node.names - {name}:
                        if self._dentries.get(d) == node.ino:
                            del self._dentries[d]
                    node.names.clear()
            if name is not None:
                node.names.add(name)
                self._dentries[name] = node.ino
                parent = self._by_ino.get(name[0])
                if parent is not None:
                    parent.negatives.discard(name[1])
            if lookup:
                node.lookups += 1
            return node, redundant

    def learn_lock(self, fid: Fid, cookie: int, bits: int) -> bool:
        """A lock granted without attributes (a negative lookup's parent lock); False when it
        adds nothing to the locks already held (the caller gives it back)."""
        with self.mu:
            node = self.ensure(fid)
            if bits & ~node.bits == 0:
                return False
            node.locks[cookie] = bits
            self._by_cookie[cookie] = node.ino
            return True

    def attach_lock(self, fid: Fid, cookie: int, bits: int) -> Inode:
        """Record a lock covering the inode even when other locks cover the same bits (a WBC
        lock, or the cache cookie of an object made under one)."""
        with self.mu:
            node = self.ensure(fid)
            node.locks[cookie] = bits
            self._by_cookie[cookie] = node.ino
            return node

    def forget(self, ino: int, n: int) -> list[int]:
        """Drop n kernel references; returns the pinned lock cookies of an inode now forgotten."""
        with self.mu:
            node = self._by_ino.get(ino)
            if node is None:
                return []
            node.lookups -= n
            if node.lookups > 0 or node.opens > 0 or ino == 1:
                return []
            pinned = list(node.pinned)
            node.pinned.clear()
            if not (_kept(node) and len(self._by_ino) < KEEP_MAX):
                self._drop(node)
            return pinned

    def let_go(self, ino: int) -> None:
        """What kept an inode the kernel forgot is gone (its grant, its listing): drop it."""
        with self.mu:
            node = self._by_ino.get(ino)
            if node is not None and node.lookups <= 0 and node.opens <= 0 and ino != 1 and not _kept(node):
                self._drop(node)

    def _drop(self, node: Inode) -> None:
        del self._by_ino[node.ino]
        for d in node.names:
            if self._dentries.get(d) == node.ino:
                del self._dentries[d]
        for c in node.locks:
            self._by_cookie.pop(c, None)

    def revoke(self, cookie: int) -> Revoked | None:
        """A lock is being cancelled: drop what it covered."""
        with self.mu:
            ino = self._by_cookie.pop(cookie, None)
            node = self._by_ino.get(ino) if ino is not None else None
            if node is None:
                return None
            node.pinned.discard(cookie)
            bits = node.locks.pop(cookie, 0)
            left = node.bits
            entries: list[tuple[int, bytes]] = []
            attrs = False
            if bits & ATTR_BITS and left & ATTR_BITS != ATTR_BITS:
                node.size_valid = False         # attr_cached() is now False: ours are not trusted
                node.size_local = False
                attrs = True
            if bits & IBit.LOOKUP and not left & IBit.LOOKUP:
                entries.extend(node.names)
                for d in node.names:
                    self._dentries.pop(d, None)
                node.names.clear()
            if bits & IBit.UPDATE and not left & IBit.UPDATE:
                entries.extend((node.ino, n) for n in node.negatives)
                node.negatives.clear()
                node.complete = None
            layout_lost = None
            if bits & IBit.LAYOUT and not left & IBit.LAYOUT:
                node.layout = None
                layout_lost = node.fid
            if bits & IBit.XATTR and not left & IBit.XATTR:
                node.no_xattr.clear()
                node.xattrs_none = False
            if node.lookups <= 0 and node.opens <= 0 and node.ino != 1 and not _kept(node):
                self._drop(node)            # the kernel forgot it, and now nothing keeps it here
            return Revoked(node.ino, attrs, tuple(entries), layout_lost)

    def drop_all_locks(self) -> list[Revoked]:
        """After an eviction: nothing cached is trusted any more."""
        with self.mu:
            cookies = list(self._by_cookie)
        return [r for c in cookies if (r := self.revoke(c)) is not None]

    def known_absent(self, parent: int, name: bytes) -> bool:
        """The directory's full contents are known under its UPDATE lock and lack `name`."""
        with self.mu:
            node = self._by_ino.get(parent)
            return (node is not None and node.complete is not None and node.bits & IBit.UPDATE != 0
                    and name not in node.complete)

    def name_changes(self, parent: int) -> int:
        """How often this client changed names in directory `parent` itself (creates, links,
        unlinks, renames): a lookup answered by the MDS meanwhile may predate them."""
        with self.mu:
            node = self._by_ino.get(parent)
            return node.name_changes if node is not None else 0

    def _changed(self, parent: int) -> Inode | None:
        node = self._by_ino.get(parent)
        if node is not None:
            node.name_changes += 1
        return node

    def entry_added(self, parent: int, name: bytes) -> None:
        with self.mu:
            node = self._changed(parent)
            if node is not None and node.complete is not None:
                node.complete.add(name)

    def entry_removed(self, parent: int, name: bytes) -> None:
        with self.mu:
            node = self._changed(parent)
            if node is not None and node.complete is not None:
                node.complete.discard(name)

    def add_negative(self, parent: int, name: bytes) -> None:
        with self.mu:
            node = self._by_ino.get(parent)
            if node is not None:
                node.negatives.add(name)

    def remove_name(self, parent: int, name: bytes) -> Inode | None:
        """The entry is gone (our own unlink/rename): forget it; returns the inode it named."""
        with self.mu:
            self._changed(parent)
            ino = self._dentries.pop((parent, name), None)
            node = self._by_ino.get(ino) if ino is not None else None
            if node is not None:
                node.names.discard((parent, name))
            return node

    def add_name(self, node: Inode, parent: int, name: bytes) -> None:
        """The inode is now also named `name` in `parent` (our own link or rename)."""
        with self.mu:
            node.names.add((parent, name))
            self._dentries[(parent, name)] = node.ino
            p = self._changed(parent)
            if p is not None:
                p.negatives.discard(name)

    def child(self, parent: int, name: bytes) -> Inode | None:
        with self.mu:
            ino = self._dentries.get((parent, name))
            return self._by_ino.get(ino) if ino is not None else None

    def __len__(self) -> int:
        with self.mu:
            return len(self._by_ino)
