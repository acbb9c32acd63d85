"""Checksums at rest with real servers and mounts: a byte flipped in an object file on an OST's
disk reads as EIO through a mount (never the wrong bytes), and `lfsctl scrub status` reports it,
and one in a file nobody reads once the scrub has run; a kill -9 of the OSS during writes,
then a restart, gives no false mismatch to reads or to the scrub."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.mounts import Mount, mount
from tests.support.spawn import ready
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(240)

MiB = 1 << 20
BLOCK = 64 * 1024
LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]


@pytest.fixture
def env(tmp_path) -> Iterator[tuple[Cluster, list[Mount]]]:
    (tmp_path / "srv").mkdir()
    ready()                 # servers restarted while files are open start from the fork server
    c = Cluster(tmp_path / "srv", detached=True)
    mounts: list[Mount] = []
    try:
        yield c, mounts
    finally:
        for m in mounts:
            m.stop()
        c.stop()


def _mount(env, path, *opts: str) -> Mount:
    m = mount(env[0], path, *opts)
    env[1].append(m)
    return m


def lfsctl(c: Cluster, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv, "--mgs", c.mds.address], capture_output=True, text=True, timeout=60)


def scrub_status(c: Cluster) -> dict:
    r = lfsctl(c, "scrub", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["osts"][0]


def object_file(c: Cluster, path) -> tuple[int, str]:
    ost, oid = json.loads(os.getxattr(path, "lustrepy.lov"))["objects"][0]
    assert ost == 0
    return oid, str(c.root / "ost0" / "O" / f"{oid & 0xff:02x}" / str(oid))


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
        os.fsync(f.fileno())


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def test_a_flipped_byte_on_an_ost_is_eio_through_the_mount_and_scrub_reports_it(env, tmp_path):
    c = env[0].start(1)
    a = _mount(env, tmp_path / "a")
    data, quiet = os.urandom(3 * BLOCK), os.urandom(2 * BLOCK)
    for name, content in (("f", data), ("quiet", quiet)):
        with open(a.path / name, "wb") as f:
            f.write(content)
            os.fsync(f.fileno())
    oid, path = object_file(c, a.path / "f")
    quiet_oid, quiet_path = object_file(c, a.path / "quiet")
    assert open(path, "rb").read() == data
    flip(path, BLOCK + 100)
    flip(quiet_path, 5)
    drop_caches()
    b = _mount(env, tmp_path / "b")                 # a client with nothing cached
    with open(b.path / "f", "rb") as f:
        with pytest.raises(OSError) as e:
            f.read()
        assert e.value.errno == errno.EIO
    assert f"object {oid} block 1" in (c.root / "ost0.log").read_text()
    st = scrub_status(c)
    assert {"object_id": oid, "block": 1, "offset": BLOCK} in st["bad"] and st["read_failures"] >= 1
    # nobody reads "quiet": the scrub finds it
    r = lfsctl(c, "set-param", "ost.0.scrub_rate=1000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: scrub_status(c)["passes"] >= 1, timeout=60, what="a scrub pass")
    st = scrub_status(c)
    assert st["mismatches"] == 2 and st["bad_count"] == 2 and st["state"] in ("idle", "running")
    assert {"object_id": quiet_oid, "block": 0, "offset": 0} in st["bad"] and st["found_by_scrub"] == 1
    assert st["last_pass_end"] and st["rate_mib"] == 1000
    table = lfsctl(c, "scrub", "status")
    assert table.returncode == 0 and f"object {quiet_oid} bytes 0..{BLOCK - 1}" in table.stdout, table.stdout
    # a write covering the bad block whole repairs it
    fresh = os.urandom(BLOCK)
    with open(b.path / "f", "r+b") as f:
        f.seek(BLOCK)
        f.write(fresh)
        os.fsync(f.fileno())
    drop_caches()
    assert (b.path / "f").read_bytes() == data[:BLOCK] + fresh + data[2 * BLOCK:]
    assert scrub_status(c)["bad_count"] == 1


def test_kill_9_of_the_oss_during_writes_gives_no_false_mismatch(env, tmp_path):
    c = env[0].start(1)
    a = _mount(env, tmp_path / "a", "nowbc")
    stop = threading.Event()
    errors: list[BaseException] = []
    wrote: dict[str, bytes] = {}

    def writer(k: int) -> None:
        try:
            i = 0
            while not stop.is_set():
                name = f"w{k}-{i % 4}"
                p = a.path / name
                body = bytearray(wrote.get(name, b""))
                off = (i * 37_001) % (3 * MiB)
                chunk = os.urandom(100_000 + (i % 3) * 70_000)
                with open(p, "r+b" if p.exists() else "wb") as f:
                    f.seek(off)
                    f.write(chunk)
                if len(body) < off:
                    body += bytes(off - len(body))
                body[off:off + len(chunk)] = chunk
                wrote[name] = bytes(body)
                i += 1
        except BaseException as e:      # noqa: B036 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(1.0)
            c.osts[0].stop(signal.SIGKILL)
            c.osts[0] = c.oss_proc(0).start()
    finally:
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(120)
    assert not errors, errors
    drop_caches()
    fresh = _mount(env, tmp_path / "fresh", "nowbc")
    for name, body in wrote.items():
        assert (fresh.path / name).read_bytes() == body, name
    r = lfsctl(c, "set-param", "ost.0.scrub_rate=1000")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: scrub_status(c)["passes"] >= 1, timeout=60, what="a scrub pass")
    st = scrub_status(c)
    assert st["mismatches"] == 0 and st["bad"] == [] and st["objects"] >= len(wrote)
    log = (c.root / "ost0.log").read_text()
    assert "does not match its checksum" not in log
