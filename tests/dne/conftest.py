"""Fixtures of the tests of several MDTs."""

from __future__ import annotations

import pytest

from tests.support.dne import two_mdt_mount


@pytest.fixture
def fs(tmp_path):
    """A mount of a file system of two MDTs whose root holds `far`, a directory on MDT1."""
    with two_mdt_mount(tmp_path) as got:
        yield got
