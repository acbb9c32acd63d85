"""Failover address lists: parsed and checked once, one clear message for a bad one, and the
gRPC target that tries the addresses in order (common.nids); the mount source, the OSS's
MDS address and lfsctl's --mgs take them."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from lustrepy.client.mount import parse_source
from lustrepy.common import nids
from lustrepy.common.errors import QuietError
from lustrepy.ctl import mounts
from lustrepy.rpc.channel import bind, make_server


def test_split_and_hosts() -> None:
    assert nids.split_addresses("10.0.0.1:988") == [("10.0.0.1", 988)]
    assert nids.split_addresses("a:1, b:2") == [("a", 1), ("b", 2)]
    assert nids.split_addresses("[fe80::1]:7,[::1]:8") == [("fe80::1", 7), ("::1", 8)]
    assert nids.hosts("h1:1,h2:1,h1:2") == ["h1", "h2"]
    for bad, says in [("", "expected HOST:PORT"), ("a:1,", "expected HOST:PORT"), ("a:1,b", "'b'"),
                      ("a:0", "'a:0'"), ("a:70000", "'a:70000'"), (",".join(["a:1"] * 9), "at most 8")]:
        with pytest.raises(ValueError, match=says):
            nids.split_addresses(bad)


def test_grpc_target() -> None:
    assert nids.grpc_target("mds.example:988") == "mds.example:988"     # one: gRPC resolves it
    assert nids.grpc_target("127.0.0.1:1,localhost:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert nids.grpc_target("[::1]:1,[fe80::2]:2") == "ipv6:[::1]:1,[fe80::2]:2"
    with pytest.raises(ValueError, match="all have IPv4 or all IPv6"):
        nids.grpc_target("127.0.0.1:1,[::1]:2")
    with pytest.raises(ValueError, match="cannot resolve 'no-such-host.invalid'"):
        nids.grpc_target("127.0.0.1:1,no-such-host.invalid:2")


def test_a_channel_to_a_pair_reaches_whichever_serves() -> None:
    server = make_server(2)
    port = bind(server, "127.0.0.2:0")
    server.start()
    try:
        from lustrepy.rpc.channel import make_channel
        ch = make_channel(f"127.0.0.1:1,127.0.0.2:{port}")   # nothing listens on the first
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/none.Service/Method")(b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED     # the second answered
        ch.close()
    finally:
        server.stop(0)


def test_mount_sources() -> None:
    src = parse_source("127.0.0.1:988,127.0.0.2:988:/lp")
    assert (src.address, src.fsname) == ("127.0.0.1:988,127.0.0.2:988", "lp")
    assert mounts.parse_source("h1:1,h2:2:/lp") == mounts.MgsSource("h1:1,h2:2", "lp")
    for bad in ("127.0.0.1:988,:/lp", "127.0.0.1:988,x:/lp", "h:1,h:2", "127.0.0.1:1,[::1]:2:/lp"):
        with pytest.raises(QuietError, match="bad mount source"):
            parse_source(bad)
    with pytest.raises(QuietError):
        mounts.parse_source("h1:1,h2:/lp")


def test_the_oss_refuses_a_bad_mds_list_in_one_line(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "lustrepy.oss.server", "--dir", str(tmp_path / "ost"),
                        "--fsname", "fs", "--index", "0", "--listen", "127.0.0.1:0", "--mds", "127.0.0.1:1,nohost"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == ["lustrepy-oss: --mds: expected HOST:PORT, got 'nohost'"]
