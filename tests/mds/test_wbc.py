"""WBC grants, revocation and contention on the MDS: the manager against a real
lock server in-process, then the protocol against a real lustrepy-mds."""

from __future__ import annotations

import threading
import time

import pytest

from lustrepy.common.fid import Fid
from lustrepy.client.mdc import Mdc
from lustrepy.ldlm.lockd import LockServer
from lustrepy.ldlm.modes import LockMode
from lustrepy.ldlm.resource import ResId
from lustrepy.mds.wbc import WBC_BITS, ContentionPolicy, WbcManager
from lustrepy.rpc.convert import fid_from_pb
from tests.support.servers import Cluster, wait_for

pytestmark = pytest.mark.timeout(90)

D = Fid(0x200000400, 7, 0)
UPDATE = 2


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def lockd():
    ls = LockServer("wbc-test", callback_timeout=5.0)
    ls.start()
    for c in ("A", "B"):
        ls.connect(c)
    yield ls
    ls.stop()


def _res(fid: Fid) -> ResId:
    return ResId(fid.seq, fid.oid, fid.ver)


def _cancel_when_called_back(lockd: LockServer, owner: str, cookie: int) -> threading.Thread:
    """Play the holder: cancel the lock once its blocking callback went out."""
    def run() -> None:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if any(i.lock.cookie == cookie and i.blocking_sent for i in lockd.locks(owner)):
                lockd.cancel(owner, [cookie])
                return
            time.sleep(0.01)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_grant_to_a_lone_client_even_over_its_own_locks(lockd):
    w = WbcManager(lockd)
    own = lockd.enqueue("A", _res(D), LockMode.PR, ibits=UPDATE)
    desc = w.try_grant("A", D)
    assert desc is not None and desc.mode == LockMode.EX and desc.ibits == WBC_BITS
    assert w.holder(D) == "A" and w.info(D).mode == "wbc-held"
    assert w.covers("A", D) and not w.covers("B", D)
    # the holder's own later locks and its replay's local locks are not blocked by it
    assert lockd.enqueue("A", _res(D), LockMode.PR, ibits=UPDATE | 16).granted
    local = lockd.enqueue("mds-local", _res(D), LockMode.EX, ibits=UPDATE, local=True, on_behalf="A", timeout=1)
    assert local.granted
    lockd.cancel("mds-local", [local.cookie])
    assert own.granted


def test_no_grant_while_another_client_holds_locks_there(lockd):
    w = WbcManager(lockd)
    lockd.enqueue("B", _res(D), LockMode.PR, ibits=UPDATE)
    assert w.try_grant("A", D) is None
    i = w.info(D)
    assert i.mode == "server-side" and i.conflicts == 1 and i.grants == 0


def test_another_clients_request_revokes_the_grant_first(lockd):
    w = WbcManager(lockd)
    lockd.on_blocking = w.on_blocking
    desc = w.try_grant("A", D)
    assert desc is not None
    t = _cancel_when_called_back(lockd, "A", desc.cookie)
    w.revoke_for("B", D)            # returns only once A has cancelled
    t.join(5)
    assert lockd.lock(desc.cookie) is None
    i = w.info(D)
    assert i.mode == "server-side" and i.holder == "" and i.revocations == 1 and i.conflicts == 1
    w.revoke_for("A", D)            # nothing held: returns at once
    assert w.try_grant("B", D) is not None and w.holder(D) == "B"


def test_contention_stops_grants_until_the_hold_passes_quietly(lockd):
    clock = Clock()
    w = WbcManager(lockd, ContentionPolicy(threshold=3, window_s=4.0, hold_s=30.0), clock=clock)
    other = lockd.enqueue("B", _res(D), LockMode.PR, ibits=UPDATE)
    for _ in range(2):
        assert w.try_grant("A", D) is None
        clock.t += 1.0
    assert w.info(D).mode == "server-side"
    assert w.try_grant("A", D) is None          # the third conflict within 4 s
    assert w.info(D).mode == "contended"
    lockd.cancel("B", [other.cookie])
    assert w.try_grant("A", D) is None          # nobody else there, but contended
    clock.t += 20.0
    assert w.info(D).mode == "contended" and 9 < w.info(D).contended_for_s <= 10
    clock.t += 10.5
    assert w.info(D).mode == "server-side"
    assert w.try_grant("A", D) is not None


def test_conflicts_while_contended_extend_the_hold(lockd):
    clock = Clock()
    w = WbcManager(lockd, ContentionPolicy(threshold=2, window_s=4.0, hold_s=10.0), clock=clock)
    lockd.on_blocking = w.on_blocking
    held = lockd.enqueue("B", _res(D), LockMode.PR, ibits=UPDATE)
    assert w.try_grant("A", D) is None and w.try_grant("A", D) is None
    assert w.info(D).mode == "contended"
    clock.t += 8
    # A's server-side update in the directory calls back B's lock: a conflict, while contended
    t = _cancel_when_called_back(lockd, "B", held.cookie)
    local = lockd.enqueue("mds-local", _res(D), LockMode.EX, ibits=UPDATE, local=True, on_behalf="A")
    lockd.cancel("mds-local", [local.cookie])
    t.join(5)
    clock.t += 8
    assert w.info(D).mode == "contended"
    clock.t += 2.5
    assert w.info(D).mode == "server-side"


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        ContentionPolicy(threshold=0)
    with pytest.raises(ValueError):
        ContentionPolicy(window_s=0)


