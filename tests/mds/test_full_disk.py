"""The MDT on a real full disk (a small tmpfs mounted as its directory): changes get
ENOSPC, never EIO or a hang; the MDS stays up and serves reads, opens and unlinks (its
reserve); nothing acknowledged is lost; once space returns creates work again; and
the MDT passes lfsck."""

from __future__ import annotations

import errno
import os
import time

import pytest

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.records import Cred
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.reserve import RESERVE_NAME
from lustrepy.mds.store import Store
from tests.support.mounts import mount
from tests.support.servers import Cluster, wait_for
from tests.support.tmpfs import fill, tmpfs

pytestmark = pytest.mark.timeout(180)

R = Cred(0, 0)
RESERVE = 2 << 20


def _create_until_full(s: Store, parent, prefix: str) -> list:
    made = []
    with pytest.raises(LpError) as ei:
        for i in range(200_000):
            name = f"{prefix}{i}".encode()
            made.append(s.write(lambda tx, name=name: tx.create(R, parent, name, 0o100644))[0])
    assert ei.value.errno == errno.ENOSPC, ei.value
    return made


def _names(s: Store, d) -> set[bytes]:
    return {e.name for e, _ in s.read().readdir(d, 0, 1_000_000)}


def test_store_full_disk_with_reserve(tmp_path):
    with tmpfs(tmp_path / "mdt", "16m") as d:
        Store.format(d, "lptest")
        s = Store(d, reserve=RESERVE)
        try:
            assert (d / RESERVE_NAME).stat().st_blocks * 512 >= RESERVE
            top = s.write(lambda tx: tx.mkdir(R, s.root, b"d", 0o755))[0].fid
            fill(d / "ballast", leave=200_000)
            made = _create_until_full(s, top, "f")
            assert made and s.disk.full and not s.has_room()
            assert not (d / RESERVE_NAME).exists()           # given back to let the rest go on
            t = s.last_transno()
            assert _names(s, top) == {f"f{i}".encode() for i in range(len(made))}
            # full mode: opens, closes, unlinks and attribute changes go on; growth is refused
            h = s.write(lambda tx: tx.open(made[1].fid, "c"))[0]
            s.write(lambda tx: tx.close(h))
            s.write(lambda tx: tx.unlink(R, top, b"f0"))
            for fn in (lambda tx: tx.mkdir(R, top, b"sub", 0o755),
                       lambda tx: tx.create(R, top, b"late", 0o100644),
                       lambda tx: tx.link(R, made[2].fid, top, b"hard")):
                with pytest.raises(LpError) as ei:
                    s.write(fn)
                assert ei.value.errno == errno.ENOSPC
            assert s.last_transno() == t + 3                 # refused transactions used no transno
            (d / "ballast").unlink()
            assert s.has_room() and not s.disk.full and (d / RESERVE_NAME).exists()
            again = s.write(lambda tx: tx.create(R, top, b"after", 0o100644))[0]
            assert again.fid not in {a.fid for a in made}    # no FID handed out twice
            s.sync()
        finally:
            problems = check_invariants(s)
            s.close()
        assert problems == []
        s = Store(d)                                         # everything acknowledged is there after a restart
        try:
            assert _names(s, top) == {f"f{i}".encode() for i in range(1, len(made))} | {b"after"}
        finally:
            s.close()


def test_store_full_disk_without_reserve(tmp_path):
    with tmpfs(tmp_path / "mdt", "8m") as d:
        Store.format(d, "lptest")
        s = Store(d)
        try:
            fill(d / "ballast", leave=500_000)
            made = _create_until_full(s, s.root, "f")
            t = s.last_transno()
            with pytest.raises(LpError) as ei:                # without a reserve every change waits for space
                s.write(lambda tx: tx.unlink(R, s.root, b"f0"))
            assert ei.value.errno == errno.ENOSPC and s.last_transno() == t
            assert s.read().lookup(R, s.root, b"f0").fid == made[0].fid
            s.prune_replies("nobody", 10)                     # nothing to delete: no failure
            (d / "ballast").unlink()
            s.write(lambda tx: tx.unlink(R, s.root, b"f0"))  # the first write after space returns
            assert s.has_room()
            s.write(lambda tx: tx.create(R, s.root, b"after", 0o100644))
        finally:
            problems = check_invariants(s)
            s.close()
        assert problems == []


