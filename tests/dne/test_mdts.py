"""Several MDTs of one file system on real servers: MDT1.. register with MDT0, get FID sequence
ranges of their own that survive restarts, and every MDT answers the FID location database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lustrepy.common.fid import FIRST_SEQ
from lustrepy.common.fld import SUPER_SEQ
from tests.support.dne import all_active, fld
from tests.support.servers import Cluster, Proc, wait_for

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start(1, n_mdts=2)
    try:
        yield c
    finally:
        c.stop()


def test_mdt1_registers_and_gets_a_range_of_its_own(cluster):
    v = wait_for(lambda: all_active(cluster.mds.address, 2), what="MDT1 active at MDT0")
    assert [(m.index, m.uuid, m.address) for m in v.mdts] == [
        (0, "testfs-MDT0000_UUID", cluster.mds.address), (1, "testfs-MDT0001_UUID", cluster.mdts[0].address)]
    r0, r1 = v.ranges
    assert (r0.start, r0.end, r0.mdt) == (FIRST_SEQ, FIRST_SEQ + SUPER_SEQ, 0)
    assert (r1.start, r1.end, r1.mdt) == (r0.end, r0.end + SUPER_SEQ, 1)
    assert v.mdt_of_seq(r1.start + 5) == 1 and v.mdt_of_seq(FIRST_SEQ + 5) == 0
    # MDT1 answers the same view (what it heard from MDT0)
    v1 = wait_for(lambda: all_active(cluster.mdts[0].address, 2), what="MDT1's view")
    assert v1.ranges == v.ranges
    # its own database holds its range, and its sequences start there
    db = sqlite3.connect(cluster.root / "mdt1" / "mdt.db")
    try:
        assert db.execute("SELECT start, end, mdt FROM fld").fetchall() == [(r1.start, r1.end, 1)]
        assert db.execute("SELECT next_seq FROM meta").fetchone()[0] >= r1.start
    finally:
        db.close()


def test_a_restarted_mdt_keeps_its_range_and_works_without_mdt0(cluster):
    v = wait_for(lambda: all_active(cluster.mds.address, 2), what="MDT1 active")
    cluster.mdts[0].stop(signal.SIGKILL)
    cluster.mds.stop()
    cluster.mdts[0] = cluster.mdt_proc(1).start()       # MDT0 down: it starts from its own range
    assert fld(cluster.mdts[0].address).ranges == tuple(r for r in v.ranges if r.mdt == 1)
    cluster.mds = cluster.mds_proc().start()
    again = wait_for(lambda: all_active(cluster.mds.address, 2), what="MDT1 back")
    assert again.ranges == v.ranges                     # no new range for a known MDT


def test_an_mdt_index_is_one_mdt_only(cluster, tmp_path):
    wait_for(lambda: all_active(cluster.mds.address, 2), what="MDT1 active")
    # another directory formatted as MDT1 of the same file system is refused by MDT0
    fake = Proc("fake1", [str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "fake"), "--fsname", "testfs",
                          "--index", "1", "--mdt0", cluster.mds.address, "--listen", "127.0.0.1:0",
                          "--port-file", str(tmp_path / "fake.port")], tmp_path / "fake.log", tmp_path / "fake.port")
    fake.start()
    try:
        wait_for(lambda: "refused" in fake.log.read_text(), what="MDT0's refusal in the log")
        v = fld(cluster.mds.address)
        assert [m.address for m in v.mdts if m.index == 1] == [cluster.mdts[0].address]
    finally:
        fake.stop()


def test_bad_mdt_options_are_one_line(tmp_path):
    r = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "m"), "--fsname", "testfs",
                        "--index", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--mdt0" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "m"), "--fsname", "testfs",
                        "--index", "300", "--mdt0", "127.0.0.1:1"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "index" in r.stderr and "Traceback" not in r.stderr
    subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "z"), "--fsname", "testfs", "--format-only"],
                   capture_output=True, text=True, timeout=30, check=True)
    r = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "z"), "--fsname", "testfs",
                        "--index", "2", "--mdt0", "127.0.0.1:1"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "holds MDT 0" in r.stderr and "Traceback" not in r.stderr
