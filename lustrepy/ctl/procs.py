"""Starting detached server processes and stopping them by recorded pid.

A process is "ours" only while /proc/PID/cmdline still ends with the argv we
recorded (and its start time matches, when recorded): a reused pid is never
signalled. This module never looks processes up by name and never signals a
pid it was not handed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lustrepy.common.errors import QuietError

log = logging.getLogger(__name__)

TERM_GRACE_S = 10.0
KILL_GRACE_S = 5.0
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class Started:
    """A process just started: its pid, start time, and where its log output begins."""

    pid: int
    starttime: int
    argv: tuple[str, ...]
    log: str
    log_offset: int


def find_program(name: str) -> str:
    """The absolute path of a lustrepy console script.

    Looked up in $LUSTREPY_BINDIR, then beside the running interpreter (the
    virtualenv lfsctl runs from), then on PATH.
    """
    dirs = [os.environ.get("LUSTREPY_BINDIR", ""), str(Path(sys.executable).parent)]
    for d in dirs:
        if d and os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    raise QuietError(f"{name} not found (looked in $LUSTREPY_BINDIR, {dirs[1]} and PATH)")


def read_cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return tuple(a.decode(errors="surrogateescape") for a in raw.split(b"\0")[:-1])


def read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) from /proc/PID/stat, None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def is_ours(pid: int, argv: Sequence[str], starttime: int = 0) -> bool:
    """True while pid is alive (not a zombie) and still runs the recorded argv."""
    if pid <= 0 or not argv:
        return False
    st = read_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    if starttime and st[1] != starttime:
        return False
    cmd = read_cmdline(pid)
    if not cmd or len(cmd) < len(argv):
        return False
    # A console script runs as "python SCRIPT ARGS...": the recorded argv is the tail.
    return tuple(cmd[len(cmd) - len(argv):]) == tuple(argv)


def spawn(argv: Sequence[str], log_path: str, env: dict[str, str] | None = None) -> Started:
    """Start argv detached (own session, no stdin), stdout and stderr appended to log_path."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env.update(env or {})
    with open(log_path, "ab") as logf:
        logf.write(f"--- lfsctl {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
        logf.flush()
        offset = logf.tell()
        try:
            p = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, env=full_env, cwd="/")
        except OSError as e:
            raise QuietError(f"cannot start {argv[0]}: {e.strerror}") from None
        logf.write(f"--- pid {p.pid}\n".encode())
    # The Popen object is dropped on purpose: the server outlives lfsctl.
    _reaped.pop(p.pid, None)
    p.returncode = 0  # keeps Popen.__del__ from warning about a child it does not own anymore
    st = read_stat(p.pid)
    log.info("started %s as pid %d", argv[0], p.pid)
    return Started(pid=p.pid, starttime=st[1] if st else 0, argv=tuple(argv), log=log_path, log_offset=offset)


_reaped: dict[int, int] = {}


def exit_status(pid: int) -> int | None:
    """Reap pid if it is a child of this process that has exited; its exit status, else None."""
    if pid in _reaped:
        return _reaped[pid]
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    _reaped[pid] = os.waitstatus_to_exitcode(status)
    return _reaped[pid]


def alive(p: Started) -> bool:
    """True while a process this lfsctl started still runs (reaps it when it exited).

    Asks waitpid, not /proc: right after the fork the child's cmdline is still ours.
    """
    return exit_status(p.pid) is None


def _owned(pid: int, argv: Sequence[str], starttime: int) -> bool:
    """Ours to signal: a running child of this process (even before it exec'd), or is_ours()."""
    if pid in _reaped:
        return False
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return is_ours(pid, argv, starttime)
    if got == 0:
        return True
    _reaped[pid] = os.waitstatus_to_exitcode(status)
    return False


def stop(targets: Iterable[tuple[int, Sequence[str], int]], grace_s: float = TERM_GRACE_S,
         sig: int = signal.SIGTERM) -> list[int]:
    """SIGTERM (or `sig`) every (pid, argv, starttime) that is still ours, wait, SIGKILL after grace_s.

    Returns the pids that were signalled. Never signals a pid whose cmdline
    no longer matches its recorded argv, except a still unreaped child of this
    process (its pid cannot have been reused, and it may not have exec'd yet).
    """
    live = [(pid, tuple(argv), st) for pid, argv, st in targets if _owned(pid, argv, st)]
    for pid, _, _ in live:
        _signal(pid, sig)
    pending = _wait_gone(live, grace_s)
    if pending:
        log.warning("pids %s ignored SIGTERM for %.0fs; sending SIGKILL", [p for p, _, _ in pending], grace_s)
        for pid, argv, st in pending:
            if _owned(pid, argv, st):
                _signal(pid, signal.SIGKILL)
        pending = _wait_gone(pending, KILL_GRACE_S)
        if pending:
            raise QuietError(f"pids {', '.join(str(p) for p, _, _ in pending)} did not exit after SIGKILL")
    return [pid for pid, _, _ in live]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(procs: list[tuple[int, tuple[str, ...], int]], timeout: float) -> list[tuple[int, tuple[str, ...], int]]:
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending:
        pending = [p for p in pending if _owned(*p)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    return pending


def log_tail(path: str, offset: int = 0, lines: int = 15) -> list[str]:
    """The last lines a process wrote to its log since offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()[-64 * 1024:]
    except OSError:
        return []
    return [ln for ln in data.decode(errors="replace").splitlines()
            if ln.strip() and not ln.startswith(("--- lfsctl ", "--- pid "))][-lines:]
