"""`lfsctl replay-barrier --mds | --ost N`, `cluster stop-mds --kill` / `start-mds` and
`cluster stop-ost --kill` / `start-ost` on a local cluster with its mount: shell tools' work
after a barrier survives the server losing it."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.ctl.test_cluster_e2e import Tracker, lfsctl, ok

pytestmark = pytest.mark.timeout(180)


def _snapshot(top: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for d, dirs, files in os.walk(top):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), top) + "/"] = oct(os.stat(os.path.join(d, n)).st_mode)
        for n in files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, top)] = os.readlink(p) if os.path.islink(p) else Path(p).read_bytes()
    return out


def test_shell_work_after_a_barrier_survives_a_killed_and_restarted_mds(tmp_path: Path) -> None:
    root = tmp_path / "cluster"
    mnt = tmp_path / "mnt"
    t = Tracker(root)
    try:
        r = lfsctl("cluster", "up", "--root", str(root), "--osts", "2", "--mount", str(mnt))
        t.note()
        assert r.returncode == 0, r.stderr
        src = tmp_path / "src"
        for i in range(40):
            (src / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
            (src / f"d{i % 4}" / f"f{i}").write_bytes(os.urandom(100 + 997 * i))
        subprocess.run(["cp", "-a", str(src), str(mnt / "early")], check=True)

        r = lfsctl("replay-barrier", "--mds", "--root", str(root))
        assert r.returncode == 0 and "lost at its next start" in r.stdout, r.stderr
        sh = (f"cp -a {src} {mnt}/late && mv {mnt}/late/d1 {mnt}/late/moved && rm -r {mnt}/late/d2 && "
              f"ln {mnt}/late/d0/f0 {mnt}/hard && ln -s late/d3 {mnt}/sym && chmod 600 {mnt}/late/d3/f3 && "
              f"mkdir -p {mnt}/a/b/c && touch -d @981158400 {mnt}/a/b/c/stamp && rm {mnt}/early/d0/f4")
        subprocess.run(["sh", "-ec", sh], check=True, timeout=60)
        want = _snapshot(mnt)

        killed = ok("cluster", "stop-mds", "--kill", "--root", str(root))
        assert len(killed["stopped_pids"]) == 1
        r = lfsctl("cluster", "start-mds", "--root", str(root))
        t.note()
        assert r.returncode == 0, r.stderr
        assert "started the MDS" in r.stdout
        assert _snapshot(mnt) == want
        assert int(os.stat(mnt / "a/b/c/stamp").st_mtime) == 981158400
        assert os.stat(mnt / "hard").st_nlink == 2
        rec = ok("mds", "--root", str(root))["recovery"]
        assert rec["state"] == "complete" and rec["clients_recovered"] == 1 and rec["replays_failed"] == 0
        assert rec["replays_applied"] > 40
        text = lfsctl("mds", "--root", str(root)).stdout
        assert "recovery:" in text and "1/1 recovered" in text

        again = lfsctl("cluster", "start-mds", "--root", str(root))
        assert again.returncode == 1 and "already running" in again.stderr and again.stderr.count("\n") == 1

        # the same for an OST: a cp that returned (no fsync), then a power cut of OST 1's host
        barrier = ok("replay-barrier", "--ost", "1", "--root", str(root))
        assert barrier["server"] == "ost1" and barrier["transno"] > 0
        subprocess.run(["sh", "-ec", f"cp -a {src} {mnt}/after-ost-barrier && "
                                     f"dd if=/dev/urandom of={mnt}/big bs=1M count=6 status=none && "
                                     f"truncate -s 100000 {mnt}/late/d0/f8"], check=True, timeout=60)
        want = _snapshot(mnt)
        killed = ok("cluster", "stop-ost", "--index", "1", "--kill", "--root", str(root))
        assert len(killed["stopped_pids"]) == 1
        r = lfsctl("cluster", "start-ost", "--index", "1", "--root", str(root))
        t.note()
        assert r.returncode == 0, r.stderr
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        assert _snapshot(mnt) == want
        log = (root / "logs" / "ost1.log").read_text()
        assert "went back to their contents at the barrier" in log and "replays applied" in log
        osts = {o["index"]: o for o in ok("osts", "--root", str(root))["osts"]}
        rec = osts[1]["recovery"]
        assert rec["state"] == "complete" and rec["clients_recovered"] == 1 and rec["replays_failed"] == 0
        assert rec["replays_applied"] > 0 and osts[1]["last_committed"] > 0
        assert osts[0]["recovery"] is None or osts[0]["recovery"]["state"] in ("none", "complete")
        assert "complete 1/1 in" in lfsctl("osts", "--root", str(root)).stdout
    finally:
        t.cleanup()


def test_replay_barrier_needs_a_server(tmp_path: Path) -> None:
    r = lfsctl("replay-barrier", "--root", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--mds" in r.stderr
    r = lfsctl("replay-barrier", "--mds", "--mgs", "127.0.0.1:1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = lfsctl("replay-barrier", "--mds", "--ost", "0", "--mgs", "127.0.0.1:1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = lfsctl("replay-barrier", "--ost", "0", "--mgs", "127.0.0.1:1")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def _client_pid(point: Path) -> int:
    """The pid of the lustrepy client this test's cluster mounted on `point` (its own path)."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(point).encode() in argv and any(a.endswith(b"/lustrepy") for a in argv):
                return int(d.name)
    raise AssertionError(f"no client mounted on {point}")


def test_cluster_up_after_its_client_was_killed_waits_for_the_mds_recovery(tmp_path: Path) -> None:
    """The MDS restarts expecting the dead client; `cluster up --mount` waits out its recovery
    window instead of giving up after the usual mount timeout (30 s, below the 60 s window)."""
    root = tmp_path / "cluster"
    mnt = tmp_path / "mnt"
    t = Tracker(root)
    try:
        r = lfsctl("cluster", "up", "--root", str(root), "--osts", "1", "--mount", str(mnt))
        t.note()
        assert r.returncode == 0, r.stderr
        (mnt / "kept").write_bytes(b"x" * 5000)
        os.sync()
        os.kill(_client_pid(mnt), signal.SIGKILL)
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True, timeout=30)
        assert lfsctl("cluster", "down", "--root", str(root)).returncode == 0
        r = lfsctl("cluster", "up", "--root", str(root), "--mount", str(mnt), timeout=150)
        t.note()
        assert r.returncode == 0, r.stderr
        assert (mnt / "kept").read_bytes() == b"x" * 5000
        rec = ok("mds", "--root", str(root))["recovery"]
        assert rec["state"] == "complete" and rec["clients_expected"] == 1 and rec["clients_evicted"] == 1
    finally:
        t.cleanup()
