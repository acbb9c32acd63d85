"""The layout check's reasoning (lfsctl lfsck), pure: each MDT's snapshot against the OSTs' objects.

The MDT is read first, the OSTs after. An object listed on an OST is an orphan suspect when its
id was handed out by its pool by the time of the MDT's snapshot (ids are never handed out twice)
yet no file named it and it was not queued for destruction then: objects precreated and not yet
handed out, or created after the snapshot, are never suspects. A file's object missing from its
OST is a dangling suspect, and a file whose recorded size (where the MDT records one) is not what
its objects imply (a missing one counting as empty) a size suspect. Suspects become findings only
when the MDS's present view still says the same (confirm): a file unlinked, written or closed
since the snapshot is not damage. Objects of OSTs that could not be listed are not judged. With
several MDTs each judges the objects of its own id range (by_mdt), against its own files and pools.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from lustrepy.common.fid import Fid
from lustrepy.common.layout import StripeObject
from lustrepy.common.lfsckrec import FileObjects, FileState, ObjectState
from lustrepy.common.objid import group_base, group_of
from lustrepy.ctl.lfsckq import MdtView, OstObject, OstView

ORPHAN = "orphan"
MISSING = "missing"
SIZE = "size"
MDT = "mdt"
UNCHECKED = "unchecked"
DANGLING = "dangling"       # a name whose inode's MDT does not have that inode named so (lfsck_names)
UNNAMED = "unnamed"         # an inode named on another MDT that has no such name (lfsck_names)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: its kind and what it concerns, and (with --repair) what was done about it."""

    kind: str
    ost: int | None = None
    object_id: int | None = None
    fid: Fid | None = None
    path: str = ""
    stripe: int | None = None
    mdt_size: int | None = None         # size: what the MDT records
    size: int | None = None             # orphan: the object's size; size: what the objects imply
    blocks: int = 0
    mtime_ns: int = 0
    detail: str = ""                    # mdt and unchecked: the message
    repaired: bool | None = None        # None: no repair was tried
    repair: str = ""                    # what the repair did, or why nothing was done
    mdt: int = 0                        # the MDT it concerns (whose id range holds an object)


@dataclass(frozen=True, slots=True)
class Suspects:
    orphans: tuple[tuple[StripeObject, OstObject], ...]
    missing: tuple[tuple[FileObjects, int], ...]                # the file and the stripe
    sizes: tuple[tuple[FileObjects, int, int], ...]             # the file, objects' size, their blocks

    def objects(self) -> list[StripeObject]:
        """The objects whose present owner confirm() needs."""
        return [o for o, _ in self.orphans] + [f.objects[s] for f, s in self.missing]

    def fids(self) -> list[Fid]:
        """The files whose present state confirm() needs (each once)."""
        return list(dict.fromkeys([f.fid for f, _ in self.missing] + [f.fid for f, _, _ in self.sizes]))


def suspects(mdt: MdtView, osts: Mapping[int, OstView]) -> Suspects:
    """What the snapshot and the listings disagree on; `osts` holds the OSTs that were listed."""
    named = {o for f in mdt.files for o in f.objects}
    orphans = []
    for index, view in sorted(osts.items()):
        pool = mdt.pools.get(index)
        # ids below it were handed out (none of an OST without a pool)
        handed_out = pool.next_id if pool is not None else group_base(mdt.index) + 1
        for oid, ob in sorted(view.objects.items()):
            so = StripeObject(index, oid)
            if oid < handed_out and so not in named and so not in mdt.queued:
                orphans.append((so, ob))
    missing: list[tuple[FileObjects, int]] = []
    sizes = []
    for f in mdt.files:
        if any(o.ost_index not in osts for o in f.objects):
            continue
        found = [osts[o.ost_index].objects.get(o.object_id) for o in f.objects]
        missing += [(f, s) for s, ob in enumerate(found) if ob is None]
        implied = f.size_from([ob.size if ob else 0 for ob in found])
        if f.size_valid and implied != f.size:
            sizes.append((f, implied, sum(ob.blocks for ob in found if ob)))
    return Suspects(tuple(orphans), tuple(missing), tuple(sizes))


def confirm(s: Suspects, objects: Mapping[StripeObject, ObjectState],
            files: Mapping[Fid, FileState]) -> list[Finding]:
    """The suspects the MDS's present view confirms, as findings (files named by their path)."""
    out = []
    for so, ob in s.orphans:
        st = objects.get(so)
        if st is not None and st.owner is None and not st.queued and st.handed_out:
            out.append(Finding(ORPHAN, so.ost_index, so.object_id, size=ob.size, blocks=ob.blocks,
                               mtime_ns=ob.mtime_ns))
    for f, stripe in s.missing:
        so = f.objects[stripe]
        st = objects.get(so)
        if st is not None and st.owner == f.fid:
            out.append(Finding(MISSING, so.ost_index, so.object_id, f.fid, _path(files, f.fid), stripe))
    for f, implied, blocks in s.sizes:
        now = files.get(f.fid)
        if now is not None and now.file == f:       # same objects, same recorded size, still authoritative
            out.append(Finding(SIZE, fid=f.fid, path=now.path, mdt_size=f.size, size=implied, blocks=blocks))
    return out


def _path(files: Mapping[Fid, FileState], fid: Fid) -> str:
    st = files.get(fid)
    return st.path if st is not None else ""


def mdt_findings(mdt: MdtView) -> list[Finding]:
    return [Finding(MDT, detail=p, mdt=mdt.index) for p in mdt.problems]


def by_mdt(osts: Mapping[int, OstView], mdts: Iterable[int]) -> dict[int, dict[int, OstView]]:
    """Each MDT's share of the listed OSTs: every listed OST with only the objects of that MDT's
    id range (common/objid.py), which that MDT alone judges."""
    out: dict[int, dict[int, OstView]] = {m: {} for m in mdts}
    for index, view in osts.items():
        split: dict[int, dict[int, OstObject]] = {m: {} for m in out}
        for oid, ob in view.objects.items():
            share = split.get(group_of(oid))
            if share is not None:
                share[oid] = ob
        for m, objects in split.items():
            out[m][index] = OstView(index, objects, view.last_id)
    return out


def strays(osts: Mapping[int, OstView], mdts: Collection[int]) -> list[tuple[StripeObject, OstObject]]:
    """The listed objects of id ranges that belong to none of `mdts`."""
    return [(StripeObject(index, oid), ob) for index, view in sorted(osts.items())
            for oid, ob in sorted(view.objects.items()) if group_of(oid) not in mdts]
