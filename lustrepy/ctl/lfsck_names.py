"""The name check across MDTs (lfsctl lfsck), pure: every MDT's stubs against the other MDTs'
remote names, and back.

A stub on MDT a (inode f, on MDT b, named N in directory P of a) must match a remote name on b
(inode f named N in P on a), and every remote name must match a stub the same way. Either side
without the other is a suspect, unless an operation across MDTs that some MDT has logged and not
finished names that inode or that name: such an operation leaves the two sides apart until it is
carried through, and gives a note instead. The MDTs are not read at one instant, so a suspect of
the scans becomes a finding only after two later looks: first at the other side (it still lacks
the match), then at the side that holds it (it still holds it). A stub or remote name row that
was there at the scan and is there at the last look was there at the middle look, when its match
was missing and no operation explained it. Names that involve an MDT that could not be checked
are not judged.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lustrepy.common.fid import Fid
from lustrepy.common.fld import mdt_name
from lustrepy.common.lfsckrec import CrossName, NamesNow, Pending
from lustrepy.ctl.lfsck_check import DANGLING, UNNAMED, Finding
from lustrepy.ctl.lfsckq import MdtView


@dataclass(frozen=True, slots=True)
class NameSuspect:
    """A stub (DANGLING) or a remote name (UNNAMED) on MDT `holder` without its match on `other`."""

    kind: str
    holder: int
    other: int
    row: CrossName


@dataclass(frozen=True, slots=True)
class Note:
    """An operation across MDTs, logged on MDT `mdt` and not finished, that explains a disagreement."""

    mdt: int
    op: Pending


def _match(holder: int, row: CrossName) -> tuple[Fid, int, Fid, bytes]:
    """The key of the row the other MDT must hold for `row` of `holder`."""
    return row.fid, holder, row.parent, row.name


def _rows(kind: str, now: NamesNow | MdtView) -> tuple[CrossName, ...]:
    return now.stubs if kind == DANGLING else now.remote_names


def _other_kind(kind: str) -> str:
    return UNNAMED if kind == DANGLING else DANGLING


def _keys(rows: Iterable[CrossName]) -> set[tuple[Fid, int, Fid, bytes]]:
    return {(r.fid, r.mdt, r.parent, r.name) for r in rows}


def _explained(row: CrossName, pending: Iterable[tuple[int, Pending]], notes: dict[tuple[int, int], Note]) -> bool:
    hit = False
    for mdt, op in pending:
        if op.explains(row):
            notes.setdefault((mdt, op.op_id), Note(mdt, op))
            hit = True
    return hit


def _pending(views: Mapping[int, MdtView | NamesNow]) -> list[tuple[int, Pending]]:
    return [(m, op) for m, v in sorted(views.items()) for op in v.pending]


def suspects(views: Mapping[int, MdtView], mdts: Iterable[int]) -> tuple[list[NameSuspect], list[Note]]:
    """The scans' disagreements (`views`: the MDTs scanned; `mdts`: every MDT of the file system),
    and notes of the operations that explain others."""
    known = set(mdts)
    pending = _pending(views)
    notes: dict[tuple[int, int], Note] = {}
    out = []
    for kind in (DANGLING, UNNAMED):
        back = {m: _keys(_rows(_other_kind(kind), v)) for m, v in views.items()}
        for holder, v in sorted(views.items()):
            for row in _rows(kind, v):
                other = row.mdt
                if other in known and other not in views:
                    continue                    # that MDT could not be checked
                if _match(holder, row) in back.get(other, set()):
                    continue
                if not _explained(row, pending, notes):
                    out.append(NameSuspect(kind, holder, other, row))
    return out, list(notes.values())


def first_asks(sus: Iterable[NameSuspect], scanned: Iterable[int]) -> dict[int, list[Fid]]:
    """The second look, at the other side: what to ask each scanned MDT (every one is asked, for
    its unfinished operations). A remote name's MDT is asked of the directory too, for its path."""
    asks: dict[int, list[Fid]] = {m: [] for m in scanned}
    for s in sus:
        if s.other in asks:
            asks[s.other] += [s.row.fid] if s.kind == DANGLING else [s.row.fid, s.row.parent]
    return {m: list(dict.fromkeys(fids)) for m, fids in asks.items()}


