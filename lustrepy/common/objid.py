"""Object ids on an OST, per MDT: each MDT precreates and hands out ids of a range of its own
(as Lustre gives each MDT its own object sequence on every OST), so no two MDTs ever name the
same object and each reasons about its own ids alone (pools, replayed claims, orphans).

MDT i owns the ids [i << GROUP_BITS, (i + 1) << GROUP_BITS), id 0 excepted: MDT0's range is
1 .. 2**40 - 1, the ids a file system of one MDT always used.
"""

from __future__ import annotations

GROUP_BITS = 40
MAX_MDTS = 256              # MDT indexes 0 .. MAX_MDTS - 1


def group_of(object_id: int) -> int:
    """The MDT whose range holds this id."""
    return object_id >> GROUP_BITS


def group_base(mdt: int) -> int:
    """The id before the first of MDT `mdt`'s range (ids are base + 1, base + 2, ...)."""
    return mdt << GROUP_BITS


def group_last(mdt: int) -> int:
    """The last id of MDT `mdt`'s range."""
    return ((mdt + 1) << GROUP_BITS) - 1


def valid_mdt(mdt: int) -> bool:
    return 0 <= mdt < MAX_MDTS
