"""Rendering of lfsctl results for people (tables shaped like Lustre's `lfs df`) and for scripts (--json).

Pure functions from records to text or JSON-ready dicts: no I/O, no RPC. The
human forms may be refined; the JSON keys are an interface scripts rely on,
so they only ever grow.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lustrepy.common.records import Statfs
from lustrepy.ctl.clusterfile import ClusterRecord
from lustrepy.ctl.query import FsStatus, MdsInfo, OstState, Recovery

UUID_WIDTH = 20
NEVER_S = 1e8        # an OST not heard from since the MDS started reports an absurd age
_UNITS = "KMGTPEZY"


@dataclass(frozen=True, slots=True)
class Usage:
    """Space (bytes) and inodes of one target, or of a summary."""

    total: int
    used: int
    avail: int
    inodes: int
    iused: int
    ifree: int

    @classmethod
    def of(cls, s: Statfs) -> Usage:
        bsize = s.bsize or 0
        return cls(total=s.blocks * bsize, used=max(s.blocks - s.bfree, 0) * bsize, avail=s.bavail * bsize,
                   inodes=s.files, iused=max(s.files - s.ffree, 0), ifree=s.ffree)

    @property
    def use_pct(self) -> int:
        return pct(self.used, self.avail)

    @property
    def iuse_pct(self) -> int:
        return pct(self.iused, self.ifree)


@dataclass(frozen=True, slots=True)
class DfRow:
    uuid: str
    kind: str            # "MDT" | "OST"
    index: int
    active: bool
    usage: Usage


def pct(used: int, avail: int) -> int:
    """Use% as df computes it: used / (used + available), rounded up."""
    denom = used + avail
    return 0 if denom <= 0 else -(-used * 100 // denom)


def human_bytes(n: int) -> str:
    """Sizes as `lfs df -h` prints them: one decimal, binary units from K up."""
    v = n / 1024
    i = 0
    while v >= 1024 and i < len(_UNITS) - 1:
        v /= 1024
        i += 1
    return f"{v:.1f}{_UNITS[i]}"


def human_count(n: int) -> str:
    if n < 1000:
        return str(n)
    v, i = n / 1000, 0
    while v >= 1000 and i < len(_UNITS) - 1:
        v /= 1000
        i += 1
    return f"{v:.1f}{_UNITS[i]}"


def human_duration(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


# ---- df ----------------------------------------------------------------------

def df_rows(st: FsStatus) -> list[DfRow]:
    """Every MDT by index, then every OST."""
    rows = [DfRow(uuid=m.uuid, kind="MDT", index=m.index, active=m.active, usage=Usage.of(m.statfs or Statfs()))
            for m in st.mdt_states()]
    rows += [DfRow(uuid=o.uuid, kind="OST", index=o.index, active=o.active, usage=Usage.of(o.statfs))
             for o in st.osts]
    return rows


def df_summary(st: FsStatus) -> Usage:
    """Space over active OSTs; inodes over the active MDTs (every file needs one on its MDT)."""
    active = [Usage.of(o.statfs) for o in st.osts if o.active]
    mdts = [Usage.of(m.statfs) for m in st.mdt_states() if m.statfs is not None]
    return Usage(total=sum(u.total for u in active), used=sum(u.used for u in active),
                 avail=sum(u.avail for u in active), inodes=sum(u.inodes for u in mdts),
                 iused=sum(u.iused for u in mdts), ifree=sum(u.ifree for u in mdts))


def render_df(st: FsStatus, mounted_on: str, inodes: bool = False, human: bool = False) -> str:
    rows = df_rows(st)
    w = max([UUID_WIDTH] + [len(r.uuid) for r in rows])

    def cols(u: Usage) -> tuple[str, str, str, int]:
        if inodes:
            f = human_count if human else str
            return f(u.inodes), f(u.iused), f(u.ifree), u.iuse_pct
        if human:
            return human_bytes(u.total), human_bytes(u.used), human_bytes(u.avail), u.use_pct
        return str(u.total // 1024), str(u.used // 1024), str(u.avail // 1024), u.use_pct

    if inodes:
        head = ("Inodes", "IUsed", "IFree", "IUse%")
    else:
        head = ("bytes" if human else "1K-blocks", "Used", "Available", "Use%")
    lines = [f"{'UUID':<{w}} {head[0]:>12} {head[1]:>12} {head[2]:>12} {head[3]:>5} Mounted on"]
    for r in rows:
        if not r.active:
            lines.append(f"{r.uuid} : inactive device")
            continue
        a, b, c, p = cols(r.usage)
        lines.append(f"{r.uuid:<{w}} {a:>12} {b:>12} {c:>12} {p:>4}% {mounted_on}[{r.kind}:{r.index}]")
    a, b, c, p = cols(df_summary(st))
    lines += ["", f"{'filesystem_summary:':<{w}} {a:>12} {b:>12} {c:>12} {p:>4}% {mounted_on}"]
    return "\n".join(lines) + "\n"


def _usage_json(u: Usage) -> dict[str, int]:
    return {"bytes_total": u.total, "bytes_used": u.used, "bytes_avail": u.avail, "use_pct": u.use_pct,
            "inodes": u.inodes, "inodes_used": u.iused, "inodes_free": u.ifree, "iuse_pct": u.iuse_pct}


def df_json(st: FsStatus, mgs: str, mounted_on: str | None) -> dict[str, Any]:
    targets = []
    for r in df_rows(st):
        d: dict[str, Any] = {"uuid": r.uuid, "type": r.kind, "index": r.index,
                             "state": "active" if r.active else "inactive"}
        d.update(_usage_json(r.usage))
        targets.append(d)
    return {"fsname": st.fsname, "mgs": mgs, "mount": mounted_on, "targets": targets,
            "osts_active": sum(1 for o in st.osts if o.active), "osts_total": len(st.osts),
            "summary": _usage_json(df_summary(st))}


# ---- osts --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OssSelf:
    """What an OSS says of itself (its Stats reply)."""

    uptime_s: float
    version: str
    clients: int
    recovery: Recovery | None = None
    last_committed: int = 0


def render_osts(osts: Iterable[OstState], selves: dict[int, OssSelf] | None = None) -> str:
    osts = list(osts)
    selves = selves or {}
    w = max([UUID_WIDTH] + [len(o.uuid) for o in osts])
    aw = max([21] + [len(o.address) for o in osts])
    dw = max([6] + [len(o.failure_domain) for o in osts])
    lines = [f"{'IDX':>4} {'UUID':<{w}} {'ADDRESS':<{aw}} {'DOMAIN':<{dw}} {'STATE':<9} {'LAST SEEN':<10} "
             f"{'UPTIME':<9} {'VERSION':<8} {'CLIENTS':<7} RECOVERY"]
    for o in osts:
        seen = f"{human_duration(o.last_seen_s)} ago" if o.address and o.last_seen_s < NEVER_S else "never"
        me = selves.get(o.index)
        mine = (f"{human_duration(me.uptime_s):<9} {me.version:<8} {me.clients:<7} {recovery_brief(me.recovery)}"
                if me is not None else f"{'-':<9} {'-':<8} {'-':<7} -")
        lines.append(f"{o.index:>4} {o.uuid:<{w}} {o.address or '-':<{aw}} {o.failure_domain or '-':<{dw}} "
                     f"{'active' if o.active else 'inactive':<9} {seen:<10} {mine}")
    if not osts:
        lines.append("(no OST has registered with the MDS)")
    return "\n".join(lines) + "\n"


def osts_json(st: FsStatus, mgs: str, selves: dict[int, OssSelf] | None = None) -> dict[str, Any]:
    selves = selves or {}

    def mine(i: int) -> dict[str, Any]:
        me = selves.get(i)
        if me is None:
            return {"uptime_s": None, "version": None, "clients": None, "recovery": None, "last_committed": None}
        return {"uptime_s": round(me.uptime_s, 1), "version": me.version, "clients": me.clients,
                "recovery": dataclasses.asdict(me.recovery) if me.recovery is not None else None,
                "last_committed": me.last_committed}
    return {"fsname": st.fsname, "mgs": mgs, "osts": [
        {"index": o.index, "uuid": o.uuid, "address": o.address, "state": "active" if o.active else "inactive",
         "active": o.active, "last_seen_s": round(o.last_seen_s, 3), "precreated": o.precreated, "full": o.full,
         "node": o.node, "failure_domain": o.failure_domain,
         **mine(o.index), **_usage_json(Usage.of(o.statfs))}
        for o in st.osts]}


# ---- mds ---------------------------------------------------------------------

def mds_fields(info: MdsInfo) -> list[tuple[str, str]]:
    return [("address", info.address), ("uuid", info.uuid), ("fsname", info.fsname),
            ("uptime", human_duration(info.uptime_s)), ("version", info.version),
            ("clients", str(info.clients)), ("last transno", str(info.last_transno)),
            ("last committed", str(info.last_committed)), *recovery_fields(info.recovery)]


def recovery_fields(r: Recovery | None) -> list[tuple[str, str]]:
    if r is None:
        return []
    out = [("recovery", r.state)]
    if r.state != "none":
        out.append(("  clients", f"{r.clients_recovered}/{r.clients_expected} recovered, {r.clients_evicted} evicted"))
        out.append(("  replays", f"{r.replays_applied} applied, {r.replays_failed} failed"))
        out.append(("  time left" if r.state == "recovering" else "  took",
                    f"{r.time_left_s if r.state == 'recovering' else r.took_s:.1f}s"))
    return out


def recovery_brief(r: Recovery | None) -> str:
    """One column's worth: "none", "complete 1/1 in 0.4s", "recovering 1/2, 41s left"."""
    if r is None or r.state == "none":
        return "none"
    clients = f"{r.clients_recovered}/{r.clients_expected}"
    if r.state == "recovering":
        return f"recovering {clients}, {r.time_left_s:.0f}s left"
    return f"{r.state} {clients} in {r.took_s:.1f}s" + (f", {r.replays_failed} failed" if r.replays_failed else "")


