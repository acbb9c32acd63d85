from lustrepy.rpc.v1 import common_pb2 as _common_pb2
from lustrepy.rpc.v1 import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IntentOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IT_NONE: _ClassVar[IntentOp]
    IT_LOOKUP: _ClassVar[IntentOp]
    IT_GETATTR: _ClassVar[IntentOp]
    IT_OPEN: _ClassVar[IntentOp]
    IT_CREAT: _ClassVar[IntentOp]
    IT_LAYOUT: _ClassVar[IntentOp]
    IT_READDIR: _ClassVar[IntentOp]

class Disposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISP_NONE: _ClassVar[Disposition]
    DISP_LOOKUP_EXECD: _ClassVar[Disposition]
    DISP_LOOKUP_NEG: _ClassVar[Disposition]
    DISP_LOOKUP_POS: _ClassVar[Disposition]
    DISP_OPEN_CREATE: _ClassVar[Disposition]
    DISP_OPEN_OPEN: _ClassVar[Disposition]

class RenameFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RENAME_NONE: _ClassVar[RenameFlag]
    RENAME_NOREPLACE: _ClassVar[RenameFlag]
    RENAME_EXCHANGE: _ClassVar[RenameFlag]

class AttrValid(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SA_NONE: _ClassVar[AttrValid]
    SA_MODE: _ClassVar[AttrValid]
    SA_UID: _ClassVar[AttrValid]
    SA_GID: _ClassVar[AttrValid]
    SA_SIZE: _ClassVar[AttrValid]
    SA_ATIME: _ClassVar[AttrValid]
    SA_MTIME: _ClassVar[AttrValid]
    SA_CTIME: _ClassVar[AttrValid]
    SA_ATIME_NOW: _ClassVar[AttrValid]
    SA_MTIME_NOW: _ClassVar[AttrValid]
    SA_SIZE_KNOWN: _ClassVar[AttrValid]

class XattrFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    XATTR_NONE: _ClassVar[XattrFlag]
    XATTR_CREATE: _ClassVar[XattrFlag]
    XATTR_REPLACE: _ClassVar[XattrFlag]
IT_NONE: IntentOp
IT_LOOKUP: IntentOp
IT_GETATTR: IntentOp
IT_OPEN: IntentOp
IT_CREAT: IntentOp
IT_LAYOUT: IntentOp
IT_READDIR: IntentOp
DISP_NONE: Disposition
DISP_LOOKUP_EXECD: Disposition
DISP_LOOKUP_NEG: Disposition
DISP_LOOKUP_POS: Disposition
DISP_OPEN_CREATE: Disposition
DISP_OPEN_OPEN: Disposition
RENAME_NONE: RenameFlag
RENAME_NOREPLACE: RenameFlag
RENAME_EXCHANGE: RenameFlag
SA_NONE: AttrValid
SA_MODE: AttrValid
SA_UID: AttrValid
SA_GID: AttrValid
SA_SIZE: AttrValid
SA_ATIME: AttrValid
SA_MTIME: AttrValid
SA_CTIME: AttrValid
SA_ATIME_NOW: AttrValid
SA_MTIME_NOW: AttrValid
SA_SIZE_KNOWN: AttrValid
XATTR_NONE: XattrFlag
XATTR_CREATE: XattrFlag
XATTR_REPLACE: XattrFlag

class IntentRequest(_message.Message):
    __slots__ = ("hdr", "ops", "parent", "name", "fid", "open_flags", "create_mode", "layout", "has_layout", "new_fid", "lock_mode", "ibits", "want_wbc")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    OPEN_FLAGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_MODE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    HAS_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    NEW_FID_FIELD_NUMBER: _ClassVar[int]
    LOCK_MODE_FIELD_NUMBER: _ClassVar[int]
    IBITS_FIELD_NUMBER: _ClassVar[int]
    WANT_WBC_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    ops: int
    parent: _common_pb2.Fid
    name: bytes
    fid: _common_pb2.Fid
    open_flags: int
    create_mode: int
    layout: _common_pb2.Layout
    has_layout: bool
    new_fid: _common_pb2.Fid
    lock_mode: _common_pb2.LockMode
    ibits: int
    want_wbc: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., ops: _Optional[int] = ..., parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., open_flags: _Optional[int] = ..., create_mode: _Optional[int] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., has_layout: _Optional[bool] = ..., new_fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., lock_mode: _Optional[_Union[_common_pb2.LockMode, str]] = ..., ibits: _Optional[int] = ..., want_wbc: _Optional[bool] = ...) -> None: ...

class IntentReply(_message.Message):
    __slots__ = ("hdr", "lock", "disposition", "attr", "layout", "has_layout", "open_handle", "parent_attr", "wbc_lock", "remote", "remote_mdt", "stripes")
    HDR_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    HAS_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    OPEN_HANDLE_FIELD_NUMBER: _ClassVar[int]
    PARENT_ATTR_FIELD_NUMBER: _ClassVar[int]
    WBC_LOCK_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_MDT_FIELD_NUMBER: _ClassVar[int]
    STRIPES_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    lock: _common_pb2.LockDesc
    disposition: int
    attr: _common_pb2.Attr
    layout: _common_pb2.Layout
    has_layout: bool
    open_handle: int
    parent_attr: _common_pb2.Attr
    wbc_lock: _common_pb2.LockDesc
    remote: bool
    remote_mdt: int
    stripes: DirStripes
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., disposition: _Optional[int] = ..., attr: _Optional[_Union[_common_pb2.Attr, _Mapping]] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., has_layout: _Optional[bool] = ..., open_handle: _Optional[int] = ..., parent_attr: _Optional[_Union[_common_pb2.Attr, _Mapping]] = ..., wbc_lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., remote: _Optional[bool] = ..., remote_mdt: _Optional[int] = ..., stripes: _Optional[_Union[DirStripes, _Mapping]] = ...) -> None: ...

class CreateOp(_message.Message):
    __slots__ = ("parent", "name", "mode", "rdev", "fid", "layout", "has_layout", "delay_layout")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RDEV_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    HAS_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    DELAY_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    parent: _common_pb2.Fid
    name: bytes
    mode: int
    rdev: int
    fid: _common_pb2.Fid
    layout: _common_pb2.Layout
    has_layout: bool
    delay_layout: bool
    def __init__(self, parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., mode: _Optional[int] = ..., rdev: _Optional[int] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., has_layout: _Optional[bool] = ..., delay_layout: _Optional[bool] = ...) -> None: ...

