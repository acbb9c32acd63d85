"""lfsctl lfsck --repair: act on confirmed findings and say what came of each.

Lost objects are recreated empty on their OSTs (the file lost that stripe's data); orphans older
than the grace period (by their mtime on the OST, so an object a create is writing right now is
never touched) are destroyed through the destroy queue of the MDT whose id range holds them, or
linked under /.lustre/lost+found (MDT1.. under /.lustre/lost+found/MDT<index>, which MDT0 makes
first); recorded sizes are set to what the objects say, by the file's MDT. Each MDT checks each
orphan and size again when it repairs it. A finding comes back with `repaired` and `repair`
filled in; MDT-internal problems, names across MDTs and unchecked servers are left as they are
(nothing here repairs them).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Mapping

from lustrepy.common.errors import QuietError
from lustrepy.common.fid import Fid
from lustrepy.common.layout import StripeObject
from lustrepy.common.lfsckrec import Orphan, Outcome, SizeFix
from lustrepy.ctl import lfsckq
from lustrepy.ctl.lfsck_check import MISSING, ORPHAN, SIZE, Finding
from lustrepy.ctl.servers import Server, ServerError

log = logging.getLogger(__name__)


def apply(mdts: Mapping[int, Server], osts: Mapping[int, Server], findings: list[Finding], *, grace_s: float,
          keep: bool, now_ns: int) -> list[Finding]:
    """The findings, each with what its repair came to (in the same order); each orphan and size
    goes to the MDT it concerns (`mdts`: those that were checked)."""
    outcome: dict[int, Outcome] = {}           # by position in `findings`
    outcome.update(_recreate(osts, findings))
    limit = now_ns - int(grace_s * 1e9)
    young = {i for i, f in enumerate(findings) if f.kind == ORPHAN and f.mtime_ns > limit}
    outcome.update((i, Outcome(False, f"kept: modified within the grace period ({grace_s:g} s)")) for i in young)
    orphans = [i for i, f in enumerate(findings) if f.kind == ORPHAN and i not in young]
    sizes = [i for i, f in enumerate(findings) if f.kind == SIZE]
    ownerless = [i for i in orphans if findings[i].mdt not in mdts]
    outcome.update((i, Outcome(False, f"no MDT of this file system owns the id range of MDT index {findings[i].mdt}"))
                   for i in ownerless)
    orphans = [i for i in orphans if i not in ownerless]
    into, why = _lost_found(mdts, {findings[i].mdt for i in orphans}) if keep and orphans else ({}, "")
    for m in sorted({findings[i].mdt for i in orphans + sizes}):
        mine_o = [i for i in orphans if findings[i].mdt == m]
        mine_s = [i for i in sizes if findings[i].mdt == m]
        if m != 0 and keep and m not in into:
            outcome.update((i, Outcome(False, f"no lost+found directory: {why}")) for i in mine_o)
            mine_o = []
        fid, path = into.get(m, (None, ""))
        try:
            done_o, done_s = lfsckq.repair(mdts[m], [_orphan(findings[i]) for i in mine_o], keep,
                                           [_size_fix(findings[i]) for i in mine_s], fid)
        except ServerError as e:            # MDT1..: the others are still repaired
            outcome.update((i, Outcome(False, str(e))) for i in mine_o + mine_s)
            continue
        outcome.update(zip(mine_o, (_said(r, keep, fid, path) for r in done_o), strict=True))
        outcome.update(zip(mine_s, done_s, strict=True))
    return [dataclasses.replace(f, repaired=outcome[i].done, repair=outcome[i].note) if i in outcome else f
            for i, f in enumerate(findings)]


def _lost_found(mdts: Mapping[int, Server], wanted: set[int]) -> tuple[dict[int, tuple[Fid, str]], str]:
    """The lost+found directories of MDT1.. that keep orphans (MDT0 makes them), and why there
    are none when MDT0 could not make them."""
    others = sorted(wanted - {0})
    if not others:
        return {}, ""
    try:
        return lfsckq.lost_found_dirs(mdts[0], others), ""
    except QuietError as e:
        return {}, str(e)


def _orphan(f: Finding) -> Orphan:
    assert f.ost is not None and f.object_id is not None
    return Orphan(StripeObject(f.ost, f.object_id), f.size or 0, f.blocks)


def _size_fix(f: Finding) -> SizeFix:
    assert f.fid is not None and f.mdt_size is not None and f.size is not None
    return SizeFix(f.fid, f.mdt_size, f.size, f.blocks)


def _said(r: Outcome, keep: bool, into: Fid | None, path: str) -> Outcome:
    if r.done and keep:
        note = path + r.note[len(str(into)):] if into is not None and r.note.startswith(str(into)) else r.note
        return Outcome(True, f"linked as {note}")
    if r.done:
        return Outcome(True, "destroyed (queued for destruction on its OST)")
    return r


def _recreate(osts: Mapping[int, Server], findings: list[Finding]) -> dict[int, Outcome]:
    """Recreate the lost objects, one request per OST."""
    by_ost: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        if f.kind == MISSING and f.ost is not None:
            by_ost[f.ost].append(i)
    out = {}
    for ost, idx in by_ost.items():
        ids = [findings[i].object_id or 0 for i in idx]
        try:
            made = lfsckq.recreate(osts[ost], ids)
            failure = ""
        except (ServerError, KeyError) as e:
            made, failure = set(), str(e)
        for i in idx:
            f = findings[i]
            if f.object_id in made:
                out[i] = Outcome(True, f"recreated empty: {f.path or f.fid} lost the data of stripe {f.stripe}")
            else:
                out[i] = Outcome(False, failure or "the OST did not create it (it exists again)")
    return out
