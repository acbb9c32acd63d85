"""Real server processes for tests: start lustrepy-mds / lustrepy-oss, wait until
they serve (port file), and always stop what was started, by pid. Stopping a
cluster ends with the MDT's consistency check (lfsck), which must come out
clean unless the test damaged the MDT on purpose and says so."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.store import DB_NAME
from tests.support.spawn import Spawned

BIN = Path(sys.executable).parent


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    port_file: Path
    popen: subprocess.Popen | Spawned | None = None
    port: int = 0
    host: str = "127.0.0.1"         # the address others reach it at (its own host's, off loopback)
    detached: bool = False          # started by the fork server (tests/support/spawn.py), not by this process

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, wait: float = 20.0) -> "Proc":
        self.port_file.unlink(missing_ok=True)
        if self.detached:
            self.popen = Spawned(self.argv, str(self.log))
        else:
            with open(self.log, "ab") as logf:
                self.popen = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                              start_new_session=True)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if self.port_file.exists() and self.port_file.read_text().strip():
                self.port = int(self.port_file.read_text())
                return self
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.popen.returncode}: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not serve within {wait}s: {self.log.read_text()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM, wait: float = 10.0) -> int | None:
        p = self.popen
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        p.send_signal(sig)
        try:
            return p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(5)


@dataclass
class Cluster:
    root: Path
    fsname: str = "testfs"
    mds: Proc | None = None
    osts: list[Proc] = field(default_factory=list)
    mdts: list[Proc] = field(default_factory=list)     # MDT1.. (MDT0 is `mds`)
    damaged_on_purpose: bool = False    # set by a test that breaks the MDT's invariants: stop() skips lfsck
    detached: bool = False              # servers start from the fork server (restarts under a workload)

    def mds_proc(self, *extra: str) -> Proc:
        d = self.root / "mdt"
        argv = [str(BIN / "lustrepy-mds"), "--dir", str(d), "--fsname", self.fsname,
                "--listen", f"127.0.0.1:{self.mds.port if self.mds else 0}",
                "--port-file", str(self.root / "mds.port"), *extra]
        return Proc("mds", argv, self.root / "mds.log", self.root / "mds.port", detached=self.detached)

    def mdt_proc(self, index: int, *extra: str) -> Proc:
        """MDT `index` (>= 1), registering with MDT0."""
        d = self.root / f"mdt{index}"
        old = self.mdts[index - 1] if index - 1 < len(self.mdts) else None
        argv = [str(BIN / "lustrepy-mds"), "--dir", str(d), "--fsname", self.fsname, "--index", str(index),
                "--mdt0", self.mds.address, "--listen", f"127.0.0.1:{old.port if old else 0}",
                "--port-file", str(self.root / f"mdt{index}.port"), *extra]
        return Proc(f"mds{index}", argv, self.root / f"mdt{index}.log", self.root / f"mdt{index}.port",
                    detached=self.detached)

    def oss_proc(self, index: int, *extra: str) -> Proc:
        d = self.root / f"ost{index}"
        old = self.osts[index] if index < len(self.osts) else None
        argv = [str(BIN / "lustrepy-oss"), "--dir", str(d), "--fsname", self.fsname, "--index", str(index),
                "--listen", f"127.0.0.1:{old.port if old else 0}", "--mds", self.mds.address,
                "--port-file", str(self.root / f"ost{index}.port"), "--node", f"node{index}", *extra]
        return Proc(f"oss{index}", argv, self.root / f"ost{index}.log", self.root / f"ost{index}.port",
                    detached=self.detached)

    def start(self, n_osts: int, mds_args: tuple[str, ...] = (), oss_args: tuple[str, ...] = (),
              n_mdts: int = 1) -> "Cluster":
        self.mds = self.mds_proc(*mds_args).start()
        for i in range(1, n_mdts):
            self.mdts.append(self.mdt_proc(i, *mds_args).start())
        for i in range(n_osts):
            self.osts.append(self.oss_proc(i, *oss_args).start())
        return self

    def stop(self) -> None:
        """Stop every server, then check the MDT (AssertionError naming each problem)."""
        for p in [*self.osts, *self.mdts, self.mds]:
            if p is not None:
                p.stop()
        if not self.damaged_on_purpose:
            lfsck(self.root / "mdt")
            for i in range(1, len(self.mdts) + 1):
                lfsck(self.root / f"mdt{i}")


def lfsck(mdt: Path) -> None:
    """The MDT's consistency check (lustrepy.mds.lfsck) on a stopped or running MDT directory;
    nothing to check where no MDT was ever formatted."""
    if (mdt / DB_NAME).exists():
        problems = check_invariants(mdt)
        assert problems == [], f"lfsck of {mdt}: " + "; ".join(problems)


def wait_for(pred, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
