"""Object ids per MDT on one OST: each MDT's range has its own LAST_ID (DIR/LAST_ID for MDT0, as
always; DIR/LAST_ID.<mdt> for the others), precreation hands out the next ids of the range asked
for, and an id beyond its range's LAST_ID names no object. On a real directory, in process, and
through the Oss service on loopback gRPC across a restart of the server."""

from __future__ import annotations

import errno

import crc32c
import pytest
from oss_helpers import OssClient, err

from lustrepy.common.errors import LpError
from lustrepy.common.objid import group_base, group_last
from lustrepy.oss.identity import load_or_format
from lustrepy.oss.lastid import LAST_ID_FILE, file_name
from lustrepy.oss.ofd import DIRTY_AHEAD, Ofd
from lustrepy.oss.osd import Osd
from lustrepy.oss.server import start_serving
from lustrepy.rpc.channel import call
from lustrepy.rpc.v1 import oss_pb2 as opb
from tests.oss.test_oss_ofd import make_ofd, read, write

pytestmark = pytest.mark.timeout(60)

B1 = group_base(1)          # MDT1's ids are B1 + 1, B1 + 2, ...
B2 = group_base(2)


def _errno(fn, *args) -> int:
    with pytest.raises(LpError) as ei:
        fn(*args)
    return ei.value.errno


def test_interleaved_precreates_give_disjoint_ranges_that_survive_a_restart(tmp_path):
    ofd = make_ofd(str(tmp_path))
    assert ofd.precreate(5) == (1, 5)                       # MDT0 as a one-MDT OST always did
    assert ofd.precreate(4, mdt_index=1) == (B1 + 1, B1 + 4)
    assert ofd.precreate(3, 0) == (6, 8)
    assert ofd.precreate(2, 1) == (B1 + 5, B1 + 6)
    assert ofd.precreate(1, 2) == (B2 + 1, B2 + 1)
    assert (tmp_path / LAST_ID_FILE).read_text().strip() == "8"
    assert (tmp_path / file_name(1)).read_text().strip() == str(B1 + 6)
    assert (tmp_path / file_name(2)).read_text().strip() == str(B2 + 1)
    assert ofd.last_id == 8 and ofd.last_ids.all() == {0: 8, 1: B1 + 6, 2: B2 + 1}
    assert ofd.object_ids() == [*range(1, 9), *range(B1 + 1, B1 + 7), B2 + 1]
    write(ofd, B1 + 3, 0, b"of MDT1")

    again = make_ofd(str(tmp_path))
    assert again.last_ids.all() == {0: 8, 1: B1 + 6, 2: B2 + 1} and again.object_count() == 15
    assert again.precreate(2, 1) == (B1 + 7, B1 + 8)
    assert again.precreate(2) == (9, 10)
    assert again.precreate(1, 3) == (group_base(3) + 1, group_base(3) + 1)
    assert read(again, B1 + 3, 0, 100) == b"of MDT1"
    assert again.object_ids() == [*range(1, 11), *range(B1 + 1, B1 + 9), B2 + 1, group_base(3) + 1]


