"""The `lustrepy-oss` program as a real process: identity, ports, announces, signals, bad input.

The MDS side of the announce is a minimal peer implementing only Mds.Announce.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from oss_helpers import OssClient, err

from lustrepy.oss.identity import load_or_format
from lustrepy.oss.osd import Osd
from lustrepy.oss.server import main
from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(30)

OSS_BIN = str(Path(sys.executable).parent / "lustrepy-oss")


class AnnouncePeer(mds_pb2_grpc.MdsServicer):
    """Answers Mds.Announce and remembers every announce it got."""

    def __init__(self, refuse: tuple[int, str] | None = None) -> None:
        self.refuse = refuse
        self.got: list[tuple[float, mpb.OstAnnounce]] = []
        self._mu = threading.Lock()

    def Announce(self, request: mpb.OstAnnounce, context) -> mpb.OstAnnounceReply:
        with self._mu:
            self.got.append((time.monotonic(), request))
        if self.refuse:
            return mpb.OstAnnounceReply(hdr=cpb.RepHdr(errno=self.refuse[0], message=self.refuse[1]))
        return mpb.OstAnnounceReply(hdr=cpb.RepHdr(), mds_uuid="testfs-MDT0000_UUID", heartbeat_interval_s=1.0)

    def announces(self) -> list[mpb.OstAnnounce]:
        with self._mu:
            return [m for _, m in self.got]


@pytest.fixture
def mds_peer() -> Iterator[Callable[..., tuple[AnnouncePeer, int]]]:
    servers = []

    def start(port: int = 0, refuse: tuple[int, str] | None = None) -> tuple[AnnouncePeer, int]:
        peer = AnnouncePeer(refuse)
        srv = make_server(max_workers=4)
        mds_pb2_grpc.add_MdsServicer_to_server(peer, srv)
        port = bind(srv, f"127.0.0.1:{port}")
        srv.start()
        servers.append(srv)
        return peer, port

    try:
        yield start
    finally:
        for srv in servers:
            srv.stop(0).wait(2)


@pytest.fixture
def spawn(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def run(*args: str) -> subprocess.Popen:
        errf = open(tmp_path / f"stderr.{len(procs)}", "w+")
        p = subprocess.Popen([OSS_BIN, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
        p.errfile = errf  # type: ignore[attr-defined]
        procs.append(p)
        return p

    try:
        yield run
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait(5)
            p.errfile.close()  # type: ignore[attr-defined]


def stderr_of(p: subprocess.Popen) -> str:
    p.errfile.seek(0)  # type: ignore[attr-defined]
    return p.errfile.read()  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def formatted(path: Path, fsname: str = "testfs", index: int = 0) -> str:
    load_or_format(Osd(str(path)), fsname, index)
    return str(path)


def test_serves_announces_with_statfs_and_stops_on_sigterm(tmp_path, spawn, mds_peer):
    mds_port = free_port()                         # the MDS is down when the OSS starts
    port_file = tmp_path / "port"
    p = spawn("--dir", str(tmp_path / "ost"), "--listen", "127.0.0.1:0", "--mds", f"127.0.0.1:{mds_port}",
              "--fsname", "testfs", "--index", "2", "--port-file", str(port_file), "--heartbeat", "0.1",
              "--capacity", "64M")
    wait_for(port_file.exists, what="the port file")
    port = int(port_file.read_text())
    client = OssClient(f"127.0.0.1:{port}")
    try:
        assert err(client.connect().hdr) == 0
        assert client.statfs().uuid == "testfs-OST0002_UUID"
    finally:
        client.close()
    wait_for(lambda: "unreachable" in stderr_of(p), what="a failed heartbeat")
    peer, _ = mds_peer(port=mds_port)
    wait_for(lambda: len(peer.announces()) >= 3, what="three heartbeats")
    beats = peer.announces()
    for m in beats:
        assert (m.fsname, m.index, m.uuid) == ("testfs", 2, "testfs-OST0002_UUID")
        assert m.address == f"127.0.0.1:{port}"
        assert m.statfs.bsize > 0 and m.statfs.blocks * m.statfs.bsize == 64 * 1024 * 1024
        assert 0 < m.statfs.bavail <= m.statfs.blocks
    assert len({m.boot_id for m in beats}) == 1 and beats[0].boot_id != 0
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(10) == 0
    out = stderr_of(p)
    assert out.count("unreachable") == 1, out      # one warning per outage, not per try
    assert "reachable" in out.split("unreachable", 1)[1]
    assert "Traceback" not in out


def test_mds_refusal_ends_the_oss(tmp_path, spawn, mds_peer):
    peer, mds_port = mds_peer(refuse=(errno.EINVAL, "OST testfs-OST0000_UUID belongs to file system 'testfs'"))
    p = spawn("--dir", str(tmp_path / "ost"), "--listen", "127.0.0.1:0", "--mds", f"127.0.0.1:{mds_port}",
              "--fsname", "testfs", "--index", "0", "--heartbeat", "0.1")
    assert p.wait(10) == 1
    out = stderr_of(p)
    assert "refused testfs-OST0000_UUID: OST testfs-OST0000_UUID belongs to file system" in out
    assert "Traceback" not in out
    assert len(peer.announces()) == 1


def test_identity_mismatch_is_one_line_exit_1(tmp_path, spawn):
    d = formatted(tmp_path / "ost")
    p = spawn("--dir", d, "--listen", "127.0.0.1:0", "--mds", "127.0.0.1:1", "--fsname", "otherfs")
    assert p.wait(10) == 1
    lines = stderr_of(p).strip().splitlines()
    assert lines == [f"lustrepy-oss: {d} belongs to file system 'testfs', not 'otherfs'"]


def test_port_taken_is_one_line_exit_1(tmp_path, spawn):
    d = formatted(tmp_path / "ost")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = spawn("--dir", d, "--listen", f"127.0.0.1:{port}", "--mds", "127.0.0.1:1")
        assert p.wait(10) == 1
    lines = stderr_of(p).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lustrepy-oss: cannot listen on 127.0.0.1:{port}"), lines


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "the following arguments are required"),
    (["--listen", "127.0.0.1", "--mds", "h:1"], 1, "--listen must be HOST:PORT"),
    (["--listen", "0.0.0.0:0", "--mds", "h:1"], 1, "wildcard address; give --advertise HOST"),
    (["--listen", "127.0.0.1:0", "--mds", "h:1", "--capacity", "lots"], 2, "invalid size 'lots'"),
    (["--listen", "127.0.0.1:0", "--mds", "h:1", "--heartbeat", "0"], 2, "invalid number of seconds"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, code, message):
    assert main(["--dir", str(tmp_path / "ost"), *args]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_unformatted_dir_without_identity_is_one_line(tmp_path, spawn):
    (tmp_path / "ost").mkdir()
    p = spawn("--dir", str(tmp_path / "ost"), "--listen", "127.0.0.1:0", "--mds", "127.0.0.1:1")
    assert p.wait(10) == 1
    lines = stderr_of(p).strip().splitlines()
    assert len(lines) == 1 and "not a formatted OST; give --fsname and --index" in lines[0], lines