class MkdirOp(_message.Message):
    __slots__ = ("parent", "name", "mode", "fid", "remote", "mdt_index", "stripe_count", "stripe_hash")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    MDT_INDEX_FIELD_NUMBER: _ClassVar[int]
    STRIPE_COUNT_FIELD_NUMBER: _ClassVar[int]
    STRIPE_HASH_FIELD_NUMBER: _ClassVar[int]
    parent: _common_pb2.Fid
    name: bytes
    mode: int
    fid: _common_pb2.Fid
    remote: bool
    mdt_index: int
    stripe_count: int
    stripe_hash: str
    def __init__(self, parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., mode: _Optional[int] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., remote: _Optional[bool] = ..., mdt_index: _Optional[int] = ..., stripe_count: _Optional[int] = ..., stripe_hash: _Optional[str] = ...) -> None: ...

class DirStripes(_message.Message):
    __slots__ = ("hash_type", "fids", "mdts")
    HASH_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIDS_FIELD_NUMBER: _ClassVar[int]
    MDTS_FIELD_NUMBER: _ClassVar[int]
    hash_type: str
    fids: _containers.RepeatedCompositeFieldContainer[_common_pb2.Fid]
    mdts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hash_type: _Optional[str] = ..., fids: _Optional[_Iterable[_Union[_common_pb2.Fid, _Mapping]]] = ..., mdts: _Optional[_Iterable[int]] = ...) -> None: ...

class SymlinkOp(_message.Message):
    __slots__ = ("parent", "name", "target", "fid")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    parent: _common_pb2.Fid
    name: bytes
    target: bytes
    fid: _common_pb2.Fid
    def __init__(self, parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., target: _Optional[bytes] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ...) -> None: ...

class LinkOp(_message.Message):
    __slots__ = ("fid", "parent", "name")
    FID_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    parent: _common_pb2.Fid
    name: bytes
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ...) -> None: ...

class UnlinkOp(_message.Message):
    __slots__ = ("parent", "name")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    parent: _common_pb2.Fid
    name: bytes
    def __init__(self, parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ...) -> None: ...

class RmdirOp(_message.Message):
    __slots__ = ("parent", "name")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    parent: _common_pb2.Fid
    name: bytes
    def __init__(self, parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ...) -> None: ...

class RenameOp(_message.Message):
    __slots__ = ("src_parent", "src_name", "dst_parent", "dst_name", "flags")
    SRC_PARENT_FIELD_NUMBER: _ClassVar[int]
    SRC_NAME_FIELD_NUMBER: _ClassVar[int]
    DST_PARENT_FIELD_NUMBER: _ClassVar[int]
    DST_NAME_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    src_parent: _common_pb2.Fid
    src_name: bytes
    dst_parent: _common_pb2.Fid
    dst_name: bytes
    flags: int
    def __init__(self, src_parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., src_name: _Optional[bytes] = ..., dst_parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., dst_name: _Optional[bytes] = ..., flags: _Optional[int] = ...) -> None: ...

class SetattrOp(_message.Message):
    __slots__ = ("fid", "valid", "mode", "uid", "gid", "size", "atime_ns", "mtime_ns", "ctime_ns", "open_handle", "blocks")
    FID_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    CTIME_NS_FIELD_NUMBER: _ClassVar[int]
    OPEN_HANDLE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    valid: int
    mode: int
    uid: int
    gid: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    open_handle: int
    blocks: int
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., valid: _Optional[int] = ..., mode: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., size: _Optional[int] = ..., atime_ns: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., ctime_ns: _Optional[int] = ..., open_handle: _Optional[int] = ..., blocks: _Optional[int] = ...) -> None: ...

class SetxattrOp(_message.Message):
    __slots__ = ("fid", "name", "value", "flags")
    FID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    name: bytes
    value: bytes
    flags: int
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., value: _Optional[bytes] = ..., flags: _Optional[int] = ...) -> None: ...

class RemovexattrOp(_message.Message):
    __slots__ = ("fid", "name")
    FID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    name: bytes
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ...) -> None: ...

class ReintOp(_message.Message):
    __slots__ = ("create", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "setattr", "setxattr", "removexattr", "mirror")
    CREATE_FIELD_NUMBER: _ClassVar[int]
    MKDIR_FIELD_NUMBER: _ClassVar[int]
    SYMLINK_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    UNLINK_FIELD_NUMBER: _ClassVar[int]
    RMDIR_FIELD_NUMBER: _ClassVar[int]
    RENAME_FIELD_NUMBER: _ClassVar[int]
    SETATTR_FIELD_NUMBER: _ClassVar[int]
    SETXATTR_FIELD_NUMBER: _ClassVar[int]
    REMOVEXATTR_FIELD_NUMBER: _ClassVar[int]
    MIRROR_FIELD_NUMBER: _ClassVar[int]
    create: CreateOp
    mkdir: MkdirOp
    symlink: SymlinkOp
    link: LinkOp
    unlink: UnlinkOp
    rmdir: RmdirOp
    rename: RenameOp
    setattr: SetattrOp
    setxattr: SetxattrOp
    removexattr: RemovexattrOp
    mirror: MirrorOp
    def __init__(self, create: _Optional[_Union[CreateOp, _Mapping]] = ..., mkdir: _Optional[_Union[MkdirOp, _Mapping]] = ..., symlink: _Optional[_Union[SymlinkOp, _Mapping]] = ..., link: _Optional[_Union[LinkOp, _Mapping]] = ..., unlink: _Optional[_Union[UnlinkOp, _Mapping]] = ..., rmdir: _Optional[_Union[RmdirOp, _Mapping]] = ..., rename: _Optional[_Union[RenameOp, _Mapping]] = ..., setattr: _Optional[_Union[SetattrOp, _Mapping]] = ..., setxattr: _Optional[_Union[SetxattrOp, _Mapping]] = ..., removexattr: _Optional[_Union[RemovexattrOp, _Mapping]] = ..., mirror: _Optional[_Union[MirrorOp, _Mapping]] = ...) -> None: ...

class MirrorOp(_message.Message):
    __slots__ = ("fid", "action", "mirror_id", "count", "destroy")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STALE: _ClassVar[MirrorOp.Action]
        EXTEND: _ClassVar[MirrorOp.Action]
        SPLIT: _ClassVar[MirrorOp.Action]
    STALE: MirrorOp.Action
    EXTEND: MirrorOp.Action
    SPLIT: MirrorOp.Action
    FID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MIRROR_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DESTROY_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    action: MirrorOp.Action
    mirror_id: int
    count: int
    destroy: bool
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., action: _Optional[_Union[MirrorOp.Action, str]] = ..., mirror_id: _Optional[int] = ..., count: _Optional[int] = ..., destroy: _Optional[bool] = ...) -> None: ...

