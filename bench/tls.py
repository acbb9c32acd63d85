"""What security costs: the same workloads on a plaintext cluster and on a secure one, side by side.

    .venv/bin/python bench/tls.py                       # meta (create/stat/unlink) and seq1, 2 rounds each
    .venv/bin/python bench/tls.py --size 512M --files 3000 --rounds 3 --json

Runs bench/run.py (its cluster column only, no write-back cache) on a cluster it
brings up with `--plaintext` (no TLS, no object capabilities) and on one with
the defaults (mutual TLS on every gRPC channel and request lane, roles, object
capabilities checked by every OSS), alternating, `--rounds` times each, and
reports the median of each figure, the ratio secure / plaintext, and the CPU
per operation of the client, the MDS and the OSSes in both. The targets: file
creates and sequential writes lose at most 15% (ratio >= 0.85). A benchmark,
not a test: it stops what it started, also on failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGETS = {("meta", "create"): 0.85, ("seq1", "write"): 0.85}
MODES = ("plaintext", "secure")


def run_once(mode: str, ns: argparse.Namespace, workdir: str) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / "run.py"), "--only", "meta,seq1", "--no-wbc", "--json",
            "--size", ns.size, "--files", str(ns.files), "--workdir", workdir,
            "--cluster-root", str(Path(workdir) / f"cluster-{mode}")]
    if mode == "plaintext":
        argv.append("--plaintext")
    print(f"bench/tls.py: {mode}: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=ns.timeout)
    if r.returncode != 0:
        raise SystemExit(f"bench/tls.py: bench/run.py failed ({mode}): {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout)["results"]


def figures(results: dict[str, Any]) -> dict[tuple[str, str], tuple[float, str]]:
    out = {}
    for workload, cols in results.items():
        for key, f in cols.get("lustrepy", {}).items():
            if isinstance(f, dict) and "value" in f:
                out[(workload, key)] = (float(f["value"]), str(f["unit"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/tls.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="512M", help="seq1's file (default %(default)s)")
    ap.add_argument("--files", type=int, default=3000, help="meta's files (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternating (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args(argv)
    runs: dict[str, list[dict[tuple[str, str], tuple[float, str]]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="lp-bench-tls-") as workdir:
        for _ in range(ns.rounds):
            for mode in MODES:
                runs[mode].append(figures(run_once(mode, ns, workdir)))
    keys = sorted(set.intersection(*(set(r) for m in MODES for r in runs[m])))
    rows = []
    for k in keys:
        med = {m: statistics.median(r[k][0] for r in runs[m]) for m in MODES}
        unit = runs["secure"][0][k][1]
        higher = not unit.startswith(("ms", "s", "us")) and "cpu" not in k[1]
        ratio = med["secure"] / med["plaintext"] if med["plaintext"] else float("nan")
        target = TARGETS.get(k)
        rows.append({"workload": k[0], "figure": k[1], "unit": unit, "plaintext": med["plaintext"],
                     "secure": med["secure"], "ratio": ratio, "higher_is_better": higher,
                     **({"target": f">= {target}", "pass": ratio >= target} if target else {})})
    if ns.json:
        print(json.dumps({"rounds": ns.rounds, "size": ns.size, "files": ns.files, "rows": rows}, indent=2))
        return 0
    print(f"{'workload':9} {'figure':28} {'unit':10} {'plaintext':>11} {'secure':>11} {'secure/plain':>12}  target")
    for r in rows:
        t = f"{r['target']} {'PASS' if r['pass'] else 'FAIL'}" if "target" in r else ""
        print(f"{r['workload']:9} {r['figure']:28} {r['unit']:10} {r['plaintext']:11.3f} {r['secure']:11.3f} "
              f"{r['ratio']:12.3f}  {t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
