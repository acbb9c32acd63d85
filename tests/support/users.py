"""Running a piece of a test as another user: a forked child drops to the given
credentials (and optionally enters a directory and clears its umask), runs the
function, and exits with its errno (0 on success, 254 for an errno that does not
fit an exit status, 255 for anything else)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path


def run_as(uid: int, gid: int, fn: Callable[[], object], *, groups: Iterable[int] = (),
           cwd: Path | None = None, umask: int | None = None) -> int:
    pid = os.fork()
    if pid == 0:                                        # pragma: no cover - child
        code = 255
        try:
            if cwd is not None:
                os.chdir(cwd)
            if umask is not None:
                os.umask(umask)
            os.setgroups(list(groups))
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            fn()
            code = 0
        except OSError as e:
            code = e.errno if 0 < e.errno < 255 else 254
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
