"""lfsctl getstripe / setstripe: parsing, rendering and argument handling without a mount (the
`lustrepy.lov` attribute cannot be set on tmpfs or ext4, so those flows run against a stand-in
attribute store), then end to end on a real lustrepy mount of a 4-OST cluster."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.layout import Layout, encode_lov
from lustrepy.ctl import clusterfile, mounts, procs, stripe
from lustrepy.ctl.main import main
from tests.support.servers import lfsck

LFSCTL = [sys.executable, "-m", "lustrepy.ctl.main"]
MiB = 1 << 20

FILE_LOV = b'{"stripe_size":1048576,"stripe_count":2,"stripe_offset":-1,"pattern":"raid0","objects":[[1,1027],[2,1027]]}'
FILE_OUT = (
    "PATH\n"
    "lmm_stripe_count:  2\n"
    "lmm_stripe_size:   1048576\n"
    "lmm_pattern:       raid0\n"
    "lmm_layout_gen:    0\n"
    "lmm_stripe_offset: 1\n"
    "\tobdidx\t\t objid\t\t objid\t\t group\n"
    "\t     1\t          1027\t        0x403\t             0\n"
    "\t     2\t          1027\t        0x403\t             0\n"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lfsctl: "), err
    return lines[0]


# ---- pure parts ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "n"), [("1048576", MiB), ("1M", MiB), ("1m", MiB), ("64K", 65536), ("64k", 65536),
                                         ("4G", 4 << 30), ("2MiB", 2 * MiB), ("1MB", MiB), ("0", 0)])
def test_parse_size(text: str, n: int) -> None:
    assert stripe.parse_size(text) == n


@pytest.mark.parametrize("text", ["", "M", "1.5M", "-1M", "1X", "one", "1 M B"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(QuietError) as e:
        stripe.parse_size(text)
    assert e.value.exitcode == 2 and repr(text) in str(e.value)


def test_decode_and_render_file() -> None:
    d = stripe.decode(FILE_LOV)
    assert d == {"stripe_size": MiB, "stripe_count": 2, "stripe_offset": -1, "pattern": "raid0", "layout_gen": 0,
                 "objects": [[1, 1027], [2, 1027]]}
    assert stripe.render_file("PATH", d) == FILE_OUT   # the offset shown is the first object's OST


def test_render_file_without_objects() -> None:
    d = stripe.decode(encode_lov(Layout(stripe_size=65536, stripe_count=4, stripe_offset=3)))
    assert stripe.render_file("f", d).splitlines()[1:] == [
        "lmm_stripe_count:  4", "lmm_stripe_size:   65536", "lmm_pattern:       raid0", "lmm_layout_gen:    0",
        "lmm_stripe_offset: 3"]


def test_render_dir() -> None:
    d = stripe.decode(encode_lov(Layout(stripe_size=MiB, stripe_count=4)))
    assert stripe.render_dir("DIR", d) == ("DIR\nstripe_count:  4 stripe_size:   1048576 pattern:       raid0 "
                                           "stripe_offset: -1\n")


@pytest.mark.parametrize("value", [b"", b"not json", b"[1,2]", b'{"stripe_size":1}', b'{"stripe_count":1}',
                                   b'{"stripe_size":"x","stripe_count":1}', b"\xff",
                                   b'{"stripe_size":65536,"stripe_count":1,"objects":[[1]]}'])
def test_decode_rejects(value: bytes) -> None:
    with pytest.raises(LpError) as e:
        stripe.decode(value)
    assert e.value.errno == errno.EINVAL and "malformed lustrepy.lov" in e.value.message


def test_requested_fills_from_the_inherited_layout() -> None:
    base = {"stripe_size": 4 * MiB, "stripe_count": 2, "stripe_offset": -1}
    assert stripe.requested(base, 4, None, None) == Layout(stripe_size=4 * MiB, stripe_count=4)
    assert stripe.requested(base, None, MiB, 3) == Layout(stripe_size=MiB, stripe_count=2, stripe_offset=3)
    assert stripe.requested(base, 0, 0, None) == Layout(stripe_size=4 * MiB, stripe_count=2)   # 0 = default
    assert stripe.requested(None, -1, None, None) == Layout(stripe_count=-1)
    for count, size, why in ((None, 100 * 1024, "multiple of 64 KiB"), (None, 8 << 30, "over the maximum")):
        with pytest.raises(QuietError) as e:
            stripe.requested(base, count, size, None)
        assert e.value.exitcode == 2 and why in str(e.value)


# ---- argument handling and errors on a file system that is not lustrepy -----------------------------

def test_getstripe_not_lustrepy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "plain"
    f.write_text("x")
    rc, out, err = run(capsys, "getstripe", str(f))
    assert rc == 1 and out == ""
    assert one_line(err) == f"lfsctl: {f}: not a lustrepy file (no lustrepy.lov)"
    rc, out, err = run(capsys, "getstripe", str(tmp_path / "missing"))
    assert rc == 1 and one_line(err).endswith("missing: No such file or directory")


def test_setstripe_not_lustrepy_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new"
    rc, _, err = run(capsys, "setstripe", "-c", "2", str(new))
    assert rc == 1 and "not on a lustrepy file system" in one_line(err)
    assert not new.exists()
    rc, _, err = run(capsys, "setstripe", "-c", "2", str(tmp_path))
    assert rc == 1 and "not a lustrepy file" in one_line(err)


@pytest.mark.parametrize(("argv", "why"), [
    (["setstripe", "P"], "at least one of -c COUNT"),
    (["setstripe", "-d", "-c", "2", "P"], "-d takes no -c"),
    (["setstripe", "-S", "100K", "P"], "multiple of 64 KiB"),
    (["setstripe", "-c", "0", "-S", "8G", "P"], "over the maximum"),
])
def test_setstripe_usage_errors(argv: list[str], why: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, *[str(tmp_path / "p") if a == "P" else a for a in argv])
    assert rc == 2 and why in one_line(err)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("argv", [["setstripe", "-c", "-2", "P"], ["setstripe", "-c", "x", "P"],
                                  ["setstripe", "-S", "1.5M", "P"], ["setstripe", "-i", "-3", "P"],
                                  ["getstripe"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


# ---- the command flows against a stand-in attribute store ------------------------------------------

class FakeLov:
    """What a lustrepy mount does with `lustrepy.lov`, on plain directories: directories carry a default
    (the root's: 1 MiB x 1), setting a file's layout gives it objects, once."""

    def __init__(self, root: Path) -> None:
        self.values: dict[str, bytes] = {str(root): encode_lov(Layout())}
        self.next_oid = 1027
        self.fail_set: int | None = None

    @staticmethod
    def _key(target: str | int) -> str:
        return os.readlink(f"/proc/self/fd/{target}") if isinstance(target, int) else os.path.abspath(target)

    def get(self, path: str) -> bytes:
        try:
            return self.values[self._key(path)]
        except KeyError:
            raise OSError(errno.ENODATA, "No data available") from None

    def set(self, target: str | int, value: bytes) -> None:
        key = self._key(target)
        if self.fail_set:
            raise OSError(self.fail_set, os.strerror(self.fail_set))
        lo = stripe.decode(value)
        if os.path.isdir(key):
            self.values[key] = value
            return
        if key in self.values:
            raise OSError(errno.EEXIST, "File exists")
        count = 4 if lo["stripe_count"] == -1 else lo["stripe_count"]
        first = max(lo["stripe_offset"], 0)
        objs = [[(first + i) % 4, self.next_oid + i] for i in range(count)]
        self.next_oid += count
        self.values[key] = json.dumps({**lo, "stripe_count": count, "objects": objs}).encode()

    def remove(self, path: str) -> None:
        self.values.pop(self._key(path), None)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeLov:
    f = FakeLov(tmp_path)
    monkeypatch.setattr(stripe, "get_lov", f.get)
    monkeypatch.setattr(stripe, "set_lov", f.set)
    monkeypatch.setattr(stripe, "remove_lov", f.remove)
    monkeypatch.setattr(stripe, "_on_lustrepy", lambda path: True)
    return f


def test_setstripe_directory_then_new_file(tmp_path: Path, fake: FakeLov, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    fake.values[str(d)] = encode_lov(Layout(stripe_size=4 * MiB))
    rc, out, err = run(capsys, "setstripe", "-c", "4", str(d))
    assert (rc, out, err) == (0, "", "")
    assert stripe.decode(fake.values[str(d)])["stripe_size"] == 4 * MiB      # kept what was not given
    rc, out, _ = run(capsys, "getstripe", str(d))
    assert out == f"{d}\nstripe_count:  4 stripe_size:   4194304 pattern:       raid0 stripe_offset: -1\n"

    new = d / "new"
    rc, out, err = run(capsys, "setstripe", "-c", "2", "-i", "1", str(new))
    assert (rc, err) == (0, "") and new.is_file() and new.stat().st_size == 0
    rc, out, _ = run(capsys, "getstripe", "--json", str(new))
    got = json.loads(out)
    assert got["path"] == str(new) and got["type"] == "file"
    assert (got["stripe_count"], got["stripe_size"], got["objects"]) == (2, 4 * MiB, [[1, 1027], [2, 1028]])
    rc, out, _ = run(capsys, "getstripe", str(new))
    assert out.splitlines()[5] == "lmm_stripe_offset: 1" and len(out.splitlines()) == 9


def test_setstripe_existing_file_with_objects(tmp_path: Path, fake: FakeLov,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"data")
    fake.values[str(f)] = FILE_LOV
    rc, _, err = run(capsys, "setstripe", "-c", "4", str(f))
    assert rc == 1 and "EEXIST" in one_line(err)
    assert f.read_bytes() == b"data" and fake.values[str(f)] == FILE_LOV


def test_setstripe_file_without_objects_yet(tmp_path: Path, fake: FakeLov, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "empty"
    f.touch()
    rc, out, _ = run(capsys, "getstripe", str(f))
    assert rc == 0 and out == f"{f} has no stripe info\n"
    rc, _, err = run(capsys, "setstripe", "-S", "128K", str(f))
    assert (rc, err) == (0, "")
    assert stripe.decode(fake.values[str(f)])["stripe_size"] == 131072


def test_new_file_is_removed_when_its_layout_cannot_be_set(tmp_path: Path, fake: FakeLov,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new"
    fake.fail_set = errno.EEXIST         # the file system gave it objects at create
    rc, _, err = run(capsys, "setstripe", "-c", "2", str(new))
    assert rc == 1 and "got objects when it was created" in one_line(err)
    assert not new.exists()
    fake.fail_set = errno.EINVAL         # e.g. more stripes than OSTs
    rc, _, err = run(capsys, "setstripe", "-c", "9", str(new))
    assert rc == 1 and "Invalid argument (EINVAL)" in one_line(err)
    assert not new.exists()


def test_setstripe_never_touches_an_existing_path_it_fails_on(tmp_path: Path, fake: FakeLov,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "mine"
    f.write_text("keep")
    fake.fail_set = errno.EIO
    rc, _, err = run(capsys, "setstripe", "-c", "2", str(f))
    assert rc == 1 and "cannot set the layout" in one_line(err) and f.read_text() == "keep"


def test_delete_directory_default(tmp_path: Path, fake: FakeLov, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    fake.values[str(d)] = encode_lov(Layout(stripe_count=4))
    assert run(capsys, "setstripe", "-d", str(d))[0] == 0
    assert str(d) not in fake.values
    f = tmp_path / "f"
    f.touch()
    rc, _, err = run(capsys, "setstripe", "-d", str(f))
    assert rc == 1 and "not a directory" in one_line(err)


def test_getstripe_several_paths(tmp_path: Path, fake: FakeLov, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f"
    f.touch()
    fake.values[str(f)] = FILE_LOV
    rc, out, err = run(capsys, "getstripe", str(f), str(tmp_path / "missing"), str(tmp_path))
    assert rc == 1 and one_line(err).endswith("missing: No such file or directory")
    blocks = out.split("\n\n")
    assert blocks[0] + "\n" == FILE_OUT.replace("PATH", str(f)) and blocks[1].startswith(f"{tmp_path}\nstripe_count:")
    rc, out, _ = run(capsys, "getstripe", "--json", str(f), str(tmp_path))
    assert [(x["path"], x["type"]) for x in json.loads(out)] == [(str(f), "file"), (str(tmp_path), "directory")]


# ---- end to end on a real mount ----------------------------------------------------------------

def lfsctl(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LFSCTL, *argv], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def mnt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4-OST cluster mounted with the lustrepy client; always unmounted and stopped afterwards."""
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        pytest.skip("needs /dev/fuse and root to mount")
    base = tmp_path_factory.mktemp("stripe")
    root, point = base / "cluster", base / "mnt"
    try:
        r = lfsctl("cluster", "up", "--root", str(root), "--osts", "4", "--mount", str(point), timeout=120)
        assert r.returncode == 0, r.stderr
        yield point
    finally:
        if clusterfile.load(root) is not None:
            lfsctl("cluster", "down", "--root", str(root))
        if mounts.is_mounted(str(point)):
            mounts.unmount(str(point))
        rec = clusterfile.load(root)
        if rec is not None:
            procs.stop([(s.pid, s.argv, s.starttime) for s in rec.servers() if s.pid], grace_s=5)
            procs.stop(client_processes(rec.mgs_source, str(point)), grace_s=5)
    lfsck(root / "mdt")         # after everything the module did, the MDT is consistent


def client_processes(source: str, point: str) -> list[tuple[int, tuple[str, ...], int]]:
    """Client processes of this mount (a failed mount can leave one behind), by exact argv words."""
    found = []
    for entry in os.listdir("/proc"):
        argv = procs.read_cmdline(int(entry)) if entry.isdigit() else None
        if argv and source in argv and point in argv:
            found.append((int(entry), argv, 0))
    return found


def getstripe_json(path: Path) -> dict:
    r = lfsctl("getstripe", "--json", str(path))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.timeout(180)
def test_e2e_directory_default_is_inherited(mnt: Path) -> None:
    d = mnt / "s4"
    d.mkdir()
    r = lfsctl("setstripe", "-c", "4", "-S", "1M", str(d))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = lfsctl("getstripe", str(d))
    assert r.stdout == f"{d}\nstripe_count:  4 stripe_size:   1048576 pattern:       raid0 stripe_offset: -1\n"

    data = os.urandom(5 * MiB + 123)
    (d / "f").write_bytes(data)
    got = getstripe_json(d / "f")
    assert (got["type"], got["stripe_count"], got["stripe_size"], got["pattern"]) == ("file", 4, MiB, "raid0")
    assert sorted(i for i, _ in got["objects"]) == [0, 1, 2, 3]
    lines = lfsctl("getstripe", str(d / "f")).stdout.splitlines()
    assert lines[:2] == [str(d / "f"), "lmm_stripe_count:  4"]
    assert lines[5] == f"lmm_stripe_offset: {got['objects'][0][0]}"
    assert lines[6] == "\tobdidx\t\t objid\t\t objid\t\t group" and len(lines) == 11
    assert hashlib.sha256((d / "f").read_bytes()).digest() == hashlib.sha256(data).digest()


@pytest.mark.timeout(180)
def test_e2e_new_file_gets_the_layout(mnt: Path) -> None:
    p = mnt / "new"
    r = lfsctl("setstripe", "-c", "2", "-S", "128K", "-i", "1", str(p))
    assert (r.returncode, r.stderr) == (0, "")
    assert p.is_file() and p.stat().st_size == 0
    got = getstripe_json(p)
    assert (got["stripe_count"], got["stripe_size"], len(got["objects"])) == (2, 131072, 2)
    assert got["objects"][0][0] == 1
    # a file that has objects keeps its layout, and is not removed
    r = lfsctl("setstripe", "-c", "1", str(p))
    assert r.returncode == 1 and "EEXIST" in one_line(r.stderr) and p.is_file()
    all_osts = mnt / "all"
    assert lfsctl("setstripe", "-c", "-1", str(all_osts)).returncode == 0
    assert len(getstripe_json(all_osts)["objects"]) == 4


@pytest.mark.timeout(180)
def test_e2e_errors_and_delete(mnt: Path, tmp_path: Path) -> None:
    too_many = mnt / "eight"
    r = lfsctl("setstripe", "-c", "8", str(too_many))
    assert r.returncode == 1 and one_line(r.stderr).startswith(f"lfsctl: {too_many}")
    assert not too_many.exists()
    r = lfsctl("getstripe", str(mnt / "missing"))
    assert r.returncode == 1 and one_line(r.stderr).endswith("No such file or directory")
    outside = tmp_path / "plain"
    outside.touch()
    r = lfsctl("getstripe", str(outside))
    assert one_line(r.stderr) == f"lfsctl: {outside}: not a lustrepy file (no lustrepy.lov)"

    d = mnt / "d2"
    d.mkdir()
    assert lfsctl("setstripe", "-c", "3", str(d)).returncode == 0
    assert getstripe_json(d)["stripe_count"] == 3
    assert lfsctl("setstripe", "-d", str(d)).returncode == 0
    root_default = {k: v for k, v in getstripe_json(mnt).items() if k != "path"}
    assert {k: v for k, v in getstripe_json(d).items() if k != "path"} == root_default


def test_render_a_mirrored_file() -> None:
    from lustrepy.common.layout import Mirror, StripeObject

    def raid0(ost: int, oid: int) -> Layout:
        return Layout(stripe_count=1, objects=(StripeObject(ost, oid),))
    lo = Layout(mirror_count=2, generation=4, mirrors=(Mirror(1, raid0(0, 5)), Mirror(2, raid0(3, 6), True, True)))
    d = stripe.decode(encode_lov(lo, "[0x200000400:0x1:0x0]"))
    assert d["fid"] == "[0x200000400:0x1:0x0]" and d["mirror_count"] == 2 and d["layout_gen"] == 4
    text = stripe.render_file("f", d)
    assert "  lcm_mirror_count:  2" in text and "    lcme_flags:          init,stale,syncing" in text
    assert text.count("lcme_mirror_id") == 2 and "\t     3\t             6" in text
    assert stripe.render_dir("d", stripe.decode(encode_lov(Layout(mirror_count=3)))).rstrip().endswith(
        "mirror_count: 3")
