from lustrepy.rpc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallbackKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CB_NONE: _ClassVar[CallbackKind]
    CB_BLOCKING: _ClassVar[CallbackKind]
    CB_GLIMPSE: _ClassVar[CallbackKind]
    CB_EVICTED: _ClassVar[CallbackKind]
CB_NONE: CallbackKind
CB_BLOCKING: CallbackKind
CB_GLIMPSE: CallbackKind
CB_EVICTED: CallbackKind

class CallbackUp(_message.Message):
    __slots__ = ("client_id", "conn_gen", "callback_id", "errno", "lvb", "lvb_valid")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONN_GEN_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_ID_FIELD_NUMBER: _ClassVar[int]
    ERRNO_FIELD_NUMBER: _ClassVar[int]
    LVB_FIELD_NUMBER: _ClassVar[int]
    LVB_VALID_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    conn_gen: int
    callback_id: int
    errno: int
    lvb: _common_pb2.Lvb
    lvb_valid: bool
    def __init__(self, client_id: _Optional[str] = ..., conn_gen: _Optional[int] = ..., callback_id: _Optional[int] = ..., errno: _Optional[int] = ..., lvb: _Optional[_Union[_common_pb2.Lvb, _Mapping]] = ..., lvb_valid: _Optional[bool] = ...) -> None: ...

class CallbackDown(_message.Message):
    __slots__ = ("callback_id", "kind", "lock", "conflicting")
    CALLBACK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    CONFLICTING_FIELD_NUMBER: _ClassVar[int]
    callback_id: int
    kind: CallbackKind
    lock: _common_pb2.LockDesc
    conflicting: _common_pb2.LockDesc
    def __init__(self, callback_id: _Optional[int] = ..., kind: _Optional[_Union[CallbackKind, str]] = ..., lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., conflicting: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ...) -> None: ...

class LockEnqueueRequest(_message.Message):
    __slots__ = ("hdr", "res", "mode", "ibits", "extent", "has_extent", "flags")
    HDR_FIELD_NUMBER: _ClassVar[int]
    RES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IBITS_FIELD_NUMBER: _ClassVar[int]
    EXTENT_FIELD_NUMBER: _ClassVar[int]
    HAS_EXTENT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    res: _common_pb2.ResId
    mode: _common_pb2.LockMode
    ibits: int
    extent: _common_pb2.Extent
    has_extent: bool
    flags: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., res: _Optional[_Union[_common_pb2.ResId, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.LockMode, str]] = ..., ibits: _Optional[int] = ..., extent: _Optional[_Union[_common_pb2.Extent, _Mapping]] = ..., has_extent: _Optional[bool] = ..., flags: _Optional[int] = ...) -> None: ...

class LockEnqueueReply(_message.Message):
    __slots__ = ("hdr", "lock", "lvb", "lvb_valid")
    HDR_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    LVB_FIELD_NUMBER: _ClassVar[int]
    LVB_VALID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    lock: _common_pb2.LockDesc
    lvb: _common_pb2.Lvb
    lvb_valid: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., lvb: _Optional[_Union[_common_pb2.Lvb, _Mapping]] = ..., lvb_valid: _Optional[bool] = ...) -> None: ...

class LockCancelRequest(_message.Message):
    __slots__ = ("hdr", "cookies", "lvb", "lvb_valid")
    HDR_FIELD_NUMBER: _ClassVar[int]
    COOKIES_FIELD_NUMBER: _ClassVar[int]
    LVB_FIELD_NUMBER: _ClassVar[int]
    LVB_VALID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    cookies: _containers.RepeatedScalarFieldContainer[int]
    lvb: _common_pb2.Lvb
    lvb_valid: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., cookies: _Optional[_Iterable[int]] = ..., lvb: _Optional[_Union[_common_pb2.Lvb, _Mapping]] = ..., lvb_valid: _Optional[bool] = ...) -> None: ...

class LockListRequest(_message.Message):
    __slots__ = ("hdr", "client_id")
    HDR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    client_id: str
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., client_id: _Optional[str] = ...) -> None: ...

class LockState(_message.Message):
    __slots__ = ("lock", "granted", "age_s", "blocking_sent", "local", "on_behalf")
    LOCK_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    AGE_S_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_SENT_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_FIELD_NUMBER: _ClassVar[int]
    lock: _common_pb2.LockDesc
    granted: bool
    age_s: float
    blocking_sent: bool
    local: bool
    on_behalf: str
    def __init__(self, lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., granted: _Optional[bool] = ..., age_s: _Optional[float] = ..., blocking_sent: _Optional[bool] = ..., local: _Optional[bool] = ..., on_behalf: _Optional[str] = ...) -> None: ...

class ExportState(_message.Message):
    __slots__ = ("client_id", "conn_gen", "callback_stream", "granted_locks", "connected_s", "peer", "evicted", "idle_s")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONN_GEN_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_STREAM_FIELD_NUMBER: _ClassVar[int]
    GRANTED_LOCKS_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_S_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    EVICTED_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    conn_gen: int
    callback_stream: bool
    granted_locks: int
    connected_s: float
    peer: str
    evicted: bool
    idle_s: float
    def __init__(self, client_id: _Optional[str] = ..., conn_gen: _Optional[int] = ..., callback_stream: _Optional[bool] = ..., granted_locks: _Optional[int] = ..., connected_s: _Optional[float] = ..., peer: _Optional[str] = ..., evicted: _Optional[bool] = ..., idle_s: _Optional[float] = ...) -> None: ...

class LockListReply(_message.Message):
    __slots__ = ("hdr", "locks", "exports", "evictions", "callbacks_sent", "name")
    HDR_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    EXPORTS_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_SENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    locks: _containers.RepeatedCompositeFieldContainer[LockState]
    exports: _containers.RepeatedCompositeFieldContainer[ExportState]
    evictions: int
    callbacks_sent: int
    name: str
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., locks: _Optional[_Iterable[_Union[LockState, _Mapping]]] = ..., exports: _Optional[_Iterable[_Union[ExportState, _Mapping]]] = ..., evictions: _Optional[int] = ..., callbacks_sent: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class EvictRequest(_message.Message):
    __slots__ = ("hdr", "client_id")
    HDR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    client_id: str
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., client_id: _Optional[str] = ...) -> None: ...
