"""Mutual TLS and roles on real servers: who may connect at all, and who may call what.

The servers are real lustrepy-mds and lustrepy-oss processes under the suite's
CA. Callers here are gRPC stubs made with explicit credentials: none, a
certificate of another CA, or a certificate of this CA with a given role.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from lustrepy.common import certs
from lustrepy.rpc import authz
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2, mds_pb2, oss_pb2
from tests.support.servers import Cluster

BIN = Path(sys.executable).parent
SERVICES = {"Mds": mds_pb2, "Oss": oss_pb2, "Ldlm": ldlm_pb2}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    c = Cluster(root).start(1)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    """A CA that is not the cluster's, with an admin certificate."""
    d = tmp_path_factory.mktemp("other-ca")
    certs.init_ca(d, "other")
    return certs.issue(d, "admin", "admin")


def _ca_dir() -> Path:
    import os
    return Path(os.environ["LUSTREPY_CERTS"])


def _issue(tmp_path, role: str, name: str) -> certs.Paths:
    return certs.issue(_ca_dir(), role, name, out=tmp_path)


def _channel(address: str, paths: certs.Paths | None, server_name: str = "server.lustrepy") -> grpc.Channel:
    if paths is None:
        return grpc.insecure_channel(address)
    creds = grpc.ssl_channel_credentials(paths.ca.read_bytes(), paths.key.read_bytes(), paths.cert.read_bytes())
    return grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", server_name)])


def _unary(ch: grpc.Channel, service: str, method: str):
    """A raw unary (or unary-stream) callable for any method, sending an empty request."""
    desc = SERVICES[service].DESCRIPTOR.services_by_name[service].methods_by_name[method]
    path = f"/{SERVICES[service].DESCRIPTOR.package}.{service}/{method}"
    if desc.client_streaming:
        fn = ch.stream_unary(path) if not desc.server_streaming else ch.stream_stream(path)
    else:
        fn = ch.unary_unary(path) if not desc.server_streaming else ch.unary_stream(path)

    def call(timeout):
        r = fn(iter([b""]) if desc.client_streaming else b"", timeout=timeout)
        if desc.server_streaming:
            next(iter(r), None)         # the first message, or the end, or the refusal
        return r
    return call


def _code(fn) -> grpc.StatusCode | None:
    try:
        fn(5)
    except grpc.RpcError as e:
        return e.code()
    return None


def _methods(service: str) -> list[str]:
    return [m.name for m in SERVICES[service].DESCRIPTOR.services_by_name[service].methods]


def _targets(cluster) -> list[tuple[str, str]]:
    """(address, service) of every service the cluster serves."""
    mds, oss = cluster.mds.address, cluster.osts[0].address
    return [(mds, "Mds"), (mds, "Ldlm"), (oss, "Oss"), (oss, "Ldlm")]


def test_without_a_certificate_or_with_another_ca_nothing_is_served(cluster, other_ca):
    for who in (None, other_ca):
        for address, service in _targets(cluster):
            with _channel(address, who) as ch:
                for m in _methods(service):
                    assert _code(_unary(ch, service, m)) == grpc.StatusCode.UNAVAILABLE, (who, service, m)


def test_a_client_certificate_may_call_only_the_file_system_rpcs(cluster, tmp_path):
    client = _issue(tmp_path, "client", "node7")
    for address, service in _targets(cluster):
        with _channel(address, client) as ch:
            for m in _methods(service):
                code = _code(_unary(ch, service, m))
                if authz.allowed(service, "client", m):
                    assert code != grpc.StatusCode.PERMISSION_DENIED, (service, m)
                else:
                    assert code == grpc.StatusCode.PERMISSION_DENIED, (service, m, code)


def test_an_oss_certificate_may_not_administer(cluster, tmp_path):
    oss = _issue(tmp_path, "oss", "rogue-oss")
    with _channel(cluster.mds.address, oss) as ch:
        for m in ("SetParam", "LfsckRepair", "MirrorChange", "Intent", "Connect"):
            assert _code(_unary(ch, "Mds", m)) == grpc.StatusCode.PERMISSION_DENIED, m
        assert _code(_unary(ch, "Ldlm", "Evict")) == grpc.StatusCode.PERMISSION_DENIED


def test_a_client_cannot_speak_as_another(cluster, tmp_path):
    client = _issue(tmp_path, "client", "node7")
    with _channel(cluster.mds.address, client, "mds.lustrepy") as ch:
        connect = ch.unary_unary("/lustrepy.rpc.v1.Mds/Connect", request_serializer=cpb.ConnectRequest.SerializeToString,
                                 response_deserializer=cpb.ConnectReply.FromString)
        with pytest.raises(grpc.RpcError) as ei:
            connect(cpb.ConnectRequest(client_id="node8:x", fsname=cluster.fsname), timeout=5)
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as ei:
            connect(cpb.ConnectRequest(client_id="node77", fsname=cluster.fsname), timeout=5)
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
        rep = connect(cpb.ConnectRequest(client_id="node7:mount1", fsname=cluster.fsname), timeout=5)
        assert rep.hdr.errno == 0 and rep.lane_token


def test_a_server_certificate_is_checked_for_its_role(cluster, tmp_path):
    """A client that wants the MDS does not take an OSS (or a client) for it."""
    client = _issue(tmp_path, "client", "node7")
    with _channel(cluster.osts[0].address, client, "mds.lustrepy") as ch:
        assert _code(_unary(ch, "Oss", "Statfs")) == grpc.StatusCode.UNAVAILABLE
    with _channel(cluster.mds.address, client, "mds.lustrepy") as ch:
        assert _code(_unary(ch, "Mds", "Statfs")) is None


def test_lfsctl_with_a_client_certificate_is_refused_in_one_line(cluster, tmp_path):
    _issue(tmp_path, "client", "admin")         # named admin.crt, but its role is client
    r = subprocess.run([str(BIN / "lfsctl"), "--certs", str(tmp_path), "set-param", "--mgs", cluster.mds.address,
                        "mds.ost_timeout=9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "may not call" in r.stderr, r.stderr
    r = subprocess.run([str(BIN / "lfsctl"), "get-param", "--mgs", cluster.mds.address, "mds.ost_timeout"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_a_server_without_a_certificate_says_so_and_plaintext_is_loopback_only(tmp_path, monkeypatch):
    monkeypatch.delenv("LUSTREPY_CERTS")
    r = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "mdt"), "--fsname", "t",
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("lustrepy-mds: no certificate"), r.stderr
    r = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "mdt"), "--fsname", "t", "--plaintext",
                        "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "plaintext is for loopback only" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
