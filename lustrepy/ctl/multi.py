"""Asking several servers at once for lfsctl: calls in parallel, failures kept per server.

A command that covers the MDS and every OST shows what the servers that
answered said, then one line on stderr per server that did not, and exits 1
(scripts see the answer was partial). Nothing here knows any RPC.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from lustrepy.ctl.servers import Server, ServerError

T = TypeVar("T")

PROG = "lfsctl"
MAX_PARALLEL = 16


@dataclass(frozen=True, slots=True)
class Gathered(Generic[T]):
    """Answers in the servers' order, and the servers that failed (with why)."""

    answers: tuple[tuple[Server, T], ...]
    failures: tuple[ServerError, ...]

    @property
    def exitcode(self) -> int:
        return 1 if self.failures else 0


def gather(servers: list[Server], fn: Callable[[Server], T]) -> Gathered[T]:
    """fn(server) for every server, at most MAX_PARALLEL at a time; a ServerError is kept, not raised."""
    def one(s: Server) -> tuple[Server, T | ServerError]:
        try:
            return s, fn(s)
        except ServerError as e:
            return s, e

    if len(servers) <= 1:
        results = [one(s) for s in servers]
    else:
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(servers)), thread_name_prefix="lfsctl") as pool:
            results = list(pool.map(one, servers))
    answers = tuple((s, r) for s, r in results if not isinstance(r, ServerError))
    failures = tuple(r for _, r in results if isinstance(r, ServerError))
    return Gathered(answers, failures)


def say_failures(failures: tuple[ServerError, ...]) -> None:
    """One line on stderr per server that did not answer."""
    sys.stdout.flush()
    for e in failures:
        sys.stderr.write(f"{PROG}: {e}\n")
    sys.stderr.flush()
