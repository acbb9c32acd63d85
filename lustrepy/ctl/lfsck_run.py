"""The order of lfsctl lfsck's work across the servers of one file system.

Every MDT's snapshot first (in parallel), every OST's objects after (in parallel); then each MDT's
present view of its own suspects (the objects of its id range, its files), the names across MDTs
(lfsck_names: two later looks), and with --repair the repairs, each at the MDT it concerns.
MDT0 that cannot be checked ends the run (QuietError); another MDT or an OST that cannot is one
`unchecked` finding, and what it holds is not judged. Renders nothing: lfsck.py shows the Report.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lustrepy.common.fid import Fid
from lustrepy.common.lfsckrec import NamesNow
from lustrepy.common.objid import group_of
from lustrepy.ctl import fldq, lfsck_check, lfsck_fix, lfsck_names, lfsckq, multi, servers
from lustrepy.ctl.lfsck_check import MISSING, ORPHAN, SIZE, UNCHECKED, Finding
from lustrepy.ctl.lfsck_names import Note
from lustrepy.ctl.lfsckq import MdtView, OstView
from lustrepy.ctl.servers import Server, ServerError

log = logging.getLogger(__name__)

ProgressFor = Callable[[str, str], lfsckq.Progress]     # (label, unit) -> progress callback


@dataclass(frozen=True, slots=True)
class Options:
    repair: bool = False
    grace_s: float = 600.0
    keep: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """What was checked (the MDTs scanned, the OSTs listed, out of how many) and what was found:
    findings (problems) and notes (operations across MDTs still being carried through)."""

    mdts: Mapping[int, MdtView]
    osts: Mapping[int, OstView]
    n_mdts: int
    n_osts: int
    findings: tuple[Finding, ...]
    notes: tuple[Note, ...]


def check(mds_address: str, fsname: str, found: list[Server], counter: ProgressFor, opts: Options) -> Report:
    """Check the file system whose MDT0 is at `mds_address` and whose servers are `found`
    (servers.fs_servers); with opts.repair, repair what the layout check found."""
    mdt_servers = {s.index: s for s in found if s.kind == servers.MDT}
    ost_servers = {s.index: s for s in found if s.kind == servers.OST}
    got_m = multi.gather(list(mdt_servers.values()), lambda s: lfsckq.scan_mdt(s, counter(s.label, "files")))
    got_o = multi.gather(list(ost_servers.values()), lambda s: lfsckq.list_ost(s, counter(s.label, "objects")))
    views = {s.index: v for s, v in got_m.answers}
    osts = {s.index: v for s, v in got_o.answers}
    unchecked = [Finding(UNCHECKED, mdt=e.server.index, detail=str(e)) for e in got_m.failures]
    unchecked += [Finding(UNCHECKED, ost=e.server.index, detail=str(e)) for e in got_o.failures]
    layout, failed = _layout(mdt_servers, views, osts)
    layout += _strays(mds_address, osts, set(mdt_servers))
    names, notes = _names(mdt_servers, views, fsname)
    known = lfsck_names.anchors(views.values())
    layout = [dataclasses.replace(f, path=lfsck_names.resolve(f.path, known)) for f in layout]
    names = [dataclasses.replace(f, path=lfsck_names.resolve(f.path, known)) for f in names]
    if opts.repair and layout:
        checked = {m: s for m, s in mdt_servers.items() if m in views}
        layout = lfsck_fix.apply(checked, ost_servers, layout, grace_s=opts.grace_s, keep=opts.keep,
                                 now_ns=time.time_ns())
    problems = [f for m in sorted(views) for f in lfsck_check.mdt_findings(views[m])]
    return Report(views, osts, len(mdt_servers), len(ost_servers),
                  tuple(problems + unchecked + failed + layout + names), tuple(notes))


def _layout(mdts: Mapping[int, Server], views: Mapping[int, MdtView], osts: Mapping[int, OstView]
            ) -> tuple[list[Finding], list[Finding]]:
    """Each MDT's confirmed orphans, missing objects and sizes; and the MDTs (not MDT0) that
    could not verify theirs."""
    shares = lfsck_check.by_mdt(osts, views)
    out: list[Finding] = []
    failed = []
    for m, view in sorted(views.items()):
        sus = lfsck_check.suspects(view, shares[m])
        objects, fids = sus.objects(), sus.fids()
        try:
            states = lfsckq.verify(mdts[m], objects, fids) if objects or fids else ({}, {})
        except ServerError as e:
            failed.append(Finding(UNCHECKED, mdt=m, detail=str(e)))
            continue
        out += [dataclasses.replace(f, mdt=m) for f in lfsck_check.confirm(sus, *states)]
    order = {ORPHAN: 0, MISSING: 1, SIZE: 2}
    return sorted(out, key=lambda f: order[f.kind]), failed


def _strays(mds_address: str, osts: Mapping[int, OstView], mdts: set[int]) -> list[Finding]:
    """Objects of id ranges no MDT of the file system owns, after asking MDT0 again (an MDT that
    joined since the start owns its range)."""
    found = lfsck_check.strays(osts, mdts)
    if not found:
        return []
    mdts = mdts | {m.index for m in fldq.mdt_list(mds_address) or ()}
    return [Finding(ORPHAN, so.ost_index, so.object_id, size=ob.size, blocks=ob.blocks, mtime_ns=ob.mtime_ns,
                    mdt=group_of(so.object_id)) for so, ob in found if group_of(so.object_id) not in mdts]


def _names(mdts: Mapping[int, Server], views: Mapping[int, MdtView], fsname: str
           ) -> tuple[list[Finding], list[Note]]:
    """The names across MDTs that disagree, after two later looks; notes of the operations that
    explain disagreements."""
    sus, notes = lfsck_names.suspects(views, mdts)
    if not sus:
        return [], notes
    first, bad1 = _look(mdts, lfsck_names.first_asks(sus, views))
    last, bad2 = _look(mdts, lfsck_names.last_asks(sus, views))
    bad = bad1 | bad2
    sus = [s for s in sus if s.holder not in bad and s.other not in bad]
    found, later = lfsck_names.confirm(sus, first, last, mdts, fsname)
    seen = {(n.mdt, n.op.op_id) for n in notes}
    return found, notes + [n for n in later if (n.mdt, n.op.op_id) not in seen]


def _look(mdts: Mapping[int, Server], asks: Mapping[int, list[Fid]]) -> tuple[dict[int, NamesNow], set[int]]:
    got = multi.gather([mdts[m] for m in sorted(asks)], lambda s: lfsckq.names_now(s, asks[s.index]))
    for e in got.failures:
        log.warning("lfsck: names across MDTs involving %s not judged: %s", e.server.name, e)
    return {s.index: v for s, v in got.answers}, {e.server.index for e in got.failures}
