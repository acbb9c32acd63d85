"""How fast the MDS recovers when two mounts hold many uncommitted operations between them.

    .venv/bin/python bench/recovery.py                # 10,000 operations, two mounts
    .venv/bin/python bench/recovery.py --ops 2000 --json

Brings a cluster of its own up (`lfsctl cluster up --osts 2 --mount`) and a
second mount, sets a replay barrier on the MDS (`lfsctl replay-barrier --mds`:
nothing after it survives the MDS's next start, as after a power cut), runs
`--ops` system calls split over the two mounts at once (creates of small files,
then renames and unlinks of some of them, in a directory per mount), kills the
MDS (`cluster stop-mds --kill`) and starts it again (`start-mds`). It reports
the MDS's recovery (`lfsctl mds --json`: replays applied and failed, seconds
from its start to the end of recovery, replays per second), when a stat of a
file on each mount was answered after the MDS was back (new requests wait for
the recovery), and whether each mount lists exactly what it listed before the kill.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
CLIENT = Path(sys.executable).parent / "lustrepy"


def lfsctl(*argv: str, timeout: float = 300) -> str:
    r = subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(f"lfsctl {' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


def load(top: str, ops: int) -> int:
    """`ops` system calls in `top`: creates (with 64 bytes each), then renames and unlinks."""
    os.mkdir(top)
    n = max(1, ops * 5 // 7)                # n creates + n/5 renames + n/5 unlinks
    for i in range(n):
        fd = os.open(os.path.join(top, f"f{i}"), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"x" * 64)
        os.close(fd)
    done = n
    for i in range(0, n, 5):
        if done >= ops:
            break
        os.rename(os.path.join(top, f"f{i}"), os.path.join(top, f"r{i}"))
        done += 1
        if i + 1 < n and done < ops:
            os.unlink(os.path.join(top, f"f{i + 1}"))
            done += 1
    return done


def listing(top: str) -> list[tuple[str, int]]:
    return sorted((e.name, e.stat().st_size) for e in os.scandir(top))


def measure(work: str, ops: int) -> dict[str, Any]:
    root, mnts = os.path.join(work, "cluster"), [os.path.join(work, "a"), os.path.join(work, "b")]
    lfsctl("cluster", "up", "--root", root, "--osts", "2", "--mount", mnts[0])
    second = False
    try:
        source = json.loads(Path(root, "cluster.json").read_text())["mgs"]
        os.makedirs(mnts[1])
        subprocess.run([str(CLIENT), source, mnts[1]], check=True, timeout=120)
        second = True
        lfsctl("replay-barrier", "--mds", "--root", root)
        counts = [0, 0]

        def run(k: int) -> None:
            counts[k] = load(os.path.join(mnts[k], f"load{k}"), ops // 2)
        t0 = time.monotonic()
        threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        load_s = time.monotonic() - t0
        before = [listing(os.path.join(m, f"load{k}")) for k, m in enumerate(mnts)]
        lfsctl("cluster", "stop-mds", "--kill", "--root", root)
        lfsctl("cluster", "start-mds", "--root", root)
        back = time.monotonic()
        first_answer = []
        for k, m in enumerate(mnts):          # waits while recovery runs: new requests wait for it
            os.stat(os.path.join(m, f"load{k}", "f2"))
            first_answer.append(time.monotonic() - back)
        after = [listing(os.path.join(m, f"load{k}")) for k, m in enumerate(mnts)]
        while True:
            rec = json.loads(lfsctl("mds", "--json", "--root", root))["recovery"]
            if rec and rec["state"] != "recovering":
                break
            time.sleep(0.2)
        return {"ops": sum(counts), "load_s": load_s, "ops_per_s_before_kill": sum(counts) / load_s,
                "replays_applied": rec["replays_applied"], "replays_failed": rec["replays_failed"],
                "clients_recovered": rec["clients_recovered"], "clients_evicted": rec["clients_evicted"],
                "recovery_s": rec["took_s"], "replays_per_s": rec["replays_applied"] / max(rec["took_s"], 1e-6),
                "first_stat_s": first_answer, "listings_equal": before == after}
    finally:
        if second:
            subprocess.run(["fusermount3", "-u", mnts[1]], timeout=120)
        subprocess.run([*LFSCTL, "cluster", "down", "--root", root], capture_output=True, timeout=300)


def main() -> int:
    ap = argparse.ArgumentParser(description="MDS recovery time with two mounts' uncommitted operations")
    ap.add_argument("--ops", type=int, default=10_000, help="system calls after the barrier, both mounts (10000)")
    ap.add_argument("--workdir", default=None, help="where the cluster and mounts go (default: $TMPDIR)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lustrepy-recovery-", dir=args.workdir)
    try:
        r = measure(work, args.ops)
    finally:
        subprocess.run(["rm", "-rf", work], timeout=300)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"operations after the barrier: {r['ops']} in {r['load_s']:.1f}s ({r['ops_per_s_before_kill']:.0f}/s)")
        print(f"replays: {r['replays_applied']} applied, {r['replays_failed']} failed; clients "
              f"{r['clients_recovered']} recovered, {r['clients_evicted']} evicted")
        print(f"recovery: {r['recovery_s']:.1f}s from the MDS's start ({r['replays_per_s']:.0f} replays/s)")
        print(f"a stat on each mount answered after the restart in: "
              f"{', '.join(f'{s:.1f}s' for s in r['first_stat_s'])}")
        print(f"listings after = before: {'yes' if r['listings_equal'] else 'NO'}")
    return 0 if r["listings_equal"] and not r["replays_failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
