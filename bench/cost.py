"""CPU cost of the benchmark's timed steps, by role, and the table that shows it.

A workload wraps each timed step in `Meter.step` (or `Meter.timed`): the CPU
seconds (user + system, all threads) each role used between the start and the
end of the step, divided by the step's operations (µs/op) or by the MiB it
moved (ms/MiB). Roles:

- `bench`: the workload's own process and the children it reaped during the
  step (parallel writers, the clients of `shared`, `tar`, `rm`), from
  getrusage(2) (microseconds);
- `client`: the column's FUSE client processes (`Where.pids` groups `client`
  and, for `shared`, `peer`);
- `mds`: the metadata servers (groups `mds*`);
- `oss`: every object storage server together (groups `ost*`).

The servers' and clients' counters are /proc/PID/stat utime + stime, which
count every thread the process had, exited ones included, in clock ticks
(10 ms at 100 Hz, per process per step). A role whose process is unknown or
cannot be read for a step gets no figure for that step ("n/a"); CPU a
process spends after a step (deferred work) lands in whichever step is being
measured then, or in none.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

ROLES = ("bench", "client", "mds", "oss")
MiB = 1 << 20
UNIT_OP, UNIT_MIB = "µs/op", "ms/MiB"
_TICK = os.sysconf("SC_CLK_TCK")


def role_of(group: str) -> str | None:
    """The role of a `Where.pids` group name: client/peer, mds*, ost*; None for anything else."""
    if group in ("client", "peer"):
        return "client"
    if group.startswith("mds"):
        return "mds"
    if group.startswith("ost"):
        return "oss"
    return None


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) process `pid` has used so far; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def self_cpu_s() -> float:
    """CPU seconds of this process and of the children it has reaped so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def snapshot(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each role (bench included); a role with a process not known or
    not readable is left out."""
    out = {"bench": self_cpu_s()}
    by_role: dict[str, list[int]] = {}
    for group, members in pids.items():
        role = role_of(group)
        if role is not None:
            by_role.setdefault(role, []).extend(members)
    for role, members in by_role.items():
        seconds = [proc_cpu_s(pid) for pid in members]
        if members and all(s is not None for s in seconds):
            out[role] = sum(s for s in seconds if s is not None)
    return out


@dataclass(frozen=True, slots=True)
class Cost:
    """CPU one role used in one step, per operation or per MiB."""

    step: str                # the figure the step times, e.g. "create", "write"
    role: str                # one of ROLES
    value: float
    unit: str                # UNIT_OP or UNIT_MIB


class Clock:
    """The wall time of one step, set when the step ends."""

    seconds: float = 0.0


class Meter:
    """Measures the CPU of each role during a workload's steps; `costs` holds what it measured."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self.costs: list[Cost] = []

    @contextlib.contextmanager
    def step(self, name: str, *, ops: int = 0, nbytes: int = 0) -> Iterator[Clock]:
        """Time the body and record each role's CPU during it, per operation (`ops`) or per MiB
        (`nbytes`). Nothing is recorded when the body raises."""
        clock = Clock()
        before = snapshot(self.pids)
        t0 = time.perf_counter()
        yield clock
        clock.seconds = time.perf_counter() - t0
        after = snapshot(self.pids)
        per, unit = (ops / 1e6, UNIT_OP) if ops else (nbytes / MiB / 1e3, UNIT_MIB)    # seconds per µs/op, ms/MiB
        if per <= 0:
            return
        for role in ROLES:
            if role in before and role in after:
                self.costs.append(Cost(name, role, (after[role] - before[role]) / per, unit))

    def timed(self, name: str, fn: Callable[[], object], *, ops: int = 0, nbytes: int = 0) -> float:
        """Run fn as one step (see `step`); its wall time in seconds."""
        with self.step(name, ops=ops, nbytes=nbytes) as clock:
            fn()
        return clock.seconds


# ---- the table -------------------------------------------------------------------------------

class CostFigure(Protocol):
    """What the table needs of a workload's figure (workloads.Figure)."""

    @property
    def step(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def unit(self) -> str: ...


def _fmt(v: float) -> str:
    if abs(v) >= 99.95:                  # what would print as 100.0 prints as 100
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 9.995 else f"{v:.2f}"


def render_costs(results: dict[str, dict[str, Any]], names: Sequence[str], columns: Sequence[tuple[str, str]]) -> str:
    """The CPU cost table: a row per (workload, step), named "WORKLOAD STEP", and a group of role
    columns per benchmark column (`columns`: (name, header)). `results` maps workload -> column -> figures or an error
    string; cells read "error" for a failed workload, "n/a" where nothing was measured."""
    steps: list[tuple[str, str, str]] = []           # (workload, step, unit), in first-seen order
    value: dict[tuple[str, str, str, str], float] = {}     # (workload, step, column, role) -> value
    roles_of: dict[str, list[str]] = {c: [] for c, _ in columns}
    for name in names:
        for col, res in results.get(name, {}).items():
            if isinstance(res, str) or col not in roles_of:
                continue
            f: CostFigure
            for f in (f for f in res if getattr(f, "role", "")):
                if not any(s[:2] == (name, f.step) for s in steps):
                    steps.append((name, f.step, f.unit))
                value[(name, f.step, col, f.role)] = f.value
                if f.role not in roles_of[col]:
                    roles_of[col].append(f.role)
    if not steps:
        return ""
    groups = [(col, head, sorted(roles_of[col], key=ROLES.index) or [""]) for col, head in columns]

    def cell(name: str, step: str, col: str, role: str) -> str:
        res = results.get(name, {}).get(col)
        if isinstance(res, str):
            return "error"
        v = value.get((name, step, col, role))
        return "n/a" if v is None else _fmt(v)

    head = ["step", "unit", *(r for _, _, rs in groups for r in rs)]
    body = [[f"{name} {step}", unit, *(cell(name, step, col, r) for col, _, rs in groups for r in rs)]
            for name, step, unit in steps]
    widths = [max(len(x) for x in c) for c in zip(head, *body, strict=True)]
    top, i = ["", ""], 2                  # the column names, each over its roles
    for _, header, rs in groups:
        span = sum(widths[i:i + len(rs)]) + 2 * (len(rs) - 1)
        widths[i + len(rs) - 1] += max(len(header) - span, 0)     # a name wider than its roles widens them
        top.append(header.rjust(max(span, len(header))))
        i += len(rs)
    top_widths = widths[:2] + [len(t) for t in top[2:]]
    sep = "  "

    def line(cells: list[str], ws: list[int]) -> str:
        return sep.join(x.ljust(w) if j < 2 else x.rjust(w) for j, (x, w) in enumerate(zip(cells, ws,
                                                                                         strict=True))).rstrip()

    out = ["CPU per operation (µs/op) or per MiB moved (ms/MiB), by role: bench = the workload's processes, "
           "client = FUSE client(s), oss = all OSSes",
           line(top, top_widths), line(head, widths), sep.join("-" * w for w in widths)]
    out += [line(b, widths) for b in body]
    return "\n".join(out) + "\n"
