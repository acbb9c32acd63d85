"""The request lane: a gRPC service's unary requests carried on plain TCP connections.

A gRPC round trip costs this machine's Python about 0.4 ms of server CPU and
0.25 ms of client CPU; the same request framed on a plain socket and answered
by the thread that reads it costs about 0.03 ms each side (bench/README.md,
"The request lane"). The lane is set up and authorised through gRPC: the
server hands a client a token in its Connect reply, the client opens
connections to the lane port and presents it, and every connection is then
bound to that client's identity. The messages are the service's own protobuf
requests and replies; POSIX results travel in their headers as on gRPC.

Frames: a header (payload length u32, method u16, tag u64, network order) and
the payload. Method 0 is the hello (payload: the token, then the service's
method-table digest), method n > 0 the service's n-th unary method in the
order of its descriptor, ERROR a refusal (payload: one line of text). A reply
carries its request's method and tag.

Server: one thread per connection reads a request, runs its handler inline
and writes the reply; nothing is handed to another thread. Client: a pool of
connections, one per concurrent caller; a caller sends and reads its reply on
the connection it took, with the call's deadline as the socket timeout. Code
that rpc.inline runs on a trio thread takes non-blocking connections of a pool
of their own and waits for its reply through trio, until the same deadline.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from lustrepy.common.errors import LpError
from lustrepy.rpc import inline
from lustrepy.rpc.inline import LoopWaits

log = logging.getLogger(__name__)

HEADER = struct.Struct("!IHQ")
HELLO = 0
ERROR = 0xFFFF
MAX_PAYLOAD = 64 * 1024 * 1024
MAX_CONNECTIONS = 1024          # per server: past this a hello is refused (the client uses gRPC)
HELLO_TIMEOUT = 10.0


# The Mds methods clients send on the lane: everything but Connect and the admin and OSS calls.
MDS_LANE_METHODS = ("Disconnect", "Intent", "Reint", "Readdir", "Getxattr", "Listxattr", "Readlink", "Close",
                    "AllocSeq", "ReintBatch", "WbcInfo", "Sync", "Statfs", "Info")


class LaneRefused(LpError):
    """The server refused the hello (unknown token, restarted server, too many connections)."""


def method_table(service: ServiceDescriptor) -> tuple[list[str], bytes]:
    """The unary methods of a service in descriptor order, and a digest both ends compare."""
    names = [m.name for m in service.methods if not m.client_streaming and not m.server_streaming]
    digest = hashlib.sha256("\n".join(f"{m.name}({m.input_type.full_name})"
                                      for m in service.methods).encode()).digest()[:8]
    return names, digest


def messages(service: ServiceDescriptor, name: str) -> tuple[Any, Any]:
    """The request and reply classes of one method of a service."""
    m = service.methods_by_name[name]
    return message_factory.GetMessageClass(m.input_type), message_factory.GetMessageClass(m.output_type)


def _recv_exact(sock: socket.socket, n: int, waits: LoopWaits | None = None) -> bytes:
    """n bytes from sock; with `waits`, sock is non-blocking and waits.readable waits for more."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        try:
            k = sock.recv_into(view[got:], n - got)
        except BlockingIOError:
            if waits is None:
                raise
            waits.readable(sock)
            continue
        if k == 0:
            raise ConnectionError("connection closed")
        got += k
    return bytes(buf)


def _read_frame(sock: socket.socket, waits: LoopWaits | None = None) -> tuple[int, int, bytes]:
    length, method, tag = HEADER.unpack(_recv_exact(sock, HEADER.size, waits))
    if length > MAX_PAYLOAD:
        raise ValueError(f"frame of {length} bytes")
    return method, tag, _recv_exact(sock, length, waits) if length else b""


def _send_all(sock: socket.socket, data: bytes, waits: LoopWaits | None) -> None:
    if waits is None:
        sock.sendall(data)
        return
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            waits.writable(sock)


def _frame(method: int, tag: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), method, tag) + payload


# ---- server ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handler:
    request_cls: Any                         # the protobuf request class
    fn: Callable[[Any, str], Any]            # (request, peer identity) -> reply message