def render_mds(info: MdsInfo, counters: bool = False) -> str:
    fields = mds_fields(info)
    if counters:
        fields += [(f"  {k}", str(v)) for k, v in info.counters]
    w = max(len(k) for k, _ in fields) + 1
    return "".join(f"{k + ':':<{w}} {v}\n" for k, v in fields)


def mds_json(info: MdsInfo) -> dict[str, Any]:
    return {"address": info.address, "uuid": info.uuid, "fsname": info.fsname, "uptime_s": info.uptime_s,
            "version": info.version, "clients": info.clients, "last_transno": info.last_transno,
            "last_committed": info.last_committed, "counters": dict(info.counters),
            "recovery": dataclasses.asdict(info.recovery) if info.recovery is not None else None}


# ---- cluster -----------------------------------------------------------------

def render_cluster(rec: ClusterRecord, running: dict[str, bool] | None = None) -> str:
    """The processes of a local cluster; `running` maps server names to liveness when known."""
    def state(name: str) -> str:
        if running is None:
            return ""
        return "  running" if running.get(name) else "  stopped"

    lines = [f"fsname:  {rec.fsname}", f"root:    {rec.root}", f"state:   {rec.state}",
             f"mgs:     {rec.mgs_source}"]
    for s in rec.servers():
        pid = f"pid {s.pid}" if s.pid else "no pid"
        lines.append(f"{s.name + ':':<8} {s.address or '-':<21} {pid:<10}{state(s.name)}  log {s.log}")
    lines.append(f"mount:   {rec.mount.point if rec.mount else '(not mounted)'}")
    return "\n".join(lines) + "\n"
