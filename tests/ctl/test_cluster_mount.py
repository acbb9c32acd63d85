"""`lfsctl cluster up --mount` with the real client: the mount appears, df finds it by path, down unmounts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lustrepy.ctl import clusterfile, mounts, procs
from tests.support.servers import lfsck

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
# What the client says while it cannot mount at all; anything else is a real failure.

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0,
                                 reason="needs /dev/fuse and root to mount")]


def lfsctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=60)


def test_up_with_mount_then_down_unmounts(tmp_path: Path) -> None:
    root, mnt = tmp_path / "c", tmp_path / "mnt"
    try:
        r = lfsctl("cluster", "up", "--root", str(root), "--osts", "2", "--mount", str(mnt), "--json")
        assert r.returncode == 0, r.stderr
        rec = json.loads(r.stdout)
        entry = mounts.lustrepy_mount_at(str(mnt))
        assert entry is not None and entry.source == f"{rec['mds']['address']}:/testfs"
        assert rec["mount"] == {"point": str(mnt), "source": entry.source}

        # a PATH on the mount is enough to find the MDS, and df shows the mount point
        df = subprocess.run([*LFSCTL, "df", str(mnt)], capture_output=True, text=True, timeout=30)
        assert df.returncode == 0, df.stderr
        assert f"{mnt}[OST:1]" in df.stdout and df.stdout.splitlines()[-1].endswith(str(mnt))

        down = lfsctl("cluster", "down", "--root", str(root))
        assert down.returncode == 0 and "unmounted" in down.stdout
        assert mounts.lustrepy_mount_at(str(mnt)) is None
    finally:
        if mounts.is_mounted(str(mnt)):
            mounts.unmount(str(mnt))
        rec2 = clusterfile.load(root)
        if rec2:
            procs.stop([(s.pid, s.argv, s.starttime) for s in rec2.servers() if s.pid], grace_s=5)
    lfsck(root / "mdt")


def test_mount_options_reach_the_client_and_down_waits_for_its_records(tmp_path: Path) -> None:
    root, mnt, journal = tmp_path / "c", tmp_path / "mnt", tmp_path / "journal"
    try:
        r = lfsctl("cluster", "up", "--root", str(root), "--osts", "1", "--mount", str(mnt),
                   "--mount-opts", f"wbc,wbc_age=600,journal={journal}")
        assert r.returncode == 0, r.stderr
        (mnt / "d").mkdir()
        for i in range(100):
            (mnt / "d" / f"f{i}").write_bytes(b"x" * i)
        st = json.loads(os.getxattr(mnt / "d", "lustrepy.wbc"))
        assert st["client_wbc"] and st["held_here"] and st["records_pending"] >= 100
        down = lfsctl("cluster", "down", "--root", str(root))
        assert down.returncode == 0, down.stderr
        assert not list(journal.glob("*.jnl"))        # everything reached the MDS before it stopped
        up = lfsctl("cluster", "up", "--root", str(root), "--mount", str(mnt))
        assert up.returncode == 0, up.stderr
        assert sorted(os.listdir(mnt / "d")) == sorted(f"f{i}" for i in range(100))
        assert (mnt / "d" / "f99").read_bytes() == b"x" * 99
        assert lfsctl("cluster", "down", "--root", str(root)).returncode == 0
    finally:
        if mounts.is_mounted(str(mnt)):
            mounts.unmount(str(mnt))
        rec2 = clusterfile.load(root)
        if rec2:
            procs.stop([(s.pid, s.argv, s.starttime) for s in rec2.servers() if s.pid], grace_s=5)
    lfsck(root / "mdt")
