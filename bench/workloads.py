"""The benchmark workloads: each takes a directory and returns figures.

Every workload works inside the directory it is given, removes what it
created (outside the timed part), and returns a list of Figure. Sizes and
counts come from Params, so a quick run uses the same code as a full one.
Nothing here mounts, starts or stops a process other than its own writers
and clients; run.py does that (the second client mount `shared` needs
included), and runs each workload in a process of its own.

Timings cover what an application waits for: writes include the final
fsync and close; "cold" reads follow `sync; echo 3 > /proc/sys/vm/drop_caches`
(only the kernel's caches: a FUSE client's own caches in user space stay
warm, and a figure is marked "warm" when the caches could not be dropped).
"""

from __future__ import annotations

import errno
import io
import logging
import multiprocessing
import os
import random
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

log = logging.getLogger(__name__)

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
SMALL_IO = 4 * KiB
DROP_CACHES = "/proc/sys/vm/drop_caches"
RSS_SAMPLE_S = 0.02


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number."""

    key: str                 # stable name, e.g. "write" (JSON key, target reference)
    value: float
    unit: str                # "MiB/s", "IOPS", "ops/s", "s", "MiB"
    higher_is_better: bool = True
    note: str = ""           # e.g. "warm" when caches could not be dropped


@dataclass(frozen=True, slots=True)
class Params:
    size: int = 1 * GiB                # sequential file size; also the total of the parallel writers
    block: int = 1 * MiB               # sequential I/O size
    writers: int = 4
    rand_size: int = 256 * MiB         # file the 4 KiB random I/O goes to
    rand_ops: int = 20_000
    files: int = 5_000                 # metadata workload; also the creates of `shared`
    meta20k_files: int = 20_000        # the larger metadata workload
    tar_files: int = 3_000
    tarball: str = ""                  # made once by make_tarball()
    rounds: int = 5                    # rounds of the `rounds` workload
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Where:
    """What a workload knows about the file system it runs on."""

    name: str
    setstripe: Callable[[str, int], None] | None = None      # (directory, stripe_count); None: not striped
    pids: dict[str, list[int]] = field(default_factory=dict)  # process group name -> pids, for memory
    peer: str = ""            # the same directory through a second client mount of the file system ("shared")


Workload = Callable[[str, Params, Where], list[Figure]]


# ---- helpers ------------------------------------------------------------------------------

def drop_caches() -> bool:
    """Write back dirty pages and drop the kernel's page, dentry and inode caches (needs root)."""
    os.sync()
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def _fresh_dir(d: str, name: str) -> str:
    path = os.path.join(d, name)
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path)
    return path


def _write_all(fd: int, buf: memoryview) -> None:
    while buf:
        buf = buf[os.write(fd, buf):]


