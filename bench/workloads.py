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
Each timed step also yields the CPU the file system's processes and the
workload itself used during it (cost.Meter), as figures with a step and a role.
"""

from __future__ import annotations

import contextlib
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

import cost

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
    step: str = ""           # a CPU cost figure: the key of the figure whose step it measured
    role: str = ""           # a CPU cost figure: bench, client, mds or oss (cost.ROLES)


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
    bigdir_files: int = 1_000_000      # entries of the `bigdir` directory
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Where:
    """What a workload knows about the file system it runs on."""

    name: str
    setstripe: Callable[[str, int], None] | None = None      # (directory, stripe_count); None: not striped
    pids: dict[str, list[int]] = field(default_factory=dict)  # process group name -> pids, for memory
    peer: str = ""            # the same directory through a second client mount of the file system ("shared")
    plain: str = ""           # on the write-back cache column: its directory through the plain mount ("bigdir")
    mirror: Callable[[str, int], None] | None = None    # (directory, mirror count); None: no mirrored layouts


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


def costs(m: cost.Meter, suffix: str = "") -> list[Figure]:
    """What a Meter measured, as figures (key STEP.cpu.ROLE, lower is better); `suffix` is added to
    each step's name."""
    return [Figure(f"{c.step}{suffix}.cpu.{c.role}", c.value, c.unit, higher_is_better=False,
                   step=c.step + suffix, role=c.role) for c in m.costs]


# ---- sequential ------------------------------------------------------------------------------

def _sequential(d: str, p: Params, w: Where, stripes: int) -> list[Figure]:
    sub = _fresh_dir(d, f"seq{stripes}")
    if w.setstripe:
        w.setstripe(sub, stripes)
    path = os.path.join(sub, "big")
    buf = os.urandom(p.block)
    m = cost.Meter(w.pids)
    wt = m.timed("write", lambda: write_file(path, p.size, p.block, buf), nbytes=p.size)
    cold = drop_caches()
    got = 0

    def rd() -> None:
        nonlocal got
        got = read_file(path, p.block)

    rt = m.timed("read", rd, nbytes=p.size)
    if got != p.size:
        raise OSError(f"read back {got} bytes of {p.size}")
    shutil.rmtree(sub)
    return [Figure("write", mib_s(p.size, wt), "MiB/s"),
            Figure("read", mib_s(p.size, rt), "MiB/s", note="" if cold else "warm"), *costs(m)]


def _seq_pass(d: str, p: Params, w: Where, name: str, mirrors: int) -> tuple[float, float, cost.Meter]:
    """One sequential write and cold read of p.size in a fresh directory whose new files get
    `mirrors` mirrors (where the file system has mirrored layouts); MiB/s of each."""
    sub = _fresh_dir(d, name)
    if w.setstripe:
        w.setstripe(sub, 1)
    if w.mirror and mirrors > 1:
        w.mirror(sub, mirrors)
    path = os.path.join(sub, "big")
    buf = os.urandom(p.block)
    m = cost.Meter(w.pids)
    wt = m.timed("write", lambda: write_file(path, p.size, p.block, buf), nbytes=p.size)
    drop_caches()
    got = [0]
    rt = m.timed("read", lambda: got.__setitem__(0, read_file(path, p.block)), nbytes=p.size)
    if got[0] != p.size:
        raise OSError(f"read back {got[0]} bytes of {p.size}")
    shutil.rmtree(sub)
    return mib_s(p.size, wt), mib_s(p.size, rt), m


