"""What a failed file operation on an object means to a client, and the small records both the
object layer (ofd) and its write sessions (writes) hand out.

Never touches files; only maps OSError to LpError (with one log line for damage).
"""

from __future__ import annotations

import errno
import logging
import os

from lustrepy.common.errors import LpError
from lustrepy.common.records import Lvb
from lustrepy.oss.osd import ObjStat

log = logging.getLogger("lustrepy.oss.ofd")

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_PASSED_ON = (errno.ENOENT, errno.ENOSPC, errno.EFBIG, errno.EROFS)


def lvb_of(st: ObjStat) -> Lvb:
    return Lvb(size=st.size, blocks=st.blocks, mtime_ns=st.mtime_ns, atime_ns=st.atime_ns, ctime_ns=st.ctime_ns)


def oserr(e: OSError, what: str) -> LpError:
    """What a failed file operation means to the client: a missing object, a full or read-only
    OST and too large a size as they are; anything else (EIO, EACCES, EISDIR, an object that is
    not a regular file...) is damage on this OST: EIO to the client and one line in the log."""
    err = e.errno or errno.EIO
    if err in NO_SPACE:
        err = errno.ENOSPC
    text = f"{what}: {e.strerror or os.strerror(err)}"
    if err not in _PASSED_ON:
        log.error("%s (%s): answering EIO", text, errno.errorcode.get(err, err))
        err = errno.EIO
    return LpError(err, text)
