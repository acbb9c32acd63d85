"""Object capabilities on real servers: an OSS serves an object's bytes only with a capability the
MDS signed for that client, that object and that access mode, before its expiry."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from lustrepy.common import certs
from lustrepy.common.errors import from_wire
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import mds_pb2_grpc, oss_pb2_grpc
from tests.support.mounts import mount
from tests.support.servers import Cluster

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("capas")
    (tmp / "srv").mkdir()
    c = Cluster(tmp / "srv").start(1)
    m = None
    try:
        m = mount(c, tmp / "m", "client_id=alpha")
        (m.path / "public").write_bytes(b"p" * 100_000)
        secret = m.path / "secret"
        secret.write_bytes(b"s" * 100_000)
        os.chown(secret, 1000, 1000)
        os.chmod(secret, 0o600)
        yield c, m, tmp
    finally:
        if m is not None:
            m.stop()
        c.stop()


def _object(m, name: str) -> tuple[int, int, cpb.Fid]:
    r = subprocess.run([str(BIN / "lfsctl"), "getstripe", "--json", str(m.path / name)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    o = d["objects"][0]
    seq, oid, ver = (int(x, 16) for x in d["fid"].strip("[]").split(":"))
    return o[0], o[1], cpb.Fid(seq=seq, oid=oid, ver=ver)


class Mallory:
    """A node with a client certificate of the cluster's CA that opens nothing through a mount."""

    def __init__(self, c: Cluster, tmp: Path, name: str = "mallory") -> None:
        p = certs.issue(Path(os.environ["LUSTREPY_CERTS"]), "client", name, out=tmp / name)
        creds = grpc.ssl_channel_credentials(p.ca.read_bytes(), p.key.read_bytes(), p.cert.read_bytes())
        self.oss_ch = grpc.secure_channel(c.osts[0].address, creds,
                                          options=[("grpc.ssl_target_name_override", "oss.lustrepy")])
        self.mds_ch = grpc.secure_channel(c.mds.address, creds,
                                          options=[("grpc.ssl_target_name_override", "mds.lustrepy")])
        self.oss = oss_pb2_grpc.OssStub(self.oss_ch)
        self.mds = mds_pb2_grpc.MdsStub(self.mds_ch)
        self.id = f"{name}:1"
        self.oss_gen = self.oss.Connect(cpb.ConnectRequest(client_id=self.id, fsname=c.fsname), timeout=10).conn_gen
        self.mds_gen = self.mds.Connect(cpb.ConnectRequest(client_id=self.id, fsname=c.fsname), timeout=10).conn_gen
        self.xid = 0

    def hdr(self, gen: int, capas=(), uid: int = 0) -> cpb.ReqHdr:
        self.xid += 1
        return cpb.ReqHdr(client_id=self.id, conn_gen=gen, xid=self.xid, capas=list(capas), uid=uid, gid=uid)

    def read(self, oid: int, capas=()) -> tuple[int, bytes]:
        rep = self.oss.ReadOne(opb.ReadRequest(hdr=self.hdr(self.oss_gen, capas), object_id=oid, length=4096),
                               timeout=10)
        return from_wire(rep.hdr.errno), rep.data

    def punch(self, oid: int, capas=()) -> int:
        rep = self.oss.Punch(opb.PunchRequest(hdr=self.hdr(self.oss_gen, capas), object_id=oid, size=0), timeout=10)
        return from_wire(rep.hdr.errno)

    def capas(self, fid: cpb.Fid, write: bool = False, uid: int = 0) -> tuple[int, list[cpb.Capa]]:
        rep = self.mds.Capas(mpb.CapaRequest(hdr=self.hdr(self.mds_gen, uid=uid), fid=fid, write=write), timeout=10)
        return from_wire(rep.hdr.errno), list(rep.capas)

    def close(self) -> None:
        self.oss_ch.close()
        self.mds_ch.close()


def test_knowing_an_object_id_is_not_enough(env):
    c, m, tmp = env
    _, oid, _ = _object(m, "public")
    x = Mallory(c, tmp, "mallory1")
    try:
        assert x.read(oid)[0] == errno.EACCES
        assert x.punch(oid) == errno.EACCES
        forged = cpb.Capa(ost_index=0, object_id=oid, mode=3, expiry=int(time.time()) + 3600, key_id=1,
                          mac=b"\0" * 16)
        assert x.read(oid, [forged])[0] in (errno.EACCES, errno.EKEYEXPIRED)
    finally:
        x.close()
    assert (m.path / "public").read_bytes() == b"p" * 100_000


