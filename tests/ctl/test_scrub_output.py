"""`lfsctl scrub status` rendering, without servers: the table, the bad blocks under it, and --json."""

from __future__ import annotations

from lustrepy.ctl.scrub import BAD_IN_TABLE, ScrubRow, render, to_json

BLOCK = 65536


def _row(index: int, **kw) -> ScrubRow:
    base = dict(index=index, name=f"testfs-OST{index:04x}", address="127.0.0.1:1", state="idle", rate_mib=16.0,
                interval=3600.0, objects=12, bytes=3 << 20, passes=2, pass_start=990.0, last_pass_end=1000.0,
                mismatches=0, found_by_scrub=0, read_failures=0, bad_count=0, bad=(), block_size=BLOCK,
                checksums=True)
    base.update(kw)
    return ScrubRow(**base)


def test_the_table_shows_each_ost_and_its_bad_blocks():
    bad = tuple((7, b) for b in range(BAD_IN_TABLE + 2))
    out = render([_row(0), _row(1, state="running", mismatches=9, bad_count=9, bad=bad),
                  _row(2, state="off", rate_mib=0.0, passes=0, last_pass_end=0.0)], now=1030.0)
    lines = out.splitlines()
    assert lines[0].split() == ["OST", "STATE", "RATE", "PASSES", "OBJECTS", "BYTES", "LAST", "PASS",
                                "MISMATCHES", "BAD"]
    assert lines[1].split() == ["OST0000", "idle", "16M/s", "2", "12", "3.0M", "30s", "ago", "0", "0"]
    assert lines[2].split()[:2] == ["OST0001", "running"] and lines[2].split()[-2:] == ["9", "9"]
    assert lines[3].split()[:3] == ["OST0002", "off", "0M/s"] and "never" in lines[3]
    assert f"OST0001 bad block: object 7 bytes {BLOCK}..{2 * BLOCK - 1}" in lines
    assert sum("bad block:" in ln for ln in lines) == BAD_IN_TABLE
    assert lines[-1] == "OST0001: 4 more bad blocks (--json lists 100)"


def test_json_keys_scripts_rely_on():
    doc = to_json([_row(3, bad_count=1, bad=((5, 2),), mismatches=1, last_pass_end=0.0)], ["OST0004: down"])
    (ost,) = doc["osts"]
    assert ost["index"] == 3 and ost["state"] == "idle" and ost["rate_mib"] == 16.0 and ost["passes"] == 2
    assert ost["bad"] == [{"object_id": 5, "block": 2, "offset": 2 * BLOCK}] and ost["bad_count"] == 1
    assert ost["last_pass_end"] is None and ost["mismatches"] == 1 and ost["checksums"] is True
    assert doc["unreachable"] == ["OST0004: down"]