def mirror2(d: str, p: Params, w: Where) -> list[Figure]:
    """A file with 2 mirrors against one without, in the same run: sequential write and cold read
    (stripe 1 each), and the ratios. Where there are no mirrored layouts, both runs are plain."""
    w1, r1, _ = _seq_pass(d, p, w, "mirror1", 1)
    w2, r2, m = _seq_pass(d, p, w, "mirror2", 2)
    return [Figure("write", w2, "MiB/s"), Figure("read", r2, "MiB/s"), Figure("write_1", w1, "MiB/s"),
            Figure("read_1", r1, "MiB/s"), Figure("write_vs_1", w2 / max(w1, 1e-9), "x"),
            Figure("read_vs_1", r2 / max(r1, 1e-9), "x"), *costs(m)]


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
    m = cost.Meter(w.pids)
    try:
        go.wait(timeout=60)
        with m.step("write", nbytes=each * p.writers) as clock:     # the writers' CPU: reaped by join
            for pr in procs:
                pr.join()
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.kill()
            pr.join()
    bad = [pr.exitcode for pr in procs if pr.exitcode != 0]
    if bad:
        raise OSError(f"{len(bad)} of {p.writers} writers failed (exit {bad[0]})")
    shutil.rmtree(sub)
    return [Figure("write", mib_s(each * p.writers, clock.seconds), "MiB/s"), *costs(m)]


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

    m = cost.Meter(w.pids)
    wt = m.timed("write", writes, ops=p.rand_ops)
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

    rt = m.timed("read", reads, ops=p.rand_ops)
    shutil.rmtree(sub)
    return [Figure("write", p.rand_ops / wt, "IOPS"),
            Figure("read", p.rand_ops / rt, "IOPS", note="" if cold else "warm"), *costs(m)]


# ---- metadata ------------------------------------------------------------------------------------

def _each(fn: Callable[[str], object], paths: list[str]) -> Callable[[], None]:
    """A step that calls fn on every path, in order."""
    def run() -> None:
        for path in paths:
            fn(path)
    return run


