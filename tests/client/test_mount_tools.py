"""A real lustrepy mount (1 MDS + 4 OSS processes, FUSE) used with ordinary shell
tools and POSIX calls; every result is compared with the same work on a local disk."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.dne import remote_root_dir, striped_root_dir
from tests.support.mounts import mount
from tests.support.servers import BIN, Cluster, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module", params=["mdt0", "remote", "striped"])
def fs(request, tmp_path_factory):
    """The mount's root; with "remote", a directory of the root whose inode and entries live on
    MDT1 of a file system of two MDTs (every test then runs inside it); with "striped", one whose
    entries are striped over both MDTs."""
    root = tmp_path_factory.mktemp("mnt")
    c = Cluster(root / "srv")
    (root / "srv").mkdir()
    m = None
    try:
        c.start(4, n_mdts=1 if request.param == "mdt0" else 2)
        if request.param == "remote":
            remote_root_dir(c, b"on-mdt1")
        elif request.param == "striped":
            striped_root_dir(c, b"on-mdt1")
        m = mount(c, root / "mnt")
        wait_for(lambda: _active_osts(m.path) == 4, what="4 OSTs active")
        yield m.path if request.param == "mdt0" else m.path / "on-mdt1"
    finally:
        if m is not None:
            m.stop()
        c.stop()


def _active_osts(path: Path) -> int:
    out = subprocess.run([str(BIN / "lfsctl"), "df", "--json", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr          # a failing df is a failure, not "no OST active yet"
    return json.loads(out.stdout)["osts_active"]


def sh(cmd: str, cwd: Path) -> str:
    p = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{cmd}: {p.stderr}"
    return p.stdout


def _tree(base: Path, n: int = 40) -> None:
    rnd = hashlib.sha256()
    for i in range(n):
        d = base / f"d{i % 5}" / f"e{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        rnd.update(str(i).encode())
        (d / f"f{i}.bin").write_bytes(rnd.digest() * (i * 97 % 3000))
    (base / "link").symlink_to("d0/e0")
    os.link(base / "d0" / "e0" / "f0.bin", base / "hard")
    os.chmod(base / "d1", 0o750)


def test_basic_file_and_directory_operations(fs):
    d = fs / "basic"
    d.mkdir()
    (d / "a").write_bytes(b"hello world")
    assert (d / "a").read_bytes() == b"hello world"
    st = os.stat(d / "a")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 11
    os.rename(d / "a", d / "b")
    assert sorted(os.listdir(d)) == ["b"]
    os.chmod(d / "b", 0o600)
    assert os.stat(d / "b").st_mode & 0o777 == 0o600
    os.truncate(d / "b", 5)
    assert (d / "b").read_bytes() == b"hello"
    os.truncate(d / "b", 8)
    assert (d / "b").read_bytes() == b"hello\0\0\0"
    with open(d / "b", "ab") as f:
        f.write(b"!")
    assert (d / "b").read_bytes() == b"hello\0\0\0!"
    os.symlink("b", d / "s")
    assert os.readlink(d / "s") == "b" and (d / "s").read_bytes() == b"hello\0\0\0!"
    os.link(d / "b", d / "h")
    assert os.stat(d / "b").st_nlink == 2 and os.stat(d / "h").st_ino == os.stat(d / "b").st_ino
    os.mkfifo(d / "fifo")
    assert stat.S_ISFIFO(os.stat(d / "fifo").st_mode)
    os.utime(d / "b", ns=(1_000_000_000, 2_000_000_000))
    assert os.stat(d / "b").st_mtime_ns == 2_000_000_000
    with open(d / "sparse", "wb") as f:
        f.seek(3 * 1024 * 1024 + 7)
        f.write(b"x")
    data = (d / "sparse").read_bytes()
    assert len(data) == 3 * 1024 * 1024 + 8 and data[:-1] == bytes(len(data) - 1)
    for name in ("b", "h", "s", "fifo", "sparse"):
        os.unlink(d / name)
    os.rmdir(d)
    assert not d.exists()


def test_listings_show_dot_and_dotdot_once_with_every_entry_once(fs):
    """`ls -a` shows "." and ".." (POSIX lists them: both exist) naming the directory and its
    parent, and a listing too big for one reply resumes at the right entry: every name once."""
    d = fs / "dots"
    sub = d / "sub"
    sub.mkdir(parents=True)
    names = [f"n{i:04d}-{'x' * 40}" for i in range(700)]    # several FUSE readdir replies
    for n in names:
        (sub / n).touch()
    for where, parent in ((d, fs), (sub, d)):
        out = sh("ls -a -f -1 -i", where).splitlines()
        listed = [line.split(maxsplit=1) for line in out]
        by_name = {name: int(ino) for ino, name in listed}
        assert len(by_name) == len(listed), "a name listed twice"
        assert by_name["."] == os.stat(where).st_ino
        assert by_name[".."] == os.stat(parent).st_ino
    assert sorted(by_name) == sorted([".", ".."] + names)
    assert sorted(os.listdir(sub)) == names        # readdir(3) callers that skip the dots see the rest
    sh("rm -rf dots", fs)


def test_errors_are_what_a_local_file_system_gives(fs):
    d = fs / "errs"
    d.mkdir()
    (d / "f").write_text("x")
    (d / "sub").mkdir()
    (d / "sub" / "g").write_text("y")
    cases = [
        (lambda: os.mkdir(d / "f"), errno.EEXIST),
        (lambda: os.rmdir(d / "sub"), errno.ENOTEMPTY),
        (lambda: os.unlink(d / "sub"), errno.EISDIR),
        (lambda: os.open(d / "f" / "x", os.O_RDONLY), errno.ENOTDIR),
        (lambda: os.stat(d / "missing"), errno.ENOENT),
        (lambda: os.open(d / ("n" * 256), os.O_CREAT | os.O_WRONLY), errno.ENAMETOOLONG),
        (lambda: os.rename(d / "sub", d / "sub" / "inside"), errno.EINVAL),
        (lambda: os.open(d / "sub", os.O_WRONLY), errno.EISDIR),
    ]
    for fn, err in cases:
        with pytest.raises(OSError) as ei:
            fn()
        assert ei.value.errno == err, fn


def test_cp_tar_rsync_diff_find_du(fs, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    dst = fs / "tools"
    dst.mkdir()
    sh(f"cp -a {src} {dst}/cp", tmp_path)
    sh(f"diff -r {src} {dst}/cp", tmp_path)
    sh(f"tar -C {src} -cf {tmp_path}/t.tar .", tmp_path)
    (dst / "tarx").mkdir()
    sh(f"tar -C {dst}/tarx -xf {tmp_path}/t.tar", tmp_path)
    sh(f"diff -r {src} {dst}/tarx", tmp_path)
    sh(f"tar -C {dst}/tarx -cf {tmp_path}/back.tar . && mkdir {tmp_path}/back && tar -C {tmp_path}/back -xf {tmp_path}/back.tar", tmp_path)
    sh(f"diff -r {src} {tmp_path}/back", tmp_path)
    sh(f"rsync -aH {src}/ {dst}/rs/", tmp_path)
    sh(f"diff -r {src} {dst}/rs", tmp_path)
    assert sh(f"rsync -aHi {src}/ {dst}/rs/", tmp_path).strip() == ""      # nothing left to copy
    local = sorted(sh("find . -printf '%y %s %p\\n'", src).splitlines())
    remote = sorted(sh("find . -printf '%y %s %p\\n'", dst / "rs").splitlines())
    assert local == remote
    assert int(sh(f"du -s --apparent-size -B1 {dst}/rs", tmp_path).split()[0]) > 0
    st = os.stat(dst / "rs" / "hard")
    assert st.st_nlink == 2
    sh(f"mv {dst}/rs {dst}/moved && rm -r {dst}/moved {dst}/cp {dst}/tarx", tmp_path)
    assert sorted(os.listdir(dst)) == []


def test_dd_and_sha256_round_trip(fs, tmp_path):
    sh(f"dd if=/dev/urandom of={tmp_path}/r bs=1M count=24 status=none", tmp_path)
    sh(f"dd if={tmp_path}/r of={fs}/r bs=1M status=none conv=fsync", tmp_path)
    a = sh(f"sha256sum < {tmp_path}/r", tmp_path)
    assert sh(f"sha256sum < {fs}/r", tmp_path) == a
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=False)
    assert sh(f"sha256sum < {fs}/r", tmp_path) == a
    os.unlink(fs / "r")


def test_git_init_add_commit_fsck(fs):
    repo = fs / "repo"
    repo.mkdir()
    _tree(repo, 20)
    env = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e"
    sh("git init -q . && git add -A && " + env + " git commit -qm first", repo)
    (repo / "d0" / "new.txt").write_text("more\n")
    sh("git add -A && " + env + " git commit -qm second && git fsck --full --strict", repo)
    assert sh("git log --oneline", repo).count("\n") == 2
    assert sh("git status --porcelain", repo) == ""


def test_sqlite_database_stays_intact(fs):
    db = sqlite3.connect(fs / "test.db")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    for batch in range(20):
        with db:
            db.executemany("INSERT INTO t (v) VALUES (?)", [(os.urandom(300),) for _ in range(200)])
        with db:
            db.execute("DELETE FROM t WHERE k % 7 = ?", (batch % 7,))
    db.execute("VACUUM")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = db.execute("SELECT count(*) FROM t").fetchone()[0]
    db.close()
    db = sqlite3.connect(fs / "test.db")
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == n
    db.close()


def test_striping_over_four_osts(fs):
    d = fs / "striped"
    d.mkdir()
    os.setxattr(d, "lustrepy.lov", b'{"stripe_size":65536,"stripe_count":4}')
    data = os.urandom(1_000_003)
    (d / "f").write_bytes(data)
    lov = json.loads(os.getxattr(d / "f", "lustrepy.lov"))
    assert lov["stripe_count"] == 4 and len({o[0] for o in lov["objects"]}) == 4
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=False)
    assert (d / "f").read_bytes() == data
    out = subprocess.run([str(BIN / "lfsctl"), "getstripe", str(d / "f")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "lmm_stripe_count:  4" in out.stdout


def test_statfs_reports_cluster_totals(fs):
    st = os.statvfs(fs)
    assert st.f_blocks > 0 and st.f_namemax == 255


def test_bad_mount_requests_give_one_line_and_mount_nothing(fs, tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    addr = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(fs)], capture_output=True, text=True).stdout.strip()
    host_port = addr.rsplit(":/", 1)[0]
    for src in ("nonsense", f"{host_port}:/wrongfs", "127.0.0.1:1:/testfs"):
        p = subprocess.run([str(BIN / "lustrepy"), src, str(mnt), "-o", "timeout=3"], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode != 0, src
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, (src, p.stderr)
        assert not os.path.ismount(mnt)


def test_mount_t_fuse_lustrepy_fstab_and_umount(fs, tmp_path):
    found = subprocess.run(["findmnt", "-n", "-o", "SOURCE,TARGET", "-T", str(fs)], capture_output=True,
                           text=True).stdout.split()
    source, sub = found[0], fs.relative_to(found[1])       # fs may be a directory below the mount's root
    mnt = tmp_path / "viamount"
    mnt.mkdir()
    link = Path("/usr/local/bin/lustrepy")      # where mount.fuse3 finds it; scripts/setup makes the link
    if not link.exists() or link.resolve() != (BIN / "lustrepy").resolve():
        pytest.skip("/usr/local/bin/lustrepy does not point to this checkout (scripts/setup links it)")
    env = dict(os.environ)
    try:
        subprocess.run(["mount", "-t", "fuse.lustrepy", source, str(mnt), "-o", "rw,_netdev"], env=env, check=True,
                       timeout=60)
        assert os.path.ismount(mnt)
        (mnt / sub / "via-mount").write_text("m")
        assert (fs / "via-mount").read_text() == "m"
        subprocess.run(["umount", str(mnt)], check=True, timeout=60)
        assert not os.path.ismount(mnt)
        fstab = tmp_path / "fstab"
        fstab.write_text(f"{source} {mnt} fuse.lustrepy defaults,_netdev 0 0\n")
        subprocess.run(["mount", "-T", str(fstab), str(mnt)], env=env, check=True, timeout=60)
        assert (mnt / sub / "via-mount").read_text() == "m"
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", str(mnt)], timeout=60)
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-uz", str(mnt)])
    os.unlink(fs / "via-mount")


def test_ftruncate_of_a_file_opened_before_chmod(fs):
    p = fs / "ftrunc"
    p.write_bytes(b"0123456789")
    with open(p, "r+b") as f:
        os.chmod(p, 0o444)                   # an fd opened for writing keeps working
        os.ftruncate(f.fileno(), 4)
        f.write(b"ab")
    assert p.read_bytes() == b"ab23"
    os.unlink(p)


def test_cold_random_reads_match(fs):
    """Random misses fetch their aligned block and hand the rest to the kernel's page cache."""
    data = os.urandom(1 << 20) * 48 + os.urandom(16 << 20)     # far apart reads are not sequential
    (fs / "rand").write_bytes(data)
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=False)
    import random
    rng = random.Random(7)
    offsets = [rng.randrange(48 << 20, len(data) - 4096) & ~4095 for _ in range(200)]
    offsets += [rng.randrange(0, 48 << 20) & ~4095 for _ in range(200)]
    fd = os.open(fs / "rand", os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)       # no kernel read-ahead: every miss is ours
    try:
        for off in offsets:
            assert os.pread(fd, 4096, off) == data[off:off + 4096], off
    finally:
        os.close(fd)
