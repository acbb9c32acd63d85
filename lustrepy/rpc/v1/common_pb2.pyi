from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LockMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LCK_NONE: _ClassVar[LockMode]
    LCK_EX: _ClassVar[LockMode]
    LCK_PW: _ClassVar[LockMode]
    LCK_PR: _ClassVar[LockMode]
    LCK_CW: _ClassVar[LockMode]
    LCK_CR: _ClassVar[LockMode]
    LCK_NL: _ClassVar[LockMode]

class IBit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IBIT_NONE: _ClassVar[IBit]
    IBIT_LOOKUP: _ClassVar[IBit]
    IBIT_UPDATE: _ClassVar[IBit]
    IBIT_OPEN: _ClassVar[IBit]
    IBIT_LAYOUT: _ClassVar[IBit]
    IBIT_PERM: _ClassVar[IBit]
    IBIT_XATTR: _ClassVar[IBit]
LCK_NONE: LockMode
LCK_EX: LockMode
LCK_PW: LockMode
LCK_PR: LockMode
LCK_CW: LockMode
LCK_CR: LockMode
LCK_NL: LockMode
IBIT_NONE: IBit
IBIT_LOOKUP: IBit
IBIT_UPDATE: IBit
IBIT_OPEN: IBit
IBIT_LAYOUT: IBit
IBIT_PERM: IBit
IBIT_XATTR: IBit

class Fid(_message.Message):
    __slots__ = ("seq", "oid", "ver")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OID_FIELD_NUMBER: _ClassVar[int]
    VER_FIELD_NUMBER: _ClassVar[int]
    seq: int
    oid: int
    ver: int
    def __init__(self, seq: _Optional[int] = ..., oid: _Optional[int] = ..., ver: _Optional[int] = ...) -> None: ...

class ReqHdr(_message.Message):
    __slots__ = ("client_id", "conn_gen", "xid", "uid", "gid", "groups", "cancel_cookies", "replied_xid", "resent", "capas")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONN_GEN_FIELD_NUMBER: _ClassVar[int]
    XID_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_COOKIES_FIELD_NUMBER: _ClassVar[int]
    REPLIED_XID_FIELD_NUMBER: _ClassVar[int]
    RESENT_FIELD_NUMBER: _ClassVar[int]
    CAPAS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    conn_gen: int
    xid: int
    uid: int
    gid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    cancel_cookies: _containers.RepeatedScalarFieldContainer[int]
    replied_xid: int
    resent: bool
    capas: _containers.RepeatedCompositeFieldContainer[Capa]
    def __init__(self, client_id: _Optional[str] = ..., conn_gen: _Optional[int] = ..., xid: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., cancel_cookies: _Optional[_Iterable[int]] = ..., replied_xid: _Optional[int] = ..., resent: _Optional[bool] = ..., capas: _Optional[_Iterable[_Union[Capa, _Mapping]]] = ...) -> None: ...

class Capa(_message.Message):
    __slots__ = ("ost_index", "object_id", "mode", "expiry", "key_id", "mac")
    OST_INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ost_index: int
    object_id: int
    mode: int
    expiry: int
    key_id: int
    mac: bytes
    def __init__(self, ost_index: _Optional[int] = ..., object_id: _Optional[int] = ..., mode: _Optional[int] = ..., expiry: _Optional[int] = ..., key_id: _Optional[int] = ..., mac: _Optional[bytes] = ...) -> None: ...

class RepHdr(_message.Message):
    __slots__ = ("errno", "message", "transno", "last_committed")
    ERRNO_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRANSNO_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    errno: int
    message: str
    transno: int
    last_committed: int
    def __init__(self, errno: _Optional[int] = ..., message: _Optional[str] = ..., transno: _Optional[int] = ..., last_committed: _Optional[int] = ...) -> None: ...

class Timespec(_message.Message):
    __slots__ = ("sec", "nsec")
    SEC_FIELD_NUMBER: _ClassVar[int]
    NSEC_FIELD_NUMBER: _ClassVar[int]
    sec: int
    nsec: int
    def __init__(self, sec: _Optional[int] = ..., nsec: _Optional[int] = ...) -> None: ...

class Attr(_message.Message):
    __slots__ = ("fid", "ino", "mode", "nlink", "uid", "gid", "size", "blocks", "atime_ns", "mtime_ns", "ctime_ns", "rdev", "generation", "size_valid")
    FID_FIELD_NUMBER: _ClassVar[int]
    INO_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NLINK_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    CTIME_NS_FIELD_NUMBER: _ClassVar[int]
    RDEV_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SIZE_VALID_FIELD_NUMBER: _ClassVar[int]
    fid: Fid
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    rdev: int
    generation: int
    size_valid: bool
    def __init__(self, fid: _Optional[_Union[Fid, _Mapping]] = ..., ino: _Optional[int] = ..., mode: _Optional[int] = ..., nlink: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ..., atime_ns: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., ctime_ns: _Optional[int] = ..., rdev: _Optional[int] = ..., generation: _Optional[int] = ..., size_valid: _Optional[bool] = ...) -> None: ...

class StripeObject(_message.Message):
    __slots__ = ("ost_index", "object_id")
    OST_INDEX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ost_index: int
    object_id: int
    def __init__(self, ost_index: _Optional[int] = ..., object_id: _Optional[int] = ...) -> None: ...

