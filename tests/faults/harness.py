"""One fault-injection iteration, decided by its seed: a cluster, one or two mounts (with
or without the write-back cache) each running a random workload in a directory of its
own, and one daemon killed with SIGKILL at a random moment and started again:

- the MDS, after a replay barrier set at a random earlier moment (so the restart loses
  every transaction after it, as a power cut would, and the clients must replay them);
- an OSS, after a replay barrier set at a random earlier moment (its restart puts back the
  objects' bytes as they stood at the barrier, and the clients replay the writes it lost);
- a client (a mount's process; it is mounted again, its journal replays).

Seeds from DNE_SEEDS on run two MDTs, the workloads in a directory striped over both and in
one on MDT1 (files renamed and linked between stripes are operations across MDTs; there the
workloads also move directories, whose inodes live on either MDT), and kill
MDT0's or MDT1's MDS (without a barrier: those operations are synced on every MDT they touch).

For half the seeds the file system's default layout gives new files two mirrors (one on each
OST): an OSS killed then costs a writer no error, the mirror it held goes stale and is resynced
once it is back.

The workloads go on while the daemon is down and back, then stop, and the invariants are
checked through a fresh mount: every call that returned is there with the right names,
modes and link counts, and the bytes of every file whose last change was followed by an
fsync that returned (for the mounts that were not killed: the bytes of every file); no
name is listed twice; `lfsctl lfsck` across the MDT and the OSTs finds nothing (no
leaked object, no missing one, no size disagreement), nor the MDT's check once stopped. A failure names
the seed and the step, so `scripts/faults --seed N` plays it again.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.dne import root_dir
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster
from tests.support.spawn import ready
from lustrepy.ctl import query

VICTIMS = ("mds", "oss", "client")
DNE_SEEDS = 5000            # seeds from here on: two MDTs, MDT0 or MDT1 killed (or a client)
DNE_VICTIMS = ("mds", "mdt1", "client")
# a killed client's locks hold the others up until its eviction: keep that short here
CALLBACK = ("--callback-timeout", "3")
MDS_ARGS = ("--recovery-window", "30", *CALLBACK)
# Calls wait this long for a server that is down. A restart fsyncs directories, and with much
# dirty data in the host's page cache (a busy test machine) that can take tens of seconds.
WAIT = ("timeout=120",)


@dataclass(frozen=True)
class Plan:
    seed: int
    wbc: tuple[bool, ...]           # one per mount
    victim: str
    barrier_at: float               # seconds into the workload (MDS and OSS victims)
    mirrored: bool                  # new files get two mirrors
    kill_at: float
    down_for: float
    run_after: float
    dne: bool = False               # two MDTs: the workloads run in a striped and a remote directory

    @property
    def barrier(self) -> bool:
        # Operations across MDTs are synced on every MDT before they answer: a barrier that drops
        # synced transactions is a harsher fault than a kill (a power cut keeps what was synced).
        return self.victim in ("mds", "oss") and not self.dne

    def __str__(self) -> str:
        return (f"seed {self.seed}: {'two MDTs, ' if self.dne else ''}{len(self.wbc)} mounts (wbc {list(self.wbc)})"
                f"{', mirrored' if self.mirrored else ''}, kill {self.victim} at "
                f"{self.kill_at:.2f}s, down {self.down_for:.2f}s"
                + (f", barrier at {self.barrier_at:.2f}s" if self.barrier else ""))


def plan(seed: int) -> Plan:
    rng = random.Random(seed)
    dne = seed >= DNE_SEEDS
    victim = (DNE_VICTIMS if dne else VICTIMS)[rng.randrange(3)]
    mounts = 2 if victim == "client" else rng.choice((1, 2))
    kill_at = rng.uniform(0.8, 3.0)
    return Plan(seed=seed, wbc=tuple(rng.random() < 0.5 for _ in range(mounts)), victim=victim,
                barrier_at=rng.uniform(0.0, kill_at - 0.3), kill_at=kill_at, down_for=rng.uniform(0.0, 1.0),
                run_after=rng.uniform(0.5, 1.5), dne=dne,
                mirrored=random.Random(seed * 7919 + 1).random() < 0.5)   # a draw of its own: old seeds keep their plans


_OPS = ("create", "create", "write", "truncate", "rename", "unlink", "link", "mkdir", "rmdir", "chmod")


@dataclass
class Model:
    """What one workload's calls that returned made: names -> inode, inode -> (bytes, mode)."""

    names: dict[str, int] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    data: dict[int, bytearray] = field(default_factory=dict)
    mode: dict[int, int] = field(default_factory=dict)
    synced: set[int] = field(default_factory=set)       # inodes whose last change was fsync'ed
    uncertain: set[str] = field(default_factory=set)    # names an interrupted call touched
    uncertain_inos: set[int] = field(default_factory=set)
    inflight: tuple[set[str], set[int]] = field(default_factory=lambda: (set(), set()))  # the call under way
    steps: list[str] = field(default_factory=list)
    next_ino: int = 1

    def nlink(self, ino: int) -> int:
        return sum(1 for i in self.names.values() if i == ino)