def write_file(path: str, size: int, block: int, buf: bytes) -> None:
    """Write size bytes in `block` pieces, fsync and close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        mv = memoryview(buf)
        left = size
        while left > 0:
            n = min(block, left)
            _write_all(fd, mv[:n])
            left -= n
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: str, block: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    total = 0
    try:
        while True:
            got = len(os.read(fd, block))
            if not got:
                return total
            total += got
    finally:
        os.close(fd)


def mib_s(nbytes: int, seconds: float) -> float:
    return nbytes / MiB / max(seconds, 1e-9)


def settle(d: str) -> None:
    """fsync a directory: on a write-back cache mount, every update record made so far reaches the
    MDS and is committed (a refused record raises here). Untimed, so that what one workload left
    queued does not run during the next one. File systems without fsync on directories are fine."""
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---- sequential ------------------------------------------------------------------------------

def _sequential(d: str, p: Params, w: Where, stripes: int) -> list[Figure]:
    sub = _fresh_dir(d, f"seq{stripes}")
    if w.setstripe:
        w.setstripe(sub, stripes)
    path = os.path.join(sub, "big")
    buf = os.urandom(p.block)
    wt = _timed(lambda: write_file(path, p.size, p.block, buf))
    cold = drop_caches()
    got = 0

    def rd() -> None:
        nonlocal got
        got = read_file(path, p.block)

    rt = _timed(rd)
    if got != p.size:
        raise OSError(f"read back {got} bytes of {p.size}")
    shutil.rmtree(sub)
    return [Figure("write", mib_s(p.size, wt), "MiB/s"),
            Figure("read", mib_s(p.size, rt), "MiB/s", note="" if cold else "warm")]


def seq1(d: str, p: Params, w: Where) -> list[Figure]:
    """Sequential write then cold read of one file in 1 MiB blocks, stripe_count 1."""
    return _sequential(d, p, w, 1)


def seq4(d: str, p: Params, w: Where) -> list[Figure]:
    """Sequential write then cold read of one file in 1 MiB blocks, stripe_count 4."""
    return _sequential(d, p, w, 4)


# ---- parallel writers --------------------------------------------------------------------------

def _writer(path: str, size: int, block: int, go: Any) -> None:
    buf = os.urandom(block)
    go.wait()
    write_file(path, size, block, buf)


def parallel(d: str, p: Params, w: Where) -> list[Figure]:
    """`writers` processes each write size/writers bytes to a file of their own, at once."""
    sub = _fresh_dir(d, "parallel")
    each = p.size // p.writers
    ctx = multiprocessing.get_context("fork")
    go = ctx.Barrier(p.writers + 1)
    procs = [ctx.Process(target=_writer, args=(os.path.join(sub, f"w{i}"), each, p.block, go))
             for i in range(p.writers)]
    for pr in procs:
        pr.start()
    try:
        go.wait(timeout=60)
        t0 = time.perf_counter()
        for pr in procs:
            pr.join()
        elapsed = time.perf_counter() - t0
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.kill()
            pr.join()
    bad = [pr.exitcode for pr in procs if pr.exitcode != 0]
    if bad:
        raise OSError(f"{len(bad)} of {p.writers} writers failed (exit {bad[0]})")
    shutil.rmtree(sub)
    return [Figure("write", mib_s(each * p.writers, elapsed), "MiB/s")]


# ---- 4 KiB random I/O ----------------------------------------------------------------------------

def _offsets(p: Params, salt: int) -> list[int]:
    rng = random.Random(p.seed * 1000 + salt)
    pages = max(p.rand_size // SMALL_IO, 1)
    return [rng.randrange(pages) * SMALL_IO for _ in range(p.rand_ops)]


def rand4k(d: str, p: Params, w: Where) -> list[Figure]:
    """rand_ops 4 KiB writes at random aligned offsets of a rand_size file (then fsync),
    then rand_ops 4 KiB reads at other random offsets after dropping the caches."""
    sub = _fresh_dir(d, "rand4k")
    path = os.path.join(sub, "file")
    write_file(path, p.rand_size, min(p.block, p.rand_size), os.urandom(min(p.block, p.rand_size)))
    page = os.urandom(SMALL_IO)
    wr = _offsets(p, 1)

    def writes() -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            for off in wr:
                os.pwrite(fd, page, off)
            os.fsync(fd)
        finally:
            os.close(fd)

    wt = _timed(writes)
    cold = drop_caches()
    rd = _offsets(p, 2)

    def reads() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            for off in rd:
                if len(os.pread(fd, SMALL_IO, off)) != SMALL_IO:
                    raise OSError(f"short read at {off}")
        finally:
            os.close(fd)

    rt = _timed(reads)
    shutil.rmtree(sub)
    return [Figure("write", p.rand_ops / wt, "IOPS"),
            Figure("read", p.rand_ops / rt, "IOPS", note="" if cold else "warm")]


# ---- metadata ------------------------------------------------------------------------------------

def _meta(d: str, name: str, count: int) -> list[Figure]:
    sub = _fresh_dir(d, name)
    names = [os.path.join(sub, f"f{i:07d}") for i in range(count)]

    def create() -> None:
        for n in names:
            os.close(os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))

    def stat() -> None:
        for n in names:
            os.stat(n)

    def unlink() -> None:
        for n in names:
            os.unlink(n)

    ct, st, ut = _timed(create), _timed(stat), _timed(unlink)
    os.rmdir(sub)
    settle(d)
    return [Figure("create", count / ct, "ops/s"), Figure("stat", count / st, "ops/s"),
            Figure("unlink", count / ut, "ops/s")]


def meta(d: str, p: Params, w: Where) -> list[Figure]:
    """Create `files` empty files in one directory, stat them all (second pass), unlink them all."""
    return _meta(d, "meta", p.files)


def meta20k(d: str, p: Params, w: Where) -> list[Figure]:
    """The same with `meta20k_files` (20,000) files, in a directory tree made fresh for it."""
    return _meta(d, "meta20k", p.meta20k_files)


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) this process and `pids` have used so far."""
    t = os.times()
    total = t.user + t.system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            pass
    return total


