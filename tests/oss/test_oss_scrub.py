"""The background scrub on a real OST directory: it finds a byte flipped in an object nobody reads,
reports no mismatch while objects are written, cut and destroyed under it, keeps to its rate and
stops at once; the ScrubStatus RPC of a served OST shows it all."""

from __future__ import annotations

import errno
import os
import random
import threading
import time

import pytest

from lustrepy.common.errors import from_wire
from lustrepy.oss.csum import BLOCK
from lustrepy.oss.scrub import Scrubber
from lustrepy.rpc.channel import call
from lustrepy.rpc.v1 import oss_pb2 as opb
from tests.oss.test_oss_integrity import flip
from tests.oss.test_oss_ofd import make_ofd, read, write

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20


def wait_for(cond, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def scrubbers():
    made: list[Scrubber] = []

    def make(ofd, rate: float = 1000.0, interval: float = 3600.0) -> Scrubber:
        s = Scrubber(ofd.integrity, ofd.object_ids, rate, interval)
        made.append(s)
        s.start()
        return s

    try:
        yield make
    finally:
        for s in made:
            s.stop()


def test_scrub_finds_a_flipped_byte_in_an_object_nobody_reads(tmp_path, scrubbers):
    ofd = make_ofd(str(tmp_path / "ost"))
    first, last = ofd.precreate(5)
    for oid in range(first, last + 1):
        write(ofd, oid, 0, os.urandom(3 * BLOCK + 17))
    flip(ofd, first + 3, 2 * BLOCK + 9)
    s = scrubbers(ofd)
    wait_for(lambda: s.status().passes >= 1, "a scrub pass")
    st = s.status()
    assert st.bad == ((first + 3, 2),) and st.mismatches == 1 and st.found_by_scrub == 1
    assert st.objects == 5 and st.bytes == 5 * (3 * BLOCK + 17) and st.last_pass_end > 0
    assert st.state == "idle"
    # a second pass does not count the known bad block again
    s.rate = 2000.0
    wait_for(lambda: s.status().passes >= 2, "a second pass")
    assert s.status().mismatches == 1


def test_scrub_sees_no_mismatch_while_objects_change_under_it(tmp_path, scrubbers):
    ofd = make_ofd(str(tmp_path / "ost"))
    first, last = ofd.precreate(4)
    for oid in range(first, last + 1):
        write(ofd, oid, 0, os.urandom(2 * MiB))
    s = scrubbers(ofd, rate=100_000.0, interval=0.1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        rnd = random.Random(3)
        try:
            while not stop.is_set():
                oid = rnd.randint(first, last)
                kind = rnd.random()
                if kind < 0.1:
                    ofd.punch(oid, rnd.randrange(0, 2 * MiB))
                else:
                    write(ofd, oid, rnd.randrange(0, 2 * MiB), os.urandom(rnd.choice([7, 5000, BLOCK, 300_000])))
        except BaseException as e:      # noqa: B036 - reported by the test
            errors.append(e)

    workers = [threading.Thread(target=churn) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: s.status().passes >= 20, "20 scrub passes under writes", timeout=60)
    finally:
        stop.set()
        for w in workers:
            w.join(10)
    assert not errors
    assert s.status().mismatches == 0 and s.status().bad == ()
    extra = ofd.precreate(1)[0]                     # and a destroy in the middle of a pass
    write(ofd, extra, 0, os.urandom(4 * MiB))
    passes = s.status().passes
    ofd.destroy([extra])
    wait_for(lambda: s.status().passes >= passes + 3, "passes after a destroy")
    assert s.status().mismatches == 0


def test_scrub_keeps_to_its_rate_and_stops_at_once(tmp_path, scrubbers):
    ofd = make_ofd(str(tmp_path / "ost"))
    oid, _ = ofd.precreate(1)
    write(ofd, oid, 0, os.urandom(64 * MiB))
    s = scrubbers(ofd, rate=16.0)
    time.sleep(1.0)
    got = s.status().bytes
    assert 8 * MiB <= got <= 24 * MiB, got
    assert s.status().state == "running"
    s.rate = 0
    wait_for(lambda: s.status().state == "off", "the scrub to turn off")
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < 2.0


def test_scrub_status_rpc_of_a_served_ost(ost):
    c = ost.client
    oid = c.precreate(2).first_id
    assert c.write(oid, 0, os.urandom(2 * BLOCK)).hdr.errno == 0
    flip(ost.ofd, oid, BLOCK + 1)
    chunks = c.read_chunks(oid, 0, 2 * BLOCK)
    assert from_wire(chunks[-1].hdr.errno) == errno.EBADMSG and "checksum" in chunks[-1].hdr.message
    assert all(not ch.data for ch in chunks)                  # not one byte of the object
    assert c.read(oid, 0, BLOCK) == read(ost.ofd, oid, 0, BLOCK)
    ost.serving.scrub.rate = 1000.0
    wait_for(lambda: ost.serving.scrub.status().passes >= 1, "a pass")
    rep = call(c.stub.ScrubStatus, opb.ScrubStatusRequest(hdr=c.hdr(), index=0), 10)
    assert rep.hdr.errno == 0 and rep.state in ("idle", "running") and rep.checksums
    assert rep.bad_count == 1 and [(b.object_id, b.block) for b in rep.bad] == [(oid, 1)]
    assert rep.mismatches == 1 and rep.read_failures == 1 and rep.block_size == BLOCK and rep.passes >= 1
    wrong = call(c.stub.ScrubStatus, opb.ScrubStatusRequest(hdr=c.hdr(), index=7), 10)
    assert wrong.hdr.errno != 0