def _create(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def _file_steps(names: list[str]) -> dict[str, Callable[[], None]]:
    """The metadata steps on `names`: create them empty (O_EXCL), stat them, unlink them."""
    return {"create": _each(_create, names), "stat": _each(os.stat, names), "unlink": _each(os.unlink, names)}


def _meta(d: str, name: str, count: int, w: Where) -> list[Figure]:
    sub = _fresh_dir(d, name)
    m = cost.Meter(w.pids)
    rates = [Figure(k, count / m.timed(k, fn, ops=count), "ops/s")
             for k, fn in _file_steps([os.path.join(sub, f"f{i:07d}") for i in range(count)]).items()]
    with m.step("settle", ops=count):           # untimed: rmdir and the final directory fsync, per file
        os.rmdir(sub)
        settle(d)
    return rates + costs(m)


def meta(d: str, p: Params, w: Where) -> list[Figure]:
    """Create `files` empty files in one directory, stat them all (second pass), unlink them all."""
    return _meta(d, "meta", p.files, w)


def meta20k(d: str, p: Params, w: Where) -> list[Figure]:
    """The same with `meta20k_files` (20,000) files, in a directory tree made fresh for it."""
    return _meta(d, "meta20k", p.meta20k_files, w)


def _after_settle(d: str, name: str, files: int, m: cost.Meter, drop: bool) -> dict[str, float]:
    """Create `files` empty files in a fresh directory and settle it (every record at the MDS);
    with `drop`, sync and drop the kernel's caches; then time unlinking them and making
    `files` directories there. Returns the rates."""
    sub = _fresh_dir(d, name)
    names = [os.path.join(sub, f"f{i:07d}") for i in range(files)]
    dirs = [os.path.join(sub, f"d{i:07d}") for i in range(files)]
    _each(_create, names)()
    settle(sub)
    if drop and not drop_caches():
        raise OSError("dropping the kernel's caches needs root")
    tag = "_dropped" if drop else ""
    rates = {f"unlink{tag}": files / m.timed(f"unlink{tag}", _each(os.unlink, names), ops=files),
             f"mkdir{tag}": files / m.timed(f"mkdir{tag}", _each(os.mkdir, dirs), ops=files)}
    shutil.rmtree(sub)
    settle(d)
    return rates


def dropped(d: str, p: Params, w: Where) -> list[Figure]:
    """Unlink `files` files and make as many directories where they were, right after the
    files were made and settled, and again after a settle and a cache drop (`sync; echo 3 >
    drop_caches`): on a write-back cache mount the directory must stay as fast (the ratios)."""
    m = cost.Meter(w.pids)
    warm = _after_settle(d, "warm", p.files, m, drop=False)
    cold = _after_settle(d, "dropped", p.files, m, drop=True)
    figs = [Figure(k, v, "ops/s") for k, v in (warm | cold).items()]
    figs += [Figure(f"{k}_kept", cold[f"{k}_dropped"] / warm[k], "x") for k in ("unlink", "mkdir")]
    return figs + costs(m)


def _one_round(sub: str, files: int, m: cost.Meter) -> dict[str, float]:
    """One round of `rounds` in `sub`, each step measured by `m`: the rate of each step."""
    names = [os.path.join(sub, f"f{i:07d}") for i in range(files)]
    dirs = [os.path.join(sub, f"d{i:06d}") for i in range(max(files // 4, 1))]
    steps = {k: (fn, len(names)) for k, fn in _file_steps(names).items()} | {
        "mkdir": (_each(os.mkdir, dirs), len(dirs)), "rmdir": (_each(os.rmdir, dirs), len(dirs))}
    return {k: n / m.timed(k, fn, ops=n) for k, (fn, n) in steps.items()}


def rounds(d: str, p: Params, w: Where) -> list[Figure]:
    """`rounds` rounds of the same work, each in a directory made fresh for it: create `files`
    empty files, stat them, unlink them, mkdir and rmdir `files`/4 directories. The rates of the
    first and the last round, the last against the first, and the CPU cost of each step of the
    first and the last round: what stays behind after the work is done must not slow the next
    round."""
    per: list[dict[str, float]] = []
    meters: list[cost.Meter] = []
    for r in range(p.rounds):
        sub = _fresh_dir(d, f"round{r}")
        meters.append(cost.Meter(w.pids))
        per.append(_one_round(sub, p.files, meters[-1]))
        os.rmdir(sub)
        settle(d)
    first, last = per[0], per[-1]
    figs = []
    for k in ("create", "stat", "unlink", "mkdir", "rmdir"):
        figs += [Figure(f"{k}_first", first[k], "ops/s"), Figure(f"{k}_last", last[k], "ops/s"),
                 Figure(f"{k}_last/first", last[k] / first[k], "x")]
    return figs + costs(meters[0], "_first") + costs(meters[-1], "_last")


# ---- a directory of a million entries -------------------------------------------------------------

def _probe(parent: str, tag: str, files: int, m: cost.Meter) -> dict[str, float]:
    """Create `files` files in `parent`, settle, drop the caches, stat them, unlink them: the rates."""
    names = [os.path.join(parent, f"p{i:07d}") for i in range(files)]
    rates = {"create": files / m.timed(f"create_{tag}", _each(_create, names), ops=files)}
    settle(parent)
    drop_caches()
    rates["stat"] = files / m.timed(f"stat_{tag}", _each(os.stat, names), ops=files)
    rates["unlink"] = files / m.timed(f"unlink_{tag}", _each(os.unlink, names), ops=files)
    settle(parent)
    return rates


def bigdir(d: str, p: Params, w: Where) -> list[Figure]:
    """Fill one directory with `bigdir_files` empty files (on a write-back cache mount: under its
    grant, then settled at the MDS); then `files` creates, cold stats and unlinks there and in an
    empty directory, through this mount (`here`: under the grant) and then through the plain
    mount of the same file system (`plain`: server side; its first request calls the grant
    back). The rates and, for each, big / empty."""
    big = _fresh_dir(d, "bigdir")
    m = cost.Meter(w.pids)
    n = p.bigdir_files
    figs = [Figure("fill", n / m.timed("fill", _each(_create, [os.path.join(big, f"e{i:07d}") for i in range(n)]),
                                       ops=n), "ops/s")]
    with m.step("fill_settle", ops=n):
        settle(big)
    for who, root in (("here", d), ("plain", w.plain)):
        if not root:
            continue
        empty = _fresh_dir(root, f"bigdir-empty-{who}")
        small = _probe(empty, f"empty_{who}", p.files, m)
        large = _probe(os.path.join(root, "bigdir"), f"big_{who}", p.files, m)
        os.rmdir(empty)
        for k in ("create", "stat", "unlink"):
            figs += [Figure(f"{k}_{who}_empty", small[k], "ops/s"), Figure(f"{k}_{who}_big", large[k], "ops/s"),
                     Figure(f"{k}_{who}_kept", large[k] / small[k], "x")]
    with m.step("rmrf", ops=n):
        shutil.rmtree(big)
        settle(d)
    return figs + costs(m)


# ---- two clients, one directory --------------------------------------------------------------------

def _shared_client(sub: str, prefix: str, count: int, go: Any, conn: Any) -> None:
    """One client's part of `shared`: create its files, report when it finished, then commit them."""
    try:
        names = [os.path.join(sub, f"{prefix}{i:07d}") for i in range(count)]
        go.wait(timeout=60)
        _each(_create, names)()
        end = time.monotonic()
        settle(sub)
        conn.send(("ok", end))
    except BaseException as e:  # noqa: BLE001 - reported to the parent in one line
        text = str(e).strip().splitlines()
        conn.send(("error", f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")))
    finally:
        conn.close()


def _reap(procs: list[Any], conns: list[Any]) -> None:
    """Wait for the client processes of `shared` (killing one that does not end), close the pipes."""
    for pr in procs:
        if pr.is_alive():
            pr.join(5)
        if pr.is_alive():
            pr.kill()
        pr.join()
    for c in conns:
        c.close()


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
    m = cost.Meter(w.pids)
    # CPU until both client processes are reaped: their final directory fsync included
    with m.step("create", ops=p.files), contextlib.ExitStack() as cleanup:
        cleanup.callback(_reap, procs, conns)
        go.wait(timeout=60)
        t0 = time.monotonic()
        answers = []
        for c in conns:
            try:
                answers.append(c.recv())
            except EOFError:
                answers.append(("error", "the client process died"))
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
            Figure("bad_names", bad, "names", higher_is_better=False, note=note), *costs(m)]


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


def _run_tool(argv: list[str]) -> None:
    """Run a program (tar, rm); its last line of stderr in the error when it fails."""
    r = subprocess.run(argv, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise OSError(f"{argv[0]} exited {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}")


def untar(d: str, p: Params, w: Where) -> list[Figure]:
    """`tar xf` of the tarball of tar_files small files."""
    sub = _fresh_dir(d, "tar")
    m = cost.Meter(w.pids)
    elapsed = m.timed("files", lambda: _run_tool(["tar", "xf", p.tarball, "-C", sub]), ops=p.tar_files)
    shutil.rmtree(sub)
    settle(d)
    return [Figure("time", elapsed, "s", higher_is_better=False), Figure("files", p.tar_files / elapsed, "files/s"),
            *costs(m)]


def tree_entries(tar_files: int) -> int:
    """Files and directories in the tarball of make_tarball: the files, one directory per 100, `tree`."""
    return tar_files + (tar_files + 99) // 100 + 1


def rmrf(d: str, p: Params, w: Where) -> list[Figure]:
    """`rm -rf` of the tree the tarball holds (extracted and committed untimed): files+dirs per second."""
    sub = _fresh_dir(d, "rmrf")
    _run_tool(["tar", "xf", p.tarball, "-C", sub])
    settle(sub)
    n = tree_entries(p.tar_files)
    m = cost.Meter(w.pids)
    elapsed = m.timed("files", lambda: _run_tool(["rm", "-rf", "--", os.path.join(sub, "tree")]), ops=n)
    left = os.listdir(sub)
    if left:
        raise OSError(f"rm -rf left {left[0]!r} behind")
    os.rmdir(sub)
    settle(d)
    return [Figure("time", elapsed, "s", higher_is_better=False), Figure("files", n / elapsed, "files/s"),
            *costs(m)]


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
    servers = {k: v for k, v in groups.items() if k not in ("client", "peer")}
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
    "mirror": mirror2,
    "parallel": parallel,
    "rand4k": rand4k,
    "meta": meta,
    "meta20k": meta20k,
    "dropped": dropped,
    "rounds": rounds,
    "tar": untar,
    "rmrf": rmrf,
    "shared": shared,
    "memory": memory,
    "bigdir": bigdir,
}

# Run only when named (--only): a directory of a million entries takes a quarter of an hour to fill.
ON_REQUEST = frozenset({"bigdir"})

# Workloads that need a second client mount of the same file system (Where.peer): run on the
# lustrepy columns only.
NEEDS_PEER = frozenset({"shared"})
# Workloads that run on the write-back cache column only.
WBC_ONLY = frozenset({"bigdir"})
