"""Byte ranges of file data on the client, and shaping them for the wire.

A SegmentMap holds non-overlapping runs of bytes keyed by offset; a newer
`put` wins over what it overlaps, `put_under` only fills gaps (older data
coming back after a failed send). Data is kept by reference: a caller's
`bytes` is stored as it is and cut with memoryviews, so buffering a write
copies nothing. ReadCache is a bounded SegmentMap for read-ahead, in file
offsets, evicting what was inserted first. write_messages / split_streams
cut dirty runs into Write messages and streams; ObjectData gives views of
what a Read stream returned.

Pure structures: no I/O, no threads, no locks (the owner serialises calls),
no knowledge of layouts or of what the offsets mean. Never mutates a buffer
it was given.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

Buf = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Segment:
    """`data` lives at [start, start + len(data))."""

    start: int
    data: Buf

    @property
    def end(self) -> int:
        return self.start + len(self.data)


def _cut(data: Buf, a: int, b: int | None = None) -> Buf:
    """data[a:b] without copying bytes."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    return mv[a:b]


class SegmentMap:
    """Non-overlapping byte runs sorted by offset; `nbytes` is the total they hold."""

    __slots__ = ("_segs", "_starts", "nbytes")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._segs: list[Segment] = []
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._segs)

    def __bool__(self) -> bool:
        return bool(self._segs)

    def __iter__(self) -> Iterator[Segment]:
        return iter(list(self._segs))

    @property
    def max_end(self) -> int:
        """The end of the last run (0 when empty)."""
        return self._segs[-1].end if self._segs else 0

    @property
    def min_start(self) -> int:
        return self._segs[0].start if self._segs else 0

    # -- changes -------------------------------------------------------------

    def put(self, start: int, data: Buf) -> None:
        """Store data at start; it replaces whatever it overlaps."""
        n = len(data)
        if n == 0:
            return
        segs = self._segs
        if not segs or start >= segs[-1].end:          # the streaming case: append
            self._starts.append(start)
            segs.append(Segment(start, data))
            self.nbytes += n
            return
        i, j, new = self._carve(start, start + n)
        new.insert(self._insert_at(new, start), Segment(start, data))
        self.nbytes += n
        self._replace(i, j, new)

    def drop(self, start: int, end: int) -> None:
        """Forget every byte in [start, end)."""
        if end <= start or not self._segs:
            return
        i, j, new = self._carve(start, end)
        if i != j:
            self._replace(i, j, new)

    def put_under(self, start: int, data: Buf) -> None:
        """Store only the parts of data that fall in gaps (existing bytes are newer and stay)."""
        end = start + len(data)
        pos = start
        gaps: list[tuple[int, int]] = []
        for seg in self._overlapping(start, end):
            if seg.start > pos:
                gaps.append((pos, seg.start))
            pos = max(pos, seg.end)
        if pos < end:
            gaps.append((pos, end))
        for a, b in gaps:
            self.put(a, data if (a, b) == (start, end) else _cut(data, a - start, b - start))

    def take(self, keep: Callable[[Segment], bool] | None = None) -> list[Segment]:
        """Remove and return runs in offset order: all of them, or those `keep(seg)` is False for."""
        if keep is None:
            out = self._segs
            self._starts, self._segs, self.nbytes = [], [], 0
            return out
        stay: list[Segment] = []
        out = []
        for seg in self._segs:
            (stay if keep(seg) else out).append(seg)
        if out:
            self._segs = stay
            self._starts = [s.start for s in stay]
            self.nbytes -= sum(len(s.data) for s in out)
        return out

    def clear(self) -> None:
        self._starts, self._segs, self.nbytes = [], [], 0

    # -- queries -------------------------------------------------------------

    def pieces(self, start: int, end: int) -> list[Segment]:
        """The stored bytes inside [start, end), clipped, in offset order (gaps are simply absent)."""
        out: list[Segment] = []
        for seg in self._overlapping(start, end):
            a, b = max(seg.start, start), min(seg.end, end)
            if a == seg.start and b == seg.end:
                out.append(seg)
            else:
                out.append(Segment(a, _cut(seg.data, a - seg.start, b - seg.start)))
        return out

    def overlaps(self, start: int, end: int) -> bool:
        for _ in self._overlapping(start, end):
            return True
        return False

    # -- internals -------------------------------------------------------------

    def _first_index(self, start: int) -> int:
        """Index of the first run that ends after `start`."""
        i = bisect_right(self._starts, start) - 1
        if i < 0:
            return 0
        return i if self._segs[i].end > start else i + 1

    def _overlapping(self, start: int, end: int) -> Iterator[Segment]:
        segs = self._segs
        i = self._first_index(start)
        while i < len(segs) and segs[i].start < end:
            yield segs[i]
            i += 1

    def _carve(self, start: int, end: int) -> tuple[int, int, list[Segment]]:
        """Runs [i, j) overlap [start, end); returns them cut down to what lies outside it."""
        segs = self._segs
        i = j = self._first_index(start)
        kept: list[Segment] = []
        while j < len(segs) and segs[j].start < end:
            seg = segs[j]
            self.nbytes -= len(seg.data)
            if seg.start < start:
                kept.append(Segment(seg.start, _cut(seg.data, 0, start - seg.start)))
            if seg.end > end:
                kept.append(Segment(end, _cut(seg.data, end - seg.start)))
            j += 1
        self.nbytes += sum(len(s.data) for s in kept)
        return i, j, kept

    @staticmethod
    def _insert_at(new: list[Segment], start: int) -> int:
        return sum(1 for s in new if s.start < start)

    def _replace(self, i: int, j: int, new: list[Segment]) -> None:
        self._segs[i:j] = new
        self._starts[i:j] = [s.start for s in new]