class ReintRequest(_message.Message):
    __slots__ = ("hdr", "op", "want_wbc")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    WANT_WBC_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    op: ReintOp
    want_wbc: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., op: _Optional[_Union[ReintOp, _Mapping]] = ..., want_wbc: _Optional[bool] = ...) -> None: ...

class ReintReply(_message.Message):
    __slots__ = ("hdr", "attr", "layout", "has_layout", "lock", "parent_attr", "wbc_lock", "stripes")
    HDR_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    HAS_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    PARENT_ATTR_FIELD_NUMBER: _ClassVar[int]
    WBC_LOCK_FIELD_NUMBER: _ClassVar[int]
    STRIPES_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    attr: _common_pb2.Attr
    layout: _common_pb2.Layout
    has_layout: bool
    lock: _common_pb2.LockDesc
    parent_attr: _common_pb2.Attr
    wbc_lock: _common_pb2.LockDesc
    stripes: DirStripes
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., attr: _Optional[_Union[_common_pb2.Attr, _Mapping]] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., has_layout: _Optional[bool] = ..., lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., parent_attr: _Optional[_Union[_common_pb2.Attr, _Mapping]] = ..., wbc_lock: _Optional[_Union[_common_pb2.LockDesc, _Mapping]] = ..., stripes: _Optional[_Union[DirStripes, _Mapping]] = ...) -> None: ...

class UpdateRecord(_message.Message):
    __slots__ = ("seq", "op", "time_ns", "uid", "gid", "groups", "mdt")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    MDT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    op: ReintOp
    time_ns: int
    uid: int
    gid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    mdt: int
    def __init__(self, seq: _Optional[int] = ..., op: _Optional[_Union[ReintOp, _Mapping]] = ..., time_ns: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., mdt: _Optional[int] = ...) -> None: ...

class ReintBatchRequest(_message.Message):
    __slots__ = ("hdr", "records", "chained", "after_seq")
    HDR_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    CHAINED_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    records: _containers.RepeatedCompositeFieldContainer[UpdateRecord]
    chained: bool
    after_seq: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., records: _Optional[_Iterable[_Union[UpdateRecord, _Mapping]]] = ..., chained: _Optional[bool] = ..., after_seq: _Optional[int] = ...) -> None: ...

class ReintBatchReply(_message.Message):
    __slots__ = ("hdr", "applied_seq", "failed_seq", "applied", "layouts")
    HDR_FIELD_NUMBER: _ClassVar[int]
    APPLIED_SEQ_FIELD_NUMBER: _ClassVar[int]
    FAILED_SEQ_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    LAYOUTS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    applied_seq: int
    failed_seq: int
    applied: int
    layouts: _containers.RepeatedCompositeFieldContainer[RecordLayout]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., applied_seq: _Optional[int] = ..., failed_seq: _Optional[int] = ..., applied: _Optional[int] = ..., layouts: _Optional[_Iterable[_Union[RecordLayout, _Mapping]]] = ...) -> None: ...

class RecordLayout(_message.Message):
    __slots__ = ("seq", "fid", "layout")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    fid: _common_pb2.Fid
    layout: _common_pb2.Layout
    def __init__(self, seq: _Optional[int] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ...) -> None: ...

class WbcInfoRequest(_message.Message):
    __slots__ = ("hdr", "fid")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ...) -> None: ...

class WbcInfoReply(_message.Message):
    __slots__ = ("hdr", "mode", "holder", "contended_for_s", "conflicts", "grants", "revocations")
    HDR_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CONTENDED_FOR_S_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    REVOCATIONS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    mode: str
    holder: str
    contended_for_s: float
    conflicts: int
    grants: int
    revocations: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., mode: _Optional[str] = ..., holder: _Optional[str] = ..., contended_for_s: _Optional[float] = ..., conflicts: _Optional[int] = ..., grants: _Optional[int] = ..., revocations: _Optional[int] = ...) -> None: ...

class ReaddirRequest(_message.Message):
    __slots__ = ("hdr", "fid", "cookie", "max_entries", "with_attrs")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    WITH_ATTRS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    cookie: int
    max_entries: int
    with_attrs: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., cookie: _Optional[int] = ..., max_entries: _Optional[int] = ..., with_attrs: _Optional[bool] = ...) -> None: ...

class DirEntry(_message.Message):
    __slots__ = ("name", "fid", "type", "cookie", "attr", "remote")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COOKIE_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    fid: _common_pb2.Fid
    type: int
    cookie: int
    attr: _common_pb2.Attr
    remote: bool
    def __init__(self, name: _Optional[bytes] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., type: _Optional[int] = ..., cookie: _Optional[int] = ..., attr: _Optional[_Union[_common_pb2.Attr, _Mapping]] = ..., remote: _Optional[bool] = ...) -> None: ...

class ReaddirReply(_message.Message):
    __slots__ = ("hdr", "entries", "eof")
    HDR_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    entries: _containers.RepeatedCompositeFieldContainer[DirEntry]
    eof: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[DirEntry, _Mapping]]] = ..., eof: _Optional[bool] = ...) -> None: ...

class GetxattrRequest(_message.Message):
    __slots__ = ("hdr", "fid", "name")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    name: bytes
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ...) -> None: ...

class GetxattrReply(_message.Message):
    __slots__ = ("hdr", "value")
    HDR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    value: bytes
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., value: _Optional[bytes] = ...) -> None: ...

class ListxattrRequest(_message.Message):
    __slots__ = ("hdr", "fid")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ...) -> None: ...

class ListxattrReply(_message.Message):
    __slots__ = ("hdr", "names")
    HDR_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    names: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., names: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ReadlinkRequest(_message.Message):
    __slots__ = ("hdr", "fid")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ...) -> None: ...

