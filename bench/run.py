"""Run the benchmark workloads on a local directory, the pass-through FUSE baseline and lustrepy.

    python bench/run.py [--lustrepy MNT | --cluster-root DIR | --no-lustrepy]
                        [--only NAME[,NAME]] [--size 1G] [--files 5000] [--json]

Columns: (a) a local directory, (b) bench/passthrough.py mounted over a local
directory, (c) lustrepy: the mount MNT, or a cluster this script brings up
with `lfsctl cluster up --root DIR --osts 4 --mount DIR/mnt` (by default in
its work directory) and tears down again. When lustrepy cannot be mounted,
its column reads "n/a" with the one-line reason and the rest still runs.

Prints a table of every figure with the ratios lustrepy/local and
lustrepy/passthrough and the project's targets with PASS/FAIL. Progress goes
to stderr, so `--json` output on stdout can be piped. Exit status: 0 when the
run completed (whatever the targets say), 1 on a setup error, 130 when
interrupted.

Everything it starts it stops: the pass-through is unmounted and its
process stopped by pid; a cluster it brought up is taken down with
`lfsctl cluster down`; each workload runs in a process group of its own that
is killed on timeout or Ctrl-C. Never stops a process it did not start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as wl  # bench/ is not a package

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PASSTHROUGH = HERE / "passthrough.py"
LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
LOV_XATTR = "lustrepy.lov"
MOUNT_WAIT_S = 15.0
CLUSTER_UP_WAIT_S = 180.0
STOP_GRACE_S = 10.0
UNMOUNT_TIMEOUT_S = 30.0
COLUMNS = ("local", "passthrough", "lustrepy")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


# ---- arguments -------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """'1G', '64M', '512K', '4096' -> bytes (binary units)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: expected a number with an optional K, M, G or T")
    n = int(float(m.group(1)) * (1 << (10 * " KMGT".index(m.group(2).upper() or " "))))
    if n <= 0:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: must be positive")
    return n


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return n


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench/run.py", description="Benchmark lustrepy against a local directory "
                                 "and a pass-through FUSE file system.")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--lustrepy", metavar="MNT", help="benchmark this mounted lustrepy file system")
    where.add_argument("--cluster-root", metavar="DIR",
                       help="bring up a cluster in DIR (`lfsctl cluster up --root DIR --osts 4 --mount DIR/mnt`), "
                            "benchmark it, take it down (default: a cluster in the work directory)")
    where.add_argument("--no-lustrepy", action="store_true", help="only the local and pass-through columns")
    ap.add_argument("--only", action="append", metavar="NAME[,NAME]",
                    help=f"run only these workloads ({', '.join(wl.WORKLOADS)})")
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"),
                    help="sequential file size, total of the parallel writers, memory stream (default 1G)")
    ap.add_argument("--files", type=positive_int, default=5000, help="files of the metadata workload (default 5000)")
    ap.add_argument("--tar-files", type=positive_int, help="files in the tarball (default: 3/5 of --files)")
    ap.add_argument("--rand-size", type=parse_size, help="file of the 4 KiB random I/O (default: --size / 4)")
    ap.add_argument("--rand-ops", type=positive_int, help="4 KiB random writes, and reads (default: 4 x --files)")
    ap.add_argument("--writers", type=positive_int, default=4, help="parallel writer processes (default 4)")
    ap.add_argument("--osts", type=positive_int, default=4, help="OSTs of a cluster brought up here (default 4)")
    ap.add_argument("--workdir", metavar="DIR", help="where the work directory is made (default: $TMPDIR)")
    ap.add_argument("--timeout", type=float, default=1800.0, metavar="S",
                    help="give up on one workload on one column after S seconds (default 1800)")
    ap.add_argument("--repeat", type=positive_int, default=1, metavar="N",
                    help="run each workload N times per column and report the median (default 1)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the untimed write of --size on each column before the workloads")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    return ap


def selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(wl.WORKLOADS)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in wl.WORKLOADS]
    if unknown:
        raise SystemExit(f"bench: unknown workload {unknown[0]!r} (known: {', '.join(wl.WORKLOADS)})")
    return [n for n in wl.WORKLOADS if n in names]


