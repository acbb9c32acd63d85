"""File layouts: RAID0 striping, mirrors of it, their validation, and their form as an extended attribute.

A mirrored file (Lustre's File Level Redundancy) holds the same bytes in
several mirrors, each a RAID0 layout of its own with a mirror id and a state
(in sync or stale). An unmirrored file's layout is one RAID0 layout, its
objects at the top level; `components()` gives either kind as mirrors.

The stripe math (which object and offset a file byte lives at) is the
client's, in lustrepy.client.lov; the size a file's objects imply is here, as
the client's glimpses and lfsctl lfsck both need it. Pure functions; never does I/O.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from lustrepy.common.errors import LpError

STRIPE_UNIT = 64 * 1024                 # stripe_size must be a multiple of this
MAX_STRIPE_SIZE = 4 * 1024 * 1024 * 1024 - STRIPE_UNIT
MAX_FILE_SIZE = (1 << 63) - 1           # offsets past this get EFBIG
DEFAULT_STRIPE_SIZE = 1024 * 1024
DEFAULT_STRIPE_COUNT = 1
STRIPE_ALL = -1
MAX_MIRRORS = 4                         # mirrors per file (Lustre allows 16; four copies is already plenty)


@dataclass(frozen=True, slots=True)
class StripeObject:
    ost_index: int
    object_id: int


@dataclass(frozen=True, slots=True)
class Mirror:
    """One copy of a mirrored file's bytes: a RAID0 layout of its own (objects filled). A stale
    mirror that is `syncing` is being copied from an in-sync one: writers write it too, nobody
    reads it, and it is in sync again once the copy is done."""

    mirror_id: int
    layout: Layout
    stale: bool = False
    syncing: bool = False

    @property
    def state(self) -> str:
        return "in_sync" if not self.stale else "syncing" if self.syncing else "stale"


@dataclass(frozen=True, slots=True)
class Layout:
    """A file layout (objects filled) or a default/requested one (objects empty).

    stripe_count == -1 means "all active OSTs" in a default or a request;
    stripe_offset == -1 means "let the MDS choose the first OST".
    mirror_count > 1 in a default or a request: new files get that many mirrors of this striping.
    A mirrored file has its objects in `mirrors` (each a RAID0 layout) and none at the top level,
    where stripe_size and stripe_count say the striping of a mirror added later.
    """

    stripe_size: int = DEFAULT_STRIPE_SIZE
    stripe_count: int = DEFAULT_STRIPE_COUNT
    stripe_offset: int = -1
    pattern: str = "raid0"
    objects: tuple[StripeObject, ...] = field(default_factory=tuple)
    generation: int = 0
    mirror_count: int = 0
    mirrors: tuple[Mirror, ...] = ()

    @property
    def mirrored(self) -> bool:
        return bool(self.mirrors)

    @property
    def has_objects(self) -> bool:
        """The file's objects exist (made at create, or at its first write under a write-back grant)."""
        return bool(self.objects) or any(m.layout.objects for m in self.mirrors)

    def components(self) -> tuple[Mirror, ...]:
        """The file's mirrors; an unmirrored file's one RAID0 layout as mirror 0, in sync."""
        if self.mirrors:
            return self.mirrors
        return (Mirror(0, self),) if self.objects else ()

    def in_sync(self) -> tuple[Mirror, ...]:
        return tuple(m for m in self.components() if not m.stale)

    def write_targets(self) -> tuple[Mirror, ...]:
        """The mirrors a write goes to: the in-sync ones, then those being resynced."""
        return self.in_sync() + tuple(m for m in self.components() if m.stale and m.syncing)

    def all_objects(self) -> tuple[StripeObject, ...]:
        """Every object of every mirror (stale ones too)."""
        if not self.mirrors:
            return self.objects
        return tuple(o for m in self.mirrors for o in m.layout.objects)

    def wanted_mirrors(self) -> int:
        """How many mirrors a new file made from this default or request gets (1: unmirrored)."""
        return max(1, self.mirror_count)

    def check(self, ost_count: int | None = None) -> None:
        """Raise LpError(EINVAL) when the layout is malformed or impossible."""
        self._check_raid0(ost_count)
        if not 0 <= self.mirror_count <= MAX_MIRRORS:
            raise LpError(errno.EINVAL, f"mirror count {self.mirror_count} is out of range (at most {MAX_MIRRORS})")
        if not self.mirrors:
            return
        if self.objects:
            raise LpError(errno.EINVAL, "a mirrored layout names its objects in its mirrors")
        if len(self.mirrors) > MAX_MIRRORS:
            raise LpError(errno.EINVAL, f"{len(self.mirrors)} mirrors: at most {MAX_MIRRORS}")
        ids = [m.mirror_id for m in self.mirrors]
        if len(set(ids)) != len(ids) or any(i <= 0 or i > 0xFFFF for i in ids):
            raise LpError(errno.EINVAL, f"mirror ids {ids} are not distinct numbers from 1 to 65535")
        for m in self.mirrors:
            if m.layout.mirrors or m.layout.mirror_count > 1:
                raise LpError(errno.EINVAL, "a mirror is a RAID0 layout, not mirrored itself")
            if not m.layout.objects:
                raise LpError(errno.EINVAL, f"mirror {m.mirror_id} has no objects")
            if m.syncing and not m.stale:
                raise LpError(errno.EINVAL, f"mirror {m.mirror_id} is in sync and being resynced")
            m.layout._check_raid0(None)
        placed = [o for m in self.mirrors for o in m.layout.objects]
        if len(set(placed)) != len(placed):
            raise LpError(errno.EINVAL, "two mirrors name the same object")

    def _check_raid0(self, ost_count: int | None) -> None:
        if self.pattern != "raid0":
            raise LpError(errno.EINVAL, f"unknown layout pattern {self.pattern!r}")
        if self.stripe_size <= 0 or self.stripe_size % STRIPE_UNIT or self.stripe_size > MAX_STRIPE_SIZE:
            raise LpError(errno.EINVAL, f"stripe_size {self.stripe_size} is not a positive multiple of 64 KiB")
        if self.stripe_count == 0 or self.stripe_count < STRIPE_ALL:
            raise LpError(errno.EINVAL, f"stripe_count {self.stripe_count} must be >= 1 or -1")
        if ost_count is not None and self.stripe_count > ost_count:
            raise LpError(errno.EINVAL, f"stripe_count {self.stripe_count} exceeds the {ost_count} OSTs")
        if self.stripe_offset < -1 or (ost_count is not None and self.stripe_offset >= max(ost_count, 1)
                                       and self.stripe_offset != -1):
            raise LpError(errno.EINVAL, f"stripe_offset {self.stripe_offset} names no OST")
        if self.objects and len(self.objects) != self.stripe_count:
            raise LpError(errno.EINVAL, "layout objects do not match stripe_count")


