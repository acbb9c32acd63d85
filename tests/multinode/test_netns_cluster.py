"""lustrepy across hosts: two MDSs (MDT0 and MDT1), four OSSes and two clients, each on its
own host (network namespace) with its own address, joined by one switch. These tests work in
MDT0's directories; the admin commands show both MDTs.

Shell tools on both clients see the same data and the same namespace; a
host whose link is pulled makes I/O on files striped over its OST fail with
an error within a bound (never a hang) while every other file keeps working,
and all of it works again once the link is back; an OSS started on a new
host while the clients are mounted joins the file system and receives
stripes of new files, with nothing restarted.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.multinode.conftest import N_MDTS, N_OSTS, RPC_TIMEOUT, NetCluster
from tests.support.servers import BIN, wait_for

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
DOWN_ERRORS = tuple(os.strerror(e) for e in (errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN))
# A system call that needs an unreachable OST fails at the first RPC to it that fails: at the
# mount's RPC deadline (-o timeout, every osc RPC and lock enqueue has it), or at once when the
# host does not answer ARP. Parallel stripe I/O waits at most 3 deadlines (lov.fan_out), and the
# kernel may send a failed read again. Past this bound it counts as a hang.
FAIL_BOUND = 6 * RPC_TIMEOUT + 5
# The MDS marks an OST inactive after --ost-timeout (5 s) without heartbeats (every 1 s).
OST_STATE_BOUND = 20.0


def sh(script: str, cwd: Path | None = None, timeout: float = 120.0) -> str:
    """Run a bash script (set -euo pipefail); its stdout, or a failed assertion with its output."""
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{script}\nexit {r.returncode}\n{r.stdout}{r.stderr}"
    return r.stdout


def sha(path: Path) -> str:
    return sh(f"sha256sum < '{path}'").split()[0]


def fails_fast(script: str, cwd: Path) -> str:
    """Run a script that must fail with a transport error (EIO/ETIMEDOUT/ENOTCONN) within
    FAIL_BOUND; returns how long it took and what it said. A hang is killed (its whole
    process group) and fails the test."""
    t0 = time.monotonic()
    p = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=FAIL_BOUND + 30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"{script!r} hung for over {FAIL_BOUND + 30:.0f}s")
    elapsed = time.monotonic() - t0
    assert p.returncode != 0, f"{script!r} succeeded with its OST unreachable: {out}"
    assert any(e in err for e in DOWN_ERRORS), f"{script!r}: {err}"
    assert elapsed < FAIL_BOUND, f"{script!r} took {elapsed:.1f}s to fail"
    return f"{elapsed:.1f}s ({err.strip().splitlines()[0]})"


def setstripe(path: Path, *args: str) -> None:
    sh(f"'{BIN / 'lfsctl'}' setstripe {' '.join(args)} '{path}'")


def ost_indexes(path: Path) -> list[int]:
    d = json.loads(sh(f"'{BIN / 'lfsctl'}' getstripe --json '{path}'"))
    return [idx for idx, _ in d["objects"]]


def make_tree(root: Path) -> Path:
    """A source tree of odd sizes, subdirectories, a symlink and an empty file, plus this
    project's own sources: what people copy and tar."""
    src = root / "src"
    (src / "a" / "b" / "c").mkdir(parents=True)
    for i, size in enumerate((0, 1, 4095, 4096, 65537, 300_001, 1_048_576 + 3)):
        (src / "a" / f"f{i}").write_bytes(os.urandom(size))
    (src / "a" / "b" / "c" / "deep").write_text("deep\n" * 1000)
    os.symlink("a/f3", src / "link")
    sh(f"cp -a '{REPO / 'lustrepy' / 'common'}' '{src / 'common'}' && rm -rf '{src}'/common/__pycache__")
    return src