def _create(path) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        return True
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
        return False


def test_mds_full_disk_through_a_mount(tmp_path):
    c = Cluster(tmp_path)
    m = None
    with tmpfs(tmp_path / "mdt", "16m") as mdt:
        try:
            c.start(1, mds_args=("--reserve", "2M"))
            m = mount(c, tmp_path / "mnt")
            d = tmp_path / "mnt" / "d"
            d.mkdir()
            (d / "keep").write_text("acknowledged before the disk filled")
            fill(mdt / "ballast", leave=300_000)
            n = 0
            t0 = time.monotonic()
            while _create(d / f"f{n}"):
                n += 1
                assert n < 100_000
            assert time.monotonic() - t0 < 60                # ENOSPC came, neither a hang nor EIO
            with pytest.raises(OSError) as ei:
                (d / "sub").mkdir()
            assert ei.value.errno == errno.ENOSPC
            assert c.mds.popen.poll() is None                # the MDS stays up and serves
            names = set(os.listdir(d))
            assert {f"f{i}" for i in range(n)} <= names
            assert (d / "keep").read_text() == "acknowledged before the disk filled"
            os.unlink(d / "f0")                              # unlinks and attribute changes go on
            os.chmod(d / "keep", 0o600)
            fill(mdt / "ballast2")                           # the reserve's room taken as well:
            with pytest.raises(OSError) as ei:               # an open (it records its handle) waits for space
                (d / "keep").read_text()
            assert ei.value.errno == errno.ENOSPC and c.mds.popen.poll() is None
            os.unlink(mdt / "ballast2")
            assert (d / "keep").read_text() == "acknowledged before the disk filled"
            os.unlink(mdt / "ballast")
            wait_for(lambda: _create(d / "after"), timeout=20, what="creates working again")
            (d / "sub").mkdir()
            m.stop()
            m = None
            c.mds.stop()                                     # a restart: nothing acknowledged is lost
            c.mds = c.mds_proc("--reserve", "2M").start()
            m = mount(c, tmp_path / "mnt")
            names = set(os.listdir(d))
            assert {f"f{i}" for i in range(1, n)} | {"keep", "after", "sub"} <= names and "f0" not in names
            log = (tmp_path / "mds.log").read_text()
            assert "Traceback" not in log and "disk is full" in log
        finally:
            if m is not None:
                m.stop()
            c.stop()                                         # ends with lfsck of the MDT


def test_store_starts_on_a_full_disk(tmp_path):
    with tmpfs(tmp_path / "mdt", "8m") as d:
        Store.format(d, "lptest")
        s = Store(d, reserve=RESERVE)
        s.write(lambda tx: tx.create(R, s.root, b"before", 0o100644))
        s.close()                                            # a clean stop folds the WAL away
        fill(d / "ballast")
        s = Store(d, reserve=RESERVE)                        # the reserve gives SQLite room to open
        try:
            assert s.disk.full and not (d / RESERVE_NAME).exists()
            assert s.read().lookup(R, s.root, b"before")
            with pytest.raises(LpError) as ei:
                s.write(lambda tx: tx.create(R, s.root, b"late", 0o100644))
            assert ei.value.errno == errno.ENOSPC
            s.write(lambda tx: tx.unlink(R, s.root, b"before"))
        finally:
            s.close()
        fill(d / "ballast2")
        with pytest.raises(QuietError) as qe:                # no reserve left: one line that says why
            Store(d, reserve=RESERVE)
        assert "the disk is full" in str(qe.value) and str(d) in str(qe.value)