class ReadlinkReply(_message.Message):
    __slots__ = ("hdr", "target")
    HDR_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    target: bytes
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., target: _Optional[bytes] = ...) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ("hdr", "open_handle", "has_size", "size", "blocks", "more", "size_lost", "keep_open")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OPEN_HANDLE_FIELD_NUMBER: _ClassVar[int]
    HAS_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    SIZE_LOST_FIELD_NUMBER: _ClassVar[int]
    KEEP_OPEN_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    open_handle: int
    has_size: bool
    size: int
    blocks: int
    more: _containers.RepeatedCompositeFieldContainer[CloseItem]
    size_lost: bool
    keep_open: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., open_handle: _Optional[int] = ..., has_size: _Optional[bool] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ..., more: _Optional[_Iterable[_Union[CloseItem, _Mapping]]] = ..., size_lost: _Optional[bool] = ..., keep_open: _Optional[bool] = ...) -> None: ...

class CloseItem(_message.Message):
    __slots__ = ("open_handle", "has_size", "size", "blocks", "size_lost")
    OPEN_HANDLE_FIELD_NUMBER: _ClassVar[int]
    HAS_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    SIZE_LOST_FIELD_NUMBER: _ClassVar[int]
    open_handle: int
    has_size: bool
    size: int
    blocks: int
    size_lost: bool
    def __init__(self, open_handle: _Optional[int] = ..., has_size: _Optional[bool] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ..., size_lost: _Optional[bool] = ...) -> None: ...

class SeqRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class SeqReply(_message.Message):
    __slots__ = ("hdr", "seq", "width")
    HDR_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    seq: int
    width: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., seq: _Optional[int] = ..., width: _Optional[int] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class OstStatus(_message.Message):
    __slots__ = ("index", "uuid", "address", "active", "last_seen_s", "statfs", "precreated", "full", "node", "failure_domain")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_S_FIELD_NUMBER: _ClassVar[int]
    STATFS_FIELD_NUMBER: _ClassVar[int]
    PRECREATED_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    index: int
    uuid: str
    address: str
    active: bool
    last_seen_s: float
    statfs: _common_pb2.Statfs
    precreated: int
    full: bool
    node: str
    failure_domain: str
    def __init__(self, index: _Optional[int] = ..., uuid: _Optional[str] = ..., address: _Optional[str] = ..., active: _Optional[bool] = ..., last_seen_s: _Optional[float] = ..., statfs: _Optional[_Union[_common_pb2.Statfs, _Mapping]] = ..., precreated: _Optional[int] = ..., full: _Optional[bool] = ..., node: _Optional[str] = ..., failure_domain: _Optional[str] = ...) -> None: ...

class StatfsRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class MdsStatfsReply(_message.Message):
    __slots__ = ("hdr", "total", "mdt", "osts", "fsname")
    HDR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MDT_FIELD_NUMBER: _ClassVar[int]
    OSTS_FIELD_NUMBER: _ClassVar[int]
    FSNAME_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    total: _common_pb2.Statfs
    mdt: _common_pb2.Statfs
    osts: _containers.RepeatedCompositeFieldContainer[OstStatus]
    fsname: str
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., total: _Optional[_Union[_common_pb2.Statfs, _Mapping]] = ..., mdt: _Optional[_Union[_common_pb2.Statfs, _Mapping]] = ..., osts: _Optional[_Iterable[_Union[OstStatus, _Mapping]]] = ..., fsname: _Optional[str] = ...) -> None: ...

class OstAnnounce(_message.Message):
    __slots__ = ("fsname", "index", "uuid", "address", "statfs", "boot_id", "node", "failure_domain")
    FSNAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATFS_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    fsname: str
    index: int
    uuid: str
    address: str
    statfs: _common_pb2.Statfs
    boot_id: int
    node: str
    failure_domain: str
    def __init__(self, fsname: _Optional[str] = ..., index: _Optional[int] = ..., uuid: _Optional[str] = ..., address: _Optional[str] = ..., statfs: _Optional[_Union[_common_pb2.Statfs, _Mapping]] = ..., boot_id: _Optional[int] = ..., node: _Optional[str] = ..., failure_domain: _Optional[str] = ...) -> None: ...

class OstAnnounceReply(_message.Message):
    __slots__ = ("hdr", "mds_uuid", "heartbeat_interval_s", "capa_keys", "mdt_index", "mdts")
    HDR_FIELD_NUMBER: _ClassVar[int]
    MDS_UUID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    CAPA_KEYS_FIELD_NUMBER: _ClassVar[int]
    MDT_INDEX_FIELD_NUMBER: _ClassVar[int]
    MDTS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    mds_uuid: str
    heartbeat_interval_s: float
    capa_keys: _containers.RepeatedCompositeFieldContainer[CapaKey]
    mdt_index: int
    mdts: _containers.RepeatedCompositeFieldContainer[MdtEntry]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., mds_uuid: _Optional[str] = ..., heartbeat_interval_s: _Optional[float] = ..., capa_keys: _Optional[_Iterable[_Union[CapaKey, _Mapping]]] = ..., mdt_index: _Optional[int] = ..., mdts: _Optional[_Iterable[_Union[MdtEntry, _Mapping]]] = ...) -> None: ...

class FldRange(_message.Message):
    __slots__ = ("start", "end", "mdt")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    MDT_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    mdt: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., mdt: _Optional[int] = ...) -> None: ...

class MdtEntry(_message.Message):
    __slots__ = ("index", "uuid", "address", "active")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    index: int
    uuid: str
    address: str
    active: bool
    def __init__(self, index: _Optional[int] = ..., uuid: _Optional[str] = ..., address: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class MdtAnnounceRequest(_message.Message):
    __slots__ = ("fsname", "index", "uuid", "address", "instance")
    FSNAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    fsname: str
    index: int
    uuid: str
    address: str
    instance: str
    def __init__(self, fsname: _Optional[str] = ..., index: _Optional[int] = ..., uuid: _Optional[str] = ..., address: _Optional[str] = ..., instance: _Optional[str] = ...) -> None: ...

class MdtAnnounceReply(_message.Message):
    __slots__ = ("hdr", "ranges", "heartbeat_interval_s", "mdts")
    HDR_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    MDTS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    ranges: _containers.RepeatedCompositeFieldContainer[FldRange]
    heartbeat_interval_s: float
    mdts: _containers.RepeatedCompositeFieldContainer[MdtEntry]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., ranges: _Optional[_Iterable[_Union[FldRange, _Mapping]]] = ..., heartbeat_interval_s: _Optional[float] = ..., mdts: _Optional[_Iterable[_Union[MdtEntry, _Mapping]]] = ...) -> None: ...

