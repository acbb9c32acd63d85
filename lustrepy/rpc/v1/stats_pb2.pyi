from lustrepy.rpc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpStats(_message.Message):
    __slots__ = ("op", "count", "errors", "total_us", "bytes", "hist")
    OP_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    HIST_FIELD_NUMBER: _ClassVar[int]
    op: str
    count: int
    errors: int
    total_us: int
    bytes: int
    hist: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, op: _Optional[str] = ..., count: _Optional[int] = ..., errors: _Optional[int] = ..., total_us: _Optional[int] = ..., bytes: _Optional[int] = ..., hist: _Optional[_Iterable[int]] = ...) -> None: ...

class ClientStats(_message.Message):
    __slots__ = ("client_id", "idle_s", "ops")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    idle_s: float
    ops: _containers.RepeatedCompositeFieldContainer[OpStats]
    def __init__(self, client_id: _Optional[str] = ..., idle_s: _Optional[float] = ..., ops: _Optional[_Iterable[_Union[OpStats, _Mapping]]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("hdr", "name", "uptime_s", "ops", "clients", "version", "connected")
    HDR_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    name: str
    uptime_s: float
    ops: _containers.RepeatedCompositeFieldContainer[OpStats]
    clients: _containers.RepeatedCompositeFieldContainer[ClientStats]
    version: str
    connected: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., name: _Optional[str] = ..., uptime_s: _Optional[float] = ..., ops: _Optional[_Iterable[_Union[OpStats, _Mapping]]] = ..., clients: _Optional[_Iterable[_Union[ClientStats, _Mapping]]] = ..., version: _Optional[str] = ..., connected: _Optional[int] = ...) -> None: ...
