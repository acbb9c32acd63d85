"""Mirrors made whole again on real servers: a stale mirror is resynced when its OSS returns, a lost
OSS's mirrors are rebuilt on other OSTs after mds.mirror.resync_delay, a file written during the copy
ends identical on every mirror, and a byte flipped on an OST's disk is read from the other mirror,
reported by the scrub and rewritten. Outside tests/client: the client's tests run a second time
with the metadata write-back cache, which these copies between servers do not depend on.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from tests.client.test_mirror import block, drop_caches, layout, lfsctl, mirror_cluster, mirror_osts, sha_of, states
from tests.support.mounts import mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(300)

MiB = 1 << 20
DOMAIN = ("rackA", "rackA", "rackB", "rackB", "rackB")


@pytest.fixture
def five(tmp_path):
    """Five OSTs on five nodes (rackA: 0, 1; rackB: 2, 3, 4), an MDS that marks a silent OST inactive
    after 2 s, one mount."""
    yield from mirror_cluster(tmp_path, DOMAIN, ("--ost-timeout", "2"), ("--heartbeat", "0.5"))


def set_param(c: Cluster, *settings: str) -> None:
    lfsctl("set-param", "--mgs", c.mds.address, *settings)


def restart(c: Cluster, i: int) -> None:
    c.osts[i] = c.oss_proc(i, "--failure-domain", DOMAIN[i], "--heartbeat", "0.5").start()


def in_sync(path: Path) -> bool:
    return set(states(path).values()) == {"in_sync"}


def verify(c: Cluster, *paths: Path) -> dict:
    out = subprocess.run(["lfsctl", "mirror", "verify", "--json", "--mgs", c.mds.address, *map(str, paths)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def write_blocks(path: Path, first: int, n: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(first, first + n):
            f.write(block(i))
            h.update(block(i))
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def test_a_stale_mirror_is_resynced_when_its_oss_returns(five):
    c, (a,), tmp = five
    f = a.path / "f"
    lfsctl("mirror", "create", "-N2", "-c", "1", str(f))
    write_blocks(f, 0, 8)
    victim = mirror_osts(f)[1][0]
    c.osts[victim].stop(signal.SIGKILL)
    want = write_blocks(f, 100, 24)             # mirror 2 misses this, and goes stale
    assert states(f)[2] == "stale"
    restart(c, victim)
    wait_for(lambda: in_sync(f), timeout=60, what="mirror 2 resynced")
    assert verify(c, f)["agree"]
    st = json.loads(lfsctl("mirror", "status", "--json", "--mgs", c.mds.address))
    assert st["copied_files"] >= 1 and st["degraded_files"] == 0
    c.osts[mirror_osts(f)[0][0]].stop(signal.SIGKILL)     # now only the resynced mirror can answer
    drop_caches()
    b = mount(c, tmp / "b")
    try:
        assert sha_of(b.path / "f") == want
    finally:
        b.stop()


def test_a_lost_osts_mirrors_are_rebuilt_elsewhere(five):
    c, (a,), _ = five
    set_param(c, "mds.mirror.resync_delay=1", "mds.mirror.resync_bandwidth=0")
    d = a.path / "m"
    d.mkdir()
    lfsctl("mirror", "create", "-N2", "-c", "1", str(d))
    sums = {f"f{k}": write_blocks(d / f"f{k}", 10 * k, 3 + k) for k in range(6)}
    lost = 2
    assert any(lost in sum(mirror_osts(d / n), []) for n in sums), "the case needs files on the lost OST"
    c.osts[lost].stop(signal.SIGKILL)

    def rebuilt() -> bool:
        return all(in_sync(d / n) and lost not in sum(mirror_osts(d / n), []) for n in sums)
    wait_for(rebuilt, timeout=90, what="every mirror off the lost OST and in sync")
    for n in sums:
        first, second = mirror_osts(d / n)
        assert (DOMAIN[first[0]] != DOMAIN[second[0]]), f"{n}: rebuilt into one domain: {first} {second}"
    assert all(r["agree"] for r in verify(c, *(d / n for n in sums)))
    drop_caches()
    for n, want in sums.items():
        assert sha_of(d / n) == want, n


def test_a_file_written_during_its_copy_ends_identical_on_both_mirrors(five):
    c, (a,), _ = five
    set_param(c, "mds.mirror.resync_bandwidth=8M")      # a copy of 48 MiB takes about 6 s
    f = a.path / "busy"
    lfsctl("mirror", "create", "-N2", "-c", "1", str(f))
    write_blocks(f, 0, 4)
    victim = mirror_osts(f)[1][0]
    c.osts[victim].stop(signal.SIGKILL)
    write_blocks(f, 200, 48)
    expect = bytearray(b"".join(block(i) for i in range(200, 248)))
    restart(c, victim)
    wait_for(lambda: states(f)[2] == "syncing", timeout=30, interval=0.05, what="the copy to begin")
    rng = random.Random(5)
    writes = 0
    with open(f, "r+b") as out:
        while states(f)[2] != "in_sync" and writes < 400:
            off = rng.randrange(0, len(expect) - 4096)
            data = os.urandom(rng.randrange(1, 4096))
            out.seek(off)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            expect[off:off + len(data)] = data
            writes += 1
    wait_for(lambda: in_sync(f), timeout=60, what="the copy to end")
    assert writes > 5, "the writes should overlap the copy"
    assert verify(c, f)["agree"]
    drop_caches()
    assert f.read_bytes() == bytes(expect)


def test_a_flipped_byte_is_read_from_the_other_mirror_reported_and_rewritten(five):
    c, (a,), tmp = five
    set_param(c, *(f"ost.{i}.scrub_interval=1" for i in range(5)), *(f"ost.{i}.scrub_rate=256" for i in range(5)))
    f = a.path / "rot"
    lfsctl("mirror", "create", "-N2", "-c", "1", str(f))
    want = write_blocks(f, 300, 4)
    ost, oid = layout(f)["mirrors"][0]["objects"][0]
    obj = next((tmp / "srv" / f"ost{ost}").rglob(str(oid)))
    drop_caches()
    with open(obj, "r+b") as raw:
        raw.seek(MiB + 123)
        byte = raw.read(1)
        raw.seek(MiB + 123)
        raw.write(bytes([byte[0] ^ 0xFF]))
    out = subprocess.run(["lfsctl", "mirror", "verify", "--mgs", c.mds.address, str(f)], capture_output=True,
                         text=True, timeout=60)
    assert (out.returncode == 1 and "mirror 1 holds bytes that fail their checksum" in out.stdout
            or states(f)[1] != "in_sync"), out.stdout + out.stderr     # (or the repair began already)
    b = mount(c, tmp / "b")                     # a fresh client: nothing cached
    try:
        assert sha_of(b.path / "rot") == want    # read correctly, whichever mirror B prefers
    finally:
        b.stop()
    wait_for(lambda: layout(f)["layout_gen"] > 0 and in_sync(f), timeout=90, what="the bad mirror rewritten")
    assert verify(c, f)["agree"]
    out = json.loads(lfsctl("scrub", "status", "--json", "--mgs", c.mds.address))
    assert sum(o["mismatches"] for o in out["osts"]) >= 1
    drop_caches()
    assert sha_of(f) == want


def test_rot_nobody_reads_is_found_by_the_scrub_and_rewritten(five):
    c, (a,), tmp = five
    f = a.path / "cold"
    lfsctl("mirror", "create", "-N2", "-c", "1", str(f))
    want = write_blocks(f, 400, 3)
    ost, oid = layout(f)["mirrors"][1]["objects"][0]
    obj = next((tmp / "srv" / f"ost{ost}" / "O").rglob(str(oid)))
    drop_caches()
    with open(obj, "r+b") as raw:
        raw.seek(2 * MiB + 5)
        byte = raw.read(1)
        raw.seek(2 * MiB + 5)
        raw.write(bytes([byte[0] ^ 0x01]))
    set_param(c, f"ost.{ost}.scrub_interval=1", f"ost.{ost}.scrub_rate=256")     # nobody reads the file

    def scrubbed() -> bool:
        out = json.loads(lfsctl("scrub", "status", "--json", "--mgs", c.mds.address))
        return any(o["index"] == ost and o["found_by_scrub"] >= 1 for o in out["osts"])
    wait_for(scrubbed, timeout=60, what="the scrub to find the flipped byte")
    wait_for(lambda: layout(f)["layout_gen"] > 0 and in_sync(f), timeout=90, what="the mirror rewritten")
    assert verify(c, f)["agree"]
    out = json.loads(lfsctl("scrub", "status", "--json", "--mgs", c.mds.address))
    assert next(o for o in out["osts"] if o["index"] == ost)["bad_count"] == 0, "the rewrite cleared the block"
    c.osts[layout(f)["mirrors"][0]["objects"][0][0]].stop(signal.SIGKILL)    # read the rewritten mirror alone
    drop_caches()
    assert sha_of(f) == want


def find(*args: str) -> list[str]:
    return sorted(lfsctl("find", *args).split())


def test_extend_an_open_file_then_split_and_find(five):
    c, (a,), tmp = five
    f = a.path / "plain"
    lfsctl("setstripe", "-c", "1", str(f))
    write_blocks(f, 500, 6)
    held = open(f, "r+b")                       # open on this client across the change of layout
    try:
        lfsctl("mirror", "extend", "-N1", "--mgs", c.mds.address, str(f))
        first, second = mirror_osts(f)
        assert in_sync(f) and first != second
        held.seek(3 * MiB)
        held.write(block(900))                  # through the old handle: both mirrors get it
        held.flush()
        os.fsync(held.fileno())
    finally:
        held.close()
    want = b"".join(block(i) for i in (500, 501, 502, 900, 504, 505))
    assert verify(c, f)["agree"]
    assert find("--mirror-count", "2", str(a.path)) == [str(f)]
    assert find("--mirror-state", "stale", str(a.path)) == []
    assert find("--mirror-state", "^stale", "--type", "f", str(a.path)) == [str(f)]
    lfsctl("mirror", "extend", "-N1", "--mgs", c.mds.address, str(f))           # a third mirror
    os.chmod(f, 0o640)
    kept = layout(f)["mirrors"][0]["objects"]
    lfsctl("mirror", "split", "--mirror-id", "1", "--mgs", c.mds.address, str(f))      # kept as a file
    split = a.path / "plain.mirror~1"
    assert [m["mirror_id"] for m in layout(f)["mirrors"]] == [2, 3]
    assert layout(split)["objects"] == kept and "mirrors" not in layout(split)
    st = os.stat(split)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_size) == (0o640, os.stat(f).st_uid, len(want))
    assert split.read_bytes() == want
    gone_ost, gone_oid = layout(f)["mirrors"][0]["objects"][0]
    lfsctl("mirror", "split", "--mirror-id", "2", "-d", "--mgs", c.mds.address, str(f))
    assert [m["mirror_id"] for m in layout(f)["mirrors"]] == [3]
    assert find("--mirror-count", "1", str(a.path)) == [str(f)]
    out = subprocess.run(["lfsctl", "mirror", "split", "--mirror-id", "3", "-d", "--mgs", c.mds.address, str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "last in-sync mirror" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(["lfsctl", "mirror", "split", "--mirror-id", "3", "--mgs", c.mds.address, str(split)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "not a mirrored file" in out.stderr
    wait_for(lambda: not list((tmp / "srv" / f"ost{gone_ost}" / "O").rglob(str(gone_oid))), timeout=30,
             what="the split mirror's object destroyed")
    drop_caches()
    assert f.read_bytes() == want and split.read_bytes() == want


@pytest.mark.parametrize("victim", ["mds", "target oss"])
def test_a_copy_cut_by_a_killed_server_is_done_again(five, victim):
    """kill -9 of the MDS, or of the OSS receiving the copy, while a mirror is being copied: once the
    server is back the copy starts over, and the mirrors end identical."""
    c, (a,), _ = five
    set_param(c, "mds.mirror.resync_bandwidth=8M")
    f = a.path / "cut"
    lfsctl("mirror", "create", "-N2", "-c", "1", str(f))
    write_blocks(f, 0, 2)
    target = mirror_osts(f)[1][0]
    c.osts[target].stop(signal.SIGKILL)
    want = write_blocks(f, 700, 40)
    restart(c, target)
    wait_for(lambda: states(f)[2] == "syncing", timeout=30, interval=0.05, what="the copy to begin")
    if victim == "mds":
        c.mds.stop(signal.SIGKILL)
        c.mds = c.mds_proc("--ost-timeout", "2").start()
    else:
        c.osts[target].stop(signal.SIGKILL)
        wait_for(lambda: states(f)[2] == "stale", timeout=60, what="the copy called off")
        restart(c, target)
    wait_for(lambda: in_sync(f), timeout=120, what="the copy done again")
    assert verify(c, f)["agree"]
    drop_caches()
    assert sha_of(f) == want
