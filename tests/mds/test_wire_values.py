"""Values from the wire that the protocol does not define, sent raw over real gRPC to a
real lustrepy-mds and lustrepy-oss: an unknown intent op, inode bit, lock mode, setattr
bit, rename flag, setxattr flag or lock flag is answered EINVAL with a one-line message,
changes nothing, and leaves no traceback in the server's log (never EIO)."""

from __future__ import annotations

import errno
import itertools
import os
import uuid

import pytest

from lustrepy.client.mdc import Mdc
from lustrepy.common.fid import Fid
from lustrepy.common.protocol import IT, SA
from lustrepy.common.records import Cred
from lustrepy.ldlm import flags as lfl
from lustrepy.ldlm.inodebits import IBit
from lustrepy.ldlm.modes import LockMode
from lustrepy.rpc.channel import call, make_channel
from lustrepy.rpc.convert import attr_from_pb, fid_from_pb, fid_to_pb
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2 as lpb
from lustrepy.rpc.v1 import ldlm_pb2_grpc
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2_grpc
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(90)

UNKNOWN_MODE = 3                # between LCK_EX (1) and LCK_PW (2) | LCK_PR (4): no mode
UNKNOWN_IBIT = 64               # above IBIT_XATTR (32)
UNKNOWN_IT = 64                 # above IT_READDIR (32)
UNKNOWN_SA = 1024               # above SA_SIZE_KNOWN (512)
UNKNOWN_FLAG = 4                # above RENAME_EXCHANGE / XATTR_REPLACE (2)
_xids = itertools.count(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("wirevals"))
    try:
        c.start(1)
        m = Mdc(c.mds.address, c.fsname)
        m.connect()
        wait_for(lambda: [o for o in m.statfs().osts if o.active], what="an active OST")
        m.close()
        yield c
    finally:
        c.stop()


@pytest.fixture
def mdc(cluster):
    m = Mdc(cluster.mds.address, cluster.fsname, with_locks=True)
    m.connect()
    yield m
    m.close()


def _dir(mdc: Mdc) -> Fid:
    return fid_from_pb(mdc.mkdir(mdc.root, uuid.uuid4().hex.encode()).attr.fid)


def _names(mdc: Mdc, d: Fid) -> set[bytes]:
    return {e.name for e in mdc.listdir(d)}


def _refused(hdr: cpb.RepHdr, what: str) -> None:
    assert hdr.errno == errno.EINVAL, (hdr.errno, hdr.message)
    assert what in hdr.message and "\n" not in hdr.message


@pytest.fixture
def quiet_logs(cluster):
    """Fail a test that left a traceback in a server's log while it ran."""
    logs = [p.log for p in (cluster.mds, *cluster.osts)]
    start = {log: log.stat().st_size for log in logs}
    yield
    for log in logs:
        with open(log, "rb") as f:
            f.seek(start[log])
            assert b"Traceback" not in f.read(), f"a traceback in {log.name}"


# ---- the MDS ----------------------------------------------------------------------------------


def test_intent_with_an_unknown_op_bit_is_einval(mdc, quiet_logs):
    d = _dir(mdc)
    rep = mdc.intent_raw(IT.LOOKUP | IT.GETATTR | UNKNOWN_IT, fid=d)
    _refused(rep.hdr, "intent op")
    assert rep.lock.cookie == 0                     # nothing granted
    rep = mdc.intent_raw(IT.OPEN | IT.CREAT | UNKNOWN_IT, parent=d, name=b"f", open_flags=os.O_CREAT | os.O_RDWR)
    _refused(rep.hdr, "intent op")
    assert b"f" not in _names(mdc, d)


def test_intent_with_an_unknown_lock_mode_is_einval(mdc, quiet_logs):
    d = _dir(mdc)
    rep = mdc.intent_raw(IT.LOOKUP | IT.GETATTR, fid=d, lock_mode=UNKNOWN_MODE)
    _refused(rep.hdr, "lock mode")
    assert rep.lock.cookie == 0


def test_intent_with_unknown_inode_bits_is_einval(mdc, quiet_logs):
    d = _dir(mdc)
    rep = mdc.intent_raw(IT.LOOKUP | IT.GETATTR, fid=d, ibits=IBit.LOOKUP | UNKNOWN_IBIT)
    _refused(rep.hdr, "inode")
    assert rep.lock.cookie == 0


def test_setattr_with_an_unknown_valid_bit_is_einval_and_changes_nothing(mdc, quiet_logs):
    d = _dir(mdc)
    rep = mdc.request(mdc.stub.Reint, mpb.ReintRequest, check=False,
                      op=mpb.ReintOp(setattr=mpb.SetattrOp(fid=fid_to_pb(d), valid=SA.MODE | UNKNOWN_SA, mode=0o700)))
    _refused(rep.hdr, "setattr")
    assert attr_from_pb(mdc.intent(IT.GETATTR, fid=d).attr).mode & 0o7777 == 0o755