def _one_round(sub: str, files: int) -> tuple[dict[str, float], int]:
    """One round of `rounds` in `sub`: the rate of each step, and the operations done."""
    names = [os.path.join(sub, f"f{i:07d}") for i in range(files)]
    dirs = [os.path.join(sub, f"d{i:06d}") for i in range(max(files // 4, 1))]
    times = {
        "create": _timed(lambda: [os.close(os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)) for n in names]),
        "stat": _timed(lambda: [os.stat(n) for n in names]),
        "unlink": _timed(lambda: [os.unlink(n) for n in names]),
        "mkdir": _timed(lambda: [os.mkdir(n) for n in dirs]),
        "rmdir": _timed(lambda: [os.rmdir(n) for n in dirs]),
    }
    count = {"create": len(names), "stat": len(names), "unlink": len(names), "mkdir": len(dirs), "rmdir": len(dirs)}
    return {k: count[k] / t for k, t in times.items()}, sum(count.values())


def rounds(d: str, p: Params, w: Where) -> list[Figure]:
    """`rounds` rounds of the same work, each in a directory made fresh for it: create `files`
    empty files, stat them, unlink them, mkdir and rmdir `files`/4 directories. The rates of the
    first and the last round, the last against the first, and the CPU per operation of this
    process and the file system's processes in each: what stays behind after the work is done
    must not slow the next round."""
    pids = [pid for group in w.pids.values() for pid in group]
    per: list[dict[str, float]] = []
    for r in range(p.rounds):
        sub = _fresh_dir(d, f"round{r}")
        cpu0 = _cpu_s(pids)
        rates, ops = _one_round(sub, p.files)
        cpu = _cpu_s(pids) - cpu0
        os.rmdir(sub)
        settle(d)
        per.append(rates | {"cpu_us_op": cpu * 1e6 / ops})
    first, last = per[0], per[-1]
    figs = []
    for k in ("create", "stat", "unlink", "mkdir", "rmdir"):
        figs += [Figure(f"{k}_first", first[k], "ops/s"), Figure(f"{k}_last", last[k], "ops/s"),
                 Figure(f"{k}_last/first", last[k] / first[k], "x")]
    figs += [Figure("cpu_us_op_first", first["cpu_us_op"], "us/op", higher_is_better=False),
             Figure("cpu_us_op_last", last["cpu_us_op"], "us/op", higher_is_better=False)]
    return figs


# ---- two clients, one directory --------------------------------------------------------------------

def _shared_client(sub: str, prefix: str, count: int, go: Any, conn: Any) -> None:
    """One client's part of `shared`: create its files, report when it finished, then commit them."""
    try:
        names = [os.path.join(sub, f"{prefix}{i:07d}") for i in range(count)]
        go.wait(timeout=60)
        for n in names:
            os.close(os.open(n, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        end = time.monotonic()
        settle(sub)
        conn.send(("ok", end))
    except BaseException as e:  # noqa: BLE001 - reported to the parent in one line
        text = str(e).strip().splitlines()
        conn.send(("error", f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")))
    finally:
        conn.close()


def shared(d: str, p: Params, w: Where) -> list[Figure]:
    """Two clients of one file system (two mounts: `d` and `w.peer`) create `files`/2 files each in
    one shared directory, each from a process of its own, started together; then the listing
    through the first mount must hold exactly the `files` names made."""
    if not w.peer:
        raise OSError("no second client mount")
    sub = _fresh_dir(d, "shared")
    settle(d)                                   # the directory on the MDS, not only in a client's cache
    peer_sub = os.path.join(w.peer, "shared")
    os.stat(peer_sub)                           # the second client finds it before the clock starts
    counts = {"a": p.files - p.files // 2, "b": p.files // 2}
    ctx = multiprocessing.get_context("fork")
    go = ctx.Barrier(3)
    procs, conns = [], []
    for (prefix, count), where in zip(counts.items(), (sub, peer_sub), strict=True):
        recv, send = ctx.Pipe(duplex=False)
        procs.append(ctx.Process(target=_shared_client, args=(where, prefix, count, go, send)))
        conns.append(recv)
        procs[-1].start()
        send.close()
    try:
        go.wait(timeout=60)
        t0 = time.monotonic()
        answers = []
        for c in conns:
            try:
                answers.append(c.recv())
            except EOFError:
                answers.append(("error", "the client process died"))
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.join(5)
            if pr.is_alive():
                pr.kill()
            pr.join()
        for c in conns:
            c.close()
    for which, (kind, value) in zip(("first", "second"), answers, strict=True):
        if kind != "ok":
            raise OSError(f"{which} client: {value}")
    elapsed = max(end for _, end in answers) - t0
    listed = os.listdir(sub)
    expected = {f"{prefix}{i:07d}" for prefix, count in counts.items() for i in range(count)}
    seen = set(listed)
    lost, doubled, extra = len(expected - seen), len(listed) - len(seen), len(seen - expected)
    bad = lost + doubled + extra
    note = ", ".join(f"{n} {what}" for n, what in ((lost, "lost"), (doubled, "doubled"), (extra, "unexpected")) if n)
    shutil.rmtree(sub)
    settle(d)
    return [Figure("create", p.files / max(elapsed, 1e-9), "ops/s"),
            Figure("bad_names", bad, "names", higher_is_better=False, note=note)]


# ---- tar x ---------------------------------------------------------------------------------------

def make_tarball(path: str, count: int, seed: int = 1) -> str:
    """An uncompressed tarball of `count` files of 0-16 KiB in directories of 100 files."""
    rng = random.Random(seed)
    blob = os.urandom(16 * KiB)
    now = int(time.time())
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(count):
            if i % 100 == 0:
                ti = tarfile.TarInfo(f"tree/d{i // 100:04d}")
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, now
                tar.addfile(ti)
            size = rng.randint(0, 16 * KiB)
            ti = tarfile.TarInfo(f"tree/d{i // 100:04d}/f{i:06d}")
            ti.size, ti.mode, ti.mtime = size, 0o644, now
            tar.addfile(ti, io.BytesIO(blob[:size]))
    return path


def _extract(tarball: str, into: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(["tar", "xf", tarball, "-C", into], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise OSError(f"tar exited {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}")
    return elapsed


def untar(d: str, p: Params, w: Where) -> list[Figure]:
    """`tar xf` of the tarball of tar_files small files."""
    sub = _fresh_dir(d, "tar")
    elapsed = _extract(p.tarball, sub)
    shutil.rmtree(sub)
    settle(d)
    return [Figure("time", elapsed, "s", higher_is_better=False), Figure("files", p.tar_files / elapsed, "files/s")]


def tree_entries(tar_files: int) -> int:
    """Files and directories in the tarball of make_tarball: the files, one directory per 100, `tree`."""
    return tar_files + (tar_files + 99) // 100 + 1


def rmrf(d: str, p: Params, w: Where) -> list[Figure]:
    """`rm -rf` of the tree the tarball holds (extracted and committed untimed): files+dirs per second."""
    sub = _fresh_dir(d, "rmrf")
    _extract(p.tarball, sub)
    settle(sub)
    t0 = time.perf_counter()
    r = subprocess.run(["rm", "-rf", "--", os.path.join(sub, "tree")], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise OSError(f"rm exited {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}")
    left = os.listdir(sub)
    if left:
        raise OSError(f"rm -rf left {left[0]!r} behind")
    os.rmdir(sub)
    settle(d)
    n = tree_entries(p.tar_files)
    return [Figure("time", elapsed, "s", higher_is_better=False), Figure("files", n / elapsed, "files/s")]


# ---- memory ----------------------------------------------------------------------------------------

def _status_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class RssSampler:
    """Samples VmRSS of process groups in a thread; `peak` holds each group's largest summed RSS (KiB)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.peak = dict.fromkeys(groups, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            for name, pids in self.groups.items():
                self.peak[name] = max(self.peak[name], sum(_status_kib(pid, "VmRSS") for pid in pids))
            if self._stop.wait(RSS_SAMPLE_S):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory(d: str, p: Params, w: Where) -> list[Figure]:
    """Peak RSS of the file system's processes while a size-byte file is written and read back
    (sampled VmRSS), and their lifetime peaks (VmHWM)."""
    groups = {k: v for k, v in w.pids.items() if v}
    if not groups:
        return []
    sub = _fresh_dir(d, "memory")
    path = os.path.join(sub, "stream")
    buf = os.urandom(p.block)
    with RssSampler(groups) as rss:
        write_file(path, p.size, p.block, buf)
        drop_caches()
        got = read_file(path, p.block)
    if got != p.size:
        raise OSError(f"read back {got} bytes of {p.size}")
    shutil.rmtree(sub)
    figs = []
    servers = {k: v for k, v in groups.items() if k != "client"}
    if "client" in groups:
        figs.append(Figure("client_rss", rss.peak["client"] / KiB, "MiB", higher_is_better=False))
        figs.append(Figure("client_hwm", sum(_status_kib(pid, "VmHWM") for pid in groups["client"]) / KiB, "MiB",
                           higher_is_better=False))
    if "mds" in servers:
        figs.append(Figure("mds_rss", rss.peak["mds"] / KiB, "MiB", higher_is_better=False))
    osts = [k for k in servers if k != "mds"]
    if osts:
        figs.append(Figure("oss_rss_max", max(rss.peak[k] for k in osts) / KiB, "MiB", higher_is_better=False))
    if servers:
        hwm = max(_status_kib(pid, "VmHWM") for pids in servers.values() for pid in pids)
        figs.append(Figure("server_hwm_max", hwm / KiB, "MiB", higher_is_better=False))
    return figs


# ---- before the workloads -------------------------------------------------------------------------

def warmup(d: str, p: Params, w: Where) -> list[Figure]:
    """Write and delete a size-byte file (striped over 4 where striping exists), untimed.

    On virtual disks the first write to never-used blocks can cost several times a later one,
    and each new top-level directory may get blocks of its own; this keeps that cost out of
    whichever workload would run first on the column.
    """
    sub = _fresh_dir(d, "warmup")
    if w.setstripe:
        w.setstripe(sub, 4)
    write_file(os.path.join(sub, "file"), p.size, p.block, os.urandom(p.block))
    shutil.rmtree(sub)
    return []


# ---- the list ------------------------------------------------------------------------------------

WORKLOADS: dict[str, Workload] = {
    "seq1": seq1,
    "seq4": seq4,
    "parallel": parallel,
    "rand4k": rand4k,
    "meta": meta,
    "meta20k": meta20k,
    "rounds": rounds,
    "tar": untar,
    "rmrf": rmrf,
    "shared": shared,
    "memory": memory,
}

# Workloads that need a second client mount of the same file system (Where.peer): run on the
# lustrepy columns only.
NEEDS_PEER = frozenset({"shared"})
