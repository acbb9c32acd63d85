"""The OST's side of lfsck on a real directory, without gRPC: objects listed as the directory holds
them, a sub-directory cursor at a time, and lost objects recreated empty below LAST_ID only."""

from __future__ import annotations

import errno
import os

import pytest

from lustrepy.common.errors import LpError
from lustrepy.oss.osd import FANOUT
from tests.oss.test_oss_ofd import make_ofd, read, write


def listing(ofd, page: int) -> tuple[dict[int, int], int]:
    """Every object and its size, and the pages it took."""
    out: dict[int, int] = {}
    cursor, pages = 0, 0
    while cursor < FANOUT:
        got, nxt = ofd.list_objects(cursor, page)
        assert nxt > cursor
        out.update((oid, st.size) for oid, st in got)
        cursor, pages = nxt, pages + 1
    return out, pages


def test_listing_reads_the_directory(tmp_path) -> None:
    ofd = make_ofd(str(tmp_path))
    assert ofd.precreate(600) == (1, 600)
    write(ofd, 7, 0, b"x" * 10)
    os.unlink(ofd.osd.path(8))                                  # lost behind the OSS's back
    with open(ofd.osd.path(5000), "wb") as f:                   # left behind, unknown to the OSS
        f.write(b"abc")
    objs, pages = listing(ofd, 100)
    assert set(objs) == set(range(1, 601)) - {8} | {5000}
    assert objs[7] == 10 and objs[5000] == 3
    assert 1 < pages <= FANOUT
    assert listing(ofd, 10**6)[1] == 1                          # a large page: one sweep


def test_recreate_only_what_is_missing_below_last_id(tmp_path) -> None:
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(20)
    write(ofd, 3, 0, b"keep me")
    os.unlink(ofd.osd.path(4))
    count = ofd.object_count()
    assert ofd.recreate([3, 4, 4]) == [4]                       # 3 exists: left alone
    assert read(ofd, 3, 0, 100) == b"keep me" and read(ofd, 4, 0, 100) == b""
    assert ofd.object_count() == count                          # 4 was still in the id index
    os.unlink(ofd.osd.path(5))
    ofd.destroy([5])                                            # gone from the index as well
    assert ofd.recreate([5]) == [5] and ofd.object_count() == count
    for bad in ([0], [21], [2, 1 << 40]):
        with pytest.raises(LpError) as ei:
            ofd.recreate(bad)
        assert ei.value.errno == errno.EINVAL and "LAST_ID" in ei.value.message
