"""Run the benchmark workloads on a local directory, the pass-through FUSE baseline and lustrepy.

    python bench/run.py [--lustrepy MNT | --cluster-root DIR | --no-lustrepy] [--no-wbc]
                        [--only NAME[,NAME]] [--size 1G] [--files 5000] [--json]

Columns: (a) a local directory, (b) bench/passthrough.py mounted over a local
directory, (c) lustrepy: the mount MNT, or a cluster this script brings up
with `lfsctl cluster up --root DIR --osts 4 --mount DIR/mnt` (by default in
its work directory) and tears down again, (d) lustrepy-wbc: a second mount of
the same file system with the metadata write-back cache (`-o wbc,journal=...`),
made and unmounted here. When lustrepy cannot be mounted, its columns read
"n/a" with the one-line reason and the rest still runs. The `shared` workload
also mounts a second client beside each lustrepy column.

Prints a table of every figure with the ratios lustrepy/local,
lustrepy/passthrough and lustrepy-wbc/lustrepy and the project's targets with
PASS/FAIL, then a table of the CPU each step cost the workload, the client,
the MDS and the OSSes (bench/cost.py). Progress goes to stderr, so `--json` output on stdout can be piped.
Exit status: 0 when the run completed (whatever the targets say), 1 on a setup
error, 130 when interrupted.

Everything it starts it stops: the pass-through and the client mounts it
made are unmounted and their processes stopped by pid; a cluster it brought
up is taken down with `lfsctl cluster down`; each workload runs in a process
group of its own that is killed on timeout or Ctrl-C. Never stops a process
it did not start.
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
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost
import workloads as wl  # bench/ is not a package

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PASSTHROUGH = HERE / "passthrough.py"
LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
CLIENT = Path(sys.executable).parent / "lustrepy"     # the mount program of the same virtualenv
LOV_XATTR = "lustrepy.lov"
MOUNT_WAIT_S = 15.0
CLIENT_MOUNT_WAIT_S = 90.0       # the client gives up by itself after 60 s
CLIENT_EXIT_WAIT_S = 60.0        # after unmounting, a client sends what it still holds to the MDS
CLUSTER_UP_WAIT_S = 180.0
STOP_GRACE_S = 10.0
UNMOUNT_TIMEOUT_S = 30.0
COLUMNS = ("local", "passthrough", "lustrepy", "lustrepy-wbc")
LUSTREPY_COLUMNS = ("lustrepy", "lustrepy-wbc")
HEADERS = {"passthrough": "passthru", "lustrepy-wbc": "lp-wbc"}     # short names in the table
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
    ap.add_argument("--no-wbc", action="store_true",
                    help="skip the lustrepy-wbc column (a second mount with the metadata write-back cache)")
    ap.add_argument("--only", action="append", metavar="NAME[,NAME]",
                    help=f"run only these workloads ({', '.join(wl.WORKLOADS)})")
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"),
                    help="sequential file size, total of the parallel writers, memory stream (default 1G)")
    ap.add_argument("--files", type=positive_int, default=5000,
                    help="files of the metadata workload, and of `shared` in all (default 5000)")
    ap.add_argument("--meta20k-files", type=positive_int, default=20000,
                    help="files of the meta20k workload (default 20000)")
    ap.add_argument("--rounds", type=positive_int, default=5,
                    help="rounds of the `rounds` workload, each `--files` files (default 5)")
    ap.add_argument("--tar-files", type=positive_int, help="files in the tarball (default: 3/5 of --files)")
    ap.add_argument("--bigdir-files", type=positive_int, default=1_000_000,
                    help="entries of the `bigdir` directory (default 1000000; bigdir runs only when named)")
    ap.add_argument("--rand-size", type=parse_size, help="file of the 4 KiB random I/O (default: --size / 4)")
    ap.add_argument("--rand-ops", type=positive_int, help="4 KiB random writes, and reads (default: 4 x --files)")
    ap.add_argument("--writers", type=positive_int, default=4, help="parallel writer processes (default 4)")
    ap.add_argument("--osts", type=positive_int, default=4, help="OSTs of a cluster brought up here (default 4)")
    ap.add_argument("--plaintext", action="store_true",
                    help="bring the cluster up without TLS or object capabilities (bench/tls.py compares)")
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
        return [n for n in wl.WORKLOADS if n not in wl.ON_REQUEST]
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in wl.WORKLOADS]
    if unknown:
        raise SystemExit(f"bench: unknown workload {unknown[0]!r} (known: {', '.join(wl.WORKLOADS)})")
    return [n for n in wl.WORKLOADS if n in names]


def make_params(ns: argparse.Namespace, tarball: str) -> wl.Params:
    return wl.Params(size=ns.size, writers=ns.writers,
                     rand_size=ns.rand_size or max(ns.size // 4, wl.SMALL_IO),
                     rand_ops=ns.rand_ops or 4 * ns.files, files=ns.files, meta20k_files=ns.meta20k_files,
                     tar_files=ns.tar_files or max(ns.files * 3 // 5, 1), tarball=tarball, rounds=ns.rounds,
                     bigdir_files=ns.bigdir_files)


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


def alive(pid: int) -> bool:
    """Running (zombies count as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def stop_pids(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL after a grace period, processes this run started but does not parent
    (found by their exact mount source and mount point); zombies count as gone."""
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
    source: str = ""                 # lustrepy: the mount source HOST:PORT:/FSNAME
    point: str = ""                  # lustrepy: the mount point `dir` lies on
    peer_reason: str = ""            # lustrepy: why there is no second client for `shared`
    mount_opts: str = ""             # lustrepy: what another mount of it needs (its certificate, or plaintext)

    @property
    def ok(self) -> bool:
        return self.where is not None


def lov_setstripe(d: str, count: int, mirrors: int = 0) -> None:
    value: dict[str, Any] = {"stripe_size": wl.MiB, "stripe_count": count, "stripe_offset": -1, "pattern": "raid0"}
    if mirrors > 1:
        value["mirror_count"] = mirrors
    os.setxattr(d, LOV_XATTR, json.dumps(value, separators=(",", ":")).encode())


def lov_mirror(d: str, mirrors: int) -> None:
    lov_setstripe(d, 1, mirrors)


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
        yield Column("lustrepy", dir=d, where=wl.Where("lustrepy", setstripe=lov_setstripe, pids=pids, mirror=lov_mirror),
                     info=f"{entry.source} on {mnt}", source=entry.source, point=mnt)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _run_waited(argv: list[str], errpath: str, timeout: float, what: str) -> tuple[int, str]:
    """Run a program that bounds its own waits and stops what it started when it fails, in its own
    session, and wait for it even through Ctrl-C; (exit status, stderr). Re-raises an interrupt
    afterwards."""
    with open(errpath, "wb") as errf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                             start_new_session=True)
    interrupted = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            p.wait(max(deadline - time.monotonic(), 0.01))
            break
        except KeyboardInterrupt:
            interrupted = True
            say(f"waiting for `{what}` to finish so what it started can be stopped")
        except subprocess.TimeoutExpired:
            stop_child(p)
            break
    if interrupted:
        raise KeyboardInterrupt
    return p.returncode, Path(errpath).read_text(errors="replace")


def _run_lfsctl(argv: list[str], workdir: str, timeout: float) -> tuple[int, str]:
    return _run_waited([*LFSCTL, *argv], os.path.join(workdir, "lfsctl.err"), timeout, f"lfsctl {' '.join(argv[:2])}")


@contextlib.contextmanager
def lustrepy_cluster_column(root: str, osts: int, workdir: str, plaintext: bool = False) -> Iterator[Column]:
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
        rc, err = _run_lfsctl(["cluster", "up", "--root", root, "--osts", str(osts), "--mount", mnt,
                               *(["--plaintext"] if plaintext else [])], workdir, CLUSTER_UP_WAIT_S)
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
        yield Column("lustrepy", dir=d, where=wl.Where("lustrepy", setstripe=lov_setstripe, pids=pids, mirror=lov_mirror),
                     info=f"{rec.mount.source} on {rec.mount.point} (cluster at {root})",
                     source=rec.mount.source, point=rec.mount.point, mount_opts=_cert_opts(root, plaintext))
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


def _cert_opts(root: str, plaintext: bool) -> str:
    """Mount options for another client of a cluster brought up here: its client certificate."""
    if plaintext:
        return "plaintext"
    d = os.path.join(root, "certs")
    return f"ca={d}/ca.crt,cert={d}/client.crt,key={d}/client.key"


def release_client(source: str, point: str) -> None:
    """Unmount a client this run mounted, give it time to send what it still holds to the MDS and
    exit, then stop whatever process of that exact source and mount point is left."""
    if is_mounted(point):
        why = unmount(point)
        if why:
            say(f"cannot unmount {point}: {why}")
    if not is_mounted(point):
        deadline = time.monotonic() + CLIENT_EXIT_WAIT_S
        while client_pids(source, point) and time.monotonic() < deadline:
            time.sleep(0.1)
    stop_pids(client_pids(source, point))


@contextlib.contextmanager
def client_mount(source: str, point: str, opts: str, workdir: str, tag: str) -> Iterator[str]:
    """Mount `source` on `point` with the lustrepy program (background mode, its own session);
    yields '' once mounted, else the one-line reason. Unmounts it and stops its process at the end."""
    os.makedirs(point, exist_ok=True)
    opts = ",".join(filter(None, [opts, f"log={os.path.join(workdir, tag + '.log')}"]))
    argv = [str(CLIENT), source, point, "-o", opts]
    try:
        if not CLIENT.exists():
            yield f"{CLIENT} not found"
            return
        say(f"lustrepy {source} {point} -o {opts}")
        rc, err = _run_waited(argv, os.path.join(workdir, f"{tag}.err"), CLIENT_MOUNT_WAIT_S, f"lustrepy {point}")
        if rc == 0 and is_mounted(point):
            yield ""
        else:
            yield last_line(err, f"exit status {rc}").removeprefix("lustrepy: ")
    finally:
        release_client(source, point)


@contextlib.contextmanager
def wbc_column(base: Column, workdir: str) -> Iterator[Column]:
    """lustrepy-wbc: a second mount of the lustrepy column's file system with the write-back cache,
    on a mount point in the work directory, and a directory of its own there."""
    name = "lustrepy-wbc"
    if not base.ok or base.where is None:
        yield Column(name, reason="no lustrepy file system")
        return
    point, journal = os.path.join(workdir, "wbc-mnt"), os.path.join(workdir, "journal")
    with client_mount(base.source, point, ",".join(filter(None, [f"wbc,journal={journal}", base.mount_opts])),
                      workdir, "wbc-mnt") as why:
        if why:
            yield Column(name, reason=f"wbc mount failed: {why}")
            return
        d = os.path.join(point, f"bench-{os.getpid()}-wbc")
        try:
            os.mkdir(d)
        except OSError as e:
            yield Column(name, reason=f"cannot make a directory on the wbc mount: {_one_line(e)}")
            return
        try:
            pids = {**base.where.pids, "client": client_pids(base.source, point)}
            yield Column(name, dir=d, where=wl.Where(name, setstripe=base.where.setstripe, pids=pids, mirror=base.where.mirror),
                         info=f"{base.source} on {point} -o wbc,journal={journal}", source=base.source, point=point,
                         mount_opts=base.mount_opts)
        finally:
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def with_peer(col: Column, workdir: str, opts: str) -> Iterator[Column]:
    """The column with a second client of its file system (for `shared`): another mount of the same
    source in the work directory, through which the column's directory is `where.peer`."""
    if not col.ok or col.where is None:
        yield col
        return
    tag = f"{col.name}-peer"
    point = os.path.join(workdir, f"{tag}-mnt")
    with client_mount(col.source, point, ",".join(filter(None, [opts, col.mount_opts])), workdir, tag) as why:
        if why:
            yield replace(col, peer_reason=f"second mount failed: {why}")
        else:
            peer = os.path.join(point, os.path.relpath(col.dir, col.point))
            pids = {**col.where.pids, "peer": client_pids(col.source, point)}
            yield replace(col, where=replace(col.where, peer=peer, pids=pids),
                          info=f"{col.info}; second client on {point}")


# ---- running one workload ----------------------------------------------------------------

def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _where(e: BaseException) -> str:
    """Where a workload's error came from (an error of an fd-based call names no path)."""
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    f = tb[-1]
    return f" (in {f.name}, {os.path.basename(f.filename)}:{f.lineno})"


def _child(name: str, d: str, params: wl.Params, where: wl.Where, conn: Any) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        conn.send(("ok", (wl.warmup if name == "warmup" else wl.WORKLOADS[name])(d, params, where)))
    except BaseException as e:  # noqa: BLE001 - reported as the cell's error
        conn.send(("error", _one_line(e) + _where(e)))
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
    """A target on one figure of one lustrepy column: >= factor x pass-through, >= factor x the
    lustrepy (server side) column, >= a floor, < or <= a ceiling, or exactly 0."""

    workload: str
    key: str
    kind: str             # "vs_pt" | "vs_lp" | "min" | "max" | "le" | "zero"
    bound: float
    unit: str
    column: str = "lustrepy"

    @property
    def reference(self) -> str | None:
        """The column the bound is a factor of, if any."""
        return {"vs_pt": "passthrough", "vs_lp": "lustrepy"}.get(self.kind)

    def text(self, short: bool = False) -> str:
        """'wbc >= 4,000' in the table (the unit is in its own column); 'lustrepy-wbc >= 4,000 ops/s' else."""
        who = ("lp" if self.column == "lustrepy" else "wbc") if short else self.column
        unit = "" if short else f" {self.unit}"
        if self.kind == "vs_pt":
            return f"{who} >= {self.bound:g}x {'pt' if short else 'passthrough'}"
        if self.kind == "vs_lp":
            return f"{who} >= {self.bound:g}x {'lp' if short else 'lustrepy'}"
        if self.kind == "zero":
            return f"{who} = 0{unit}"
        if self.kind == "le":
            return f"{who} <= {self.bound:,g}{unit}"
        return f"{who} {'>=' if self.kind == 'min' else '<'} {self.bound:,g}{unit}"

    def judge(self, values: dict[str, float | None]) -> str:
        v = values.get(self.column)
        ref = values.get(self.reference) if self.reference else None
        if v is None or (self.reference and not ref):
            return "n/a"
        ok = {"vs_pt": lambda: v >= self.bound * (ref or 0), "vs_lp": lambda: v >= self.bound * (ref or 0),
              "min": lambda: v >= self.bound, "max": lambda: v < self.bound, "le": lambda: v <= self.bound,
              "zero": lambda: v == 0}[self.kind]()
        return "PASS" if ok else "FAIL"


WBC = "lustrepy-wbc"
CHECKS = (
    Check("seq4", "write", "vs_pt", 0.75, "MiB/s"), Check("seq4", "read", "vs_pt", 0.75, "MiB/s"),
    Check("parallel", "write", "vs_pt", 0.75, "MiB/s"),
    Check("rand4k", "write", "vs_pt", 0.4, "IOPS"), Check("rand4k", "read", "min", 3500, "IOPS"),
    Check("meta", "create", "min", 1500, "ops/s"), Check("meta", "stat", "min", 20000, "ops/s"),
    Check("meta", "unlink", "min", 1500, "ops/s"),
    Check("memory", "client_rss", "max", 300, "MiB"), Check("memory", "mds_rss", "max", 200, "MiB"),
    Check("memory", "oss_rss_max", "max", 200, "MiB"),
    # CPU cost (bench/cost.py): MDS CPU per server-side create, client CPU per MiB written
    Check("meta", "create.cpu.mds", "le", 600, cost.UNIT_OP),
    Check("seq1", "write.cpu.client", "le", 1.0, cost.UNIT_MIB),
    # mirrored files: twice the bytes written, reads from one mirror
    Check("mirror", "write_vs_1", "min", 0.5, "x"), Check("mirror", "read_vs_1", "min", 1.0, "x"),
    # the metadata write-back cache
    Check("meta", "create", "vs_lp", 2.5, "ops/s", WBC),
    Check("meta20k", "create", "min", 4000, "ops/s", WBC), Check("meta20k", "create", "vs_lp", 2.5, "ops/s", WBC),
    Check("meta20k", "unlink", "min", 4000, "ops/s", WBC),
    Check("tar", "files", "min", 900, "files/s", WBC), Check("rmrf", "files", "min", 2500, "files/s", WBC),
    Check("dropped", "unlink_kept", "min", 0.8, "x", WBC), Check("dropped", "mkdir_kept", "min", 0.8, "x", WBC),
    *(Check("bigdir", f"{k}_{who}_kept", "min", 0.8, "x", WBC) for who in ("here", "plain")
      for k in ("create", "stat", "unlink")),
    # two clients in one directory
    Check("shared", "create", "min", 1500, "ops/s"), Check("shared", "bad_names", "zero", 0, "names"),
    Check("shared", "bad_names", "zero", 0, "names", WBC),
)

LABELS = {
    ("seq1", "write"): "seq write, stripe 1", ("seq1", "read"): "seq read cold, stripe 1",
    ("seq4", "write"): "seq write, stripe 4", ("seq4", "read"): "seq read cold, stripe 4",
    ("parallel", "write"): "parallel writers", ("rand4k", "write"): "4K random write",
    ("rand4k", "read"): "4K random read (cold)", ("meta", "create"): "create", ("meta", "stat"): "stat",
    ("meta", "unlink"): "unlink", ("meta20k", "create"): "create (meta20k)", ("meta20k", "stat"): "stat (meta20k)",
    ("meta20k", "unlink"): "unlink (meta20k)", ("tar", "time"): "tar x", ("tar", "files"): "tar x",
    ("rmrf", "time"): "rm -rf", ("rmrf", "files"): "rm -rf (files+dirs)",
    ("shared", "create"): "shared dir, 2 clients", ("shared", "bad_names"): "shared: lost/doubled",
    ("memory", "client_rss"): "client RSS peak", ("memory", "client_hwm"): "client VmHWM",
    ("memory", "mds_rss"): "MDS RSS peak", ("memory", "oss_rss_max"): "OSS RSS peak (max)",
    ("memory", "server_hwm_max"): "server VmHWM (max)",
    ("dropped", "unlink_kept"): "unlink after a cache drop / before",
    ("dropped", "mkdir_kept"): "mkdir after a cache drop / before",
    ("mirror", "write"): "seq write, 2 mirrors", ("mirror", "read"): "seq read cold, 2 mirrors",
    ("mirror", "write_1"): "seq write, 1 mirror (same run)", ("mirror", "read_1"): "seq read, 1 mirror (same run)",
    ("mirror", "write_vs_1"): "2 mirrors / 1: write", ("mirror", "read_vs_1"): "2 mirrors / 1: read",
    ("meta", "create.cpu.mds"): "create: MDS CPU", ("seq1", "write.cpu.client"): "seq1 write: client CPU",
}

Results = dict[str, dict[str, "list[wl.Figure] | str"]]     # workload -> column -> figures or error


@dataclass
class Row:
    workload: str
    key: str
    unit: str
    values: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS.get((self.workload, self.key), f"{self.workload} {self.key}".strip())

    def ratio(self, col: str, other: str) -> float | None:
        v, x = self.values.get(col), self.values.get(other)
        return v / x if v is not None and x else None


def verdict(check: Check, row: Row, cols: dict[str, Column]) -> str:
    needed = [check.column] + ([check.reference] if check.reference else [])
    if not all(n in cols and cols[n].ok for n in needed):
        return "n/a"
    return check.judge(row.values)


def rows_of(results: Results, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        by_key: dict[str, Row] = {}
        for col, res in results.get(name, {}).items():
            if isinstance(res, str):
                continue
            for f in res:
                if f.role and not any((c.workload, c.key) == (name, f.key) for c in CHECKS):
                    continue             # a CPU cost figure: in the cost table, here only with a target
                row = by_key.setdefault(f.key, Row(name, f.key, f.unit))
                row.values[col] = f.value
                if f.note:
                    row.notes[col] = f.note
        for c in CHECKS:                 # a target row even when its column produced nothing
            if c.workload == name and c.key not in by_key:
                by_key[c.key] = Row(name, c.key, c.unit)
        if not by_key and results.get(name):      # every column failed: still one row to show it
            by_key[""] = Row(name, "", "")
        for row in by_key.values():
            row.checks = [c for c in CHECKS if (c.workload, c.key) == (name, row.key)]
        rows += by_key.values()
    return rows


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def fmt_value(v: float | None, unit: str) -> str:
    return f"{v:.0f}" if unit == "names" and v is not None else fmt(v)


def not_applicable(workload: str, col: str) -> bool:
    """A workload that needs a second client does not run on the local and pass-through columns;
    one for the write-back cache runs on its column only."""
    return (workload in wl.NEEDS_PEER and col not in LUSTREPY_COLUMNS) or (workload in wl.WBC_ONLY and col != WBC)


def render_table(results: Results, names: list[str], cols: dict[str, Column]) -> str:
    rows = rows_of(results, names)
    errors: dict[str, str] = {}

    def cell(row: Row, col: str) -> str:
        c = cols.get(col)
        if c is None or not c.ok or not_applicable(row.workload, col):
            return "n/a"
        res = results.get(row.workload, {}).get(col)
        if isinstance(res, str):
            errors[f"{row.workload} on {col}"] = res
            return "error"
        if res is None:
            return "-"
        v = fmt_value(row.values.get(col), row.unit)
        return f"{v} ({row.notes[col]})" if col in row.notes else v

    head = ["workload", "unit", *(HEADERS.get(c, c) for c in COLUMNS), "lp/loc", "lp/pt", "wbc/lp", "target",
            "result"]
    body = []
    for r in rows:
        ratios = [fmt_ratio(x)
                  for x in (r.ratio("lustrepy", "local"), r.ratio("lustrepy", "passthrough"),
                            r.ratio(WBC, "lustrepy"))]
        first, more = (r.checks[0], r.checks[1:]) if r.checks else (None, [])
        body.append([r.label, r.unit, *(cell(r, c) for c in COLUMNS), *ratios,
                     first.text(short=True) if first else "", verdict(first, r, cols) if first else ""])
        for check in more:               # a second target on the same figure: a line of its own
            body.append([""] * (len(head) - 2) + [check.text(short=True), verdict(check, r, cols)])
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    right = set(range(2, 2 + len(COLUMNS) + 3))
    lines = []
    for i, line in enumerate([head, *body]):
        cells = zip(line, widths, strict=True)
        lines.append("  ".join(x.rjust(w) if j in right else x.ljust(w) for j, (x, w) in enumerate(cells)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    verdicts = [b[-1] for b in body if b[-1]]
    lines.append("")
    lines.append(f"targets: {verdicts.count('PASS')} PASS, {verdicts.count('FAIL')} FAIL, "
                 f"{verdicts.count('n/a')} n/a")
    for c in cols.values():
        name = f"{c.name} ({HEADERS[c.name]})" if c.name in HEADERS else c.name
        lines.append(f"{name}: {c.info}" if c.ok else f"{name}: n/a ({c.reason})")
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
        res_of: dict[str, Any] = {
            col: ({"error": res} if isinstance(res, str) else {f.key: {"value": f.value, "unit": f.unit,
                                                                       **({"note": f.note} if f.note else {}),
                                                                       **({"step": f.step, "role": f.role}
                                                                          if f.role else {})}
                                                               for f in res})
            for col, res in results.get(name, {}).items()}
        for col in COLUMNS:
            if not_applicable(name, col) and col in cols and cols[col].ok:
                res_of[col] = {"n/a": "needs a second client of the same file system"}
        out["results"][name] = {col: res_of[col] for col in COLUMNS if col in res_of}
    for r in rows_of(results, names):
        for c in r.checks:
            out["targets"].append({"workload": r.workload, "figure": r.key, "column": c.column,
                                   "target": c.text(), "value": r.values.get(c.column),
                                   **({"reference": r.values.get(c.reference)} if c.reference else {}),
                                   "result": verdict(c, r, cols)})
    return out


# ---- main ------------------------------------------------------------------------------

def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _mounts_under(d: str) -> list[str]:
    d = os.path.abspath(d)
    return [m for m in mount_points() if m == d or m.startswith(d + os.sep)]


def run(ns: argparse.Namespace, names: list[str], workdir: str, stack: contextlib.ExitStack) -> int:
    tarball = ""
    if "tar" in names or "rmrf" in names:
        tar_files = ns.tar_files or max(ns.files * 3 // 5, 1)
        tarball = wl.make_tarball(os.path.join(workdir, "tree.tar"), tar_files)
    params = make_params(ns, tarball)
    cols = {"local": stack.enter_context(local_column(workdir)),
            "passthrough": stack.enter_context(passthrough_column(workdir))}
    if ns.lustrepy:
        cols["lustrepy"] = stack.enter_context(lustrepy_mount_column(ns.lustrepy))
    elif not ns.no_lustrepy:
        cols["lustrepy"] = stack.enter_context(
            lustrepy_cluster_column(ns.cluster_root or os.path.join(workdir, "cluster"), ns.osts, workdir,
                                    ns.plaintext))
    else:
        cols["lustrepy"] = Column("lustrepy", reason="--no-lustrepy")
    if ns.no_lustrepy:
        cols[WBC] = Column(WBC, reason="--no-lustrepy")
    elif ns.no_wbc:
        cols[WBC] = Column(WBC, reason="--no-wbc")
    else:
        cols[WBC] = stack.enter_context(wbc_column(cols["lustrepy"], workdir))
    if wl.NEEDS_PEER & set(names):
        cols["lustrepy"] = stack.enter_context(with_peer(cols["lustrepy"], workdir, ""))
        peer_journal = os.path.join(workdir, "journal-peer")
        cols[WBC] = stack.enter_context(with_peer(cols[WBC], workdir, f"wbc,journal={peer_journal}"))
    lp, wbc = cols["lustrepy"], cols[WBC]
    if wbc.ok and lp.ok and wbc.where is not None and lp.point and wbc.source == lp.source:
        # the write-back cache column's directory through the plain mount of the same file system
        plain = os.path.join(lp.point, os.path.relpath(wbc.dir, wbc.point))
        cols[WBC] = replace(wbc, where=replace(wbc.where, plain=plain))
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
            if not c.ok or not_applicable(name, c.name):
                continue
            if name in wl.NEEDS_PEER and c.peer_reason:
                results.setdefault(name, {})[c.name] = c.peer_reason
                say(f"{name} on {c.name}: {c.peer_reason}")
                continue
            t0 = time.monotonic()
            res = median_of([run_workload(name, c, params, ns.timeout) for _ in range(ns.repeat)])
            results.setdefault(name, {})[c.name] = res
            shown = res if isinstance(res, str) else ", ".join(f"{f.key} {fmt_value(f.value, f.unit)} {f.unit}"
                                                                for f in res if not f.role)
            say(f"{name} on {c.name}: {shown or 'nothing to measure'} ({time.monotonic() - t0:.1f}s)")
    if ns.json:
        sys.stdout.write(json.dumps(to_json(results, names, cols, params, cold, ns.repeat), indent=2) + "\n")
    else:
        p = params
        sys.stdout.write(f"lustrepy bench{f' (median of {ns.repeat} runs)' if ns.repeat > 1 else ''}: "
                         f"size {p.size // wl.MiB} MiB, {p.writers} writers, 4K random "
                         f"{p.rand_ops} ops in {p.rand_size // wl.MiB} MiB, {p.files} files "
                         f"(meta20k {p.meta20k_files}), tar of {p.tar_files} files; {os.cpu_count()} CPUs, "
                         f"Linux {platform.release()}"
                         f"{'' if cold else '; caches NOT dropped'}\n\n")
        sys.stdout.write(render_table(results, names, cols))
        costs = cost.render_costs(results, names, [(c, HEADERS.get(c, c)) for c in COLUMNS if c in cols])
        sys.stdout.write(f"\n{costs}" if costs else "")
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