def test_shell_workloads_on_two_hosts_see_the_same_data(netcluster: NetCluster, tmp_path: Path) -> None:
    a, b = (m.path for m in netcluster.mounts)
    src = make_tree(tmp_path)
    # every server is known at its own host's address, and both client hosts are connected
    osts = netcluster.query("osts")["osts"]
    assert {o["index"]: o["address"].rpartition(":")[0] for o in osts} == {
        i: netcluster.lan.hosts[f"oss{i}"].addr for i in range(N_OSTS)}
    mds = netcluster.query("mds")
    assert mds["address"] == netcluster.mds.address and mds["clients"] == 2

    (a / "wide").mkdir()
    setstripe(a / "wide", "-c", str(N_OSTS), "-S", "64K")       # every file over every OSS host
    sh("dd if=/dev/urandom of=wide/big bs=1M count=6 status=none", cwd=a)
    assert sorted(ost_indexes(b / "wide" / "big")) == list(range(N_OSTS))
    assert sha(b / "wide" / "big") == sha(a / "wide" / "big")

    # cp -a on one host, compared from the other
    sh(f"cp -a '{src}' wide/tree", cwd=a)
    sh(f"diff -r '{src}' wide/tree && test \"$(readlink wide/tree/link)\" = a/f3", cwd=b)

    # tar round trip: archive on b, unpack on a, archive that back out to local disk
    sh("tar -C wide/tree -cf wide/t.tar .", cwd=b)
    sh("mkdir wide/untar && tar -C wide/untar -xf wide/t.tar", cwd=a)
    sh(f"diff -r '{src}' wide/untar", cwd=b)
    sh(f"mkdir '{tmp_path}/back' && tar -C wide/untar -cf - . | tar -C '{tmp_path}/back' -xf - && "
       f"diff -r '{src}' '{tmp_path}/back'", cwd=a)

    # appends from both hosts, read on the other
    sh("printf 'from a\\n' > wide/log", cwd=a)
    sh("printf 'from b\\n' >> wide/log", cwd=b)
    assert sh("cat wide/log", cwd=a) == "from a\nfrom b\n"
    before = sha(a / "wide" / "big")
    sh("dd if=/dev/urandom bs=100K count=3 status=none >> wide/big", cwd=a)     # across stripes and OSTs
    assert os.stat(b / "wide" / "big").st_size == 6 * 2**20 + 300 * 1024
    assert sha(b / "wide" / "big") == sha(a / "wide" / "big") != before
    assert sh("head -c 6291456 wide/big | sha256sum", cwd=b).split()[0] == before

    # namespace changes on one host, seen on the other
    sh("mkdir -p wide/d1/d2/d3 && mv wide/big wide/big2 && mv wide/tree wide/tree2", cwd=a)
    assert sh("ls wide/d1/d2", cwd=b) == "d3\n"
    sh("test ! -e wide/big && test ! -e wide/tree", cwd=b)
    sh(f"sha256sum wide/big2 && diff -r '{src}' wide/tree2", cwd=b)
    listing = sh("ls -la wide | awk '{print $1, $5, $NF}'", cwd=a)
    assert sh("ls -la wide | awk '{print $1, $5, $NF}'", cwd=b) == listing
    sh("rm -rf wide/tree2 wide/untar wide/t.tar", cwd=b)
    assert sorted(os.listdir(a / "wide")) == ["big2", "d1", "log"]
    sh("rm -rf wide", cwd=a)
    assert "wide" not in os.listdir(b)


