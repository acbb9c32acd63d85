"""MDS failover between two hosts: the MDT's directory (storage both MDS hosts reach)
is served by host `mds1`; a replay barrier, a load on two client hosts, then `mds1`
dies (its process killed and its cable pulled) and the MDT is started on `mds2`.
The two mounts and the OSSes were given both addresses: they find the MDT there,
replay what the barrier lost, and nothing whose call returned is missing."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.client.test_mds_recovery import _load, _tree
from tests.multinode.conftest import FSNAME, NetCluster, _why_not
from tests.support import netns
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(300)

PORT = 9880             # each host has its own port space: both MDS hosts serve the MDT on it
WINDOW = ("--recovery-window", "60")
N_OSTS = 2


@pytest.fixture
def pair(tmp_path_factory) -> Iterator[NetCluster]:
    reason = _why_not()
    if reason:
        pytest.skip(f"multi-node tests need network namespaces: {reason}")
    lan = netns.Lan(subnet="10.214.0", prefix=f"lpfo{os.getpid()}")
    c = NetCluster(lan, tmp_path_factory.mktemp("failover"))
    try:
        lan.start()
        c.failover = f"10.214.0.1:{PORT},10.214.0.2:{PORT}"
        c.start_mds("mds1", 1, PORT, *WINDOW)
        lan.add_host("mds2", 2)
        c.start_osts_and_clients(N_OSTS)
        yield c
    finally:
        problems = c.stop()
    assert not problems, problems


def test_two_mounts_follow_the_mdt_to_its_second_host_and_lose_nothing(pair: NetCluster) -> None:
    a, b = (m.path for m in pair.mounts)
    (a / "before").write_bytes(b"before" * 2000)
    r = pair.lfsctl("replay-barrier", "--mds", "--mgs", pair.mgs)
    assert r.returncode == 0, r.stderr
    _load(a, "a")
    _load(b, "b")
    want = _tree(a)
    assert _tree(b) == want

    assert pair.mds is not None
    pair.mds.stop(signal.SIGKILL)                   # mds1 dies: its process, then its cable
    pair.lan.hosts["mds1"].link(False)
    pair.start_mds("mds2", 2, PORT, *WINDOW)        # the same MDT, from the second host

    assert _tree(a) == want
    assert _tree(b) == want
    (b / "after").write_bytes(b"after" * 5000)      # new objects: the OSSes found mds2 too
    assert (a / "after").read_bytes() == b"after" * 5000
    rec = pair.query("mds")["recovery"]
    assert rec["state"] == "complete", rec
    assert rec["clients_recovered"] == 2 and rec["clients_evicted"] == 0 and rec["replays_failed"] == 0
    assert rec["replays_applied"] > 50
    wait_for(lambda: pair.ost_states() == dict.fromkeys(range(N_OSTS), "active"), timeout=30,
             what="both OSTs active on mds2")
    assert pair.query("df")["fsname"] == FSNAME
