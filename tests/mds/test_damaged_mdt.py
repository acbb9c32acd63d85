"""A damaged MDT met at start, with the real `lustrepy-mds`: it either starts from what
SQLite can read (saying in one log line what the WAL lost) or exits with status 1 and
one line on stderr naming the file and the problem, never a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from lustrepy.common.records import Cred
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.store import DB_NAME, Store
from tests.support.servers import BIN

pytestmark = pytest.mark.timeout(120)

R = Cred(0, 0)
PAGE = 4096


@pytest.fixture(scope="module")
def mdts(tmp_path_factory) -> dict[str, Path]:
    """A closed MDT of 3000 files ("clean": no WAL) and a copy taken while open ("wal": its
    last transactions only in mdt.db-wal)."""
    base = tmp_path_factory.mktemp("mdts")
    clean = base / "clean"
    Store.format(clean, "lptest")
    s = Store(clean)
    try:
        for lo in range(0, 3000, 1000):
            def fill(tx, lo=lo):
                d = tx.mkdir(R, s.root, f"d{lo}".encode(), 0o755)
                for i in range(lo, lo + 1000):
                    tx.create(R, d.fid, f"f{i}".encode(), 0o100644)
            s.write(fill)
        s.sync()
        wal = base / "wal"
        wal.mkdir()
        for name in (DB_NAME, DB_NAME + "-wal"):
            shutil.copyfile(clean / name, wal / name)
    finally:
        s.close()
    return {"clean": clean, "wal": wal}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lock", "*.reserve"))
    return dst


def _run_mds(d: Path, *extra: str) -> tuple[bool, int, str]:
    """Start lustrepy-mds on `d`: (served, exit status, stderr)."""
    port = d.parent / f"{d.name}.port"
    p = subprocess.Popen([str(BIN / "lustrepy-mds"), "--dir", str(d), "--listen", "127.0.0.1:0",
                          "--port-file", str(port), "--reserve", "0", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and p.poll() is None and not port.exists():
            time.sleep(0.05)
        served = p.poll() is None and port.exists()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    return served, p.returncode, err


def _one_line_refusal(d: Path, *extra: str) -> str:
    served, rc, err = _run_mds(d, *extra)
    assert not served and rc == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(d / DB_NAME) in lines[0], err
    return lines[0]


def _junk(path: Path, offset: int, n: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(os.urandom(n))


def test_garbled_pages_refused_by_quick_check(mdts, tmp_path):
    d = _copy(mdts["clean"], tmp_path / "m")
    db = d / DB_NAME
    _junk(db, db.stat().st_size // 2 // PAGE * PAGE, 4 * PAGE)
    line = _one_line_refusal(d)
    assert "damaged" in line
    served, rc, err = _run_mds(d, "--start-check", "none")    # the admin's choice: serve what is readable
    assert served and rc == 0, err


@pytest.mark.parametrize("damage, says", [
    (lambda db: os.truncate(db, db.stat().st_size // 2), "malformed"),
    (lambda db: os.truncate(db, 50), "truncated"),
    (lambda db: os.truncate(db, 0), "empty file"),
    (lambda db: db.write_text("not a database\n" * 100), "not an SQLite database"),
    (lambda db: _junk(db, 0, PAGE), "not an SQLite database"),
], ids=["half", "50-bytes", "empty", "text", "first-page"])
def test_broken_database_file_refused_in_one_line(mdts, tmp_path, damage, says):
    d = _copy(mdts["clean"], tmp_path / "m")
    damage(d / DB_NAME)
    assert says in _one_line_refusal(d)


def test_foreign_database_refused_and_left_as_it_was(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    c = sqlite3.connect(d / DB_NAME)
    c.execute("CREATE TABLE photos (name TEXT)")
    c.commit()
    c.close()
    before = (d / DB_NAME).read_bytes()
    assert "not a lustrepy MDT" in _one_line_refusal(d)
    assert (d / DB_NAME).read_bytes() == before                 # not even switched to WAL mode


def test_intact_wal_starts_with_every_commit(mdts, tmp_path):
    d = _copy(mdts["wal"], tmp_path / "m")
    served, rc, err = _run_mds(d)
    assert served and rc == 0 and "WARNING" not in err, err
    assert check_invariants(d) == []
    c = sqlite3.connect(d / DB_NAME)
    assert c.execute("SELECT count(*) FROM inodes").fetchone()[0] == 3004   # root, 3 dirs, 3000 files
    c.close()


@pytest.mark.parametrize("where, says", [
    ("header", "the log's header is damaged"),
    ("middle", "committed transactions after frame"),
])
def test_damaged_wal_starts_from_the_readable_prefix_and_says_so(mdts, tmp_path, where, says):
    d = _copy(mdts["wal"], tmp_path / "m")
    wal = d / (DB_NAME + "-wal")
    _junk(wal, 8 if where == "header" else wal.stat().st_size // 3, 64 if where == "header" else PAGE)
    served, rc, err = _run_mds(d)
    assert served and rc == 0, err
    assert "Traceback" not in err
    warned = [ln for ln in err.splitlines() if says in ln]
    assert len(warned) == 1 and str(wal) in warned[0], err
    assert (d / (DB_NAME + "-wal.damaged")).exists()            # the log as found, for the admin
    assert check_invariants(d) == []                            # a consistent, earlier MDT
