"""Records of the layout check across servers (lfsctl lfsck), as the MDS and lfsctl both see them.

Frozen dataclasses only: what the MDT says of a file's objects, of a precreation pool, of an
object's or a file's present state, of names that cross MDTs and operations across MDTs not yet
finished, and what a repair came to. No I/O, no wire forms (those are rpc.lfsckconv's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout, StripeObject, file_size_from_object


@dataclass(frozen=True, slots=True)
class FileObjects:
    """A file with objects: stripe size, objects in stripe order, and the size the MDT records
    (meaningful only when size_valid: no writer has it open and its size was not lost)."""

    fid: Fid
    stripe_size: int
    objects: tuple[StripeObject, ...]
    size: int
    size_valid: bool

    def size_from(self, object_sizes: list[int]) -> int:
        """The file size its objects imply, given each stripe's object size (a missing one: 0)."""
        lo = Layout(stripe_size=self.stripe_size, stripe_count=len(self.objects), objects=self.objects)
        return max((file_size_from_object(lo, i, n) for i, n in enumerate(object_sizes)), default=0)


@dataclass(frozen=True, slots=True)
class Pool:
    """An OST's precreation pool: ids below next_id were handed out, [next_id, last_id] are unused."""

    ost_index: int
    next_id: int
    last_id: int


@dataclass(frozen=True, slots=True)
class ObjectState:
    """Who uses an object now: the owner's FID (None: no file) and stripe, whether it is queued for
    destruction, and whether its id was handed out (below its pool's next_id)."""

    object: StripeObject
    owner: Fid | None
    stripe: int
    queued: bool
    handed_out: bool


@dataclass(frozen=True, slots=True)
class FileState:
    """A file now: file is None when it no longer exists or has no objects; path is one of its
    names from the root ("" when it has none left)."""

    fid: Fid
    file: FileObjects | None
    path: str


@dataclass(frozen=True, slots=True)
class Orphan:
    """An object no file uses, with its size and blocks on its OST."""

    object: StripeObject
    size: int
    blocks: int


@dataclass(frozen=True, slots=True)
class SizeFix:
    """Set `fid`'s size to what its objects say, if the MDT still records `seen`."""

    fid: Fid
    seen: int
    size: int
    blocks: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one repair came to: done, and what was done or why nothing was."""

    done: bool
    note: str


# ---- names across MDTs -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CrossName:
    """Inode `fid` named `name` in directory `parent`, the two on different MDTs. Held by the name's
    MDT as a stub (`mdt`: the inode's MDT; `path`: the name's path there) or by the inode's MDT as
    a remote name (`mdt`: the name's MDT)."""

    fid: Fid
    mdt: int
    parent: Fid
    name: bytes
    path: str = ""

    @property
    def key(self) -> tuple[Fid, Fid, bytes]:
        """What the two sides of one name share: the inode, the directory and the name."""
        return self.fid, self.parent, self.name


@dataclass(frozen=True, slots=True)
class Pending:
    """An operation across MDTs its coordinator logged and has not finished: the inode it concerns
    (None: not made yet), the names (directory, name) it makes or removes, the other MDTs."""

    op_id: int
    kind: str
    fid: Fid | None
    names: tuple[tuple[Fid, bytes], ...]
    mdts: tuple[int, ...]
    created_ns: int

    def explains(self, n: CrossName) -> bool:
        """Whether the two sides of `n` may disagree because of this operation."""
        return n.fid == self.fid or (n.parent, n.name) in self.names


@dataclass(frozen=True, slots=True)
class NamesNow:
    """An MDT's present view of some inodes' names across MDTs (lfsck's later looks): their stubs
    and remote names there, which of them are inodes there (with a path), and the operations
    across MDTs it has not finished."""

    stubs: tuple[CrossName, ...] = ()
    remote_names: tuple[CrossName, ...] = ()
    inodes: Mapping[Fid, str] = field(default_factory=dict)
    pending: tuple[Pending, ...] = ()
