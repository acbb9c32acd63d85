"""RAID0 layouts: the record, its validation, and its form as an extended attribute.

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


@dataclass(frozen=True, slots=True)
class StripeObject:
    ost_index: int
    object_id: int


@dataclass(frozen=True, slots=True)
class Layout:
    """A file layout (objects filled) or a default/requested one (objects empty).

    stripe_count == -1 means "all active OSTs" in a default or a request;
    stripe_offset == -1 means "let the MDS choose the first OST".
    """

    stripe_size: int = DEFAULT_STRIPE_SIZE
    stripe_count: int = DEFAULT_STRIPE_COUNT
    stripe_offset: int = -1
    pattern: str = "raid0"
    objects: tuple[StripeObject, ...] = field(default_factory=tuple)
    generation: int = 0

    def check(self, ost_count: int | None = None) -> None:
        """Raise LpError(EINVAL) when the layout is malformed or impossible."""
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


def encode_lov(layout: Layout) -> bytes:
    """The layout as the value of the `lustrepy.lov` xattr: compact JSON, readable with getfattr."""
    import json

    d: dict[str, object] = {
        "stripe_size": layout.stripe_size,
        "stripe_count": layout.stripe_count,
        "stripe_offset": layout.stripe_offset,
        "pattern": layout.pattern,
    }
    if layout.objects:
        d["objects"] = [[o.ost_index, o.object_id] for o in layout.objects]
    return json.dumps(d, separators=(",", ":")).encode()


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
        )
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise LpError(errno.EINVAL, f"malformed layout: {e}") from None
    lo.check()
    return lo
