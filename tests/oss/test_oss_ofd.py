"""Object semantics on a real directory, without gRPC: ids, LAST_ID, I/O, space."""

from __future__ import annotations

import errno
import os

import crc32c
import pytest

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.layout import MAX_FILE_SIZE
from lustrepy.oss.identity import load_or_format
from lustrepy.oss.ofd import LAST_ID_FILE, Ofd
from lustrepy.oss.osd import Osd
from tests.support.tmpfs import tmpfs

MiB = 1024 * 1024


def make_ofd(path: str, capacity: int | None = None) -> Ofd:
    osd = Osd(path)
    return Ofd(osd, load_or_format(osd, "testfs", 0), capacity)


def write(ofd: Ofd, oid: int, offset: int, data: bytes, sync: bool = False) -> int:
    with ofd.write_session() as s:
        s.write(oid, offset, data, crc32c.crc32c(data), sync)
        return s.finish()[1].size


def read(ofd: Ofd, oid: int, offset: int, length: int) -> bytes:
    return b"".join(p.data for p in ofd.read(oid, offset, length))


def test_format_once_then_identity_is_checked(tmp_path):
    d = str(tmp_path / "ost")
    ident = load_or_format(Osd(d), "testfs", 3)
    assert ident.uuid == "testfs-OST0003_UUID"
    assert load_or_format(Osd(d), None, None) == ident
    with pytest.raises(QuietError, match="belongs to file system 'testfs', not 'other'"):
        load_or_format(Osd(d), "other", 3)
    with pytest.raises(QuietError, match="is OST index 3, not 4"):
        load_or_format(Osd(d), "testfs", 4)


def test_unformatted_or_foreign_dirs_are_refused(tmp_path):
    with pytest.raises(QuietError, match="not a formatted OST"):
        load_or_format(Osd(str(tmp_path / "new")), None, None)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "somefile").write_text("x")
    with pytest.raises(QuietError, match="not empty"):
        load_or_format(Osd(str(tmp_path / "busy")), "testfs", 0)
    with pytest.raises(QuietError, match="invalid file system name"):
        load_or_format(Osd(str(tmp_path / "new")), "bad name", 0)


def test_precreate_persists_last_id_and_objects(tmp_path):
    ofd = make_ofd(str(tmp_path))
    assert ofd.precreate(5) == (1, 5)
    assert ofd.precreate(3) == (6, 8)
    assert (tmp_path / LAST_ID_FILE).read_text().strip() == "8"
    for oid in range(1, 9):
        assert os.path.getsize(tmp_path / "O" / f"{oid & 0xff:02x}" / str(oid)) == 0
    again = make_ofd(str(tmp_path))
    assert again.last_id == 8 and again.object_count() == 8
    assert again.precreate(1) == (9, 9)
    with pytest.raises(LpError) as e:
        again.precreate(0)
    assert e.value.errno == errno.EINVAL


