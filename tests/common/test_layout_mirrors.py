"""Mirrored layouts (lustrepy.common.layout): validation, their xattr form, their stored form and
their wire form, which must agree."""

from __future__ import annotations

import json

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.layout import Layout, Mirror, StripeObject, decode_lov, encode_lov, mirror_of
from lustrepy.mds.schema import layout_from_db, layout_to_db
from lustrepy.rpc.convert import layout_from_pb, layout_to_pb


def raid0(*objs: tuple[int, int]) -> Layout:
    return Layout(stripe_count=len(objs), objects=tuple(StripeObject(i, o) for i, o in objs))


FILE = Layout(mirror_count=2, generation=3, mirrors=(Mirror(1, raid0((0, 5), (1, 7))),
                                                     Mirror(2, raid0((2, 9), (3, 4)), stale=True)))


def test_a_mirrored_layout_names_every_object_and_its_in_sync_mirrors() -> None:
    FILE.check()
    assert FILE.mirrored and FILE.has_objects and not FILE.objects
    assert FILE.all_objects() == (StripeObject(0, 5), StripeObject(1, 7), StripeObject(2, 9), StripeObject(3, 4))
    assert [m.mirror_id for m in FILE.in_sync()] == [1]
    assert mirror_of(FILE, 2).stale
    with pytest.raises(LpError):
        mirror_of(FILE, 7)
    plain = raid0((1, 1))
    assert [m.mirror_id for m in plain.components()] == [0] and plain.all_objects() == plain.objects


@pytest.mark.parametrize("bad", [
    Layout(mirror_count=5),
    Layout(mirror_count=-1),
    Layout(mirrors=(Mirror(1, raid0((0, 1))), Mirror(1, raid0((1, 1))))),          # the same id twice
    Layout(mirrors=(Mirror(0, raid0((0, 1))),)),                                       # ids start at 1
    Layout(mirrors=(Mirror(1, raid0((0, 1))), Mirror(2, raid0((0, 1))))),          # one object in two
    Layout(mirrors=(Mirror(1, Layout(stripe_count=1)),)),                              # a mirror with no objects
    Layout(objects=(StripeObject(0, 1),), stripe_count=1, mirrors=(Mirror(1, raid0((1, 1))),)),
])
def test_malformed_mirrored_layouts_are_refused(bad: Layout) -> None:
    with pytest.raises(LpError):
        bad.check()


def test_the_three_forms_agree() -> None:
    assert layout_from_db(layout_to_db(FILE)) == FILE
    assert layout_from_pb(layout_to_pb(FILE)) == FILE
    d = json.loads(encode_lov(FILE))
    assert [(m["id"], m["state"], m["objects"]) for m in d["mirrors"]] == [
        (1, "in_sync", [[0, 5], [1, 7]]), (2, "stale", [[2, 9], [3, 4]])]
    asked = decode_lov(encode_lov(Layout(stripe_count=2, mirror_count=2)))
    assert asked.mirror_count == 2 and not asked.mirrors          # objects are never taken from input
    with pytest.raises(LpError):
        decode_lov(b'{"stripe_size":1048576,"stripe_count":1,"mirror_count":9}')
