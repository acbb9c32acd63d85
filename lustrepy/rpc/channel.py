"""gRPC channels, servers and synchronous calls, with one mapping of transport trouble.

Every call has a deadline. Transport trouble (gRPC status codes) becomes an
LpError here and nowhere else: DEADLINE_EXCEEDED -> ETIMEDOUT, UNAVAILABLE ->
ENOTCONN, PERMISSION_DENIED and UNAUTHENTICATED (rpc.authz) -> EACCES, anything
else -> EIO. POSIX results come from the reply's errno.
"""

from __future__ import annotations

import errno
import logging
from concurrent import futures
from typing import Any, Callable, Iterator

import grpc

from lustrepy.common import certs, nids
from lustrepy.common.errors import LpError
from lustrepy.rpc import authz, inline, limits, tls

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0

_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]

_STATUS_ERRNO = {
    grpc.StatusCode.DEADLINE_EXCEEDED: errno.ETIMEDOUT,
    grpc.StatusCode.UNAVAILABLE: errno.ENOTCONN,
    grpc.StatusCode.CANCELLED: errno.ECANCELED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errno.ENOMEM,
    grpc.StatusCode.PERMISSION_DENIED: errno.EACCES,
    grpc.StatusCode.UNAUTHENTICATED: errno.EACCES,
}


def make_channel(address: str, peer: str = "server") -> grpc.Channel:
    """A channel to host:port, or to the first that answers of a failover list (common.nids),
    with large-message and keepalive options; LpError EINVAL for a bad list. With the process's
    TLS identity (rpc.tls) the channel is mutual TLS and the server must hold a certificate of
    role `peer` (mds, oss, or any server); without one it is plaintext."""
    try:
        target = nids.grpc_target(address)
    except ValueError as e:
        raise LpError(errno.EINVAL, str(e)) from None
    opts = _OPTIONS + [("grpc.enable_retries", 0), ("grpc.max_reconnect_backoff_ms", 1000),
                       ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100)]
    ident = tls.current()
    if ident is None:
        return grpc.insecure_channel(target, options=opts)
    name = certs.SERVER_NAME if peer == "server" else certs.role_name(peer)
    return grpc.secure_channel(target, ident.channel_credentials(),
                               options=opts + [("grpc.ssl_target_name_override", name)])


def make_server(max_workers: int = 64) -> grpc.Server:
    opts = _OPTIONS + [("grpc.so_reuseport", 0), ("grpc.http2.min_ping_interval_without_data_ms", 5_000)]
    return grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
                       options=opts, maximum_concurrent_rpcs=None, interceptors=[authz.Authorizer(), limits.Bounds()])


def bind(server: grpc.Server, address: str) -> int:
    """Bind host:port (port 0 = any) with the process's TLS identity, or plaintext on loopback only;
    returns the port, or raises QuietError-worthy LpError."""
    ident = tls.current()
    tls.check_plaintext_host(address.rsplit(":", 1)[0])
    try:
        if ident is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, ident.server_credentials())
    except RuntimeError as e:  # grpcio raises RuntimeError when it cannot bind
        raise LpError(errno.EADDRINUSE if hasattr(errno, "EADDRINUSE") else errno.EIO,
                      f"cannot listen on {address}: {e}") from None
    if port == 0:
        raise LpError(errno.EADDRINUSE, f"cannot listen on {address} (address in use or not local)")
    return port


def transport_errno(e: grpc.RpcError) -> int:
    code = e.code() if hasattr(e, "code") else None
    return errno.EIO if code is None else _STATUS_ERRNO.get(code, errno.EIO)


def call(method: Callable[..., Any], request: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Invoke a unary (or stream-unary) stub method with a deadline; transport trouble -> LpError.
    In code rpc.inline runs on the trio thread, a call that would block it (gRPC's) runs in a
    worker thread; the request lane's (marked `cooperative`) waits there through trio."""
    try:
        if not getattr(method, "cooperative", False):
            return inline.offload(method, request, timeout=timeout)
        return method(request, timeout=timeout)
    except grpc.RpcError as e:
        raise _transport_error(e) from None


def stream(method: Callable[..., Any], request: Any, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Any]:
    """The messages of a unary-stream stub method, the whole stream within one deadline; transport
    trouble -> LpError as for call(). Closing the iterator early cancels the call. For threads
    outside trio (lfsctl): it blocks between messages."""
    it = method(request, timeout=timeout)
    try:
        yield from it
    except grpc.RpcError as e:
        raise _transport_error(e) from None
    finally:
        it.cancel()


_HANDSHAKE = ("Socket closed", "andshake", "certificate", "SSL", "Ssl")


def _transport_error(e: grpc.RpcError) -> LpError:
    detail = str((e.details() if hasattr(e, "details") else None) or e)
    if transport_errno(e) == errno.ENOTCONN and any(h in detail for h in _HANDSHAKE):
        detail += (" (no TLS handshake: is this process's certificate from the cluster's CA, or does one end "
                   "speak plaintext?)" if tls.current() is not None else
                   " (this process speaks plaintext: the server may want TLS; give a certificate)")
    return LpError(transport_errno(e), f"rpc failed: {detail}")
