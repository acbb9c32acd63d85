"""How commands find the MDS: --mgs, $LUSTREPY_MGS, --root, a PATH's mount, the running cluster."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lustrepy.common.errors import QuietError
from lustrepy.ctl import clusterfile, mounts, procs, target
from lustrepy.ctl.clusterfile import ClusterRecord, MountRecord, ServerRecord

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /mnt/lp rw,nosuid,nodev,relatime shared:20 - fuse.lustrepy 127.0.0.1:7001:/testfs rw,user_id=0
41 22 0:36 / /mnt/with\\040space rw,relatime shared:21 - fuse.lustrepy 10.0.0.5:988:/other rw
42 40 0:37 / /mnt/lp/inner rw,relatime shared:22 - tmpfs tmpfs rw
43 22 0:38 / /mnt/sshfs rw,relatime - fuse.sshfs host:/x rw
"""


@pytest.fixture
def mountinfo(tmp_path: Path) -> str:
    p = tmp_path / "mountinfo"
    p.write_text(MOUNTINFO)
    return str(p)


def record(root: Path, pid: int = 0, argv: tuple[str, ...] = (), mount: str | None = None) -> ClusterRecord:
    mds = ServerRecord("mds", None, "127.0.0.1:7001", pid, argv, str(root / "mdt"), str(root / "logs/mds.log"))
    rec = ClusterRecord(root=str(root), fsname="testfs", state="running" if pid else "stopped", mds=mds,
                        mount=MountRecord(mount, "127.0.0.1:7001:/testfs") if mount else None)
    root.mkdir(parents=True, exist_ok=True)
    clusterfile.save(rec)
    return rec


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[procs.Started]:
    """A process that stands in for a running MDS (stopped by pid afterwards)."""
    argv = (sys.executable, "-c", "import time; time.sleep(60)", "stand-in-mds")
    p = procs.spawn(argv, str(tmp_path / "sleeper.log"))
    try:
        yield p
    finally:
        procs.stop([(p.pid, p.argv, p.starttime)], grace_s=2)


def test_parse_mountinfo_unescapes_and_finds_mounts(mountinfo: str) -> None:
    entries = mounts.read_mounts(mountinfo)
    assert mounts.MountEntry("/mnt/with space", "fuse.lustrepy", "10.0.0.5:988:/other") in entries
    assert mounts.mount_of("/mnt/lp/a/b", entries).point == "/mnt/lp"  # type: ignore[union-attr]
    assert mounts.mount_of("/mnt/lp/inner/x", entries).fstype == "tmpfs"  # type: ignore[union-attr]
    assert mounts.mount_of("/mnt/lpx", entries).point == "/"  # type: ignore[union-attr]


def test_parse_source() -> None:
    assert mounts.parse_source("127.0.0.1:7001:/testfs") == mounts.MgsSource("127.0.0.1:7001", "testfs")
    assert mounts.parse_source("[::1]:7001:/fs").address == "[::1]:7001"
    for bad in ("127.0.0.1:/fs", "host:port:/fs", "127.0.0.1:7001:/", "127.0.0.1:7001", "h:1:/a/b"):
        with pytest.raises(QuietError):
            mounts.parse_source(bad)


def test_mgs_option_wins(tmp_path: Path, mountinfo: str) -> None:
    record(tmp_path / "c")
    t = target.resolve(mgs="10.1.1.1:988", root=str(tmp_path / "c"), path="/mnt/lp",
                       env={"LUSTREPY_MGS": "10.2.2.2:988"}, mountinfo=mountinfo)
    assert (t.address, t.how) == ("10.1.1.1:988", "--mgs")
    assert t.mount == "/mnt/lp"  # the PATH still names the mount point shown by df


def test_env_before_root_and_path(tmp_path: Path, mountinfo: str) -> None:
    record(tmp_path / "c")
    t = target.resolve(root=str(tmp_path / "c"), path="/mnt/lp", env={"LUSTREPY_MGS": "10.2.2.2:988"},
                       mountinfo=mountinfo)
    assert t.address == "10.2.2.2:988" and "LUSTREPY_MGS" in t.how


