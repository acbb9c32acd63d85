"""Fixtures for the MDT storage and namespace tests: a formatted store on real
SQLite in tmp_path that must pass the consistency checker when the test ends."""

from __future__ import annotations

import pytest

from lustrepy.common.errors import LpError
from lustrepy.common.layout import StripeObject
from lustrepy.common.records import Cred
from lustrepy.mds.lfsck import check_invariants
from lustrepy.mds.store import Store

ROOT = Cred(0, 0)
ALICE = Cred(1000, 1000, (1000, 2000))
BOB = Cred(1001, 1001, (1001,))


@pytest.fixture
def mdt_dir(tmp_path):
    d = tmp_path / "mdt"
    Store.format(d, "lptest")
    return d


@pytest.fixture
def store(mdt_dir):
    """An open store; the test ends with the invariants checked."""
    s = Store(mdt_dir)
    yield s
    problems = check_invariants(s)
    s.close()
    assert problems == []


class Ops:
    """Short names for one-operation transactions on a store."""

    def __init__(self, store: Store) -> None:
        self.s = store

    def __getattr__(self, name):
        def call(*args, **kw):
            return self.s.write(lambda tx: getattr(tx, name)(*args, **kw))[0]
        return call

    def read(self):
        return self.s.read()

    def err(self, fn_name, *args, **kw) -> int:
        """The errno of a failing one-operation transaction."""
        with pytest.raises(LpError) as ei:
            getattr(self, fn_name)(*args, **kw)
        return ei.value.errno


@pytest.fixture
def ops(store):
    return Ops(store)


@pytest.fixture
def osts(store):
    """Two registered OSTs with object pools, for layouts with objects."""
    def fn(tx):
        for i in (0, 1):
            tx.ost_register(i, f"lptest-OST{i:04x}_UUID", f"127.0.0.1:{7000 + i}")
            tx.pool_add(i, 1, 1000)
    store.write(fn)

    def take(n_per=1):
        def t(tx):
            return tuple(StripeObject(i, tx.pool_take(i, 1)[0]) for i in range(n_per))
        return store.write(t)[0]
    return take
