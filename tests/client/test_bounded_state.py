"""What the servers keep grows with the namespace, never with the work done.

Many rounds of create/unlink/mkdir/rmdir/rename through a real mount leave the
namespace as it was; every MDT table (counted on the database itself) and the
MDS's reply bookkeeping must then be no larger after the last round than after
the first.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.mounts import mount
from tests.support.servers import BIN, Cluster, wait_for

pytestmark = pytest.mark.timeout(300)

ROUNDS = 8
FILES = 40
DIRS = 10
# MDS figures that must not grow with rounds (lfsctl mds --json counters)
BOUNDED = ("reply_clients", "reply_absent")


def table_rows(mdt: Path) -> dict[str, int]:
    """Rows of every table of the MDT database (read-only, beside the running MDS)."""
    conn = sqlite3.connect(f"file:{mdt / 'mdt.db'}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def mds_counters(c: Cluster) -> dict[str, int]:
    r = subprocess.run([str(BIN / "lfsctl"), "mds", "--mgs", c.mds.address, "--json"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["counters"]


def one_round(top: Path, i: int) -> None:
    d = top / f"r{i}"
    d.mkdir()
    for n in range(FILES):
        (d / f"f{n}").write_bytes(b"x" * (n % 3))
    for n in range(0, FILES, 2):
        os.rename(d / f"f{n}", d / f"g{n}")
    for n in range(DIRS):
        (d / f"d{n}").mkdir()
        (d / f"d{n}" / "inner").mkdir()
    for p in sorted(d.iterdir()):
        if p.is_dir():
            (p / "inner").rmdir()
            p.rmdir()
        else:
            p.unlink()
    d.rmdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)                    # everything reaches the MDS and is committed
    finally:
        os.close(fd)


def test_many_rounds_leave_tables_and_server_state_bounded(tmp_path):
    c = Cluster(tmp_path / "srv")
    (tmp_path / "srv").mkdir()
    m = None
    try:
        c.start(2)
        m = mount(c, tmp_path / "mnt")
        top = m.path / "work"
        top.mkdir()
        mdt = tmp_path / "srv" / "mdt"

        def settled() -> tuple[dict[str, int], dict[str, int]] | None:
            rows = table_rows(mdt)
            # the OSSes destroy the unlinked files' objects in the background
            return (rows, mds_counters(c)) if rows["destroy_queue"] == 0 and rows["orphans"] == 0 else None

        one_round(top, 0)
        first_rows, first = wait_for(settled, timeout=30, what="the first round's objects destroyed")
        for i in range(1, ROUNDS):
            one_round(top, i)

        def bounded() -> tuple[dict[str, int], dict[str, int]] | None:
            got = settled()
            if got is None:
                return None
            rows, counters = got
            ok = all(rows[t] <= first_rows[t] for t in first_rows) and \
                all(counters.get(k, 0) <= first.get(k, 0) for k in BOUNDED)
            return got if ok else None
        try:
            wait_for(bounded, timeout=30, what="the last round's state to be no larger than the first's")
        except AssertionError:
            rows, counters = table_rows(mdt), mds_counters(c)
            grown = {t: (first_rows.get(t), rows[t]) for t in rows if rows[t] > first_rows.get(t, 0)}
            grown.update({k: (first.get(k), counters.get(k)) for k in BOUNDED
                          if counters.get(k, 0) > first.get(k, 0)})
            raise AssertionError(f"grew from round 1 to round {ROUNDS} (first, last): {grown}") from None
    finally:
        if m is not None:
            m.stop()
        c.stop()
