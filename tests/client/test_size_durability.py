"""A size the application was told is durable is never lost: a file closed just before
the MDS went down for longer than the mount's timeout, a file held open by an idle writer
across an MDS restart (past the recovery window), an fsync'ed file whose writer's mount
process was killed, and an fsync'ed striped file whose OSS died before its close all show
their full size and content to a fresh client. Both modes: server side and the metadata
write-back cache."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time

import pytest

from lustrepy.client.closer import Closer
from lustrepy.common.errors import LpError
from tests.support.mounts import Mount, mount
from tests.support.servers import BIN, Cluster, wait_for

MiB = 1 << 20
TIMEOUT = 3                 # the mounts' RPC timeout (seconds)
RECOVERY = 3                # the MDS's recovery window (seconds)
CALLBACK = 3                # the MDS's lock callback timeout (seconds)
MODES = ("nowbc", "wbc")


def _mds_args(root) -> tuple[str, ...]:
    """The MDS's settings, the same at every (re)start: a short recovery window and callback timeout."""
    cfg = root / "mds.toml"
    if not cfg.exists():
        cfg.write_text(f"recovery_window = {RECOVERY}\n")
    return ("--config", str(cfg), "--callback-timeout", str(CALLBACK))


@pytest.fixture
def cl(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    c = Cluster(root)
    try:
        c.start(2, mds_args=_mds_args(root))
        yield c
    finally:
        c.stop()


class _Mounts:
    def __init__(self, cluster: Cluster, root) -> None:
        self.cluster, self.root, self.all = cluster, root, []

    def __call__(self, name: str, mode: str, timeout: float = TIMEOUT) -> Mount:
        opts = [f"timeout={timeout}", mode]
        if mode == "wbc":
            opts.append(f"journal={self.root / ('journal-' + name)}")
        m = mount(self.cluster, self.root / name, *opts)
        self.all.append(m)
        return m


@pytest.fixture
def mounts(cl, tmp_path):
    ms = _Mounts(cl, tmp_path)
    try:
        yield ms
    finally:
        for m in ms.all:
            m.stop()


def _restart_mds(cl: Cluster, down_for: float) -> None:
    cl.mds.stop(signal.SIGKILL)
    time.sleep(down_for)
    cl.mds = cl.mds_proc(*_mds_args(cl.root)).start()


def _kill(m: Mount) -> None:
    os.kill(m.popen.pid, signal.SIGKILL)
    m.popen.wait(10)
    subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True)
    m.popen = None


