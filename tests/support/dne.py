"""Helpers for tests of several MDTs: a cluster whose MDT1 has registered, and remote directories
made through the metadata protocol (as `lfsctl mkdir -i` makes them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lustrepy.client.mdc import Mdc
from lustrepy.common.fid import ROOT_FID, Fid
from lustrepy.rpc.channel import make_channel
from lustrepy.rpc.convert import check_rep, fid_from_pb
from lustrepy.rpc.fldwire import view_from_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster, wait_for


def fld(address: str):
    ch = make_channel(address, "mds")
    try:
        rep = mds_pb2_grpc.MdsStub(ch).Fld(mpb.FldRequest(), timeout=10)
        check_rep(rep.hdr)
        return view_from_pb(rep.ranges, rep.mdts)
    finally:
        ch.close()


def all_active(address: str, n: int):
    v = fld(address)
    return v if len(v.mdts) == n and all(m.active for m in v.mdts) else None


def root_dir(c: Cluster, name: bytes, mode: int = 0o777, **how: int) -> Fid:
    """Wait until every MDT is active, then make directory `name` of the root as `how` says
    (mdt_index=I: on MDT I, as `lfsctl mkdir -i`; stripe_count=N: striped, as `lfsctl mkdir -c`)."""
    wait_for(lambda: all_active(c.mds.address, 1 + len(c.mdts)), what="every MDT active")
    admin = Mdc(c.mds.address, c.fsname, client_id="admin:mk")
    admin.connect()
    try:
        return fid_from_pb(admin.mkdir(ROOT_FID, name, mode, **how).attr.fid)  # type: ignore[arg-type]
    finally:
        admin.close()


def remote_root_dir(c: Cluster, name: bytes, index: int = 1, mode: int = 0o777) -> Fid:
    return root_dir(c, name, mode, mdt_index=index)


def striped_root_dir(c: Cluster, name: bytes, count: int = 2, mode: int = 0o777) -> Fid:
    return root_dir(c, name, mode, stripe_count=count)


@contextmanager
def two_mdt_mount(tmp_path: Path, n_osts: int = 1, mds_args: tuple[str, ...] = (),
                  ready: Callable[[Cluster], bool] | None = None,
                  mount_opts: tuple[str, ...] = ()) -> Iterator[tuple[Cluster, Mount]]:
    """A file system of two MDTs (once `ready` says so, when given) whose root holds `far`, a
    directory on MDT1, and a mount of it (with `mount_opts`); both stopped after, whatever happened."""
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    m = None
    try:
        c.start(n_osts, n_mdts=2, mds_args=mds_args)
        if ready is not None:
            wait_for(lambda: ready(c), timeout=30, what="the file system ready")
        remote_root_dir(c, b"far")
        m = mount(c, tmp_path / "m", *mount_opts)
        yield c, m
    finally:
        if m is not None:
            m.stop()
        c.stop()