class ReadCache:
    """Read-ahead data in file offsets, at most `limit` bytes, oldest insertions evicted first."""

    __slots__ = ("_map", "_order", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._map = SegmentMap()
        self._order: deque[tuple[int, int]] = deque()

    @property
    def nbytes(self) -> int:
        return self._map.nbytes

    def insert(self, start: int, data: Buf) -> None:
        if not len(data):
            return
        self._map.put(start, data)
        self._order.append((start, start + len(data)))
        while self._map.nbytes > self.limit and self._order:
            a, b = self._order.popleft()
            self._map.drop(a, b)

    def get(self, start: int, end: int) -> bytes | None:
        """The bytes of [start, end) if all of it is cached, else None."""
        pieces = self._map.pieces(start, end)
        pos = start
        for p in pieces:
            if p.start != pos:
                return None
            pos = p.end
        if pos < end:
            return None
        if len(pieces) == 1:
            d = pieces[0].data
            return d if isinstance(d, bytes) else bytes(d)
        return b"".join(p.data for p in pieces)

    def covered_until(self, start: int) -> int:
        """How far from `start` the cache holds contiguous bytes (start itself when none)."""
        pos = start
        for p in self._map.pieces(start, 1 << 63):
            if p.start != pos:
                break
            pos = p.end
        return pos

    def drop(self, start: int, end: int) -> None:
        self._map.drop(start, end)

    def clear(self) -> None:
        self._map.clear()
        self._order.clear()


# -- shaping bytes for the wire ----------------------------------------------------------


def write_messages(segs: list[Segment], msg_min: int, msg_max: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) messages for a Write stream: runs of at least msg_min go as they are (cut
    at msg_max), smaller adjacent runs are joined up to msg_max. A whole `bytes` run is not copied."""
    out: list[tuple[int, bytes]] = []
    run: list[Buf] = []
    run_start = run_len = 0

    def end_run() -> None:
        if run:
            out.append((run_start, run[0] if len(run) == 1 and isinstance(run[0], bytes) else b"".join(run)))
            run.clear()

    for seg in segs:
        d, n = seg.data, len(seg.data)
        if n >= msg_min:
            end_run()
            if n <= msg_max:
                out.append((seg.start, d if isinstance(d, bytes) else bytes(d)))
            else:
                mv = _cut(d, 0)
                for a in range(0, n, msg_max):
                    out.append((seg.start + a, bytes(mv[a:a + msg_max])))
            continue
        if run and run_start + run_len == seg.start and run_len + n <= msg_max:
            run.append(d)
            run_len += n
        else:
            end_run()
            run.append(d)
            run_start, run_len = seg.start, n
    end_run()
    return out


def split_streams(segs: list[Segment], stream_max: int) -> list[list[Segment]]:
    """Cut runs (in offset order) into groups of about stream_max bytes, one Write stream each."""
    groups: list[list[Segment]] = []
    cur: list[Segment] = []
    size = 0
    for seg in segs:
        n = len(seg.data)
        if n > stream_max:
            if cur:
                groups.append(cur)
                cur, size = [], 0
            for a in range(0, n, stream_max):
                groups.append([Segment(seg.start + a, _cut(seg.data, a, a + stream_max))])
            continue
        if cur and size + n > stream_max:
            groups.append(cur)
            cur, size = [], 0
        cur.append(seg)
        size += n
    if cur:
        groups.append(cur)
    return groups


class ObjectData:
    """What a Read stream returned for object bytes [start, ...): the messages, kept as they came.

    `view(off, n)` gives object bytes [off, off+n) without copying when they lie in one message,
    with zeros past the end of the data (a hole, or beyond the object's end).
    """

    __slots__ = ("_chunks", "_starts", "end", "start")

    def __init__(self, start: int, chunks: Sequence[Buf]) -> None:
        self.start = start
        self._chunks = chunks
        self._starts: list[int] = []
        pos = start
        for c in chunks:
            self._starts.append(pos)
            pos += len(c)
        self.end = pos

    def view(self, off: int, n: int) -> Buf:
        if n <= 0:
            return b""
        if off >= self.end or off < self.start:
            return bytes(n)
        i = bisect_right(self._starts, off) - 1
        c, cs = self._chunks[i], self._starts[i]
        if off + n <= cs + len(c):
            if off == cs and n == len(c):
                return c
            return memoryview(c)[off - cs:off - cs + n]
        parts: list[Buf] = []
        pos, stop = off, off + n
        while pos < stop and i < len(self._chunks):
            c, cs = self._chunks[i], self._starts[i]
            a, b = pos - cs, min(len(c), stop - cs)
            parts.append(memoryview(c)[a:b])
            pos = cs + b
            i += 1
        if pos < stop:
            parts.append(bytes(stop - pos))
        return b"".join(parts)
