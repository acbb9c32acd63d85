"""OST recovery with real mounts: a replay barrier makes the restarted OSS go back to its
objects' bytes at the barrier (as a power cut on its host would lose what was not synced),
and the clients replay the writes it had answered, in transno order across clients, so every
write that returned before the kill -9 reads back, with or without fsync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from lustrepy.ctl import query
from tests.support.mounts import Mount, mount
from tests.support.servers import BIN, Cluster

pytestmark = pytest.mark.timeout(240)

MiB = 1 << 20
WINDOW = ("--recovery-window", "60")


def _setstripe(d, count: int, offset: int = -1) -> None:
    d.mkdir()
    os.setxattr(d, "lustrepy.lov", json.dumps(
        {"stripe_size": MiB, "stripe_count": count, "stripe_offset": offset}).encode())


def _crash_ost(c: Cluster, index: int) -> None:
    """kill -9 of the OSS and a start on the same address: its next start drops what the barrier kept out."""
    c.osts[index].stop(signal.SIGKILL)
    c.osts[index] = c.oss_proc(index, *WINDOW).start()


def _drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def _log(c: Cluster, index: int) -> str:
    return (c.root / f"ost{index}.log").read_text()


@pytest.fixture
def env(tmp_path) -> Iterator[tuple[Cluster, list[Mount]]]:
    """A cluster whose OSSes wait long enough for their clients, and the mounts a test makes."""
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    mounts: list[Mount] = []
    try:
        yield c, mounts
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def _mount(env: tuple[Cluster, list[Mount]], path, *opts: str) -> Mount:
    m = mount(env[0], path, *opts)
    env[1].append(m)
    return m


def test_a_striped_write_without_fsync_survives_a_power_cut_of_an_ost(env, tmp_path):
    c = env[0].start(2, oss_args=WINDOW)
    a = _mount(env, tmp_path / "a")
    _setstripe(a.path / "d", 2, offset=0)
    before = os.urandom(3 * MiB)
    (a.path / "d" / "before").write_bytes(before)
    addr, transno = query.ost_replay_barrier(c.mds.address, 0)
    assert addr == c.osts[0].address and transno > 0
    data = os.urandom(5 * MiB + 123)
    (a.path / "d" / "f").write_bytes(data)              # close, no fsync
    with open(a.path / "d" / "before", "r+b") as f:     # an overwrite of bytes the barrier keeps
        f.seek(MiB // 2)
        f.write(b"x" * MiB)
    before = before[:MiB // 2] + b"x" * MiB + before[MiB // 2 + MiB:]
    _crash_ost(c, 0)
    log = _log(c, 0)
    assert "objects went back to their contents at the barrier" in log, log[-2000:]
    _drop_caches()
    assert (a.path / "d" / "f").read_bytes() == data
    assert (a.path / "d" / "before").read_bytes() == before
    fresh = _mount(env, tmp_path / "fresh")
    assert (fresh.path / "d" / "f").read_bytes() == data
    assert (fresh.path / "d" / "before").read_bytes() == before
    assert "replays applied" in _log(c, 0)


def test_two_clients_overlapping_writes_replay_in_the_order_they_were_answered(env, tmp_path):
    c = env[0].start(1, oss_args=WINDOW)
    a = _mount(env, tmp_path / "a", "nowbc")
    b = _mount(env, tmp_path / "b", "nowbc")
    (a.path / "f").write_bytes(b"0" * (2 * MiB))
    query.ost_replay_barrier(c.mds.address, 0)
    with open(a.path / "f", "r+b") as f:                # A's bytes, then B's over half of them
        f.write(b"A" * MiB)
    with open(b.path / "f", "r+b") as f:
        f.seek(MiB // 2)
        f.write(b"B" * MiB)
    with open(a.path / "f", "r+b") as f:                # and A again, over the end of B's
        f.seek(MiB + MiB // 4)
        f.write(b"a" * (MiB // 4))
    want = b"A" * (MiB // 2) + b"B" * (MiB // 2 + MiB // 4) + b"a" * (MiB // 4) + b"0" * (MiB // 2)
    assert (b.path / "f").read_bytes() == want
    _crash_ost(c, 0)
    _drop_caches()
    assert (a.path / "f").read_bytes() == want
    assert (b.path / "f").read_bytes() == want
    fresh = _mount(env, tmp_path / "fresh", "nowbc")
    assert (fresh.path / "f").read_bytes() == want


def test_a_truncate_after_the_barrier_is_replayed_too(env, tmp_path):
    c = env[0].start(1, oss_args=WINDOW)
    a = _mount(env, tmp_path / "a", "nowbc")
    (a.path / "f").write_bytes(os.urandom(3 * MiB))
    query.ost_replay_barrier(c.mds.address, 0)
    os.truncate(a.path / "f", 1000)
    with open(a.path / "f", "ab") as f:
        f.write(b"tail")
    _crash_ost(c, 0)
    _drop_caches()
    got = (a.path / "f").read_bytes()
    assert len(got) == 1004 and got.endswith(b"tail")


def test_a_client_past_max_unstable_asks_its_ost_to_commit(env, tmp_path):
    c = env[0].start(1, oss_args=("--commit-interval", "60"))      # no commit of its own for a minute
    a = _mount(env, tmp_path / "a", "nowbc", "max_unstable_mb=1")
    rcvd = c.root / "ost0" / "last_rcvd"
    start = json.loads(rcvd.read_text())["last_committed"]
    for i in range(4):
        (a.path / f"f{i}").write_bytes(os.urandom(2 * MiB))
    assert json.loads(rcvd.read_text())["last_committed"] > start


def test_a_bad_max_unstable_is_one_line(env, tmp_path):
    c = env[0].start(1)
    (tmp_path / "m").mkdir()
    r = subprocess.run([str(BIN / "lustrepy"), f"{c.mds.address}:/{c.fsname}", str(tmp_path / "m"),
                        "-o", "max_unstable_mb=lots"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "max_unstable_mb" in r.stderr
