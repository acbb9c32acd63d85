"""The pure byte-range structures of the data path: SegmentMap, ReadCache and the wire shaping helpers."""

from __future__ import annotations

import random

from lustrepy.client.datacache import ObjectData, ReadCache, Segment, SegmentMap, split_streams, write_messages

MiB = 1 << 20


def _model_check(m: SegmentMap, model: dict[int, int]) -> None:
    got: dict[int, int] = {}
    prev_end = -1
    for seg in m:
        assert seg.start >= prev_end and len(seg.data) > 0       # sorted, non-overlapping, no empty runs
        prev_end = seg.end
        for i, b in enumerate(bytes(seg.data)):
            got[seg.start + i] = b
    assert got == model
    assert m.nbytes == len(model)
    assert m.max_end == (max(model) + 1 if model else 0)


def test_segment_map_matches_a_byte_model_under_random_puts_and_drops():
    rnd = random.Random(7)
    m = SegmentMap()
    model: dict[int, int] = {}
    for step in range(600):
        a = rnd.randrange(0, 400)
        n = rnd.randrange(1, 60)
        op = rnd.random()
        if op < 0.6:
            data = bytes(rnd.randrange(256) for _ in range(n))
            m.put(a, data)
            for i, b in enumerate(data):
                model[a + i] = b
        elif op < 0.8:
            data = bytes(rnd.randrange(256) for _ in range(n))
            m.put_under(a, data)
            for i, b in enumerate(data):
                model.setdefault(a + i, b)
        else:
            m.drop(a, a + n)
            for i in range(a, a + n):
                model.pop(i, None)
        if step % 50 == 0:
            _model_check(m, model)
            lo, hi = sorted((rnd.randrange(0, 460), rnd.randrange(0, 460)))
            for p in m.pieces(lo, hi):
                assert lo <= p.start and p.end <= hi
                assert all(model[p.start + i] == b for i, b in enumerate(bytes(p.data)))
    _model_check(m, model)


def test_segment_map_keeps_callers_bytes_without_copying():
    m = SegmentMap()
    big = bytes(range(256)) * 4096
    m.put(0, big)
    assert next(iter(m)).data is big                    # stored by reference
    m.put(100, b"x" * 10)                               # cut: views of the same buffer
    segs = list(m)
    assert [s.start for s in segs] == [0, 100, 110]
    assert bytes(segs[0].data) == big[:100] and bytes(segs[2].data) == big[110:]
    assert isinstance(segs[2].data, memoryview) and segs[2].data.obj is big


def test_take_with_keep_and_streaming_append():
    m = SegmentMap()
    for i in range(10):
        m.put(i * 10, bytes([i]) * 10)                  # appends
    assert len(m) == 10 and m.nbytes == 100
    taken = m.take(keep=lambda s: s.start >= 50)
    assert [s.start for s in taken] == [0, 10, 20, 30, 40]
    assert m.nbytes == 50 and m.min_start == 50
    assert [s.start for s in m.take()] == [50, 60, 70, 80, 90]
    assert not m and m.nbytes == 0


def test_read_cache_hits_only_when_fully_covered_and_evicts_oldest():
    c = ReadCache(limit=30)
    c.insert(0, b"a" * 10)
    c.insert(10, b"b" * 10)
    assert c.get(5, 15) == b"a" * 5 + b"b" * 5
    assert c.get(15, 25) is None                        # partly cached
    assert c.covered_until(0) == 20
    c.insert(20, b"c" * 10)
    c.insert(30, b"d" * 10)                             # over the limit: the first insertion goes
    assert c.get(0, 5) is None and c.get(10, 40) == b"b" * 10 + b"c" * 10 + b"d" * 10
    c.drop(12, 14)
    assert c.get(10, 20) is None and c.get(14, 20) == b"b" * 6
    whole = b"z" * 8
    c.insert(100, whole)
    assert c.get(100, 108) is whole


def test_write_messages_join_small_runs_and_keep_big_ones():
    big = b"B" * (2 * MiB)
    huge = b"H" * (9 * MiB)
    segs = [Segment(0, b"a" * 100), Segment(100, b"b" * 100), Segment(300, b"c" * 10),
            Segment(4 * MiB, big), Segment(16 * MiB, memoryview(huge))]
    msgs = write_messages(segs, msg_min=MiB, msg_max=4 * MiB)
    assert [(o, len(d)) for o, d in msgs] == [(0, 200), (300, 10), (4 * MiB, 2 * MiB), (16 * MiB, 4 * MiB),
                                             (20 * MiB, 4 * MiB), (24 * MiB, MiB)]
    assert msgs[2][1] is big                            # whole bytes go uncopied
    assert all(isinstance(d, bytes) for _, d in msgs)
    assert msgs[0][1] == b"a" * 100 + b"b" * 100


def test_split_streams_cuts_large_runs():
    segs = [Segment(0, b"x" * 3), Segment(3, b"y" * 3), Segment(10, b"z" * 10)]
    groups = split_streams(segs, stream_max=4)
    assert [[(s.start, len(s.data)) for s in g] for g in groups] == \
        [[(0, 3)], [(3, 3)], [(10, 4)], [(14, 4)], [(18, 2)]]


def test_object_data_views_without_copy_and_pads_holes_with_zeros():
    c1, c2 = b"1" * 10, b"2" * 10
    od = ObjectData(100, [c1, c2])
    assert od.view(100, 10) is c1
    v = od.view(102, 5)
    assert isinstance(v, memoryview) and bytes(v) == b"1" * 5
    assert bytes(od.view(105, 10)) == b"1" * 5 + b"2" * 5
    assert bytes(od.view(115, 10)) == b"2" * 5 + bytes(5)          # past the object's end: zeros
    assert od.view(200, 4) == bytes(4)
    assert ObjectData(0, []).view(0, 3) == bytes(3)
