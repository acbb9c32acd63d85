"""The protocol's constants, written once: the bit sets of the MDS wire protocol
(lustrepy/rpc/v1/mds.proto) as IntFlags that the client and the servers import,
and `check_bits`, which a server applies to every such value it reads off the wire.

Each class here has exactly the members of its .proto enum, with the same values
(tests/common/test_protocol.py holds them to it). The lock modes and inode bits
of common.proto belong to the lock library: lustrepy.ldlm.modes.LockMode and
lustrepy.ldlm.inodebits.IBit. Pure constants and one check; never does I/O and
never imports the generated modules (common sits below lustrepy.rpc).
"""

from __future__ import annotations

import errno
import functools
from enum import IntFlag

from lustrepy.common.errors import LpError


class IT(IntFlag):
    """What an intent asks the MDS to do (mds.proto IntentOp; IntentRequest.ops)."""

    LOOKUP = 1
    GETATTR = 2
    OPEN = 4
    CREAT = 8
    LAYOUT = 16
    READDIR = 32


# Intents that change the MDS's state: sent again with the same XID after transport
# trouble, answered from the reply record when resent.
IT_MODIFYING = int(IT.OPEN | IT.CREAT | IT.LAYOUT)


class DISP(IntFlag):
    """What an intent did (mds.proto Disposition; IntentReply.disposition), after Lustre's DISP_*."""

    LOOKUP_EXECD = 1
    LOOKUP_NEG = 2
    LOOKUP_POS = 4
    OPEN_CREATE = 8
    OPEN_OPEN = 16


class SA(IntFlag):
    """Which fields of a setattr are set (mds.proto AttrValid; SetattrOp.valid).

    ATIME_NOW / MTIME_NOW set the time to the server's clock (utimensat's UTIME_NOW)
    and win over ATIME / MTIME. A SIZE without SIZE_KNOWN is a truncate: the MDS records
    it first and the client cuts the objects after, so until a writer reports a size the
    objects' sizes count (a client that dies in between leaves no disagreement)."""

    MODE = 1
    UID = 2
    GID = 4
    SIZE = 8
    ATIME = 16
    MTIME = 32
    CTIME = 64
    ATIME_NOW = 128
    MTIME_NOW = 256
    SIZE_KNOWN = 512    # with SIZE: the objects hold this size already (a writer's report)


class RENAME(IntFlag):
    """renameat2 flags (mds.proto RenameFlag; RenameOp.flags), Linux's values."""

    NOREPLACE = 1
    EXCHANGE = 2


class XATTR(IntFlag):
    """setxattr flags (mds.proto XattrFlag; SetxattrOp.flags), Linux's values."""

    CREATE = 1
    REPLACE = 2


@functools.cache
def all_bits(flags: type[IntFlag]) -> int:
    """Every bit the flag set defines (worked out once per flag set: every request checks)."""
    mask = 0
    for member in flags:
        mask |= member.value
    return mask


def check_bits(flags: type[IntFlag], value: int, what: str) -> int:
    """`value` from the wire when every bit of it is one `flags` defines; EINVAL otherwise."""
    unknown = value & ~all_bits(flags)
    if unknown:
        raise LpError(errno.EINVAL, f"unknown {what} bits {unknown:#x} in {value:#x}")
    return value