def test_root_reads_cluster_json(tmp_path: Path, mountinfo: str) -> None:
    record(tmp_path / "c", mount="/mnt/lp")
    t = target.resolve(root=str(tmp_path / "c"), path="/mnt/with space", env={}, mountinfo=mountinfo)
    assert (t.address, t.fsname, t.mount) == ("127.0.0.1:7001", "testfs", "/mnt/lp")


def test_root_without_cluster(tmp_path: Path, mountinfo: str) -> None:
    with pytest.raises(QuietError, match="no cluster recorded"):
        target.resolve(root=str(tmp_path / "none"), env={}, mountinfo=mountinfo)


def test_path_on_a_lustrepy_mount(mountinfo: str) -> None:
    t = target.resolve(path="/mnt/with space/dir/file", env={}, mountinfo=mountinfo)
    assert (t.address, t.fsname, t.mount) == ("10.0.0.5:988", "other", "/mnt/with space")


@pytest.mark.parametrize("path", ["/mnt/sshfs/x", "/etc", "/mnt/lp/inner/x"])
def test_path_not_on_lustrepy(path: str, mountinfo: str) -> None:
    with pytest.raises(QuietError, match="not on a lustrepy file system"):
        target.resolve(path=path, env={}, mountinfo=mountinfo)


@pytest.mark.parametrize("bad", ["nohostport", "host:", ":988", "host:99999", "host:x"])
def test_bad_mgs_address(bad: str, mountinfo: str) -> None:
    with pytest.raises(QuietError, match="bad MDS address"):
        target.resolve(mgs=bad, env={}, mountinfo=mountinfo)
    with pytest.raises(QuietError, match="LUSTREPY_MGS"):
        target.resolve(env={"LUSTREPY_MGS": bad}, mountinfo=mountinfo)


def test_running_cluster_in_lustrepy_root(tmp_path: Path, mountinfo: str, sleeper: procs.Started) -> None:
    record(tmp_path / "c", pid=sleeper.pid, argv=sleeper.argv)
    t = target.resolve(env={"LUSTREPY_ROOT": str(tmp_path / "c")}, mountinfo=mountinfo)
    assert t.address == "127.0.0.1:7001" and str(tmp_path / "c") in t.how
    # the source matches a mounted lustrepy file system, so df can show its mount point
    assert t.mount == "/mnt/lp"


def test_lustrepy_root_is_the_only_root_looked_at(tmp_path: Path, mountinfo: str, sleeper: procs.Started,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a cluster running at the default root (a developer's scripts/up) is not seen once $LUSTREPY_ROOT is set
    monkeypatch.setattr(target, "DEFAULT_ROOT", str(tmp_path / "default"))
    record(tmp_path / "default", pid=sleeper.pid, argv=sleeper.argv)
    record(tmp_path / "mine", pid=sleeper.pid, argv=sleeper.argv)
    t = target.resolve(env={"LUSTREPY_ROOT": str(tmp_path / "mine")}, mountinfo=mountinfo)
    assert str(tmp_path / "mine") in t.how
    with pytest.raises(QuietError, match="no MDS given"):
        target.resolve(env={"LUSTREPY_ROOT": str(tmp_path / "empty")}, mountinfo=mountinfo)
    # unset, the default root is the one
    assert str(tmp_path / "default") in target.resolve(env={}, mountinfo=mountinfo).how


def test_stopped_or_stale_cluster_is_not_used(tmp_path: Path, mountinfo: str) -> None:
    record(tmp_path / "stopped")
    # a recorded pid that now runs something else (here: this test process) does not count
    record(tmp_path / "stale", pid=os.getpid(), argv=("lustrepy-mds", "--dir", "x"))
    for root in ("stopped", "stale"):
        with pytest.raises(QuietError, match="no MDS given"):
            target.resolve(env={"LUSTREPY_ROOT": str(tmp_path / root)}, mountinfo=mountinfo)


def test_nothing_found_names_every_way(mountinfo: str, tmp_path: Path) -> None:
    with pytest.raises(QuietError) as e:
        target.resolve(env={"LUSTREPY_ROOT": str(tmp_path)}, mountinfo=mountinfo)
    for way in ("--mgs", "LUSTREPY_MGS", "--root", "PATH"):
        assert way in str(e.value)
