"""Mirrored files across hosts: an OSS host's link is pulled; 2-mirror files keep working from both
clients (reads and writes, no error), an unmirrored file on that OST fails within the bound, and
the MDS rebuilds the lost mirrors on the other hosts while that host is still gone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.multinode.conftest import N_OSTS, NetCluster
from tests.multinode.test_netns_cluster import OST_STATE_BOUND, fails_fast, ost_indexes, setstripe, sh, sha
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(300)

REBUILD_BOUND = 90.0        # inactive after 5 s, resync_delay 2 s, a pass every 2 s, then the copies


def mirrors(netcluster: NetCluster, path: Path) -> list[dict]:
    r = netcluster.lfsctl("getstripe", "--json", str(path))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["mirrors"]


def test_mirrored_files_outlive_a_pulled_oss_link_and_are_rebuilt_without_it(netcluster: NetCluster) -> None:
    a, b = (m.path for m in netcluster.mounts)
    r = netcluster.lfsctl("set-param", "--mgs", netcluster.mgs, "mds.mirror.resync_delay=2")
    assert r.returncode == 0, r.stderr
    (a / "mir").mkdir()
    r = netcluster.lfsctl("mirror", "create", "-N2", "-c", "1", str(a / "mir"))
    assert r.returncode == 0, r.stderr
    names = [f"f{k}" for k in range(6)]
    for name in names:
        sh(f"dd if=/dev/urandom of=mir/{name} bs=256K count=6 conv=fsync status=none", cwd=a)
    victim = mirrors(netcluster, a / "mir" / "f0")[0]["objects"][0][0]
    on_victim = [n for n in names if any(m["objects"][0][0] == victim for m in mirrors(netcluster, a / "mir" / n))]
    setstripe(a / "plain", "-c", "1", "-i", str(victim))
    sh("dd if=/dev/urandom of=plain bs=256K count=2 conv=fsync status=none", cwd=a)
    assert ost_indexes(a / "plain") == [victim]
    sums = {n: sha(a / "mir" / n) for n in names}
    assert all(sha(b / "mir" / n) == s for n, s in sums.items())     # b read every file before the cut

    host = netcluster.lan.hosts[f"oss{victim}"]
    host.link(False)
    try:
        cut = time.monotonic()
        for n in on_victim:                     # reads from both clients: no error, the same bytes
            assert sha(b / "mir" / n) == sums[n], n
            assert sha(a / "mir" / n) == sums[n], n
        for n in on_victim[:2]:                 # writes go on, on the mirror left
            sh(f"dd if=/dev/urandom of=mir/{n} bs=64K count=5 seek=2 conv=notrunc,fsync status=none", cwd=b)
            sums[n] = sha(b / "mir" / n)
            assert sha(a / "mir" / n) == sums[n], n
        print(f"mirrored I/O with OST{victim} cut took {time.monotonic() - cut:.1f}s")
        print("unmirrored file on it:", fails_fast("cat plain > /dev/null", cwd=b))
        wait_for(lambda: netcluster.ost_states()[victim] == "inactive", timeout=OST_STATE_BOUND,
                 what=f"OST{victim} inactive")

        def rebuilt() -> bool:
            ms = {n: mirrors(netcluster, a / "mir" / n) for n in names}
            return all(len(m) == 2 and all(x["state"] == "in_sync" and x["objects"][0][0] != victim for x in m)
                       for m in ms.values())
        wait_for(rebuilt, timeout=REBUILD_BOUND, interval=1.0, what="two in-sync mirrors off the lost host")
        print(f"mirrors rebuilt {time.monotonic() - cut:.1f}s after the cut")
        r = netcluster.lfsctl("mirror", "verify", "--mgs", netcluster.mgs, *(str(a / "mir" / n) for n in names))
        assert r.returncode == 0, r.stdout + r.stderr
        for n in names:
            assert sha(b / "mir" / n) == sums[n], n
        for n in on_victim:
            hosts = {x["objects"][0][0] for x in mirrors(netcluster, a / "mir" / n)}
            assert len(hosts) == 2 and victim not in hosts and hosts <= set(range(N_OSTS))
    finally:
        host.link(True)
    wait_for(lambda: netcluster.ost_states()[victim] == "active", timeout=OST_STATE_BOUND,
             what=f"OST{victim} active again")
    assert sha(b / "plain") == sha(a / "plain")
    sh("rm -rf mir plain", cwd=b)
