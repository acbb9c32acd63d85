"""Damage on an OST, with real processes and a real mount: a LAST_ID that is not a number
stops the OSS at start in one line; an object that is a directory, or a file the OSS
may not open (EACCES: the OSS runs without CAP_DAC_OVERRIDE and the file's mode is 000),
gives the application EIO with one line in the OSS's log, and the OSS goes on serving
every other object."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lustrepy.common.layout import LOV_XATTR
from lustrepy.oss.osd import Osd
from tests.support.mounts import mount
from tests.support.servers import BIN, Cluster

pytestmark = pytest.mark.timeout(120)

# The OSS without the capabilities that let root open any file, so a mode of 000 means EACCES.
NO_DAC = ("setpriv", "--inh-caps=-dac_override,-dac_read_search",
          "--bounding-set=-dac_override,-dac_read_search")


def _object_path(c: Cluster, f: Path) -> Path:
    ((ost, oid),) = json.loads(os.getxattr(f, LOV_XATTR))["objects"]
    return Path(Osd(str(c.root / f"ost{ost}")).path(oid))


def _eio(fn) -> None:
    with pytest.raises(OSError) as ei:
        fn()
    assert ei.value.errno == errno.EIO, ei.value


def test_damaged_last_id_refused_in_one_line(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start(1)
        c.osts[0].stop()
        (tmp_path / "ost0" / "LAST_ID").write_bytes(b"\x00garbage\xff\n")
        p = subprocess.run([str(BIN / "lustrepy-oss"), "--dir", str(tmp_path / "ost0"), "--listen", "127.0.0.1:0",
                            "--mds", c.mds.address], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
        assert "LAST_ID is damaged" in lines[0] and str(tmp_path / "ost0") in lines[0]
    finally:
        c.stop()


def test_damaged_objects_answer_eio_and_the_oss_serves_on(tmp_path):
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the OSS without CAP_DAC_OVERRIDE")
    c = Cluster(tmp_path)
    m = None
    try:
        c.mds = c.mds_proc().start()
        oss = c.oss_proc(0)
        oss.argv = [*NO_DAC, *oss.argv]
        c.osts.append(oss.start())
        m = mount(c, tmp_path / "mnt")
        data = {n: os.urandom(200_000) for n in ("dir", "locked", "fine")}
        for n, b in data.items():
            with open(tmp_path / "mnt" / n, "wb") as f:
                f.write(b)
                os.fsync(f.fileno())
        objs = {n: _object_path(c, tmp_path / "mnt" / n) for n in data}
        m.stop()                                        # no cached pages: reads go to the OSS
        objs["dir"].unlink()
        objs["dir"].mkdir()                             # a directory where the object should be
        objs["locked"].chmod(0)                         # the OSS may not open it
        m = mount(c, tmp_path / "mnt")
        mnt = tmp_path / "mnt"

        _eio(lambda: (mnt / "dir").read_bytes())
        _eio(lambda: (mnt / "locked").read_bytes())

        def write_through(name: str) -> None:
            with open(mnt / name, "r+b") as f:
                f.write(b"x" * 4096)
                os.fsync(f.fileno())
        _eio(lambda: write_through("dir"))
        _eio(lambda: write_through("locked"))

        assert (mnt / "fine").read_bytes() == data["fine"]   # the others are served as ever
        with open(mnt / "new", "wb") as f:
            f.write(b"still writable")
            os.fsync(f.fileno())
        assert (mnt / "new").read_bytes() == b"still writable"
        os.unlink(mnt / "dir")                          # its object stays for an admin; nothing else breaks
        assert c.osts[0].popen.poll() is None and c.mds.popen.poll() is None

        log = (tmp_path / "ost0.log").read_text()
        assert "Traceback" not in log
        damage = [ln for ln in log.splitlines() if "answering EIO" in ln]
        assert any(str(objs["dir"].name) in ln for ln in damage), log[-3000:]
        assert any("Permission denied" in ln for ln in damage), log[-3000:]
    finally:
        if m is not None:
            m.stop()
        c.stop()
