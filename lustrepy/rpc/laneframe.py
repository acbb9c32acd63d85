"""The request lane's frames on a socket, plain or TLS: reading one, sending one from buffers.

A frame is a header (message length u32, data length u32, method u16, tag u64,
network order), the protobuf message, then its data. A plain socket sends a
frame's buffers with sendmsg as they are; TLS has no sendmsg, so small buffers
are joined and large ones sent one by one. With `waits` (code on the trio
thread) the socket is non-blocking and waits through trio for what it, or its
TLS layer, needs.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Callable

from lustrepy.rpc.inline import LoopWaits

HEADER = struct.Struct("!IIHQ")     # message length, data length, method, tag
MAX_PAYLOAD = 64 * 1024 * 1024      # a frame's protobuf message
MAX_DATA = 64 * 1024 * 1024         # a frame's data
MAX_PARTS = 512                     # buffers per sendmsg (the kernel takes at most IOV_MAX, 1024)

Buf = bytes | bytearray | memoryview


def recv_into(sock: socket.socket, view: memoryview, waits: LoopWaits | None = None) -> None:
    """Fill view from sock; with `waits`, sock is non-blocking and waits.readable waits for more."""
    got, n = 0, len(view)
    while got < n:
        try:
            k = sock.recv_into(view[got:], n - got)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
            if waits is None:
                raise
            _wait(waits, sock, e)
            continue
        if k == 0:
            raise ConnectionError("connection closed")
        got += k


def fresh(n: int) -> memoryview:
    return memoryview(bytearray(n))


@dataclass(frozen=True, slots=True)
class Frame:
    method: int
    tag: int
    payload: bytes                      # the protobuf message
    data: memoryview                    # the bulk bytes after it (empty for most methods)


_NO_DATA = memoryview(b"")


def read_frame(sock: socket.socket, waits: LoopWaits | None = None,
                into: Callable[[int], memoryview] = fresh) -> Frame:
    """The next frame; its data lands in into(n), a fresh buffer unless the caller keeps one."""
    head = fresh(HEADER.size)
    recv_into(sock, head, waits)
    length, dlen, method, tag = HEADER.unpack(head)
    if length > MAX_PAYLOAD or dlen > MAX_DATA:
        raise ValueError(f"frame of {length} + {dlen} bytes")
    payload = b""
    if length:
        pv = fresh(length)
        recv_into(sock, pv, waits)
        payload = pv.tobytes()
    data = _NO_DATA
    if dlen:
        data = into(dlen)
        recv_into(sock, data, waits)
    return Frame(method, tag, payload, data)


def _wait(waits: LoopWaits, sock: socket.socket, e: OSError) -> None:
    """Wait through trio for what a non-blocking read (or its TLS layer) said it needs."""
    if isinstance(e, ssl.SSLWantWriteError):
        waits.writable(sock)
    else:
        waits.readable(sock)


TLS_RUN = 256 * 1024      # TLS: smaller buffers are joined up to this, so a record is not sent per buffer


def _send_tls(sock: ssl.SSLSocket, views: list[memoryview], waits: LoopWaits | None) -> None:
    """TLS has no sendmsg: runs of small buffers are joined, large ones sent as they are."""
    chunks: list[memoryview] = []
    run: list[memoryview] = []
    size = 0
    for v in views:
        if len(v) >= TLS_RUN:
            if run:
                chunks.append(memoryview(b"".join(run)))
                run, size = [], 0
            chunks.append(v)
            continue
        run.append(v)
        size += len(v)
        if size >= TLS_RUN:
            chunks.append(memoryview(b"".join(run)))
            run, size = [], 0
    if run:
        chunks.append(memoryview(b"".join(run)) if len(run) > 1 else run[0])
    for c in chunks:
        while len(c):
            try:
                c = c[sock.send(c):]
            except ssl.SSLWantReadError:
                if waits is None:
                    raise
                waits.readable(sock)
            except (ssl.SSLWantWriteError, BlockingIOError):
                if waits is None:
                    raise
                waits.writable(sock)


def send_parts(sock: socket.socket, parts: list[Buf], waits: LoopWaits | None) -> None:
    """Send every buffer of parts, in order, without joining them (sendmsg, resumed after a short send)."""
    views = [v for v in (memoryview(p).cast("B") for p in parts) if len(v)]
    if isinstance(sock, ssl.SSLSocket):
        _send_tls(sock, views, waits)
        return
    while views:
        try:
            n = sock.sendmsg(views[:MAX_PARTS])
        except BlockingIOError:
            if waits is None:
                raise
            waits.writable(sock)
            continue
        while n:
            if n >= len(views[0]):
                n -= len(views.pop(0))
            else:
                views[0] = views[0][n:]
                n = 0


def frame(method: int, tag: int, payload: bytes, dlen: int = 0) -> bytes:
    """A frame's header and message; its `dlen` bytes of data are sent after them."""
    return HEADER.pack(len(payload), dlen, method, tag) + payload
