"""One OST through the Osc: streams with checksums, short reads at the object's end, punch,
getattr, sync, extent locks with their LVBs, and connection errors."""

from __future__ import annotations

import errno
import os

import pytest

from lustrepy.client.osc import Osc
from lustrepy.common.errors import BadData, LpError
from lustrepy.ldlm import flags as lfl
from lustrepy.ldlm.extent import EOF
from lustrepy.ldlm.modes import LockMode
from tests.client.conftest import addresses_of

pytestmark = pytest.mark.timeout(60)

MiB = 1 << 20


@pytest.fixture(params=["lane", "grpc"])
def osc_of(cluster, request):
    """Oscs that move bulk data on the OSS's request lane, or on gRPC only."""
    _, mdc = cluster
    made: list[Osc] = []
    addrs = addresses_of(mdc)

    def make(index: int, name: str = "osc", address=None) -> Osc:
        o = Osc(index, f"{name}-{len(made)}-{os.getpid()}", "testfs",
                address or (lambda refresh: addrs().get(index)), rpc_timeout=5.0,
                on_blocking=lambda desc: None, on_glimpse=lambda desc: None, on_lost=lambda: None,
                use_lane=request.param == "lane")
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


def test_write_and_read_streams(osc_of, new_file):
    _, layout = new_file(1)
    obj = layout.objects[0]
    osc = osc_of(obj.ost_index)
    a, b = os.urandom(3 * MiB), os.urandom(1000)
    lvb = osc.write(obj.object_id, [(0, a), (5 * MiB, b)])
    assert lvb.size == 5 * MiB + 1000
    chunks = osc.read(obj.object_id, 0, 8 * MiB, chunk_size=MiB)
    # gRPC streams the chunks asked for; the lane answers up to 16 MiB in one buffer
    assert [len(c) for c in chunks][:3] == ([MiB, MiB, MiB] if not osc.use_lane else [5 * MiB + 1000])
    data = b"".join(chunks)
    assert len(data) == 5 * MiB + 1000                  # cut at the object's end
    assert data[:3 * MiB] == a and data[3 * MiB:5 * MiB] == bytes(2 * MiB) and data[5 * MiB:] == b
    assert osc.read(obj.object_id, 6 * MiB, 10) == []
    assert osc.getattr(obj.object_id).size == 5 * MiB + 1000
    assert osc.punch(obj.object_id, 10).size == 10
    osc.sync(obj.object_id)
    assert b"".join(osc.read(obj.object_id, 0, 100)) == a[:10]
    st = osc.statistics()
    assert st["connected"] and st["connects"] == 1 and st["write_bytes"] == 3 * MiB + 1000


def test_locks_carry_the_object_lvb_and_glimpse_another_writer(osc_of, new_file):
    _, layout = new_file(1)
    obj = layout.objects[0]
    w, r = osc_of(obj.ost_index, "w"), osc_of(obj.ost_index, "r")
    w.write(obj.object_id, [(0, b"x" * 4096)])
    grant, epoch = w.enqueue(obj.object_id, LockMode.PW, (0, 10))
    assert grant.lock is not None and grant.lock.extent.end == EOF       # grown for a streaming writer
    assert grant.lvb.size == 4096 and epoch == w.epoch
    glimpsed, _ = r.enqueue(obj.object_id, LockMode.PR, (0, EOF), flags=lfl.GLIMPSE)
    assert glimpsed.lock is None and glimpsed.lvb.size == 4096          # answered without revoking w
    assert w.statistics()["blocking_callbacks"] == 0


def test_unknown_or_dead_address_is_enotconn(osc_of):
    with pytest.raises(LpError) as ei:
        osc_of(0, address=lambda refresh: None).getattr(1)
    assert ei.value.errno == errno.ENOTCONN
    with pytest.raises(LpError) as ei:
        osc_of(0, address=lambda refresh: "127.0.0.1:1").getattr(1)
    assert ei.value.errno == errno.ENOTCONN


def test_missing_object_is_enoent(osc_of):
    osc = osc_of(0)
    with pytest.raises(LpError) as ei:
        osc.getattr(10**9)
    assert ei.value.errno == errno.ENOENT


def test_bytes_failing_their_checksum_at_rest_are_bad_data_never_returned(osc_of, new_file, cluster):
    c, _ = cluster
    _, layout = new_file(1)
    obj = layout.objects[0]
    osc = osc_of(obj.ost_index)
    data = os.urandom(MiB)
    osc.write(obj.object_id, [(0, data)])
    path = c.root / f"ost{obj.ost_index}" / "O" / f"{obj.object_id & 0xff:02x}" / str(obj.object_id)
    with open(path, "r+b") as f:                    # bit rot under the OSS
        f.seek(MiB - 1)
        f.write(bytes([data[-1] ^ 1]))
    with pytest.raises(BadData) as e:
        osc.read(obj.object_id, 0, MiB)
    assert e.value.errno == errno.EIO and "checksum" in e.value.message
    assert b"".join(osc.read(obj.object_id, 0, MiB // 2)) == data[:MiB // 2]     # the good blocks read
    osc.write(obj.object_id, [(MiB - 65536, data[-65536:])])                      # a whole rewrite repairs
    assert b"".join(osc.read(obj.object_id, 0, MiB)) == data