def test_a_capability_is_for_its_client_object_and_mode_only(env):
    c, m, tmp = env
    _, oid, fid = _object(m, "public")
    _, other_oid, _ = _object(m, "secret")
    x = Mallory(c, tmp, "mallory2")
    y = Mallory(c, tmp, "mallory3")
    try:
        err, caps = x.capas(fid)            # root may read a 0644 file: a capability for reading
        assert err == 0 and [cp.object_id for cp in caps] == [oid] and caps[0].mode == 1
        assert x.read(oid, caps) == (0, b"p" * 4096)
        assert x.punch(oid, caps) == errno.EACCES                    # reading only
        assert y.read(oid, caps)[0] == errno.EACCES                  # another client's
        moved = cpb.Capa()
        moved.CopyFrom(caps[0])
        moved.object_id = other_oid
        assert x.read(other_oid, [moved])[0] == errno.EACCES         # another object
        longer = cpb.Capa()
        longer.CopyFrom(caps[0])
        longer.expiry += 86400
        assert x.read(oid, [longer])[0] == errno.EACCES              # its expiry changed
        stronger = cpb.Capa()
        stronger.CopyFrom(caps[0])
        stronger.mode = 3
        assert x.punch(oid, [stronger]) == errno.EACCES              # its mode changed
    finally:
        x.close()
        y.close()


def test_no_capability_for_a_file_the_client_may_not_open(env):
    c, m, tmp = env
    _, oid, fid = _object(m, "secret")
    x = Mallory(c, tmp, "mallory4")
    try:
        assert x.capas(fid, uid=2000)[0] == errno.EACCES        # 0600 of uid 1000, never opened
        assert x.capas(fid, write=True, uid=2000)[0] == errno.EACCES
        assert x.read(oid)[0] == errno.EACCES
    finally:
        x.close()


def test_an_expired_capability_is_refused_and_a_mount_renews_its_own(env):
    c, m, tmp = env
    r = subprocess.run([str(BIN / "lfsctl"), "set-param", "--mgs", c.mds.address, "mds.capa_lifetime=2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    x = Mallory(c, tmp, "mallory5")
    try:
        _, oid, fid = _object(m, "public")
        err, caps = x.capas(fid)
        assert err == 0 and x.read(oid, caps)[0] == 0
        time.sleep(3)
        assert x.read(oid, caps)[0] == errno.EKEYEXPIRED
        # the mount fetches new ones as it needs them: reads and writes go on past many lifetimes
        with open(m.path / "renewed", "wb") as f:
            for i in range(4):
                f.write(bytes([i]) * 65536)
                f.flush()
                os.fsync(f.fileno())
                time.sleep(1.5)
        subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
        assert (m.path / "renewed").read_bytes() == b"".join(bytes([i]) * 65536 for i in range(4))
    finally:
        x.close()
        subprocess.run([str(BIN / "lfsctl"), "set-param", "--mgs", c.mds.address, "--reset", "mds.capa_lifetime"],
                       capture_output=True, text=True, timeout=60)


def test_a_read_only_client_gets_no_capability_for_writing(env):
    c, m, tmp = env
    r = subprocess.run([str(BIN / "lfsctl"), "set-param", "--mgs", c.mds.address, "mds.readonly_clients=mallory6"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    x = Mallory(c, tmp, "mallory6")
    try:
        _, oid, fid = _object(m, "public")
        assert x.capas(fid, write=True)[0] == errno.EROFS
        err, caps = x.capas(fid)
        assert err == 0 and x.punch(oid, caps) == errno.EACCES
    finally:
        x.close()
        subprocess.run([str(BIN / "lfsctl"), "set-param", "--mgs", c.mds.address, "--reset",
                        "mds.readonly_clients"], capture_output=True, text=True, timeout=60)


def test_write_back_after_an_mds_restart_waits_for_the_new_keys(tmp_path):
    """A restarted MDS signs with new keys its OSSes hear of only at their next heartbeat: background
    write-back streams refused meanwhile (EKEYEXPIRED) fetch again and go on; no byte is dropped."""
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv").start(1, oss_args=("--heartbeat", "4"))
    m = None
    try:
        m = mount(c, tmp_path / "m")
        os.close(os.open(m.path / "cold", os.O_CREAT | os.O_WRONLY))  # objects; no capability fetched yet
        c.mds.stop(signal.SIGKILL)
        c.mds = c.mds_proc().start()
        data = os.urandom(1024 * 1024)
        with open(m.path / "cold", "r+b") as f:  # its first capabilities come from the new MDS
            for _ in range(24):             # past a stream's 8 MiB: written back in the background
                f.write(data)
            os.fsync(f.fileno())
        subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)
        assert (m.path / "cold").read_bytes() == data * 24
    finally:
        if m is not None:
            m.stop()
        c.stop()