def test_rename_with_an_unknown_flag_is_einval_and_moves_nothing(mdc, quiet_logs):
    d = _dir(mdc)
    mdc.create(d, b"a")
    op = mpb.RenameOp(src_parent=fid_to_pb(d), src_name=b"a", dst_parent=fid_to_pb(d), dst_name=b"b",
                      flags=UNKNOWN_FLAG)
    rep = mdc.request(mdc.stub.Reint, mpb.ReintRequest, check=False, op=mpb.ReintOp(rename=op))
    _refused(rep.hdr, "rename flag")
    assert b"a" in _names(mdc, d) and b"b" not in _names(mdc, d)


def test_setxattr_with_an_unknown_flag_is_einval(mdc, quiet_logs):
    d = _dir(mdc)
    op = mpb.SetxattrOp(fid=fid_to_pb(d), name=b"user.x", value=b"1", flags=UNKNOWN_FLAG)
    rep = mdc.request(mdc.stub.Reint, mpb.ReintRequest, check=False, op=mpb.ReintOp(setxattr=op))
    _refused(rep.hdr, "setxattr flag")


def test_update_record_with_an_unknown_setattr_bit_is_refused_and_consumed(mdc, quiet_logs):
    d = _dir(mdc)
    root = Cred(0, 0)
    record = mpb.UpdateRecord(seq=1, time_ns=1, uid=root.uid, gid=root.gid, op=mpb.ReintOp(
        setattr=mpb.SetattrOp(fid=fid_to_pb(d), valid=SA.MODE | UNKNOWN_SA, mode=0o700)))
    rep = mdc.reint_batch([record])
    _refused(rep.hdr, "setattr")
    assert (rep.failed_seq, rep.applied_seq, rep.applied) == (1, 1, 0)
    assert attr_from_pb(mdc.intent(IT.GETATTR, fid=d).attr).mode & 0o7777 == 0o755


def _enqueue(address: str, hdr: cpb.ReqHdr, **fields) -> lpb.LockEnqueueReply:
    channel = make_channel(address)
    try:
        return call(ldlm_pb2_grpc.LdlmStub(channel).Enqueue, lpb.LockEnqueueRequest(hdr=hdr, **fields), timeout=10)
    finally:
        channel.close()


def test_mds_lock_enqueue_with_unknown_mode_bits_or_flags_is_einval(mdc, cluster, quiet_logs):
    d = _dir(mdc)
    res = cpb.ResId(n0=d.seq, n1=d.oid, n2=d.ver)
    for fields, what in (({"mode": UNKNOWN_MODE, "ibits": IBit.LOOKUP}, "lock mode"),
                         ({"mode": LockMode.PR, "ibits": IBit.LOOKUP | UNKNOWN_IBIT}, "inode bits"),
                         ({"mode": LockMode.PR, "ibits": IBit.LOOKUP, "flags": 0x80}, "lock flags")):
        hdr = cpb.ReqHdr(client_id=mdc.client_id, conn_gen=mdc.conn_gen, xid=next(_xids))
        rep = _enqueue(cluster.mds.address, hdr, res=res, **fields)
        _refused(rep.hdr, what)
        assert rep.lock.cookie == 0


# ---- an OSS -----------------------------------------------------------------------------------


def test_oss_lock_enqueue_with_unknown_mode_or_flags_is_einval(cluster, quiet_logs):
    address = cluster.osts[0].address
    channel = make_channel(address)
    try:
        client_id = f"raw-{uuid.uuid4()}"
        conn = call(oss_pb2_grpc.OssStub(channel).Connect,
                    cpb.ConnectRequest(client_id=client_id, fsname=cluster.fsname), timeout=10)
        assert conn.hdr.errno == 0
        whole = cpb.Extent(start=0, end=2**64 - 1)
        for fields, what in (({"mode": UNKNOWN_MODE}, "lock mode"),
                             ({"mode": LockMode.PW, "flags": lfl.ALL + 1}, "lock flags"),
                             ({"mode": UNKNOWN_MODE, "flags": lfl.GLIMPSE}, "lock mode")):
            hdr = cpb.ReqHdr(client_id=client_id, conn_gen=conn.conn_gen, xid=next(_xids))
            rep = _enqueue(address, hdr, res=cpb.ResId(n0=0, n1=1), extent=whole, has_extent=True, **fields)
            _refused(rep.hdr, what)
            assert rep.lock.cookie == 0
    finally:
        channel.close()
