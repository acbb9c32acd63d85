"""Who may call what: the role in a peer's certificate against each service's method table.

A gRPC server interceptor wraps every handler: the peer's certificate (TLS
has already checked it against the cluster CA) names a role and a node; a
role the method's table does not list gets PERMISSION_DENIED, a peer without
a certificate UNAUTHENTICATED. A client may speak only for itself: every
client id a client's request carries (ConnectRequest.client_id, ReqHdr's,
a lock stream's hello) must be its certificate's name, or start with the
name and a colon (several mounts of one node). A server without TLS (the
plaintext development mode) checks nothing.

The tables say what each role may call; admin may call everything.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterator

import grpc

from lustrepy.common import certs
from lustrepy.rpc import tls

log = logging.getLogger(__name__)

ALL = frozenset({"*"})

_MDS_CLIENT = frozenset({"Connect", "Disconnect", "Intent", "Reint", "Readdir", "Getxattr", "Listxattr",
                         "Readlink", "Close", "AllocSeq", "ReintBatch", "WbcInfo", "Sync", "Statfs", "Info",
                         "Replay", "Capas", "Fld"})
_OSS_CLIENT = frozenset({"Connect", "Disconnect", "Write", "WriteMany", "Read", "ReadOne", "Punch", "Getattr",
                         "Statfs", "Sync", "Replay"})
_LDLM_CLIENT = frozenset({"Callbacks", "Enqueue", "Cancel"})

# service -> role -> methods it may call
RULES: dict[str, dict[str, frozenset[str]]] = {
    "Mds": {"client": _MDS_CLIENT, "oss": frozenset({"Announce", "Statfs", "Info", "Fld"}), "admin": ALL,
            "mds": frozenset({"MdtAnnounce", "Fld", "DneUpdate", "Statfs", "Info"})},
    "Oss": {"client": _OSS_CLIENT, "mds": ALL, "admin": ALL,
            "oss": frozenset({"Connect", "Disconnect", "ReplicaWrite", "Statfs", "Checksum"})},
    "Ldlm": {"client": _LDLM_CLIENT, "mds": _LDLM_CLIENT, "oss": _LDLM_CLIENT, "admin": ALL},
}


def allowed(service: str, role: str, method: str) -> bool:
    methods = RULES.get(service, {}).get(role, frozenset())
    return method in methods or "*" in methods


def owns(name: str, client_id: str) -> bool:
    """Whether a client certificate named `name` may speak as `client_id`."""
    return client_id == name or client_id.startswith(name + ":")


def client_id_of(request: Any) -> str:
    """The client id a request states: its own field, or its header's ('' for none)."""
    cid = getattr(request, "client_id", "")
    if cid:
        return str(cid)
    hdr = getattr(request, "hdr", None)
    return str(getattr(hdr, "client_id", "")) if hdr is not None else ""


class _Subjects:
    """Peer subjects parsed from gRPC's x509_subject string, cached (a handful of peers)."""

    MAX = 4096

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._by: dict[bytes, certs.Subject | None] = {}

    def of(self, context: grpc.ServicerContext) -> certs.Subject | None:
        subj = bytes((context.auth_context().get("x509_subject") or [b""])[0])
        with self._mu:
            if subj in self._by:
                return self._by[subj]
        parts: dict[str, str] = {}
        for p in subj.decode(errors="replace").split(","):
            k, _, v = p.partition("=")
            parts[k.strip()] = v
        role, name = parts.get("OU", ""), parts.get("CN", "")
        s = certs.Subject(role, name) if role in certs.ROLES and name else None
        with self._mu:
            if len(self._by) >= self.MAX:
                self._by.clear()
            self._by[subj] = s
        return s


_SUBJECTS = _Subjects()


def subject(context: grpc.ServicerContext) -> certs.Subject | None:
    """The role and name of the certificate a gRPC call came with (None: none, or plaintext)."""
    return _SUBJECTS.of(context)


class Authorizer(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls the caller's role may not make, and client ids a client does not own."""

    def __init__(self) -> None:
        self._subjects = _SUBJECTS

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or tls.current() is None:
            return handler
        _, qualified, method = str(details.method).split("/", 2)      # /lustrepy.rpc.v1.Mds/Connect
        return self._wrap(handler, qualified.rsplit(".", 1)[-1], method)

    def _check(self, context: grpc.ServicerContext, service: str, method: str) -> certs.Subject:
        who = self._subjects.of(context)
        if who is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "no lustrepy certificate")
            raise AssertionError("abort returned")     # pragma: no cover (abort raises)
        if not allowed(service, who.role, method):
            log.warning("refused %s.%s to %s %s", service, method, who.role, who.name)
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"{who.role} {who.name} may not call {service}.{method}")
        return who

    def _bound(self, context: grpc.ServicerContext, who: certs.Subject, request: Any, stream: bool = False) -> bool:
        """Whether the request speaks for its own client; a unary one that does not is aborted, a
        stream's gets the refusal as its status and is ended (the handler sees no more messages)."""
        if who.role != "client":
            return True
        cid = client_id_of(request)
        if not cid or owns(who.name, cid):
            return True
        log.warning("refused client %s speaking as %s", who.name, cid)
        if not stream:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"client {who.name} may not speak as {cid}")
        context.set_code(grpc.StatusCode.PERMISSION_DENIED)
        context.set_details(f"client {who.name} may not speak as {cid}")
        return False

    def _wrap(self, h: Any, service: str, method: str) -> Any:
        def unary_in(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def run(request: Any, context: grpc.ServicerContext) -> Any:
                who = self._check(context, service, method)
                self._bound(context, who, request)
                return fn(request, context)
            return run

        def stream_in(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def run(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
                who = self._check(context, service, method)

                def checked() -> Iterator[Any]:
                    for r in requests:
                        if not self._bound(context, who, r, stream=True):
                            return
                        yield r
                return fn(checked(), context)
            return run

        kw = {"request_deserializer": h.request_deserializer, "response_serializer": h.response_serializer}
        if h.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(unary_in(h.unary_unary), **kw)
        if h.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(unary_in(h.unary_stream), **kw)
        if h.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(stream_in(h.stream_unary), **kw)
        return grpc.stream_stream_rpc_method_handler(stream_in(h.stream_stream), **kw)
