"""Mirrored files on real mounts: placement over nodes and failure domains, writes that go on
when one mirror's OSS is killed (the mirror is marked stale), reads that fail over, and other
clients that stop reading a mirror once it is stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mounts import Mount, mount
from tests.support.spawn import ready
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(300)

MiB = 1 << 20


def lfsctl(*args: str) -> str:
    out = subprocess.run(["lfsctl", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"lfsctl {' '.join(args)}: {out.stderr}"
    return out.stdout


def layout(path: Path) -> dict:
    return json.loads(lfsctl("getstripe", "--json", str(path)))


def mirror_osts(path: Path) -> list[list[int]]:
    return [[o[0] for o in m["objects"]] for m in layout(path)["mirrors"]]


def states(path: Path) -> dict[int, str]:
    return {m["mirror_id"]: m["state"] for m in layout(path)["mirrors"]}


def block(i: int) -> bytes:
    """1 MiB that differs from every other block number."""
    seed = hashlib.sha256(i.to_bytes(8, "little")).digest()
    return seed * (MiB // len(seed))


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def sha_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def mirror_cluster(tmp_path: Path, domains: tuple[str, ...], mds_args: tuple[str, ...] = (),
                   oss_args: tuple[str, ...] = ()) -> Iterator[tuple[Cluster, list[Mount], Path]]:
    """An MDS, one OSS per domain given (each its own node), one mount; all stopped at the end."""
    (tmp_path / "srv").mkdir()
    ready()                 # servers restarted while files are open start from the fork server
    c = Cluster(tmp_path / "srv", detached=True)
    mounts: list[Mount] = []
    try:
        c.mds = c.mds_proc(*mds_args).start()
        for i, domain in enumerate(domains):
            c.osts.append(c.oss_proc(i, "--failure-domain", domain, *oss_args).start())
        mounts.append(mount(c, tmp_path / "a"))
        yield c, mounts, tmp_path
    finally:
        for m in mounts:
            m.stop()
        c.stop()


@pytest.fixture
def four(tmp_path):
    """Four OSTs on four nodes, two failure domains (OSTs 0, 1: rackA; 2, 3: rackB), one mount."""
    yield from mirror_cluster(tmp_path, ("rackA", "rackA", "rackB", "rackB"))


def test_mirrors_go_to_different_nodes_and_domains(four):
    c, (a,), _ = four
    out = json.loads(lfsctl("osts", "--json", "--mgs", c.mds.address))
    assert [o["failure_domain"] for o in out["osts"]] == ["rackA", "rackA", "rackB", "rackB"]
    assert [o["node"] for o in out["osts"]] == ["node0", "node1", "node2", "node3"]
    d = a.path / "m"
    d.mkdir()
    lfsctl("mirror", "create", "-N2", "-c", "1", str(d))
    assert layout(d)["mirror_count"] == 2
    for k in range(8):
        f = d / f"f{k}"
        f.write_bytes(block(k)[:1000 + k])
        first, second = mirror_osts(f)
        assert len(first) == len(second) == 1
        assert (first[0] < 2) != (second[0] < 2), f"{f}: both mirrors in one domain: {first} {second}"
        assert f.read_bytes() == block(k)[:1000 + k]
    wide = d / "wide"
    lfsctl("mirror", "create", "-N2", "-c", "2", str(wide))
    first, second = mirror_osts(wide)
    assert sorted(first) in ([0, 1], [2, 3]) and sorted(first + second) == [0, 1, 2, 3]
    assert states(wide) == {1: "in_sync", 2: "in_sync"}


def test_bad_mirror_counts_are_one_line_errors(four):
    _, (a,), _ = four
    for bad in ("1", "9", "x"):
        out = subprocess.run(["lfsctl", "mirror", "create", "-N", bad, str(a.path / "n")], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 2 and "bad mirror count" in out.stderr and "Traceback" not in out.stderr
    assert not (a.path / "n").exists()


def _kill_during(c: Cluster, index: int, written: list[int], at: int) -> threading.Thread:
    def run() -> None:
        wait_for(lambda: written[0] >= at, timeout=120, interval=0.01, what=f"{at} blocks written")
        c.osts[index].stop(signal.SIGKILL)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_write_goes_on_when_one_mirrors_oss_is_killed(four):
    c, (a,), tmp = four
    f = a.path / "big"
    lfsctl("mirror", "create", "-N2", "-c", "1", str(f))
    victim = mirror_osts(f)[1][0]
    n = 1024                                    # 1 GiB
    written = [0]
    killer = _kill_during(c, victim, written, n // 3)
    h = hashlib.sha256()
    with open(f, "wb") as out:                  # no error may reach the writer
        for i in range(n):
            b = block(i)
            out.write(b)
            h.update(b)
            written[0] = i + 1
        out.flush()
        os.fsync(out.fileno())
    killer.join(10)
    assert states(f) == {1: "in_sync", 2: "stale"}
    assert layout(f)["layout_gen"] >= 1
    assert sha_of(f) == h.hexdigest()
    drop_caches()
    b = mount(c, tmp / "b")
    try:
        assert sha_of(b.path / "big") == h.hexdigest()
        assert os.stat(b.path / "big").st_size == n * MiB
    finally:
        b.stop()


def test_reads_fail_over_when_a_mirrors_oss_is_killed(four):
    c, (a,), tmp = four
    d = a.path / "m"
    d.mkdir()
    lfsctl("mirror", "create", "-N2", "-c", "2", str(d))
    sums = {}
    for k in range(4):
        with open(d / f"f{k}", "wb") as out:
            h = hashlib.sha256()
            for i in range(16):
                out.write(block(100 * k + i))
                h.update(block(100 * k + i))
        sums[k] = h.hexdigest()
    victim = mirror_osts(d / "f0")[0][0]
    drop_caches()
    b = mount(c, tmp / "b")
    try:
        with open(b.path / "m" / "f0", "rb") as src:
            head = src.read(3 * MiB)            # reading has begun, from whichever mirror
            c.osts[victim].stop(signal.SIGKILL)
            rest = src.read()
        assert hashlib.sha256(head + rest).hexdigest() == sums[0]
        for k in range(4):
            assert sha_of(b.path / "m" / f"f{k}") == sums[k], k
            assert set(states(b.path / "m" / f"f{k}").values()) == {"in_sync"}, "reads never mark mirrors stale"
    finally:
        b.stop()


def test_another_client_stops_reading_a_mirror_once_it_is_stale(four):
    """B has read every file; A rewrites them while rackB's OSSes are down (so each file's mirror
    there goes stale), they come back with the old bytes: B must read the new ones, whichever
    mirror it preferred."""
    c, (a,), tmp = four
    d = a.path / "m"
    d.mkdir()
    lfsctl("mirror", "create", "-N2", "-c", "1", str(d))
    names = [f"f{k}" for k in range(8)]
    for k, name in enumerate(names):
        (d / name).write_bytes(block(k) * 2)
    victims = (2, 3)
    in_b = {name: 1 + [m[0] in victims for m in mirror_osts(d / name)].index(True) for name in names}
    b = mount(c, tmp / "b")
    held = {name: open(b.path / "m" / name, "rb") for name in names}     # open all along, on B
    try:
        for k, name in enumerate(names):
            assert held[name].read() == block(k) * 2
        for v in victims:
            c.osts[v].stop(signal.SIGKILL)
        for k, name in enumerate(names):
            with open(d / name, "r+b") as out:
                out.write(block(50 + k) * 2)
                os.fsync(out.fileno())
            # stale; or syncing for a moment: the MDS sees the killed OSTs active until their
            # heartbeats are late, tries a copy, and on its failure leaves the mirror stale again
            assert states(d / name)[in_b[name]] in ("stale", "syncing")
        for v in victims:
            c.osts[v] = c.oss_proc(v, "--failure-domain", "rackA" if v < 2 else "rackB").start()
        for k, name in enumerate(names):
            held[name].seek(0)
            assert held[name].read() == block(50 + k) * 2, name
            assert (b.path / "m" / name).read_bytes() == block(50 + k) * 2, name
    finally:
        for f in held.values():
            f.close()
        b.stop()
