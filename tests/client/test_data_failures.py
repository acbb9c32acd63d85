"""The data path when servers fail: an OSS that is down gives errors within the RPC timeout and
never a hang, works again once it is back (without restarting the client), and a full OST's
ENOSPC reaches the writer."""

from __future__ import annotations

import errno
import os
import time

import pytest

from lustrepy.client.datapath import DataPath
from lustrepy.common.errors import LpError
from tests.client.conftest import addresses_of, create_file, start_cluster
from tests.support.servers import wait_for

pytestmark = pytest.mark.timeout(90)

KiB, MiB = 1 << 10, 1 << 20
TIMEOUT = 3.0
DOWN_ERRNOS = (errno.EIO, errno.ETIMEDOUT, errno.ENOTCONN)
CAPACITY = 6 * MiB


@pytest.fixture(scope="module")
def fcluster(tmp_path_factory):
    c, m = start_cluster(tmp_path_factory.mktemp("fail"), 2, {1: ("--capacity", str(CAPACITY))})
    try:
        yield c, m
    finally:
        m.close()
        c.stop()


@pytest.fixture
def client(fcluster):
    made: list[DataPath] = []

    def make(name: str) -> DataPath:
        dp = DataPath("testfs", f"{name}-{len(made)}-{os.getpid()}", addresses_of(fcluster[1]),
                      on_invalidate=lambda fid: None, rpc_timeout=TIMEOUT)
        made.append(dp)
        return dp

    yield make
    for dp in made:
        dp.close()


def _fails_fast(fn) -> LpError:
    t0 = time.monotonic()
    with pytest.raises(LpError) as ei:
        fn()
    elapsed = time.monotonic() - t0
    assert ei.value.errno in DOWN_ERRNOS, ei.value
    assert elapsed < TIMEOUT * 2 + 1, f"took {elapsed:.1f}s"
    return ei.value


def test_oss_down_fails_within_the_timeout_and_works_again_after_restart(fcluster, client):
    c, mdc = fcluster
    fid, layout = create_file(mdc, 2, 64 * KiB, stripe_offset=0)   # striped over both OSTs (OST1 is small)
    assert {o.ost_index for o in layout.objects} == {0, 1}
    writer = client("w")
    fd = writer.open(fid, layout)
    first = os.urandom(512 * KiB)
    fd.write(0, first)
    fd.flush()

    c.osts[0].stop()
    reader = client("r").open(fid, layout)
    _fails_fast(lambda: reader.read(0, 100))                # needs a lock and data from OST0
    _fails_fast(lambda: reader.size())
    _fails_fast(lambda: reader.write(0, b"new"))
    second = os.urandom(128 * KiB)
    fd.write(512 * KiB, second)                             # buffered under the writer's lock...
    _fails_fast(fd.flush)                                   # ...but it cannot reach OST0
    _fails_fast(fd.fsync)

    c.osts[0] = c.oss_proc(0).start()                       # same directory, same port
    wait_for(lambda: _works(reader.size), timeout=20, what="the data path to use the restarted OSS")
    fd.flush()                                              # the kept dirty data is locked again and sent
    expect = first + second
    assert reader.read(0, 2 * MiB) == expect
    assert client("again").open(fid, layout).read(0, 2 * MiB) == expect
    reader.release()
    fd.release()


def _works(fn) -> bool:
    try:
        fn()
        return True
    except LpError:
        return False


def test_enospc_from_a_full_ost_reaches_the_writer(fcluster, client):
    _, mdc = fcluster
    fid, layout = create_file(mdc, 1, MiB, stripe_offset=1)
    assert layout.objects[0].ost_index == 1
    fd = client("full").open(fid, layout)
    blk = os.urandom(MiB)
    with pytest.raises(LpError) as ei:
        for i in range(2 * CAPACITY // MiB):
            fd.write(i * MiB, blk)
        fd.flush()
    assert ei.value.errno == errno.ENOSPC
    fd.truncate(0)                                          # frees the space again
    fd.write(0, b"fits")
    fd.flush()
    assert fd.read(0, 10) == b"fits"
    fd.release()


def test_eviction_drops_locks_and_caches_and_the_client_reconnects(cluster, make_dp, new_file):
    from lustrepy.rpc.channel import call, make_channel
    from lustrepy.rpc.v1 import ldlm_pb2 as lpb
    from lustrepy.rpc.v1 import ldlm_pb2_grpc
    from tests.client.conftest import Invalidations

    _, mdc = cluster
    fid, layout = new_file(1)
    inv = Invalidations()
    dp = make_dp("ev", on_invalidate=inv)
    fd = dp.open(fid, layout)
    fd.write(0, b"before")
    fd.flush()
    assert fd.read(0, 6) == b"before" and fd.cached_lock()
    channel = make_channel(addresses_of(mdc)()[layout.objects[0].ost_index])
    try:
        rep = call(ldlm_pb2_grpc.LdlmStub(channel).Evict, lpb.EvictRequest(client_id=dp.client_id), timeout=5)
    finally:
        channel.close()
    assert rep.hdr.errno == 0
    wait_for(lambda: not fd.cached_lock() and fid in inv.fids, timeout=10, what="the eviction to reach the client")
    fd.write(6, b"after")                                   # a new connection, new locks
    fd.flush()
    assert make_dp("other").open(fid, layout).read(0, 20) == b"beforeafter"
    assert dp.statistics()["reconnect_drops"] >= 1
    fd.release()


def test_a_writer_past_the_dirty_limit_of_a_full_ost_gets_enospc_and_keeps_getting_it(fcluster):
    _, mdc = fcluster
    fid, layout = create_file(mdc, 1, MiB, stripe_offset=1)
    dp = DataPath("testfs", f"limit-{os.getpid()}", addresses_of(mdc), on_invalidate=lambda fid: None,
                  rpc_timeout=TIMEOUT, max_dirty_per_file=4 * MiB)
    try:
        fd = dp.open(fid, layout)
        blk = os.urandom(MiB)
        t0 = time.monotonic()
        with pytest.raises(LpError) as ei:
            for i in range(4 * CAPACITY // MiB):
                fd.write(i * MiB, blk)
        assert ei.value.errno == errno.ENOSPC and time.monotonic() - t0 < 2 * TIMEOUT
        kept = dp.statistics()["dirty_bytes"]
        assert 0 < kept <= 4 * MiB                           # bounded, and not thrown away
        for _ in range(2):
            with pytest.raises(LpError) as ei:
                fd.fsync()
            assert ei.value.errno == errno.ENOSPC
        with pytest.raises(LpError) as ei:
            fd.release()
        assert ei.value.errno == errno.ENOSPC
        fd = dp.open(fid, layout)
        fd.truncate(0)                                      # drops the kept data and frees the OST
        fd.fsync()
        assert fd.size() == 0 and dp.statistics()["dirty_bytes"] == 0
        fd.release()
    finally:
        dp.close()
