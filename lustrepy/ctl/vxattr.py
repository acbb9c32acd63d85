"""Reading a lustrepy mount's virtual extended attributes (JSON the client answers, such as
`lustrepy.wbc` and `lustrepy.lmv`), with one-line errors for the cases users meet."""

from __future__ import annotations

import errno
import json
import os
from typing import Any

from lustrepy.common.errors import QuietError


def read_json(path: str, name: str, not_dir: str) -> dict[str, Any]:
    """The JSON object of attribute `name` of `path`; `not_dir` is what a non-directory is told."""
    try:
        raw = os.getxattr(path, name)
    except FileNotFoundError:
        raise QuietError(f"{path}: no such file or directory") from None
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise QuietError(f"{path}: not on a lustrepy mount") from None
        if e.errno == errno.ENOTDIR:
            raise QuietError(f"{path}: {not_dir}") from None
        raise QuietError(f"{path}: {os.strerror(e.errno or errno.EIO)}") from None
    try:
        return dict(json.loads(raw))
    except ValueError:
        raise QuietError(f"{path}: the client answered something that is not JSON") from None
