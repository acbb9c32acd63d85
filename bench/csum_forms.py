"""Where an OSS keeps the crc32c of each block of its objects, and how large a block: a micro-benchmark.

Not a test. Writes objects as real files in a directory (default: $TMPDIR) and times, for each
form of keeping the checksums and each block size, what the OSS pays per write and per read:

- `sidecar`: a file per object beside it (`<id>.crc`), one little-endian uint32 per block,
  updated with pwrite at the entries a write touches;
- `sqlite`: one SQLite database per OST (WAL, synchronous=NORMAL), a row (object, block, crc).

Workloads: sequential 1 MiB writes then reads (every block checked) over many objects, and 4 KiB
random overwrites (each one a read-modify-checksum of its block). The page cache is not dropped:
the figures are the CPU and system-call cost of the checksums, not the disk's speed.

    .venv/bin/python bench/csum_forms.py [--dir DIR] [--mib 256]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import struct
import sys
import tempfile
import time

import crc32c

MiB = 1 << 20
CHUNK = MiB


class Sidecar:
    def __init__(self, root: str, bs: int) -> None:
        self.root, self.bs = root, bs

    def put(self, oid: int, first: int, crcs: list[int]) -> None:
        fd = os.open(os.path.join(self.root, f"{oid}.crc"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, struct.pack(f"<{len(crcs)}I", *crcs), first * 4)
        finally:
            os.close(fd)

    def get(self, oid: int, first: int, n: int) -> list[int]:
        fd = os.open(os.path.join(self.root, f"{oid}.crc"), os.O_RDONLY)
        try:
            raw = os.pread(fd, n * 4, first * 4)
        finally:
            os.close(fd)
        return list(struct.unpack(f"<{len(raw) // 4}I", raw))

    def close(self) -> None:
        pass


class Sql:
    def __init__(self, root: str, bs: int) -> None:
        self.bs = bs
        self.db = sqlite3.connect(os.path.join(root, "csum.db"), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS c (oid INTEGER, blk INTEGER, crc INTEGER, "
                        "PRIMARY KEY (oid, blk)) WITHOUT ROWID")

    def put(self, oid: int, first: int, crcs: list[int]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO c VALUES (?, ?, ?)",
                            [(oid, first + i, c) for i, c in enumerate(crcs)])
        self.db.execute("COMMIT")

    def get(self, oid: int, first: int, n: int) -> list[int]:
        rows = self.db.execute("SELECT crc FROM c WHERE oid = ? AND blk >= ? AND blk < ? ORDER BY blk",
                               (oid, first, first + n)).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self.db.close()


def _crcs(data: bytes, bs: int) -> list[int]:
    view = memoryview(data)
    return [crc32c.crc32c(view[i:i + bs]) for i in range(0, len(view), bs)]


def run(form: type | None, root: str, bs: int, total: int, nobj: int, rand_ops: int) -> dict[str, float]:
    os.makedirs(root)
    store = form(root, bs) if form is not None else None
    per_obj = total // nobj
    data = os.urandom(CHUNK)
    out: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for oid in range(1, nobj + 1):
        fd = os.open(os.path.join(root, str(oid)), os.O_RDWR | os.O_CREAT, 0o644)
        for off in range(0, per_obj, CHUNK):
            os.pwrite(fd, data, off)
            if store is not None:
                store.put(oid, off // bs, _crcs(data, bs))
        os.close(fd)
    out["write_mib_s"] = total / MiB / (time.perf_counter() - t0)
    out["write_cpu_s_gib"] = (time.process_time() - c0) * (1 << 30) / total
    t0, c0 = time.perf_counter(), time.process_time()
    for oid in range(1, nobj + 1):
        fd = os.open(os.path.join(root, str(oid)), os.O_RDONLY)
        for off in range(0, per_obj, CHUNK):
            got = os.pread(fd, CHUNK, off)
            if store is not None and _crcs(got, bs) != store.get(oid, off // bs, CHUNK // bs):
                raise SystemExit("mismatch")
        os.close(fd)
    out["read_mib_s"] = total / MiB / (time.perf_counter() - t0)
    out["read_cpu_s_gib"] = (time.process_time() - c0) * (1 << 30) / total
    rnd = random.Random(1)
    small = os.urandom(4096)
    t0 = time.perf_counter()
    for _ in range(rand_ops):
        oid = rnd.randrange(1, nobj + 1)
        off = rnd.randrange(0, per_obj // 4096) * 4096
        blk = off // bs
        fd = os.open(os.path.join(root, str(oid)), os.O_RDWR)
        old = os.pread(fd, bs, blk * bs)
        os.pwrite(fd, small, off)
        if store is not None:
            new = old[:off - blk * bs] + small + old[off - blk * bs + 4096:]
            store.put(oid, blk, [crc32c.crc32c(new)])
        os.close(fd)
    out["rand4k_ops_s"] = rand_ops / (time.perf_counter() - t0)
    if store is not None:
        store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="where to write (default: $TMPDIR)")
    ap.add_argument("--mib", type=int, default=256, help="MiB written per run (default 256)")
    ap.add_argument("--objects", type=int, default=64)
    ap.add_argument("--rand-ops", type=int, default=20000)
    ns = ap.parse_args()
    base = tempfile.mkdtemp(prefix="csum-forms-", dir=ns.dir)
    try:
        print(f"{'form':8} {'block':>6} {'write MiB/s':>12} {'w cpu s/GiB':>12} {'read MiB/s':>11} "
              f"{'r cpu s/GiB':>12} {'4k rmw ops/s':>13}")
        shutil.rmtree(os.path.join(base, "warmup"), ignore_errors=True)
        run(None, os.path.join(base, "warmup"), 64 << 10, ns.mib * MiB, ns.objects, ns.rand_ops)   # untimed
        shutil.rmtree(os.path.join(base, "warmup"))
        for name, form in (("none", None), ("sidecar", Sidecar), ("sqlite", Sql)):
            for bs in ((64 << 10,) if form is None else (16 << 10, 64 << 10, 256 << 10)):
                root = os.path.join(base, f"{name}-{bs}")
                r = run(form, root, bs, ns.mib * MiB, ns.objects, ns.rand_ops)
                print(f"{name:8} {bs >> 10:>5}K {r['write_mib_s']:12.0f} {r['write_cpu_s_gib']:12.2f} "
                      f"{r['read_mib_s']:11.0f} {r['read_cpu_s_gib']:12.2f} {r['rand4k_ops_s']:13.0f}")
                sys.stdout.flush()
                shutil.rmtree(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
