"""Small real file systems for tests of full disks: a tmpfs of a given size mounted
on a directory (root only), always unmounted afterwards, also when the test fails.
A test that cannot mount one is skipped, never faked."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHUNK = 1 << 16


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "16m") mounted on `path` for the block's length."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave: int = 0) -> int:
    """Write a ballast file at `path` until its file system has `leave` bytes or fewer free
    (0: until ENOSPC). Returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                sv = os.statvfs(path.parent)
                free = sv.f_bavail * sv.f_frsize - leave
                if leave and free <= 0:
                    break
                n = min(CHUNK, free) if leave else CHUNK
                written += f.write(b"\xa5" * n) or 0
        except OSError:
            pass
    return written


def free_bytes(path: Path) -> int:
    sv = os.statvfs(path)
    return sv.f_bavail * sv.f_frsize