class LaneServer:
    """Serves a service's unary methods on a TCP port, a thread per authorised connection."""

    def __init__(self, name: str, service: ServiceDescriptor, handlers: Mapping[str, Handler]) -> None:
        self.name = name
        names, self.digest = method_table(service)
        self._handlers: dict[int, Handler] = {i + 1: handlers[n] for i, n in enumerate(names) if n in handlers}
        self._mu = threading.Lock()
        self._tokens: dict[bytes, str] = {}              # token -> peer identity
        self._token_of: dict[str, bytes] = {}            # peer -> its current token
        self._conns: dict[socket.socket, str] = {}       # open connections -> peer ("" before hello)
        self._sock: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = False
        self.port = 0

    def start(self, host: str, port: int = 0) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            s.close()
            raise LpError(errno.EADDRINUSE, f"lane cannot listen on {host}:{port}: {e.strerror}") from None
        s.listen(128)
        self._sock = s
        self.port = s.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name=f"lane-accept-{self.name}", daemon=True)
        self._acceptor.start()
        return self.port

    def stop(self) -> None:
        with self._mu:
            self._stopping = True
            conns = list(self._conns)
        if self._sock is not None:
            _shut(self._sock)
            self._sock.close()
        for c in conns:
            _shut(c)
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)

    # -- tokens ----------------------------------------------------------------------

    def issue(self, peer: str) -> bytes:
        """A new token for this peer (its previous one stops opening connections)."""
        token = secrets.token_bytes(16)
        with self._mu:
            old = self._token_of.pop(peer, None)
            if old is not None:
                self._tokens.pop(old, None)
            self._tokens[token] = peer
            self._token_of[peer] = token
        return token

    def revoke(self, peer: str, cut: bool = True) -> None:
        """The peer is gone: its token opens no more connections; with cut (an eviction) the open
        ones are cut too."""
        with self._mu:
            tok = self._token_of.pop(peer, None)
            if tok is not None:
                self._tokens.pop(tok, None)
            cut_now = [c for c, p in self._conns.items() if p == peer] if cut else []
        for c in cut_now:
            _shut(c)

    def connections(self) -> int:
        with self._mu:
            return len(self._conns)

    # -- connections -----------------------------------------------------------------

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                c, addr = self._sock.accept()
            except OSError as e:
                with self._mu:
                    if self._stopping:
                        return                      # stopped: the listening socket is shut
                log.warning("lane %s: accept: %s", self.name, e)    # out of descriptors: try again
                time.sleep(0.1)
                continue
            with self._mu:
                if self._stopping:
                    c.close()
                    return
                self._conns[c] = ""
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(c,), name=f"lane-{self.name}-{addr[1]}", daemon=True).start()

    def _hello(self, c: socket.socket) -> str | None:
        c.settimeout(HELLO_TIMEOUT)
        method, tag, payload = _read_frame(c)
        if method != HELLO:
            c.sendall(_frame(ERROR, tag, b"the first frame must be a hello"))
            return None
        token, digest = payload[:16], payload[16:]
        if digest != self.digest:
            c.sendall(_frame(ERROR, tag, b"the client speaks another version of the service"))
            return None
        with self._mu:
            peer = self._tokens.get(token)
            full = sum(1 for p in self._conns.values() if p) >= MAX_CONNECTIONS
            if peer is not None and not full:
                self._conns[c] = peer
        if peer is None:
            c.sendall(_frame(ERROR, tag, b"unknown lane token: connect again"))
            return None
        if full:
            c.sendall(_frame(ERROR, tag, b"too many lane connections"))
            return None
        c.sendall(_frame(HELLO, tag, b""))
        c.settimeout(None)
        return peer

    def _serve(self, c: socket.socket) -> None:
        try:
            peer = self._hello(c)
            while peer is not None:
                method, tag, payload = _read_frame(c)
                c.sendall(self._answer(method, tag, payload, peer))
        except (OSError, ConnectionError, ValueError, struct.error):
            pass                                    # the peer went, or sent garbage: drop the connection
        finally:
            with self._mu:
                self._conns.pop(c, None)
            c.close()

    def _answer(self, method: int, tag: int, payload: bytes, peer: str) -> bytes:
        h = self._handlers.get(method)
        if h is None:
            return _frame(ERROR, tag, f"no method {method} on the lane".encode())
        try:
            req = h.request_cls.FromString(payload)
        except Exception:  # a payload protobuf cannot parse: refused, the connection stays
            return _frame(ERROR, tag, b"undecodable request")
        try:
            rep = h.fn(req, peer)
        except LpError as e:
            return _frame(ERROR, tag, e.message.encode()[:1000])
        except Exception:  # a bug must not take the connection down: logged, refused
            log.exception("lane %s: method %d failed", self.name, method)
            return _frame(ERROR, tag, b"internal error")
        return _frame(method, tag, rep.SerializeToString())


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# ---- client ---------------------------------------------------------------------------------------------


