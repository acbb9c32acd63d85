"""Typed records of the MDS namespace API: what callers pass in (SetAttr) and
what updates report back (Unlinked, Renamed, OstRecord). The flag values the API
shares with the wire protocol (SA, RENAME, XATTR) are lustrepy.common.protocol's.

Pure data; never does I/O and never imports storage code.
"""

from __future__ import annotations

from dataclasses import dataclass

from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout, StripeObject
from lustrepy.common.records import Attr

# the most hard links a non-directory may have (as ext4)
LINK_MAX = 65000


@dataclass(frozen=True, slots=True)
class SetAttr:
    """An attribute change: only the fields whose SA bit is in `valid` are used.

    ATIME_NOW / MTIME_NOW set the time to the server's clock (utimensat with
    UTIME_NOW); they win over ATIME / MTIME when both are set. `open_handle`
    names the open file a size change comes through (ftruncate, O_TRUNC): a
    handle on this file waives the write-permission check, as an fd opened
    for writing does on Linux.
    """

    valid: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    size: int = 0
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    open_handle: int = 0
    blocks: int = 0                 # with SIZE, nonzero: the blocks the objects hold (a WBC data flush)


@dataclass(frozen=True, slots=True)
class Unlinked:
    """Result of removing one name of a non-directory.

    attr: the inode after the change (nlink 0 when that was its last name).
    destroyed: its objects, queued in destroy_queue by the same transaction
    (empty unless the inode was destroyed now). orphaned: the inode lost its
    last name while open, and lives on until its last close.
    """

    attr: Attr
    destroyed: tuple[StripeObject, ...] = ()
    orphaned: bool = False


@dataclass(frozen=True, slots=True)
class Renamed:
    """Result of a rename.

    source: the inode that was named src_name, after the change.
    target: the inode dst_name named before (the victim, or the other half of
    an exchange), after the change; None when dst_name was free.
    destroyed / orphaned: as Unlinked, for a victim that lost its last name.
    src_parent / dst_parent: the parents after the change (equal objects for a
    rename within one directory). noop: the two names already named one inode.
    """

    source: Attr
    target: Attr | None
    src_parent: Attr
    dst_parent: Attr
    destroyed: tuple[StripeObject, ...] = ()
    orphaned: bool = False
    noop: bool = False


@dataclass(frozen=True, slots=True)
class OstRecord:
    """A registered OST: its index, uuid (fixed for life) and latest address."""

    index: int
    uuid: str
    address: str


@dataclass(frozen=True, slots=True)
class Forced:
    """What a replayed update must reproduce (recovery): the transno and the results its first
    reply gave, so clients find what they were told. Zero or empty fields are chosen as usual."""

    transno: int
    fids: tuple[Fid, ...] = ()          # the new inodes' FIDs, in the order the update makes them
    handle: int = 0                     # the open handle
    layout: Layout | None = None        # the objects the new file got
    layouts: tuple[tuple[Fid, Layout], ...] = ()    # a batch of update records: each new file's objects
    seq: int = 0                        # AllocSeq: the sequence handed out
