"""The striping layer of the client (Lustre's lov): where file bytes live in a RAID0 layout's objects.

Byte `off` of a file lives in stripe `(off // stripe_size) % stripe_count`, at
object offset `(off // (stripe_size * stripe_count)) * stripe_size + off % stripe_size`.
`split_range` / `per_object_ranges` cut a file range into object ranges, the
size functions map an object's size to the file's and back, `fan_out`
runs one call per object in parallel on an executor its caller owns,
`read_striped` reads a file range from every object it touches that way and
`assemble` joins the pieces (with the caller's unsent bytes laid over them).

Pure functions but for `fan_out` and `read_striped`, which wait for their
executor's work with a deadline; owns no thread and no state, and makes no
RPC but through the objects' Osc it is handed.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol, TypeVar

from lustrepy.client.datacache import Buf, ObjectData
from lustrepy.common.errors import BadData, LpError
from lustrepy.common.layout import Layout
from lustrepy.common.layout import file_size_from_object as file_size_from_object  # re-exported: the client imports it here

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class ObjectFailed(LpError):
    """An RPC about one object failed: the error (same errno), the object, and whether the
    operation was to change it (a mirrored file's writer then gives the mirror up)."""

    def __init__(self, e: LpError, obj: object, write: bool) -> None:
        super().__init__(e.errno, e.message)
        self.obj = obj
        self.write = write
        self.bad_data = isinstance(e, BadData)     # the OST holds bytes that fail their checksum

    @staticmethod
    def of(e: LpError, obj: object, write: bool) -> ObjectFailed:
        return e if isinstance(e, ObjectFailed) else ObjectFailed(e, obj, write)


def on_object(obj: object, write: bool, fn: Callable[..., T], *args: object) -> T:
    """fn(*args), its LpError raised as ObjectFailed naming `obj`."""
    try:
        return fn(*args)
    except LpError as e:
        raise ObjectFailed.of(e, obj, write) from None


def stripe_of(layout: Layout, off: int) -> tuple[int, int]:
    """File offset -> (stripe index, object offset)."""
    ss, sc = layout.stripe_size, len(layout.objects) or layout.stripe_count
    return (off // ss) % sc, (off // (ss * sc)) * ss + off % ss


@dataclass(frozen=True, slots=True)
class Piece:
    """A contiguous run of file bytes that lives contiguously in one object."""

    stripe: int
    file_offset: int
    object_offset: int
    length: int


def split_range(layout: Layout, off: int, length: int) -> Iterator[Piece]:
    """Cut [off, off+length) into pieces, one per stripe-unit crossing."""
    ss = layout.stripe_size
    end = off + length
    while off < end:
        stripe, obj_off = stripe_of(layout, off)
        n = min(end, (off // ss + 1) * ss) - off
        yield Piece(stripe, off, obj_off, n)
        off += n


def per_object_ranges(layout: Layout, off: int, length: int) -> dict[int, list[Piece]]:
    """Pieces of [off, off+length) grouped by stripe; pieces of one stripe are
    contiguous in object space, so each group is one object range."""
    out: dict[int, list[Piece]] = {}
    for p in split_range(layout, off, length):
        out.setdefault(p.stripe, []).append(p)
    return out


def object_size_for_file(layout: Layout, stripe: int, file_size: int) -> int:
    """How long object `stripe` is when the file is truncated to `file_size`."""
    if file_size == 0:
        return 0
    ss, sc = layout.stripe_size, len(layout.objects) or layout.stripe_count
    full_rows, rest = divmod(file_size, ss * sc)
    size = full_rows * ss
    rest -= stripe * ss
    if rest > 0:
        size += min(rest, ss)
    return size


def fan_out(pool: Executor, fn: Callable[[T], R], items: Sequence[T], timeout: float) -> list[R]:
    """fn over items in parallel (the first in the calling thread, the others on `pool`); results in order.

    Waits for every item (all of them within `timeout` seconds), then raises the first failure.
    """
    if len(items) == 1:
        return [fn(items[0])]
    try:
        futs: list[Future[R]] = [pool.submit(fn, it) for it in items[1:]]
    except RuntimeError:
        raise LpError(errno.ESHUTDOWN, "data path closed") from None
    results: list[R] = []
    first_err: BaseException | None = None
    try:
        results.append(fn(items[0]))
    except BaseException as e:          # noqa: BLE001 - re-raised below, after the others finish
        first_err = e
    deadline = time.monotonic() + timeout
    for f in futs:
        try:
            results.append(f.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            first_err = first_err or LpError(errno.ETIMEDOUT, "parallel object I/O did not finish in time")
        except BaseException as e:      # noqa: BLE001
            first_err = first_err or e
    if first_err is not None:
        raise first_err
    return results


class _Reader(Protocol):
    def read(self, object_id: int, offset: int, length: int, chunk_size: int = 0) -> Sequence[Buf]: ...


class StripeObject(Protocol):
    """One object of a file as the striped read sees it (extcache.ObjectLocks is one)."""

    @property
    def index(self) -> int: ...
    @property
    def oid(self) -> int: ...
    @property
    def osc(self) -> _Reader: ...


def read_striped(layout: Layout, stripes: Sequence[StripeObject], offset: int, end: int, chunk: int,
                 pool: Executor, timeout: float) -> list[tuple[int, Buf]]:
    """File bytes [offset, end) (within the file size) from every object involved, in parallel:
    contiguous (file offset, bytes) parts in file order."""
    jobs = []
    for si, ps in per_object_ranges(layout, offset, end - offset).items():
        a, b = ps[0].object_offset, ps[-1].object_offset + ps[-1].length
        jobs.append((si, stripes[si], a, b))

    def one(j: tuple[int, StripeObject, int, int]) -> ObjectData:
        _, st, a, b = j
        return ObjectData(a, on_object(st, False, st.osc.read, st.oid, a, b - a, chunk))

    datas = fan_out(pool, one, jobs, timeout)
    by_stripe = {j[0]: d for j, d in zip(jobs, datas, strict=True)}
    return [(p.file_offset, by_stripe[p.stripe].view(p.object_offset, p.length))
            for p in split_range(layout, offset, end - offset)]


def assemble(parts: list[tuple[int, Buf]], offset: int, end: int, overlay: list[tuple[int, Buf]]) -> bytes:
    """File bytes [offset, end) from contiguous parts, with the caller's unacknowledged bytes laid over them."""
    clipped: list[Buf] = []
    for off, buf in parts:
        a, b = max(off, offset), min(off + len(buf), end)
        if a >= b:
            continue
        clipped.append(buf if (a, b) == (off, off + len(buf)) else memoryview(buf)[a - off:b - off])
    if not overlay:
        if len(clipped) == 1:
            only = clipped[0]
            return only if isinstance(only, bytes) else bytes(only)
        return b"".join(clipped)
    out = bytearray(b"".join(clipped))
    for off, buf in overlay:
        a, b = max(off, offset), min(off + len(buf), end)
        if a < b:
            out[a - offset:b - offset] = memoryview(buf)[a - off:b - off]
    return bytes(out)


# ENOTCONN: connect again; EKEYEXPIRED: fetch new capabilities; EINPROGRESS: the OST has no
# capability keys from the MDS yet
_AGAIN = (errno.ENOTCONN, errno.EKEYEXPIRED, errno.EINPROGRESS)


# EKEYEXPIRED, EINPROGRESS only: what a background write-back stream tries again itself (its other
# failures are the write-back's to keep or report)
CAPA_AGAIN = (errno.EKEYEXPIRED, errno.EINPROGRESS)


def retry_reconnecting(what: object, timeout: float, fn: Callable[..., T], *args: object,
                       again: tuple[int, ...] = _AGAIN) -> T:
    """Run fn; after ENOTCONN (the OST restarted, or evicted us) run it again on a new
    connection, pausing between tries, until `timeout` has passed since the first; likewise
    after the other errors of `again`."""
    deadline, pause = time.monotonic() + timeout, 0.1
    while True:
        try:
            return fn(*args)
        except LpError as e:
            if e.errno not in again or time.monotonic() + pause > deadline:
                raise
            log.debug("%s: %s; trying again on a new connection", what, e)
        time.sleep(pause)
        pause = min(1.0, pause * 2)