class Layout(_message.Message):
    __slots__ = ("stripe_size", "stripe_count", "stripe_offset", "pattern", "objects", "generation", "mirror_count", "mirrors")
    STRIPE_SIZE_FIELD_NUMBER: _ClassVar[int]
    STRIPE_COUNT_FIELD_NUMBER: _ClassVar[int]
    STRIPE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MIRROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIRRORS_FIELD_NUMBER: _ClassVar[int]
    stripe_size: int
    stripe_count: int
    stripe_offset: int
    pattern: str
    objects: _containers.RepeatedCompositeFieldContainer[StripeObject]
    generation: int
    mirror_count: int
    mirrors: _containers.RepeatedCompositeFieldContainer[Mirror]
    def __init__(self, stripe_size: _Optional[int] = ..., stripe_count: _Optional[int] = ..., stripe_offset: _Optional[int] = ..., pattern: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[StripeObject, _Mapping]]] = ..., generation: _Optional[int] = ..., mirror_count: _Optional[int] = ..., mirrors: _Optional[_Iterable[_Union[Mirror, _Mapping]]] = ...) -> None: ...

class Mirror(_message.Message):
    __slots__ = ("mirror_id", "stale", "layout", "syncing")
    MIRROR_ID_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    SYNCING_FIELD_NUMBER: _ClassVar[int]
    mirror_id: int
    stale: bool
    layout: Layout
    syncing: bool
    def __init__(self, mirror_id: _Optional[int] = ..., stale: _Optional[bool] = ..., layout: _Optional[_Union[Layout, _Mapping]] = ..., syncing: _Optional[bool] = ...) -> None: ...

class ResId(_message.Message):
    __slots__ = ("n0", "n1", "n2")
    N0_FIELD_NUMBER: _ClassVar[int]
    N1_FIELD_NUMBER: _ClassVar[int]
    N2_FIELD_NUMBER: _ClassVar[int]
    n0: int
    n1: int
    n2: int
    def __init__(self, n0: _Optional[int] = ..., n1: _Optional[int] = ..., n2: _Optional[int] = ...) -> None: ...

class Extent(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class LockDesc(_message.Message):
    __slots__ = ("cookie", "res", "mode", "ibits", "extent", "owner")
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    RES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    IBITS_FIELD_NUMBER: _ClassVar[int]
    EXTENT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    cookie: int
    res: ResId
    mode: LockMode
    ibits: int
    extent: Extent
    owner: str
    def __init__(self, cookie: _Optional[int] = ..., res: _Optional[_Union[ResId, _Mapping]] = ..., mode: _Optional[_Union[LockMode, str]] = ..., ibits: _Optional[int] = ..., extent: _Optional[_Union[Extent, _Mapping]] = ..., owner: _Optional[str] = ...) -> None: ...

class Lvb(_message.Message):
    __slots__ = ("size", "blocks", "mtime_ns", "atime_ns", "ctime_ns")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    CTIME_NS_FIELD_NUMBER: _ClassVar[int]
    size: int
    blocks: int
    mtime_ns: int
    atime_ns: int
    ctime_ns: int
    def __init__(self, size: _Optional[int] = ..., blocks: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., atime_ns: _Optional[int] = ..., ctime_ns: _Optional[int] = ...) -> None: ...

class Statfs(_message.Message):
    __slots__ = ("bsize", "blocks", "bfree", "bavail", "files", "ffree")
    BSIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BFREE_FIELD_NUMBER: _ClassVar[int]
    BAVAIL_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FFREE_FIELD_NUMBER: _ClassVar[int]
    bsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    def __init__(self, bsize: _Optional[int] = ..., blocks: _Optional[int] = ..., bfree: _Optional[int] = ..., bavail: _Optional[int] = ..., files: _Optional[int] = ..., ffree: _Optional[int] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("client_id", "fsname", "client_version", "replays")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    FSNAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REPLAYS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    fsname: str
    client_version: str
    replays: int
    def __init__(self, client_id: _Optional[str] = ..., fsname: _Optional[str] = ..., client_version: _Optional[str] = ..., replays: _Optional[int] = ...) -> None: ...

class ConnectReply(_message.Message):
    __slots__ = ("hdr", "conn_gen", "server_uuid", "fsname", "root", "boot_id", "server_version", "lane_port", "lane_token", "recovering")
    HDR_FIELD_NUMBER: _ClassVar[int]
    CONN_GEN_FIELD_NUMBER: _ClassVar[int]
    SERVER_UUID_FIELD_NUMBER: _ClassVar[int]
    FSNAME_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LANE_PORT_FIELD_NUMBER: _ClassVar[int]
    LANE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECOVERING_FIELD_NUMBER: _ClassVar[int]
    hdr: RepHdr
    conn_gen: int
    server_uuid: str
    fsname: str
    root: Fid
    boot_id: int
    server_version: str
    lane_port: int
    lane_token: bytes
    recovering: bool
    def __init__(self, hdr: _Optional[_Union[RepHdr, _Mapping]] = ..., conn_gen: _Optional[int] = ..., server_uuid: _Optional[str] = ..., fsname: _Optional[str] = ..., root: _Optional[_Union[Fid, _Mapping]] = ..., boot_id: _Optional[int] = ..., server_version: _Optional[str] = ..., lane_port: _Optional[int] = ..., lane_token: _Optional[bytes] = ..., recovering: _Optional[bool] = ...) -> None: ...

class DisconnectRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: ReqHdr
    def __init__(self, hdr: _Optional[_Union[ReqHdr, _Mapping]] = ...) -> None: ...

class SimpleReply(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: RepHdr
    def __init__(self, hdr: _Optional[_Union[RepHdr, _Mapping]] = ...) -> None: ...
