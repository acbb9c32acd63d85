"""lfsctl against a file system of two MDTs (MDT0 and MDT1, each its own MDS) and one OST: the
server list, df, mds, stats, locks, get-param/set-param; an MDS without Fld meaning one MDT; and
`lfsctl cluster up --mdts 2` from start to stop and restart."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import clusterfile, fldq, params, procs, query, servers
from lustrepy.ctl.main import main
from lustrepy.rpc.convert import rep_err
from lustrepy.rpc.v1 import mds_pb2 as mpb
from tests.ctl.fakemds import FakeMds, Serving
from tests.support.servers import Cluster, lfsck, wait_for

pytestmark = pytest.mark.timeout(180)

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
MDS_ARGS = ("--heartbeat-interval", "0.5", "--ost-timeout", "2")


def both_active(address: str) -> bool:
    mdts = fldq.mdt_list(address, timeout=2.0) or ()
    return [(m.index, m.active) for m in mdts] == [(0, True), (1, True)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("two-mdts"))
    try:
        c.start(1, n_mdts=2, mds_args=MDS_ARGS, oss_args=("--heartbeat", "0.5"))
        wait_for(lambda: both_active(c.mds.address), what="MDT1 active on MDT0")
        wait_for(lambda: query.fs_status(c.mds.address).active_indexes() == {0}, what="OST0 active")
        yield c
    finally:
        c.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def ok_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0 and err == "", (argv, rc, err)
    return json.loads(out)


# ---- the server list ---------------------------------------------------------------------------

def test_servers_are_every_mdt_then_every_ost(cluster: Cluster) -> None:
    fsname, every = servers.fs_servers(cluster.mds.address)
    assert fsname == "testfs"
    assert [(s.kind, s.index, s.name, s.address, s.active) for s in every] == [
        ("MDT", 0, "testfs-MDT0000", cluster.mds.address, True),
        ("MDT", 1, "testfs-MDT0001", cluster.mdts[0].address, True),
        ("OST", 0, "testfs-OST0000", cluster.osts[0].address, True)]
    assert [s.name for s in servers.select(every, mds=True)] == ["testfs-MDT0000", "testfs-MDT0001"]
    assert [s.name for s in servers.select(every, mdt=1)] == ["testfs-MDT0001"]
    with pytest.raises(QuietError, match=r"no MDT 5 in this file system \(MDTs: 0, 1\)"):
        servers.select(every, mdt=5)


class NoFld(FakeMds):
    """An MDS that knows the Fld method but refuses it (as one that serves a single MDT may)."""

    def Fld(self, request: mpb.FldRequest, context: grpc.ServicerContext) -> mpb.FldReply:
        self.calls.append("fld")
        return mpb.FldReply(hdr=rep_err(LpError(errno.ENOSYS, "no FLD here")))


@pytest.mark.parametrize("fake", [FakeMds, NoFld])
def test_an_mds_without_fld_means_one_mdt(fake: type[FakeMds], capsys: pytest.CaptureFixture[str]) -> None:
    s = Serving(fake())
    try:
        assert fldq.mdt_list(s.address) is None
        _, every = servers.fs_servers(s.address)
        assert [s.name for s in every if s.kind == servers.MDT] == ["testfs-MDT0000"]
        d = ok_json(capsys, "df", "--mgs", s.address)
        assert [t["uuid"] for t in d["targets"] if t["type"] == "MDT"] == ["testfs-MDT0000_UUID"]
        assert "mdts" not in ok_json(capsys, "mds", "--mgs", s.address)
    finally:
        s.stop()


# ---- df, mds -----------------------------------------------------------------------------------

def mdt_inodes(address: str) -> tuple[int, int]:
    st = query.fs_status(address).mdt
    return st.files, st.files - st.ffree


def test_df_shows_each_mdt(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    d = ok_json(capsys, "df", "--mgs", cluster.mds.address)
    assert [(t["uuid"], t["type"], t["index"], t["state"]) for t in d["targets"]] == [
        ("testfs-MDT0000_UUID", "MDT", 0, "active"), ("testfs-MDT0001_UUID", "MDT", 1, "active"),
        ("testfs-OST0000_UUID", "OST", 0, "active")]
    mdt0, mdt1 = d["targets"][:2]
    # each MDT's row is what that MDT itself says (free inodes follow the disk: they may move)
    assert mdt0["inodes_used"] == mdt_inodes(cluster.mds.address)[1]
    assert mdt1["inodes_used"] == mdt_inodes(cluster.mdts[0].address)[1] >= 1
    assert mdt1["inodes"] > 0
    assert d["summary"]["inodes_used"] == sum(t["inodes_used"] for t in d["targets"][:2])
    assert d["summary"]["bytes_total"] == d["targets"][2]["bytes_total"] > 0

    rc, out, err = run(capsys, "df", "-i", "--mgs", cluster.mds.address)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["UUID", "Inodes", "IUsed", "IFree", "IUse%"]
    assert lines[1].startswith("testfs-MDT0000_UUID") and lines[1].endswith("[MDT:0]")
    assert lines[2].startswith("testfs-MDT0001_UUID") and lines[2].endswith("[MDT:1]")
    assert lines[2].split()[2] == str(mdt1["inodes_used"])
    assert lines[3].startswith("testfs-OST0000_UUID") and lines[-1].startswith("filesystem_summary:")


def test_mds_shows_each_mdt(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    d = ok_json(capsys, "mds", "--mgs", cluster.mds.address)
    assert d["uuid"] == "testfs-MDT0000_UUID" and d["address"] == cluster.mds.address   # MDT0's, as ever
    assert [(m["index"], m["name"], m["uuid"], m["address"]) for m in d["mdts"]] == [
        (0, "testfs-MDT0000", "testfs-MDT0000_UUID", cluster.mds.address),
        (1, "testfs-MDT0001", "testfs-MDT0001_UUID", cluster.mdts[0].address)]
    assert d["mdts"][1]["uptime_s"] > 0 and d["skipped"] == [] and d["errors"] == []

    rc, out, err = run(capsys, "mds", "-c", "--mgs", cluster.mds.address)
    assert rc == 0 and err == ""
    blocks = out.split("\n\n")
    assert len(blocks) == 2
    assert "testfs-MDT0000_UUID" in blocks[0] and "testfs-MDT0001_UUID" in blocks[1]
    assert "  mdt_announce:" in blocks[0]       # MDT0 counts MDT1's heartbeats


def test_a_stopped_mdt_shows_inactive_and_comes_back(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    mds = cluster.mds.address
    cluster.mdts[0].stop(signal.SIGKILL)
    try:
        wait_for(lambda: not both_active(mds), what="MDT1 inactive on MDT0")
        rc, out, err = run(capsys, "df", "--mgs", mds)
        assert rc == 0 and err == ""
        assert "testfs-MDT0001_UUID : inactive device" in out
        d = ok_json(capsys, "df", "--mgs", mds)
        assert d["targets"][1]["state"] == "inactive"
        assert d["summary"]["inodes"] == d["targets"][0]["inodes"]      # inodes of the active MDTs only
        d = ok_json(capsys, "mds", "--mgs", mds)
        assert [m["index"] for m in d["mdts"]] == [0] and [s["name"] for s in d["skipped"]] == ["testfs-MDT0001"]
        d = ok_json(capsys, "locks", "--mgs", mds)
        assert [s["name"] for s in d["skipped"]] == ["testfs-MDT0001"]
        # asked for by name, it is asked, and its silence is an error (in a process of its own: this
        # one's connections to MDT1's address would wait out gRPC's reconnect backoff after it)
        r = lfsctl("locks", "--mdt", "1", "--mgs", mds)
        assert r.returncode == 1 and r.stderr.startswith("lfsctl: testfs-MDT0001 at ") and r.stderr.count("\n") == 1
    finally:
        cluster.mdts[0] = cluster.mdt_proc(1, *MDS_ARGS).start()
    wait_for(lambda: both_active(mds), what="MDT1 back")
    assert ok_json(capsys, "df", "--mgs", mds)["targets"][1]["state"] == "active"


# ---- stats, locks, clients ---------------------------------------------------------------------

def test_stats_per_mdt(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    mds = cluster.mds.address
    before = query.mds_info(cluster.mdts[0].address).counters
    d = ok_json(capsys, "stats", "--mgs", mds)
    names = [s["name"] for s in d["servers"]]
    assert names == ["testfs-MDT0000", "testfs-MDT0001", "testfs-OST0000"]
    assert d["servers"][1]["address"] == cluster.mdts[0].address and d["servers"][1]["type"] == "MDT"
    assert d["errors"] == [] and set(d["wbc"]) >= {"wbc_grants", "wbc_held"}
    # the WBC counters are added up over both MDTs' Info
    mdt0 = dict(query.mds_info(mds).counters)
    mdt1 = dict(before)
    assert d["wbc"]["wbc_grants"] == mdt0.get("wbc_grants", 0) + mdt1.get("wbc_grants", 0)
    rc, out, err = run(capsys, "stats", "--mgs", mds)
    assert rc == 0 and err == ""
    assert "testfs-MDT0000" in out and "testfs-MDT0001" in out


def test_locks_every_mdt_or_one(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    mds = cluster.mds.address
    d = ok_json(capsys, "locks", "--mgs", mds)
    assert [s["name"] for s in d["servers"]] == ["testfs-MDT0000", "testfs-MDT0001", "testfs-OST0000"]
    d = ok_json(capsys, "locks", "--mds", "--mgs", mds)
    assert [s["name"] for s in d["servers"]] == ["testfs-MDT0000", "testfs-MDT0001"]
    d = ok_json(capsys, "locks", "--mdt", "1", "--mgs", mds)
    assert [(s["name"], s["address"]) for s in d["servers"]] == [("testfs-MDT0001", cluster.mdts[0].address)]
    rc, out, err = run(capsys, "locks", "--mdt", "7", "--mgs", mds)
    assert rc == 1 and out == "" and err == "lfsctl: no MDT 7 in this file system (MDTs: 0, 1)\n"
    with pytest.raises(SystemExit) as e:
        main(["locks", "--mdt", "1", "--ost", "0", "--mgs", mds])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    rc, out, err = run(capsys, "locks", "--mgs", mds)
    assert rc == 0 and "testfs-MDT0001 (" in out
    d = ok_json(capsys, "clients", "--mgs", mds)
    assert d["errors"] == [] and d["skipped"] == []


# ---- tunables ----------------------------------------------------------------------------------

def param_lines(out: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in out.splitlines())


def direct(address: str, name: str) -> str:
    [v] = params.get(params.Server("mds", address, True), [f"mds.{name}"])
    return v.value


def test_params_on_every_mdt_or_one(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    mds, mdt1 = cluster.mds.address, cluster.mdts[0].address
    rc, out, err = run(capsys, "get-param", "--mgs", mds, "mds.callback_timeout", "mds.1.fsname")
    assert rc == 0 and err == ""
    assert param_lines(out) == {"mds.0.callback_timeout": "10", "mds.1.callback_timeout": "10",
                                "mds.1.fsname": "testfs"}
    try:
        rc, out, err = run(capsys, "set-param", "--mgs", mds, "mds.1.callback_timeout=7")
        assert rc == 0 and err == "" and param_lines(out) == {"mds.1.callback_timeout": "7"}
        assert (direct(mds, "callback_timeout"), direct(mdt1, "callback_timeout")) == ("10", "7")
        rc, out, err = run(capsys, "set-param", "--mgs", mds, "mds.callback_timeout=9")
        assert rc == 0 and err == ""
        assert param_lines(out) == {"mds.0.callback_timeout": "9", "mds.1.callback_timeout": "9"}
        assert (direct(mds, "callback_timeout"), direct(mdt1, "callback_timeout")) == ("9", "9")
        d = ok_json(capsys, "get-param", "--mgs", mds, "mds.*.callback_timeout")
        assert [(v["name"], v["value"]) for v in d] == [("mds.0.callback_timeout", "9"),
                                                        ("mds.1.callback_timeout", "9")]
        rc, out, err = run(capsys, "set-param", "--mgs", mds, "mds.3.callback_timeout=5")
        assert rc == 1 and err.startswith("lfsctl: mds.3.callback_timeout: no such tunable") and out == ""
        rc, out, err = run(capsys, "set-param", "--mgs", mds, "mds.1.fsname=other")
        assert rc == 1 and "mds.1.fsname: fixed while the server runs" in err
        rc, out, err = run(capsys, "set-param", "--mgs", mds, "mds.callback_timeout=-4")   # refused by each
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 2 and {ln.split(":")[1].strip() for ln in lines} == {"mds.0", "mds.1"}, err
        assert direct(mdt1, "callback_timeout") == "9"
    finally:
        rc, out, err = run(capsys, "set-param", "--mgs", mds, "--reset", "mds.callback_timeout")
    assert rc == 0 and (direct(mds, "callback_timeout"), direct(mdt1, "callback_timeout")) == ("10", "10")


def test_lfsck_checks_every_mdt(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "lfsck", "--repair", "--json", "--mgs", cluster.mds.address)
    d = json.loads(out)
    assert err == "" and set(d["checked"]["mdts"]) == {"MDT0000", "MDT0001"}
    # MDT1 killed (test_a_stopped_mdt...) while its precreation was in flight leaves objects no MDT
    # recorded: orphans of its id range, young, which a repair keeps for the grace period
    assert rc == (1 if d["findings"] else 0)
    assert all(f["kind"] == "orphan" and f["mdt"] == 1 and f["repaired"] is False and "grace period" in f["repair"]
               for f in d["findings"]), d["findings"]


# ---- lfsctl cluster up --mdts ------------------------------------------------------------------

def lfsctl(*argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def ok(*argv: str) -> Any:
    r = lfsctl(*argv, "--json")
    assert r.returncode == 0, f"lfsctl {' '.join(argv)} -> {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


def test_cluster_up_with_two_mdts(tmp_path: Path) -> None:
    root = tmp_path / "lp"
    seen: dict[int, tuple[tuple[str, ...], int]] = {}

    def note() -> clusterfile.ClusterRecord | None:
        rec = clusterfile.load(root)
        for s in rec.servers() if rec else ():
            if s.pid:
                seen[s.pid] = (s.argv, s.starttime)
        return rec

    try:
        up = ok("cluster", "up", "--root", str(root), "--osts", "1", "--mdts", "2", "--heartbeat", "0.5",
                "--ost-timeout", "2")
        rec = note()
        assert rec is not None and rec.state == "running" and rec.mdt_count == 2
        [mdt1] = rec.mdts
        assert (mdt1.index, mdt1.name, mdt1.dir, mdt1.log) == (1, "mdt1", str(root / "mdt1"),
                                                              str(root / "logs" / "mdt1.log"))
        argv = list(mdt1.argv)
        assert argv[argv.index("--index") + 1] == "1" and argv[argv.index("--mdt0") + 1] == rec.mds.address
        assert argv[argv.index("--cert") + 1] == str(root / "certs" / "mds.crt")
        assert Path(mdt1.dir, "mdt.db").is_file() and (root / "run" / "mdt1.port").is_file()
        assert up["running"] == {"mds": True, "mdt1": True, "ost0": True}
        assert [m["index"] for m in up["mdts"]] == [1]

        status = ok("cluster", "status", "--root", str(root))
        assert status["running"] == {"mds": True, "mdt1": True, "ost0": True}
        text = lfsctl("cluster", "status", "--root", str(root)).stdout
        assert f"mdt1:    {mdt1.address}" in text

        df = ok("df", "--root", str(root))
        assert [(t["uuid"], t["state"]) for t in df["targets"]] == [
            ("testfs-MDT0000_UUID", "active"), ("testfs-MDT0001_UUID", "active"), ("testfs-OST0000_UUID", "active")]

        # one MDT stopped as a crash would, and started again on its address
        killed = ok("cluster", "stop-mds", "--root", str(root), "--index", "1", "--kill")
        assert killed["stopped_pids"] == [mdt1.pid] and killed["running"]["mdt1"] is False
        r = lfsctl("cluster", "start-mds", "--root", str(root), "--index", "3")
        assert r.returncode == 1 and "no MDT 3" in r.stderr and r.stderr.count("\n") == 1
        ok("cluster", "start-mds", "--root", str(root), "--index", "1")
        rec = note()
        assert rec is not None
        [mdt1] = rec.mdts
        assert mdt1.pid and mdt1.address == up["mdts"][0]["address"]
        wait_for(lambda: [t["state"] for t in ok("df", "--root", str(root))["targets"]][:2] == ["active", "active"],
                 timeout=20, what="MDT1 active again")

        down = ok("cluster", "down", "--root", str(root))
        assert sorted(down["stopped_pids"]) == sorted([rec.mds.pid, mdt1.pid, rec.osts[0].pid])
        assert down["running"] == {"mds": False, "mdt1": False, "ost0": False}
        for pid, (a, st) in seen.items():
            assert not procs.is_ours(pid, a, st)

        r = lfsctl("cluster", "up", "--root", str(root), "--mdts", "1")
        assert r.returncode == 1 and "MDTs are never removed" in r.stderr and r.stderr.count("\n") == 1

        again = ok("cluster", "up", "--root", str(root))      # as recorded: two MDTs
        note()
        assert [m["index"] for m in again["mdts"]] == [1] and all(again["running"].values())
        assert [t["uuid"] for t in ok("df", "--root", str(root))["targets"]][:2] == [
            "testfs-MDT0000_UUID", "testfs-MDT0001_UUID"]
        assert len(ok("cluster", "down", "--root", str(root))["stopped_pids"]) == 3
    finally:
        note()
        if clusterfile.load(root) is not None:
            lfsctl("cluster", "down", "--root", str(root))
        procs.stop([(pid, a, st) for pid, (a, st) in seen.items()], grace_s=5)
    lfsck(root / "mdt")
    lfsck(root / "mdt1")
