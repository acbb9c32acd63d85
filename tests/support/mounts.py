"""Real lustrepy mounts for tests: started in the foreground under Popen (so
the test owns the pid), waited for until the mount answers, and always
unmounted (fusermount3 -u, then -uz) and stopped, also when a test fails."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lustrepy.common import certs
from lustrepy.rpc import tls
from tests.support.servers import BIN, Cluster


@dataclass
class Mount:
    source: str
    path: Path
    log: Path
    popen: subprocess.Popen | None = None
    wrapper: tuple[str, ...] = ()   # runs the mount program through this (e.g. nsenter into a host)

    def start(self, *opts: str, wait: float = 30.0) -> "Mount":
        self.path.mkdir(parents=True, exist_ok=True)
        argv = [*self.wrapper, str(BIN / "lustrepy"), self.source, str(self.path), "-f"]
        if opts:
            argv += ["-o", ",".join(opts)]
        with open(self.log, "ab") as logf:
            self.popen = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if os.path.ismount(self.path):
                os.stat(self.path)
                return self
            if self.popen.poll() is not None:
                raise RuntimeError(f"mount exited {self.popen.returncode}: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mount did not come up in {wait}s: {self.log.read_text()[-3000:]}")

    def stop(self) -> int | None:
        if _mounted(self.path):         # also a dead one (its client killed): ismount() says no there
            r = subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        p = self.popen
        if p is None:
            return None
        try:
            return p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(5)


    def abort(self) -> bool:
        """Abort the mount's FUSE connection, as `umount -f` does: every request waiting on it
        fails (ENOTCONN). Needed after a kill -9 of the client: when the kernel was
        invalidating a page another process holds locked for a request in flight, a thread of
        the dead client stays in D state, so its /dev/fuse never closes and those requests
        would wait forever. False when it is not mounted."""
        conn = _connection(self.path)
        if conn is None:
            return False
        ctl = Path("/sys/fs/fuse/connections")
        if not any(ctl.iterdir()):
            subprocess.run(["mount", "-t", "fusectl", "fusectl", str(ctl)], capture_output=True, timeout=10)
        try:
            (ctl / str(conn) / "abort").write_text("1")
        except OSError:
            return False
        return True


def _connection(path: Path) -> int | None:
    """The FUSE connection number (the mount's device minor) of the mount at `path`, read from
    /proc/self/mountinfo (a stat of a hung mount would hang)."""
    want = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4].encode().decode("unicode_escape") == want and " - fuse" in line:
                return int(fields[2].split(":")[1])
    return None


def _mounted(path: Path) -> bool:
    """`path` is a mount point in /proc/self/mounts (octal escapes as the kernel writes them)."""
    want = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            point = line.split()[1].encode().decode("unicode_escape")
            if point == want:
                return True
    return False


# LUSTREPY_TEST_WBC=1 runs every mount with the metadata write-back cache: the client's
# tests then check that POSIX results are the same with it on and off.
WBC = os.environ.get("LUSTREPY_TEST_WBC", "") not in ("", "0")


def client_cert(name: str) -> tuple[str, ...]:
    """Mount options presenting a client certificate named `name` of the suite's CA (made once)."""
    d = Path(os.environ[tls.ENV_CERTS])
    p = certs.Paths.in_dir(d, name)
    if not p.exist():
        certs.issue(d, "client", name)
    return (f"ca={p.ca}", f"cert={p.cert}", f"key={p.key}")


def mount(cluster: Cluster, path: Path, *opts: str, mds: str | None = None) -> Mount:
    """Mount the cluster's file system at `path` (through `mds`, an address list, when given).
    A mount given client_id=NAME stands for node NAME: it presents a certificate of that name
    (a client speaks only as its certificate's name); others present the suite's client.crt."""
    ids = [o.partition("=")[2] for o in opts if o.startswith("client_id=")]
    if ids and not any(o.startswith(("cert=", "plaintext")) for o in opts):
        opts = (*opts, *client_cert(ids[0].partition(":")[0]))
    m = Mount(f"{mds or cluster.mds.address}:/{cluster.fsname}", path, path.parent / f"{path.name}.log")
    if WBC and not any(o.startswith(("wbc", "nowbc")) for o in opts):
        opts = (*opts, "wbc", f"journal={path.parent / 'journal'}")
    return m.start(*opts)
