"""The request lane: a gRPC service's unary requests carried on TCP connections of their own.

A gRPC round trip costs this machine's Python about 0.4 ms of server CPU and
0.25 ms of client CPU; the same request framed on a plain socket and answered
by the thread that reads it costs about 0.03 ms each side (bench/README.md,
"The request lane"). The lane is set up and authorised through gRPC: the
server hands a client a token in its Connect reply, the client opens
connections to the lane port and presents it, and every connection is then
bound to that client's identity. The messages are the service's own protobuf
requests and replies; POSIX results travel in their headers as on gRPC.

Frames: a header (message length u32, data length u32, method u16, tag u64,
network order), the protobuf message, then the frame's data: bulk bytes that
travel beside the message rather than inside it, so neither end copies them
through protobuf (an OSS's reads and writes; Lustre moves bulk beside its RPCs
the same way). Method 0 is the hello (message: the token, then the digest of
the service's method table and of this framing), method n > 0 the service's
n-th unary method in the order of its descriptor, ERROR a refusal (message:
one line of text). A reply carries its request's method and tag.

Server: one thread per connection reads a request, runs its handler inline
and writes the reply; nothing is handed to another thread. A request's data
is read into a buffer the connection keeps and reuses, and a bulk handler may
answer from another such buffer. Client: a pool of connections, one per
concurrent caller; a caller sends and reads its reply on the connection it
took, with the call's deadline as the socket timeout. Code that rpc.inline
runs on a trio thread takes non-blocking connections of a pool of their own
and waits for its reply through trio, until the same deadline.

TLS: with the process's identity (rpc.tls) every lane connection is mutual TLS
under the cluster CA, like the gRPC channel beside it; the server checks that a
client's certificate owns the token it presents, and every request that names
a client names the token's. Frames on the socket: rpc.laneframe.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import secrets
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from lustrepy.common import certs
from lustrepy.common.errors import LpError
from lustrepy.rpc import authz, inline, limits, tls
from lustrepy.rpc.inline import LoopWaits
from lustrepy.rpc.laneframe import (HEADER, MAX_DATA, MAX_PARTS, MAX_PAYLOAD, Buf, Frame, fresh, frame,  # noqa: F401
                                    read_frame, recv_into, send_parts)

log = logging.getLogger(__name__)

FRAMING = b"lane/2"                 # in the hello's digest: both ends frame alike
HELLO = 0
ERROR = 0xFFFF
MAX_CONNECTIONS = 1024          # per server: past this a hello is refused (the client uses gRPC)
HELLO_TIMEOUT = 10.0
LANE_REST, LANE_REST_MAX = 1.0, 16.0  # seconds a client's lane rests after a loss, doubling



# The Mds methods clients send on the lane: everything but Connect and the admin and OSS calls.
MDS_LANE_METHODS = ("Disconnect", "Intent", "Reint", "Readdir", "Getxattr", "Listxattr", "Readlink", "Close",
                    "AllocSeq", "ReintBatch", "WbcInfo", "Sync", "Statfs", "Info", "Capas")


class LaneRefused(LpError):
    """The server refused the hello (unknown token, restarted server, too many connections)."""


class LaneLost(LpError):
    """ENOTCONN: no connection to the lane, or it broke before the answer came (the request may have run)."""


def method_table(service: ServiceDescriptor) -> tuple[list[str], bytes]:
    """The unary methods of a service in descriptor order, and a digest both ends compare."""
    names = [m.name for m in service.methods if not m.client_streaming and not m.server_streaming]
    digest = hashlib.sha256(FRAMING + "\n".join(f"{m.name}({m.input_type.full_name})"
                                                for m in service.methods).encode()).digest()[:8]
    return names, digest


def messages(service: ServiceDescriptor, name: str) -> tuple[Any, Any]:
    """The request and reply classes of one method of a service."""
    m = service.methods_by_name[name]
    return message_factory.GetMessageClass(m.input_type), message_factory.GetMessageClass(m.output_type)


# ---- server ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handler:
    """A method's server side. fn(request, peer identity) -> reply; with `bulk`,
    fn(request, peer, data, out) -> (reply, data out): `data` is the request's data and
    `out(n)` lends an n-byte buffer to answer from; both are the connection's and are
    reused by its next request."""

    request_cls: Any                         # the protobuf request class
    fn: Callable[..., Any]
    bulk: bool = False


class Buffers:
    """A connection's two reusable buffers: requests' data come in one, bulk answers go out of the other.
    A buffer is kept up to KEEP bytes; a larger one is made for its frame and dropped after it."""

    KEEP = 8 * 1024 * 1024

    def __init__(self) -> None:
        self._bufs = [bytearray(), bytearray()]     # in, out

    def incoming(self, n: int) -> memoryview:
        return self._lend(0, n)

    def outgoing(self, n: int) -> memoryview:
        return self._lend(1, n)

    def _lend(self, which: int, n: int) -> memoryview:
        if n > self.KEEP:
            return fresh(n)
        if len(self._bufs[which]) < n:
            self._bufs[which] = bytearray(min(self.KEEP, max(n, 2 * len(self._bufs[which]))))
        return memoryview(self._bufs[which])[:n]


class LaneServer:
    """Serves a service's unary methods on a TCP port, a thread per authorised connection."""

    def __init__(self, name: str, service: ServiceDescriptor, handlers: Mapping[str, Handler]) -> None:
        self.name = name
        names, self.digest = method_table(service)
        self._handlers: dict[int, Handler] = {i + 1: handlers[n] for i, n in enumerate(names) if n in handlers}
        self._paths = {i + 1: f"/{service.full_name}/{n}" for i, n in enumerate(names)}
        self._mu = threading.Lock()
        self._tokens: dict[bytes, str] = {}              # token -> peer identity
        self._token_of: dict[str, bytes] = {}            # peer -> its current token
        self._conns: dict[socket.socket, str] = {}       # open connections -> peer ("" before hello)
        self._sock: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = False
        self._tls: ssl.SSLContext | None = None
        self.port = 0

    def start(self, host: str, port: int = 0) -> int:
        """Listen on host:port; with the process's TLS identity every connection is mutual TLS."""
        ident = tls.current()
        tls.check_plaintext_host(host)
        self._tls = ident.ssl_context(server_side=True) if ident is not None else None
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
        subject = None
        if isinstance(c, ssl.SSLSocket):
            c.do_handshake()
            subject = _local.subject = _peer_subject(c)
        f = read_frame(c, into=_no_data)
        method, tag, payload = f.method, f.tag, f.payload
        if method != HELLO:
            c.sendall(frame(ERROR, tag, b"the first frame must be a hello"))
            return None
        token, digest = payload[:16], payload[16:]
        if digest != self.digest:
            c.sendall(frame(ERROR, tag, b"the client speaks another version of the service"))
            return None
        with self._mu:
            peer = self._tokens.get(token)
            full = sum(1 for p in self._conns.values() if p) >= MAX_CONNECTIONS
            if peer is not None and not full:
                self._conns[c] = peer
        if peer is None:
            c.sendall(frame(ERROR, tag, b"unknown lane token: connect again"))
            return None
        if subject is not None and subject.role == "client" and not authz.owns(subject.name, peer):
            log.warning("lane %s: client %s presented the token of %s", self.name, subject.name, peer)
            with self._mu:
                self._conns[c] = ""
            c.sendall(frame(ERROR, tag, b"the token is another client's"))
            return None
        if full:
            c.sendall(frame(ERROR, tag, b"too many lane connections"))
            return None
        c.sendall(frame(HELLO, tag, b""))
        c.settimeout(None)
        return peer

    def _serve(self, c: socket.socket) -> None:
        _local.subject = None
        bufs, raw = Buffers(), c
        try:
            if self._tls is not None:
                c = self._tls.wrap_socket(c, server_side=True, do_handshake_on_connect=False)
                with self._mu:
                    self._conns.pop(raw, None)
                    self._conns[c] = ""
            peer = self._hello(c)
            while peer is not None:
                send_parts(c, list(self._answer(read_frame(c, into=bufs.incoming), peer, bufs)), None)
        except (OSError, ConnectionError, ValueError, struct.error):
            pass                                    # the peer went, or sent garbage: drop the connection
        finally:
            with self._mu:
                self._conns.pop(c, None)
            c.close()

    def _answer(self, f: Frame, peer: str, bufs: Buffers) -> tuple[bytes, Buf]:
        """The reply frame's header and message, and its data."""
        method, tag = f.method, f.tag
        h = self._handlers.get(method)
        if h is None:
            return frame(ERROR, tag, f"no method {method} on the lane".encode()), b""
        if f.data and not h.bulk:
            return frame(ERROR, tag, b"this method takes no data"), b""
        try:
            req = h.request_cls.FromString(f.payload)
        except Exception:  # a payload protobuf cannot parse: refused, the connection stays
            return frame(ERROR, tag, b"undecodable request"), b""
        try:
            cid = authz.client_id_of(req)
            if cid and cid != peer:
                raise LpError(errno.EPERM, "a lane carries its own client's requests only")
            limits.check(req)
        except LpError as e:
            log.warning("lane %s: %s from %s refused: %s", self.name, self._paths[method], peer, e.message)
            rep = limits.refusal(self._paths[method], e)
            if rep is None:
                return frame(ERROR, tag, e.message.encode()[:1000]), b""
            return frame(method, tag, rep.SerializeToString()), b""
        out: Buf = b""
        try:
            if h.bulk:
                rep, out = h.fn(req, peer, f.data, bufs.outgoing)
            else:
                rep = h.fn(req, peer)
        except LpError as e:
            return frame(ERROR, tag, e.message.encode()[:1000]), b""
        except Exception:  # a bug must not take the connection down: logged, refused
            log.exception("lane %s: method %d failed", self.name, method)
            return frame(ERROR, tag, b"internal error"), b""
        return frame(method, tag, rep.SerializeToString(), len(out)), out


