"""Files without objects on real mounts: a file made under a write-back-cache grant reaches
the MDS without objects (they are made at its first write), and a truncate at the MDS may
give it a size before it has any. Up to that size it reads as zeros, on every mount, and
its first write makes objects that keep the size.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.mounts import mount
from tests.support.servers import Cluster

pytestmark = pytest.mark.timeout(120)

SIZE = 35040


def _objects(path) -> int:
    """How many objects `lfsctl getstripe` lists for the file (0: no layout yet)."""
    out = subprocess.run(["lfsctl", "getstripe", "--json", str(path)], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        return 0
    return len(json.loads(out.stdout).get("objects", []))


def test_a_file_truncated_up_before_it_has_objects_reads_as_zeros(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    mounts = []
    try:
        c.start(2)
        a = mount(c, tmp_path / "a", "wbc", f"journal={tmp_path / 'journal'}")
        mounts.append(a)
        d = a.path / "d"
        d.mkdir()
        (d / "f").write_bytes(b"")                  # under a grant: no objects
        os.sync()
        b = mount(c, tmp_path / "b", "nowbc")
        mounts.append(b)
        os.truncate(b.path / "d" / "f", SIZE)        # at the MDS, the grant called back
        assert _objects(b.path / "d" / "f") == 0, "the case needs a file still without objects"
        assert os.stat(b.path / "d" / "f").st_size == SIZE
        for m in (a, b):
            assert (m.path / "d" / "f").read_bytes() == bytes(SIZE), m.path
        fresh = mount(c, tmp_path / "c", "nowbc")
        mounts.append(fresh)
        with open(fresh.path / "d" / "f", "rb") as f:    # open: its size stays the MDS's
            assert os.fstat(f.fileno()).st_size == SIZE
            os.chmod(b.path / "d" / "f", 0o600)        # its lock called back: asked again
            assert os.fstat(f.fileno()).st_size == SIZE
            assert f.read() == bytes(SIZE)
        assert os.stat(fresh.path / "d" / "f").st_size == SIZE
        with open(fresh.path / "d" / "f", "r+b") as f:  # the first write makes objects of that size
            f.seek(100)
            f.write(b"abc")
        want = bytes(100) + b"abc" + bytes(SIZE - 103)
        assert _objects(fresh.path / "d" / "f") >= 1
        for m in mounts:
            assert (m.path / "d" / "f").read_bytes() == want, m.path
    finally:
        for m in mounts:
            m.stop()
        c.stop()