class LaneClient:
    """A pool of authorised connections to one server's lane; thread-safe."""

    def __init__(self, host: str, port: int, token: bytes, service: ServiceDescriptor,
                 connect_timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self._token = token
        names, self._digest = method_table(service)
        self._ids = {n: i + 1 for i, n in enumerate(names)}
        self._connect_timeout = connect_timeout
        self._mu = threading.Lock()
        self._idle: list[socket.socket] = []       # blocking, with a timeout: for threads
        self._idle_loop: list[socket.socket] = []  # non-blocking: for code inline.run runs on the trio thread
        self._tag = 0
        self.closed = False

    def close(self) -> None:
        with self._mu:
            self.closed = True
            idle = self._idle + self._idle_loop
            self._idle, self._idle_loop = [], []
        for s in idle:
            s.close()

    def method(self, service: ServiceDescriptor, name: str) -> Callable[..., Any]:
        """A callable (request, timeout=) -> reply for a unary method, like a gRPC stub's."""
        mid = self._ids[name]
        reply_cls = messages(service, name)[1]

        def call(request: Any, timeout: float = 30.0) -> Any:
            return self.call(mid, request, reply_cls, timeout)
        call.__name__ = name
        call.cooperative = True     # type: ignore[attr-defined]  # waits through rpc.inline on the trio thread
        return call

    def call(self, mid: int, request: Any, reply_cls: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        here = inline.on_loop()
        s = self._take(timeout, here)
        with self._mu:
            self._tag += 1
            tag = self._tag
        waits = None
        if here:
            waits = LoopWaits(deadline)
        else:
            s.settimeout(max(0.001, deadline - time.monotonic()))
        method, rtag, payload = _roundtrip(s, _frame(mid, tag, request.SerializeToString()), "request", waits)
        if rtag != tag:
            s.close()
            raise LpError(errno.EIO, f"lane reply for tag {rtag}, expected {tag}")
        self._give_back(s, here)
        if method == ERROR:
            raise LpError(errno.EIO, f"lane: {payload.decode(errors='replace')}")
        return reply_cls.FromString(payload)

    def _take(self, timeout: float, here: bool) -> socket.socket:
        with self._mu:
            if self.closed:
                raise LpError(errno.ENOTCONN, "lane closed")
            idle = self._idle_loop if here else self._idle
            if idle:
                return idle.pop()
        s = inline.offload(self._open, min(timeout, self._connect_timeout))
        if here:
            s.setblocking(False)
        return s

    def _give_back(self, s: socket.socket, here: bool) -> None:
        with self._mu:
            if not self.closed:
                (self._idle_loop if here else self._idle).append(s)
                return
        s.close()

    def _open(self, timeout: float) -> socket.socket:
        try:
            s = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as e:
            raise LpError(errno.ENOTCONN, f"lane connect to {self.host}:{self.port}: {e}") from None
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        method, _, payload = _roundtrip(s, _frame(HELLO, 0, self._token + self._digest), "hello")
        if method != HELLO:
            s.close()
            raise LaneRefused(errno.ENOTCONN, f"lane refused: {payload.decode(errors='replace')}")
        return s


def _roundtrip(s: socket.socket, frame: bytes, what: str,
               waits: LoopWaits | None = None) -> tuple[int, int, bytes]:
    """Send a frame and read the answer on s; on trouble s is closed and the error is an LpError:
    ETIMEDOUT past the socket's timeout (or waits' deadline), ENOTCONN for a lost connection or
    a garbled answer. Anything else (a cancelled trio task) also closes s: its stream is
    then somewhere inside a frame."""
    try:
        _send_all(s, frame, waits)
        return _read_frame(s, waits)
    except socket.timeout:
        s.close()
        raise LpError(errno.ETIMEDOUT, f"lane {what} timed out") from None
    except (OSError, ConnectionError, ValueError, struct.error) as e:
        s.close()
        raise LpError(errno.ENOTCONN, f"lane {what}: connection lost: {e}") from None
    except BaseException:
        s.close()
        raise