def _data(n: int, seed: int) -> bytes:
    block = bytes((seed + i) % 251 for i in range(4096))
    return (block * (n // len(block) + 1))[:n]


def _sees(path, want: bytes) -> None:
    assert os.stat(path).st_size == len(want)
    assert path.read_bytes() == want


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_closed_file_keeps_its_size_when_the_mds_is_down_past_the_timeout(cl, mounts, mode):
    a = mounts("a", mode).path
    (a / "d").mkdir()
    want = _data(3 * MiB + 12345, 1)
    with open(a / "d" / "f", "wb") as f:
        f.write(want)
    _restart_mds(cl, 3 * TIMEOUT)               # the close went in the background, into the outage
    time.sleep(RECOVERY + 2)                    # past the recovery window: clients that did not come back lose their opens
    b = mounts("b", mode).path
    _sees(b / "d" / "f", want)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_file_open_across_an_mds_restart_by_an_idle_writer_keeps_its_size(cl, mounts, mode):
    a = mounts("a", mode).path
    (a / "d").mkdir()
    first, more = _data(2 * MiB, 2), _data(MiB + 777, 3)
    fd = os.open(a / "d" / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, first)
        os.fsync(fd)
        _restart_mds(cl, 0.5)
        time.sleep(RECOVERY + 3)                # the writer makes no MDS call past the recovery window
        b = mounts("b", mode).path
        _sees(b / "d" / "f", first)
        os.write(fd, more)
        os.fsync(fd)
    finally:
        os.close(fd)
    c = mounts("c", mode).path
    _sees(c / "d" / "f", first + more)
    wait_for(lambda: os.stat(b / "d" / "f").st_size == len(first + more), timeout=10,
             what="the other client to see the whole file")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", MODES)
def test_fsynced_size_survives_the_writer_client_being_killed(cl, mounts, mode):
    a_mount = mounts("a", mode)
    a = a_mount.path
    (a / "d").mkdir()
    want = _data(2 * MiB + 4321, 4)
    fd = os.open(a / "d" / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, want)
        os.fsync(fd)
        _kill(a_mount)                          # the client dies holding the file open
    finally:
        try:
            os.close(fd)
        except OSError:
            pass                                # its mount is gone
    b = mounts("b", mode, timeout=5 * CALLBACK).path
    os.chmod(b / "d" / "f", 0o600)              # the dead client's locks are called back: it is evicted
    _sees(b / "d" / "f", want)
    c = mounts("c", mode).path
    _sees(c / "d" / "f", want)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("mode", MODES)
def test_fsynced_size_survives_an_oss_dying_before_the_close(cl, mounts, mode):
    a_mount = mounts("a", mode)
    d = a_mount.path / "d"
    d.mkdir()
    r = subprocess.run([str(BIN / "lfsctl"), "setstripe", "-c", "2", "-S", "1M", str(d)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    want = _data(4 * MiB, 5)
    fd = os.open(d / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, want)
        os.fsync(fd)                            # 4 MiB on both OSTs, durable
        cl.osts[1].stop(signal.SIGKILL)
        try:
            os.pwrite(fd, _data(2 * MiB, 6), len(want))     # half of it for the dead OST
        except OSError:
            pass
    finally:
        try:
            os.close(fd)                        # the writer cannot learn the size now
        except OSError:
            pass
    a_mount.stop()                              # the writer leaves
    cl.osts[1] = cl.oss_proc(1).start()
    b = mounts("b", mode, timeout=15).path
    got = (b / "d" / "f").read_bytes()
    assert len(got) >= len(want) and got[:len(want)] == want


# ---- the close queue on its own (a send that fails as an MDS that is down does) ----------------

class _FlakyMds:
    """Refuses `failures` sends with ETIMEDOUT, then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures, self.got = failures, []

    def __call__(self, batch) -> None:
        if self.failures:
            self.failures -= 1
            raise LpError(errno.ETIMEDOUT, "MDS down")
        self.got.extend(batch)


@pytest.mark.timeout(30)
def test_a_failed_close_is_kept_and_sent_again_until_it_lands():
    mds = _FlakyMds(failures=3)
    c = Closer(mds)
    c.submit(7, 4096)
    c.submit(8, None)
    assert c.drain(timeout=15)
    assert mds.got == [(7, 4096), (8, None)] and c.retries == 3
    assert c.stop(timeout=1) == []


@pytest.mark.timeout(30)
def test_closes_made_together_go_in_one_rpc_and_a_drain_does_not_wait_for_more():
    batches: list[list[tuple[int, int | None]]] = []
    c = Closer(batches.append, gather=2.0)
    for h in range(1, 11):
        c.submit(h, h * 10)
    assert c.drain(timeout=15)
    assert batches == [[(h, h * 10) for h in range(1, 11)]]     # gathered: one RPC, in order
    slow = Closer(batches.append, gather=60.0)
    slow.submit(11, None)
    t0 = time.monotonic()
    assert slow.drain(timeout=15) and time.monotonic() - t0 < 10   # sent at once for the drain
    assert batches[-1] == [(11, None)]
    assert c.stop(timeout=1) == [] and slow.stop(timeout=1) == []


@pytest.mark.timeout(30)
def test_unmount_waits_for_closes_within_a_bound_and_says_what_was_not_sent(caplog):
    c = Closer(_FlakyMds(failures=1_000_000))
    c.submit(9, 123)
    t0 = time.monotonic()
    assert c.stop(timeout=1.5) == [(9, 123)]
    assert time.monotonic() - t0 < 10
    assert "could not be sent" in caplog.text
