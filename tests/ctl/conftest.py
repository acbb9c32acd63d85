"""Fixtures for lfsctl tests: a stand-in MDS over real gRPC, and an environment with no cluster around."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ctl.fakemds import FakeMds, Serving


@pytest.fixture
def fake_mds() -> Iterator[Serving]:
    s = Serving(FakeMds())
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(autouse=True)
def no_ambient_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Commands under test must not find a cluster the developer happens to run."""
    monkeypatch.delenv("LUSTREPY_MGS", raising=False)
    monkeypatch.setenv("LUSTREPY_ROOT", str(tmp_path_factory.mktemp("no-cluster")))
    monkeypatch.setattr("lustrepy.ctl.target.DEFAULT_ROOT", str(tmp_path_factory.mktemp("no-default-cluster")))
