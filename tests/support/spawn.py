"""Start server processes from a process that holds no files open on a mount.

A process that starts a program while it holds descriptors on a FUSE mount makes the
kernel close those descriptors in the child (close-on-exec), and each close is a FLUSH
the mount must answer. When the mount is waiting for the very server being started
(an OSS restarted under load), the child sits in that flush until the mount gives up,
minutes later, and the server starts only then. A test that restarts servers under a
workload therefore starts them through a fork server made before the first mount: its
children inherit nothing but the log file.

`Spawned` offers what the tests use of subprocess.Popen: pid, poll, wait, send_signal,
kill, returncode.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
from multiprocessing.context import ForkServerContext

_CTX: ForkServerContext | None = None


def ready() -> None:
    """Start the fork server now, while this process holds no descriptors on a mount."""
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        from multiprocessing import forkserver
        forkserver.ensure_running()


class Spawned:
    """A program started by the fork server, in a session of its own, output to a log."""

    def __init__(self, argv: list[str], log: str) -> None:
        ready()
        assert _CTX is not None
        shell = 'exec setsid "$@" >>"$LUSTREPY_SPAWN_LOG" 2>&1 </dev/null'
        env = {**os.environ, "LUSTREPY_SPAWN_LOG": log}
        self._proc = _CTX.Process(target=os.execve, args=("/bin/sh", ["sh", "-c", shell, "sh", *argv], env),
                                  daemon=False)
        self._proc.start()
        assert self._proc.pid is not None
        self.pid: int = self._proc.pid
        self.args = argv

    @property
    def returncode(self) -> int | None:
        return self._proc.exitcode

    def poll(self) -> int | None:
        return self._proc.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._proc.exitcode

    def send_signal(self, sig: int) -> None:
        if self._proc.exitcode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