def test_a_pulled_oss_link_fails_its_files_fast_and_they_work_again_once_back(netcluster: NetCluster) -> None:
    a, b = (m.path for m in netcluster.mounts)
    victim = 1
    host = netcluster.lan.hosts[f"oss{victim}"]
    others = [i for i in range(N_OSTS) if i != victim]
    (a / "down").mkdir()
    files = {"on_victim": ("-c", "1", "-i", str(victim)), "w_victim": ("-c", "1", "-i", str(victim)),
             "wide": ("-c", str(N_OSTS), "-S", "64K"), "warm": ("-c", str(N_OSTS), "-S", "64K"),
             "on_other": ("-c", "1", "-i", str(others[0])), "w_other": ("-c", "1", "-i", str(others[1]))}
    sums = {}
    for name, args in files.items():
        setstripe(a / "down" / name, *args)
        sh(f"dd if=/dev/urandom of=down/{name} bs=256K count=4 conv=notrunc,fsync status=none", cwd=a)
        sums[name] = sha(a / "down" / name)
    assert ost_indexes(a / "down" / "on_victim") == [victim]
    assert victim not in ost_indexes(a / "down" / "on_other") + ost_indexes(a / "down" / "w_other")
    assert sha(b / "down" / "warm") == sums["warm"]    # b has talked to every OSS host before the cut

    host.link(False)
    try:
        cut = time.monotonic()
        took = [fails_fast("cat down/on_victim > /dev/null", cwd=b),
                fails_fast("cat down/wide > /dev/null", cwd=b),
                fails_fast("dd if=/dev/zero of=down/w_victim bs=64K count=2 conv=notrunc,fsync status=none",
                           cwd=a)]
        print(f"I/O on OST{victim} failed after", "; ".join(took))
        # other OSTs and the MDS keep serving both hosts meanwhile
        assert sha(b / "down" / "on_other") == sums["on_other"]
        sh("dd if=/dev/urandom of=down/w_other bs=64K count=3 conv=notrunc,fsync status=none", cwd=a)
        assert sha(b / "down" / "w_other") == sha(a / "down" / "w_other") != sums["w_other"]
        sh("mkdir down/sub && mv down/on_other down/sub/moved && ls down/sub", cwd=b)
        assert os.listdir(a / "down" / "sub") == ["moved"]
        # once the MDS sees the OST silent it places no new object there
        wait_for(lambda: netcluster.ost_states()[victim] == "inactive", timeout=OST_STATE_BOUND,
                 what=f"OST{victim} inactive in lfsctl df")
        print(f"OST{victim} inactive {time.monotonic() - cut:.1f}s after the cut")
        setstripe(a / "down" / "new_all", "-c", "-1")
        assert sorted(ost_indexes(a / "down" / "new_all")) == others
        sh("dd if=/dev/urandom of=down/new_all bs=64K count=10 conv=notrunc status=none", cwd=a)
        assert sha(b / "down" / "new_all") == sha(a / "down" / "new_all")
    finally:
        host.link(True)
    back = time.monotonic()
    wait_for(lambda: netcluster.ost_states()[victim] == "active", timeout=OST_STATE_BOUND,
             what=f"OST{victim} active again in lfsctl df")
    print(f"OST{victim} active {time.monotonic() - back:.1f}s after the link came back")
    assert sha(b / "down" / "on_victim") == sums["on_victim"]
    assert sha(b / "down" / "wide") == sums["wide"]
    sh("dd if=/dev/urandom of=down/w_victim bs=64K count=4 conv=notrunc,fsync status=none", cwd=a)
    assert sha(b / "down" / "w_victim") == sha(a / "down" / "w_victim")
    sh("dd if=/dev/urandom of=down/on_victim bs=64K count=2 seek=3 conv=notrunc status=none", cwd=b)
    assert sha(a / "down" / "on_victim") == sha(b / "down" / "on_victim") != sums["on_victim"]
    setstripe(a / "down" / "new_all2", "-c", "-1")
    assert sorted(ost_indexes(a / "down" / "new_all2")) == list(range(N_OSTS))
    sh("rm -rf down", cwd=b)


def test_an_oss_started_on_a_new_host_joins_the_mounted_file_system(netcluster: NetCluster) -> None:
    a, b = (m.path for m in netcluster.mounts)
    procs = [netcluster.mds, *netcluster.osts.values()] + [m for m in netcluster.mounts]
    pids = [p.popen.pid for p in procs]
    new = N_OSTS
    assert new not in netcluster.ost_states()

    t0 = time.monotonic()
    netcluster.start_oss(new)           # a fifth host, its OSS announcing itself to the MDS
    wait_for(lambda: netcluster.ost_states().get(new) == "active", timeout=OST_STATE_BOUND,
             what=f"OST{new} active in lfsctl df")
    osts = {o["index"]: o for o in netcluster.query("osts")["osts"]}
    assert osts[new]["address"].startswith(netcluster.lan.hosts[f"oss{new}"].addr + ":")
    wait_for(lambda: {o["index"]: o for o in netcluster.query("osts")["osts"]}[new]["precreated"] > 0,
             timeout=OST_STATE_BOUND, what=f"objects precreated on OST{new}")
    print(f"OST{new} in lfsctl df and ready {time.monotonic() - t0:.1f}s after its OSS started")

    (a / "new").mkdir()
    setstripe(a / "new" / "all", "-c", "-1", "-S", "64K")
    assert sorted(ost_indexes(b / "new" / "all")) == list(range(N_OSTS + 1))
    sh("dd if=/dev/urandom of=new/all bs=64K count=20 conv=notrunc status=none", cwd=a)
    assert sha(b / "new" / "all") == sha(a / "new" / "all")
    setstripe(b / "new" / "only", "-c", "1", "-i", str(new))
    sh("dd if=/dev/urandom of=new/only bs=1M count=2 conv=notrunc status=none", cwd=b)
    assert ost_indexes(a / "new" / "only") == [new]
    assert sha(a / "new" / "only") == sha(b / "new" / "only")
    # files with the default layout (one stripe, round robin) go there too
    sh("for i in $(seq 10); do head -c 70000 /dev/urandom > new/rr$i; done", cwd=a)
    placed = [ost_indexes(b / "new" / f"rr{i}")[0] for i in range(1, 11)]
    assert new in placed, placed
    sh("for i in $(seq 10); do cmp new/rr$i " + f"'{b}'" + "/new/rr$i; done", cwd=a)

    assert [p.popen.pid for p in procs] == pids and all(p.popen.poll() is None for p in procs)
    sh("rm -rf new", cwd=a)


