"""Fixtures for the data path tests: real lustrepy-mds and lustrepy-oss processes on loopback.

`cluster` (one per session, 4 OSTs) serves every data test that does not stop
or fill a server; `new_file(stripe_count)` creates a file through the MDS and
returns its FID and layout; `make_dp()` builds a DataPath (a client) that is
closed when the test ends.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from lustrepy.client.datapath import DataPath
from lustrepy.client.mdc import Mdc
from lustrepy.common.fid import Fid
from lustrepy.common.layout import Layout
from lustrepy.rpc.convert import fid_from_pb, layout_from_pb
from tests.support.servers import Cluster, wait_for

IT_OPEN, IT_CREAT = 4, 8
N_OSTS = 4
_names = itertools.count()


def start_cluster(root, n_osts: int, per_ost: dict[int, tuple[str, ...]] | None = None,
                  mds_args: tuple[str, ...] = ()) -> tuple[Cluster, Mdc]:
    """A running MDS (with mds_args) and n_osts OSSes (extra arguments per OST index), and a connected Mdc."""
    c = Cluster(root)
    try:
        c.mds = c.mds_proc(*mds_args).start()
        for i in range(n_osts):
            c.osts.append(c.oss_proc(i, *(per_ost or {}).get(i, ())).start())
        m = Mdc(c.mds.address, c.fsname)
        m.connect()
        wait_for(lambda: len(m.statfs().osts) == n_osts and
                 all(o.active and o.precreated > 0 for o in m.statfs().osts),
                 what=f"{n_osts} active OSTs with precreated objects")
    except BaseException:
        c.stop()
        raise
    return c, m


def addresses_of(mdc: Mdc) -> Callable[[], dict[int, str]]:
    return lambda: {o.index: o.address for o in mdc.statfs().osts}


def create_file(mdc: Mdc, stripe_count: int, stripe_size: int = 1 << 20,
                stripe_offset: int = -1) -> tuple[Fid, Layout]:
    name = f"f{next(_names)}-{os.getpid()}".encode()
    rep = mdc.intent(IT_OPEN | IT_CREAT, parent=mdc.root, name=name, open_flags=os.O_CREAT | os.O_RDWR,
                     mode=0o100644, layout=Layout(stripe_size=stripe_size, stripe_count=stripe_count,
                                                  stripe_offset=stripe_offset))
    mdc.close_handle(rep.open_handle)
    return fid_from_pb(rep.attr.fid), layout_from_pb(rep.layout)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[tuple[Cluster, Mdc]]:
    c, m = start_cluster(tmp_path_factory.mktemp("data"), N_OSTS)
    try:
        yield c, m
    finally:
        m.close()
        c.stop()


@pytest.fixture
def new_file(cluster) -> Callable[..., tuple[Fid, Layout]]:
    _, mdc = cluster
    return lambda stripe_count=1, stripe_size=1 << 20: create_file(mdc, stripe_count, stripe_size)


class Invalidations:
    """What a DataPath asked the mount to invalidate."""

    def __init__(self) -> None:
        self.fids: list[Fid] = []

    def __call__(self, fid: Fid) -> None:
        self.fids.append(fid)


@pytest.fixture
def make_dp(cluster) -> Iterator[Callable[..., DataPath]]:
    _, mdc = cluster
    made: list[DataPath] = []

    def make(name: str = "c", **kw) -> DataPath:
        kw.setdefault("on_invalidate", Invalidations())
        kw.setdefault("rpc_timeout", 10.0)
        dp = DataPath("testfs", f"{name}-{next(_names)}", addresses_of(mdc), **kw)
        made.append(dp)
        return dp

    yield make
    for dp in made:
        dp.close()
