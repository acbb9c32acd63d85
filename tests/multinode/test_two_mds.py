"""Two MDS hosts: MDT0 on host `mds`, MDT1 on host `mds1`, each at its own address.

A directory made on MDT1 from a client host (`lfsctl mkdir -i 1`) is one directory for
both client hosts: files written into it on one are read back, the same bytes, on the
other, its entries live in MDT1's database, and `lfsctl getdirstripe` names MDT 1. With
MDT1's host cut off, the root (MDT0) keeps working from both clients while an operation
in the remote directory fails with an error within the mount's bound (never a hang); once
the link is back the remote directory works again with nothing lost.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.multinode.conftest import FSNAME, N_MDTS, NetCluster
from tests.multinode.test_netns_cluster import FAIL_BOUND, fails_fast, sh, sha
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(300)

# MDT0 marks an MDT inactive after some seconds without its heartbeats (every 1 s).
MDT_STATE_BOUND = 30.0


def getdirstripe(netcluster: NetCluster, path: Path, on: str) -> dict:
    """`lfsctl getdirstripe --json PATH` run on client host `on`."""
    r = netcluster.lfsctl("getdirstripe", "--json", str(path), on=on)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def mkdir_on(netcluster: NetCluster, index: int, path: Path, on: str = "c1") -> None:
    """`lfsctl mkdir -i INDEX PATH` run on client host `on`: it says nothing and succeeds."""
    r = netcluster.lfsctl("mkdir", "-i", str(index), str(path), on=on)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr


def dentry_names(netcluster: NetCluster, index: int) -> set[bytes]:
    """Every name in MDT `index`'s database (read only, beside the running MDS)."""
    d = netcluster.root / ("mds" if index == 0 else f"mdt{index}") / "mdt"
    db = sqlite3.connect(f"file:{d / 'mdt.db'}?mode=ro", uri=True, timeout=10)
    try:
        return {r[0] for r in db.execute("SELECT name FROM dentries")}
    finally:
        db.close()


def test_a_directory_on_mdt1_is_one_directory_for_both_client_hosts(netcluster: NetCluster) -> None:
    """A remote directory made on c1 is seen on c2 as living on MDT 1; files written into it
    from one host read back the same from the other, both hosts list it the same, and files of
    the root (MDT0) and of the remote directory (MDT1) work from both hosts."""
    a, b = (m.path for m in netcluster.mounts)
    assert netcluster.mdt_states() == dict.fromkeys(range(N_MDTS), "active")
    df = netcluster.query("df")
    assert df["fsname"] == FSNAME
    assert sorted(t["uuid"] for t in df["targets"] if t["type"] == "MDT") == [
        f"{FSNAME}-MDT0000_UUID", f"{FSNAME}-MDT0001_UUID"]
    mds = netcluster.query("mds", netcluster.mdts[1].address)     # MDT1 answers at its own host
    assert mds["address"] == netcluster.mdts[1].address
    assert mds["address"].startswith(netcluster.lan.hosts["mds1"].addr + ":")

    mkdir_on(netcluster, 1, a / "far", on="c1")
    assert "far" in os.listdir(b)
    for on, mnt in (("c1", a), ("c2", b)):
        assert getdirstripe(netcluster, mnt / "far", on)["lmv_stripe_offset"] == 1
        assert getdirstripe(netcluster, mnt, on)["lmv_stripe_offset"] == 0
    r = netcluster.lfsctl("getdirstripe", str(b / "far"), on="c2")
    assert r.returncode == 0 and r.stdout.strip() == "lmv_stripe_count: 0 lmv_stripe_offset: 1 lmv_hash_type: none"

    # c1 writes into the remote directory, c2 reads the same bytes and lists the same names
    names = [f"f{k}" for k in range(5)]
    for k, name in enumerate(names):
        sh(f"dd if=/dev/urandom of=far/{name} bs=64K count={1 + 7 * k} conv=fsync status=none", cwd=a)
    sh("mkdir -p far/sub/deeper && echo deep > far/sub/deeper/leaf && : > far/empty", cwd=a)
    sums = {n: sha(a / "far" / n) for n in names}
    assert {n: sha(b / "far" / n) for n in names} == sums
    assert sh("ls far", cwd=b).split() == sorted([*names, "empty", "sub"])
    listing = "ls -la far | awk 'NR > 1 {print $1, $5, $NF}'"
    assert sh(listing, cwd=b) == sh(listing, cwd=a)
    assert sh("cat far/sub/deeper/leaf", cwd=b) == "deep\n"
    assert getdirstripe(netcluster, b / "far" / "sub", "c2")["lmv_stripe_offset"] == 1

    # the names made in the remote directory are MDT1's; only "far" itself is MDT0's
    on1, on0 = dentry_names(netcluster, 1), dentry_names(netcluster, 0)
    assert {*(n.encode() for n in names), b"sub", b"deeper", b"leaf"} <= on1
    assert b"far" in on0 and not {b"f0", b"sub", b"leaf"} & on0

    # both directions, both MDTs: c2 writes into the root and into far, c1 reads; and back
    for where in ("top", "far/from_b"):
        sh(f"head -c 300001 /dev/urandom > {where}", cwd=b)
        assert sha(a / where) == sha(b / where)
    sh("head -c 70000 /dev/urandom >> far/f0 && mv far/f1 far/sub/f1 && rm far/f2", cwd=b)
    assert sha(a / "far" / "f0") == sha(b / "far" / "f0") != sums["f0"]
    assert sha(a / "far" / "sub" / "f1") == sums["f1"]
    assert sorted(os.listdir(a / "far")) == sorted(["f0", "f3", "f4", "empty", "sub", "from_b"])
    assert {"far", "top"} <= set(os.listdir(a)) and sorted(os.listdir(a)) == sorted(os.listdir(b))
    sh("rm -rf far top", cwd=a)
    assert not {"far", "top"} & set(os.listdir(b))


