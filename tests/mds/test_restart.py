"""MDS restarts and refusals, with real processes: the destroy queue and reply
records survive a restart; a second MDS on one database and a taken port are
refused with one line."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.layout import Layout
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import fid_from_pb, fid_to_pb, layout_from_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from tests.mds.test_service import _object_exists
from tests.support.servers import BIN, Cluster, wait_for

pytestmark = pytest.mark.timeout(120)


def _ready(c: Cluster, n: int, client_id: str | None = None) -> Mdc:
    m = Mdc(c.mds.address, c.fsname, with_locks=True, client_id=client_id)
    wait_for(lambda: _try_connect(m), what="MDS connect")
    wait_for(lambda: sum(o.active and o.precreated > 0 for o in m.statfs().osts) == n, what=f"{n} OSTs ready")
    return m


def _try_connect(m: Mdc) -> bool:
    try:
        m.connect()
        return True
    except Exception:
        return False


def test_destroy_queue_and_reply_records_survive_mds_restart(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(1)
        m = _ready(c, 1)
        d = fid_from_pb(m.mkdir(m.root, b"d").attr.fid)
        rep = m.intent(4 | 8, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR, layout=Layout())
        m.close_handle(rep.open_handle)
        (obj,) = layout_from_pb(rep.layout).objects
        assert _object_exists(c, 0, obj.object_id)
        req = mpb.ReintRequest(hdr=m.hdr(), op=mpb.ReintOp(mkdir=mpb.MkdirOp(parent=fid_to_pb(d), name=b"m", mode=0o755)))
        first = call(m.stub.Reint, req)
        assert first.hdr.errno == 0
        c.osts[0].stop()                               # the OSS is down: the destroy must wait
        m.unlink(d, b"f")
        m.sync()
        c.mds.stop()                                   # gone while the client is connected
        c.mds = c.mds_proc().start()                   # same port, same database
        wait_for(lambda: _try_connect(m), what="MDS connect")   # the same client reconnects ...
        req.hdr.conn_gen = m.conn_gen                  # ... and resends on its new connection
        req.hdr.resent = True
        again = call(m.stub.Reint, req)                # answered from the reply record, not run again
        assert again.hdr.errno == 0 and again.attr.fid == first.attr.fid
        c.osts[0] = c.oss_proc(0).start()
        wait_for(lambda: not _object_exists(c, 0, obj.object_id), timeout=20, what="object destroyed")
        m.close()
    finally:
        c.stop()


def test_second_mds_on_same_database_is_refused(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(0)
        p = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "mdt"), "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
        assert str(c.mds.popen.pid) in p.stderr
    finally:
        c.stop()


def test_taken_port_and_bad_arguments_give_one_line(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        for args in (["--listen", f"127.0.0.1:{port}", "--fsname", "t1"],
                     ["--listen", "nonsense", "--fsname", "t1"],
                     ["--listen", "127.0.0.1:0"],                 # unformatted, no --fsname
                     ["--listen", "127.0.0.1:0", "--fsname", "name-too-long-for-lustre"]):
            p = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "x"), *args],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 1, (args, p.stderr)
            assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, (args, p.stderr)
    finally:
        s.close()