_local = threading.local()      # .subject: the certificate of the peer this connection thread serves


def subject() -> certs.Subject | None:
    """In a lane handler: the role and name of the peer's certificate (None without TLS)."""
    return getattr(_local, "subject", None)


def _peer_subject(c: ssl.SSLSocket) -> certs.Subject | None:
    """The role and name of a TLS peer's certificate (already checked against the CA)."""
    der = c.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509
    try:
        return certs.subject_of_cert(x509.load_der_x509_certificate(der))
    except (LpError, ValueError):
        return None


def _no_data(n: int) -> memoryview:
    raise ValueError("a hello carries no data")


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# ---- client ---------------------------------------------------------------------------------------------


class LaneClient:
    """A pool of authorised connections to one server's lane; thread-safe. Given the hosts
    of a failover pair, a connection goes to the first whose lane takes the token."""

    def __init__(self, host: str | Sequence[str], port: int, token: bytes, service: ServiceDescriptor,
                 connect_timeout: float = 5.0) -> None:
        self.hosts = [host] if isinstance(host, str) else list(host)
        self.host, self.port = self.hosts[0], port
        self._token = token
        names, self._digest = method_table(service)
        self._ids = {n: i + 1 for i, n in enumerate(names)}
        self._server_name = certs.role_name(service.name.lower())     # Mds: mds.lustrepy
        self._connect_timeout = connect_timeout
        self._mu = threading.Lock()
        self._idle: list[socket.socket] = []       # blocking, with a timeout: for threads
        self._idle_loop: list[socket.socket] = []  # non-blocking: for code inline.run runs on the trio thread
        self._tag = 0
        self.closed = False
        # After a failed connect the lane rests (its callers use gRPC) before the next, longer
        # each time: a host that died with its cable pulled would hold every connect for the
        # whole timeout. Under _mu.
        self._rest = 0.0
        self._rest_until = 0.0

    def _lost(self) -> None:
        with self._mu:
            self._rest = min(LANE_REST_MAX, max(LANE_REST, self._rest * 2))
            self._rest_until = time.monotonic() + self._rest

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

    def bulk_method(self, service: ServiceDescriptor, name: str) -> Callable[..., tuple[Any, memoryview]]:
        """A callable (request, data=[buffers], timeout=) -> (reply, the reply's data) for a method
        whose frames carry data: the buffers are sent as they are, the reply's data lands in a
        buffer of its own."""
        mid = self._ids[name]
        reply_cls = messages(service, name)[1]

        def call(request: Any, data: Sequence[Buf] = (), timeout: float = 30.0) -> tuple[Any, memoryview]:
            return self.exchange(mid, request, reply_cls, timeout, data)
        call.__name__ = name
        return call

    def call(self, mid: int, request: Any, reply_cls: Any, timeout: float) -> Any:
        return self.exchange(mid, request, reply_cls, timeout)[0]

    def exchange(self, mid: int, request: Any, reply_cls: Any, timeout: float,
                 data: Sequence[Buf] = ()) -> tuple[Any, memoryview]:
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
        dlen = sum(memoryview(d).nbytes for d in data)
        if dlen > MAX_DATA:
            raise LpError(errno.EINVAL, f"{dlen} bytes of data in one lane frame (at most {MAX_DATA})")
        head = frame(mid, tag, request.SerializeToString(), dlen)
        f = _roundtrip(s, [head, *data], "request", waits)
        if f.tag != tag:
            s.close()
            raise LpError(errno.EIO, f"lane reply for tag {f.tag}, expected {tag}")
        self._give_back(s, here)
        if f.method == ERROR:
            raise LpError(errno.EIO, f"lane: {f.payload.decode(errors='replace')}")
        return reply_cls.FromString(f.payload), f.data

    def _take(self, timeout: float, here: bool) -> socket.socket:
        with self._mu:
            if self.closed:
                raise LaneLost(errno.ENOTCONN, "lane closed")
            idle = self._idle_loop if here else self._idle
            if idle:
                return idle.pop()
            if time.monotonic() < self._rest_until:
                raise LaneLost(errno.ENOTCONN, "lane resting after a lost connection")
        try:
            s = inline.offload(self._open, min(timeout, self._connect_timeout))
        except LaneLost:
            self._lost()
            raise
        with self._mu:
            self._rest = 0.0
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
        err: LpError | None = None
        for host in [self.host] + [h for h in self.hosts if h != self.host]:
            try:
                s = self._open_at(host, timeout)
            except LpError as e:
                if err is None or isinstance(e, LaneRefused):
                    err = e                 # a refusal says more than a host with no server
                continue
            self.host = host            # where the server is now: tried first next time
            return s
        assert err is not None
        raise err

    def _open_at(self, host: str, timeout: float) -> socket.socket:
        try:
            s = socket.create_connection((host, self.port), timeout=timeout)
        except OSError as e:
            raise LaneLost(errno.ENOTCONN, f"lane connect to {host}:{self.port}: {e}") from None
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ident = tls.current()
        if ident is not None:
            try:
                s = ident.ssl_context(server_side=False).wrap_socket(s, server_hostname=self._server_name)
            except (OSError, ValueError) as e:
                s.close()
                raise LaneRefused(errno.ENOTCONN, f"lane TLS handshake with {host}:{self.port}: {e}") from None
        f = _roundtrip(s, [frame(HELLO, 0, self._token + self._digest)], "hello")
        if f.method != HELLO:
            s.close()
            raise LaneRefused(errno.ENOTCONN, f"lane refused: {f.payload.decode(errors='replace')}")
        return s


def _roundtrip(s: socket.socket, parts: list[Buf], what: str, waits: LoopWaits | None = None) -> Frame:
    """Send a frame and read the answer on s; on trouble s is closed and the error is an LpError:
    ETIMEDOUT past the socket's timeout (or waits' deadline), ENOTCONN for a lost connection or
    a garbled answer. Anything else (a cancelled trio task) also closes s: its stream is
    then somewhere inside a frame."""
    try:
        send_parts(s, parts, waits)
        return read_frame(s, waits)
    except socket.timeout:
        s.close()
        raise LpError(errno.ETIMEDOUT, f"lane {what} timed out") from None
    except (OSError, ConnectionError, ValueError, struct.error) as e:
        s.close()
        raise LaneLost(errno.ENOTCONN, f"lane {what}: connection lost: {e}") from None
    except BaseException:
        s.close()
        raise