# ---- over the wire -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("wbc"))
    try:
        c.start(1, mds_args=("--callback-timeout", "3", "--contention-threshold", "4",
                             "--contention-window", "4", "--contention-hold", "2"))
        m = Mdc(c.mds.address, c.fsname)
        m.connect()
        wait_for(lambda: all(o.active and o.precreated > 0 for o in m.statfs().osts) and m.statfs().osts,
                 what="an active OST with precreated objects")
        m.close()
        yield c
    finally:
        c.stop()


def _client(cluster, **kw) -> Mdc:
    m = Mdc(cluster.mds.address, cluster.fsname, with_locks=True, **kw)
    m.connect()
    return m


def _create(m: Mdc, parent: Fid, name: bytes):
    return m.intent(8 | 4, parent=parent, name=name, open_flags=0o1 | 0o100, mode=0o100644, want_wbc=True)


def test_create_gets_a_wbc_lock_and_another_clients_lookup_revokes_it(cluster):
    a, called = None, threading.Event()
    b = _client(cluster)
    try:
        a = Mdc(cluster.mds.address, cluster.fsname, on_blocking=lambda lock: called.set())
        a.connect()
        d = fid_from_pb(a.mkdir(a.root, b"wbc1").attr.fid)
        rep = _create(a, d, b"f0")
        assert rep.wbc_lock.cookie and rep.wbc_lock.mode == LockMode.EX and rep.wbc_lock.ibits == WBC_BITS
        info = b.wbc_info(d)
        assert info.mode == "wbc-held" and info.holder == a.client_id and info.grants == 1
        assert not _create(a, d, b"f1").wbc_lock.cookie          # one grant per holder
        b.intent(1 | 2, parent=d, name=b"f0")                     # B looks: A is called back first
        assert called.is_set()
        info = b.wbc_info(d)
        assert info.mode == "server-side" and info.revocations == 1
    finally:
        b.close()
        if a is not None:
            a.close()


def test_mkdir_may_ask_for_a_wbc_lock_on_the_new_directory(cluster):
    a = _client(cluster)
    try:
        rep = a.mkdir(a.root, b"wbc2", want_wbc=True)
        assert rep.wbc_lock.cookie
        assert (rep.wbc_lock.res.n0, rep.wbc_lock.res.n1) == (rep.attr.fid.seq, rep.attr.fid.oid)
        assert not a.mkdir(a.root, b"wbc3").wbc_lock.cookie      # not asked for
    finally:
        a.close()


def test_two_clients_creating_in_one_directory_switch_it_to_server_side_then_back(cluster):
    a, b = _client(cluster), _client(cluster)
    try:
        d = fid_from_pb(a.mkdir(a.root, b"shared").attr.fid)
        names: set[bytes] = set()
        for i in range(12):
            for m, who in ((a, b"a"), (b, b"b")):
                name = who + b"%03d" % i
                _create(m, d, name)
                names.add(name)
        info = a.wbc_info(d)
        assert info.mode == "contended", info
        listed = {e.name for e in a.listdir(d)}
        assert listed == names
        assert not _create(a, d, b"late").wbc_lock.cookie
        # nobody else works there any more: after the hold (2 s) a lone client gets WBC again
        wait_for(lambda: a.wbc_info(d).mode == "server-side", timeout=10, what="contention to end")
        assert _create(a, d, b"again").wbc_lock.cookie
    finally:
        a.close()
        b.close()


def test_wbc_info_of_a_file_is_enotdir(cluster):
    a = _client(cluster)
    try:
        d = fid_from_pb(a.mkdir(a.root, b"wbc4").attr.fid)
        f = fid_from_pb(_create(a, d, b"x").attr.fid)
        with pytest.raises(Exception) as ei:
            a.wbc_info(f)
        assert getattr(ei.value, "errno", None) == 20
    finally:
        a.close()


def test_directories_created_in_are_tracked_without_wbc_and_become_contended(lockd):
    clock = Clock()
    w = WbcManager(lockd, ContentionPolicy(threshold=2, window_s=4.0, hold_s=5.0), clock=clock)
    lockd.on_blocking = w.on_blocking
    w.track(D)
    assert not w.contended(D)
    for _ in range(2):      # server-side creates by A call back B's cached lock on the directory
        held = lockd.enqueue("B", _res(D), LockMode.PR, ibits=UPDATE)
        t = _cancel_when_called_back(lockd, "B", held.cookie)
        local = lockd.enqueue("mds-local", _res(D), LockMode.EX, ibits=UPDATE, local=True, on_behalf="A")
        lockd.cancel("mds-local", [local.cookie])
        t.join(5)
    assert w.contended(D) and w.info(D).mode == "contended"
    clock.t += 6
    assert not w.contended(D)