def test_objects_beyond_last_id_are_adopted_at_start(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(2)
    ofd.osd.create(3)                  # a precreate that stopped before LAST_ID was saved
    again = make_ofd(str(tmp_path))
    assert again.last_id == 3
    assert again.precreate(1) == (4, 4)


def test_write_read_holes_and_eof(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(1)
    assert write(ofd, 1, 3 * MiB, b"z" * 10) == 3 * MiB + 10
    assert read(ofd, 1, 0, 4 * MiB) == b"\0" * (3 * MiB) + b"z" * 10
    pieces = list(ofd.read(1, 0, 10 * MiB))
    assert [p.eof for p in pieces] == [False, False, False, True]
    assert list(ofd.read(1, 5 * MiB, 10))[0].eof is True
    assert list(ofd.read(1, 0, 10))[-1].eof is False


def test_bad_crc_efbig_enoent_write_nothing(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(1)
    with ofd.write_session() as s:
        with pytest.raises(LpError) as e:
            s.write(1, 0, b"abc", crc32c.crc32c(b"abd"))
        assert e.value.errno == errno.EBADMSG
        with pytest.raises(LpError) as e:
            s.write(1, MAX_FILE_SIZE - 1, b"ab", crc32c.crc32c(b"ab"))
        assert e.value.errno == errno.EFBIG
        with pytest.raises(LpError) as e:
            s.write(2, 0, b"ab", crc32c.crc32c(b"ab"))
        assert e.value.errno == errno.ENOENT
    assert ofd.getattr(1).size == 0


def test_punch_and_destroy(tmp_path):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(2)
    write(ofd, 1, 0, b"x" * 10000)
    assert ofd.punch(1, 100).size == 100
    assert read(ofd, 1, 0, 1000) == b"x" * 100
    assert ofd.punch(1, 5000).size == 5000
    assert read(ofd, 1, 0, 5000) == b"x" * 100 + b"\0" * 4900
    assert ofd.destroy([1, 2, 77]) == 2
    assert ofd.destroy([1, 2]) == 0
    with pytest.raises(LpError) as e:
        ofd.getattr(1)
    assert e.value.errno == errno.ENOENT
    assert ofd.lvb(1).size == 0


def test_capacity_enospc_keeps_written_data(tmp_path):
    ofd = make_ofd(str(tmp_path), capacity=3 * MiB)
    ofd.precreate(2)
    first = os.urandom(2 * MiB)
    write(ofd, 1, 0, first)
    sf = ofd.statfs()
    assert sf.blocks * sf.bsize == 3 * MiB
    assert sf.bavail * sf.bsize <= MiB
    with pytest.raises(LpError) as e:
        write(ofd, 2, 0, os.urandom(2 * MiB))
    assert e.value.errno == errno.ENOSPC
    with pytest.raises(LpError) as e:
        write(ofd, 1, 2 * MiB, os.urandom(2 * MiB))
    assert e.value.errno == errno.ENOSPC
    assert ofd.getattr(1).size == 2 * MiB and ofd.getattr(2).size == 0
    assert read(ofd, 1, 0, 4 * MiB) == first
    write(ofd, 1, 0, b"y" * MiB)              # overwriting allocated space needs none
    ofd.destroy([1])
    write(ofd, 2, 0, first)                   # space comes back with destroy
    sf = make_ofd(str(tmp_path), capacity=3 * MiB).statfs()      # used space is counted again at start
    assert sf.bavail * sf.bsize <= MiB


def test_real_enospc_restores_size(tmp_path, monkeypatch):
    ofd = make_ofd(str(tmp_path))
    ofd.precreate(1)
    write(ofd, 1, 0, b"a" * 8192)
    real = ofd.osd.pwrite_all

    def half_then_full(fd: int, data: bytes, offset: int) -> None:
        real(fd, bytes(data)[: len(data) // 2], offset)
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(ofd.osd, "pwrite_all", half_then_full)
    with pytest.raises(LpError) as e:
        write(ofd, 1, 8192, b"b" * 8192)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert ofd.getattr(1).size == 8192
    assert read(ofd, 1, 0, 65536) == b"a" * 8192


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs, so the disk itself runs out of space (needs root; skipped otherwise); unmounted
    at the end, lazily when the test's OST still holds files open on it."""
    with tmpfs(tmp_path / "small", "2m") as mnt:
        yield mnt


def test_disk_enospc_keeps_written_data(small_fs):
    ofd = make_ofd(str(small_fs / "ost"))
    ofd.precreate(2)
    first = os.urandom(MiB)
    write(ofd, 1, 0, first)
    with pytest.raises(LpError) as e:
        with ofd.write_session() as s:
            for i in range(3):
                chunk = os.urandom(MiB)
                s.write(2, i * MiB, chunk, crc32c.crc32c(chunk))
    assert e.value.errno == errno.ENOSPC
    assert ofd.getattr(2).size == s.written          # nothing past what was acknowledged
    assert read(ofd, 1, 0, 4 * MiB) == first
