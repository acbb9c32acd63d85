"""A lustrepy cluster of separate hosts on one machine (network namespaces on one switch).

`netcluster` (one per module): MDT0's MDS on host `mds` (10.213.0.1), MDT1's on
host `mds1` (10.213.0.2, registered with MDT0), OSTs 0-3 on hosts `oss0`..`oss3`
(10.213.0.11-14), and two clients `c1`, `c2` (10.213.0.21-22), each mounting the
file system from its own host with `-o timeout=RPC_TIMEOUT`. Every OST is active
at both MDTs before the clients mount. Every server and mount is a process of
this test (pid known), run in its host's network namespace only, so the mounts
are seen here. Everything is stopped, unmounted and deleted at the end, also
when setting up fails half way, and every MDT is checked with lfsck; the
fixture fails if anything was left over or lfsck found a problem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.mounts import WBC, Mount
from tests.support.servers import BIN, Proc, lfsck, wait_for

FSNAME = "mnfs"
N_OSTS = 4
MDS_OCTET, OSS_OCTET, CLIENT_OCTET = 1, 11, 21     # MDT n's host (n >= 1) is at MDS_OCTET + n
N_MDTS = 2
RPC_TIMEOUT = 5.0       # the clients' `-o timeout=`: every RPC deadline of the mount


@dataclass
class NetCluster:
    lan: netns.Lan
    root: Path
    mds: Proc | None = None
    mdts: dict[int, Proc] = field(default_factory=dict)     # MDT1.. (MDT0's is `mds`), by index
    osts: dict[int, Proc] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    failover: str = ""      # the MDT's failover addresses, when it has a second host

    @property
    def mgs(self) -> str:
        """What clients, OSSes and lfsctl are given for the MDT."""
        assert self.mds is not None
        return self.failover or self.mds.address

    @property
    def source(self) -> str:
        return f"{self.mgs}:/{FSNAME}"

    def start_mds(self, role: str = "mds", octet: int = MDS_OCTET, port: int = 0, *extra: str) -> Proc:
        """The MDS on host `role` (made if new); the MDT's directory is the same for every host,
        as storage that two failover hosts both reach."""
        host = self.lan.hosts.get(role) or self.lan.add_host(role, octet)
        d = self.root / "mds"
        d.mkdir(exist_ok=True)
        argv = [str(BIN / "lustrepy-mds"), "--dir", str(d / "mdt"), "--fsname", FSNAME,
                "--listen", f"{host.addr}:{port}", "--port-file", str(d / "port"), *extra]
        self.mds = Proc("mds", host.wrap(argv), d / f"{role}.log", d / "port", host=host.addr).start()
        return self.mds

    def start_mdt(self, index: int) -> Proc:
        """MDT `index` (>= 1) on host `mds<index>` (made if new), with a directory of its own,
        registering with MDT0."""
        assert self.mds is not None and index >= 1
        role = f"mds{index}"
        host = self.lan.hosts.get(role) or self.lan.add_host(role, MDS_OCTET + index)
        d = self.root / f"mdt{index}"
        d.mkdir(exist_ok=True)
        argv = [str(BIN / "lustrepy-mds"), "--dir", str(d / "mdt"), "--fsname", FSNAME, "--index", str(index),
                "--mdt0", self.mds.address, "--listen", f"{host.addr}:0", "--port-file", str(d / "port")]
        proc = Proc(role, host.wrap(argv), d / "log", d / "port", host=host.addr)
        self.mdts[index] = proc
        return proc.start()

    def start_mdts(self, n_mdts: int) -> None:
        """MDT1..n_mdts-1 on hosts of their own, each active at MDT0 (asked from host c1)."""
        for i in range(1, n_mdts):
            self.start_mdt(i)
        self.client_host(1)
        want = dict.fromkeys(range(n_mdts), "active")
        wait_for(lambda: self.mdt_states() == want, timeout=30, what=f"{n_mdts} active MDTs")

    def start_oss(self, index: int) -> Proc:
        """OST `index` on a new host of its own, announcing itself to the MDS."""
        assert self.mds is not None
        host = self.lan.add_host(f"oss{index}", OSS_OCTET + index)
        d = self.root / f"oss{index}"
        d.mkdir()
        argv = [str(BIN / "lustrepy-oss"), "--dir", str(d / "ost"), "--fsname", FSNAME, "--index", str(index),
                "--listen", f"{host.addr}:0", "--mds", self.mgs, "--port-file", str(d / "port")]
        proc = Proc(f"oss{index}", host.wrap(argv), d / "log", d / "port", host=host.addr)
        self.osts[index] = proc
        return proc.start()

    def adopt_oss(self, index: int, host: netns.Host, argv: list[str], d: Path) -> Proc:
        """Start an OSS with this command line on `host` (its directory formatted already)."""
        proc = Proc(f"oss{index}", host.wrap(argv), d / "log", d / "port", host=host.addr)
        self.osts[index] = proc
        return proc.start()

    def start_osts_and_clients(self, n_osts: int) -> None:
        """OSTs 0..n_osts-1 on hosts of their own, active at the MDS, then clients 1 and 2 mounted."""
        for i in range(n_osts):
            self.start_oss(i)
        self.client_host(1)
        want = dict.fromkeys(range(n_osts), "active")
        wait_for(lambda: self.ost_states() == want, timeout=30, what=f"{n_osts} active OSTs")
        for i, p in self.mdts.items():      # the OSSes heard of MDT1.. from MDT0 and announce there too
            wait_for(lambda p=p: self.ost_states(p.address) == want, timeout=30,
                     what=f"{n_osts} active OSTs at MDT{i}")
        self.mount_client(1)
        self.mount_client(2)

    def client_host(self, n: int) -> netns.Host:
        """Host `c<n>` (made if new)."""
        return self.lan.hosts.get(f"c{n}") or self.lan.add_host(f"c{n}", CLIENT_OCTET + n - 1)

    def mount_client(self, n: int) -> Mount:
        """Client `n` on host `c<n>` (made if new), mounting from there."""
        role = f"c{n}"
        host = self.client_host(n)
        path = self.root / role / "mnt"
        path.mkdir(parents=True)
        m = Mount(self.source, path, path.parent / "mount.log", wrapper=tuple(host.wrap([])))
        self.mounts.append(m)
        opts = [f"timeout={RPC_TIMEOUT:g}"]
        if WBC:
            opts += ["wbc", f"journal={path.parent / 'journal'}"]
        return m.start(*opts)

    def lfsctl(self, *args: str, on: str = "c1", timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`lfsctl ARGS` run on host `on`."""
        return self.lan.hosts[on].run([str(BIN / "lfsctl"), *args], timeout=timeout)

    def query(self, command: str, mgs: str = "") -> dict:
        """`lfsctl COMMAND --mgs MDS --json`, asked from a client host (of MDT0's MDS unless `mgs`)."""
        assert self.mds is not None
        r = self.lfsctl(command, "--mgs", mgs or self.mgs, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def ost_states(self, mgs: str = "") -> dict[int, str]:
        """OST index -> "active"/"inactive", as `lfsctl df` shows them (at MDT0 unless `mgs`)."""
        return {t["index"]: t["state"] for t in self.query("df", mgs)["targets"] if t["type"] == "OST"}

    def mdt_states(self) -> dict[int, str]:
        """MDT index -> "active"/"inactive", as `lfsctl df` shows them."""
        return {t["index"]: t["state"] for t in self.query("df")["targets"] if t["type"] == "MDT"}

    def stop(self) -> list[str]:
        """Unmount, stop every process by pid, delete the hosts, check the MDT; returns what had to be
        forced or was left, and what lfsck found."""
        problems: list[str] = []
        for m in self.mounts:
            try:
                code = m.stop()
                if code not in (0, None):
                    problems.append(f"mount {m.path} exited {code}")
            except Exception as e:      # noqa: BLE001 - go on cleaning up the rest
                problems.append(f"unmounting {m.path}: {e!r}")
        for p in [*self.osts.values(), *self.mdts.values(), self.mds]:
            if p is not None:
                try:
                    p.stop()
                except Exception as e:  # noqa: BLE001
                    problems.append(f"stopping {p.name}: {e!r}")
        problems += self.lan.close()
        for mdt in [self.root / "mds" / "mdt", *(self.root / f"mdt{i}" / "mdt" for i in self.mdts)]:
            try:
                lfsck(mdt)                              # every MDT is consistent after all of it
            except AssertionError as e:
                problems.append(str(e))
        for m in self.mounts:
            if os.path.ismount(m.path):
                problems.append(f"{m.path} still mounted")
        return problems


def _why_not() -> str | None:
    reason = netns.unavailable()
    if reason:
        return reason
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        return "FUSE mounts need /dev/fuse and fusermount3"
    return None


@pytest.fixture(scope="module")
def netcluster(tmp_path_factory) -> Iterator[NetCluster]:
    reason = _why_not()
    if reason:
        pytest.skip(f"multi-node tests need network namespaces: {reason}")
    lan = netns.Lan()
    c = NetCluster(lan, tmp_path_factory.mktemp("netcluster"))
    try:
        lan.start()
        c.start_mds()
        c.start_mdts(N_MDTS)
        c.start_osts_and_clients(N_OSTS)
        yield c
    finally:
        problems = c.stop()
    assert not problems, problems
