"""Fixtures of the tests of several MDTs."""

from __future__ import annotations

import pytest

from tests.support.dne import remote_root_dir
from tests.support.mounts import mount
from tests.support.servers import Cluster


@pytest.fixture
def fs(tmp_path):
    """A mount of a file system of two MDTs whose root holds `far`, a directory on MDT1."""
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv").start(1, n_mdts=2)
    m = None
    try:
        remote_root_dir(c, b"far")
        m = mount(c, tmp_path / "m")
        yield c, m
    finally:
        if m is not None:
            m.stop()
        c.stop()
