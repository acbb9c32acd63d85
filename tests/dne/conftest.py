"""Fixtures of the tests of several MDTs."""

from __future__ import annotations

import pytest

from lustrepy.client.mdc import Mdc
from tests.support.dne import all_active, two_mdt_mount
from tests.support.servers import Cluster, wait_for


@pytest.fixture
def fs(tmp_path):
    """A mount of a file system of two MDTs whose root holds `far`, a directory on MDT1."""
    with two_mdt_mount(tmp_path) as got:
        yield got


@pytest.fixture
def two(tmp_path):
    """A file system of two MDTs, both active, and a metadata client of each (no mount)."""
    c = Cluster(tmp_path).start(1, n_mdts=2)
    m0 = m1 = None
    try:
        wait_for(lambda: all_active(c.mds.address, 2), what="MDT1 active")
        m0 = Mdc(c.mds.address, c.fsname, client_id="admin:t0", with_locks=True)
        m0.connect()
        m1 = Mdc(c.mdts[0].address, c.fsname, client_id="admin:t1", with_locks=True)
        m1.connect()
        yield c, m0, m1
    finally:
        for m in (m0, m1):
            if m is not None:
                m.close()
        c.stop()
