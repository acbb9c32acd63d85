from lustrepy.rpc.v1 import common_pb2 as _common_pb2
from lustrepy.rpc.v1 import stats_pb2 as _stats_pb2
from lustrepy.rpc.v1 import mds_pb2 as _mds_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PrecreateRequest(_message.Message):
    __slots__ = ("hdr", "count", "mdt_index")
    HDR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MDT_INDEX_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    count: int
    mdt_index: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., count: _Optional[int] = ..., mdt_index: _Optional[int] = ...) -> None: ...

class PrecreateReply(_message.Message):
    __slots__ = ("hdr", "first_id", "last_id")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FIRST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    first_id: int
    last_id: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., first_id: _Optional[int] = ..., last_id: _Optional[int] = ...) -> None: ...

class WriteChunk(_message.Message):
    __slots__ = ("hdr", "object_id", "offset", "data", "crc32c", "sync", "length")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_id: int
    offset: int
    data: bytes
    crc32c: int
    sync: bool
    length: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_id: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., crc32c: _Optional[int] = ..., sync: _Optional[bool] = ..., length: _Optional[int] = ...) -> None: ...

class WriteReply(_message.Message):
    __slots__ = ("hdr", "written", "lvb")
    HDR_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    LVB_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    written: int
    lvb: _common_pb2.Lvb
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., written: _Optional[int] = ..., lvb: _Optional[_Union[_common_pb2.Lvb, _Mapping]] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("hdr", "object_id", "offset", "length", "chunk_size")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_id: int
    offset: int
    length: int
    chunk_size: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_id: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class ReadChunk(_message.Message):
    __slots__ = ("hdr", "offset", "data", "crc32c", "eof")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    offset: int
    data: bytes
    crc32c: int
    eof: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., crc32c: _Optional[int] = ..., eof: _Optional[bool] = ...) -> None: ...

class ObjRequest(_message.Message):
    __slots__ = ("hdr", "object_id")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_id: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_id: _Optional[int] = ...) -> None: ...

class PunchRequest(_message.Message):
    __slots__ = ("hdr", "object_id", "size")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_id: int
    size: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_id: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ObjAttrReply(_message.Message):
    __slots__ = ("hdr", "lvb")
    HDR_FIELD_NUMBER: _ClassVar[int]
    LVB_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    lvb: _common_pb2.Lvb
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., lvb: _Optional[_Union[_common_pb2.Lvb, _Mapping]] = ...) -> None: ...

class DestroyRequest(_message.Message):
    __slots__ = ("hdr", "object_ids")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DestroyReply(_message.Message):
    __slots__ = ("hdr", "destroyed")
    HDR_FIELD_NUMBER: _ClassVar[int]
    DESTROYED_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    destroyed: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., destroyed: _Optional[int] = ...) -> None: ...

class OssStatfsRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class OssStatfsReply(_message.Message):
    __slots__ = ("hdr", "statfs", "index", "uuid", "objects", "recovery", "last_committed")
    HDR_FIELD_NUMBER: _ClassVar[int]
    STATFS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    statfs: _common_pb2.Statfs
    index: int
    uuid: str
    objects: int
    recovery: _mds_pb2.RecoveryState
    last_committed: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., statfs: _Optional[_Union[_common_pb2.Statfs, _Mapping]] = ..., index: _Optional[int] = ..., uuid: _Optional[str] = ..., objects: _Optional[int] = ..., recovery: _Optional[_Union[_mds_pb2.RecoveryState, _Mapping]] = ..., last_committed: _Optional[int] = ...) -> None: ...

class WriteManyRequest(_message.Message):
    __slots__ = ("hdr", "chunks")
    HDR_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    chunks: _containers.RepeatedCompositeFieldContainer[WriteChunk]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., chunks: _Optional[_Iterable[_Union[WriteChunk, _Mapping]]] = ...) -> None: ...

class ObjLvb(_message.Message):
    __slots__ = ("object_id", "lvb")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    LVB_FIELD_NUMBER: _ClassVar[int]
    object_id: int
    lvb: _common_pb2.Lvb
    def __init__(self, object_id: _Optional[int] = ..., lvb: _Optional[_Union[_common_pb2.Lvb, _Mapping]] = ...) -> None: ...

class WriteManyReply(_message.Message):
    __slots__ = ("hdr", "written", "lvbs")
    HDR_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    LVBS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    written: int
    lvbs: _containers.RepeatedCompositeFieldContainer[ObjLvb]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., written: _Optional[int] = ..., lvbs: _Optional[_Iterable[_Union[ObjLvb, _Mapping]]] = ...) -> None: ...

class ObjListRequest(_message.Message):
    __slots__ = ("hdr", "index", "cursor", "max")
    HDR_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    index: int
    cursor: int
    max: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., index: _Optional[int] = ..., cursor: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class ObjInfo(_message.Message):
    __slots__ = ("object_id", "size", "blocks", "mtime_ns")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    object_id: int
    size: int
    blocks: int
    mtime_ns: int
    def __init__(self, object_id: _Optional[int] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ..., mtime_ns: _Optional[int] = ...) -> None: ...

