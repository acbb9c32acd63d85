"""What checksums at rest cost: sequential write and read with them and without, and the CPU spent.

    .venv/bin/python bench/checksums.py                   # 512 MiB, both levels, 3 runs each (medians)
    .venv/bin/python bench/checksums.py --size 256M --repeat 1 --only ofd

Two levels, each run with the OSS's checksums on and off (`--no-checksums`), alternately:

- `ofd`: the OSS's object layer in this process on a directory (no network): 1 MiB write
  chunks into 8 objects, fsync, then 1 MiB reads of every byte (every block checked). CPU is
  this process's.
- `small`: the object layer again: 2,000 new objects of 4 KiB, each written by a request of
  its own (the cost of recording each in the dirty log: one fdatasync). Objects/s and CPU.
- `mount`: real servers (one MDS, two OSSes, scrub off) and a real lustrepy mount: a file
  striped over both OSTs written with 1 MiB writes and fsync'ed, the kernel's caches dropped,
  the file read back with a fresh mount. CPU is the two OSS processes' (user + system).

Needs root (to mount and drop caches). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import crc32c

BIN = Path(sys.executable).parent
MiB = 1 << 20
CHUNK = MiB


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ---- the object layer ---------------------------------------------------------------------------

def ofd_run(work: str, size: int, checksums: bool) -> dict[str, float]:
    from lustrepy.oss.identity import load_or_format
    from lustrepy.oss.ofd import Ofd
    from lustrepy.oss.osd import Osd

    d = tempfile.mkdtemp(dir=work)
    try:
        osd = Osd(d)
        ofd = Ofd(osd, load_or_format(osd, "bench", 0), checksums=checksums)
        first, last = ofd.precreate(8)
        per = size // 8
        data = os.urandom(CHUNK)
        crc = crc32c.crc32c(data)
        t0, c0 = time.perf_counter(), time.process_time()
        with ofd.write_session() as s:
            for oid in range(first, last + 1):
                for off in range(0, per, CHUNK):
                    s.write(oid, off, data, crc)
            s.want_sync = True
            s.finish()
        ofd.sync_objects(set(range(first, last + 1)))
        w_s, w_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for oid in range(first, last + 1):
            for p in ofd.read(oid, 0, per):
                n += len(p.data)
        r_s, r_cpu = time.perf_counter() - t0, time.process_time() - c0
        assert n == per * 8
        gib = size / (1 << 30)
        return {"write_mib_s": size / MiB / w_s, "read_mib_s": size / MiB / r_s,
                "write_cpu_s_per_gib": w_cpu / gib, "read_cpu_s_per_gib": r_cpu / gib}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def small_run(work: str, size: int, checksums: bool) -> dict[str, float]:
    """2,000 new objects of 4 KiB, each written by a request of its own (small files): with
    checksums each one's first change after a commit is recorded in the dirty log (one fdatasync)."""
    from lustrepy.oss.identity import load_or_format
    from lustrepy.oss.ofd import Ofd
    from lustrepy.oss.osd import Osd

    d = tempfile.mkdtemp(dir=work)
    try:
        osd = Osd(d)
        ofd = Ofd(osd, load_or_format(osd, "bench", 0), checksums=checksums)
        first, last = ofd.precreate(2000)
        data = os.urandom(4096)
        crc = crc32c.crc32c(data)
        t0, c0 = time.perf_counter(), time.process_time()
        for oid in range(first, last + 1):
            with ofd.write_session() as s:
                s.write(oid, 0, data, crc)
        w_s, w_cpu = time.perf_counter() - t0, time.process_time() - c0
        return {"write_mib_s": 2000 / w_s, "read_mib_s": 0.0, "write_cpu_s_per_gib": w_cpu / 2000 * 1e6,
                "read_cpu_s_per_gib": 0.0}
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- real servers and a mount -------------------------------------------------------------------