class DneUpdateRequest(_message.Message):
    __slots__ = ("coordinator", "op_id", "kind", "parent", "name", "fid", "mode", "uid", "gid", "time_ns", "groups", "flags", "fid_mdt", "has_src", "src_mdt", "src_parent", "src_name", "has_new", "new_mdt", "stripe_index", "stripe_count", "stripe_hash", "dir_master", "default_count", "default_hash", "sealed", "has_owner", "owner_uid", "owner_gid")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NONE: _ClassVar[DneUpdateRequest.Kind]
        MKDIR: _ClassVar[DneUpdateRequest.Kind]
        RMDIR: _ClassVar[DneUpdateRequest.Kind]
        UNMAKE: _ClassVar[DneUpdateRequest.Kind]
        BIND: _ClassVar[DneUpdateRequest.Kind]
        NAMES: _ClassVar[DneUpdateRequest.Kind]
        SHARD: _ClassVar[DneUpdateRequest.Kind]
        KILL: _ClassVar[DneUpdateRequest.Kind]
        REVIVE: _ClassVar[DneUpdateRequest.Kind]
        UNSHARD: _ClassVar[DneUpdateRequest.Kind]
        UNNAME: _ClassVar[DneUpdateRequest.Kind]
        RLOCK: _ClassVar[DneUpdateRequest.Kind]
        RUNLOCK: _ClassVar[DneUpdateRequest.Kind]
        CLIMB: _ClassVar[DneUpdateRequest.Kind]
        SEAL: _ClassVar[DneUpdateRequest.Kind]
        UNSEAL: _ClassVar[DneUpdateRequest.Kind]
        PEEK: _ClassVar[DneUpdateRequest.Kind]
        OWNER: _ClassVar[DneUpdateRequest.Kind]
    NONE: DneUpdateRequest.Kind
    MKDIR: DneUpdateRequest.Kind
    RMDIR: DneUpdateRequest.Kind
    UNMAKE: DneUpdateRequest.Kind
    BIND: DneUpdateRequest.Kind
    NAMES: DneUpdateRequest.Kind
    SHARD: DneUpdateRequest.Kind
    KILL: DneUpdateRequest.Kind
    REVIVE: DneUpdateRequest.Kind
    UNSHARD: DneUpdateRequest.Kind
    UNNAME: DneUpdateRequest.Kind
    RLOCK: DneUpdateRequest.Kind
    RUNLOCK: DneUpdateRequest.Kind
    CLIMB: DneUpdateRequest.Kind
    SEAL: DneUpdateRequest.Kind
    UNSEAL: DneUpdateRequest.Kind
    PEEK: DneUpdateRequest.Kind
    OWNER: DneUpdateRequest.Kind
    COORDINATOR_FIELD_NUMBER: _ClassVar[int]
    OP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    FID_MDT_FIELD_NUMBER: _ClassVar[int]
    HAS_SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_MDT_FIELD_NUMBER: _ClassVar[int]
    SRC_PARENT_FIELD_NUMBER: _ClassVar[int]
    SRC_NAME_FIELD_NUMBER: _ClassVar[int]
    HAS_NEW_FIELD_NUMBER: _ClassVar[int]
    NEW_MDT_FIELD_NUMBER: _ClassVar[int]
    STRIPE_INDEX_FIELD_NUMBER: _ClassVar[int]
    STRIPE_COUNT_FIELD_NUMBER: _ClassVar[int]
    STRIPE_HASH_FIELD_NUMBER: _ClassVar[int]
    DIR_MASTER_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HASH_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    HAS_OWNER_FIELD_NUMBER: _ClassVar[int]
    OWNER_UID_FIELD_NUMBER: _ClassVar[int]
    OWNER_GID_FIELD_NUMBER: _ClassVar[int]
    coordinator: str
    op_id: int
    kind: DneUpdateRequest.Kind
    parent: _common_pb2.Fid
    name: bytes
    fid: _common_pb2.Fid
    mode: int
    uid: int
    gid: int
    time_ns: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    flags: int
    fid_mdt: int
    has_src: bool
    src_mdt: int
    src_parent: _common_pb2.Fid
    src_name: bytes
    has_new: bool
    new_mdt: int
    stripe_index: int
    stripe_count: int
    stripe_hash: str
    dir_master: _common_pb2.Fid
    default_count: int
    default_hash: str
    sealed: _common_pb2.Fid
    has_owner: bool
    owner_uid: int
    owner_gid: int
    def __init__(self, coordinator: _Optional[str] = ..., op_id: _Optional[int] = ..., kind: _Optional[_Union[DneUpdateRequest.Kind, str]] = ..., parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., mode: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., time_ns: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., flags: _Optional[int] = ..., fid_mdt: _Optional[int] = ..., has_src: _Optional[bool] = ..., src_mdt: _Optional[int] = ..., src_parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., src_name: _Optional[bytes] = ..., has_new: _Optional[bool] = ..., new_mdt: _Optional[int] = ..., stripe_index: _Optional[int] = ..., stripe_count: _Optional[int] = ..., stripe_hash: _Optional[str] = ..., dir_master: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., default_count: _Optional[int] = ..., default_hash: _Optional[str] = ..., sealed: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., has_owner: _Optional[bool] = ..., owner_uid: _Optional[int] = ..., owner_gid: _Optional[int] = ...) -> None: ...

class DneUpdateReply(_message.Message):
    __slots__ = ("hdr", "attr", "has_victim", "victim", "victim_mdt", "chain", "up", "up_mdt", "holder")
    HDR_FIELD_NUMBER: _ClassVar[int]
    ATTR_FIELD_NUMBER: _ClassVar[int]
    HAS_VICTIM_FIELD_NUMBER: _ClassVar[int]
    VICTIM_FIELD_NUMBER: _ClassVar[int]
    VICTIM_MDT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    UP_MDT_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    attr: _common_pb2.Attr
    has_victim: bool
    victim: _common_pb2.Fid
    victim_mdt: int
    chain: _containers.RepeatedCompositeFieldContainer[_common_pb2.Fid]
    up: _containers.RepeatedCompositeFieldContainer[_common_pb2.Fid]
    up_mdt: _containers.RepeatedScalarFieldContainer[int]
    holder: str
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., attr: _Optional[_Union[_common_pb2.Attr, _Mapping]] = ..., has_victim: _Optional[bool] = ..., victim: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., victim_mdt: _Optional[int] = ..., chain: _Optional[_Iterable[_Union[_common_pb2.Fid, _Mapping]]] = ..., up: _Optional[_Iterable[_Union[_common_pb2.Fid, _Mapping]]] = ..., up_mdt: _Optional[_Iterable[int]] = ..., holder: _Optional[str] = ...) -> None: ...

