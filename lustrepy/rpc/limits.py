"""Bounds every request meets where it enters a server, before any handler sees it.

Whatever the field, a number a server stores (FIDs, object ids, handles,
offsets, cookies, xids: all 64-bit unsigned on the wire) must fit SQLite's and
the kernel's signed 64 bits, a repeated field holds at most MAX_REPEATED
elements, a string or bytes field at most MAX_BYTES (bulk data excepted: the
message itself is bounded by the transport), and a message nests at most
MAX_DEPTH deep. A request past them gets its method's reply with EINVAL (one
log line) without reaching the handler; a reply without a header gets gRPC's
INVALID_ARGUMENT. Each handler checks the meaning of its fields itself (names,
modes, layouts, ranges). The gRPC server applies this as an interceptor
(rpc.channel), the request lane after decoding a frame (rpc.lane).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor

from lustrepy.common.errors import LpError
from lustrepy.rpc.convert import rep_err
from lustrepy.rpc.v1 import ldlm_pb2, mds_pb2, oss_pb2

log = logging.getLogger(__name__)

I64_MAX = (1 << 63) - 1
MAX_REPEATED = 1 << 17          # a WriteMany's pieces, a lock list, a layout's objects
MAX_BYTES = 1 << 16             # a name, a path, an xattr value, a symlink's target
BULK_FIELDS = frozenset({"data", "request", "reply"})     # bulk bytes and kept requests: bounded by the message size
MAX_DEPTH = 8
# Numbers past 63 bits that mean something: an extent's end (2**64-1: to EOF), and offsets,
# lengths and sizes, which their handlers refuse with the errno POSIX gives (EFBIG, EINVAL).
WIDE_FIELDS = frozenset({"end", "offset", "length", "size"})
_U64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_I64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64)


def check(msg: Any, depth: int = 0) -> None:
    """LpError EINVAL naming the first field past a bound."""
    if depth > MAX_DEPTH:
        raise LpError(errno.EINVAL, "message nested too deep")
    for f, v in msg.ListFields():
        t = f.type
        if f.is_repeated:
            if len(v) > MAX_REPEATED:
                raise LpError(errno.EINVAL, f"{f.name}: {len(v)} elements (at most {MAX_REPEATED})")
            if t == FieldDescriptor.TYPE_MESSAGE:
                for m in v:
                    check(m, depth + 1)
            elif t in _U64 and f.name not in WIDE_FIELDS:
                if any(x > I64_MAX for x in v):
                    raise LpError(errno.EINVAL, f"{f.name}: a value past 63 bits")
            elif t in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                if any(len(x) > MAX_BYTES for x in v):
                    raise LpError(errno.EINVAL, f"{f.name}: an element longer than {MAX_BYTES}")
        elif t == FieldDescriptor.TYPE_MESSAGE:
            check(v, depth + 1)
        elif t in _U64:
            if v > I64_MAX and f.name not in WIDE_FIELDS:
                raise LpError(errno.EINVAL, f"{f.name}: {v} is past 63 bits")
        elif t in _I64:
            if v < 0 and f.name in ("offset", "size", "length"):
                raise LpError(errno.EINVAL, f"{f.name}: negative")
        elif t in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            if len(v) > MAX_BYTES and f.name not in BULK_FIELDS:
                raise LpError(errno.EINVAL, f"{f.name}: {len(v)} bytes (at most {MAX_BYTES})")


def _reply_classes() -> dict[str, tuple[Any, bool]]:
    """Per method path: its reply class and whether the reply is a stream."""
    out = {}
    for mod in (mds_pb2, oss_pb2, ldlm_pb2):
        for svc in mod.DESCRIPTOR.services_by_name.values():
            for m in svc.methods:
                out[f"/{svc.full_name}/{m.name}"] = (message_factory.GetMessageClass(m.output_type),
                                                     m.server_streaming)
    return out


_REPLIES = _reply_classes()


def refusal(method: str, e: LpError) -> Any:
    """The method's reply carrying the refusal, or None when its reply has no header."""
    cls = _REPLIES.get(method, (None, False))[0]
    if cls is None or "hdr" not in cls.DESCRIPTOR.fields_by_name:
        return None
    return cls(hdr=rep_err(e))


class Bounds(grpc.ServerInterceptor):  # type: ignore[misc]
    """Checks every request message with `check` before its handler."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        h = continuation(details)
        if h is None:
            return None
        method = str(details.method)
        kw = {"request_deserializer": h.request_deserializer, "response_serializer": h.response_serializer}

        def refuse(e: LpError, context: grpc.ServicerContext) -> Any:
            log.warning("%s from %s refused: %s", method, context.peer(), e.message)
            rep = refusal(method, e)
            if rep is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
            return rep

        if h.unary_unary is not None or h.unary_stream is not None:
            fn = h.unary_unary or h.unary_stream
            streaming = h.unary_stream is not None

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    check(request)
                except LpError as e:
                    rep = refuse(e, context)
                    return iter([rep]) if streaming else rep
                return fn(request, context)
            make = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
            return make(unary, **kw)

        fn = h.stream_unary or h.stream_stream

        def stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            def checked() -> Iterator[Any]:
                for r in requests:
                    try:
                        check(r)
                    except LpError as e:
                        log.warning("%s from %s: message refused: %s", method, context.peer(), e.message)
                        context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
                        context.set_details(e.message)
                        return
                    yield r
            return fn(checked(), context)
        make = grpc.stream_stream_rpc_method_handler if h.stream_stream else grpc.stream_unary_rpc_method_handler
        return make(stream, **kw)