def test_an_id_beyond_its_ranges_last_id_is_refused_even_with_a_file(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(50)                           # MDT0's LAST_ID is far above MDT1's ids' offsets
    ofd.precreate(3, 1)
    write(ofd, B1 + 2, 0, b"fine")
    beyond = B1 + 4
    ofd.osd.create(beyond)                      # a file of that name, never precreated
    for fn, args in ((ofd.getattr, (beyond,)), (ofd.punch, (beyond, 0)), (lambda o: list(ofd.read(o, 0, 10)),
                                                                            (beyond,))):
        assert _errno(fn, *args) == errno.ENOENT
    with ofd.write_session() as s:
        assert _errno(s.write, beyond, 0, b"x", crc32c.crc32c(b"x")) == errno.ENOENT
        assert _errno(s.write, B1, 0, b"x", crc32c.crc32c(b"x")) == errno.ENOENT    # the range's base
        assert _errno(s.write, B2 + 1, 0, b"x", crc32c.crc32c(b"x")) == errno.ENOENT   # MDT2: nothing yet
    assert ofd.getattr(B1 + 2).size == 4 and ofd.getattr(3).size == 0
    assert ofd.recreate([B1 + 1]) == [] and _errno(ofd.recreate, [beyond]) == errno.EINVAL
    assert _errno(ofd.recreate, [B2 + 1]) == errno.EINVAL


def test_start_up_recovers_each_ranges_last_id_on_its_own(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(4)
    ofd.precreate(2, 1)
    ofd.osd.create(B1 + 3)                      # a precreate of MDT1 that stopped before LAST_ID.1
    ofd.osd.create(B2 + 7)                      # and one of MDT2 before its first LAST_ID.2
    again = make_ofd(str(tmp_path))
    assert again.last_ids.all() == {0: 4, 1: B1 + 3, 2: B2 + 7}
    assert (tmp_path / LAST_ID_FILE).read_text().strip() == "4"
    assert (tmp_path / file_name(1)).read_text().strip() == str(B1 + 3)
    assert (tmp_path / file_name(2)).read_text().strip() == str(B2 + 7)
    assert again.precreate(1, 1) == (B1 + 4, B1 + 4) and again.precreate(1) == (5, 5)
    assert again.precreate(1, 2) == (B2 + 8, B2 + 8)


def test_a_damaged_or_foreign_last_id_of_a_range_stops_the_ost(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(2, 1)
    for bad in (b"garbage\n", f"{B2 + 5}\n".encode()):      # not a number; an id of MDT2's range
        (tmp_path / file_name(1)).write_bytes(bad)
        with pytest.raises(LpError) as ei:
            make_ofd(str(tmp_path))
        assert ei.value.errno == errno.EIO and "LAST_ID.1 is damaged" in ei.value.message


def test_an_exhausted_range_is_enospc_and_a_bad_mdt_einval(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.last_ids.record(1, group_last(1) - 2)   # as if MDT1 had used nearly all its ids
    assert ofd.precreate(10, 1) == (group_last(1) - 1, group_last(1))      # cut at the range's end
    assert _errno(ofd.precreate, 1, 1) == errno.ENOSPC
    assert ofd.precreate(1, 2) == (B2 + 1, B2 + 1)          # the next range is untouched
    assert ofd.precreate(1, 0) == (1, 1)
    assert _errno(ofd.precreate, 1, 256) == errno.EINVAL
    assert _errno(ofd.precreate, 1, -1) == errno.EINVAL
    assert ofd.last_ids.all() == {0: 1, 1: group_last(1), 2: B2 + 1}


def test_the_dirty_log_looks_ahead_within_a_range_only(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(3)
    ofd.precreate(100, 1)
    assert list(ofd._next_ids(1)) == [2, 3]                 # not MDT1's ids above
    assert list(ofd._next_ids(B1 + 1)) == list(range(B1 + 2, B1 + 2 + DIRTY_AHEAD))


# ---- through the Oss service, across a restart of the server ------------------------------------

def _precreate(c: OssClient, count: int, mdt: int) -> opb.PrecreateReply:
    return call(c.stub.Precreate, opb.PrecreateRequest(hdr=c.hdr(), count=count, mdt_index=mdt), 10)


def _list(c: OssClient) -> opb.ObjListReply:
    return call(c.stub.ListObjects, opb.ObjListRequest(index=0, max=65536), 10)


def _serve(path):
    osd = Osd(str(path))
    ofd = Ofd(osd, load_or_format(osd, "testfs", 0))
    serving = start_serving(ofd, "127.0.0.1:0", callback_timeout=2.0, threads=8, lane=False)
    serving.service.other_mdts = lambda: (1,)       # as MDT0's list would say
    c = OssClient(f"127.0.0.1:{serving.port}")
    assert err(c.connect().hdr) == 0
    return serving, c


def test_service_precreates_per_mdt_and_lists_every_last_id_across_a_restart(tmp_path):
    serving, c = _serve(tmp_path / "ost")
    try:
        r0, r1, r0b = _precreate(c, 3, 0), _precreate(c, 3, 1), _precreate(c, 2, 0)
        assert [(r.first_id, r.last_id) for r in (r0, r1, r0b)] == [(1, 3), (B1 + 1, B1 + 3), (4, 5)]
        assert err(_precreate(c, 1, 300).hdr) == errno.EINVAL
        assert err(_precreate(c, 1, 2).hdr) == errno.EINVAL     # no MDT2 in MDT0's list: no objects for it
        assert err(c.write(B1 + 1, 0, b"mdt1 data").hdr) == 0
        assert err(c.write(B1 + 9, 0, b"x").hdr) == errno.ENOENT
        assert err(c.getattr(B1 + 9).hdr) == errno.ENOENT
        assert err(c.read_chunks(B1 + 9, 0, 10)[0].hdr) == errno.ENOENT
        ls = _list(c)
        assert err(ls.hdr) == 0 and ls.last_id == 5 and dict(ls.last_ids) == {0: 5, 1: B1 + 3}
    finally:
        c.close()
        serving.stop(grace=0.5)

    serving, c = _serve(tmp_path / "ost")
    try:
        ls = _list(c)
        assert ls.last_id == 5 and dict(ls.last_ids) == {0: 5, 1: B1 + 3}
        assert sorted(o.object_id for o in ls.objects) == [1, 2, 3, 4, 5, B1 + 1, B1 + 2, B1 + 3]
        r = _precreate(c, 2, 1)
        assert (r.first_id, r.last_id) == (B1 + 4, B1 + 5)
        assert c.read(B1 + 1, 0, 100) == b"mdt1 data"
        assert err(c.getattr(B1 + 6).hdr) == errno.ENOENT
    finally:
        c.close()
        serving.stop(grace=0.5)