class MkdirAtRequest(_message.Message):
    __slots__ = ("hdr", "op")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    op: MkdirOp
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., op: _Optional[_Union[MkdirOp, _Mapping]] = ...) -> None: ...

class FldRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class FldReply(_message.Message):
    __slots__ = ("hdr", "ranges", "mdts")
    HDR_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    MDTS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    ranges: _containers.RepeatedCompositeFieldContainer[FldRange]
    mdts: _containers.RepeatedCompositeFieldContainer[MdtEntry]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., ranges: _Optional[_Iterable[_Union[FldRange, _Mapping]]] = ..., mdts: _Optional[_Iterable[_Union[MdtEntry, _Mapping]]] = ...) -> None: ...

class CapaKey(_message.Message):
    __slots__ = ("id", "key", "made")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MADE_FIELD_NUMBER: _ClassVar[int]
    id: int
    key: bytes
    made: float
    def __init__(self, id: _Optional[int] = ..., key: _Optional[bytes] = ..., made: _Optional[float] = ...) -> None: ...

class CapaRequest(_message.Message):
    __slots__ = ("hdr", "fid", "write")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    write: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., write: _Optional[bool] = ...) -> None: ...

class CapaReply(_message.Message):
    __slots__ = ("hdr", "capas", "generation")
    HDR_FIELD_NUMBER: _ClassVar[int]
    CAPAS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    capas: _containers.RepeatedCompositeFieldContainer[_common_pb2.Capa]
    generation: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., capas: _Optional[_Iterable[_Union[_common_pb2.Capa, _Mapping]]] = ..., generation: _Optional[int] = ...) -> None: ...

class MdsInfoRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class MdsInfoReply(_message.Message):
    __slots__ = ("hdr", "uuid", "fsname", "address", "uptime_s", "version", "clients", "last_transno", "last_committed", "counters", "recovery")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    HDR_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    FSNAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_TRANSNO_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    uuid: str
    fsname: str
    address: str
    uptime_s: float
    version: str
    clients: int
    last_transno: int
    last_committed: int
    counters: _containers.ScalarMap[str, int]
    recovery: RecoveryState
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., uuid: _Optional[str] = ..., fsname: _Optional[str] = ..., address: _Optional[str] = ..., uptime_s: _Optional[float] = ..., version: _Optional[str] = ..., clients: _Optional[int] = ..., last_transno: _Optional[int] = ..., last_committed: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ..., recovery: _Optional[_Union[RecoveryState, _Mapping]] = ...) -> None: ...

class ReplayItem(_message.Message):
    __slots__ = ("transno", "xid", "method", "request", "reply")
    TRANSNO_FIELD_NUMBER: _ClassVar[int]
    XID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    transno: int
    xid: int
    method: str
    request: bytes
    reply: bytes
    def __init__(self, transno: _Optional[int] = ..., xid: _Optional[int] = ..., method: _Optional[str] = ..., request: _Optional[bytes] = ..., reply: _Optional[bytes] = ...) -> None: ...

class ReplayRequest(_message.Message):
    __slots__ = ("hdr", "items", "last")
    HDR_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    items: _containers.RepeatedCompositeFieldContainer[ReplayItem]
    last: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., items: _Optional[_Iterable[_Union[ReplayItem, _Mapping]]] = ..., last: _Optional[bool] = ...) -> None: ...

class ReplayFailure(_message.Message):
    __slots__ = ("xid", "errno", "message")
    XID_FIELD_NUMBER: _ClassVar[int]
    ERRNO_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    xid: int
    errno: int
    message: str
    def __init__(self, xid: _Optional[int] = ..., errno: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ReplayReply(_message.Message):
    __slots__ = ("hdr", "done", "failed")
    HDR_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    done: bool
    failed: _containers.RepeatedCompositeFieldContainer[ReplayFailure]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., done: _Optional[bool] = ..., failed: _Optional[_Iterable[_Union[ReplayFailure, _Mapping]]] = ...) -> None: ...

class RecoveryState(_message.Message):
    __slots__ = ("state", "clients_expected", "clients_recovered", "clients_evicted", "replays_applied", "replays_failed", "time_left_s", "took_s")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_RECOVERED_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_EVICTED_FIELD_NUMBER: _ClassVar[int]
    REPLAYS_APPLIED_FIELD_NUMBER: _ClassVar[int]
    REPLAYS_FAILED_FIELD_NUMBER: _ClassVar[int]
    TIME_LEFT_S_FIELD_NUMBER: _ClassVar[int]
    TOOK_S_FIELD_NUMBER: _ClassVar[int]
    state: str
    clients_expected: int
    clients_recovered: int
    clients_evicted: int
    replays_applied: int
    replays_failed: int
    time_left_s: float
    took_s: float
    def __init__(self, state: _Optional[str] = ..., clients_expected: _Optional[int] = ..., clients_recovered: _Optional[int] = ..., clients_evicted: _Optional[int] = ..., replays_applied: _Optional[int] = ..., replays_failed: _Optional[int] = ..., time_left_s: _Optional[float] = ..., took_s: _Optional[float] = ...) -> None: ...

class BarrierRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class BarrierReply(_message.Message):
    __slots__ = ("hdr", "transno")
    HDR_FIELD_NUMBER: _ClassVar[int]
    TRANSNO_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    transno: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., transno: _Optional[int] = ...) -> None: ...

class Param(_message.Message):
    __slots__ = ("name", "value", "kind", "settable", "default", "help")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SETTABLE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    kind: str
    settable: bool
    default: str
    help: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., kind: _Optional[str] = ..., settable: _Optional[bool] = ..., default: _Optional[str] = ..., help: _Optional[str] = ...) -> None: ...

class ParamGetRequest(_message.Message):
    __slots__ = ("hdr", "patterns")
    HDR_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    patterns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., patterns: _Optional[_Iterable[str]] = ...) -> None: ...

class ParamSetting(_message.Message):
    __slots__ = ("name", "value", "reset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    reset: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., reset: _Optional[bool] = ...) -> None: ...

class ParamSetRequest(_message.Message):
    __slots__ = ("hdr", "settings")
    HDR_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    settings: _containers.RepeatedCompositeFieldContainer[ParamSetting]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., settings: _Optional[_Iterable[_Union[ParamSetting, _Mapping]]] = ...) -> None: ...

class ParamReply(_message.Message):
    __slots__ = ("hdr", "params")
    HDR_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    params: _containers.RepeatedCompositeFieldContainer[Param]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., params: _Optional[_Iterable[_Union[Param, _Mapping]]] = ...) -> None: ...

