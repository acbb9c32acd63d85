"""lfsctl lfsck across two MDTs on real servers (two MDSs, two OSSes, a real mount): a file system
with files on both MDTs is clean, and with MDT1 down says so in one line; an orphan object of
MDT1's id range is MDT1's, and --repair links it under /.lustre/lost+found/MDT0001 or destroys it
through MDT1; a lost object of an MDT1 file and a wrong size of an MDT0 file under an MDT1
directory are found under their full paths and repaired; a remote directory whose inode was lost
on MDT1, and one whose name was lost on MDT0, are each reported, and a logged operation across
MDTs that explains one gives a note instead. Then the name check's reasoning, pure: what
operations across MDTs explain, what the later looks confirm, and how findings read."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lustrepy.common.fid import ROOT_FID, Fid
from lustrepy.common.lfsckrec import CrossName, NamesNow, Pending
from lustrepy.common.objid import group_of
from lustrepy.ctl import lfsck_names
from lustrepy.ctl.lfsck import line, note_line
from lustrepy.ctl.lfsck_check import DANGLING, MDT, ORPHAN, SIZE, UNCHECKED, UNNAMED, Finding
from lustrepy.ctl.lfsckq import MdtView
from tests.ctl.test_lfsck import MiB, grow_object, lfsctl, object_file, objects_of, plant_orphan, write
from tests.support.dne import all_active
from tests.support.mounts import Mount
from tests.support.dne import remote_root_dir, striped_root_dir, two_mdt_mount
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(300)


def _osts_on_both(c: Cluster) -> bool:
    """Both OSTs registered with both MDTs, and each MDT has objects precreated on each."""
    for d in ("mdt", "mdt1"):
        if len(_rows(c, d, "SELECT ost_index FROM pools WHERE next_id <= last_id")) < 2:
            return False
    return True


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[tuple[Cluster, Mount]]:
    """Two MDTs, two OSTs, /far a remote directory on MDT1, a mount."""
    def ready(c: Cluster) -> bool:
        return bool(all_active(c.mds.address, 2)) and _osts_on_both(c)
    with two_mdt_mount(tmp_path, 2, ("--recovery-window", "1"), ready) as got:
        yield got


def _rows(c: Cluster, mdt: str, sql: str, args: tuple = ()) -> list:
    db = sqlite3.connect(c.root / mdt / "mdt.db")
    try:
        rows = db.execute(sql, args).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def lfsck(c: Cluster, *extra: str):
    r = lfsctl("lfsck", "--mgs", c.mds.address, *extra)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def _fill(m: Mount) -> None:
    """Files, striped and not, on both MDTs, with data on both OSTs."""
    write(m, "top", os.urandom(MiB + 7), stripes=2)
    (m.path / "dir").mkdir()
    (m.path / "dir" / "small").write_bytes(b"small")
    write(m, "far/inner", os.urandom(2 * MiB + 3), stripes=2)
    (m.path / "far" / "sub").mkdir()
    (m.path / "far" / "sub" / "f").write_bytes(os.urandom(70_000))
    r = lfsctl("mkdir", "-i", "0", str(m.path / "far" / "zero"))    # back on MDT0, named on MDT1
    assert r.returncode == 0, r.stderr
    (m.path / "far" / "zero" / "g").write_bytes(os.urandom(30_000))


def test_files_on_both_mdts_are_clean(fs: tuple[Cluster, Mount]) -> None:
    c, m = fs
    _fill(m)
    assert {group_of(oid) for _, oid in objects_of(m.path / "far" / "inner")} == {1}
    assert {group_of(oid) for _, oid in objects_of(m.path / "top")} == {0}
    r = lfsck(c)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = lfsck(c, "--json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["clean"] and d["findings"] == [] and d["notes"] == []
    assert set(d["checked"]["mdts"]) == {"MDT0000", "MDT0001"} and d["checked"]["mdts"]["MDT0001"] >= 2
    assert set(d["checked"]["osts"]) == {"OST0000", "OST0001"}
    r = lfsck(c, "--repair")
    assert (r.returncode, r.stdout) == (0, "")
    # MDT1 down: one line, and nothing of it (its objects, the names of its directories) is judged
    addr = c.mdts[0].address
    c.mdts[0].stop()
    r = lfsck(c)
    assert r.returncode == 1 and r.stdout == (f"unchecked testfs-MDT0001 at {addr}: cannot reach it: connection "
                                              "refused; its files and objects were not checked\n"), r.stdout


def test_an_orphan_of_mdt1_is_mdt1s_and_repaired(fs: tuple[Cluster, Mount], tmp_path: Path) -> None:
    c, m = fs
    _fill(m)
    data = os.urandom(50_000)
    kept = plant_orphan(c, m, "far/kept", data)
    assert group_of(kept[1]) == 1
    r = lfsck(c)
    assert r.returncode == 1 and r.stdout.count("\n") == 1, r.stdout
    assert r.stdout.startswith(f"orphan testfs-OST{kept[0]:04x} object {kept[1]}: 50000 bytes, ")
    assert r.stdout.rstrip().endswith("no file of testfs-MDT0001 uses it")
    d = json.loads(lfsck(c, "--json").stdout)
    [f] = d["findings"]
    assert (f["kind"], f["mdt"], f["ost"], f["object_id"]) == ("orphan", 1, kept[0], kept[1])

    # kept: a file of MDT1 in a directory of MDT1 named on MDT0
    d = json.loads(lfsck(c, "--json", "--repair", "--keep-orphans", "--grace", "60").stdout)
    [f] = d["findings"]
    name = f"OST{kept[0]:04x}-{kept[1]}"
    assert f["repaired"] and f["repair"] == f"linked as /.lustre/lost+found/MDT0001/{name}", f
    lost = m.path / ".lustre" / "lost+found" / "MDT0001"
    assert (lost / name).read_bytes() == data
    r = lfsctl("getdirstripe", str(lost))
    assert r.returncode == 0 and "lmv_stripe_offset: 1" in r.stdout, r.stdout + r.stderr
    assert (lfsck(c).returncode, lfsck(c).stdout) == (0, "")

    # destroyed: through MDT1's destroy queue
    gone = plant_orphan(c, m, "far/gone", b"x" * 1000)
    r = lfsck(c, "--repair", "--grace", "60")
    assert r.returncode == 1 and f"object {gone[1]}: 1000 bytes" in r.stdout
    assert "repaired: destroyed (queued for destruction on its OST)" in r.stdout, r.stdout
    wait_for(lambda: not object_file(c, *gone).exists(), what="the orphan destroyed")
    assert (lost / name).read_bytes() == data
    r = lfsck(c)
    assert (r.returncode, r.stdout) == (0, "")


def test_lost_objects_and_sizes_of_mdt1_files_are_found_and_repaired(fs: tuple[Cluster, Mount]) -> None:
    c, m = fs
    _fill(m)
    inner = m.path / "far" / "inner"
    data = inner.read_bytes()
    lost = objects_of(inner)[1]                 # stripe 1 holds bytes 1 MiB .. 2 MiB
    grown_path = m.path / "far" / "zero" / "g"   # a file of MDT0 under a directory of MDT1
    grown = grown_path.read_bytes()
    [gobj] = objects_of(grown_path)
    m.stop()
    object_file(c, *lost).unlink()
    grow_object(c, *gobj, len(grown), b"tail" * 100)
    r = lfsck(c)
    assert r.returncode == 1 and r.stdout.count("\n") == 2, r.stdout
    assert f"missing testfs-OST{lost[0]:04x} object {lost[1]}: stripe 1 of /far/inner [0x" in r.stdout
    assert ("size /far/zero/g [0x" in r.stdout
            and f"testfs-MDT0000 records {len(grown)} bytes, its objects say {len(grown) + 400}" in r.stdout)
    r = lfsck(c, "--repair")
    assert "repaired: recreated empty: /far/inner lost the data of stripe 1" in r.stdout, r.stdout
    assert f"repaired: size set to {len(grown) + 400}" in r.stdout
    assert (lfsck(c).returncode, lfsck(c).stdout) == (0, "")
    m.start()
    assert inner.read_bytes() == data[:MiB] + bytes(MiB) + data[2 * MiB:]
    assert grown_path.read_bytes() == grown + b"tail" * 100


def test_lost_halves_of_remote_directories_are_reported(fs: tuple[Cluster, Mount], tmp_path: Path) -> None:
    c, m = fs
    _fill(m)
    lone = remote_root_dir(c, b"lone")         # its inode will be lost on MDT1
    nameless = remote_root_dir(c, b"nameless")   # its name will be lost on MDT0
    m.stop()
    for p in [*c.osts, *c.mdts, c.mds]:
        p.stop()
    one = (lone.seq, lone.oid, lone.ver)
    [(iid,)] = _rows(c, "mdt1", "SELECT id FROM inodes WHERE seq = ? AND oid = ? AND ver = ?", one)
    _rows(c, "mdt1", "DELETE FROM remote_names WHERE inode = ?", (iid,))
    _rows(c, "mdt1", "DELETE FROM inodes WHERE id = ?", (iid,))
    two = (nameless.seq, nameless.oid, nameless.ver)
    [(sid,)] = _rows(c, "mdt", "SELECT id FROM inodes WHERE seq = ? AND oid = ? AND ver = ?", two)
    _rows(c, "mdt", "DELETE FROM dentries WHERE child = ?", (sid,))
    _rows(c, "mdt", "DELETE FROM remote_inodes WHERE inode = ?", (sid,))
    _rows(c, "mdt", "DELETE FROM inodes WHERE id = ?", (sid,))
    _rows(c, "mdt", "UPDATE inodes SET nlink = nlink - 1 WHERE seq = ? AND oid = ? AND ver = ?",
          (ROOT_FID.seq, ROOT_FID.oid, ROOT_FID.ver))
    _restart(c)
    r = _after_recovery(c)
    lines = sorted(r.stdout.splitlines())
    assert lines == sorted([
        f"dangling testfs-MDT0000 /lone {lone}: its inode is not on testfs-MDT0001",
        f"unnamed testfs-MDT0001 {nameless}: named /nameless on testfs-MDT0000, which has no such name of it",
    ]), r.stdout
    d = json.loads(lfsck(c, "--json").stdout)
    got = {(f["kind"], f["mdt"], f["fid"], f["path"]) for f in d["findings"]}
    assert got == {("dangling", 0, str(lone), "/lone"), ("unnamed", 1, str(nameless), "/nameless")}
    r = lfsck(c, "--repair")                 # names across MDTs are reported, not repaired
    assert r.returncode == 1 and r.stdout.count("\n") == 2 and "repaired" not in r.stdout

    # a logged mkdir of that name, not carried through (its MDT never answers): a note, no problem
    for p in [*c.osts, *c.mdts, c.mds]:
        p.stop()
    op = {"kind": "mkdir", "parent": [ROOT_FID.seq, ROOT_FID.oid, ROOT_FID.ver], "name": b"nameless".hex(),
          "mode": 0o755, "uid": 0, "gid": 0, "mdt": 7, "client": "", "xid": 0, "cred": [0, 0, []]}
    _rows(c, "mdt", "INSERT INTO dne_log (op, created_ns) VALUES (?, 0)", (json.dumps(op),))
    [(op_id,)] = _rows(c, "mdt", "SELECT id FROM dne_log")
    _restart(c)
    r = _after_recovery(c)
    assert r.stdout.splitlines() == [
        f"dangling testfs-MDT0000 /lone {lone}: its inode is not on testfs-MDT0001",
        f"note testfs-MDT0000: mkdir of 'nameless' in {ROOT_FID} across MDTs (operation {op_id}, logged "
        "1970-01-01 00:00:00 UTC) is not finished yet; its names may disagree between MDTs until it is"], r.stdout
    [n] = json.loads(lfsck(c, "--json").stdout)["notes"]
    assert (n["mdt"], n["operation"], n["kind"], n["mdts"]) == (0, op_id, "mkdir", [7])
    for p in [*c.osts, *c.mdts, c.mds]:
        p.stop()
    _rows(c, "mdt", "DELETE FROM dne_log")


def test_stripes_of_striped_directories_are_checked_across_mdts(fs: tuple[Cluster, Mount]) -> None:
    """A striped directory is clean; a stripe its master lists but its MDT lost, and a stripe
    whose master no longer lists it, are each reported."""
    c, m = fs
    whole, lost, loose = (striped_root_dir(c, n) for n in (b"whole", b"lost", b"loose"))
    for n in ("whole", "lost", "loose"):
        for i in range(6):
            (m.path / n / f"f{i}").write_text(str(i))
        for i in range(6):
            os.unlink(m.path / n / f"f{i}")
    assert (lfsck(c).returncode, lfsck(c).stdout) == (0, "")
    m.stop()
    for p in [*c.osts, *c.mdts, c.mds]:
        p.stop()

    def stripes(fid: Fid) -> list:
        [(text,)] = _rows(c, "mdt", "SELECT stripes FROM dir_stripes d JOIN inodes i ON i.id = d.inode WHERE "
                                    "i.seq = ? AND i.oid = ? AND i.ver = ?", (fid.seq, fid.oid, fid.ver))
        return json.loads(text)
    s, o, v, _ = stripes(lost)[1]
    [(iid,)] = _rows(c, "mdt1", "SELECT id FROM inodes WHERE seq = ? AND oid = ? AND ver = ?", (s, o, v))
    _rows(c, "mdt1", "DELETE FROM dir_stripes WHERE inode = ?", (iid,))
    _rows(c, "mdt1", "DELETE FROM inodes WHERE id = ?", (iid,))
    gone = Fid(s, o, v)
    s, o, v, _ = stripes(loose)[1]
    stray = Fid(s, o, v)
    _rows(c, "mdt", "DELETE FROM dir_stripes WHERE inode = (SELECT id FROM inodes WHERE seq = ? AND oid = ? "
                    "AND ver = ?)", (loose.seq, loose.oid, loose.ver))
    _restart(c)
    r = _after_recovery(c)
    assert sorted(r.stdout.splitlines()) == sorted([
        f"dangling testfs-MDT0000 /lost (stripe 1) {gone}: its inode is not on testfs-MDT0001",
        f"unnamed testfs-MDT0001 {stray}: named /loose/.stripe1 on testfs-MDT0000, which has no such name of it",
    ]), r.stdout
    assert whole not in (gone, stray)


def _restart(c: Cluster) -> None:
    c.mds = c.mds_proc("--recovery-window", "1").start()
    c.mdts[0] = c.mdt_proc(1, "--recovery-window", "1").start()
    c.osts = [c.oss_proc(i).start() for i in range(2)]
    wait_for(lambda: all_active(c.mds.address, 2), what="MDT1 active")


def _after_recovery(c: Cluster):
    def reported():
        r = lfsck(c)
        return r if r.returncode == 1 and "recovering" not in r.stderr else None
    return wait_for(reported, timeout=60, interval=1, what="an lfsck after recovery")


# ---- the name check's reasoning -----------------------------------------------------------

P, Q = Fid(0x200000401, 1, 0), Fid(0x240000400, 7, 0)
F = Fid(0x240000400, 9, 0)


def view(index: int, stubs=(), rnames=(), pending=()) -> MdtView:
    return MdtView((), {}, (), frozenset(), index, tuple(stubs), tuple(rnames), tuple(pending))


def test_matching_sides_and_unchecked_mdts_are_no_suspects() -> None:
    stub, rname = CrossName(F, 1, P, b"d", "/d"), CrossName(F, 0, P, b"d")
    assert lfsck_names.suspects({0: view(0, [stub]), 1: view(1, rnames=[rname])}, [0, 1]) == ([], [])
    assert lfsck_names.suspects({0: view(0, [stub])}, [0, 1]) == ([], [])          # MDT1 not checked
    sus, _ = lfsck_names.suspects({0: view(0, [stub])}, [0])                     # no MDT1 at all
    assert [(s.kind, s.holder, s.other) for s in sus] == [(DANGLING, 0, 1)]


def test_an_operation_in_flight_explains_and_gives_a_note() -> None:
    rname = CrossName(F, 0, P, b"d")
    mkdir = Pending(5, "mkdir", None, ((P, b"d"),), (1,), 10)
    sus, notes = lfsck_names.suspects({0: view(0, pending=[mkdir]), 1: view(1, rnames=[rname])}, [0, 1])
    assert sus == [] and [(n.mdt, n.op.op_id) for n in notes] == [(0, 5)]
    other = Pending(6, "rmdir", Fid(0x240000400, 10, 0), ((P, b"e"),), (1,), 10)
    sus, notes = lfsck_names.suspects({0: view(0, pending=[other]), 1: view(1, rnames=[rname])}, [0, 1])
    assert [(s.kind, s.holder) for s in sus] == [(UNNAMED, 1)] and notes == []


def test_the_later_looks_confirm_or_drop() -> None:
    stub = CrossName(F, 1, P, b"d", "/d")
    sus, _ = lfsck_names.suspects({0: view(0, [stub]), 1: view(1)}, [0, 1])
    assert lfsck_names.first_asks(sus, [0, 1]) == {0: [], 1: [F]}
    assert lfsck_names.last_asks(sus, [0, 1]) == {0: [F], 1: []}
    held = {0: NamesNow(stubs=(stub,)), 1: NamesNow()}
    found, _ = lfsck_names.confirm(sus, {0: NamesNow(), 1: NamesNow()}, held, [0, 1], "fs")
    assert [(f.kind, f.mdt, f.fid, f.path, f.detail) for f in found] == [
        (DANGLING, 0, F, "/d", "its inode is not on fs-MDT0001")]
    matched = {0: NamesNow(), 1: NamesNow(remote_names=(CrossName(F, 0, P, b"d"),), inodes={F: "[x]"})}
    assert lfsck_names.confirm(sus, matched, held, [0, 1], "fs") == ([], [])        # made meanwhile
    assert lfsck_names.confirm(sus, {0: NamesNow(), 1: NamesNow()}, {0: NamesNow(), 1: NamesNow()},
                               [0, 1], "fs") == ([], [])                           # removed meanwhile
    rmdir = Pending(9, "rmdir", F, ((P, b"d"),), (1,), 10)
    found, notes = lfsck_names.confirm(sus, {0: NamesNow(pending=(rmdir,)), 1: NamesNow()}, held, [0, 1], "fs")
    assert found == [] and [n.op.op_id for n in notes] == [9]
    elsewhere = {0: NamesNow(), 1: NamesNow(remote_names=(CrossName(F, 0, Q, b"z"),), inodes={F: ""})}
    [f] = lfsck_names.confirm(sus, elsewhere, held, [0, 1], "fs")[0]
    assert f.detail == f"fs-MDT0001 has its inode but not this name of it (it names it 'z' in {Q} on fs-MDT0000)"


def test_paths_from_other_mdts_resolve() -> None:
    known = lfsck_names.anchors([view(0, [CrossName(F, 1, P, b"far", "/far")]),
                                 view(1, [CrossName(Q, 0, F, b"back", f"[{F.seq:#x}:{F.oid:#x}:0x0]/back")])])
    assert lfsck_names.resolve(f"{Q}/x/y", known) == "/far/back/x/y"
    assert lfsck_names.resolve("/plain", known) == "/plain"
    assert lfsck_names.resolve(f"{P}/z", known) == f"{P}/z"



def test_lines_name_the_mdt() -> None:
    o = Finding(ORPHAN, 1, (1 << 40) + 5, size=3, mtime_ns=0, mdt=1)
    assert line(o, "fs", several=True) == (f"orphan fs-OST0001 object {(1 << 40) + 5}: 3 bytes, modified "
                                           "1970-01-01 00:00:00 UTC, no file of fs-MDT0001 uses it")
    assert line(Finding(SIZE, fid=F, path="/far/a", mdt_size=5, size=9, mdt=1), "fs", several=True) == (
        f"size /far/a {F}: fs-MDT0001 records 5 bytes, its objects say 9")
    assert line(Finding(MDT, detail="root directory missing", mdt=1), "fs") == "mdt fs-MDT0001: root directory missing"
    assert line(Finding(UNCHECKED, mdt=1, detail="fs-MDT0001 at h:1: cannot reach it"), "fs") == (
        "unchecked fs-MDT0001 at h:1: cannot reach it; its files and objects were not checked")
    u = Finding(UNNAMED, fid=F, path="/far", detail="on fs-MDT0000, which has no such name of it", mdt=1)
    assert line(u, "fs") == f"unnamed fs-MDT0001 {F}: named /far on fs-MDT0000, which has no such name of it"
    d = Finding(DANGLING, fid=F, path="/far", detail="its inode is not on fs-MDT0001")
    assert line(d, "fs", several=True) == f"dangling fs-MDT0000 /far {F}: its inode is not on fs-MDT0001"
    rm = Pending(4, "rmdir", F, ((P, b"d"),), (1,), 0)
    assert note_line(lfsck_names.Note(0, rm), "fs") == (
        f"note fs-MDT0000: rmdir of 'd' in {P} ({F}) across MDTs (operation 4, logged 1970-01-01 00:00:00 UTC) "
        "is not finished yet; its names may disagree between MDTs until it is")
