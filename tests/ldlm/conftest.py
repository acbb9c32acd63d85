"""Fixtures: a LockServer behind a real gRPC server on 127.0.0.1, and LockClients connected to it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import grpc
import pytest

from lustrepy.common.records import Lvb
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.request import LockClient
from lustrepy.ldlm.service import LdlmService
from lustrepy.ldlm.resource import ResId
from lustrepy.rpc.channel import bind, make_channel, make_server
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import ldlm_pb2_grpc

CALLBACK_TIMEOUT = 1.0


@dataclass
class Peer:
    """One client: its LockClient and what its callbacks saw."""

    client_id: str
    ls: LockServer
    client: LockClient = field(init=False)
    blocking: list[cpb.LockDesc] = field(default_factory=list)
    evicted: threading.Event = field(default_factory=threading.Event)
    size: int = 0                       # what this client reports to glimpses
    flush_s: float = 0.0                # how long "flushing" under a lock takes
    flushed_at: list[float] = field(default_factory=list)

    def on_blocking(self, desc: cpb.LockDesc) -> None:
        self.blocking.append(desc)
        if self.flush_s:
            time.sleep(self.flush_s)
        self.flushed_at.append(time.monotonic())

    def on_glimpse(self, desc: cpb.LockDesc) -> Lvb | None:
        return Lvb(size=self.size, mtime_ns=7)

    def connect(self) -> None:
        """What the MDS/OSS Connect RPC does for a client, then attach the callback stream."""
        self.evicted.clear()
        self.client.attach(self.ls.connect(self.client_id, "test"))
        assert self.client.wait_attached(5.0)


@pytest.fixture
def lock_server() -> Iterator[LockServer]:
    sizes: dict[ResId, int] = {}
    ls = LockServer("t-OST0000", callback_timeout=CALLBACK_TIMEOUT,
                    lvb_source=lambda res: Lvb(size=sizes.get(res, 100)))
    ls.start()
    try:
        yield ls
    finally:
        ls.stop()


@pytest.fixture
def ldlm_address(lock_server: LockServer) -> Iterator[str]:
    server = make_server(max_workers=16)
    ldlm_pb2_grpc.add_LdlmServicer_to_server(LdlmService(lock_server), server)
    port = bind(server, "127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait(5)


@pytest.fixture
def channel(ldlm_address: str) -> Iterator[grpc.Channel]:
    ch = make_channel(ldlm_address)
    try:
        yield ch
    finally:
        ch.close()


@pytest.fixture
def make_peer(lock_server: LockServer, channel: grpc.Channel) -> Iterator[Callable[..., Peer]]:
    peers: list[Peer] = []

    def make(client_id: str, **kwargs: object) -> Peer:
        peer = Peer(client_id, lock_server)
        peer.client = LockClient(channel, client_id, on_blocking=peer.on_blocking, on_glimpse=peer.on_glimpse,
                                 on_evicted=peer.evicted.set, rpc_timeout=5.0, **kwargs)  # type: ignore[arg-type]
        peers.append(peer)
        peer.connect()
        return peer

    try:
        yield make
    finally:
        for p in peers:
            p.client.close()
