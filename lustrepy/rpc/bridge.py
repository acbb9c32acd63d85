"""The bridge between trio code and blocking calls: worker threads.

grpcio has no trio support, so blocking calls (data-path methods and mdc work
that waits on more than the request lane, each of which sets its own RPC
deadlines through lustrepy.rpc.channel.call) run in worker threads via
trio.to_thread.run_sync, limited by one CapacityLimiter per kind of work. A
plain MDS request over the request lane takes the other way, rpc/inline.py:
on the trio thread, its wait handed back to trio.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import trio



class Bridge:
    """Runs blocking RPCs from trio; `limiter` caps threads in flight for one target."""

    def __init__(self, max_in_flight: int = 16) -> None:
        self.limiter = trio.CapacityLimiter(max_in_flight)

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking function (one that sets its own RPC deadlines) under the same limiter."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
