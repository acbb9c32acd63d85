"""Rendering of df, osts, mds and cluster records, human and JSON, from constructed replies."""

from __future__ import annotations

import dataclasses

import json

import pytest

from lustrepy.ctl import output, query
from lustrepy.ctl.clusterfile import ClusterRecord, ServerRecord
from tests.ctl.fakemds import GiB, info_reply, statfs_reply


def status(osts: int = 4, inactive: tuple[int, ...] = ()) -> query.FsStatus:
    return query.fs_status_from_pb(statfs_reply(osts=osts, inactive=inactive))


def test_df_has_lfs_df_shape() -> None:
    text = output.render_df(status(inactive=(2,)), "/mnt/x")
    lines = text.splitlines()
    assert lines[0].split() == ["UUID", "1K-blocks", "Used", "Available", "Use%", "Mounted", "on"]
    assert lines[1].startswith("testfs-MDT0000_UUID ")
    assert lines[1].endswith("/mnt/x[MDT:0]")
    assert lines[2].split() == ["testfs-OST0000_UUID", str(100 * GiB // 1024), str(10 * GiB // 1024),
                                str(90 * GiB // 1024), "10%", "/mnt/x[OST:0]"]
    assert lines[3].endswith("/mnt/x[OST:1]")
    assert lines[4] == "testfs-OST0002_UUID : inactive device"
    assert lines[5].endswith("/mnt/x[OST:3]")
    assert lines[6] == ""
    summary = lines[7].split()
    # totals over the active OSTs only: 0, 1 and 3
    assert summary == ["filesystem_summary:", str(300 * GiB // 1024), str((10 + 20 + 40) * GiB // 1024),
                       str((90 + 80 + 60) * GiB // 1024), "24%", "/mnt/x"]
    # columns line up: every data row has the same width up to "Mounted on"
    widths = {len(ln) - len(ln.split()[-1]) for ln in lines if ln and "inactive" not in ln and "UUID " not in ln[:5]}
    assert len(widths) == 1


def test_df_human_and_inodes() -> None:
    human = output.render_df(status(), "/mnt/x", human=True).splitlines()
    assert human[0].split()[1] == "bytes"
    assert human[2].split()[1:4] == ["100.0G", "10.0G", "90.0G"]
    inodes = output.render_df(status(), "/mnt/x", inodes=True).splitlines()
    assert inodes[0].split()[:5] == ["UUID", "Inodes", "IUsed", "IFree", "IUse%"]
    assert inodes[1].split()[1:5] == ["1000", "100", "900", "10%"]
    assert inodes[-1].split()[1:5] == ["1000", "100", "900", "10%"]


def test_df_json() -> None:
    d = output.df_json(status(inactive=(2,)), "127.0.0.1:1:/testfs", "/mnt/x")
    json.dumps(d)
    assert d["fsname"] == "testfs" and d["mount"] == "/mnt/x" and d["mgs"] == "127.0.0.1:1:/testfs"
    assert [t["type"] for t in d["targets"]] == ["MDT", "OST", "OST", "OST", "OST"]
    assert [t["state"] for t in d["targets"] if t["type"] == "OST"] == ["active", "active", "inactive", "active"]
    assert d["osts_active"] == 3 and d["osts_total"] == 4
    assert d["summary"]["bytes_total"] == 300 * GiB
    assert d["targets"][1]["bytes_used"] == 10 * GiB and d["targets"][1]["use_pct"] == 10


def test_osts_human_and_json() -> None:
    st = status(inactive=(1,))
    recovering = query.Recovery("recovering", clients_expected=2, clients_recovered=1, clients_evicted=0,
                                replays_applied=3, replays_failed=0, time_left_s=41.2, took_s=0.0)
    selves = {0: output.OssSelf(3725.0, "0.1.0", 2),       # OST 1 did not answer
              2: output.OssSelf(5.0, "0.1.0", 1, recovering, 7),
              3: output.OssSelf(9.0, "0.1.0", 1, dataclasses.replace(recovering, state="complete", took_s=1.25), 9)}
    st = dataclasses.replace(st, osts=(dataclasses.replace(st.osts[0], node="oss1", failure_domain="rack2"),
                                       *st.osts[1:]))
    lines = output.render_osts(st.osts, selves).splitlines()
    assert lines[0].split() == ["IDX", "UUID", "ADDRESS", "DOMAIN", "STATE", "LAST", "SEEN", "UPTIME", "VERSION",
                                "CLIENTS", "RECOVERY"]
    assert lines[1].split() == ["0", "testfs-OST0000_UUID", "127.0.0.1:40001", "rack2", "active", "0.5s", "ago",
                                "1h02m", "0.1.0", "2", "none"]
    assert lines[2].split() == ["1", "testfs-OST0001_UUID", "127.0.0.1:40002", "-", "inactive", "7.2s", "ago", "-",
                                "-", "-", "-"]
    assert lines[3].endswith("recovering 1/2, 41s left") and lines[4].endswith("complete 1/2 in 1.2s")
    d = output.osts_json(st, "127.0.0.1:1:/testfs", selves)
    assert [(o["index"], o["state"], o["active"]) for o in d["osts"]] == [
        (0, "active", True), (1, "inactive", False), (2, "active", True), (3, "active", True)]
    assert d["osts"][0]["address"] == "127.0.0.1:40001" and d["osts"][0]["precreated"] == 32
    assert (d["osts"][0]["node"], d["osts"][0]["failure_domain"]) == ("oss1", "rack2")
    assert d["osts"][1]["failure_domain"] == ""
    assert (d["osts"][0]["uptime_s"], d["osts"][0]["version"], d["osts"][0]["clients"]) == (3725.0, "0.1.0", 2)
    assert d["osts"][1]["clients"] is None and d["osts"][1]["recovery"] is None
    assert d["osts"][0]["recovery"] is None and d["osts"][2]["last_committed"] == 7
    assert d["osts"][2]["recovery"]["state"] == "recovering" and d["osts"][2]["recovery"]["clients_expected"] == 2


def test_osts_never_seen_and_empty() -> None:
    rep = statfs_reply(osts=1)
    rep.osts[0].last_seen_s = 1e9
    rep.osts[0].active = False
    assert "never" in output.render_osts(query.fs_status_from_pb(rep).osts)
    assert "no OST" in output.render_osts([])


def test_missing_ost_uuid_is_named_like_lustre() -> None:
    rep = statfs_reply(osts=11)
    rep.osts[10].uuid = ""
    st = query.fs_status_from_pb(rep)
    assert st.osts[10].uuid == "testfs-OST000a_UUID"


def test_mds_human_and_json() -> None:
    info = query.mds_info_from_pb(info_reply(), "127.0.0.1:40000")
    text = output.render_mds(info)
    assert "uuid:" in text and "testfs-MDT0000_UUID" in text
    assert "1h02m" in text and "last committed:" in text
    assert "intent" not in text and "intent" in output.render_mds(info, counters=True)
    d = output.mds_json(info)
    assert d["last_transno"] == 42 and d["clients"] == 2 and d["counters"] == {"intent": 10, "statfs": 3}


@pytest.mark.parametrize("n,expected", [(0, "0.0K"), (1023 * 1024, "1023.0K"), (1024 * 1024, "1.0M"),
                                        (int(1.5 * GiB), "1.5G"), (3 << 40, "3.0T")])
def test_human_bytes(n: int, expected: str) -> None:
    assert output.human_bytes(n) == expected


@pytest.mark.parametrize("used,avail,expected", [(0, 0, 0), (0, 10, 0), (1, 99, 1), (1, 1000, 1), (10, 0, 100)])
def test_pct_rounds_up_like_df(used: int, avail: int, expected: int) -> None:
    assert output.pct(used, avail) == expected


def test_render_cluster() -> None:
    mds = ServerRecord("mds", None, "127.0.0.1:5000", 11, ("x",), "/r/mdt", "/r/logs/mds.log")
    ost = ServerRecord("oss", 0, "127.0.0.1:5001", 12, ("y",), "/r/ost0", "/r/logs/ost0.log")
    rec = ClusterRecord(root="/r", fsname="testfs", state="running", mds=mds, osts=(ost,))
    text = output.render_cluster(rec, {"mds": True, "ost0": False})
    assert "mgs:     127.0.0.1:5000:/testfs" in text
    assert "ost0:" in text and "stopped" in text and "(not mounted)" in text
