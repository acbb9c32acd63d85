"""The one bridge between trio code and grpcio's synchronous stubs.

grpcio has no trio support, so blocking stub calls run in worker threads via
trio.to_thread.run_sync, limited by one CapacityLimiter per target and always
with a deadline. Transport trouble maps to LpError in lustrepy.rpc.channel.call.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import trio

from lustrepy.rpc.channel import DEFAULT_TIMEOUT, call


class Bridge:
    """Runs blocking RPCs from trio; `limiter` caps threads in flight for one target."""

    def __init__(self, max_in_flight: int = 16) -> None:
        self.limiter = trio.CapacityLimiter(max_in_flight)

    async def call(self, method: Callable[..., Any], request: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        return await trio.to_thread.run_sync(call, method, request, timeout, limiter=self.limiter,
                                             abandon_on_cancel=False)

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking function (one that sets its own RPC deadlines) under the same limiter."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
