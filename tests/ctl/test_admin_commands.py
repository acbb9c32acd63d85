"""lfsctl locks, clients and evict against a real cluster (lustrepy-mds and two lustrepy-oss processes)
with two real mounts, plus raw lock clients on an OSS's Ldlm service to hold a lock and queue a waiter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.request import LockClient
from lustrepy.ldlm.resource import ResId
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import oss_pb2_grpc
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(180)

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]


def lfsctl(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout)


def ok_json(*argv: str) -> dict:
    r = lfsctl(*argv, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lfsctl: ") and "Traceback" not in err, err
    return lines[0]


@dataclass
class Env:
    cluster: Cluster
    alpha: Mount
    beta: Mount

    @property
    def mgs(self) -> tuple[str, str]:
        return ("--mgs", self.cluster.mds.address)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("admin")
    (base / "srv").mkdir()
    c = Cluster(base / "srv")
    mounted: list[Mount] = []
    try:
        c.start(2)
        mounted.append(mount(c, base / "alpha", "client_id=alpha"))
        mounted.append(mount(c, base / "beta", "client_id=beta"))
        wait_for(lambda: len(ok_json("osts", "--mgs", c.mds.address)["osts"]) == 2, what="two OSTs")
        yield Env(c, *mounted)
    finally:
        for m in mounted:
            m.stop()
        c.stop()


def write_striped(m: Mount, name: str, size: int = 3 << 20) -> Path:
    """A file striped over both OSTs (1 MiB stripes), written and read back through the mount."""
    p = m.path / name
    r = lfsctl("setstripe", "-c", "2", "-S", "1M", str(p))
    assert r.returncode == 0, r.stderr
    data = os.urandom(size)
    p.write_bytes(data)
    assert p.read_bytes() == data
    return p


def server(d: dict, name: str) -> dict:
    return next(s for s in d["servers"] if s["name"] == name)


def test_locks_per_server_with_filters(env: Env) -> None:
    p = write_striped(env.alpha, "locked")
    os.stat(env.beta.path / "locked")
    d = ok_json("locks", *env.mgs)
    assert [s["name"] for s in d["servers"]] == ["testfs-MDT0000", "testfs-OST0000", "testfs-OST0001"]
    mdt = server(d, "testfs-MDT0000")
    assert {lk["owner"] for lk in mdt["locks"]} >= {"alpha", "beta"}
    assert all(lk["fid"].startswith("[0x") and lk["bits"] != "-" and lk["extent"] is None for lk in mdt["locks"])
    for ost in ("testfs-OST0000", "testfs-OST0001"):
        s = server(d, ost)
        mine = [lk for lk in s["locks"] if lk["owner"] == "alpha"]
        assert mine and all(lk["state"] == "granted" and lk["extent"] is not None and lk["mode"] in ("PW", "PR")
                            for lk in mine)
        assert s["granted"] == len(s["locks"]) and s["waiting"] == 0

    only = ok_json("locks", *env.mgs, "--ost", "1", "--client", "alpha")
    assert [s["name"] for s in only["servers"]] == ["testfs-OST0001"]
    assert {lk["owner"] for lk in only["servers"][0]["locks"]} == {"alpha"}
    mds = ok_json("locks", *env.mgs, "--mds", "--client", "beta")
    assert [s["name"] for s in mds["servers"]] == ["testfs-MDT0000"]
    assert mds["servers"][0]["locks"] and {lk["owner"] for lk in mds["servers"][0]["locks"]} == {"beta"}

    text = lfsctl("locks", *env.mgs, "--ost", "0")
    assert text.returncode == 0 and text.stderr == ""
    assert text.stdout.startswith("testfs-OST0000 (") and "granted" in text.stdout and "object " in text.stdout
    assert " alpha " in text.stdout and ("PW" in text.stdout or "PR" in text.stdout)
    assert p.exists()


def test_locks_shows_a_waiting_lock_and_blocking_flag(env: Env) -> None:
    p = write_striped(env.alpha, "contended")
    lov = json.loads(os.getxattr(p, "lustrepy.lov"))
    ost, oid = next((i, o) for i, o in lov["objects"] if i == 0)
    ost_addr = env.cluster.osts[0].address
    channel = make_channel(ost_addr)
    clients: list[LockClient] = []
    try:
        def connect(cid: str) -> LockClient:
            gen = call(oss_pb2_grpc.OssStub(channel).Connect, cpb.ConnectRequest(client_id=cid, fsname="testfs"),
                       timeout=5).conn_gen
            lc = LockClient(channel, cid, on_blocking=lambda desc: None, rpc_timeout=5.0)
            clients.append(lc)
            lc.attach(gen)
            assert lc.wait_attached(5)
            return lc

        holder, waiter = connect("holder-x"), connect("waiter-y")
        res = ResId(ost, oid, 0)
        held = holder.enqueue(res, LockMode.PW, extent=(0, 4095), hold=True)
        assert held.lock is not None
        got: list[object] = []
        t = threading.Thread(target=lambda: got.append(waiter.enqueue(res, LockMode.PR, extent=(0, 4095))))
        t.start()
        try:
            def waiting() -> dict | None:
                s = ok_json("locks", *env.mgs, "--ost", "0")["servers"][0]
                mine = [lk for lk in s["locks"] if lk["object_id"] == oid and lk["owner"] in ("holder-x", "waiter-y")]
                return s if any(lk["state"] == "waiting" for lk in mine) else None

            s = wait_for(waiting, timeout=8, what="a waiting lock in the listing")
            mine = {lk["owner"]: lk for lk in s["locks"] if lk["object_id"] == oid and lk["owner"] != "alpha"}
            assert mine["holder-x"]["state"] == "granted" and mine["holder-x"]["mode"] == "PW"
            assert "blocking-sent" in mine["holder-x"]["flags"]
            assert mine["waiter-y"]["state"] == "waiting" and mine["waiter-y"]["mode"] == "PR"
            assert s["waiting"] >= 1
            text = lfsctl("locks", *env.mgs, "--ost", "0", "--client", "waiter-y").stdout
            assert "waiting" in text and f"object {oid}" in text and "[0-" in text
        finally:
            holder.release(held.lock.cookie)
            t.join(15)
        assert got and getattr(got[0], "lock", None) is not None
    finally:
        for lc in clients:
            lc.close()
        channel.close()


def test_clients_lists_both_mounts_with_locks(env: Env) -> None:
    write_striped(env.beta, "by-beta", size=1 << 20)
    d = ok_json("clients", *env.mgs)
    by_id = {c["client_id"]: c for c in d["clients"]}
    assert {"alpha", "beta"} <= set(by_id)
    b = by_id["beta"]
    assert b["address"].startswith("127.0.0.1:") and b["state"] == "active"
    assert b["locks"] == sum(b["locks_per_server"].values()) and b["locks_per_server"]["testfs-MDT0000"] > 0
    assert set(b["locks_per_server"]) == {"testfs-MDT0000", "testfs-OST0000", "testfs-OST0001"}
    assert b["connected_s"] > 0 and b["idle_s"] >= 0
    text = lfsctl("clients", *env.mgs)
    assert text.returncode == 0 and text.stdout.startswith("CLIENT")
    row = next(line for line in text.stdout.splitlines() if line.startswith("beta "))
    assert "127.0.0.1:" in row and "MDT0000:" in row and "OST0001:" in row and "active" in row


def test_evict_drops_locks_everywhere_and_the_client_comes_back(env: Env) -> None:
    write_striped(env.beta, "before-evict", size=1 << 20)
    before = ok_json("locks", *env.mgs, "--client", "beta")
    cookies = {lk["cookie"] for s in before["servers"] for lk in s["locks"]}
    assert cookies
    r = lfsctl("evict", *env.mgs, "beta")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "evicted beta from testfs-MDT0000, testfs-OST0000, testfs-OST0001\n"
    after = ok_json("locks", *env.mgs, "--client", "beta")
    assert not cookies & {lk["cookie"] for s in after["servers"] for lk in s["locks"]}
    # The evicted client reconnects and works again; alpha never noticed.
    wait_for(lambda: (env.beta.path / "before-evict").stat().st_size == 1 << 20, timeout=30, what="beta back")
    (env.beta.path / "after-evict").write_bytes(b"x" * 10)
    assert (env.alpha.path / "after-evict").read_bytes() == b"x" * 10
    d = ok_json("evict", *env.mgs, "alpha")
    assert d["evicted"] == ["testfs-MDT0000", "testfs-OST0000", "testfs-OST0001"] and d["errors"] == []
    wait_for(lambda: (env.alpha.path / "after-evict").read_bytes() == b"x" * 10, timeout=30, what="alpha back")


def test_evict_unknown_client_is_one_line_exit_1(env: Env) -> None:
    r = lfsctl("evict", *env.mgs, "no-such-client")
    assert r.returncode == 1 and r.stdout == ""
    assert one_line(r.stderr) == "lfsctl: no client 'no-such-client' is known to any server of testfs"


@pytest.mark.parametrize(("argv", "code", "why"), [
    (["locks", "--mds", "--ost", "1"], 2, "not allowed with"),
    (["locks", "--ost", "x"], 2, "bad OST index"),
    (["locks", "--ost", "9"], 1, "no OST 9 in this file system (OSTs: 0, 1)"),
    (["evict"], 2, "the following arguments are required"),
    (["evict", " "], 2, "empty client id"),
])
def test_bad_usage(env: Env, argv: list[str], code: int, why: str) -> None:
    r = lfsctl(*argv, *env.mgs)
    assert r.returncode == code and why in r.stderr and "Traceback" not in r.stderr
    if code == 1:
        one_line(r.stderr)


@pytest.mark.parametrize("cmd", ["locks", "clients", "evict", "find"])
def test_help(cmd: str) -> None:
    r = lfsctl(cmd, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout and "--json" in r.stdout


def test_a_server_that_does_not_answer_is_one_line_and_exit_1(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start(1)
        wait_for(lambda: len(ok_json("osts", "--mgs", c.mds.address)["osts"]) == 1, what="the OST")
        ost_addr = c.osts[0].address
        c.osts[0].stop()
        r = lfsctl("locks", "--mgs", c.mds.address, "--ost", "0")
        assert r.returncode == 1 and r.stdout == ""
        assert one_line(r.stderr) == f"lfsctl: testfs-OST0000 at {ost_addr}: cannot reach it: connection refused"
        r = lfsctl("locks", "--mgs", c.mds.address, "--json")
        assert r.returncode in (0, 1)       # 1 while the MDS still counts the OST active, 0 once it is skipped
        d = json.loads(r.stdout)
        assert [s["name"] for s in d["servers"]] == ["testfs-MDT0000"]
        assert len(d["errors"]) + len(d["skipped"]) == 1
        r = lfsctl("evict", "--mgs", c.mds.address, "nobody")
        assert r.returncode == 1 and "Traceback" not in r.stderr
    finally:
        c.stop()


def test_unreachable_mgs(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    for cmd in (["locks"], ["clients"], ["evict", "x"]):
        r = lfsctl(*cmd, "--mgs", addr)
        assert r.returncode == 1 and one_line(r.stderr) == f"lfsctl: cannot reach MDS at {addr}: connection refused"