class Servers:
    def __init__(self, root: Path, checksums: bool) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        self.mounts: list[Path] = []
        (root / "oss.toml").write_text("scrub_rate = 0.0\n")
        self.mds = self._start("mds", [str(BIN / "lustrepy-mds"), "--dir", str(root / "mdt"), "--fsname", "bench",
                                       "--listen", "127.0.0.1:0"])
        self.oss = [self._start(f"oss{i}", [str(BIN / "lustrepy-oss"), "--dir", str(root / f"ost{i}"),
                                            "--fsname", "bench", "--index", str(i), "--listen", "127.0.0.1:0",
                                            "--mds", f"127.0.0.1:{self.mds[1]}", "--config", str(root / "oss.toml"),
                                            *([] if checksums else ["--no-checksums"])]) for i in range(2)]

    def _start(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], int]:
        port_file = self.root / f"{name}.port"
        with open(self.root / f"{name}.log", "ab") as log:
            p = subprocess.Popen([*argv, "--port-file", str(port_file)], stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(p)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if port_file.exists() and port_file.read_text().strip():
                return p, int(port_file.read_text())
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.root / f'{name}.log').read_text()[-1000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not start")

    def mount(self, name: str) -> Path:
        mnt = self.root / name
        mnt.mkdir()
        p = subprocess.Popen([str(BIN / "lustrepy"), f"127.0.0.1:{self.mds[1]}:/bench", str(mnt), "-f"],
                             stdout=open(self.root / f"{name}.log", "ab"), stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        self.mounts.append(mnt)
        end = time.monotonic() + 60
        while not os.path.ismount(mnt):
            if p.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"mount failed: {(self.root / f'{name}.log').read_text()[-1000:]}")
            time.sleep(0.05)
        return mnt

    def cpu(self) -> float:
        return sum(proc_cpu(p.pid) for p, _ in self.oss)

    def stop(self) -> None:
        for mnt in self.mounts:
            if subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode:
                subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def mount_run(work: str, size: int, checksums: bool) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(dir=work))
    s = Servers(root, checksums)
    try:
        mnt = s.mount("mnt")
        os.setxattr(mnt, "lustrepy.lov", json.dumps({"stripe_size": MiB, "stripe_count": 2}).encode())
        time.sleep(2.0)                                 # both OSTs registered and precreated
        data = os.urandom(CHUNK)
        c0, t0 = s.cpu(), time.perf_counter()
        with open(mnt / "f", "wb") as f:
            for _ in range(size // CHUNK):
                f.write(data)
            os.fsync(f.fileno())
        w_s, w_cpu = time.perf_counter() - t0, s.cpu() - c0
        drop_caches()
        fresh = s.mount("fresh")
        c0, t0 = s.cpu(), time.perf_counter()
        n = 0
        with open(fresh / "f", "rb") as f:
            while chunk := f.read(CHUNK):
                n += len(chunk)
        r_s, r_cpu = time.perf_counter() - t0, s.cpu() - c0
        assert n == size
        gib = size / (1 << 30)
        return {"write_mib_s": size / MiB / w_s, "read_mib_s": size / MiB / r_s,
                "write_cpu_s_per_gib": w_cpu / gib, "read_cpu_s_per_gib": r_cpu / gib}
    finally:
        s.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="512M", help="bytes per run (K/M/G suffix; default 512M)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["ofd", "small", "mount"], action="append")
    ap.add_argument("--workdir", default=None, help="where to work (default: $TMPDIR)")
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args()
    mult = {"K": 1 << 10, "M": MiB, "G": 1 << 30}
    size = int(ns.size[:-1]) * mult[ns.size[-1].upper()] if ns.size[-1].upper() in mult else int(ns.size)
    work = tempfile.mkdtemp(prefix="bench-csum-", dir=ns.workdir)
    results: dict[str, Any] = {}
    try:
        for level, fn in (("ofd", ofd_run), ("small", small_run), ("mount", mount_run)):
            if ns.only and level not in ns.only:
                continue
            runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
            for _ in range(ns.repeat):
                for mode in ("off", "on"):
                    runs[mode].append(fn(work, size, mode == "on"))
                    print(f"{level} {mode}: {runs[mode][-1]}", file=sys.stderr)
            results[level] = {mode: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                              for mode, rs in runs.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if ns.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'level':6} {'checksums':9} {'write MiB/s':>11} {'read MiB/s':>10} {'write CPU s/GiB':>15} "
          f"{'read CPU s/GiB':>14}")
    for level, modes in results.items():
        for mode in ("off", "on"):
            r = modes[mode]
            if level == "small":
                print(f"{level:6} {mode:9} {r['write_mib_s']:11.0f} objects/s, {r['write_cpu_s_per_gib']:.0f} "
                      "CPU us per object")
                continue
            print(f"{level:6} {mode:9} {r['write_mib_s']:11.0f} {r['read_mib_s']:10.0f} "
                  f"{r['write_cpu_s_per_gib']:15.2f} {r['read_cpu_s_per_gib']:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
