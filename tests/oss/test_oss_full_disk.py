"""An OST on a real full disk (a small tmpfs mounted as its directory), through a mount:
writes fail with ENOSPC at write, fsync or close (never EIO or a hang), the OSS stays
up, data written before reads back intact, and once space is freed writes work again."""

from __future__ import annotations

import errno
import hashlib
import os
import time

import pytest

from tests.support.mounts import mount
from tests.support.servers import Cluster
from tests.support.tmpfs import fill, free_bytes, tmpfs

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20


def _write_file(path, data: bytes) -> None:
    with open(path, "wb") as f:
        for i in range(0, len(data), MiB):
            f.write(data[i:i + MiB])
        os.fsync(f.fileno())


def test_oss_full_disk_through_a_mount(tmp_path):
    c = Cluster(tmp_path)
    m = None
    with tmpfs(tmp_path / "ost0", "16m") as ost:
        try:
            c.start(1)
            m = mount(c, tmp_path / "mnt")
            mnt = tmp_path / "mnt"
            before = os.urandom(2 * MiB)
            _write_file(mnt / "before", before)
            fill(ost / "ballast", leave=256 * 1024)
            t0 = time.monotonic()
            with pytest.raises(OSError) as ei:
                _write_file(mnt / "big", os.urandom(8 * MiB))
            assert ei.value.errno == errno.ENOSPC, ei.value
            assert time.monotonic() - t0 < 60
            assert c.osts[0].popen.poll() is None and c.mds.popen.poll() is None
            assert hashlib.sha256((mnt / "before").read_bytes()).digest() == hashlib.sha256(before).digest()
            os.unlink(mnt / "big")
            os.unlink(ost / "ballast")
            assert free_bytes(ost) > 8 * MiB
            after = os.urandom(6 * MiB)
            _write_file(mnt / "after", after)
            m.stop()                                     # read back from the OSS, not from the page cache
            m = mount(c, mnt)
            assert (mnt / "after").read_bytes() == after
            assert (mnt / "before").read_bytes() == before
            assert "Traceback" not in (tmp_path / "ost0.log").read_text()
        finally:
            if m is not None:
                m.stop()
            c.stop()
