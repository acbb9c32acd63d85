"""LAST_ID per MDT group: the highest object id ever created on this OST in each MDT's range of
ids (common/objid.py), recorded durably before any id of it is handed out.

Group 0 (MDT0's range, 1 .. 2**40 - 1) keeps DIR/LAST_ID, the file and meaning an OST of a
one-MDT file system always had; group g > 0 keeps DIR/LAST_ID.<g>. Each file holds the id
itself, not its place in the range. A group without a file has created nothing: its LAST_ID is
the base of its range (0 for group 0, as on a new OST).

At start every group's LAST_ID is raised to the highest object of that group found on disk (a
precreate that stopped before its LAST_ID was saved); taking the highest id found instead of a
damaged file could hand out again ids an MDT holds in its pool, so a damaged file stops the OSS.

Never creates objects and takes no lock: Ofd changes a group only under its `_meta_lock`, and
the readers (the id checks of every object request, the dirty log's look ahead) read one dict
entry, which an update replaces whole.
"""

from __future__ import annotations

import errno
import logging
import os
import re

from lustrepy.common.errors import LpError
from lustrepy.common.objid import group_base, group_last, group_of, valid_mdt
from lustrepy.oss.osd import Osd

log = logging.getLogger("lustrepy.oss.ofd")

LAST_ID_FILE = "LAST_ID"
_GROUP_FILE = re.compile(rf"{LAST_ID_FILE}(?:\.([0-9]+))?")


def file_name(mdt: int) -> str:
    """The file that holds group `mdt`'s LAST_ID."""
    return LAST_ID_FILE if mdt == 0 else f"{LAST_ID_FILE}.{mdt}"


class LastIds:
    """Every group's LAST_ID on one OST."""

    def __init__(self, osd: Osd) -> None:
        self.osd = osd
        self._last: dict[int, int] = {}         # group -> LAST_ID (groups that never created: absent)

    # -- start-up --------------------------------------------------------------

    def load(self, ids: list[int]) -> None:
        """Read every group's file and raise each group to its highest object in `ids` (the
        objects on disk, sorted), recording the new value; EIO for a damaged file."""
        highest: dict[int, int] = {}
        for oid in ids:
            highest[group_of(oid)] = oid        # sorted: the last one seen is the highest
        strays = sorted(g for g in highest if not valid_mdt(g))
        if strays:
            log.warning("objects outside every MDT's range (groups %s) left alone", strays[:8])
        recorded = {g: self._read(g, highest.get(g, 0)) for g in self._groups_with_files()}
        for g in sorted(set(recorded) | {g for g in highest if valid_mdt(g)}):
            rec = recorded.get(g, group_base(g))
            last = max(rec, highest.get(g, 0))
            if last != rec:
                # objects created by a precreate that stopped before LAST_ID was saved
                log.warning("%s was %d but objects exist up to %d; recording %d", file_name(g), rec, last, last)
                self.osd.write_meta(file_name(g), f"{last}\n".encode())
            if last > group_base(g):
                self._last[g] = last

    def _groups_with_files(self) -> list[int]:
        out = []
        for name in self.osd.meta_names(LAST_ID_FILE):
            m = _GROUP_FILE.fullmatch(name)
            if m is None:
                continue                        # a temporary file of an interrupted write
            g = int(m.group(1) or 0)
            if m.group(1) is not None and (g == 0 or not valid_mdt(g) or m.group(1) != str(g)):
                log.warning("%s names no MDT group: ignored", os.path.join(self.osd.root, name))
                continue
            out.append(g)
        return out

    def _read(self, g: int, highest: int) -> int:
        raw = self.osd.read_meta(file_name(g))
        if not raw:
            return group_base(g)                # as an OST always read an empty LAST_ID
        try:
            value = int(raw.decode().strip())
            if not group_base(g) <= value <= group_last(g):
                raise ValueError("outside the group's range")
        except (ValueError, UnicodeDecodeError):
            # Taking the highest object found could hand out again ids the MDT holds in its pool.
            raise LpError(errno.EIO, f"{os.path.join(self.osd.root, file_name(g))} is damaged "
                          f"({raw[:20]!r}); the highest object of MDT{g}'s range here is "
                          f"{highest or group_base(g)}: write the highest id that MDT ever got from this "
                          "OST there") from None
        return value

    # -- ids ---------------------------------------------------------------------

    def of(self, mdt: int) -> int:
        """Group `mdt`'s LAST_ID (the base of its range when it never created an object)."""
        return self._last.get(mdt, group_base(mdt))

    def all(self) -> dict[int, int]:
        """The LAST_ID of every group that created objects."""
        return dict(self._last)

    def record(self, mdt: int, last: int) -> None:
        """Make `last` group `mdt`'s LAST_ID, durably (OSError when it could not be written)."""
        self.osd.write_meta(file_name(mdt), f"{last}\n".encode())
        self._last[mdt] = last

    def created(self, oid: int) -> bool:
        """Whether `oid` was ever handed out: within its group's range, up to its LAST_ID."""
        g = group_of(oid)
        return group_base(g) < oid <= self._last.get(g, 0)

    def check(self, oid: int) -> None:
        """ENOENT for an id no precreate ever made (0, or beyond its group's LAST_ID): such an
        object cannot exist, whatever a file of that name may hold."""
        if not self.created(oid):
            g = group_of(oid)
            raise LpError(errno.ENOENT, f"object {oid} does not exist (LAST_ID of MDT{g}'s range: {self.of(g)})"
                          if oid > 0 else f"object {oid} does not exist")

    def ahead(self, oid: int, n: int) -> range:
        """Up to `n` ids after `oid` in its group, all created (new files get them in order)."""
        return range(oid + 1, min(oid + n, self.of(group_of(oid))) + 1)
