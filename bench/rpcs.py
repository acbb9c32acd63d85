"""How many RPCs each system call costs: the MDS's and the OSTs' requests per operation.

    .venv/bin/python bench/rpcs.py                 # a cluster of its own, a plain and a write-back-cache mount
    .venv/bin/python bench/rpcs.py --files 500 --json

Brings a cluster up (`lfsctl cluster up --root DIR --osts 4`, mounted without the
write-back cache) and a second mount with it, runs each step `--files` times in a
directory of its own on each mount, and counts the requests the servers served
meanwhile (`lfsctl stats --json`: every MDS and OST operation, lock enqueues,
glimpses and cancels included). Each step ends with an fsync of its directory, so
a write-back-cache mount's update records are counted with the step that made
them. Prints a table of requests per operation, per server kind and per request
kind. A benchmark, not a test: nothing here fails on a count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from workloads import drop_caches, settle  # bench/ is not a package: run from the repository as bench/rpcs.py

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
CLIENT = Path(sys.executable).parent / "lustrepy"


def _stats(root: str) -> Counter[str]:
    out = subprocess.run([*LFSCTL, "stats", "--json", "--root", root], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    counts: Counter[str] = Counter()
    for srv in json.loads(out)["servers"]:
        kind = "MDS" if srv["type"] == "MDT" else "OST"
        for op, v in (srv.get("ops") or {}).items():
            counts[f"{kind} {op}"] += v["count"]
    return counts


def _tarball(work: str, n: int) -> str:
    src = os.path.join(work, "tar-src")
    os.makedirs(src)
    for i in range(n):
        with open(os.path.join(src, f"f{i}"), "wb") as f:
            f.write(os.urandom(100 + 37 * i % 4000))
    path = os.path.join(work, "files.tar")
    with tarfile.open(path, "w") as t:
        t.add(src, arcname="t")
    return path


def steps(n: int, tarball: str) -> list[tuple[str, Callable[[str], object], Callable[[str], object] | None]]:
    """(name, the step on a fresh directory, what to prepare there untimed)."""
    names = [f"f{i}" for i in range(n)]

    def each(fn: Callable[[str], object]) -> Callable[[str], None]:
        def run(d: str) -> None:
            for x in names:
                fn(os.path.join(d, x))
        return run

    def small(p: str) -> None:
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"x" * 4096)
        os.close(fd)

    make = each(lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)))

    def cold(d: str) -> None:
        make(d)
        settle(d)
        drop_caches()

    return [
        ("create (open O_CREAT, close)", make, None),
        ("mkdir", each(os.mkdir), None),
        ("stat, cold", each(os.stat), cold),
        ("unlink", each(os.unlink), make),
        ("open+write 4 KiB+close", each(small), None),
        ("tar x, per file", lambda d: subprocess.run(["tar", "xf", tarball, "-C", d], check=True), None),
    ]


def measure(root: str, mnt: str, n: int, tarball: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i, (name, step, prepare) in enumerate(steps(n, tarball)):
        d = os.path.join(mnt, f"rpcs-{os.getpid()}-{i}")
        os.mkdir(d)
        if prepare is not None:
            prepare(d)
        before = _stats(root)
        step(d)
        settle(d)
        after = _stats(root)
        out[name] = {k: (after[k] - before[k]) / n for k in after if after[k] - before[k] > 0}
        subprocess.run(["rm", "-rf", d], check=True)
    return out


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = []
    for mount, steps_ in results.items():
        lines.append(f"== {mount}")
        lines.append(f"{'step':32} {'MDS':>6} {'OST':>6}  requests per operation")
        for name, per in steps_.items():
            mds = sum(v for k, v in per.items() if k.startswith("MDS"))
            ost = sum(v for k, v in per.items() if k.startswith("OST"))
            detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.01)
            lines.append(f"{name:32} {mds:6.2f} {ost:6.2f}  {detail}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="RPCs per system call on a lustrepy cluster of its own")
    ap.add_argument("--files", type=int, default=200, help="operations per step (default 200)")
    ap.add_argument("--workdir", default=None, help="where the cluster and mounts go (default: $TMPDIR)")
    ap.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lustrepy-rpcs-", dir=args.workdir)
    root, mnt, wmnt = os.path.join(work, "cluster"), os.path.join(work, "mnt"), os.path.join(work, "wbc-mnt")
    up = subprocess.run([*LFSCTL, "cluster", "up", "--root", root, "--osts", "4", "--mount", mnt],
                        capture_output=True, text=True, timeout=300)
    if up.returncode:
        print(f"rpcs: cluster up failed: {up.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return 1
    wbc_up = False
    try:
        source = json.loads(Path(root, "cluster.json").read_text())["mgs"]
        os.makedirs(wmnt)
        subprocess.run([str(CLIENT), source, wmnt, "-o", f"wbc,journal={work}/journal"], check=True, timeout=120)
        wbc_up = True
        tarball = _tarball(work, args.files)
        results = {"server side (nowbc)": measure(root, mnt, args.files, tarball),
                   "write-back cache": measure(root, wmnt, args.files, tarball)}
    finally:
        if wbc_up:
            subprocess.run(["fusermount3", "-u", wmnt], timeout=120)
            time.sleep(0.5)
        subprocess.run([*LFSCTL, "cluster", "down", "--root", root], capture_output=True, timeout=300)
        subprocess.run(["rm", "-rf", work], timeout=300)
    print(json.dumps(results, indent=1) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