def make_params(ns: argparse.Namespace, tarball: str) -> wl.Params:
    return wl.Params(size=ns.size, writers=ns.writers,
                     rand_size=ns.rand_size or max(ns.size // 4, wl.SMALL_IO),
                     rand_ops=ns.rand_ops or 4 * ns.files, files=ns.files,
                     tar_files=ns.tar_files or max(ns.files * 3 // 5, 1), tarball=tarball)


# ---- processes and mounts -------------------------------------------------------------

def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f if len(line.split()) > 4]


def is_mounted(point: str) -> bool:
    return os.path.abspath(point) in mount_points()


def unmount(point: str) -> str:
    """fusermount3 -u, then a lazy unmount as the last resort; '' on success, else the reason."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount3"
    last = ""
    for argv in ([tool, "-u", point], [tool, "-uz", point]):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=UNMOUNT_TIMEOUT_S, check=False)
            last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        except (OSError, subprocess.TimeoutExpired) as e:
            last = str(e)
        if not is_mounted(point):
            return ""
    return last


def stop_child(p: subprocess.Popen[Any]) -> None:
    """SIGTERM a process this script started, SIGKILL it after a grace period; reap it."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_pids(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL after a grace period, processes this run started but does not parent
    (found by their exact mount source and mount point); zombies count as gone."""
    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
        except OSError:
            return False

    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
        pids = [p for p in pids if alive(p)]
        for pid in pids:
            say(f"stopping leftover client pid {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)


def last_line(text: str, default: str = "") -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else default


def cmdlines() -> Iterator[tuple[int, list[str]]]:
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        yield int(entry), [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def client_pids(source: str, point: str) -> list[int]:
    """The processes of the lustrepy client mounted from `source` on `point` (both exact argv words)."""
    return sorted(pid for pid, argv in cmdlines() if source in argv and point in argv)


def _after(argv: list[str], opt: str) -> str | None:
    return argv[argv.index(opt) + 1] if opt in argv[:-1] else None


def server_pids_by_argv(address: str) -> dict[str, list[int]]:
    """MDS (`--listen ADDRESS`) and OSS (`--mds ADDRESS`) processes of a file system not started here."""
    out: dict[str, list[int]] = {}
    for pid, argv in cmdlines():
        prog = " ".join(argv[:2])
        if "lustrepy-mds" in prog and _after(argv, "--listen") == address:
            out["mds"] = [pid]
        elif "lustrepy-oss" in prog and _after(argv, "--mds") == address:
            out[f"ost{_after(argv, '--index')}"] = [pid]
    return out


# ---- the columns ----------------------------------------------------------------------

@dataclass
class Column:
    name: str
    dir: str = ""
    where: wl.Where | None = None
    reason: str = ""                 # why the column is n/a
    info: str = ""

    @property
    def ok(self) -> bool:
        return self.where is not None


def lov_setstripe(d: str, count: int) -> None:
    value = {"stripe_size": wl.MiB, "stripe_count": count, "stripe_offset": -1, "pattern": "raid0"}
    os.setxattr(d, LOV_XATTR, json.dumps(value, separators=(",", ":")).encode())


@contextlib.contextmanager
def local_column(workdir: str) -> Iterator[Column]:
    d = os.path.join(workdir, "local")
    os.mkdir(d)
    yield Column("local", dir=d, where=wl.Where("local"), info=d)


@contextlib.contextmanager
def passthrough_column(workdir: str) -> Iterator[Column]:
    src, mnt = os.path.join(workdir, "pt-src"), os.path.join(workdir, "pt-mnt")
    os.mkdir(src)
    os.mkdir(mnt)
    logpath = os.path.join(workdir, "passthrough.log")
    with open(logpath, "wb") as logf:
        p = subprocess.Popen([sys.executable, str(PASSTHROUGH), src, mnt], stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + MOUNT_WAIT_S
        while not is_mounted(mnt) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_mounted(mnt):
            yield Column("passthrough", dir=mnt, where=wl.Where("passthrough", pids={"client": [p.pid]}),
                         info=f"{mnt} (pid {p.pid})")
        else:
            why = last_line(Path(logpath).read_text(errors="replace"), "did not mount")
            yield Column("passthrough", reason=f"pass-through did not mount: {why}")
    finally:
        if is_mounted(mnt):
            why = unmount(mnt)
            if why:
                say(f"cannot unmount {mnt}: {why}")
        stop_child(p)


@contextlib.contextmanager
def lustrepy_mount_column(mnt: str) -> Iterator[Column]:
    mnt = os.path.abspath(mnt)
    try:
        from lustrepy.ctl import mounts
    except Exception as e:  # noqa: BLE001 - any import failure is the reason
        yield Column("lustrepy", reason=f"cannot import lustrepy: {e}")
        return
    entry = mounts.lustrepy_mount_at(mnt)
    if entry is None:
        yield Column("lustrepy", reason=f"{mnt} is not a lustrepy mount")
        return
    d = os.path.join(mnt, f"bench-{os.getpid()}")
    try:
        os.mkdir(d)
    except OSError as e:
        yield Column("lustrepy", reason=f"cannot make {d}: {e.strerror}")
        return
    try:
        address = entry.source.partition(":/")[0]
        pids = {"client": client_pids(entry.source, mnt), **server_pids_by_argv(address)}
        yield Column("lustrepy", dir=d, where=wl.Where("lustrepy", setstripe=lov_setstripe, pids=pids),
                     info=f"{entry.source} on {mnt}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run_lfsctl(argv: list[str], workdir: str, timeout: float) -> tuple[int, str]:
    """Run lfsctl in its own session and wait for it even through Ctrl-C (it bounds its own waits,
    and stops what it started when it fails); (exit status, stderr). Re-raises an interrupt afterwards."""
    errpath = os.path.join(workdir, "lfsctl.err")
    with open(errpath, "wb") as errf:
        p = subprocess.Popen([*LFSCTL, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                             start_new_session=True)
    interrupted = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            p.wait(max(deadline - time.monotonic(), 0.01))
            break
        except KeyboardInterrupt:
            interrupted = True
            say(f"waiting for `lfsctl {' '.join(argv[:2])}` to finish so what it started can be stopped")
        except subprocess.TimeoutExpired:
            stop_child(p)
            break
    if interrupted:
        raise KeyboardInterrupt
    return p.returncode, Path(errpath).read_text(errors="replace")


@contextlib.contextmanager
def lustrepy_cluster_column(root: str, osts: int, workdir: str) -> Iterator[Column]:
    root = os.path.abspath(root)
    mnt = os.path.join(root, "mnt")
    try:
        from lustrepy.ctl import clusterfile, launcher
    except Exception as e:  # noqa: BLE001
        yield Column("lustrepy", reason=f"cannot import lustrepy: {e}")
        return
    old = clusterfile.load(root)
    if old is not None and launcher.running_servers(old):
        yield Column("lustrepy", reason=f"a cluster already runs at {root}; benchmark its mount with --lustrepy MNT")
        return
    d = ""
    try:
        say(f"lfsctl cluster up --root {root} --osts {osts} --mount {mnt}")
        rc, err = _run_lfsctl(["cluster", "up", "--root", root, "--osts", str(osts), "--mount", mnt],
                              workdir, CLUSTER_UP_WAIT_S)
        rec = clusterfile.load(root)
        if rc != 0 or rec is None or rec.mount is None:
            why = last_line(err, f"exit status {rc}").removeprefix("lfsctl: ")
            yield Column("lustrepy", reason=why if why.startswith("cluster up failed") else f"cluster up failed: {why}")
            return
        try:
            d = os.path.join(rec.mount.point, f"bench-{os.getpid()}")
            os.mkdir(d)
        except OSError as e:
            yield Column("lustrepy", reason=f"cannot make a directory on the mount: {_one_line(e)}")
            return
        pids: dict[str, list[int]] = {"client": client_pids(rec.mount.source, rec.mount.point)}
        pids.update({s.name: [s.pid] for s in rec.servers() if s.pid})
        yield Column("lustrepy", dir=d, where=wl.Where("lustrepy", setstripe=lov_setstripe, pids=pids),
                     info=f"{rec.mount.source} on {rec.mount.point} (cluster at {root})")
    finally:
        if d:
            shutil.rmtree(d, ignore_errors=True)
        # Whatever runs under root now was started here: the check above found nothing running.
        rec = clusterfile.load(root)
        if rec is not None and (launcher.running_servers(rec) or rec.mount is not None):
            say(f"lfsctl cluster down --root {root}")
            rc, err = _run_lfsctl(["cluster", "down", "--root", root], workdir, 120)
            if rc != 0:
                say(f"cluster down failed: {last_line(err)}")
        # A client that failed to start may leave its mount and process behind: both are ours.
        if is_mounted(mnt):
            why = unmount(mnt)
            if why:
                say(f"cannot unmount {mnt}: {why}")
        if rec is not None:
            stop_pids(client_pids(rec.mgs_source, mnt))


# ---- running one workload ----------------------------------------------------------------

def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _child(name: str, d: str, params: wl.Params, where: wl.Where, conn: Any) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        conn.send(("ok", (wl.warmup if name == "warmup" else wl.WORKLOADS[name])(d, params, where)))
    except BaseException as e:  # noqa: BLE001 - reported as the cell's error
        conn.send(("error", _one_line(e)))
    finally:
        conn.close()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_workload(name: str, col: Column, params: wl.Params, timeout: float) -> list[wl.Figure] | str:
    """Figures, or the one-line reason the workload failed. Runs in a forked process group of its
    own (its writers included), killed on timeout or interrupt."""
    assert col.where is not None
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(name, col.dir, params, col.where, send), name=f"bench-{name}")
    proc.start()
    send.close()
    pid = proc.pid
    assert pid is not None
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    outcome: list[wl.Figure] | str | None = None
    answered = False
    try:
        if not recv.poll(timeout):
            outcome = f"timed out after {timeout:.0f}s"
        else:
            with contextlib.suppress(EOFError):
                kind, payload = recv.recv()
                outcome = payload if kind == "ok" else str(payload)
                answered = True
        if outcome is None:
            outcome = f"the workload process died ({_exit_status(pid)})"
    finally:
        if answered:
            _exit_status(pid)            # let it exit on its own
        # Kill the group before reaping its leader: until then the group id cannot name anything else.
        _kill_group(pid)
        proc.join()
        recv.close()
    return outcome


def _exit_status(pid: int, wait_s: float = 5.0) -> str:
    """How a child ended, read without reaping it (WNOWAIT)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            if info.si_code == os.CLD_EXITED:
                return f"exit status {info.si_status}"
            return f"killed by signal {info.si_status}"
        time.sleep(0.05)
    return "no result"


def median_of(runs: list[list[wl.Figure] | str]) -> list[wl.Figure] | str:
    """The median of each figure over repeated runs; the first failure when any run failed."""
    failed = [r for r in runs if isinstance(r, str)]
    if failed:
        return failed[0] if len(runs) == 1 else f"{failed[0]} (in {len(failed)} of {len(runs)} runs)"
    first = runs[0]
    assert not isinstance(first, str)
    out = []
    for f in first:
        values = [g.value for r in runs if not isinstance(r, str) for g in r if g.key == f.key]
        out.append(replace(f, value=statistics.median(values)))
    return out


# ---- targets and the table ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Check:
    """A target on one lustrepy figure: >= factor x pass-through, >= a floor, or < a ceiling."""

    workload: str
    key: str
    kind: str             # "vs_pt" | "min" | "max"
    bound: float
    unit: str

    def text(self) -> str:
        if self.kind == "vs_pt":
            return f">= {self.bound:g}x pt"
        return f"{'>=' if self.kind == 'min' else '<'} {self.bound:,.0f} {self.unit}"

    def judge(self, lp: float | None, pt: float | None) -> str:
        if lp is None or (self.kind == "vs_pt" and not pt):
            return "n/a"
        ok = {"vs_pt": lambda: lp >= self.bound * (pt or 0), "min": lambda: lp >= self.bound,
              "max": lambda: lp < self.bound}[self.kind]()
        return "PASS" if ok else "FAIL"


CHECKS = (
    Check("seq4", "write", "vs_pt", 0.75, "MiB/s"), Check("seq4", "read", "vs_pt", 0.75, "MiB/s"),
    Check("parallel", "write", "vs_pt", 0.75, "MiB/s"),
    Check("rand4k", "write", "vs_pt", 0.4, "IOPS"), Check("rand4k", "read", "min", 3500, "IOPS"),
    Check("meta", "create", "min", 1500, "ops/s"), Check("meta", "stat", "min", 20000, "ops/s"),
    Check("meta", "unlink", "min", 1500, "ops/s"),
    Check("memory", "client_rss", "max", 300, "MiB"), Check("memory", "mds_rss", "max", 200, "MiB"),
    Check("memory", "oss_rss_max", "max", 200, "MiB"),
)

LABELS = {
    ("seq1", "write"): "seq write, stripe 1", ("seq1", "read"): "seq read (cold), stripe 1",
    ("seq4", "write"): "seq write, stripe 4", ("seq4", "read"): "seq read (cold), stripe 4",
    ("parallel", "write"): "parallel writers", ("rand4k", "write"): "4K random write",
    ("rand4k", "read"): "4K random read (cold)", ("meta", "create"): "create", ("meta", "stat"): "stat",
    ("meta", "unlink"): "unlink", ("tar", "time"): "tar x", ("tar", "files"): "tar x",
    ("memory", "client_rss"): "client RSS peak", ("memory", "client_hwm"): "client VmHWM",
    ("memory", "mds_rss"): "MDS RSS peak", ("memory", "oss_rss_max"): "OSS RSS peak (max)",
    ("memory", "server_hwm_max"): "server VmHWM (max)",
}

Results = dict[str, dict[str, "list[wl.Figure] | str"]]     # workload -> column -> figures or error


@dataclass
class Row:
    workload: str
    key: str
    unit: str
    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    check: Check | None = None

    @property
    def label(self) -> str:
        return LABELS.get((self.workload, self.key), f"{self.workload} {self.key}".strip())

    def ratio(self, other: str) -> float | None:
        lp, x = self.values.get("lustrepy"), self.values.get(other)
        return lp / x if lp is not None and x else None

    @property
    def verdict(self) -> str:
        if self.check is None:
            return ""
        return self.check.judge(self.values.get("lustrepy"), self.values.get("passthrough"))


def rows_of(results: Results, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        by_key: dict[str, Row] = {}
        for col, res in results.get(name, {}).items():
            if isinstance(res, str):
                continue
            for f in res:
                row = by_key.setdefault(f.key, Row(name, f.key, f.unit))
                row.values[col] = f.value
                if f.note:
                    row.notes[col] = f.note
        for c in CHECKS:                 # a target row even when lustrepy produced nothing
            if c.workload == name and c.key not in by_key and results.get(name):
                by_key[c.key] = Row(name, c.key, c.unit)
        if not by_key and results.get(name):      # every column failed: still one row to show it
            by_key[""] = Row(name, "", "")
        for row in by_key.values():
            row.check = next((c for c in CHECKS if (c.workload, c.key) == (name, row.key)), None)
        rows += by_key.values()
    return rows


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def render_table(results: Results, names: list[str], cols: dict[str, Column]) -> str:
    rows = rows_of(results, names)
    errors: dict[str, str] = {}

    def cell(row: Row, col: str) -> str:
        c = cols.get(col)
        if c is None or not c.ok:
            return "n/a"
        res = results.get(row.workload, {}).get(col)
        if isinstance(res, str):
            errors[f"{row.workload} on {col}"] = res
            return "error"
        if res is None:
            return "-"
        v = fmt(row.values.get(col))
        return f"{v} ({row.notes[col]})" if col in row.notes else v

    head = ["workload", "unit", *COLUMNS, "lp/local", "lp/pt", "target", "result"]
    body = []
    for r in rows:
        ratios = [f"{x:.2f}x" if x is not None else "-" for x in (r.ratio("local"), r.ratio("passthrough"))]
        target = r.check.text() if r.check else ""
        verdict = r.verdict if cols.get("lustrepy") and cols["lustrepy"].ok else ("n/a" if r.check else "")
        body.append([r.label, r.unit, *(cell(r, c) for c in COLUMNS), *ratios, target, verdict])
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    right = {2, 3, 4, 5, 6}
    lines = []
    for i, line in enumerate([head, *body]):
        lines.append("  ".join(x.rjust(w) if j in right else x.ljust(w) for j, (x, w) in enumerate(zip(line, widths, strict=True))
                               ).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    verdicts = [b[-1] for b in body if b[-1]]
    lines.append("")
    lines.append(f"targets: {verdicts.count('PASS')} PASS, {verdicts.count('FAIL')} FAIL, "
                 f"{verdicts.count('n/a')} n/a")
    for c in cols.values():
        lines.append(f"{c.name}: {c.info}" if c.ok else f"{c.name}: n/a ({c.reason})")
    lines += [f"error in {where}: {why}" for where, why in errors.items()]
    return "\n".join(lines) + "\n"


def to_json(results: Results, names: list[str], cols: dict[str, Column], params: wl.Params,
            cold: bool, repeat: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {
        "params": {k: v for k, v in asdict(params).items() if k != "tarball"},
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
        "caches_dropped": cold,
        "repeat": repeat,
        "columns": {c.name: ({"status": "ok", "where": c.info} if c.ok else {"status": "n/a", "reason": c.reason})
                    for c in cols.values()},
        "results": {},
        "targets": [],
    }
    for name in names:
        out["results"][name] = {
            col: ({"error": res} if isinstance(res, str) else {f.key: {"value": f.value, "unit": f.unit,
                                                                       **({"note": f.note} if f.note else {})}
                                                               for f in res})
            for col, res in results.get(name, {}).items()}
    for r in rows_of(results, names):
        if r.check:
            lp_ok = "lustrepy" in cols and cols["lustrepy"].ok
            out["targets"].append({"workload": r.workload, "figure": r.key, "target": r.check.text(),
                                   "value": r.values.get("lustrepy"), "result": r.verdict if lp_ok else "n/a"})
    return out


# ---- main ------------------------------------------------------------------------------

def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _mounts_under(d: str) -> list[str]:
    d = os.path.abspath(d)
    return [m for m in mount_points() if m == d or m.startswith(d + os.sep)]


def run(ns: argparse.Namespace, names: list[str], workdir: str, stack: contextlib.ExitStack) -> int:
    tarball = ""
    if "tar" in names:
        tar_files = ns.tar_files or max(ns.files * 3 // 5, 1)
        tarball = wl.make_tarball(os.path.join(workdir, "tree.tar"), tar_files)
    params = make_params(ns, tarball)
    cols = {"local": stack.enter_context(local_column(workdir)),
            "passthrough": stack.enter_context(passthrough_column(workdir))}
    if ns.lustrepy:
        cols["lustrepy"] = stack.enter_context(lustrepy_mount_column(ns.lustrepy))
    elif not ns.no_lustrepy:
        cols["lustrepy"] = stack.enter_context(
            lustrepy_cluster_column(ns.cluster_root or os.path.join(workdir, "cluster"), ns.osts, workdir))
    else:
        cols["lustrepy"] = Column("lustrepy", reason="--no-lustrepy")
    for c in cols.values():
        say(f"{c.name}: {c.info}" if c.ok else f"{c.name}: n/a ({c.reason})")
    if not ns.no_warmup:
        for c in cols.values():
            if c.ok:
                res = run_workload("warmup", c, params, ns.timeout)
                say(f"warm-up write on {c.name}: {res if isinstance(res, str) else 'done'}")
    cold = wl.drop_caches()
    if not cold:
        say(f"cannot write {wl.DROP_CACHES} (not root?): 'cold' reads run with warm caches")

    results: Results = {}
    for name in names:
        for c in cols.values():
            if not c.ok:
                continue
            t0 = time.monotonic()
            res = median_of([run_workload(name, c, params, ns.timeout) for _ in range(ns.repeat)])
            results.setdefault(name, {})[c.name] = res
            shown = res if isinstance(res, str) else ", ".join(f"{f.key} {fmt(f.value)} {f.unit}" for f in res)
            say(f"{name} on {c.name}: {shown or 'nothing to measure'} ({time.monotonic() - t0:.1f}s)")
    if ns.json:
        sys.stdout.write(json.dumps(to_json(results, names, cols, params, cold, ns.repeat), indent=2) + "\n")
    else:
        p = params
        sys.stdout.write(f"lustrepy bench{f' (median of {ns.repeat} runs)' if ns.repeat > 1 else ''}: "
                         f"size {p.size // wl.MiB} MiB, {p.writers} writers, 4K random "
                         f"{p.rand_ops} ops in {p.rand_size // wl.MiB} MiB, {p.files} files, tar of "
                         f"{p.tar_files} files; {os.cpu_count()} CPUs, Linux {platform.release()}"
                         f"{'' if cold else '; caches NOT dropped'}\n\n")
        sys.stdout.write(render_table(results, names, cols))
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    names = selected(ns.only)
    logging.basicConfig(level=logging.WARNING, format="bench: %(message)s")
    signal.signal(signal.SIGTERM, _on_sigterm)
    base = ns.workdir or None
    if base:
        os.makedirs(base, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="lustrepy-bench-", dir=base)
    stack = contextlib.ExitStack()
    status = 1
    try:
        status = run(ns, names, workdir, stack)
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    except (OSError, subprocess.SubprocessError) as e:
        say(f"error: {_one_line(e)}")
    finally:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)      # cleanup is bounded; let it finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stack.close()
        except Exception as e:  # noqa: BLE001
            say(f"cleanup failed: {_one_line(e)}")
        left = _mounts_under(workdir)
        if left:
            say(f"{', '.join(left)} still mounted: left {workdir} in place")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, old)
    return status


if __name__ == "__main__":
    sys.exit(main())