def mirror_of(layout: Layout, mirror_id: int) -> Mirror:
    """The mirror with that id; LpError(ENOENT) when the layout has none."""
    for m in layout.components():
        if m.mirror_id == mirror_id:
            return m
    raise LpError(errno.ENOENT, f"the layout has no mirror {mirror_id}")


def file_size_from_object(layout: Layout, stripe: int, obj_size: int) -> int:
    """The file size implied by object `stripe` being `obj_size` bytes long."""
    if obj_size == 0:
        return 0
    ss, sc = layout.stripe_size, len(layout.objects) or layout.stripe_count
    last = obj_size - 1                         # last object byte
    unit, within = divmod(last, ss)
    return (unit * sc + stripe) * ss + within + 1


# ---- the layout as an extended attribute (lustrepy.lov) -------------------------

LOV_XATTR = b"lustrepy.lov"


def encode_lov(layout: Layout, fid: object = None) -> bytes:
    """The layout as the value of the `lustrepy.lov` xattr: compact JSON, readable with getfattr;
    a file's carries its FID (`lfsctl mirror resync` names the file to the MDS by it)."""
    import json

    d: dict[str, object] = {} if fid is None else {"fid": str(fid)}
    d |= {
        "stripe_size": layout.stripe_size,
        "stripe_count": layout.stripe_count,
        "stripe_offset": layout.stripe_offset,
        "pattern": layout.pattern,
    }
    if layout.mirror_count > 1:
        d["mirror_count"] = layout.mirror_count
    if layout.objects:
        d["objects"] = [[o.ost_index, o.object_id] for o in layout.objects]
    if layout.mirrors:
        d["generation"] = layout.generation
        d["mirrors"] = [{"id": m.mirror_id, "state": m.state,
                         "stripe_size": m.layout.stripe_size, "stripe_count": m.layout.stripe_count,
                         "objects": [[o.ost_index, o.object_id] for o in m.layout.objects]} for m in layout.mirrors]
    return json.dumps(d, separators=(",", ":")).encode()


def lov_names_objects(value: bytes) -> bool:
    """Does a `lustrepy.lov` value name objects (a file's layout as getxattr shows it, copied by
    `cp -a` or `mv`), rather than ask for a layout?"""
    import json

    try:
        d = json.loads(value.decode())
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(d, dict) and bool(d.get("objects") or d.get("mirrors"))


def decode_lov(value: bytes) -> Layout:
    """Parse a `lustrepy.lov` value; LpError(EINVAL) when malformed. Objects are never taken from input."""
    import json

    try:
        d = json.loads(value.decode())
        if not isinstance(d, dict):
            raise ValueError("not an object")
        lo = Layout(
            stripe_size=int(d.get("stripe_size", DEFAULT_STRIPE_SIZE)),
            stripe_count=int(d.get("stripe_count", DEFAULT_STRIPE_COUNT)),
            stripe_offset=int(d.get("stripe_offset", -1)),
            pattern=str(d.get("pattern", "raid0")),
            mirror_count=int(d.get("mirror_count", 0)),
        )
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise LpError(errno.EINVAL, f"malformed layout: {e}") from None
    lo.check()
    return lo