class LfsckScanRequest(_message.Message):
    __slots__ = ("hdr", "page_files")
    HDR_FIELD_NUMBER: _ClassVar[int]
    PAGE_FILES_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    page_files: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., page_files: _Optional[int] = ...) -> None: ...

class LfsckFile(_message.Message):
    __slots__ = ("fid", "stripe_size", "objects", "size", "size_valid")
    FID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SIZE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_VALID_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    stripe_size: int
    objects: _containers.RepeatedCompositeFieldContainer[_common_pb2.StripeObject]
    size: int
    size_valid: bool
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., stripe_size: _Optional[int] = ..., objects: _Optional[_Iterable[_Union[_common_pb2.StripeObject, _Mapping]]] = ..., size: _Optional[int] = ..., size_valid: _Optional[bool] = ...) -> None: ...

class LfsckPool(_message.Message):
    __slots__ = ("ost_index", "next_id", "last_id")
    OST_INDEX_FIELD_NUMBER: _ClassVar[int]
    NEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    ost_index: int
    next_id: int
    last_id: int
    def __init__(self, ost_index: _Optional[int] = ..., next_id: _Optional[int] = ..., last_id: _Optional[int] = ...) -> None: ...

class LfsckScanPage(_message.Message):
    __slots__ = ("hdr", "problems", "pools", "files", "queued", "last", "mdt_index", "stubs", "remote_names", "pending")
    HDR_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    MDT_INDEX_FIELD_NUMBER: _ClassVar[int]
    STUBS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_NAMES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    problems: _containers.RepeatedScalarFieldContainer[str]
    pools: _containers.RepeatedCompositeFieldContainer[LfsckPool]
    files: _containers.RepeatedCompositeFieldContainer[LfsckFile]
    queued: _containers.RepeatedCompositeFieldContainer[_common_pb2.StripeObject]
    last: bool
    mdt_index: int
    stubs: _containers.RepeatedCompositeFieldContainer[LfsckCrossName]
    remote_names: _containers.RepeatedCompositeFieldContainer[LfsckCrossName]
    pending: _containers.RepeatedCompositeFieldContainer[LfsckPending]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., problems: _Optional[_Iterable[str]] = ..., pools: _Optional[_Iterable[_Union[LfsckPool, _Mapping]]] = ..., files: _Optional[_Iterable[_Union[LfsckFile, _Mapping]]] = ..., queued: _Optional[_Iterable[_Union[_common_pb2.StripeObject, _Mapping]]] = ..., last: _Optional[bool] = ..., mdt_index: _Optional[int] = ..., stubs: _Optional[_Iterable[_Union[LfsckCrossName, _Mapping]]] = ..., remote_names: _Optional[_Iterable[_Union[LfsckCrossName, _Mapping]]] = ..., pending: _Optional[_Iterable[_Union[LfsckPending, _Mapping]]] = ...) -> None: ...

class LfsckCrossName(_message.Message):
    __slots__ = ("fid", "mdt", "parent", "name", "path")
    FID_FIELD_NUMBER: _ClassVar[int]
    MDT_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    mdt: int
    parent: _common_pb2.Fid
    name: bytes
    path: str
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., mdt: _Optional[int] = ..., parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ..., path: _Optional[str] = ...) -> None: ...

class LfsckPending(_message.Message):
    __slots__ = ("id", "kind", "fid", "names", "mdts", "created_ns")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    MDTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    fid: _common_pb2.Fid
    names: _containers.RepeatedCompositeFieldContainer[LfsckName]
    mdts: _containers.RepeatedScalarFieldContainer[int]
    created_ns: int
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., names: _Optional[_Iterable[_Union[LfsckName, _Mapping]]] = ..., mdts: _Optional[_Iterable[int]] = ..., created_ns: _Optional[int] = ...) -> None: ...

class LfsckName(_message.Message):
    __slots__ = ("parent", "name")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    parent: _common_pb2.Fid
    name: bytes
    def __init__(self, parent: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., name: _Optional[bytes] = ...) -> None: ...

class LfsckInode(_message.Message):
    __slots__ = ("fid", "path")
    FID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    path: str
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., path: _Optional[str] = ...) -> None: ...

class LfsckVerifyRequest(_message.Message):
    __slots__ = ("hdr", "objects", "fids", "names", "pending")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    FIDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    objects: _containers.RepeatedCompositeFieldContainer[_common_pb2.StripeObject]
    fids: _containers.RepeatedCompositeFieldContainer[_common_pb2.Fid]
    names: _containers.RepeatedCompositeFieldContainer[_common_pb2.Fid]
    pending: bool
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., objects: _Optional[_Iterable[_Union[_common_pb2.StripeObject, _Mapping]]] = ..., fids: _Optional[_Iterable[_Union[_common_pb2.Fid, _Mapping]]] = ..., names: _Optional[_Iterable[_Union[_common_pb2.Fid, _Mapping]]] = ..., pending: _Optional[bool] = ...) -> None: ...

class LfsckObjectState(_message.Message):
    __slots__ = ("object", "owner", "stripe", "queued", "handed_out")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STRIPE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    HANDED_OUT_FIELD_NUMBER: _ClassVar[int]
    object: _common_pb2.StripeObject
    owner: _common_pb2.Fid
    stripe: int
    queued: bool
    handed_out: bool
    def __init__(self, object: _Optional[_Union[_common_pb2.StripeObject, _Mapping]] = ..., owner: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., stripe: _Optional[int] = ..., queued: _Optional[bool] = ..., handed_out: _Optional[bool] = ...) -> None: ...

class LfsckFileState(_message.Message):
    __slots__ = ("fid", "exists", "file", "path")
    FID_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    exists: bool
    file: LfsckFile
    path: str
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., exists: _Optional[bool] = ..., file: _Optional[_Union[LfsckFile, _Mapping]] = ..., path: _Optional[str] = ...) -> None: ...

