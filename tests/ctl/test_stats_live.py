"""lfsctl stats against a real cluster (an MDS and two OSSes) with a real mount: totals since start,
rates over intervals while a writer runs, the redrawn view on a terminal (a pty), and usage errors."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster

pytestmark = pytest.mark.timeout(180)

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
M = 1 << 20


def lfsctl(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout)


@dataclass
class Env:
    cluster: Cluster
    mnt: Mount
    reader: Mount

    @property
    def mgs(self) -> tuple[str, str]:
        return ("--mgs", self.cluster.mds.address)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("stats")
    (base / "srv").mkdir()
    c = Cluster(base / "srv")
    mounted: list[Mount] = []
    try:
        c.start(2)
        m = mount(c, base / "mnt", "client_id=writer")
        mounted.append(m)
        mounted.append(mount(c, base / "reader", "client_id=reader"))
        r = lfsctl("setstripe", "-c", "2", "-S", "1M", str(m.path))
        assert r.returncode == 0, r.stderr
        data = os.urandom(4 * M)
        (m.path / "seed").write_bytes(data)
        assert (mounted[1].path / "seed").read_bytes() == data     # read from the OSTs by the other client
        yield Env(c, *mounted)
    finally:
        for mm in mounted:
            mm.stop()
        c.stop()


def servers_by_name(d: dict) -> dict[str, dict]:
    return {s["name"]: s for s in d["servers"]}


def test_totals_since_start(env: Env) -> None:
    r = lfsctl("stats", *env.mgs, "--json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    d = json.loads(r.stdout)
    assert d["since_start"] is True and d["errors"] == [] and d["interval_s"] == 0
    s = servers_by_name(d)
    assert set(s) == {"testfs-MDT0000", "testfs-OST0000", "testfs-OST0001"}
    intent = s["testfs-MDT0000"]["ops"]["intent"]
    assert intent["count"] > 0 and 0 <= intent["errors"] <= intent["count"]     # a lookup of a new name: ENOENT
    assert 0 < intent["p50_us"] <= intent["p90_us"] <= intent["p99_us"]
    for ost in ("testfs-OST0000", "testfs-OST0001"):
        assert s[ost]["write_bytes"] >= 2 * M and s[ost]["read_bytes"] >= 2 * M
        w = s[ost]["ops"].get("write") or s[ost]["ops"]["write_many"]
        assert w["count"] > 0 and w["p99_us"] is not None
        assert s[ost]["ops"]["ldlm_enqueue"]["count"] > 0      # the writers' extent locks count too
    clients = {c["client_id"]: c for c in d["clients"]}
    assert clients["writer"]["md_ops"] > 0 and clients["writer"]["write_bytes"] >= 4 * M
    assert clients["reader"]["md_ops"] > 0 and clients["reader"]["read_bytes"] >= 4 * M
    assert set(clients["writer"]["osts"]) == {"testfs-OST0000", "testfs-OST0001"}
    # The first version's keys stay: the MDS's ops from its counters, and the write-back cache figures.
    assert d["ops"]["intent"]["count"] >= intent["count"] and "p99_us" in d["ops"]["intent"]
    assert "wbc_grants" in d["wbc"]

    text = lfsctl("stats", *env.mgs)
    assert text.returncode == 0
    assert text.stdout.startswith("testfs: totals since each server started")
    for needle in ("testfs-MDT0000", "testfs-OST0001", "intent", "write-back cache", "writer", "P99"):
        assert needle in text.stdout


def writer(path: Path, stop: threading.Event) -> None:
    chunk = os.urandom(M)
    i = 0
    while not stop.is_set():
        with open(path / f"live-{i % 4}", "wb") as f:
            f.write(chunk)
        i += 1


def test_rates_over_intervals_while_writing(env: Env) -> None:
    stop = threading.Event()
    t = threading.Thread(target=writer, args=(env.mnt.path, stop))
    t.start()
    try:
        r = lfsctl("stats", *env.mgs, "--interval", "0.5", "--count", "3", "--json")
    finally:
        stop.set()
        t.join(30)
    assert r.returncode == 0, r.stderr
    views = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(views) == 3
    for v in views:
        assert v["since_start"] is False and v["interval_s"] == 0.5 and 0.3 < v["measured_s"] < 3
    busy = [v for v in views if sum(s.get("write_bytes_per_s", 0) for s in v["servers"]) > 0]
    assert busy, "a writer ran through every interval"
    v = busy[0]
    w = {c["client_id"]: c for c in v["clients"]}["writer"]
    assert w["write_bytes_per_s"] > 0 and w["md_per_s"] > 0
    mdt = servers_by_name(v)["testfs-MDT0000"]
    assert any(o["count"] and o["p50_us"] for o in mdt["ops"].values())
    # Interval counts are differences: never more than the totals.
    for s in v["servers"]:
        assert all(0 <= o["count"] <= o["total"] for o in s["ops"].values())


def test_plain_blocks_when_not_a_terminal(env: Env) -> None:
    r = lfsctl("stats", *env.mgs, "--interval", "0.2", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("testfs: rates over the last") == 2 and "\x1b[" not in r.stdout
    assert "\n\ntestfs: rates over the last" in r.stdout


def test_json_with_interval_alone_is_one_view(env: Env) -> None:
    r = lfsctl("stats", *env.mgs, "--interval", "0.3", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["interval_s"] == 0.3 and "ops" in d and "wbc" in d


def test_redrawn_in_place_on_a_terminal(env: Env) -> None:
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen([*LFSCTL, "stats", *env.mgs, "--interval", "0.2", "--count", "3"],
                             stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(follower)
        follower = -1
        out = b""
        end = time.monotonic() + 60
        while time.monotonic() < end:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:         # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        assert p.wait(30) == 0, p.stderr.read() if p.stderr else ""
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    text = out.decode(errors="replace")
    assert text.count("\x1b[H\x1b[2J") == 3 and text.count("rates over the last") == 3


@pytest.mark.parametrize(("argv", "why"), [
    (["--interval", "0"], "--interval must be positive"),
    (["--count", "2"], "--count needs --interval"),
    (["--interval", "1", "--count", "0"], "--count needs --interval"),
    (["--interval", "x"], "invalid float value"),
])
def test_usage_errors(env: Env, argv: list[str], why: str) -> None:
    r = lfsctl("stats", *env.mgs, *argv)
    assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr


def test_help() -> None:
    r = lfsctl("stats", "--help")
    assert r.returncode == 0 and "--interval" in r.stdout and "--count" in r.stdout and "--json" in r.stdout