class Workload(threading.Thread):
    """Random calls in `top` (its own directory), recorded in a Model as they return."""

    def __init__(self, top: Path, seed: int, *, move_dirs: bool = False) -> None:
        super().__init__(name=f"workload-{top.name}", daemon=True)
        self.top = top
        self.ops = _OPS + (("mvdir",) if move_dirs else ())
        self.rng = random.Random(seed)
        self.model = Model()
        self.stop = threading.Event()
        self.error: str | None = None       # an unexpected failure
        self.dead = False                   # its mount went away (a killed client)

    def run(self) -> None:
        if not self.top.is_dir():          # a striped or remote directory is made beforehand
            os.mkdir(self.top)
        m = self.model
        while not self.stop.is_set():
            try:
                self.step()
                m.inflight = (set(), set())
            except OSError as e:
                if not self.dead:
                    self.error = f"step {len(m.steps)} ({m.steps[-1]}): {e!r}"
                m.uncertain |= m.inflight[0]          # it may or may not have been done
                m.uncertain_inos |= m.inflight[1]
                return

    def _touch(self, *names: str) -> None:
        m = self.model
        m.inflight = (set(names), {m.names[n] for n in names if n in m.names})

    def _p(self, name: str) -> Path:
        return self.top / name

    def step(self) -> None:
        m, rng = self.model, self.rng
        files = [n for n in m.names]
        op = rng.choice(self.ops)
        if op in ("write", "truncate", "rename", "unlink", "link", "chmod") and not files:
            op = "create"
        n = f"{rng.choice(sorted(m.dirs) + [''])}f{len(m.steps)}"
        m.steps.append(op)
        if op == "create":
            data = rng.randbytes(rng.choice((0, 10, 3000, 70_000, 300_000)))
            sync = rng.random() < 0.3
            self._touch(n)
            with open(self._p(n), "wb") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            ino, m.next_ino = m.next_ino, m.next_ino + 1
            m.names[n], m.data[ino], m.mode[ino] = ino, bytearray(data), 0o644
            self._synced(ino, sync)
        elif op == "write":
            name = rng.choice(files)
            ino = m.names[name]
            off, data = rng.randrange(0, len(m.data[ino]) + 5000), rng.randbytes(rng.randrange(1, 9000))
            sync = rng.random() < 0.3
            self._touch(name)
            with open(self._p(name), "r+b") as f:
                f.seek(off)
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            buf = m.data[ino]
            if off > len(buf):
                buf.extend(bytes(off - len(buf)))
            buf[off:off + len(data)] = data
            self._synced(ino, sync)
        elif op == "truncate":
            name = rng.choice(files)
            ino, size = m.names[name], rng.randrange(0, 100_000)
            self._touch(name)
            os.truncate(self._p(name), size)
            buf = m.data[ino]
            del buf[size:]
            buf.extend(bytes(size - len(buf)))
            self._synced(ino, False)
        elif op == "rename":
            old = rng.choice(files)
            target = rng.choice(files) if rng.random() < 0.3 else n     # sometimes over another file
            self._touch(old, target)
            os.rename(self._p(old), self._p(target))
            if m.names.get(target) != m.names[old]:        # two names of one file: nothing happens
                m.names[target] = m.names.pop(old)
        elif op == "unlink":
            name = rng.choice(files)
            self._touch(name)
            os.unlink(self._p(name))
            del m.names[name]
        elif op == "link":
            name = rng.choice(files)
            self._touch(name, n)
            os.link(self._p(name), self._p(n))
            m.names[n] = m.names[name]
        elif op == "mkdir":
            self._touch(n + "/")
            os.mkdir(self._p(n))
            m.dirs.add(n + "/")
        elif op == "rmdir":
            empty = [d for d in sorted(m.dirs) if not any(k.startswith(d) for k in [*m.names, *m.dirs] if k != d)]
            if empty:
                d = rng.choice(empty)
                self._touch(d)
                os.rmdir(self._p(d.rstrip("/")))
                m.dirs.discard(d)
        elif op == "mvdir":
            self._move_dir(n)
        elif op == "chmod":
            name = rng.choice(files)
            mode = rng.choice((0o600, 0o640, 0o644, 0o755))
            self._touch(name)
            os.chmod(self._p(name), mode)
            m.mode[m.names[name]] = mode

    def _move_dir(self, n: str) -> None:
        """A directory and all below it renamed to `n` (in another directory, when the random
        one is not below it): between MDTs when their inodes are on different ones."""
        m = self.model
        movable = [d for d in sorted(m.dirs) if not n.startswith(d)]
        if not movable:
            return
        d = self.rng.choice(movable)
        new = n + "/"
        below = [k for k in [*m.names, *m.dirs] if k.startswith(d)]
        self._touch(*below, *(new + k[len(d):] for k in below))
        os.rename(self._p(d.rstrip("/")), self._p(n))
        for k in below:
            if k in m.dirs:
                m.dirs.discard(k)
                m.dirs.add(new + k[len(d):])
            else:
                m.names[new + k[len(d):]] = m.names.pop(k)

    def _synced(self, ino: int, sync: bool) -> None:
        if sync:
            self.model.synced.add(ino)
        else:
            self.model.synced.discard(ino)