class LfsckVerifyReply(_message.Message):
    __slots__ = ("hdr", "objects", "files", "stubs", "remote_names", "inodes", "pending")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    STUBS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_NAMES_FIELD_NUMBER: _ClassVar[int]
    INODES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    objects: _containers.RepeatedCompositeFieldContainer[LfsckObjectState]
    files: _containers.RepeatedCompositeFieldContainer[LfsckFileState]
    stubs: _containers.RepeatedCompositeFieldContainer[LfsckCrossName]
    remote_names: _containers.RepeatedCompositeFieldContainer[LfsckCrossName]
    inodes: _containers.RepeatedCompositeFieldContainer[LfsckInode]
    pending: _containers.RepeatedCompositeFieldContainer[LfsckPending]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., objects: _Optional[_Iterable[_Union[LfsckObjectState, _Mapping]]] = ..., files: _Optional[_Iterable[_Union[LfsckFileState, _Mapping]]] = ..., stubs: _Optional[_Iterable[_Union[LfsckCrossName, _Mapping]]] = ..., remote_names: _Optional[_Iterable[_Union[LfsckCrossName, _Mapping]]] = ..., inodes: _Optional[_Iterable[_Union[LfsckInode, _Mapping]]] = ..., pending: _Optional[_Iterable[_Union[LfsckPending, _Mapping]]] = ...) -> None: ...

class LfsckOrphan(_message.Message):
    __slots__ = ("object", "size", "blocks")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    object: _common_pb2.StripeObject
    size: int
    blocks: int
    def __init__(self, object: _Optional[_Union[_common_pb2.StripeObject, _Mapping]] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ...) -> None: ...

class LfsckSizeFix(_message.Message):
    __slots__ = ("fid", "seen", "size", "blocks")
    FID_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    seen: int
    size: int
    blocks: int
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., seen: _Optional[int] = ..., size: _Optional[int] = ..., blocks: _Optional[int] = ...) -> None: ...

class LfsckRepairRequest(_message.Message):
    __slots__ = ("hdr", "orphans", "keep_orphans", "sizes", "lost_found_for", "lost_found")
    HDR_FIELD_NUMBER: _ClassVar[int]
    ORPHANS_FIELD_NUMBER: _ClassVar[int]
    KEEP_ORPHANS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    LOST_FOUND_FOR_FIELD_NUMBER: _ClassVar[int]
    LOST_FOUND_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    orphans: _containers.RepeatedCompositeFieldContainer[LfsckOrphan]
    keep_orphans: bool
    sizes: _containers.RepeatedCompositeFieldContainer[LfsckSizeFix]
    lost_found_for: _containers.RepeatedScalarFieldContainer[int]
    lost_found: _common_pb2.Fid
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., orphans: _Optional[_Iterable[_Union[LfsckOrphan, _Mapping]]] = ..., keep_orphans: _Optional[bool] = ..., sizes: _Optional[_Iterable[_Union[LfsckSizeFix, _Mapping]]] = ..., lost_found_for: _Optional[_Iterable[int]] = ..., lost_found: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ...) -> None: ...

class LfsckOutcome(_message.Message):
    __slots__ = ("done", "note")
    DONE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    done: bool
    note: str
    def __init__(self, done: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class LfsckRepairReply(_message.Message):
    __slots__ = ("hdr", "orphans", "sizes", "lost_found")
    HDR_FIELD_NUMBER: _ClassVar[int]
    ORPHANS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    LOST_FOUND_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    orphans: _containers.RepeatedCompositeFieldContainer[LfsckOutcome]
    sizes: _containers.RepeatedCompositeFieldContainer[LfsckOutcome]
    lost_found: _containers.RepeatedCompositeFieldContainer[LfsckInode]
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., orphans: _Optional[_Iterable[_Union[LfsckOutcome, _Mapping]]] = ..., sizes: _Optional[_Iterable[_Union[LfsckOutcome, _Mapping]]] = ..., lost_found: _Optional[_Iterable[_Union[LfsckInode, _Mapping]]] = ...) -> None: ...

class MirrorStatusRequest(_message.Message):
    __slots__ = ("hdr",)
    HDR_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ...) -> None: ...

class MirrorCopy(_message.Message):
    __slots__ = ("fid", "mirror_id", "why", "bytes_total", "bytes_done", "rate")
    FID_FIELD_NUMBER: _ClassVar[int]
    MIRROR_ID_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    mirror_id: int
    why: str
    bytes_total: int
    bytes_done: int
    rate: float
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., mirror_id: _Optional[int] = ..., why: _Optional[str] = ..., bytes_total: _Optional[int] = ..., bytes_done: _Optional[int] = ..., rate: _Optional[float] = ...) -> None: ...

class MirrorWaiting(_message.Message):
    __slots__ = ("fid", "why")
    FID_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    fid: _common_pb2.Fid
    why: str
    def __init__(self, fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ..., why: _Optional[str] = ...) -> None: ...

class MirrorStatusReply(_message.Message):
    __slots__ = ("hdr", "degraded_files", "copying", "waiting", "copied_files", "copied_bytes", "failures", "resync_delay_s", "bandwidth")
    HDR_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FILES_FIELD_NUMBER: _ClassVar[int]
    COPYING_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    COPIED_FILES_FIELD_NUMBER: _ClassVar[int]
    COPIED_BYTES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    RESYNC_DELAY_S_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.RepHdr
    degraded_files: int
    copying: _containers.RepeatedCompositeFieldContainer[MirrorCopy]
    waiting: _containers.RepeatedCompositeFieldContainer[MirrorWaiting]
    copied_files: int
    copied_bytes: int
    failures: int
    resync_delay_s: float
    bandwidth: int
    def __init__(self, hdr: _Optional[_Union[_common_pb2.RepHdr, _Mapping]] = ..., degraded_files: _Optional[int] = ..., copying: _Optional[_Iterable[_Union[MirrorCopy, _Mapping]]] = ..., waiting: _Optional[_Iterable[_Union[MirrorWaiting, _Mapping]]] = ..., copied_files: _Optional[int] = ..., copied_bytes: _Optional[int] = ..., failures: _Optional[int] = ..., resync_delay_s: _Optional[float] = ..., bandwidth: _Optional[int] = ...) -> None: ...

class MirrorResyncRequest(_message.Message):
    __slots__ = ("hdr", "fid")
    HDR_FIELD_NUMBER: _ClassVar[int]
    FID_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    fid: _common_pb2.Fid
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., fid: _Optional[_Union[_common_pb2.Fid, _Mapping]] = ...) -> None: ...

class MirrorChangeRequest(_message.Message):
    __slots__ = ("hdr", "op")
    HDR_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    hdr: _common_pb2.ReqHdr
    op: MirrorOp
    def __init__(self, hdr: _Optional[_Union[_common_pb2.ReqHdr, _Mapping]] = ..., op: _Optional[_Union[MirrorOp, _Mapping]] = ...) -> None: ...
