"""The layout check's reasoning (ctl/lfsck_check.py), pure: which disagreements between the MDT's
snapshot and the OSTs' listings are suspects, which the MDS's present view confirms, and how a
finding reads as a line."""

from __future__ import annotations

from lustrepy.common.fid import Fid
from lustrepy.common.layout import StripeObject
from lustrepy.common.lfsckrec import FileObjects, FileState, ObjectState, Pool
from lustrepy.ctl.lfsck import line
from lustrepy.ctl.lfsck_check import MISSING, ORPHAN, SIZE, Finding, confirm, suspects
from lustrepy.ctl.lfsckq import MdtView, OstObject, OstView

MiB = 1 << 20
A, B = Fid(0x200000401, 1, 0), Fid(0x200000401, 2, 0)


def ost(index: int, *objs: tuple[int, int]) -> OstView:
    return OstView(index, {oid: OstObject(oid, size, size // 512, 10**18) for oid, size in objs}, 1000)


def view(files: tuple[FileObjects, ...], queued: frozenset[StripeObject] = frozenset(),
         nexts: dict[int, int] | None = None) -> MdtView:
    nexts = nexts or {0: 100, 1: 100}
    return MdtView((), {i: Pool(i, n, n + 50) for i, n in nexts.items()}, files, queued)


def striped(fid: Fid, size: int, valid: bool = True) -> FileObjects:
    return FileObjects(fid, MiB, (StripeObject(0, 10), StripeObject(1, 20)), size, valid)


def test_agreement_is_no_suspect() -> None:
    f = striped(A, 3 * MiB)
    s = suspects(view((f,)), {0: ost(0, (10, 2 * MiB)), 1: ost(1, (20, MiB))})
    assert s.orphans == () and s.missing == () and s.sizes == ()


def test_orphans_exclude_precreated_and_queued_objects() -> None:
    f = striped(A, 0)
    queued = frozenset({StripeObject(0, 11)})
    s = suspects(view((f,), queued, nexts={0: 13, 1: 100}),
                 {0: ost(0, (10, 0), (11, 5), (12, 7), (13, 0), (500, 0)), 1: ost(1, (20, 0))})
    assert [o for o, _ in s.orphans] == [StripeObject(0, 12)]       # 11 queued, 13 and up precreated


def test_an_ost_without_a_pool_has_handed_out_nothing() -> None:
    s = suspects(view((), nexts={0: 100}), {0: ost(0, (5, 0)), 1: ost(1, (6, 0))})
    assert [o for o, _ in s.orphans] == [StripeObject(0, 5)]


def test_missing_object_counts_as_empty_for_the_size() -> None:
    f = striped(A, 3 * MiB)
    s = suspects(view((f,)), {0: ost(0, (10, 2 * MiB)), 1: ost(1)})
    assert s.missing == ((f, 1),) and s.sizes == ()          # stripe 0 still reaches 3 MiB
    g = striped(B, 3 * MiB)
    s = suspects(view((g,)), {0: ost(0), 1: ost(1, (20, MiB))})
    assert s.missing == ((g, 0),) and s.sizes == ((g, 2 * MiB, MiB // 512),)


def test_sizes_only_where_the_mdt_records_one_and_unlisted_osts_are_not_judged() -> None:
    f = striped(A, 5, valid=False)
    assert suspects(view((f,)), {0: ost(0, (10, 7)), 1: ost(1, (20, 0))}).sizes == ()
    g = striped(B, 5)
    s = suspects(view((g,)), {0: ost(0)})
    assert s.missing == () and s.sizes == () and s.orphans == ()


def test_confirm_keeps_only_what_is_still_true() -> None:
    f, g = striped(A, 3 * MiB), FileObjects(B, MiB, (StripeObject(0, 11),), 7, True)
    s = suspects(view((f, g)), {0: ost(0, (10, 2 * MiB), (30, 9), (40, 9)), 1: ost(1)})
    assert len(s.orphans) == 2 and len(s.missing) == 2 and len(s.sizes) == 1
    objects = {
        StripeObject(0, 30): ObjectState(StripeObject(0, 30), None, 0, False, True),
        StripeObject(0, 40): ObjectState(StripeObject(0, 40), None, 0, True, True),      # queued since
        StripeObject(1, 20): ObjectState(StripeObject(1, 20), A, 1, False, True),
        StripeObject(0, 11): ObjectState(StripeObject(0, 11), None, 0, True, True),      # g unlinked since
    }
    files = {A: FileState(A, f, "/a"), B: FileState(B, None, "")}
    found = confirm(s, objects, files)
    assert [(x.kind, x.ost, x.object_id) for x in found] == [(ORPHAN, 0, 30), (MISSING, 1, 20)]
    assert found[1].path == "/a" and found[1].fid == A and found[1].stripe == 1


def test_a_size_changed_since_the_snapshot_is_no_finding() -> None:
    f = FileObjects(A, MiB, (StripeObject(0, 10),), 5, True)
    s = suspects(view((f,)), {0: ost(0, (10, 9))})
    assert confirm(s, {}, {A: FileState(A, f, "/a")})[0].kind == SIZE
    closed = FileObjects(A, MiB, (StripeObject(0, 10),), 9, True)
    assert confirm(s, {}, {A: FileState(A, closed, "/a")}) == []


def test_lines() -> None:
    f = Finding(SIZE, fid=A, path="/d/a", mdt_size=5, size=9)
    assert line(f, "fs") == f"size /d/a {A}: the MDT records 5 bytes, its objects say 9"
    o = Finding(ORPHAN, 1, 77, size=3, mtime_ns=0, repaired=False, repair="kept")
    assert line(o, "fs") == ("orphan fs-OST0001 object 77: 3 bytes, modified 1970-01-01 00:00:00 UTC, "
                             "no file uses it: not repaired: kept")
    m = Finding(MISSING, 0, 5, B, "", 2)
    assert line(m, "fs") == f"missing fs-OST0000 object 5: stripe 2 of (no name left) {B}"