class ObjListReply(_message.Message):
    __slots__ = ("hdr", "objects", "next_cursor", "eof", "last_id", "last_ids")
    class LastIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_IDS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    objects: _containers.RepeatedCompositeFieldContainer[ObjInfo]
    next_cursor: int
    eof: bool
    last_id: int
    last_ids: _containers.ScalarMap[int, int]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., objects: _Optional[_Iterable[_Union[ObjInfo, _Mapping]]] = ..., next_cursor: _Optional[int] = ..., eof: _Optional[bool] = ..., last_id: _Optional[int] = ..., last_ids: _Optional[_Mapping[int, int]] = ...) -> None: ...

class RecreateRequest(_message.Message):
    __slots__ = ("hdr", "index", "object_ids")
    HDR_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    index: int
    object_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., index: _Optional[int] = ..., object_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class RecreateReply(_message.Message):
    __slots__ = ("hdr", "created")
    HDR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    created: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., created: _Optional[_Iterable[int]] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("hdr", "object_id", "target_address", "target_ost", "target_object_id", "offset", "length", "last")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TARGET_OST_FIELD_NUMBER: _ClassVar[int]
    TARGET_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_id: int
    target_address: str
    target_ost: int
    target_object_id: int
    offset: int
    length: int
    last: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_id: _Optional[int] = ..., target_address: _Optional[str] = ..., target_ost: _Optional[int] = ..., target_object_id: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...

class PushReply(_message.Message):
    __slots__ = ("hdr", "copied", "size")
    HDR_FIELD_NUMBER: _ClassVar[int]
    COPIED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    copied: int
    size: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., copied: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ReplicaWriteRequest(_message.Message):
    __slots__ = ("hdr", "ost_index", "object_id", "offset", "data", "crc32c", "truncate", "sync")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OST_INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    ost_index: int
    object_id: int
    offset: int
    data: bytes
    crc32c: int
    truncate: int
    sync: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., ost_index: _Optional[int] = ..., object_id: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., crc32c: _Optional[int] = ..., truncate: _Optional[int] = ..., sync: _Optional[bool] = ...) -> None: ...

class ChecksumRequest(_message.Message):
    __slots__ = ("hdr", "object_id", "block")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    object_id: int
    block: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., object_id: _Optional[int] = ..., block: _Optional[int] = ...) -> None: ...

class ChecksumReply(_message.Message):
    __slots__ = ("hdr", "size", "crcs")
    HDR_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CRCS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    size: int
    crcs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., size: _Optional[int] = ..., crcs: _Optional[_Iterable[int]] = ...) -> None: ...

class ScrubStatusRequest(_message.Message):
    __slots__ = ("hdr", "index", "max_bad")
    HDR_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MAX_BAD_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    index: int
    max_bad: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., index: _Optional[int] = ..., max_bad: _Optional[int] = ...) -> None: ...

class BadBlock(_message.Message):
    __slots__ = ("object_id", "block")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    object_id: int
    block: int
    def __init__(self, object_id: _Optional[int] = ..., block: _Optional[int] = ...) -> None: ...

class ScrubStatusReply(_message.Message):
    __slots__ = ("hdr", "state", "rate_mib", "interval", "objects", "bytes", "passes", "pass_start", "last_pass_end", "mismatches", "found_by_scrub", "bad_count", "bad", "block_size", "checksums", "read_failures")
    HDR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RATE_MIB_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PASSES_FIELD_NUMBER: _ClassVar[int]
    PASS_START_FIELD_NUMBER: _ClassVar[int]
    LAST_PASS_END_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    FOUND_BY_SCRUB_FIELD_NUMBER: _ClassVar[int]
    BAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    BAD_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUMS_FIELD_NUMBER: _ClassVar[int]
    READ_FAILURES_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    state: str
    rate_mib: float
    interval: float
    objects: int
    bytes: int
    passes: int
    pass_start: float
    last_pass_end: float
    mismatches: int
    found_by_scrub: int
    bad_count: int
    bad: _containers.RepeatedCompositeFieldContainer[BadBlock]
    block_size: int
    checksums: bool
    read_failures: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., state: _Optional[str] = ..., rate_mib: _Optional[float] = ..., interval: _Optional[float] = ..., objects: _Optional[int] = ..., bytes: _Optional[int] = ..., passes: _Optional[int] = ..., pass_start: _Optional[float] = ..., last_pass_end: _Optional[float] = ..., mismatches: _Optional[int] = ..., found_by_scrub: _Optional[int] = ..., bad_count: _Optional[int] = ..., bad: _Optional[_Iterable[_Union[BadBlock, _Mapping]]] = ..., block_size: _Optional[int] = ..., checksums: _Optional[bool] = ..., read_failures: _Optional[int] = ...) -> None: ...
