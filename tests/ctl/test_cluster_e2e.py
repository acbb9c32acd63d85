"""`lfsctl cluster` with the real servers: up, df/osts/mds, an OST stopped and started, down, restart.

Every process started here is stopped by pid at the end, whatever happened
(`cluster down`, then any recorded pid still running).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lustrepy.ctl import clusterfile, procs
from tests.support.servers import lfsck

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
HEARTBEAT_S = 0.5
OST_TIMEOUT_S = 2.0
# an OST goes inactive within the timeout plus one sweep and heartbeat of slack
INACTIVE_BOUND_S = OST_TIMEOUT_S + 4.0

pytestmark = pytest.mark.timeout(120)


def lfsctl(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def ok(*argv: str, env: dict[str, str] | None = None) -> Any:
    """Run lfsctl with --json, require exit 0, return the parsed output."""
    r = lfsctl(*argv, "--json", env=env)
    assert r.returncode == 0, f"lfsctl {' '.join(argv)} -> {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


class Tracker:
    """Every pid a cluster.json under `root` ever recorded, so the end of a test can stop them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: dict[int, tuple[tuple[str, ...], int]] = {}

    def note(self) -> clusterfile.ClusterRecord | None:
        rec = clusterfile.load(self.root)
        for s in rec.servers() if rec else ():
            if s.pid:
                self.seen[s.pid] = (s.argv, s.starttime)
        return rec

    def pids(self) -> dict[str, int]:
        rec = self.note()
        assert rec is not None
        return {s.name: s.pid for s in rec.servers()}

    def cleanup(self) -> None:
        self.note()
        if clusterfile.load(self.root) is not None:
            lfsctl("cluster", "down", "--root", str(self.root))
        procs.stop([(pid, argv, st) for pid, (argv, st) in self.seen.items()], grace_s=5)
        lfsck(self.root / "mdt")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    root = tmp_path_factory.mktemp("cluster")
    t = Tracker(root)
    try:
        r = lfsctl("cluster", "up", "--root", str(root), "--osts", "4", "--heartbeat", str(HEARTBEAT_S),
                   "--ost-timeout", str(OST_TIMEOUT_S))
        t.note()
        assert r.returncode == 0, r.stderr
        yield t
    finally:
        t.cleanup()


def wait_ost_state(root: Path, index: int, state: str, bound: float) -> float:
    t0 = time.monotonic()
    while True:
        osts = {o["index"]: o for o in ok("osts", "--root", str(root))["osts"]}
        if osts[index]["state"] == state:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < bound, f"OST {index} still {osts[index]['state']} after {bound}s"
        time.sleep(0.2)


def test_up_serves_four_active_osts(cluster: Tracker) -> None:
    root = str(cluster.root)
    rec = json.loads((cluster.root / "cluster.json").read_text())
    assert rec["state"] == "running" and rec["fsname"] == "testfs" and rec["mount"] is None
    assert [o["index"] for o in rec["osts"]] == [0, 1, 2, 3]
    for s in [rec["mds"], *rec["osts"]]:
        assert s["address"].startswith("127.0.0.1:") and procs.is_ours(s["pid"], s["argv"], s["starttime"])
        assert Path(s["dir"]).is_dir() and Path(s["log"]).is_file()

    df = ok("df", "--root", root)
    assert df["fsname"] == "testfs" and df["osts_active"] == 4 and df["osts_total"] == 4
    assert [t["uuid"] for t in df["targets"]] == ["testfs-MDT0000_UUID"] + [f"testfs-OST{i:04x}_UUID" for i in range(4)]
    assert all(t["state"] == "active" for t in df["targets"])
    assert df["summary"]["bytes_total"] == sum(t["bytes_total"] for t in df["targets"][1:]) > 0

    text = lfsctl("df", "--root", root).stdout.splitlines()
    assert text[0].split()[:5] == ["UUID", "1K-blocks", "Used", "Available", "Use%"]
    assert text[-1].startswith("filesystem_summary:")

    osts = ok("osts", "--root", root)["osts"]
    assert [(o["index"], o["state"], o["address"]) for o in osts] == [
        (o["index"], "active", o["address"]) for o in rec["osts"]]

    mds = ok("mds", "--root", root)
    assert mds["fsname"] == "testfs" and mds["uuid"] == "testfs-MDT0000_UUID"
    assert mds["address"] == rec["mds"]["address"]

    # the running cluster is found without naming it, through $LUSTREPY_ROOT
    assert ok("osts", env={"LUSTREPY_ROOT": root})["fsname"] == "testfs"