def last_asks(sus: Iterable[NameSuspect], scanned: Iterable[int]) -> dict[int, list[Fid]]:
    """The third look, at the side that holds each suspect."""
    asks: dict[int, list[Fid]] = {m: [] for m in scanned}
    for s in sus:
        asks[s.holder].append(s.row.fid)
    return {m: list(dict.fromkeys(fids)) for m, fids in asks.items()}


def confirm(sus: Iterable[NameSuspect], first: Mapping[int, NamesNow], last: Mapping[int, NamesNow],
            mdts: Iterable[int], fsname: str) -> tuple[list[Finding], list[Note]]:
    """The suspects both later looks confirm, as findings; notes of the operations that explained
    the others."""
    known = set(mdts)
    pending = _pending(first) + _pending(last)
    notes: dict[tuple[int, int], Note] = {}
    out = []
    for s in sus:
        there = first.get(s.other)
        if there is not None and _match(s.holder, s.row) in _keys(_rows(_other_kind(s.kind), there)):
            continue                                # matched by now
        held = last.get(s.holder)
        if held is None or (s.row.fid, s.row.mdt, s.row.parent, s.row.name) not in _keys(_rows(s.kind, held)):
            continue                                # gone by now
        if _explained(s.row, pending, notes):
            continue
        out.append(_finding(s, there, s.other in known, fsname))
    return out, list(notes.values())


def _finding(s: NameSuspect, there: NamesNow | None, known: bool, fsname: str) -> Finding:
    other = mdt_name(fsname, s.other)
    row = s.row
    if s.kind == DANGLING:
        if not known:
            why = f"its inode is on MDT index {s.other}, which this file system does not have"
        elif there is None or row.fid not in there.inodes:
            why = f"its inode is not on {other}"
        else:
            why = f"{other} has its inode but not this name of it" + _elsewhere(there.remote_names, row.fid, fsname)
        return Finding(DANGLING, fid=row.fid, path=row.path or _name(row), detail=why, mdt=s.holder)
    where = _name(row) if there is None or row.parent not in there.inodes else _below(there.inodes[row.parent], row)
    if not known:
        why = f"on MDT index {s.other}, which this file system does not have"
    else:
        why = f"on {other}, which has no such name of it"
        if there is not None:
            why += _elsewhere(there.stubs, row.fid, fsname, stubs=True)
    return Finding(UNNAMED, fid=row.fid, path=where, detail=why, mdt=s.holder)


def _elsewhere(rows: Iterable[CrossName], fid: Fid, fsname: str, stubs: bool = False) -> str:
    """What the other side says of the inode instead, if anything: one of its stubs there, or one
    of the names it says other MDTs hold."""
    said = [r for r in rows if r.fid == fid]
    if not said:
        return ""
    r = said[0]
    if stubs:
        return f" (it names it {_name(r)} instead)"
    return f" (it names it {_name(r)} on {mdt_name(fsname, r.mdt)})"


def _name(row: CrossName) -> str:
    return f"{row.name.decode('utf-8', 'surrogateescape')!r} in {row.parent}"


def _below(parent_path: str, row: CrossName) -> str:
    if not parent_path:
        return _name(row)
    return parent_path.rstrip("/") + "/" + row.name.decode("utf-8", "surrogateescape")


# ---- paths ------------------------------------------------------------------------------------

def anchors(views: Iterable[MdtView], more: Mapping[Fid, str] | None = None) -> dict[Fid, str]:
    """Inode FID -> the path of one of its names, from every MDT's stubs (and `more`)."""
    out = dict(more or {})
    for v in views:
        for s in v.stubs:
            if s.path:
                out.setdefault(s.fid, s.path)
    return out


def resolve(path: str, known: Mapping[Fid, str]) -> str:
    """`path` from the root, where it starts at a directory named on another MDT ("[fid]/f") whose
    name some MDT reported; else `path` as it is."""
    for _ in itertools.repeat(None, 64):            # names nest a bounded depth
        if not path.startswith("["):
            return path
        end = path.find("]")
        try:
            fid = Fid.parse(path[:end + 1])
        except ValueError:
            return path
        top = known.get(fid)
        if top is None:
            return path
        path = top.rstrip("/") + path[end + 1:]
    return path
