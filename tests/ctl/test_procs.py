"""Starting detached processes and stopping them only by recorded pid and argv."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lustrepy.common.errors import QuietError
from lustrepy.ctl import clusterfile, procs


def start(tmp_path: Path, code: str, tag: str) -> procs.Started:
    return procs.spawn((sys.executable, "-c", code, tag), str(tmp_path / "logs" / f"{tag}.log"))


SLEEP = "import time; time.sleep(60)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def test_spawn_detaches_and_stop_terminates(tmp_path: Path) -> None:
    p = start(tmp_path, SLEEP, "sleeper")
    try:
        assert procs.is_ours(p.pid, p.argv, p.starttime)
        assert os.getsid(p.pid) == p.pid  # its own session: a terminal's ^C does not reach it
        assert procs.stop([(p.pid, p.argv, p.starttime)]) == [p.pid]
        assert not procs.is_ours(p.pid, p.argv, p.starttime)
    finally:
        procs.stop([(p.pid, p.argv, p.starttime)], grace_s=1)


def start_orphan(tag: str) -> tuple[int, tuple[str, ...], int]:
    """A process started by another lfsctl run: not a child of this one (as after `cluster up` returned)."""
    argv = (sys.executable, "-c", SLEEP, tag)
    code = ("import subprocess, sys; p = subprocess.Popen(sys.argv[1:], start_new_session=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); p.returncode = 0; print(p.pid)")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=30, check=True)
    pid = int(out.stdout)
    st = procs.read_stat(pid)
    assert st is not None
    return pid, argv, st[1]


def test_stop_never_signals_a_pid_running_something_else() -> None:
    pid, argv, starttime = start_orphan("orphan")
    try:
        assert procs.is_ours(pid, argv, starttime)
        assert procs.stop([(pid, ("lustrepy-oss", "--dir", "/x"), 0)]) == []
        assert procs.stop([(pid, argv, starttime + 1)]) == []  # same argv, another start time
        assert procs.stop([(pid, argv[:-1] + ("other",), starttime)]) == []
        assert procs.is_ours(pid, argv, starttime)
        assert procs.stop([(pid, argv, starttime)]) == [pid]
        assert not procs.is_ours(pid, argv, starttime)
    finally:
        procs.stop([(pid, argv, starttime)], grace_s=1)


def test_own_child_is_stopped_even_before_its_argv_shows(tmp_path: Path) -> None:
    p = start(tmp_path, SLEEP, "child")
    # a child of this process cannot have had its pid reused: it is stopped whatever /proc says
    assert procs.stop([(p.pid, ("not", "yet", "exec'd"), 0)]) == [p.pid]
    assert procs.exit_status(p.pid) == -signal.SIGTERM


def test_sigkill_after_grace(tmp_path: Path) -> None:
    p = start(tmp_path, STUBBORN, "stubborn")
    try:
        deadline = time.monotonic() + 10
        while "up" not in "".join(procs.log_tail(p.log, p.log_offset)) and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.monotonic()
        assert procs.stop([(p.pid, p.argv, p.starttime)], grace_s=0.5) == [p.pid]
        assert time.monotonic() - t0 < 5
        assert not procs.is_ours(p.pid, p.argv, p.starttime)
        assert procs.exit_status(p.pid) == -signal.SIGKILL
    finally:
        procs.stop([(p.pid, p.argv, p.starttime)], grace_s=1)


def test_log_tail_starts_at_offset(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("old 1\nold 2\n")
    offset = log.stat().st_size
    with open(log, "a") as f:
        f.write("new 1\n\nnew 2\n")
    assert procs.log_tail(str(log), offset) == ["new 1", "new 2"]
    assert procs.log_tail(str(log), 0, lines=1) == ["new 2"]
    assert procs.log_tail(str(tmp_path / "missing.log")) == []


def test_find_program_prefers_bindir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prog = tmp_path / "lustrepy-mds"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    monkeypatch.setenv("LUSTREPY_BINDIR", str(tmp_path))
    assert procs.find_program("lustrepy-mds") == str(prog)
    with pytest.raises(QuietError, match="not found"):
        procs.find_program("lustrepy-no-such-program")


def test_cluster_file_round_trip_and_damage(tmp_path: Path) -> None:
    from lustrepy.ctl import launcher
    from lustrepy.ctl.clusterfile import ClusterOptions

    rec = launcher.new_record(str(tmp_path), "testfs", 3, ClusterOptions(capacity=1 << 30, ost_timeout=2.0))
    clusterfile.save(rec)
    assert clusterfile.load(tmp_path) == rec
    assert clusterfile.load(tmp_path / "nothing") is None
    (tmp_path / "cluster.json").write_text("{not json")
    with pytest.raises(QuietError, match="damaged"):
        clusterfile.load(tmp_path)


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    with clusterfile.locked(tmp_path):
        code = ("import sys; from lustrepy.ctl import clusterfile\n"
                "try:\n    with clusterfile.locked(sys.argv[1]): pass\n"
                "except Exception as e: print(e); sys.exit(1)\n")
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "another lfsctl" in r.stdout
    with clusterfile.locked(tmp_path):
        pass
