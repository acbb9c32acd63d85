"""The metadata write-back cache on real mounts: a lone client works without an
MDS RPC per file, another client sees everything at its first look, two clients
in one directory switch it to server side and back, and update records survive
a killed client and an MDS restart, applying exactly once."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import threading
import time

import pytest

from lustrepy.client.mdc import Mdc
from tests.support.mounts import Mount
from tests.support.servers import BIN, Cluster, wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    try:
        c.start(2, mds_args=("--contention-threshold", "8", "--contention-window", "4",
                             "--contention-hold", "3", "--callback-timeout", "10"))
        yield c
    finally:
        c.stop()


class Mounts:
    def __init__(self, cluster: Cluster, root) -> None:
        self.cluster, self.root, self.all = cluster, root, []

    def __call__(self, name: str, *opts: str) -> Mount:
        path = self.root / name
        m = Mount(f"{self.cluster.mds.address}:/{self.cluster.fsname}", path, self.root / f"{name}.log")
        m.start(*opts)
        self.all.append(m)
        return m


@pytest.fixture
def mounts(cluster, tmp_path):
    ms = Mounts(cluster, tmp_path)
    try:
        yield ms
    finally:
        for m in ms.all:
            m.stop()


def _wbc_opts(tmp_path, *more: str) -> tuple[str, ...]:
    return ("wbc", f"journal={tmp_path / 'journal'}", *more)


def _counters(cluster) -> dict[str, int]:
    m = Mdc(cluster.mds.address, cluster.fsname)
    try:
        return dict(m.info().counters)
    finally:
        m.close()


def _settled_counters(cluster) -> dict[str, int]:
    """The MDS's counters once two reads in a row show no request but our own reads' in between."""
    own = ("connect", "disconnect", "info")
    prev = _counters(cluster)
    for _ in range(50):
        time.sleep(0.1)
        cur = _counters(cluster)
        if all(cur.get(k, 0) == prev.get(k, 0) for k in set(cur) | set(prev) if k not in own):
            return cur
        prev = cur
    raise AssertionError("the MDS's request counters did not settle in 5 s")


def _rpcs(c: dict[str, int]) -> int:
    kinds = ("intent", "reint_batch", "create", "mkdir", "unlink", "rmdir", "setattr", "rename", "close",
             "readdir", "symlink", "link", "setxattr")
    return sum(c.get(k, 0) for k in kinds)


def _state(path) -> dict:
    return json.loads(os.getxattr(path, "lustrepy.wbc"))


def test_lone_client_creates_with_few_rpcs_and_another_sees_all_at_first_ls(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    d = a / "tree"
    d.mkdir()
    (d / "seed").touch()
    st = _state(d)
    assert st["mode"] == "wbc-held" and st["held_here"]
    before = _rpcs(_counters(cluster))
    n = 20000
    for i in range(n):
        fd = os.open(d / f"f{i:05d}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o640)
        os.close(fd)
    os.chmod(d / "f00007", 0o600)
    st = _state(d)
    assert st["records_pending"] + st["records_flushed"] >= n + 2     # batches go out by count too
    after = _counters(cluster)
    rpcs = _rpcs(after) - before
    assert rpcs < n / 100, {k: v for k, v in after.items() if not k.endswith("_us")}
    # the other client's first listing sees everything, with the right attributes
    names = sorted(os.listdir(b / "tree"))
    assert names == sorted(["seed"] + [f"f{i:05d}" for i in range(n)])
    s7, s8 = os.stat(b / "tree" / "f00007"), os.stat(b / "tree" / "f00008")
    assert stat.S_IMODE(s7.st_mode) == 0o600 and stat.S_IMODE(s8.st_mode) == 0o640
    assert s8.st_size == 0 and s8.st_ino == os.stat(a / "tree" / "f00008").st_ino
    st = _state(a / "tree")
    assert st["mode"] == "server-side" and not st["held_here"] and st["revocations"] >= 1
    assert st["records_pending"] == 0


def test_local_namespace_work_under_a_grant(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    d = a / "w"
    d.mkdir()
    (d / "sub").mkdir()
    (d / "sub" / "deeper").mkdir()
    (d / "sub" / "deeper" / "x").write_bytes(b"data under a grant")
    os.symlink("sub/deeper/x", d / "ln")
    os.mkfifo(d / "fifo")
    (d / "gone").touch()
    os.unlink(d / "gone")
    (d / "emptydir").mkdir()
    os.rmdir(d / "emptydir")
    os.utime(d / "fifo", ns=(1_000_000_000, 2_000_000_000))
    assert sorted(os.listdir(d)) == ["fifo", "ln", "sub"]
    assert (b / "w" / "ln").read_bytes() == b"data under a grant"
    assert os.readlink(b / "w" / "ln") == "sub/deeper/x"
    assert stat.S_ISFIFO(os.stat(b / "w" / "fifo").st_mode)
    assert os.stat(b / "w" / "fifo").st_mtime_ns == 2_000_000_000
    assert not (b / "w" / "gone").exists() and not (b / "w" / "emptydir").exists()
    assert os.stat(b / "w").st_nlink == os.stat(a / "w").st_nlink == 3


def test_rename_link_and_xattrs_under_a_grant_need_no_rpc(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    d = a / "r"
    d.mkdir()
    (d / "seed").touch()
    assert _state(d)["held_here"]
    before = _counters(cluster)
    (d / "one").write_bytes(b"1")
    (d / "two").write_bytes(b"22")
    (d / "dir1").mkdir()
    (d / "dir1" / "inner").touch()
    (d / "dir2").mkdir()
    os.rename(d / "one", d / "dir1" / "moved")              # across directories
    os.rename(d / "two", d / "dir1" / "inner")              # over an existing file
    os.link(d / "dir1" / "moved", d / "hard")
    os.rename(d / "dir1", d / "dir2" / "dir1")              # a directory moves
    with pytest.raises(OSError) as e:
        os.rename(d / "dir2", d / "dir2" / "dir1" / "loop")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        os.link(d / "dir2", d / "dirlink")
    assert e.value.errno == errno.EPERM
    os.setxattr(d / "hard", "user.color", b"blue")
    os.setxattr(d / "dir2", "user.kind", b"box")
    os.setxattr(d / "hard", "user.tmp", b"x")
    os.removexattr(d / "hard", "user.tmp")
    with pytest.raises(OSError) as e:
        os.removexattr(d / "hard", "user.tmp")
    assert e.value.errno == errno.ENODATA
    assert os.getxattr(d / "dir2" / "dir1" / "moved", "user.color") == b"blue"
    assert os.stat(d / "hard").st_nlink == 2 and os.stat(d / "dir2").st_nlink == 3
    after = _counters(cluster)
    kinds = ("rename", "link", "setxattr", "removexattr", "intent", "reint_batch", "create", "unlink")
    assert {k: after.get(k, 0) - before.get(k, 0) for k in kinds} == dict.fromkeys(kinds, 0)
    # the other client sees the end state
    r = b / "r"
    assert sorted(os.listdir(r)) == ["dir2", "hard", "seed"]
    assert sorted(os.listdir(r / "dir2" / "dir1")) == ["inner", "moved"]
    assert (r / "dir2" / "dir1" / "inner").read_bytes() == b"22"
    assert (r / "hard").read_bytes() == b"1"
    assert os.stat(r / "hard").st_ino == os.stat(r / "dir2" / "dir1" / "moved").st_ino
    assert os.stat(r / "hard").st_nlink == 2
    assert os.stat(r / "dir2").st_nlink == 3 and os.stat(r).st_nlink == 3
    assert os.getxattr(r / "hard", "user.color") == b"blue"
    assert os.getxattr(r / "dir2", "user.kind") == b"box"
    assert "user.tmp" not in os.listxattr(r / "hard")


def test_after_a_flush_and_a_cache_drop_the_directory_stays_local(cluster, mounts, tmp_path):
    """Records flushed and committed, then the kernel's dentries and inodes dropped: the files
    made under the grant are still known here, so lookups, unlinks, mkdirs and renames in the
    directory need no MDS RPC, as before the drop; another client then sees it all."""
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    d = a / "kept"
    d.mkdir()
    (d / "sub").mkdir()
    for i in range(200):
        (d / f"f{i}").write_bytes(b"x" * i)
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)                        # every record at the MDS and committed
    finally:
        os.close(fd)
    assert _state(d)["held_here"]
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")                      # the kernel forgets dentries and inodes
    os.stat(d)                              # its name is in the root, which no grant covers: asked
    before = _counters(cluster)
    for i in range(0, 200, 2):
        os.unlink(d / f"f{i}")
    for i in range(50):
        (d / f"new{i}").mkdir()
    os.rename(d / "f1", d / "sub" / "moved")
    sizes = {i: os.stat(d / f"f{i}").st_size for i in range(3, 200, 2)}
    after = _counters(cluster)
    kinds = ("intent", "unlink", "mkdir", "rename", "getattr", "reint_batch")
    assert {k: after.get(k, 0) - before.get(k, 0) for k in kinds} == dict.fromkeys(kinds, 0)
    assert sizes == {i: i for i in range(3, 200, 2)}
    assert (d / "sub" / "moved").read_bytes() == b"x"
    want = sorted([f"f{i}" for i in range(3, 200, 2)] + [f"new{i}" for i in range(50)] + ["sub"])
    assert sorted(os.listdir(b / "kept")) == want          # the other client calls the grant back
    assert os.listdir(b / "kept" / "sub") == ["moved"]
    assert (b / "kept" / "f199").read_bytes() == b"x" * 199
    assert sorted(os.listdir(d)) == want


def test_a_directory_too_big_to_list_is_listed_once_and_changed_server_side(cluster, mounts, tmp_path):
    """A grant on a directory that existed before it needs the directory's names: one larger than
    wbc_dir_max is listed once, its grant given back, and the next creates there go to the MDS
    without a grant offered (and listed) again each time."""
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30", "wbc_dir_max=100")).path
    b = mounts("b").path
    (b / "big").mkdir()
    for i in range(150):
        (b / "big" / f"old{i}").touch()
    before = _settled_counters(cluster)     # b's gathered closes are in
    for i in range(30):
        (a / "big" / f"new{i}").touch()
    after = _counters(cluster)
    assert after.get("readdir", 0) - before.get("readdir", 0) == 1      # one listing, not one per create
    st = _state(a / "big")
    assert not st["held_here"], json.dumps(st)
    assert len(os.listdir(b / "big")) == 180


def test_files_made_here_and_open_outlive_their_name(cluster, mounts, tmp_path):
    """Files made under a grant are opened without telling the MDS (reads of written-back files
    too); once a name goes on the server side they still read and write until closed."""
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    d = a / "o"
    d.mkdir()
    (d / "seed").touch()
    assert _state(d)["held_here"]
    (d / "full").write_bytes(b"x" * 5000)
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)                                       # records and the bytes reach the servers
    finally:
        os.close(dfd)
    before = _counters(cluster).get("intent", 0)
    full = os.open(d / "full", os.O_RDONLY)                # read-only: no MDS open
    assert os.pread(full, 3, 0) == b"xxx"                   # read from its objects, still unknown to the MDS
    fresh = os.open(d / "fresh", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fresh, b"kept")
    assert _counters(cluster).get("intent", 0) == before
    try:
        os.unlink(b / "o" / "full")                         # another client: the grant is called back
        os.unlink(b / "o" / "fresh")
        assert not (b / "o" / "full").exists()
        assert os.pread(full, 10, 4995) == b"xxxxx"
        os.write(fresh, b" and more")
        os.fsync(fresh)
        assert os.pread(fresh, 100, 0) == b"kept and more"
        assert os.fstat(fresh).st_nlink == 0
    finally:
        os.close(full)
        os.close(fresh)
    # a server-side unlink by the opener itself (after the grant went)
    (d / "again").write_bytes(b"y" * 100)
    fd = os.open(d / "again", os.O_RDONLY)
    try:
        os.unlink(d / "again")
        assert os.read(fd, 200) == b"y" * 100
    finally:
        os.close(fd)
    assert sorted(os.listdir(b / "o")) == ["seed"]


def test_a_size_set_on_the_server_is_not_lost_to_a_small_write(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    d = a / "sz"
    d.mkdir()
    (d / "seed").touch()
    assert _state(d)["held_here"]
    with open(d / "big", "wb") as f:
        f.truncate(10 << 20)                                # past what the client keeps: set at the MDS
        f.write(b"abc")
    assert os.stat(d / "big").st_size == 10 << 20
    assert os.stat(b / "sz" / "big").st_size == 10 << 20
    with open(b / "sz" / "big", "rb") as f:
        assert f.read(4) == b"abc\0"


def test_two_clients_in_one_directory_switch_to_server_side_and_back(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path / "ja")).path
    b = mounts("b", *_wbc_opts(tmp_path / "jb")).path
    (a / "shared").mkdir()
    errors: list[BaseException] = []
    made: dict[str, list[str]] = {"a": [], "b": []}
    stop = threading.Event()

    def creator(root, tag: str) -> None:
        try:
            i = 0
            while not stop.is_set() or i < 20:          # both keep at it together for a while
                name = f"{tag}{i:05d}"
                (root / "shared" / name).touch()
                made[tag].append(name)
                i += 1
        except BaseException as e:      # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=creator, args=(a, "a")), threading.Thread(target=creator, args=(b, "b"))]
    for t in ts:
        t.start()
    try:
        wait_for(lambda: errors or _state(a / "shared")["mode"] == "contended", timeout=30,
                 what="the directory to become contended while both create")
    finally:
        stop.set()
        for t in ts:
            t.join(120)
    assert not errors, errors
    want = sorted(made["a"] + made["b"])
    assert len(want) == len(set(want))
    assert sorted(os.listdir(a / "shared")) == want
    assert sorted(os.listdir(b / "shared")) == want
    # b leaves the directory alone; after the hold (3 s) a lone client gets WBC again
    wait_for(lambda: _state(a / "shared")["mode"] != "contended", timeout=20, what="contention to end")
    for i in range(4):          # the first ones may still find b's cached locks there, and call them back
        (a / "shared" / f"later{i}").touch()
        if _state(a / "shared")["held_here"]:
            break
    assert _state(a / "shared")["held_here"]


def test_killed_client_replays_its_journal_once_at_the_next_mount(cluster, mounts, tmp_path):
    opts = _wbc_opts(tmp_path, "wbc_age=600", "client_id=node-k")
    m = mounts("k", *opts)
    d = m.path / "kept"
    d.mkdir()
    (d / "seed").touch()
    for i in range(200):
        (d / f"f{i:03d}").touch()
    assert _state(d)["records_pending"] == 201        # seed and f000..f199: the mkdir went to the MDS
    before = _counters(cluster).get("batch_records", 0)
    os.kill(m.popen.pid, signal.SIGKILL)
    m.popen.wait(10)
    subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True)
    m.popen = None
    assert _counters(cluster).get("batch_records", 0) == before        # nothing was flushed
    m2 = mounts("k", *opts[:-1])        # same mount point: the identity comes back with the journal
    names = sorted(os.listdir(m2.path / "kept"))
    assert names == sorted(["seed"] + [f"f{i:03d}" for i in range(200)])
    assert _counters(cluster).get("batch_records", 0) == before + 201
    m2.stop()
    assert not list((tmp_path / "journal").glob("*.jnl"))          # clean unmount: nothing left


def test_mds_restart_during_flushes_applies_each_record_once(cluster, mounts, tmp_path):
    m = mounts("r", *_wbc_opts(tmp_path, "wbc_age=0.05"))
    d = m.path / "restart"
    d.mkdir()
    (d / "seed").touch()
    stop = threading.Event()
    made: list[str] = []

    errors: list[BaseException] = []

    def creator() -> None:
        i = 0
        try:
            while not stop.is_set() and i < 3000:
                name = f"f{i:05d}"
                (d / name).touch()
                made.append(name)
                i += 1
        except BaseException as e:      # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=creator)
    t.start()
    wait_for(lambda: len(made) >= 200 or not t.is_alive(), what="records made")
    cluster.mds.stop(signal.SIGKILL)        # records in flight, some not committed
    cluster.mds = cluster.mds_proc().start()
    before = len(made)
    wait_for(lambda: len(made) >= before + 100 or not t.is_alive(), timeout=60,
             what="creates going on after the restart")
    stop.set()
    t.join(60)
    assert not errors, errors
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)                        # everything on the MDS, committed
    finally:
        os.close(fd)
    other = Mdc(cluster.mds.address, cluster.fsname)
    other.connect()
    try:
        dirs = [e for e in other.listdir(other.root) if e.name == b"restart"]
        from lustrepy.rpc.convert import fid_from_pb
        names = sorted(e.name.decode() for e in other.listdir(fid_from_pb(dirs[0].fid)))
    finally:
        other.close()
    assert names == sorted(["seed"] + made)


def test_lfsctl_wbc_shows_the_state(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    (a / "s").mkdir()
    (a / "s" / "one").touch()
    (a / "s" / "two").touch()
    r = subprocess.run([str(BIN / "lfsctl"), "wbc", str(a / "s")], capture_output=True, text=True, check=True)
    assert "wbc-held (by this client)" in r.stdout and "records pending:" in r.stdout
    j = json.loads(subprocess.run([str(BIN / "lfsctl"), "wbc", "--json", str(a / "s")], capture_output=True,
                                  text=True, check=True).stdout)
    assert j["mode"] == "wbc-held" and j["records_pending"] >= 1 and j["path"] == str(a / "s")
    r = subprocess.run([str(BIN / "lfsctl"), "wbc", str(a / "s" / "one")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "directories" in r.stderr


def test_small_files_written_under_a_grant_reach_the_osts(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=30")).path
    b = mounts("b").path
    (a / "t").mkdir()
    blobs = {f"d{i % 3}/f{i:03d}": os.urandom(i * 97 % 20000) for i in range(60)}
    for i in range(3):
        (a / "t" / f"d{i}").mkdir()
    for name, data in blobs.items():
        (a / "t" / name).write_bytes(data)
    os.truncate(a / "t" / "d0/f000", 5)
    blobs["d0/f000"] = blobs["d0/f000"][:5].ljust(5, b"\0")
    with open(a / "t" / "d1/f001", "ab") as f:
        f.write(b"appended")
    blobs["d1/f001"] += b"appended"
    assert _state(a / "t")["held_here"]
    for name, data in blobs.items():                       # this client: from what it keeps
        assert (a / "t" / name).read_bytes() == data, name
    for name, data in blobs.items():                       # another: from the OSTs, after the revocation
        got = b / "t" / name
        assert got.read_bytes() == data and os.stat(got).st_size == len(data), name
    assert os.stat(b / "t" / "d2/f002").st_blocks >= 1
    lov = json.loads(os.getxattr(b / "t" / "d2/f002", "lustrepy.lov"))
    assert lov["objects"]


def test_the_journal_stays_within_its_bound(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path, "wbc_age=600", "wbc_max=100")).path
    (a / "bounded").mkdir()
    peak = 0
    for i in range(1000):
        (a / "bounded" / f"f{i:04d}").touch()
        if i % 50 == 0:
            peak = max(peak, _state(a / "bounded")["records_pending"])
    assert peak <= 101, peak
    assert len(os.listdir(a / "bounded")) == 1000


def test_lfsctl_stats_shows_rates_and_wbc_counters(cluster, mounts, tmp_path):
    a = mounts("a", *_wbc_opts(tmp_path)).path
    (a / "st").mkdir()
    for i in range(50):
        (a / "st" / f"f{i}").touch()
    fd = os.open(a / "st", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    r = subprocess.run([str(BIN / "lfsctl"), "stats", "--mgs", cluster.mds.address, "--interval", "0.3", "--json"],
                       capture_output=True, text=True, check=True)
    st = json.loads(r.stdout)
    assert st["wbc"]["wbc_grants"] >= 1 and st["wbc"]["batch_records"] >= 50
    assert st["ops"]["reint_batch"]["count"] >= 1 and st["interval_s"] == 0.3
    text = subprocess.run([str(BIN / "lfsctl"), "stats", "--mgs", cluster.mds.address], capture_output=True,
                          text=True, check=True).stdout
    assert "write-back cache" in text and "reint_batch" in text


def test_records_of_an_evicted_holder_apply_where_they_can_and_the_rest_is_reported(tmp_path):
    (tmp_path / "srv").mkdir()
    c = Cluster(tmp_path / "srv")
    ms = Mounts(c, tmp_path)
    try:
        c.start(1, mds_args=("--callback-timeout", "2"))
        ma = ms("a", *_wbc_opts(tmp_path, "wbc_age=600"))
        b = ms("b").path
        a = ma.path
        (a / "ev").mkdir()
        (a / "ev" / "x").touch()
        (a / "ev" / "y").touch()
        assert _state(a / "ev")["records_pending"] == 2
        os.kill(ma.popen.pid, signal.SIGSTOP)           # the holder stops answering
        try:
            t0 = time.monotonic()
            (b / "ev" / "x").write_bytes(b"from b")     # a is evicted after the callback timeout
            assert time.monotonic() - t0 < 15
        finally:
            os.kill(ma.popen.pid, signal.SIGCONT)
        fd = os.open(a / "ev", os.O_RDONLY)
        try:
            with pytest.raises(OSError) as ei:           # x could not apply: reported here
                wait_for(lambda: _fsync_fails(fd), timeout=30, what="the refused record to be reported")
                os.fsync(fd)
        finally:
            os.close(fd)
        assert ei.value.errno == errno.EEXIST
        wait_for(lambda: (b / "ev" / "y").exists(), timeout=30, what="y, which still applies, to arrive")
        assert (b / "ev" / "x").read_bytes() == b"from b"
        wait_for(lambda: _read_or_none(a / "ev" / "x") == b"from b", timeout=10,
                 what="a to show the MDS's x again")
    finally:
        for m in ms.all:
            m.stop()
        c.stop()


def _fsync_fails(fd: int) -> bool:
    """Keep asking: True once an fsync reports the refusal (it is then raised again below)."""
    try:
        os.fsync(fd)
    except OSError:
        raise
    return False


def _read_or_none(p):
    try:
        return p.read_bytes()
    except OSError:
        return None
