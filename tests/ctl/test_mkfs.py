"""lfsctl mkfs: format real MDT/OST directories, serve them with real daemons, refuse what must be refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lustrepy.ctl import query
from lustrepy.ctl.main import main
from tests.support.servers import BIN, Proc, wait_for

pytestmark = pytest.mark.timeout(90)


def lfsctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def mds_proc(root: Path, *extra: str) -> Proc:
    return Proc("mds", [str(BIN / "lustrepy-mds"), "--dir", str(root / "mdt"), "--listen", "127.0.0.1:0",
                        "--port-file", str(root / "mds.port"), *extra], root / "mds.log", root / "mds.port")


def oss_proc(root: Path, name: str, *extra: str) -> Proc:
    return Proc(name, [str(BIN / "lustrepy-oss"), "--dir", str(root / name), "--listen", "127.0.0.1:0",
                       "--heartbeat", "0.2", "--port-file", str(root / f"{name}.port"), *extra],
                root / f"{name}.log", root / f"{name}.port")


def test_formatted_dirs_are_served(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = lfsctl(capsys, "mkfs", "--mds", "--fsname", "mkfs1", str(tmp_path / "mdt"))
    assert rc == 0 and err == ""
    assert out == f"formatted {tmp_path / 'mdt'} as MDT of file system mkfs1: mkfs1-MDT0000_UUID\n"
    procs: list[Proc] = []
    try:
        mds = mds_proc(tmp_path)           # no --fsname: the formatted MDT says what it serves
        procs.append(mds.start())
        rc, out, err = lfsctl(capsys, "mkfs", "--ost", "5", "--fsname", "mkfs1", "--mgs", mds.address, "--json",
                              str(tmp_path / "ost5"))
        assert rc == 0 and err == ""
        assert json.loads(out) == {"role": "ost", "dir": str(tmp_path / "ost5"), "fsname": "mkfs1", "index": 5,
                                   "uuid": "mkfs1-OST0005_UUID", "mgs": mds.address, "reformatted": False}
        procs.append(oss_proc(tmp_path, "ost5").start())    # no --mds, --fsname, --index: all from mkfs
        wait_for(lambda: query.fs_status(mds.address).active_indexes() == {5}, what="OST 5 active")

        # an OST index the MDS already has is refused, as is another file system's MDS
        rc, _, err = lfsctl(capsys, "mkfs", "--ost", "5", "--fsname", "mkfs1", "--mgs", mds.address,
                            str(tmp_path / "again"))
        assert rc == 1 and err.startswith(f"lfsctl: the MDS at {mds.address} already has OST index 5 "
                                          f"(mkfs1-OST0005_UUID at ") and "give --reformat" in err
        rc, _, err = lfsctl(capsys, "mkfs", "--ost", "6", "--fsname", "other", "--mgs", mds.address,
                            str(tmp_path / "other"))
        assert (rc, err) == (1, f"lfsctl: the MDS at {mds.address} serves file system 'mkfs1', not 'other'\n")
        assert not (tmp_path / "again").exists() and not (tmp_path / "other").exists()

        # a directory a server is using is never erased
        rc, _, err = lfsctl(capsys, "mkfs", "--ost", "5", "--fsname", "mkfs1", "--reformat", str(tmp_path / "ost5"))
        assert (rc, err) == (1, f"lfsctl: {tmp_path / 'ost5'}: the data directory is in use by process "
                                f"{procs[1].popen.pid}\n")
        rc, _, err = lfsctl(capsys, "mkfs", "--mds", "--fsname", "mkfs1", "--reformat", str(tmp_path / "mdt"))
        assert rc == 1 and f"is in use by process {mds.popen.pid}" in err
    finally:
        for p in reversed(procs):
            p.stop()


def test_wrong_fsname_on_start_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lfsctl(capsys, "mkfs", "--mds", "--fsname", "right", str(tmp_path / "mdt"))[0] == 0
    assert lfsctl(capsys, "mkfs", "--ost", "0", "--fsname", "right", str(tmp_path / "ost0"))[0] == 0
    r = subprocess.run([str(BIN / "lustrepy-mds"), "--dir", str(tmp_path / "mdt"), "--fsname", "wrong"],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (1, f"lustrepy-mds: {tmp_path / 'mdt'} holds file system 'right', not 'wrong'\n")
    r = subprocess.run([str(BIN / "lustrepy-oss"), "--dir", str(tmp_path / "ost0"), "--fsname", "wrong",
                        "--listen", "127.0.0.1:0", "--mds", "127.0.0.1:1"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (1, f"lustrepy-oss: {tmp_path / 'ost0'} belongs to file system 'right', "
                                           "not 'wrong'\n")


def test_nonempty_and_formatted_dirs_need_reformat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "precious").write_text("keep me")
    rc, out, err = lfsctl(capsys, "mkfs", "--mds", "--fsname", "fs", str(d))
    assert (rc, out, err) == (1, "", f"lfsctl: {d} is not empty; give --reformat to erase what it holds\n")
    assert (d / "precious").read_text() == "keep me"

    (d / "precious").unlink()
    assert lfsctl(capsys, "mkfs", "--ost", "3", "--fsname", "fs", str(d))[0] == 0
    rc, _, err = lfsctl(capsys, "mkfs", "--mds", "--fsname", "fs", str(d))
    assert (rc, err) == (1, f"lfsctl: {d} is already formatted as OST 3 of file system 'fs'; "
                            "give --reformat to erase it\n")
    rc, out, _ = lfsctl(capsys, "mkfs", "--mds", "--fsname", "fs", "--reformat", "--json", str(d))
    assert rc == 0 and json.loads(out)["reformatted"] is True
    assert sorted(p.name for p in d.iterdir()) == ["mdt.db", "mdt.lock"]
    rc, _, err = lfsctl(capsys, "mkfs", "--mds", "--fsname", "fs", str(d))
    assert (rc, err) == (1, f"lfsctl: {d} is already formatted as an MDT; give --reformat to erase it\n")


@pytest.mark.parametrize("argv, code, message", [
    (["--mds", "--fsname", "fs", "--mgs", "h:1"], 2, "--mgs is for an OST"),
    (["--fsname", "fs"], 2, "one of the arguments --mds --ost is required"),
    (["--ost", "70000", "--fsname", "fs"], 2, "invalid OST index 70000"),
    (["--mds", "--fsname", "much-too-long"], 1, "invalid file system name 'much-too-long'"),
    (["--ost", "1", "--fsname", "fs", "--mgs", "127.0.0.1:1"], 1, "cannot reach MDS at 127.0.0.1:1"),
])
def test_bad_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int,
                      message: str) -> None:
    try:
        rc = main(["mkfs", *argv, str(tmp_path / "d")])
    except SystemExit as e:         # argparse's own usage errors
        rc = int(e.code or 0)
    err = capsys.readouterr().err
    assert rc == code and message in err, err
    assert not (tmp_path / "d").exists()
