"""`lfsctl cluster up` when something fails: it stops what it started and says why in one final line.

$LUSTREPY_BINDIR points the launcher at a directory holding the real servers
(symlinks) and, for the part meant to fail, a small script that fails the way
a real one does: one line on stderr, non-zero exit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lustrepy.ctl import clusterfile, procs

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(90)


def bindir(tmp_path: Path, failing: str, line: str) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("lustrepy-mds", "lustrepy-oss", "lustrepy"):
        if name == failing:
            (d / name).write_text(f"#!/bin/sh\necho '{line}' >&2\nexit 1\n")
            (d / name).chmod(0o755)
        else:
            (d / name).symlink_to(BIN / name)
    return d


def up(root: Path, bindir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, "cluster", "up", "--root", str(root), *extra], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, LUSTREPY_BINDIR=str(bindir)))


def recorded_pids(root: Path) -> list[tuple[int, tuple[str, ...], int]]:
    rec = clusterfile.load(root)
    return [(s.pid, s.argv, s.starttime) for s in rec.servers() if s.pid] if rec else []


def started_pids(root: Path) -> list[int]:
    """Pids the launcher started, from the header lines it writes into each log."""
    pids = []
    for log in (root / "logs").glob("*.log"):
        pids += [int(ln.split()[-1]) for ln in log.read_text().splitlines() if ln.startswith("--- pid ")]
    return pids


def test_failing_oss_stops_the_mds_and_shows_the_log(tmp_path: Path) -> None:
    root = tmp_path / "c"
    try:
        r = up(root, bindir(tmp_path, "lustrepy-oss", "lustrepy-oss: cannot open /nowhere: broken disk"),
               "--osts", "2")
        assert r.returncode == 1
        lines = r.stderr.splitlines()
        assert "broken disk" in r.stderr  # the tail of the failing log
        assert lines[-1].startswith("lfsctl: cluster up failed") and "stopped what was started" in lines[-1]
        assert "ost" in lines[-1] and "exited with status 1 before serving" in lines[-1]
        rec = json.loads((root / "cluster.json").read_text())
        assert rec["state"] == "stopped" and rec["mds"]["pid"] == 0
        # the MDS had started and served; it must be gone now
        mds_log = (root / "logs" / "mds.log").read_text()
        assert "--- lfsctl" in mds_log
        for pid in started_pids(root):
            assert procs.read_stat(pid) is None or procs.read_stat(pid)[0] in "ZX"  # type: ignore[index]
    finally:
        procs.stop(recorded_pids(root), grace_s=5)


def test_failing_mount_stops_the_cluster(tmp_path: Path) -> None:
    root = tmp_path / "c"
    try:
        r = up(root, bindir(tmp_path, "lustrepy", "lustrepy: cannot mount: /dev/fuse is missing"),
               "--osts", "1", "--mount", str(tmp_path / "mnt"))
        assert r.returncode == 1
        last = r.stderr.splitlines()[-1]
        assert last.startswith("lfsctl: cluster up failed; the cluster was stopped")
        assert "lustrepy: cannot mount: /dev/fuse is missing" in last
        rec = json.loads((root / "cluster.json").read_text())
        assert rec["state"] == "stopped" and rec["mount"] is None
        for pid in started_pids(root):
            assert procs.read_stat(pid) is None or procs.read_stat(pid)[0] in "ZX"  # type: ignore[index]
    finally:
        procs.stop(recorded_pids(root), grace_s=5)


def test_restart_when_a_recorded_port_is_taken(tmp_path: Path) -> None:
    root = tmp_path / "c"
    real = bindir(tmp_path, "", "")
    try:
        assert up(root, real, "--osts", "1").returncode == 0
        old = json.loads((root / "cluster.json").read_text())["mds"]["address"]
        assert subprocess.run([*LFSCTL, "cluster", "down", "--root", str(root)], timeout=60).returncode == 0
        with socket.socket() as s:  # a listening socket holds the port, SO_REUSEADDR or not
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(old.rpartition(":")[2])))
            s.listen(1)
            r = up(root, real)
        assert r.returncode == 0, r.stderr
        assert "trying any free port" in r.stderr
        rec = json.loads((root / "cluster.json").read_text())
        assert rec["state"] == "running" and rec["mds"]["address"] != old
    finally:
        procs.stop(recorded_pids(root), grace_s=5)
