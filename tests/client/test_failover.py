"""MDS failover: the MDT's directory is served from a second address after its first
server dies (as a second host would take over storage both reach), and the mount and
the OSSes, given both addresses, find it there and recover as after a restart."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest

from tests.client.test_mds_recovery import _load, _tree, lfsctl
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(240)

WINDOW = ("--recovery-window", "60")
SECOND = "127.0.0.2"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_the_mount_and_the_osses_follow_the_mdt_to_its_failover_address(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    mounts: list[Mount] = []
    try:
        c.mds = c.mds_proc(*WINDOW).start()
        pair = f"{c.mds.address},{SECOND}:{_free_port(SECOND)}"
        for i in range(2):
            c.osts.append(c.oss_proc(i, "--mds", pair).start())
        a = mount(c, tmp_path / "a", mds=pair)
        mounts.append(a)
        (a.path / "before").write_bytes(b"before" * 1000)
        r = lfsctl("replay-barrier", "--mds", "--mgs", pair)
        assert r.returncode == 0, r.stderr
        _load(a.path, "a")
        want = _tree(a.path)

        c.mds.stop(signal.SIGKILL)                  # the first host dies; the second takes the MDT
        second = c.mds_proc(*WINDOW, "--listen", pair.split(",")[1])
        second.host = SECOND
        c.mds = second.start()

        assert _tree(a.path) == want                # replayed to the MDS at its second address
        (a.path / "after").write_bytes(b"after" * 3000)     # objects from OSTs that found it too
        assert (a.path / "after").read_bytes() == b"after" * 3000
        osts = wait_for(lambda: _active_osts(pair) == 2 and 2, what="both OSTs announced to the second host")
        assert osts == 2
        info = lfsctl("mds", "--mgs", pair, "--json")
        assert info.returncode == 0, info.stderr
        rec = json.loads(info.stdout)["recovery"]
        assert rec["state"] == "complete" and rec["clients_recovered"] == 1 and rec["replays_failed"] == 0
        df = lfsctl("df", str(a.path), "--json")   # lfsctl finds the MDT's pair from the mount
        assert df.returncode == 0, df.stderr
        assert json.loads(df.stdout)["mgs"] == f"{pair}:/testfs"
        fresh = mount(c, tmp_path / "fresh", mds=pair)
        mounts.append(fresh)
        assert _tree(fresh.path) == _tree(a.path)
        assert os.path.getsize(fresh.path / "before") == 6000
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def _active_osts(mgs: str) -> int:
    r = lfsctl("osts", "--mgs", mgs, "--json")
    if r.returncode != 0:
        return 0
    return sum(1 for o in json.loads(r.stdout)["osts"] if o.get("active"))
