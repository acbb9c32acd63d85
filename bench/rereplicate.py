"""How fast the MDS rebuilds the mirrors of a lost OST elsewhere (re-replication), OSS to OSS.

    .venv/bin/python bench/rereplicate.py                 # 512 MiB in 8 two-mirror files
    .venv/bin/python bench/rereplicate.py --size 1G --files 16 --json

Brings a cluster of its own up (`lfsctl cluster up --osts 5 --mount`), makes a
two-mirror directory (`lfsctl mirror create -N2 -c 1`), writes --files files of
--size bytes in all, sets `mds.mirror.resync_delay=0` and
`mds.mirror.resync_bandwidth=0` (no bound), kills the OSS that holds the most
of their objects (`cluster stop-ost --kill`), and times how long the MDS takes,
from the moment `lfsctl osts` shows that OST inactive, until every file has two
in-sync mirrors off it again. Reports the bytes copied (`lfsctl mirror status`),
MiB/s, and, as the reference measured in the same run, a local copy of the same
bytes between two directories of this machine (`cp`, then `sync`). The cluster
is taken down at the end, also on failure. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
MiB = 1 << 20


def lfsctl(*argv: str, timeout: float = 300) -> str:
    r = subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError(f"lfsctl {' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


def layout(path: Path) -> dict[str, Any]:
    return json.loads(lfsctl("getstripe", "--json", str(path)))


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": MiB, "G": 1 << 30}
    t = text.strip().upper()
    return int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)


def write_files(d: Path, files: int, size: int) -> list[Path]:
    block = os.urandom(MiB)
    out = []
    for k in range(files):
        p = d / f"f{k}"
        with open(p, "wb") as f:
            left = size // files
            while left > 0:
                n = min(left, MiB)
                f.write(block[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
        out.append(p)
    return out


def rebuilt(paths: list[Path], lost: int) -> bool:
    for p in paths:
        ms = layout(p)["mirrors"]
        if any(m["state"] != "in_sync" or any(o[0] == lost for o in m["objects"]) for m in ms):
            return False
    return True


def local_copy(size: int, workdir: str) -> float:
    """MiB/s of cp of `size` bytes between two local directories, synced."""
    src, dst = Path(workdir, "src"), Path(workdir, "dst")
    src.mkdir()
    dst.mkdir()
    with open(src / "f", "wb") as f:
        f.write(os.urandom(MiB) * (size // MiB))
    os.sync()
    t0 = time.monotonic()
    subprocess.run(["cp", str(src / "f"), str(dst / "f")], check=True)
    os.sync()
    took = time.monotonic() - t0
    shutil.rmtree(src)
    shutil.rmtree(dst)
    return size / MiB / took


def run(ns: argparse.Namespace, workdir: str) -> dict[str, Any]:
    root = Path(workdir, "cluster")
    mnt = root / "mnt"
    lfsctl("cluster", "up", "--root", str(root), "--osts", "5", "--mount", str(mnt), "--ost-timeout", "2",
           "--heartbeat", "0.5", timeout=180)
    try:
        d = mnt / "mir"
        d.mkdir()
        lfsctl("mirror", "create", "-N2", "-c", "1", str(d))
        paths = write_files(d, ns.files, ns.size)
        counts: dict[int, int] = {}
        for p in paths:
            for m in layout(p)["mirrors"]:
                for o in m["objects"]:
                    counts[o[0]] = counts.get(o[0], 0) + 1
        lost = max(counts, key=lambda i: counts[i])
        moved = sum(ns.size // ns.files for p in paths for m in layout(p)["mirrors"] if m["objects"][0][0] == lost)
        lfsctl("set-param", "--root", str(root), "mds.mirror.resync_delay=0", "mds.mirror.resync_bandwidth=0")
        before = json.loads(lfsctl("mirror", "status", "--root", str(root), "--json"))["copied_bytes"]
        lfsctl("cluster", "stop-ost", "--root", str(root), "--index", str(lost), "--kill")
        killed = time.monotonic()
        while True:
            osts = json.loads(lfsctl("osts", "--root", str(root), "--json"))["osts"]
            if next(o for o in osts if o["index"] == lost)["state"] == "inactive":
                break
            time.sleep(0.1)
        inactive = time.monotonic()
        while not rebuilt(paths, lost):
            if time.monotonic() - inactive > ns.timeout:
                raise RuntimeError(f"mirrors not rebuilt within {ns.timeout:g}s")
            time.sleep(0.2)
        done = time.monotonic()
        copied = json.loads(lfsctl("mirror", "status", "--root", str(root), "--json"))["copied_bytes"] - before
        verify = subprocess.run([*LFSCTL, "mirror", "verify", "--root", str(root), *map(str, paths)],
                                capture_output=True, text=True, timeout=300)
        return {"files": ns.files, "bytes_written": ns.size, "lost_ost": lost, "bytes_on_lost_ost": moved,
                "bytes_copied": copied, "inactive_after_s": round(inactive - killed, 2),
                "rebuild_s": round(done - inactive, 2), "rebuild_mib_s": round(copied / MiB / (done - inactive), 1),
                "verify_ok": verify.returncode == 0,
                "local_cp_mib_s": round(local_copy(min(ns.size, 256 * MiB), workdir), 1)}
    finally:
        subprocess.run([*LFSCTL, "cluster", "down", "--root", str(root)], capture_output=True, timeout=180)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=512 * MiB, help="bytes written in all (default 512M)")
    ap.add_argument("--files", type=int, default=8, help="files they are written in (default 8)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds the rebuild may take")
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lp-rerep-") as workdir:
        r = run(ns, workdir)
    if ns.json:
        print(json.dumps(r, indent=2))
    else:
        for k, v in r.items():
            print(f"{k:20} {v}")
    return 0 if r["verify_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
