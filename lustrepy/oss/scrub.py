"""The background scrub of one OST: a thread that reads every object and checks every block
against its checksum at rest, at `ost.N.scrub_rate` MiB/s (0: off), one pass every
`ost.N.scrub_interval` seconds (a change of either starts a pass at once).

It holds no lock while it reads: a block that does not match is read again under the object's
lock (integrity.Integrity.scan) before it is recorded bad, so a write or a punch in progress is
no mismatch; an object destroyed during its check is passed over. It reads a run of 16 blocks
(1 MiB) at a time and sleeps between runs to keep to the rate; a stop or a change of rate wakes
it at once. Status (`status()`) is what `lfsctl scrub status` shows. Never speaks gRPC.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lustrepy.oss.integrity import Integrity

log = logging.getLogger(__name__)

MiB = 1 << 20
DEFAULT_RATE = 16.0             # MiB/s
DEFAULT_INTERVAL = 3600.0       # seconds from the end of a pass to the start of the next
MAX_BEHIND = 1.0                # seconds of reading the rate may catch up on at once
STOP_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class ScrubStatus:
    """A scrub's state: `objects`/`bytes` of the pass running, or else of the last one."""

    state: str                  # "running" | "idle" | "off"
    rate_mib: float
    interval: float
    objects: int
    bytes: int
    passes: int                 # passes completed since the OSS started
    pass_start: float           # Unix time the current or last pass started (0: none yet)
    last_pass_end: float        # Unix time the last completed pass ended (0: none yet)
    mismatches: int             # ever found on this OST (reads, writes and scrub)
    found_by_scrub: int         # of them, found by this process's scrub
    bad: tuple[tuple[int, int], ...]    # the blocks known bad now: (object, block)
    enabled: bool               # checksums are kept on this OST


class Scrubber:
    """One scrub thread per OST (see the module docstring). Thread-safe."""

    def __init__(self, integrity: Integrity, objects: Callable[[], list[int]], rate_mib: float = DEFAULT_RATE,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.integrity = integrity
        self._objects = objects
        self._mu = threading.Lock()         # every field below but the thread
        self._rate = rate_mib
        self._interval = interval
        self._running = False
        self._scanned = (0, 0)              # objects, bytes of the current or last pass
        self._passes = 0
        self._pass_start = 0.0
        self._last_end = 0.0
        self._found = 0
        self._wake = threading.Event()      # a stop or a change of rate or interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- control ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"scrub-{self.integrity.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
            if self._thread.is_alive():
                log.warning("%s: scrub did not stop within %.0fs", self.integrity.name, STOP_WAIT)

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, mib_s: float) -> None:
        """MiB/s; 0 stops scrubbing. A new rate above 0 starts a pass now when none is running."""
        with self._mu:
            self._rate = float(mib_s)
        self._wake.set()

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        with self._mu:
            self._interval = float(seconds)
        self._wake.set()

    def status(self) -> ScrubStatus:
        mismatches, bad = self.integrity.bad.snapshot()
        with self._mu:
            state = "off" if self._rate <= 0 or not self.integrity.enabled else (
                "running" if self._running else "idle")
            return ScrubStatus(state, self._rate, self._interval, self._scanned[0], self._scanned[1], self._passes,
                               self._pass_start, self._last_end, mismatches, self._found, tuple(bad),
                               self.integrity.enabled)

    # ---- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        next_pass = time.monotonic()
        while not self._stop.is_set():
            with self._mu:
                rate, interval = self._rate, self._interval
            now = time.monotonic()
            if rate <= 0 or not self.integrity.enabled or now < next_pass:
                self._wake.wait(1.0 if rate <= 0 else min(1.0, next_pass - now))
                if self._wake.is_set():
                    self._wake.clear()
                    next_pass = time.monotonic()        # a new rate or interval: a pass now
                continue
            try:
                self._pass()
            except Exception:
                log.exception("%s: scrub pass failed", self.integrity.name)
            next_pass = time.monotonic() + interval

    def _pass(self) -> None:
        with self._mu:
            self._running, self._scanned, self._pass_start = True, (0, 0), time.time()
        objects = nbytes = 0
        pacer = _Pacer(lambda: self._rate)
        try:
            for oid in self._objects():
                pos = 0
                while pos >= 0:
                    if not pacer.wait(self._stop, self._wake):
                        return                      # stopped, or turned off
                    try:
                        n, pos, found = self.integrity.scan(oid, pos)
                    except FileNotFoundError:
                        break                       # destroyed meanwhile
                    except OSError as e:
                        log.error("%s: scrub cannot read object %d: %s", self.integrity.name, oid, e)
                        break
                    nbytes += n
                    pacer.spent(n)
                    if found:
                        with self._mu:
                            self._found += len(found)
                    with self._mu:
                        self._scanned = (objects, nbytes)
                objects += 1
                with self._mu:
                    self._scanned = (objects, nbytes)
            with self._mu:
                self._passes += 1
                self._last_end = time.time()
            log.info("%s: scrub pass %d done: %d objects, %d bytes", self.integrity.name, self._passes, objects,
                     nbytes)
        finally:
            with self._mu:
                self._running = False


class _Pacer:
    """Keeps reads to `rate()` MiB/s: sleeps (on the wake event) until the bytes read so far are due."""

    def __init__(self, rate: Callable[[], float]) -> None:
        self._rate_of = rate
        self._rate = rate()
        self._t0 = time.monotonic()
        self._bytes = 0

    def spent(self, n: int) -> None:
        self._bytes += n

    def wait(self, stop: threading.Event, wake: threading.Event) -> bool:
        """False when stopped or turned off."""
        while not stop.is_set():
            rate = self._rate_of()
            if rate <= 0:
                return False
            now = time.monotonic()
            if rate != self._rate:
                self._rate, self._t0, self._bytes = rate, now, 0
            due = self._t0 + self._bytes / (rate * MiB)
            if due <= now:
                if now - due > MAX_BEHIND:          # no burst after a slow stretch
                    self._t0, self._bytes = now, 0
                return True
            wake.wait(min(due - now, 1.0))
            wake.clear()
        return False
