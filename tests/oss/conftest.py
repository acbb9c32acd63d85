"""Fixtures: an OST served in-process by a real gRPC server on 127.0.0.1 over tmp_path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pytest
from oss_helpers import OssClient

from lustrepy.oss.identity import load_or_format
from lustrepy.oss.ofd import Ofd
from lustrepy.oss.osd import Osd
from lustrepy.oss.server import Serving, start_serving


@dataclass
class Ost:
    serving: Serving
    ofd: Ofd
    address: str
    client: OssClient


@pytest.fixture
def make_ost(tmp_path) -> Iterator[Callable[..., Ost]]:
    started: list[Ost] = []

    def make(capacity: int | None = None, name: str = "ost0") -> Ost:
        osd = Osd(str(tmp_path / name))
        ofd = Ofd(osd, load_or_format(osd, "testfs", 0), capacity)
        serving = start_serving(ofd, "127.0.0.1:0", callback_timeout=2.0, threads=16)
        address = f"127.0.0.1:{serving.port}"
        client = OssClient(address)
        ost = Ost(serving, ofd, address, client)
        started.append(ost)
        assert client.connect().hdr.errno == 0
        return ost

    try:
        yield make
    finally:
        for ost in started:
            ost.client.close()
            ost.serving.stop(grace=0.5)


@pytest.fixture
def ost(make_ost) -> Ost:
    return make_ost()
