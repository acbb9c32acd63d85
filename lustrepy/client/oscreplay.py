"""The writes a client keeps for one OST until it says they are durable (Lustre's unstable pages).

Every write and punch the OST answers carries its transno and the OST's `last_committed`; the
request, with its bytes, is kept here until a reply's last_committed covers it. A write's bytes
are kept by reference (the client's buffers are never changed once written), and its request
is only built, with its checksums, when it is replayed: keeping costs no copy on the write path. After an OST
restart the client sends them back (osc.Osc connects, sees the new boot and the recovery, and
replays), so a crash of the OSS host loses nothing the application was told was written, with
or without fsync. The bytes kept are bounded by the caller: past `limit` it asks the OST to
commit (Sync). Thread-safe; never does I/O.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import crc32c
from google.protobuf.message import Message

from lustrepy.client.datacache import Buf
from lustrepy.common.errors import LpError
from lustrepy.rpc.channel import call
from lustrepy.rpc.convert import check_rep
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb
from lustrepy.rpc.v1 import oss_pb2_grpc

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 256 << 20       # bytes kept per OST before the client asks it to commit
RECOVERY_WAIT = 90.0            # how long a client waits for an OST's recovery to let it in, and to end
REPLAY_BYTES = 32 << 20         # kept bytes per Replay message
COMMIT_ASK_PAUSE = 0.5          # seconds between asks for a commit while too many bytes are kept


@dataclass(frozen=True, slots=True)
class Kept:
    """One change the OST answered: a write's (object, offset, bytes) pieces, or a punch's request."""

    method: str
    transno: int
    nbytes: int
    pieces: tuple[tuple[int, int, Buf], ...] = ()
    request: Message | None = None

    def item(self) -> mpb.ReplayItem:
        req = self.request if self.request is not None else write_request(self.pieces)
        return mpb.ReplayItem(transno=self.transno, xid=self.transno, method=self.method,
                              request=req.SerializeToString())


class KeptWrites:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._mu = threading.Lock()
        self._kept: dict[int, Kept] = {}        # transno -> request answered, not committed
        self._bytes = 0
        self.last_committed = 0
        self._asked = 0.0

    def keep(self, method: str, transno: int, last_committed: int, nbytes: int, *,
             pieces: Sequence[tuple[int, int, Buf]] = (), request: Message | None = None) -> bool:
        """A change the OST answered (a write's pieces, or another request); True when the bytes
        kept pass the limit and the caller should ask for a commit (at most every
        COMMIT_ASK_PAUSE seconds)."""
        with self._mu:
            self._forget(last_committed)
            if transno > self.last_committed:
                self._kept[transno] = Kept(method, transno, nbytes, tuple(pieces), request)
                self._bytes += nbytes
            if self._bytes <= self.limit or time.monotonic() - self._asked < COMMIT_ASK_PAUSE:
                return False
            self._asked = time.monotonic()
            return True

    def committed(self, last_committed: int) -> None:
        """Forget what `last_committed` covers."""
        if last_committed > self.last_committed:
            with self._mu:
                self._forget(last_committed)

    def _forget(self, last_committed: int) -> None:
        if last_committed <= self.last_committed:
            return
        self.last_committed = last_committed
        for t in [t for t in self._kept if t <= last_committed]:
            self._bytes -= self._kept.pop(t).nbytes

    def items(self) -> list[mpb.ReplayItem]:
        """Everything kept, in transno order."""
        with self._mu:
            kept = [self._kept[t] for t in sorted(self._kept)]
        return [k.item() for k in kept]

    def take_all(self) -> list[mpb.ReplayItem]:
        """Everything kept, in transno order, forgotten here (the OST restarted)."""
        with self._mu:
            kept = [self._kept[t] for t in sorted(self._kept)]
            self._kept.clear()
            self._bytes = 0
            self.last_committed = 0
        return [k.item() for k in kept]

    @property
    def nbytes(self) -> int:
        with self._mu:
            return self._bytes

    def __len__(self) -> int:
        with self._mu:
            return len(self._kept)


def write_request(pieces: Sequence[tuple[int, int, Buf]]) -> opb.WriteManyRequest:
    """(object, offset, bytes) pieces as one request with its data inside, as a replay sends it."""
    return opb.WriteManyRequest(chunks=[
        opb.WriteChunk(object_id=oid, offset=off, data=bytes(d), crc32c=crc32c.crc32c(d)) for oid, off, d in pieces])


def in_background(name: str, reconnect: Callable[[], object]) -> None:
    """Reconnect now on a thread of its own (to replay), without waiting for the next I/O."""
    def run() -> None:
        try:
            reconnect()
        except LpError as e:
            log.info("%s: reconnect to replay failed: %s (the next I/O tries again)", name, e)
    threading.Thread(target=run, name=f"{name}-replay", daemon=True).start()


def connect(stub: oss_pb2_grpc.OssStub, req: cpb.ConnectRequest, timeout: float,
            wait: float = RECOVERY_WAIT) -> cpb.ConnectReply:
    """Connect; while the OST recovers without this client (EINPROGRESS), ask again, up to `wait`."""
    deadline = time.monotonic() + wait
    while True:
        rep = call(stub.Connect, req, timeout=timeout)
        if rep.hdr.errno != errno.EINPROGRESS or time.monotonic() > deadline:
            return rep
        time.sleep(0.5)


def recover(stub: oss_pb2_grpc.OssStub, name: str, kept: KeptWrites, rep: cpb.ConnectReply, restarted: bool,
            hdr: Callable[[], cpb.ReqHdr], timeout: float) -> None:
    """After a Connect: replay what `kept` holds when the OST recovers with this client, or say what
    a restart without us lost; else only forget what its last_committed covers."""
    if not rep.recovering:
        if restarted:
            lost = [it for it in kept.take_all() if it.transno > rep.hdr.last_committed]
            if lost:
                log.error("%s restarted and recovered without this client: %d writes it had answered are lost",
                          name, len(lost))
        else:
            kept.committed(rep.hdr.last_committed)
        return
    items = kept.items()
    log.warning("%s restarted: replaying %d writes (%d bytes)", name, len(items), kept.nbytes)
    batches: list[list[mpb.ReplayItem]] = [[]]
    size = 0
    for it in items:
        if size > REPLAY_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(it)
        size += len(it.request)
    for i, batch in enumerate(batches):
        r = _replay(stub, hdr(), batch, i == len(batches) - 1, timeout)
    deadline = time.monotonic() + RECOVERY_WAIT
    while not r.done and time.monotonic() < deadline:
        r = _replay(stub, hdr(), [], True, timeout)
    if not r.done:
        raise LpError(errno.ETIMEDOUT, f"{name}: recovery did not end")
    for f in r.failed:
        log.error("%s: a replayed write failed: %s", name, f.message)
    kept.take_all()         # recovery commits everything before it ends


def _replay(stub: oss_pb2_grpc.OssStub, hdr: cpb.ReqHdr, items: list[mpb.ReplayItem], last: bool,
            timeout: float) -> mpb.ReplayReply:
    rep = call(stub.Replay, mpb.ReplayRequest(hdr=hdr, items=items, last=last), timeout=max(timeout, 10.0))
    check_rep(rep.hdr)
    return rep