def test_up_on_a_running_cluster_is_refused(cluster: Tracker) -> None:
    before = cluster.pids()
    r = lfsctl("cluster", "up", "--root", str(cluster.root), "--osts", "4")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "already running" in r.stderr
    assert cluster.pids() == before


def test_stopped_ost_goes_inactive_and_comes_back(cluster: Tracker) -> None:
    root = str(cluster.root)
    before = cluster.pids()
    stopped = ok("cluster", "stop-ost", "--root", root, "--index", "2")
    assert stopped["stopped_pids"] == [before["ost2"]]
    assert not procs.is_ours(before["ost2"], *cluster.seen[before["ost2"]])

    wait_ost_state(cluster.root, 2, "inactive", INACTIVE_BOUND_S)
    text = lfsctl("df", "--root", root).stdout
    assert "testfs-OST0002_UUID : inactive device" in text
    df = ok("df", "--root", root)
    assert df["osts_active"] == 3
    assert df["summary"]["bytes_total"] == sum(t["bytes_total"] for t in df["targets"][1:] if t["state"] == "active")
    status = ok("cluster", "status", "--root", root)
    assert status["running"] == {"mds": True, "ost0": True, "ost1": True, "ost2": False, "ost3": True}

    # stopping it again is harmless; starting it twice is refused
    assert ok("cluster", "stop-ost", "--root", root, "--index", "2")["stopped_pids"] == []
    ok("cluster", "start-ost", "--root", root, "--index", "2")
    r = lfsctl("cluster", "start-ost", "--root", root, "--index", "2")
    assert r.returncode == 1 and "already running" in r.stderr

    # start-ost returns once the MDS sees the OST again
    osts = {o["index"]: o for o in ok("osts", "--root", root)["osts"]}
    assert [osts[i]["state"] for i in range(4)] == ["active"] * 4
    after = cluster.pids()
    assert after["ost2"] != before["ost2"]
    assert {k: v for k, v in after.items() if k != "ost2"} == {k: v for k, v in before.items() if k != "ost2"}

    r = lfsctl("cluster", "start-ost", "--root", root, "--index", "9")
    assert r.returncode == 1 and "no OST with index 9" in r.stderr


def test_down_stops_every_pid_and_up_restarts_from_the_same_data(cluster: Tracker) -> None:
    root = str(cluster.root)
    before = cluster.pids()
    uuids = [o["uuid"] for o in ok("osts", "--root", root)["osts"]]

    down = ok("cluster", "down", "--root", root)
    assert sorted(down["stopped_pids"]) == sorted(before.values())
    assert down["state"] == "stopped" and not any(down["running"].values())
    for pid in before.values():
        assert not procs.is_ours(pid, *cluster.seen[pid])

    t0 = time.monotonic()
    r = lfsctl("df", "--root", root)
    assert time.monotonic() - t0 < 8
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot reach MDS at 127.0.0.1:" in r.stderr

    assert ok("cluster", "down", "--root", root)["stopped_pids"] == []

    up = ok("cluster", "up", "--root", root)  # no --osts: as recorded
    cluster.note()
    assert up["state"] == "running" and len(up["osts"]) == 4
    assert [o["uuid"] for o in ok("osts", "--root", root)["osts"]] == uuids
    assert ok("df", "--root", root)["osts_active"] == 4
    down = ok("cluster", "down", "--root", root)
    assert len(down["stopped_pids"]) == 5
