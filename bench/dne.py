"""Metadata across MDTs: file creates by several processes, the MDS doing the work (no write-back
cache), with the directories' entries on 1, 2 or 4 MDTs, side by side.

    .venv/bin/python bench/dne.py                          # 1, 2 and 4 MDTs, 4 processes, 2,000 files each
    .venv/bin/python bench/dne.py --mdts 1,2 --files 1000 --json

For each MDT count K it brings up a cluster of its own (`lfsctl cluster up --mdts K --osts 1`),
mounts it (the `lustrepy` program in the foreground, so its CPU can be read) and times the
processes creating and closing empty files at once in three layouts:
  striped  every process in one directory striped over the K MDTs (`lfsctl mkdir -c K`; with
           one MDT, a plain directory made the same way: the baseline of the target);
  spread   one directory per process, directory i on MDT i mod K (`lfsctl mkdir -i`);
  shared   every process in one plain directory of MDT0.
The same processes creating in a local directory and through bench/passthrough.py (a FUSE
mount of a local directory) run first, in the same run, as references. Reports creates/s, the
ratio to one MDT, CPU per create of the client and of all MDSs, and the requests the MDSs served
per create (their own counters, `lfsctl stats`). A benchmark, not a test:
it stops what it started, also on failure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
LAYOUTS = ("striped", "spread", "shared")


def _lfsctl(*args: str) -> str:
    r = subprocess.run([str(BIN / "lfsctl"), *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"bench/dne.py: lfsctl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def _cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def _mds_requests(root: Path) -> int:
    """Requests the MDSs of the cluster at `root` have served so far (`lfsctl stats`), less their
    statfs (which asking for the counts makes)."""
    rec = json.loads(_lfsctl("stats", "--json", "--root", str(root)))
    return sum(int(v["count"]) for s in rec.get("servers", ()) if s.get("type") == "MDT"
               for op, v in s.get("ops", {}).items() if op != "statfs")


def _creator(d: str, n: int, start: Any, tag: int) -> None:
    start.wait()
    for i in range(n):
        os.close(os.open(os.path.join(d, f"p{tag}-f{i}"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))


def _timed(dirs: list[str], n: int) -> float:
    start = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_creator, args=(d, n, start, i)) for i, d in enumerate(dirs)]
    for p in procs:
        p.start()
    t0 = time.monotonic()
    start.set()
    for p in procs:
        p.join(600)
        if p.exitcode != 0:
            raise SystemExit(f"bench/dne.py: a creating process failed (exit {p.exitcode})")
    return time.monotonic() - t0


def _unmount(mnt: Path, proc: subprocess.Popen[bytes]) -> None:
    """Unmount and wait for the FUSE program; lazily, and killed, when it does not go."""
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True, timeout=60)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True, timeout=60)
        proc.kill()


def references(ns: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The same creates in a local directory and through the FUSE pass-through."""
    local = work / "local"
    local.mkdir()
    out: dict[str, Any] = {"local": {"creates_per_s": ns.procs * ns.files / _timed([str(local)] * ns.procs, ns.files)}}
    src, mnt = work / "pt-src", work / "pt"
    src.mkdir()
    mnt.mkdir()
    p = subprocess.Popen([sys.executable, str(Path(__file__).parent / "passthrough.py"), str(src), str(mnt)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mnt):
            if time.monotonic() > deadline or p.poll() is not None:
                raise SystemExit("bench/dne.py: the pass-through did not mount")
            time.sleep(0.05)
        cpu0 = _cpu(p.pid)
        secs = _timed([str(mnt)] * ns.procs, ns.files)
        out["passthrough"] = {"creates_per_s": ns.procs * ns.files / secs,
                              "client_cpu_us_per_create": 1e6 * (_cpu(p.pid) - cpu0) / (ns.procs * ns.files)}
    finally:
        _unmount(mnt, p)
    return out


def _mount(source: str, mnt: Path, certs: Path) -> subprocess.Popen[bytes]:
    mnt.mkdir()
    proc = subprocess.Popen([str(BIN / "lustrepy"), source, str(mnt), "-f", "-o",
                             f"ca={certs}/ca.crt,cert={certs}/client.crt,key={certs}/client.key"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.ismount(mnt):
        if time.monotonic() > deadline or proc.poll() is not None:
            _unmount(mnt, proc)
            raise SystemExit("bench/dne.py: the mount did not come up")
        time.sleep(0.1)
    return proc


def one(k: int, ns: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Process i creates through mount i mod --mounts (each mount a client of its own, as a node)."""
    root = work / f"c{k}"
    _lfsctl("cluster", "up", "--root", str(root), "--osts", "1", "--mdts", str(k), "--fsname", "dne")
    mounts: list[tuple[Path, subprocess.Popen[bytes]]] = []
    try:
        rec = json.loads((root / "cluster.json").read_text())
        source = f"{rec['mds']['address']}:/dne"
        for j in range(ns.mounts):
            mnt = work / f"m{k}-{j}"
            mounts.append((mnt, _mount(source, mnt, root / "certs")))
        mnt = mounts[0][0]
        mds_pids = [int(rec["mds"]["pid"])] + [int(m["pid"]) for m in rec.get("mdts", ())]
        for i in range(ns.procs):
            d = mnt / f"d{i}"
            if i % k:
                _lfsctl("mkdir", "-i", str(i % k), "--root", str(root), str(d))
            else:
                d.mkdir()
        (mnt / "shared").mkdir()
        # made as lfsctl makes it, also with one MDT: no client knows its names
        _lfsctl("mkdir", "-c", str(k), "--root", str(root), str(mnt / "striped"))

        def at(name: str, i: int) -> str:
            return str(mounts[i % len(mounts)][0] / name)
        out: dict[str, Any] = {"mdts": k}
        for layout, where in (("striped", [at("striped", i) for i in range(ns.procs)]),
                              ("spread", [at(f"d{i}", i) for i in range(ns.procs)]),
                              ("shared", [at("shared", i) for i in range(ns.procs)])):
            clients = [p.pid for _, p in mounts]
            rpcs0 = _mds_requests(root)
            cpu0 = [_cpu(p) for p in mds_pids], [_cpu(p) for p in clients]
            b0 = _busy()
            secs = _timed(where, ns.files)
            b1 = _busy()
            cpu1 = [_cpu(p) for p in mds_pids], [_cpu(p) for p in clients]
            total = ns.procs * ns.files
            rpcs = _mds_requests(root) - rpcs0
            out[layout] = {"creates_per_s": total / secs, "seconds": secs,
                           "machine_busy": (b1[0] - b0[0]) / max(1, b1[1] - b0[1]),
                           "mds_requests_per_create": rpcs / total,
                           "mds_cpu_us_per_create": 1e6 * (sum(cpu1[0]) - sum(cpu0[0])) / total,
                           "client_cpu_us_per_create": 1e6 * (sum(cpu1[1]) - sum(cpu0[1])) / total}
        return out
    finally:
        for mnt, proc in mounts:
            _unmount(mnt, proc)
        subprocess.run([str(BIN / "lfsctl"), "cluster", "down", "--root", str(root)], capture_output=True,
                       timeout=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/dne.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mdts", default="1,2,4", help="MDT counts to compare (default %(default)s)")
    ap.add_argument("--procs", type=int, default=4, help="creating processes (default %(default)s)")
    ap.add_argument("--files", type=int, default=2000, help="files per process (default %(default)s)")
    ap.add_argument("--mounts", type=int, default=1,
                    help="client mounts the processes are spread over (default %(default)s: the kernel lets one "
                         "create at a time into one directory of one mount)")
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args(argv)
    counts = [int(x) for x in ns.mdts.split(",")]
    with tempfile.TemporaryDirectory(prefix="lp-bench-dne-") as w:
        refs = references(ns, Path(w))
        results = [one(k, ns, Path(w)) for k in counts]
    for layout in LAYOUTS:
        base = next((r[layout]["creates_per_s"] for r in results if r["mdts"] == 1), None)
        for r in results:
            r[layout]["ratio_to_1_mdt"] = r[layout]["creates_per_s"] / base if base else None
    if ns.json:
        print(json.dumps({"procs": ns.procs, "mounts": ns.mounts, "files": ns.files, "references": refs, "results": results}, indent=2))
        return 0
    print(f"{ns.procs} processes over {ns.mounts} mount(s) x {ns.files} creates: local directory {refs['local']['creates_per_s']:.0f}/s, "
          f"pass-through {refs['passthrough']['creates_per_s']:.0f}/s "
          f"({refs['passthrough']['client_cpu_us_per_create']:.0f} us CPU per create)")
    print(f"{'MDTs':>4} {'layout':<8} {'creates/s':>10} {'x 1 MDT':>8} {'x local':>8} {'MDS us/op':>10} "
          f"{'client us/op':>13} {'CPUs busy':>9} {'MDS RPCs/op':>11}")
    for r in results:
        for name in LAYOUTS:
            f = r[name]
            ratio = f.get("ratio_to_1_mdt")
            print(f"{r['mdts']:>4} {name:<8} {f['creates_per_s']:>10.0f} "
                  f"{(f'{ratio:.2f}' if ratio else '-'):>8} {f['creates_per_s'] / refs['local']['creates_per_s']:>8.3f} "
                  f"{f['mds_cpu_us_per_create']:>10.0f} {f['client_cpu_us_per_create']:>13.0f} "
                  f"{f['machine_busy']:>8.0%} {f['mds_requests_per_create']:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
