"""A mounted file system over two MDTs: a directory striped over both (lfsctl mkdir -c 2) works as
any directory for shell tools and POSIX calls while its names are spread over the MDTs."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time

import pytest

from lustrepy.common.dirhash import stripe_index
from tests.dne.test_mount_remote import _lfsctl
from tests.dne.test_remote_dirs import _rows

pytestmark = pytest.mark.timeout(240)


def _drop_caches() -> None:
    subprocess.run(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"], check=True)


def test_lfsctl_makes_a_striped_directory_that_shell_tools_use(fs):
    c, m = fs
    d = m.path / "s"
    r = _lfsctl("mkdir", "-c", "2", "-m", "775", str(d))
    assert (r.returncode, r.stderr) == (0, "")
    r = _lfsctl("getdirstripe", str(d))
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and lines[0] == "lmv_stripe_count: 2 lmv_stripe_offset: 0 lmv_hash_type: fnv_1a_64"
    assert [ln.split()[0] for ln in lines[2:]] == ["0", "1"]
    got = json.loads(_lfsctl("getdirstripe", "--json", str(d)).stdout)
    assert got["lmv_stripe_count"] == 2 and [s["mdt"] for s in got["stripes"]] == [0, 1]
    assert oct(os.stat(d).st_mode & 0o777) == "0o775"
    # files and directories land in the stripe their names hash to
    names = [f"f{i}" for i in range(30)]
    for n in names:
        (d / n).write_text(n)
    for i in range(6):
        (d / f"sub{i}").mkdir()
        (d / f"sub{i}" / "inner").write_text("x")
    assert sorted(os.listdir(d)) == sorted(names + [f"sub{i}" for i in range(6)])
    on1 = {r[0].decode() for r in _rows(c, "mdt1", "SELECT name FROM dentries")}
    want1 = {n for n in names + [f"sub{i}" for i in range(6)] if stripe_index("fnv_1a_64", 2, n.encode()) == 1}
    assert want1 and want1 <= on1
    # the directory's links count every subdirectory whatever its stripe; its times follow changes
    assert os.stat(d).st_nlink == 2 + 6
    before = os.stat(d).st_mtime_ns
    time.sleep(0.01)
    far = next(f"new{i}" for i in range(100) if stripe_index("fnv_1a_64", 2, f"new{i}".encode()) == 1)
    (d / far).write_text("late")
    assert os.stat(d).st_mtime_ns > before
    _drop_caches()
    for n in names:
        assert (d / n).read_text() == n
    # rename of a file between the stripes keeps its inode and data
    src = next(n for n in names if stripe_index("fnv_1a_64", 2, n.encode()) == 0)
    dst = next(f"r{i}" for i in range(100) if stripe_index("fnv_1a_64", 2, f"r{i}".encode()) == 1)
    ino = os.stat(d / src).st_ino
    os.rename(d / src, d / dst)
    assert os.stat(d / dst).st_ino == ino and (d / dst).read_text() == src and not (d / src).exists()
    # shell tools: find, tar, cp -a, rm -rf
    out = subprocess.run(["find", str(d), "-type", "f"], capture_output=True, text=True, check=True).stdout
    assert len(out.splitlines()) == 30 + 6 + 1
    subprocess.run(["tar", "-C", str(m.path), "-cf", str(m.path / "t.tar"), "s"], check=True)
    subprocess.run(["cp", "-a", str(d), str(m.path / "copy")], check=True)
    assert sorted(os.listdir(m.path / "copy")) == sorted(os.listdir(d))
    subprocess.run(["rm", "-rf", str(d)], check=True)
    assert not d.exists() and "s" not in os.listdir(m.path)
    assert _rows(c, "mdt", "SELECT count(*) FROM dir_stripes") == [(0,)]
    assert _rows(c, "mdt1", "SELECT count(*) FROM dir_stripes") == [(0,)]


def test_a_striped_directory_s_mode_rules_every_stripe(fs):
    c, m = fs
    d = m.path / "s"
    assert _lfsctl("mkdir", "-c", "2", "-m", "777", str(d)).returncode == 0
    os.chmod(d, 0o700)
    os.chown(d, 1000, 1000)
    modes = {(r[0] & 0o7777, r[1]) for r in _rows(c, "mdt1", "SELECT mode, uid FROM inodes WHERE mode & 61440 "
                                                             "= 16384 AND id IN (SELECT inode FROM dir_stripes)")}
    assert modes == {(0o700, 1000)}
    # a user other than the owner may make no name in either stripe
    for i in range(8):
        p = subprocess.run(["setpriv", "--reuid", "2000", "--regid", "2000", "--clear-groups", "touch",
                            str(d / f"x{i}")], capture_output=True, text=True)
        assert p.returncode != 0 and "Permission denied" in p.stderr


def test_bad_striped_mkdir_requests_get_one_line(fs):
    c, m = fs
    for args, words in ((("-c", "3", str(m.path / "x")), "2..2"), (("-c", "2", "-i", "1", str(m.path / "x")),
                                                                    "parent's MDT"),
                        (("-c", "2", "-H", "crc", str(m.path / "x")), "invalid choice")):
        r = _lfsctl("mkdir", *args)
        assert r.returncode != 0 and words in r.stderr.strip().splitlines()[-1], r.stderr       # argparse: usage, then one line
    assert not (m.path / "x").exists()
    r = _lfsctl("mkdir", str(m.path / "x"))
    assert r.returncode == 2 and "-c N" in r.stderr
    r = _lfsctl("mkdir", "-c", "1", str(m.path / "plain"))
    assert r.returncode == 0 and _lfsctl("getdirstripe", str(m.path / "plain")).stdout.startswith("lmv_stripe_count: 0")


def _in(stripe: int, prefix: str, skip: int = 0) -> str:
    return [f"{prefix}{i}" for i in range(200) if stripe_index("fnv_1a_64", 2, f"{prefix}{i}".encode()) == stripe][skip]


def test_renames_inside_a_striped_directory_as_posix_says(fs):
    """Files and directories renamed between the stripes, renamed again inside one, and replaced:
    inode numbers, link counts, contents and the directory's links stay right, as tools that
    write a new file and rename it over the old one (sed -i, rsync, editors) need."""
    c, m = fs
    d = m.path / "s"
    assert _lfsctl("mkdir", "-c", "2", str(d)).returncode == 0
    # a directory moves to the other stripe and back, with its contents
    a0, a1, a2 = _in(0, "dir"), _in(1, "dir"), _in(1, "dir", 1)
    (d / a0).mkdir()
    (d / a0 / "inside").write_text("in")
    ino = os.stat(d / a0).st_ino
    os.rename(d / a0, d / a1)                                   # stripe 0 -> 1
    assert os.stat(d / a1).st_ino == ino and (d / a1 / "inside").read_text() == "in"
    os.rename(d / a1, d / a2)                                   # inside stripe 1: its name is a stub there
    os.rename(d / a2, d / a0)                                   # back home
    assert os.stat(d / a0).st_ino == ino and sorted(os.listdir(d)) == [a0]
    assert os.stat(d).st_nlink == 3
    # over an empty directory of the other stripe: it goes; over one with entries: ENOTEMPTY
    (d / a1).mkdir()
    (d / a1 / "x").write_text("x")
    with pytest.raises(OSError) as ei:
        os.rename(d / a0, d / a1)
    assert ei.value.errno == errno.ENOTEMPTY and (d / a0 / "inside").exists()
    os.unlink(d / a1 / "x")
    os.rename(d / a0, d / a1)
    assert os.stat(d / a1).st_ino == ino and sorted(os.listdir(d)) == [a1] and os.stat(d).st_nlink == 3
    os.rename(d / a1, d / a0)
    # a file written anew and renamed over the old one, again and again
    target = d / "conf"
    target.write_text("v0")
    for v in range(1, 6):
        subprocess.run(["sed", "-i", f"s/v{v - 1}/v{v}/", str(target)], check=True)
        assert target.read_text() == "v" + str(v)
        assert os.stat(target).st_nlink == 1
    tmp = d / ".conf.tmp"
    for v in range(3):                          # rsync's and editors' way: a temporary file, then rename
        tmp.write_text(f"w{v}")
        os.rename(tmp, target)
        assert target.read_text() == f"w{v}" and not tmp.exists()
    assert sorted(os.listdir(d)) == sorted([a0, "conf"])
    # hard links across the stripes count
    os.link(target, d / _in(1, "hl"))
    os.link(target, d / _in(0, "hl"))
    assert os.stat(target).st_nlink == 3
    for n in (_in(1, "hl"), _in(0, "hl")):
        os.unlink(d / n)
    assert os.stat(target).st_nlink == 1
    _drop_caches()
    assert target.read_text() == "w2" and (d / a0 / "inside").read_text() == "in"
    subprocess.run(["rm", "-rf", str(d)], check=True)
    assert _rows(c, "mdt1", "SELECT count(*) FROM remote_inodes") == [(0,)]
    assert _rows(c, "mdt", "SELECT count(*) FROM remote_names") == [(0,)]


def test_a_default_stripes_new_subdirectories_and_is_inherited(fs):
    c, m = fs
    top = m.path / "top"
    top.mkdir()
    r = _lfsctl("setdirstripe", "-D", "-c", "2", str(top))
    assert (r.returncode, r.stderr) == (0, "")
    assert _lfsctl("getdirstripe", "-D", str(top)).stdout.strip() == \
        "lmv_stripe_count: 2 lmv_stripe_offset: -1 lmv_hash_type: fnv_1a_64"
    (top / "a").mkdir()                                     # an ordinary mkdir: striped by the default
    (top / "a" / "b").mkdir()                               # and its subdirectories, in either stripe
    (top / "a" / _in(1, "c")).mkdir()
    for d in (top / "a", top / "a" / "b", top / "a" / _in(1, "c")):
        assert _lfsctl("getdirstripe", str(d)).stdout.startswith("lmv_stripe_count: 2 "), d
        assert _lfsctl("getdirstripe", "-D", str(d)).stdout.startswith("lmv_stripe_count: 2 "), d
    for i in range(10):
        (top / "a" / f"f{i}").write_text(str(i))
    assert sorted(os.listdir(top / "a")) == sorted([f"f{i}" for i in range(10)] + ["b", _in(1, "c")])
    # removed: new subdirectories are plain again
    assert _lfsctl("setdirstripe", "-D", "-d", str(top)).returncode == 0
    assert _lfsctl("getdirstripe", "-D", str(top)).stdout.startswith("lmv_stripe_count: 0 ")
    (top / "plain").mkdir()
    assert _lfsctl("getdirstripe", str(top / "plain")).stdout.startswith("lmv_stripe_count: 0 ")
    # only the owner (or root) sets it; a bad value is refused
    os.chmod(top, 0o777)
    p = subprocess.run(["setpriv", "--reuid", "2000", "--regid", "2000", "--clear-groups", "setfattr", "-n",
                        "lustrepy.dmv", "-v", "2", str(top)], capture_output=True, text=True)
    assert p.returncode != 0 and ("not permitted" in p.stderr or "Permission denied" in p.stderr)
    with pytest.raises(OSError):
        os.setxattr(top, "lustrepy.dmv", b"99 nohash")
    subprocess.run(["rm", "-rf", str(top)], check=True)
    assert _rows(c, "mdt", "SELECT count(*) FROM dir_defaults") == [(0,)]
    assert _rows(c, "mdt1", "SELECT count(*) FROM dir_defaults") == [(0,)]


def test_directories_moved_in_and_out_count_in_the_striped_directory_s_links(fs):
    """Directories moved into a striped directory from either MDT, into either stripe, and out
    again: its link count (its stripes' together) follows at once on the mount that moved them."""
    c, m = fs
    d, far = m.path / "s", m.path / "far"
    assert _lfsctl("mkdir", "-c", "2", str(d)).returncode == 0
    (m.path / "near").mkdir()
    names = [next(f"d{k}_{i}" for i in range(100) if stripe_index("fnv_1a_64", 2, f"d{k}_{i}".encode()) == k)
             for k in (0, 1)]
    for n in names:
        (far / n).mkdir()                       # directories of MDT1
        (m.path / "near" / f"{n}n").mkdir()     # and of MDT0
    links = 2
    for n in names:
        for src, new in ((far / n, d / n), (m.path / "near" / f"{n}n", d / f"{n}n")):
            os.rename(src, new)
            links += 1
            assert os.stat(d).st_nlink == links, new
    assert os.stat(far).st_nlink == 2 and os.stat(m.path / "near").st_nlink == 2
    for n in names:
        os.rename(d / n, far / n)
        links -= 1
        assert os.stat(d).st_nlink == links
    _drop_caches()
    assert os.stat(d).st_nlink == links == 4 and os.stat(far).st_nlink == 4
