"""lfsctl lfsck against a real cluster (lustrepy-mds and two lustrepy-oss processes) with real mounts:
a clean file system reports nothing; orphans planted on an OST, an object file deleted under a written
file and an object grown behind the MDT's back are each reported (text and --json, exit 1), --repair
fixes each (or links orphans under /.lustre/lost+found), and the next run is clean; bad input is one
line, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lustrepy.common.errors import LpError
from lustrepy.rpc.channel import call, make_channel, stream
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc as ogrpc
from tests.oss.oss_helpers import OssClient
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(240)

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
MiB = 1 << 20
OLD = time.time() - 3600        # an mtime well past the grace period the tests give


def lfsctl(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout)


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lfsctl: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("lfsck")
    c = Cluster(base / "srv")
    c.root.mkdir()
    try:
        c.start(2)
        wait_for(lambda: lfsctl("osts", "--mgs", c.mds.address, "--json").stdout.count('"index"') == 2,
                 what="two OSTs")
        yield c
    finally:
        c.stop()


def lfsck(c: Cluster, *extra: str) -> subprocess.CompletedProcess[str]:
    return lfsctl("lfsck", "--mgs", c.mds.address, *extra)


def lfsck_json(c: Cluster, *extra: str) -> tuple[int, dict]:
    r = lfsck(c, "--json", *extra)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def objects_of(path: Path) -> list[tuple[int, int]]:
    """(ost index, object id) of each stripe of a file on a mount, from lfsctl getstripe."""
    r = lfsctl("getstripe", "--json", str(path))
    assert r.returncode == 0, r.stderr
    return [tuple(o) for o in json.loads(r.stdout)["objects"]]


def grow_object(c: Cluster, ost: int, oid: int, offset: int, data: bytes) -> None:
    """Write past a file's recorded size straight to its object, through the OSS (as a client that
    died before telling the MDS would have): bytes written behind the OSS's back would fail their
    checksums at rest."""
    client = OssClient(c.osts[ost].address, client_id="lfsck-test-writer")
    try:
        assert client.connect().hdr.errno == 0
        assert client.write(oid, offset, data).hdr.errno == 0
        client.disconnect()
    finally:
        client.close()


def object_file(c: Cluster, ost: int, oid: int) -> Path:
    return c.root / f"ost{ost}" / "O" / f"{oid & 0xff:02x}" / str(oid)


def write(m: Mount, name: str, data: bytes, stripes: int = 1) -> Path:
    p = m.path / name
    r = lfsctl("setstripe", "-c", str(stripes), "-S", "1M", str(p))
    assert r.returncode == 0, r.stderr
    p.write_bytes(data)
    return p


def test_clean_file_system_reports_nothing(cluster: Cluster, tmp_path: Path) -> None:
    m = mount(cluster, tmp_path / "mnt")
    try:
        write(m, "one", os.urandom(MiB + 5))
        write(m, "two", os.urandom(3 * MiB), stripes=2)
        (m.path / "dir").mkdir()
        (m.path / "dir" / "empty").write_bytes(b"")
    finally:
        m.stop()
    r = lfsck(cluster)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    code, d = lfsck_json(cluster)
    assert code == 0 and d["clean"] and d["findings"] == [] and d["checked"]["files"] >= 3
    assert set(d["checked"]["osts"]) == {"OST0000", "OST0001"}


def test_progress_and_summary_on_a_terminal(cluster: Cluster) -> None:
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen([*LFSCTL, "lfsck", "--mgs", cluster.mds.address], stdout=subprocess.PIPE,
                             stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        follower = -1
        err = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:         # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                err += chunk
            elif p.poll() is not None:
                break
        assert p.wait(60) == 0
        assert p.stdout is not None and p.stdout.read() == b""
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    text = err.decode(errors="replace")
    assert "\r\x1b[Klfsck: MDT0000 " in text and " files" in text       # the progress line, redrawn
    assert text.rstrip().endswith("objects on 2 of 2 OSTs: no problems")


def plant_orphan(cluster: Cluster, m: Mount, name: str, data: bytes) -> tuple[int, int]:
    """An object no file uses: a file's object, left behind (written back on its OST, old) after the
    file was unlinked and its objects destroyed."""
    p = write(m, name, data)
    [(ost, oid)] = objects_of(p)
    f = object_file(cluster, ost, oid)
    sums = Path(f"{f}.crc")                         # its checksums at rest go and come back with it
    wait_for(lambda: sums.exists() and sums.stat().st_size > 0, what=f"object {oid}'s checksums")
    kept = sums.read_bytes()
    p.unlink()
    wait_for(lambda: not f.exists(), what=f"object {oid} destroyed")
    f.write_bytes(data)
    sums.write_bytes(kept)
    os.utime(f, (OLD, OLD))
    return ost, oid


def test_damage_is_reported_and_repaired(cluster: Cluster, tmp_path: Path) -> None:
    m = mount(cluster, tmp_path / "alpha")
    try:
        orphan = plant_orphan(cluster, m, "gone", b"orphan data " * 100)
        young = plant_orphan(cluster, m, "gone-young", b"young")
        lost = os.urandom(3 * MiB)
        lost_path = write(m, "lost", lost, stripes=2)
        lost_objs = objects_of(lost_path)
        grown = os.urandom(100_000)
        grown_path = write(m, "grown", grown)
        [grown_obj] = objects_of(grown_path)
    finally:
        m.stop()
    os.utime(object_file(cluster, *young))          # modified just now: within the grace period
    object_file(cluster, *lost_objs[1]).unlink()    # stripe 1 holds bytes 1 MiB .. 2 MiB
    grow_object(cluster, *grown_obj, len(grown), b"tail" * 1000)

    r = lfsck(cluster)
    assert r.returncode == 1 and r.stderr == "" and "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4, r.stdout
    assert f"orphan testfs-OST{orphan[0]:04x} object {orphan[1]}: 1200 bytes, " in r.stdout
    assert f"orphan testfs-OST{young[0]:04x} object {young[1]}: 5 bytes, " in r.stdout
    assert f"missing testfs-OST{lost_objs[1][0]:04x} object {lost_objs[1][1]}: stripe 1 of /lost [0x" in r.stdout
    assert "size /grown [0x" in r.stdout and f"the MDT records {len(grown)} bytes, its objects say 104000" in r.stdout

    code, d = lfsck_json(cluster)
    assert code == 1 and not d["clean"]
    kinds = sorted(f["kind"] for f in d["findings"])
    assert kinds == ["missing", "orphan", "orphan", "size"]
    missing = next(f for f in d["findings"] if f["kind"] == "missing")
    assert missing["path"] == "/lost" and missing["stripe"] == 1 and missing["repaired"] is None

    r = lfsck(cluster, "--repair", "--grace", "600")
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert f"object {orphan[1]}: 1200 bytes" in out and "repaired: destroyed" in out
    assert "not repaired: kept: modified within the grace period (600 s)" in out
    assert "repaired: recreated empty: /lost lost the data of stripe 1" in out
    assert "repaired: size set to 104000" in out
    wait_for(lambda: not object_file(cluster, *orphan).exists(), what="the orphan destroyed")
    assert object_file(cluster, *young).exists()

    m = mount(cluster, tmp_path / "beta")
    try:
        assert (m.path / "lost").read_bytes() == lost[:MiB] + bytes(MiB) + lost[2 * MiB:]
        assert (m.path / "grown").read_bytes() == grown + b"tail" * 1000
        assert ".lustre" not in os.listdir(m.path)      # made only when an orphan is kept
    finally:
        m.stop()

    object_file(cluster, *young).unlink()           # the young orphan would still be reported
    r = lfsck(cluster)
    assert (r.returncode, r.stdout) == (0, ""), r.stdout


def test_keep_orphans_links_them_under_lost_found(cluster: Cluster, tmp_path: Path) -> None:
    m = mount(cluster, tmp_path / "gamma")
    try:
        data = os.urandom(70_000)
        ost, oid = plant_orphan(cluster, m, "kept", data)
    finally:
        m.stop()
    code, d = lfsck_json(cluster, "--repair", "--keep-orphans", "--grace", "60")
    assert code == 1
    [f] = d["findings"]
    name = f"OST{ost:04x}-{oid}"
    assert f["kind"] == "orphan" and f["repaired"] and f["repair"] == f"linked as /.lustre/lost+found/{name}"
    m = mount(cluster, tmp_path / "delta")
    try:
        assert (m.path / ".lustre" / "lost+found" / name).read_bytes() == data
        assert oct(os.stat(m.path / ".lustre" / "lost+found").st_mode & 0o777) == oct(0o700)
    finally:
        m.stop()
    r = lfsck(cluster)
    assert (r.returncode, r.stdout) == (0, "")


@pytest.mark.parametrize(("argv", "code", "why"), [
    (["--bogus"], 2, "unrecognized arguments: --bogus"),
    (["--grace", "x"], 2, "invalid float value"),
    (["--grace", "-1"], 2, "--grace must be a number of seconds >= 0"),
    (["--keep-orphans"], 2, "--keep-orphans goes with --repair"),
])
def test_bad_usage(cluster: Cluster, argv: list[str], code: int, why: str) -> None:
    r = lfsck(cluster, *argv)
    assert r.returncode == code and why in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    if "usage:" not in r.stderr:
        one_line(r.stderr)


def test_unreachable_mds_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    r = lfsctl("lfsck", "--mgs", addr)
    assert r.returncode == 1 and r.stdout == ""
    assert one_line(r.stderr) == f"lfsctl: cannot reach MDS at {addr}: connection refused"


def _errno(rep) -> int:
    try:
        check_rep(rep.hdr)
    except LpError as e:
        return e.errno
    return 0


def test_bad_rpc_fields_get_a_clear_errno(cluster: Cluster) -> None:
    hdr = cpb.ReqHdr(xid=1)
    ch = make_channel(cluster.mds.address)
    try:
        mds = mgrpc.MdsStub(ch)
        rep = call(mds.LfsckRepair, mpb.LfsckRepairRequest(hdr=hdr, orphans=[
            mpb.LfsckOrphan(object=cpb.StripeObject(ost_index=0, object_id=0))]), timeout=10)
        assert _errno(rep) == errno.EINVAL and "names no object" in rep.hdr.message
        rep = call(mds.LfsckVerify, mpb.LfsckVerifyRequest(hdr=hdr, fids=[cpb.Fid(seq=1, oid=0)]), timeout=10)
        assert _errno(rep) == errno.EINVAL and "bad FID" in rep.hdr.message
        rep = call(mds.LfsckRepair, mpb.LfsckRepairRequest(hdr=hdr, sizes=[
            mpb.LfsckSizeFix(fid=cpb.Fid(seq=0x200000401, oid=1), size=1 << 63)]), timeout=10)
        assert _errno(rep) == errno.EINVAL and "maximum file size" in rep.hdr.message
    finally:
        ch.close()
    ch = make_channel(cluster.osts[0].address)
    try:
        oss = ogrpc.OssStub(ch)
        rep = call(oss.ListObjects, opb.ObjListRequest(hdr=hdr, index=1), timeout=10)
        assert _errno(rep) == errno.ENODEV and "not OST index 1" in rep.hdr.message
        rep = call(oss.ListObjects, opb.ObjListRequest(hdr=hdr, index=0, max=1 << 20), timeout=10)
        assert _errno(rep) == errno.EINVAL
        rep = call(oss.Recreate, opb.RecreateRequest(hdr=hdr, index=0, object_ids=[1 << 40]), timeout=10)
        assert _errno(rep) == errno.EINVAL and "LAST_ID" in rep.hdr.message
        rep = call(oss.Recreate, opb.RecreateRequest(hdr=hdr, index=0, object_ids=[1]), timeout=10)
        assert _errno(rep) == 0 and list(rep.created) == []        # exists (precreated): left alone
    finally:
        ch.close()


def test_an_ost_that_does_not_answer_is_reported_unchecked(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start(2)
        wait_for(lambda: lfsctl("osts", "--mgs", c.mds.address, "--json").stdout.count('"index"') == 2,
                 what="two OSTs")
        addr = c.osts[1].address
        c.osts[1].stop()
        r = lfsctl("lfsck", "--mgs", c.mds.address)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stdout == (f"unchecked testfs-OST0001 at {addr}: cannot reach it: connection refused; "
                            "its objects were not checked\n")
    finally:
        c.stop()


def test_repairs_check_again_and_leave_alone_what_is_no_longer_damage(cluster: Cluster, tmp_path: Path) -> None:
    m = mount(cluster, tmp_path / "eps")
    try:
        [used] = objects_of(write(m, "used", b"u" * 10))
    finally:
        m.stop()
    hdr = cpb.ReqHdr(xid=1)
    ch = make_channel(cluster.mds.address)
    try:
        mds = mgrpc.MdsStub(ch)
        pages = list(stream(mds.LfsckScan, mpb.LfsckScanRequest(hdr=hdr), timeout=30))
        assert pages[-1].last and all(_errno(p) == 0 for p in pages)
        f = next(f for p in pages for f in p.files if f.size_valid and
                 (f.objects[0].ost_index, f.objects[0].object_id) == used)
        rep = call(mds.LfsckRepair, mpb.LfsckRepairRequest(hdr=hdr, orphans=[
            mpb.LfsckOrphan(object=cpb.StripeObject(ost_index=used[0], object_id=used[1])),
            mpb.LfsckOrphan(object=cpb.StripeObject(ost_index=0, object_id=1 << 40)),
            mpb.LfsckOrphan(object=cpb.StripeObject(ost_index=9, object_id=1))],
            sizes=[mpb.LfsckSizeFix(fid=f.fid, seen=f.size + 1, size=0)]), timeout=30)
        assert _errno(rep) == 0
        assert [(o.done, o.note) for o in rep.orphans] == [
            (False, "a file uses it now"), (False, "not handed out yet (precreated, unused)"),
            (False, "OST index 9 is not registered")]
        assert [(o.done, o.note) for o in rep.sizes] == [(False, f"its size changed since the check (now {f.size})")]
    finally:
        ch.close()
    r = lfsck(cluster)
    assert (r.returncode, r.stdout) == (0, "")