def check(top: Path, m: Model, *, all_bytes: bool) -> list[str]:
    """Differences between what `top` holds and the model (empty: none)."""
    problems: list[str] = []
    seen: dict[str, os.stat_result] = {}
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            rel = os.path.relpath(os.path.join(d, n), top) + ("/" if n in dirs else "")
            seen[rel] = os.lstat(os.path.join(d, n))
        for listing in (dirs, files):
            if len(listing) != len(set(listing)):
                problems.append(f"{d}: a name listed twice")
    want = set(m.names) | m.dirs
    for rel in sorted((set(seen) ^ want) - m.uncertain):
        problems.append(f"{rel}: {'missing' if rel in want else 'not expected'}")
    for rel, ino in sorted(m.names.items()):
        if rel in m.uncertain or rel not in seen or ino in m.uncertain_inos:
            continue
        st = seen[rel]
        if st.st_mode & 0o7777 != m.mode[ino] or st.st_nlink != m.nlink(ino):
            problems.append(f"{rel}: mode {oct(st.st_mode & 0o7777)} nlink {st.st_nlink}, expected "
                            f"{oct(m.mode[ino])} and {m.nlink(ino)}")
        if all_bytes or ino in m.synced:
            got = (top / rel).read_bytes()
            want = bytes(m.data[ino])
            if got != want:
                at = next((i for i, (x, y) in enumerate(zip(got, want, strict=False)) if x != y),
                          min(len(got), len(want)))
                problems.append(f"{rel}: {len(got)} bytes (size {st.st_size}) differ from the {len(want)} "
                                f"written, from byte {at}")
    return problems


