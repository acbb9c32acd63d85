"""Blocking RPC code run on the trio thread, its waits handed back to trio.

A FUSE request that needs one MDS request used to take a worker thread
there and back (trio.to_thread): two thread wake-ups, a wake-up of the trio
loop through its socketpair, and the GIL passed between threads each way.
Instead the client may run a synchronous mdc call on the trio thread itself,
inside a greenback portal (`run`): the request lane sends at once and, while
the reply is on its way, its wait goes back to trio (`LoopWaits`), which serves
other FUSE requests meanwhile. Anything else that would block the thread (a
gRPC call, a resend's pause, a reconnect, opening a lane connection) goes to
a worker thread and is awaited (`offload`, `sleep`).

The one rule for code run here: never hold a threading lock across a call that
may wait. Another task on the same thread could then ask for the same lock,
and the thread would wait for itself.

When nothing else is in flight on the mount, `run(spin=S)` lets the first wait
for a reply poll the socket for up to S seconds without giving the thread back:
most MDS replies come within a millisecond, and the round through trio's epoll
costs more than the poll.
"""

from __future__ import annotations

import contextvars
import functools
import select
import socket
import time
from typing import Any, Callable, TypeVar

import greenback
import trio

R = TypeVar("R")

_spin: contextvars.ContextVar[float] = contextvars.ContextVar("lustrepy_rpc_spin", default=0.0)


def on_loop() -> bool:
    """True in code `run` called: waits must go through this module, not block."""
    return greenback.has_portal()


async def run(fn: Callable[..., R], *args: Any, spin: float = 0.0, **kwargs: Any) -> R:
    """Run fn(*args, **kwargs) on the trio thread; its lane waits yield to trio. `spin`:
    seconds its first wait for a reply may poll without yielding (0: none)."""
    await greenback.ensure_portal()
    token = _spin.set(spin)
    try:
        return fn(*args, **kwargs)
    finally:
        _spin.reset(token)


def offload(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """fn(*args, **kwargs): in a worker thread, awaited, when called from code `run` runs;
    directly otherwise."""
    if not greenback.has_portal():
        return fn(*args, **kwargs)
    return greenback.await_(trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs)))


def sleep(seconds: float) -> None:
    if greenback.has_portal():
        greenback.await_(trio.sleep(seconds))     # noqa: ASYNC105 - awaited by greenback on the trio thread
    else:
        time.sleep(seconds)


class LoopWaits:
    """Waits for a non-blocking socket to be ready, on trio, until `deadline`
    (time.monotonic); past it socket.timeout, as a blocking socket's timeout raises."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._spin = _spin.get()

    def readable(self, s: socket.socket) -> None:
        if self._spin > 0:
            budget, self._spin = min(self._spin, self.deadline - time.monotonic()), 0.0
            p = select.poll()
            p.register(s, select.POLLIN)
            if budget > 0 and p.poll(budget * 1000):
                return
        self._wait(trio.lowlevel.wait_readable, s)

    def writable(self, s: socket.socket) -> None:
        self._wait(trio.lowlevel.wait_writable, s)

    def _wait(self, waiter: Callable[[socket.socket], Any], s: socket.socket) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")

        async def wait() -> bool:
            with trio.move_on_after(left):
                await waiter(s)
                return True
            return False
        if not greenback.await_(wait()):
            raise socket.timeout("timed out")
