"""`scripts/faults`: the fault-injection suite's long run (see harness.py)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.harness import iterate, plan
from tests.support.pki import use_ca


def main() -> int:
    ap = argparse.ArgumentParser(description="fault-injection iterations (a fresh cluster each)")
    ap.add_argument("count", nargs="?", type=int, default=300, help="iterations (default 300)")
    ap.add_argument("--seed", type=int, help="play this one seed again")
    ap.add_argument("--start", type=int, default=None, help="first seed of the series (default: the time)")
    args = ap.parse_args()
    start = args.start if args.start is not None else int(time.time())
    seeds = [args.seed] if args.seed is not None else [start + i for i in range(args.count)]
    failed = 0
    t0 = time.monotonic()
    ca_dir = Path(tempfile.mkdtemp(prefix="lustrepy-fault-ca-"))
    use_ca(ca_dir)
    for i, seed in enumerate(seeds, 1):
        work = Path(tempfile.mkdtemp(prefix=f"lustrepy-fault-{seed}-"))
        t1 = time.monotonic()
        problems = iterate(seed, work)
        took = time.monotonic() - t1
        if problems:
            failed += 1
            print(f"[{i}/{len(seeds)}] FAILED {plan(seed)} ({took:.1f}s)", flush=True)
            for p in problems:
                print(f"    {p}", flush=True)
            print(f"    kept for a look: {work}", flush=True)
        else:
            print(f"[{i}/{len(seeds)}] ok {plan(seed)} ({took:.1f}s)", flush=True)
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(seeds)} iterations, {failed} failed, {time.monotonic() - t0:.0f}s", flush=True)
    shutil.rmtree(ca_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