def iterate(seed: int, work: Path) -> list[str]:
    """Run one iteration; the problems found (empty: it passed)."""
    p = plan(seed)
    (work / "srv").mkdir(parents=True)
    ready()                     # the fork server restarts come from: made before any mount
    c = Cluster(work / "srv", detached=True)
    mounts: list[Mount] = []
    loads: list[Workload] = []
    problems: list[str] = []
    try:
        c.start(2, mds_args=MDS_ARGS, oss_args=CALLBACK, n_mdts=2 if p.dne else 1)
        if p.dne:                           # w0 striped over both MDTs, w1 on MDT1
            root_dir(c, b"w0", stripe_count=2)
            root_dir(c, b"w1", mdt_index=1)

        def opts(k: int) -> tuple[str, ...]:
            return ((*WAIT, "wbc", f"journal={work / f'journal{k}'}") if p.wbc[k] else (*WAIT, "nowbc"))
        for k in range(len(p.wbc)):
            mounts.append(mount(c, work / f"m{k}", *opts(k)))
        if p.mirrored:
            os.setxattr(mounts[0].path, "lustrepy.lov", b'{"stripe_size":1048576,"stripe_count":1,"mirror_count":2}')
        loads = [Workload(mounts[k].path / f"w{k}", seed * 10 + k, move_dirs=p.dne) for k in range(len(mounts))]
        t0 = time.monotonic()
        for w in loads:
            w.start()
        if p.barrier and p.victim == "mds":
            _sleep_until(t0 + p.barrier_at)
            query.replay_barrier(c.mds.address)
        elif p.barrier and p.victim == "oss":
            _sleep_until(t0 + p.barrier_at)
            query.ost_replay_barrier(c.mds.address, seed % len(c.osts))
        _sleep_until(t0 + p.kill_at)
        if p.victim == "mds":
            c.mds.stop(signal.SIGKILL)
            time.sleep(p.down_for)
            c.mds = c.mds_proc(*MDS_ARGS).start(wait=120)
        elif p.victim == "mdt1":
            c.mdts[0].stop(signal.SIGKILL)
            time.sleep(p.down_for)
            c.mdts[0] = c.mdt_proc(1, *MDS_ARGS).start(wait=120)
        elif p.victim == "oss":
            i = seed % len(c.osts)
            c.osts[i].stop(signal.SIGKILL)
            time.sleep(p.down_for)
            c.osts[i] = c.oss_proc(i, *CALLBACK).start(wait=120)
        else:
            loads[-1].dead = True
            killed = mounts[-1]
            assert killed.popen is not None
            killed.popen.send_signal(signal.SIGKILL)
            time.sleep(0.2)
            killed.abort()                              # nothing waits on the dead client
            killed.popen.wait(10)
            loads[-1].join(30)
            killed.stop()                               # the dead mount point goes
            time.sleep(p.down_for)
            mounts[-1] = mount(c, killed.path, *opts(len(mounts) - 1))     # its journal replays
        time.sleep(p.run_after)
        for w in loads:
            w.stop.set()
        for w in loads:
            w.join(120)
            if w.is_alive():
                problems.append(f"{w.name}: a call did not return within 120 s")
            if w.error:
                problems.append(f"{w.name}: {w.error}")
        fresh = mount(c, work / "check", "nowbc")
        mounts.append(fresh)
        for k, w in enumerate(loads):
            killed_client = p.victim == "client" and k == len(loads) - 1
            problems += [f"w{k}/{x}" for x in check(fresh.path / f"w{k}", w.model, all_bytes=not killed_client)]
        problems += cross_check(c)
    except Exception as e:  # a step that fails is a finding too, with its seed
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        for mt in mounts:
            mt.stop()
        try:
            c.stop()                                    # lfsck of the MDT: AssertionError names each problem
        except AssertionError as e:
            problems.append(f"lfsck: {e}")
    return [f"{p}: {x}" for x in problems]


def cross_check(c: Cluster) -> list[str]:
    """`lfsctl lfsck` across the MDT and every OST, online: each finding (orphan objects, a file's
    missing object, a size the MDT and the objects disagree on, the MDT's own invariants)."""
    r = subprocess.run([sys.executable, "-m", "lustrepy.ctl.main", "lfsck", "--mgs", c.mds.address],
                       capture_output=True, text=True, timeout=120)
    if r.returncode == 0:
        return []
    return [f"lfsctl lfsck: {ln}" for ln in (r.stdout + r.stderr).splitlines() if ln.strip()] or \
        [f"lfsctl lfsck: exit {r.returncode}"]


def _sleep_until(t: float) -> None:
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)

