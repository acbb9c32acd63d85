"""Root squash and read-only clients on real mounts: the MDS maps credentials by the client's
certificate name, whatever the client sends."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mounts import mount
from tests.support.servers import Cluster

BIN = Path(sys.executable).parent


def lfsctl(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lfsctl"), *argv], capture_output=True, text=True, timeout=60)


@pytest.fixture
def env(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv").start(1)
    mounts = []
    try:
        yield c, mounts, tmp_path
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def _set(c: Cluster, *pairs: str) -> None:
    r = lfsctl("set-param", "--mgs", c.mds.address, *pairs)
    assert r.returncode == 0, r.stderr


def test_root_on_a_squashed_client_cannot_read_a_private_file(env):
    c, mounts, tmp = env
    _set(c, "mds.root_squash=65534:65534", "mds.nosquash_clients=trusted")
    trusted = mount(c, tmp / "t", "client_id=trusted")
    mounts.append(trusted)
    secret = trusted.path / "secret"
    secret.write_bytes(b"uid 1000 only")
    os.chown(secret, 1000, 1000)
    os.chmod(secret, 0o600)
    assert secret.read_bytes() == b"uid 1000 only"          # root on a trusted client is root
    squashed = mount(c, tmp / "s", "client_id=squashed")
    mounts.append(squashed)
    with pytest.raises(PermissionError):
        (squashed.path / "secret").read_bytes()
    with pytest.raises(PermissionError):                     # the root directory is root's, 0755
        (squashed.path / "mine").write_bytes(b"x")
    (trusted.path / "pub").mkdir()
    os.chmod(trusted.path / "pub", 0o777)
    (squashed.path / "pub" / "mine").write_bytes(b"x")       # root's new file belongs to the squash ids
    st = os.stat(trusted.path / "pub" / "mine")
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    with pytest.raises(PermissionError):
        os.chown(squashed.path / "secret", 0, 0)
    # squash off again: the same client is root once more
    _set(c, "mds.root_squash=")
    assert (squashed.path / "secret").read_bytes() == b"uid 1000 only"


def test_a_read_only_client_reads_and_changes_nothing(env):
    c, mounts, tmp = env
    _set(c, "mds.readonly_clients=viewer")
    writer = mount(c, tmp / "w")
    mounts.append(writer)
    (writer.path / "d").mkdir()
    (writer.path / "d" / "f").write_bytes(b"hello")
    viewer = mount(c, tmp / "v", "client_id=viewer")
    mounts.append(viewer)
    assert (viewer.path / "d" / "f").read_bytes() == b"hello"
    assert sorted(os.listdir(viewer.path / "d")) == ["f"]
    refused = [
        lambda: open(viewer.path / "d" / "f", "r+b"),
        lambda: open(viewer.path / "d" / "new", "wb"),
        lambda: os.mkdir(viewer.path / "d2"),
        lambda: os.unlink(viewer.path / "d" / "f"),
        lambda: os.rename(viewer.path / "d" / "f", viewer.path / "d" / "g"),
        lambda: os.chmod(viewer.path / "d" / "f", 0o600),
        lambda: os.truncate(viewer.path / "d" / "f", 0),
        lambda: os.symlink("f", viewer.path / "d" / "l"),
        lambda: os.setxattr(viewer.path / "d" / "f", "user.x", b"1"),
    ]
    for i, fn in enumerate(refused):
        with pytest.raises(OSError) as ei:
            fn()
        assert ei.value.errno == errno.EROFS, (i, ei.value)
    assert (writer.path / "d" / "f").read_bytes() == b"hello"
    assert sorted(os.listdir(writer.path / "d")) == ["f"]


def test_a_read_only_client_with_the_write_back_cache_creates_nothing(env):
    c, mounts, tmp = env
    _set(c, "mds.readonly_clients=viewer")
    viewer = mount(c, tmp / "v", "client_id=viewer", "wbc", f"journal={tmp / 'jnl'}")
    mounts.append(viewer)
    for _ in range(3):
        with pytest.raises(OSError) as ei:
            os.mkdir(viewer.path / "d")
        assert ei.value.errno == errno.EROFS
    assert not os.path.exists(viewer.path / "d")


def test_bad_squash_settings_are_refused_in_one_line(env):
    c, _, _ = env
    for pair in ("mds.root_squash=root", "mds.root_squash=1:", "mds.readonly_clients=a b",
                 "mds.nosquash_clients=x/y"):
        r = lfsctl("set-param", "--mgs", c.mds.address, pair)
        assert r.returncode != 0 and r.stderr.count("\n") == 1, (pair, r.stderr)
