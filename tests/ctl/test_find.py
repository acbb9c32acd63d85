"""lfsctl find: its size and count tests as pure functions, then walks of a real lustrepy mount
(a 2-OST cluster) with every test, and its errors."""

from __future__ import annotations

import json
import os
import stat as st
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lustrepy.common.layout import Layout, Mirror, StripeObject, encode_lov
from lustrepy.ctl import find, stripe
from tests.support.mounts import Mount, mount
from tests.support.servers import Cluster

pytestmark = pytest.mark.timeout(180)

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
K, M = 1 << 10, 1 << 20


def lfsctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("text", "value", "want"), [
    ("+1M", M, False), ("+1M", M + 1, True), ("-1M", M, False), ("-1M", 1, True), ("-1M", 0, True),
    ("1M", M, True), ("1M", 1, True), ("1M", M + 1, False), ("100", 100, True), ("+100", 101, True),
    ("2k", 1500, True), ("2K", 2049, False), ("+0", 1, True), ("0", 0, True), ("5c", 5, True),
])
def test_size_compare(text: str, value: int, want: bool) -> None:
    assert find.parse_compare(text, units=True).matches(value) is want


@pytest.mark.parametrize("text", ["", "+", "1.5M", "M", "1X", "--1", "1 M"])
def test_bad_size(text: str) -> None:
    with pytest.raises(ValueError):
        find.parse_compare(text, units=True)


def test_stripe_count_takes_no_unit() -> None:
    with pytest.raises(ValueError):
        find.parse_compare("2k", units=False)
    assert find.parse_compare("+1", units=False).matches(2)


def test_osts_list() -> None:
    assert find.parse_osts("0,3") == frozenset({0, 3})
    for bad in ("", "a", "-1", "1,,x"):
        with pytest.raises(ValueError):
            find.parse_osts(bad)


