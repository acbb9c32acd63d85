"""kill -9 of either MDS while files are renamed between two MDTs: after restarts every file has
exactly one name, its bytes, and a link count its names agree with; nothing is left half done
(the coordinators' logs drain, both MDTs pass lfsck)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.dne.test_remote_dirs import _rows
from tests.support.dne import remote_root_dir
from tests.support.mounts import mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(300)
N = 24


def _kill_restart_drain(c: Cluster, victim: str, args: tuple[str, ...], worker: threading.Thread) -> None:
    """kill -9 the victim MDS and start it again; wait for the worker, then until every logged
    operation is carried through (or taken back) on both MDTs."""
    if victim == "mdt0":
        c.mds.stop(signal.SIGKILL)
        time.sleep(0.5)
        c.mds = c.mds_proc(*args).start()
    else:
        c.mdts[0].stop(signal.SIGKILL)
        time.sleep(0.5)
        c.mdts[0] = c.mdt_proc(1, *args).start()
    worker.join(240)
    assert not worker.is_alive()
    wait_for(lambda: _rows(c, "mdt", "SELECT count(*) FROM dne_log") == [(0,)] and
             _rows(c, "mdt1", "SELECT count(*) FROM dne_log") == [(0,)], timeout=60, what="the logs to drain")


def _shuffle(near: Path, far: Path, names: list[str], rounds: int, errors: list[str], done: list[int]) -> None:
    """Rename each name from `near` to `far`, then back, `rounds` times in all; failures are kept
    in `errors`, the count of renames tried in done[0]."""
    for rnd in range(rounds):
        src, dst = (near, far) if rnd % 2 == 0 else (far, near)
        for name in names:
            try:
                os.rename(src / name, dst / name)
            except OSError as e:
                errors.append(f"{rnd}/{name}: {e}")
            done[0] += 1


@pytest.mark.parametrize("victim", ["mdt0", "mdt1"])
def test_renames_between_mdts_survive_a_killed_mds(tmp_path, victim):
    (tmp_path / "srv").mkdir()
    args = ("--recovery-window", "5", "--dne-wait", "20")
    c = Cluster(tmp_path / "srv").start(1, mds_args=args, n_mdts=2)
    m = None
    try:
        remote_root_dir(c, b"far")
        m = mount(c, tmp_path / "m", "timeout=20")
        near, far = m.path / "near", m.path / "far"
        near.mkdir()
        for i in range(N):
            (near / f"f{i}").write_bytes(bytes([i]) * 5000)
        errors: list[str] = []
        t = threading.Thread(target=_shuffle, args=(near, far, [f"f{i}" for i in range(N)], 3, errors, [0]))
        t.start()
        time.sleep(1.0)
        _kill_restart_drain(c, victim, args, t)
        for i in range(N):
            here = [d for d in (near, far) if (d / f"f{i}").exists()]
            assert len(here) == 1, (i, here, errors)
            st = os.stat(here[0] / f"f{i}")
            assert st.st_nlink == 1
            assert (here[0] / f"f{i}").read_bytes() == bytes([i]) * 5000
        assert sorted(os.listdir(near) + os.listdir(far)) == sorted(f"f{i}" for i in range(N))
    finally:
        if m is not None:
            m.stop()
        c.stop()        # lfsck of both MDTs


@pytest.mark.parametrize("victim", ["mdt0", "mdt1"])
def test_striped_directories_made_and_removed_survive_a_killed_mds(tmp_path, victim):
    """Striped directories made (lfsctl mkdir -c 2), filled and removed (rm -rf) while an MDS is
    killed: afterwards each is whole (both stripes, its files) or gone, and once all are removed
    no stripe is left on either MDT."""
    (tmp_path / "srv").mkdir()
    args = ("--recovery-window", "5", "--dne-wait", "20")
    c = Cluster(tmp_path / "srv").start(1, mds_args=args, n_mdts=2)
    m = None
    lfsctl = str(Path(sys.executable).parent / "lfsctl")
    dirs_sql = "SELECT count(*) FROM inodes WHERE mode & 61440 = 16384"
    try:
        remote_root_dir(c, b"far")
        before = {t: _rows(c, t, dirs_sql) for t in ("mdt", "mdt1")}
        m = mount(c, tmp_path / "m", "timeout=20")

        def churn() -> None:
            for i in range(12):
                subprocess.run([lfsctl, "mkdir", "-c", "2", str(m.path / f"s{i}")], capture_output=True, timeout=90)
                for j in range(3):
                    try:
                        (m.path / f"s{i}" / f"f{j}").write_text("x")
                    except OSError:
                        pass
            for i in range(0, 12, 2):
                subprocess.run(["rm", "-rf", str(m.path / f"s{i}")], capture_output=True, timeout=90)
        t = threading.Thread(target=churn)
        t.start()
        time.sleep(1.5)
        _kill_restart_drain(c, victim, args, t)
        for d in sorted(m.path.glob("s*")):
            out = subprocess.run([lfsctl, "getdirstripe", str(d)], capture_output=True, text=True, timeout=60)
            assert out.stdout.startswith("lmv_stripe_count: 2 "), (d, out.stdout, out.stderr)
            assert set(os.listdir(d)) <= {"f0", "f1", "f2"}
        subprocess.run(["sh", "-c", f"rm -rf {m.path}/s*"], check=True, timeout=120)
        assert not list(m.path.glob("s*"))
        # nothing of any of them is left on either MDT: no stripe without its master, no master
        # without its stripes
        assert _rows(c, "mdt", "SELECT count(*) FROM dir_stripes") == [(0,)]
        assert _rows(c, "mdt1", "SELECT count(*) FROM dir_stripes") == [(0,)]
        assert {t: _rows(c, t, dirs_sql) for t in ("mdt", "mdt1")} == before
    finally:
        if m is not None:
            m.stop()
        c.stop()        # lfsck of both MDTs


@pytest.mark.parametrize("victim", ["mdt0", "mdt1"])
def test_directory_moves_between_mdts_survive_a_killed_mds(tmp_path, victim):
    """Directories (each holding a file) moved back and forth between MDT0 and MDT1 while an MDS
    is killed: afterwards each is in exactly one place with its file, the parents' links count
    them, the rename lock is free and lfsctl lfsck finds both MDTs clean."""
    (tmp_path / "srv").mkdir()
    args = ("--recovery-window", "5", "--dne-wait", "20")
    c = Cluster(tmp_path / "srv").start(1, mds_args=args, n_mdts=2)
    m = None
    n = 12
    try:
        remote_root_dir(c, b"far")
        m = mount(c, tmp_path / "m", "timeout=20")
        near, far = m.path / "near", m.path / "far"
        near.mkdir()
        for i in range(n):
            (near / f"d{i}").mkdir()
            (near / f"d{i}" / "f").write_bytes(bytes([i]) * 3000)
        errors: list[str] = []
        done = [0]
        t = threading.Thread(target=_shuffle, args=(near, far, [f"d{i}" for i in range(n)], 4, errors, done))
        t.start()
        wait_for(lambda: done[0] >= n // 2, timeout=60, what="moves under way")
        assert t.is_alive()                 # the MDS dies among the moves
        _kill_restart_drain(c, victim, args, t)
        wait_for(lambda: _rows(c, "mdt", "SELECT count(*) FROM rename_lock") == [(0,)], timeout=30,
                 what="the rename lock to be let go")
        subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
        for i in range(n):
            here = [d for d in (near, far) if (d / f"d{i}").exists()]
            assert len(here) == 1, (i, here, errors)
            assert (here[0] / f"d{i}" / "f").read_bytes() == bytes([i]) * 3000
        assert os.stat(near).st_nlink + os.stat(far).st_nlink == 4 + n
        assert os.stat(near).st_nlink == 2 + len(os.listdir(near))
        r = subprocess.run([str(Path(sys.executable).parent / "lfsctl"), "lfsck", "--mgs", c.mds.address],
                           capture_output=True, text=True, timeout=120)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    finally:
        if m is not None:
            m.stop()
        c.stop()        # lfsck of both MDTs