def test_every_admin_command_works_across_hosts(netcluster: NetCluster) -> None:
    """lfsctl, run on a client host, against servers on other hosts: each command of the
    admin tool answers with what the cluster really holds."""
    mds = netcluster.mds
    assert mds is not None
    a, b = (m.path for m in netcluster.mounts)
    run = netcluster.lfsctl

    def ok(*args: str) -> str:
        r = run(*args)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout

    def js(*args: str) -> dict | list:
        return json.loads(ok(*args, "--json"))

    helptext = ok("--help")
    for cmd in ("df", "osts", "mds", "locks", "clients", "evict", "find", "get-param", "set-param", "stats",
                "mkfs", "getstripe", "setstripe", "wbc", "cluster"):
        assert f"    {cmd} " in helptext, cmd
    osts = sorted(netcluster.osts)
    mgs = ("--mgs", mds.address)

    # space and state, human and JSON
    assert "OST0000" in ok("df", "-h", *mgs) and "MDT0000" in ok("df", "-i", *mgs)
    assert js("mds", *mgs)["clients"] >= 2
    for o in js("osts", *mgs)["osts"]:         # each OSS on its own host says how it is
        assert o["version"] and o["uptime_s"] > 0 and o["clients"] >= 1, o
    (a / "adm").mkdir()
    setstripe(a / "adm", "-c", "-1")
    sh("head -c 300000 /dev/urandom > adm/big && echo hi > adm/small && mkdir adm/sub", cwd=a)
    assert sha(b / "adm" / "big") == sha(a / "adm" / "big")

    # clients and their locks on every server; the clients are at their own hosts' addresses
    clients = js("clients", *mgs)["clients"]
    hosts = {netcluster.lan.hosts[h].addr for h in ("c1", "c2")}
    mounts = [c for c in clients if c["address"].split(":")[0] in hosts]
    assert len(mounts) == 2, clients
    locks = js("locks", *mgs)
    names = {s["name"] for s in locks["servers"]}
    assert "mnfs-MDT0000" in names and {f"mnfs-OST{i:04x}" for i in osts} <= names
    owners = {lk["owner"] for s in locks["servers"] for lk in s["locks"]}
    assert {c["client_id"] for c in mounts} <= owners
    mine = js("locks", "--mds", "--client", mounts[0]["client_id"], *mgs)["servers"]
    assert [s["name"] for s in mine] == [f"mnfs-MDT{i:04x}" for i in range(N_MDTS)]     # every MDT's
    assert {lk["owner"] for lk in mine[0]["locks"]} == {mounts[0]["client_id"]}
    assert {lk["owner"] for s in mine for lk in s["locks"]} == {mounts[0]["client_id"]}
    assert [s["name"] for s in js("locks", "--mdt", "0", *mgs)["servers"]] == ["mnfs-MDT0000"]
    assert [s["name"] for s in js("locks", "--ost", "0", *mgs)["servers"]] == ["mnfs-OST0000"]

    # statistics: every server answers; a live view refreshes
    st = js("stats", *mgs)
    assert {s["name"] for s in st["servers"]} >= {"mnfs-MDT0000", *(f"mnfs-OST{i:04x}" for i in osts)}
    live = ok("stats", "--interval", "0.5", "--count", "2", "--json", *mgs).strip().splitlines()
    assert len(live) == 2 and all(json.loads(x)["servers"] for x in live)

    # tunables: every MDS's (named mds.N.* with several MDTs) and every OST's, set at run time
    # and read back, then reset
    assert {p["name"] for p in js("get-param", "mds.wbc.*", *mgs)} == {
        f"mds.{i}.wbc.{n}" for i in range(N_MDTS) for n in ("contention_threshold", "contention_window",
                                                            "contention_hold")}
    hb = js("get-param", "ost.*.heartbeat_interval", *mgs)
    assert sorted(p["name"] for p in hb) == sorted(f"ost.{i}.heartbeat_interval" for i in osts)
    ok("set-param", "mds.wbc.contention_hold=7", *mgs)
    assert [p["value"] for p in js("get-param", "mds.wbc.contention_hold", *mgs)] == ["7"] * N_MDTS
    ok("set-param", "mds.1.wbc.contention_hold=9", *mgs)          # one MDT's alone
    assert {p["name"]: p["value"] for p in js("get-param", "mds.*.wbc.contention_hold", *mgs)} == {
        "mds.0.wbc.contention_hold": "7", "mds.1.wbc.contention_hold": "9"}
    ok("set-param", "--reset", "mds.wbc.contention_hold", *mgs)
    assert [p["value"] for p in js("get-param", "mds.wbc.contention_hold", *mgs)] == ["30"] * N_MDTS
    bad = run("set-param", "mds.wbc.contention_hold=soon", *mgs)     # each MDT refuses it, named
    assert bad.returncode != 0 and sorted(bad.stderr.strip().splitlines()) == [
        f"lfsctl: mds.{i}: mds.wbc.contention_hold: expected a number, not 'soon'" for i in range(N_MDTS)], bad.stderr
    assert [p["value"] for p in js("get-param", "mds.wbc.contention_hold", *mgs)] == ["30"] * N_MDTS

    # find walks the mount on this host; layouts, the directory's WBC state
    found = js("find", str(a / "adm"), "--type", "f", "--ost", "0")
    assert sorted(p["path"] for p in found) == [str(a / "adm" / "big"), str(a / "adm" / "small")]
    assert ok("find", str(a / "adm"), "--type", "d").split() == [str(a / "adm"), str(a / "adm" / "sub")]
    assert js("getstripe", str(a / "adm" / "big"))
    assert js("wbc", str(a / "adm"))["mode"]

    # evict the second client: its locks go everywhere; it reconnects and goes on working
    victim = next(c["client_id"] for c in mounts if c["address"].startswith(netcluster.lan.hosts["c2"].addr + ":"))
    ok("evict", victim, *mgs)
    wait_for(lambda: (b / "adm" / "small").read_text() == "hi\n", timeout=30, what="the evicted client back")
    (b / "adm" / "after").write_text("evicted and back")
    assert (a / "adm" / "after").read_text() == "evicted and back"
    unknown = run("evict", "no-such-client", *mgs)
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1

    # mkfs on a new host's directory, then an OSS serves it and joins
    index = max(osts) + 1
    host = netcluster.lan.add_host(f"oss{index}", 11 + index)
    d = netcluster.root / f"oss{index}"
    d.mkdir()
    r = host.run([str(BIN / "lfsctl"), "mkfs", "--ost", str(index), "--fsname", "mnfs", *mgs, str(d / "ost"),
                  "--json"])
    assert r.returncode == 0 and json.loads(r.stdout), r.stderr
    proc = netcluster.adopt_oss(index, host, [str(BIN / "lustrepy-oss"), "--dir", str(d / "ost"),
                                              "--listen", f"{host.addr}:0", "--port-file", str(d / "port")], d)
    assert proc.popen is not None
    wait_for(lambda: netcluster.ost_states().get(index) == "active", timeout=OST_STATE_BOUND,
             what=f"OST{index} formatted by lfsctl mkfs, active")
    sh("rm -rf adm", cwd=a)