# ---- on a mount ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """testfs with 2 OSTs mounted, holding:
        top/ (default 1 x 1M)   a.txt (10 B)  big.dat (3 MiB, 2 stripes)  on1.bin (offset 1, 1 stripe)
        top/sub/ (default 2 x)  b.txt (2 KiB, 2 stripes)  link -> ../a.txt   empty.txt (0 B)
    """
    base = tmp_path_factory.mktemp("find")
    (base / "srv").mkdir()
    c = Cluster(base / "srv")
    m: Mount | None = None
    try:
        c.start(2)
        m = mount(c, base / "mnt")
        top = m.path / "top"
        top.mkdir()
        assert lfsctl("setstripe", "-c", "1", str(top)).returncode == 0
        (top / "a.txt").write_bytes(b"x" * 10)
        assert lfsctl("setstripe", "-c", "2", "-S", "1M", str(top / "big.dat")).returncode == 0
        (top / "big.dat").write_bytes(b"y" * (3 * M))
        assert lfsctl("setstripe", "-c", "1", "-i", "1", str(top / "on1.bin")).returncode == 0
        (top / "on1.bin").write_bytes(b"z" * 100)
        (top / "sub").mkdir()
        assert lfsctl("setstripe", "-c", "2", str(top / "sub")).returncode == 0
        (top / "sub" / "b.txt").write_bytes(b"b" * (2 * K))
        (top / "sub" / "empty.txt").write_bytes(b"")
        os.symlink("../a.txt", top / "sub" / "link")
        yield top
    finally:
        if m is not None:
            m.stop()
        c.stop()


def found(*argv: str) -> list[str]:
    r = lfsctl("find", *argv)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout.splitlines()


def rel(top: Path, lines: list[str]) -> set[str]:
    return {os.path.relpath(p, top) for p in lines}


def test_find_everything_and_by_type(tree: Path) -> None:
    everything = found(str(tree))
    assert everything[0] == str(tree)       # the start first, as find prints it
    assert rel(tree, everything) == {".", "a.txt", "big.dat", "on1.bin", "sub", "sub/b.txt", "sub/empty.txt",
                                      "sub/link"}
    assert rel(tree, found(str(tree), "--type", "d")) == {".", "sub"}
    assert rel(tree, found(str(tree), "-t", "l")) == {"sub/link"}
    assert rel(tree, found(str(tree), "--type", "f", "--name", "*.txt")) == {"a.txt", "sub/b.txt", "sub/empty.txt"}


def test_find_by_size(tree: Path) -> None:
    f = ["--type", "f"]
    assert rel(tree, found(str(tree), *f, "--size", "+1M")) == {"big.dat"}
    assert rel(tree, found(str(tree), *f, "--size=-1k")) == {"a.txt", "on1.bin", "sub/empty.txt"}
    assert rel(tree, found(str(tree), *f, "--size", "0")) == {"sub/empty.txt"}
    assert rel(tree, found(str(tree), *f, "--size", "2k")) == {"sub/b.txt"}
    assert rel(tree, found(str(tree), *f, "--size", "100")) == {"on1.bin"}
    assert rel(tree, found(str(tree), *f, "--size", "+50", "--size", "-200")) == {"on1.bin"}  # both hold


def test_find_by_layout(tree: Path) -> None:
    assert rel(tree, found(str(tree), "--stripe-count", "2", "--type", "f")) == {"big.dat", "sub/b.txt", "sub/empty.txt"}
    assert rel(tree, found(str(tree), "-c", "2", "--type", "d")) == {"sub"}
    assert rel(tree, found(str(tree), "-c", "+1")) == {"big.dat", "sub", "sub/b.txt", "sub/empty.txt"}
    on1 = rel(tree, found(str(tree), "--ost", "1"))
    assert {"big.dat", "on1.bin", "sub/b.txt", "sub/empty.txt"} <= on1           # directories and links have no objects
    assert not {".", "sub", "sub/link"} & on1
    lov = json.loads(os.getxattr(tree / "a.txt", "lustrepy.lov"))
    a_ost = lov["objects"][0][0]
    assert ("a.txt" in rel(tree, found(str(tree), "--ost", str(a_ost))))
    assert "a.txt" not in rel(tree, found(str(tree), "--ost", str(1 - a_ost)))
    assert rel(tree, found(str(tree), "--ost", "0,1", "--name", "big*")) == {"big.dat"}


def test_find_json(tree: Path) -> None:
    r = lfsctl("find", str(tree / "sub"), "--json", "-c", "2")
    assert r.returncode == 0
    d = {os.path.basename(x["path"]): x for x in json.loads(r.stdout)}
    assert set(d) == {"sub", "b.txt", "empty.txt"}
    assert d["b.txt"] == {"path": str(tree / "sub" / "b.txt"), "type": "file", "size": 2 * K, "stripe_count": 2,
                          "osts": [0, 1]}
    assert d["sub"]["type"] == "directory" and d["sub"]["stripe_count"] == 2 and d["sub"]["osts"] == []
    r = lfsctl("find", str(tree), "--json", "--name", "nothing-like-this")
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_find_a_single_file(tree: Path) -> None:
    assert found(str(tree / "a.txt")) == [str(tree / "a.txt")]
    assert found(str(tree / "a.txt"), "--type", "d") == []


def test_find_relative_paths(tree: Path) -> None:
    r = subprocess.run([*LFSCTL, "find", ".", "--name", "*.txt"], cwd=tree / "sub", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and sorted(r.stdout.splitlines()) == ["./b.txt", "./empty.txt"]


def test_find_errors(tree: Path, tmp_path: Path) -> None:
    r = lfsctl("find", str(tree / "missing"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"lfsctl: {tree / 'missing'}: No such file or directory\n"
    r = lfsctl("find", str(tmp_path))
    assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"lfsctl: {tmp_path}: not on a lustrepy file system")
    r = lfsctl("find", str(tree), str(tree / "missing"))
    assert r.returncode == 1 and r.stdout == "", "a bad path is reported before anything is printed"
    for argv in (["--size", "1.5M"], ["--type", "x"], ["--ost", "a"], ["-c", "2k"], []):
        r = lfsctl("find", *argv, *([str(tree)] if argv else []))
        assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_find_goes_on_past_an_unreadable_directory(tree: Path) -> None:
    closed = tree / "closed"
    closed.mkdir()
    (closed / "hidden.txt").write_bytes(b"h")
    os.chmod(closed, 0)
    try:
        r = lfsctl("find", str(tree), "--type", "f", "--name", "*.txt")
        assert r.returncode == 1
        assert rel(tree, r.stdout.splitlines()) == {"a.txt", "sub/b.txt", "sub/empty.txt"}
        assert r.stderr == f"lfsctl: {closed}: Permission denied\n"
    finally:
        os.chmod(closed, 0o755)
        (closed / "hidden.txt").unlink()
        closed.rmdir()


def test_mirror_tests_of_a_layout() -> None:
    def raid0(ost: int, oid: int) -> Layout:
        return Layout(stripe_count=1, objects=(StripeObject(ost, oid),))

    mirrored = stripe.decode(encode_lov(Layout(mirror_count=2, mirrors=(
        Mirror(1, raid0(0, 5)), Mirror(2, raid0(3, 6), stale=True)))))
    plain = stripe.decode(encode_lov(raid0(1, 9)))

    def hit(c: find.Criteria, layout: dict) -> bool:
        return find.matches(c, "f", st.S_IFREG, 10, layout)
    two = find.Criteria(mirror_count=(find.parse_compare("2", False),))
    assert hit(two, mirrored) and not hit(two, plain)
    assert hit(find.Criteria(mirror_count=(find.parse_compare("-1", False),)), plain)
    assert hit(find.Criteria(mirror_state="stale"), mirrored)
    assert not hit(find.Criteria(mirror_state="^stale"), mirrored)
    assert not hit(find.Criteria(mirror_state="stale"), plain)
    assert hit(find.Criteria(osts=frozenset({3})), mirrored)             # a stale mirror's OST counts too
    assert find.found_json(find.Found("f", st.S_IFREG, 10, mirrored))["mirrors"] == {1: "in_sync", 2: "stale"}