def test_mdt1_host_cut_off_fails_only_its_directory_and_works_once_back(netcluster: NetCluster) -> None:
    """MDT1's host link pulled: the root (MDT0) works from both clients, an operation in the
    remote directory fails with an error within the mount's bound on both, and once the link
    is back the remote directory works again from both with its files intact."""
    a, b = (m.path for m in netcluster.mounts)
    mkdir_on(netcluster, 1, b / "cut", on="c2")
    (a / "home").mkdir()
    sh("dd if=/dev/urandom of=cut/kept bs=64K count=8 conv=fsync status=none", cwd=a)
    sh("dd if=/dev/urandom of=home/kept bs=64K count=8 conv=fsync status=none", cwd=a)
    sums = {p: sha(a / p) for p in ("cut/kept", "home/kept")}
    assert {p: sha(b / p) for p in sums} == sums        # both clients have talked to both MDTs
    assert getdirstripe(netcluster, b / "cut", "c2")["lmv_stripe_offset"] == 1

    host = netcluster.lan.hosts["mds1"]
    host.link(False)
    try:
        cut = time.monotonic()
        took = [fails_fast("touch cut/new_b", cwd=b), fails_fast("mkdir cut/new_a", cwd=a)]
        print("operations in the remote directory failed after", "; ".join(took))
        # the root, on MDT0, serves both clients meanwhile
        sh("head -c 200000 /dev/urandom > home/during && mkdir home/sub && mv home/during home/sub/moved", cwd=b)
        assert sha(a / "home" / "sub" / "moved") == sha(b / "home" / "sub" / "moved")
        sh("printf 'a\\n' > home/log", cwd=a)
        sh("printf 'b\\n' >> home/log", cwd=b)
        assert (a / "home" / "log").read_text() == "a\nb\n"
        assert sha(b / "home" / "kept") == sums["home/kept"]
        assert {"cut", "home"} <= set(os.listdir(a)) and sorted(os.listdir(a)) == sorted(os.listdir(b))
        assert sorted(os.listdir(b / "home")) == ["kept", "log", "sub"]
        wait_for(lambda: netcluster.mdt_states()[1] == "inactive", timeout=MDT_STATE_BOUND,
                 what="MDT1 inactive at MDT0")
        print(f"MDT1 inactive {time.monotonic() - cut:.1f}s after the cut")
        assert netcluster.mdt_states()[0] == "active"
        print("and with MDT1 inactive:", fails_fast("ls cut/new_a", cwd=b))
    finally:
        host.link(True)
    back = time.monotonic()
    wait_for(lambda: netcluster.mdt_states()[1] == "active", timeout=MDT_STATE_BOUND, what="MDT1 active again")

    def works(mnt: Path, name: str) -> bool:
        try:
            (mnt / "cut" / name).write_bytes(name.encode() * 1000)
        except OSError as e:
            print(f"{name}: {e}")
            return False
        return True
    wait_for(lambda: works(b, "after_b"), timeout=3 * FAIL_BOUND, interval=1.0, what="c2 writing in cut again")
    wait_for(lambda: works(a, "after_a"), timeout=3 * FAIL_BOUND, interval=1.0, what="c1 writing in cut again")
    print(f"the remote directory works from both clients {time.monotonic() - back:.1f}s after the link came back")
    for mnt in (a, b):
        assert sha(mnt / "cut" / "kept") == sums["cut/kept"]
        assert (mnt / "cut" / "after_a").read_bytes() == b"after_a" * 1000
        assert (mnt / "cut" / "after_b").read_bytes() == b"after_b" * 1000
        assert sorted(os.listdir(mnt / "cut")) == ["after_a", "after_b", "kept"]
    sh("mkdir cut/sub && echo again > cut/sub/x", cwd=b)
    assert (a / "cut" / "sub" / "x").read_text() == "again\n"
    assert getdirstripe(netcluster, a / "cut", "c1")["lmv_stripe_offset"] == 1
    sh("rm -rf cut home", cwd=b)
    assert not {"cut", "home"} & set(os.listdir(a))
