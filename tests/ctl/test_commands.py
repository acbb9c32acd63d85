"""lfsctl commands end to end over real gRPC against a stand-in MDS; exit codes and error lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lustrepy.ctl.main import main
from tests.ctl.fakemds import Serving, statfs_reply

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def lfsctl(*argv: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_df_over_rpc(fake_mds: Serving, capsys: pytest.CaptureFixture[str]) -> None:
    fake_mds.fake.statfs = statfs_reply(inactive=(2,))
    rc, out, err = run(capsys, "df", "--mgs", fake_mds.address)
    assert rc == 0 and err == ""
    assert "testfs-OST0002_UUID : inactive device" in out
    assert f"{fake_mds.address}:/testfs[OST:3]" in out  # not mounted: the source names the file system
    rc, out, _ = run(capsys, "df", "-h", "--json", "--mgs", fake_mds.address)
    d = json.loads(out)
    assert rc == 0 and d["osts_active"] == 3 and d["mount"] is None


def test_df_i_and_h(fake_mds: Serving, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "df", "-ih", "--mgs", fake_mds.address)
    assert rc == 0 and out.split()[1] == "Inodes"


def test_osts_and_mds(fake_mds: Serving, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUSTREPY_MGS", fake_mds.address)
    rc, out, _ = run(capsys, "osts")
    assert rc == 0 and len(out.splitlines()) == 5
    rc, out, _ = run(capsys, "osts", "--json")
    assert [o["state"] for o in json.loads(out)["osts"]] == ["active"] * 4
    rc, out, _ = run(capsys, "mds")
    assert rc == 0 and "testfs-MDT0000_UUID" in out
    rc, out, _ = run(capsys, "mds", "--json")
    assert json.loads(out)["last_committed"] == 40
    assert fake_mds.fake.calls == ["statfs", "statfs", "info", "info"]


def test_reply_errno_is_one_line(fake_mds: Serving, capsys: pytest.CaptureFixture[str]) -> None:
    fake_mds.fake.statfs.hdr.errno = 13
    fake_mds.fake.statfs.hdr.message = "not allowed"
    rc, out, err = run(capsys, "df", "--mgs", fake_mds.address)
    assert rc == 1 and out == ""
    assert err.splitlines() == [f"lfsctl: MDS at {fake_mds.address} refused statfs: EACCES: not allowed"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("cmd", ["df", "osts", "mds"])
def test_unreachable_mgs_one_line_exit_1_quickly(cmd: str) -> None:
    addr = f"127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    r = lfsctl(cmd, "--mgs", addr)
    assert time.monotonic() - t0 < 8
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [f"lfsctl: cannot reach MDS at {addr}: connection refused"]


def test_silent_mgs_times_out_in_one_line() -> None:
    with socket.socket() as s:  # accepts TCP connections, never speaks HTTP/2
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        t0 = time.monotonic()
        r = lfsctl("df", "--mgs", addr)
        assert time.monotonic() - t0 < 12
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"lfsctl: cannot reach MDS at {addr}: ")


@pytest.mark.parametrize("argv", [[], ["nosuch"], ["df", "--bogus"], ["cluster"], ["cluster", "up", "--osts", "x"],
                                  ["cluster", "stop-ost"], ["osts", "a", "b"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    r = lfsctl(*argv)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv", [[], ["df"], ["osts"], ["mds"], ["cluster"], ["cluster", "up"], ["cluster", "down"],
                                  ["cluster", "status"], ["cluster", "start-ost"], ["cluster", "stop-ost"]])
def test_every_command_has_help_and_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "usage:" in out
    if argv and argv != ["cluster"]:
        assert "--json" in out


def test_cluster_commands_without_a_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["cluster", "down"], ["cluster", "status"], ["cluster", "stop-ost", "--index", "0"]):
        rc, out, err = run(capsys, *argv, "--root", str(tmp_path / "none"))
        assert rc == 1 and out == "" and err.count("\n") == 1 and "no cluster recorded" in err
    rc, _, err = run(capsys, "cluster", "up", "--root", str(tmp_path / "new"))
    assert rc == 2 and "--osts N is required" in err
    rc, _, err = run(capsys, "cluster", "up", "--root", str(tmp_path / "new"), "--osts", "2", "--fsname", "bad-name")
    assert rc == 2 and "bad --fsname" in err


def test_no_target_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "osts")
    assert rc == 1 and out == "" and err.startswith("lfsctl: no MDS given") and err.count("\n") == 1
