"""Recovery of one OST after a restart: the clients that wrote since its last commit replay their
writes and punches (rpc.recovery_window), applied here in transno order.

A replayed write goes through the same checks as a new one (checksums, sizes, space); the pieces
for objects destroyed since are passed over (their file is gone), and a replay that fails for
another reason fails alone. When recovery ends, all of
it is committed before the clients are told, so a client may forget what it kept at once.
Never speaks gRPC; decodes the kept requests only.
"""

from __future__ import annotations

import errno
import logging
import threading

from google.protobuf.message import DecodeError

from lustrepy.common.errors import LpError
from lustrepy.oss.ofd import Ofd
from lustrepy.oss.tgt import Tgt
from lustrepy.rpc.recovery_window import RecoveryWindow
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import oss_pb2 as opb

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 60.0


def open_window(ofd: Ofd, tgt: Tgt, window: float) -> RecoveryWindow:
    """The recovery state of this start: waiting for the clients `tgt` recorded, or none."""
    rw = RecoveryWindow(tgt.expected, window, tgt.base,
                        apply=lambda cid, item: _apply(ofd, tgt, cid, item),
                        on_end=lambda missing: _end(tgt, missing))
    if rw.state == "recovering":
        log.warning("%s: recovery: waiting up to %.0fs for %d clients to replay their writes",
                    ofd.ident.name, window, len(tgt.expected))
        timer = threading.Timer(window + 0.05, rw.tick)
        timer.daemon = True
        timer.start()
    return rw


def _apply(ofd: Ofd, tgt: Tgt, client_id: str, item: mpb.ReplayItem) -> mpb.ReplayFailure | None:
    try:
        if item.method == "WriteMany":
            req = opb.WriteManyRequest.FromString(item.request)
            with ofd.write_session() as session:
                session.prepare([c.object_id for c in req.chunks if ofd.exists(c.object_id)])
                for c in req.chunks:
                    if ofd.exists(c.object_id):     # a destroyed object's bytes need no replay
                        session.write(c.object_id, c.offset, c.data, c.crc32c)
                tgt.stamp(client_id, session.objects())
        elif item.method == "Punch":
            punch = opb.PunchRequest.FromString(item.request)
            if ofd.exists(punch.object_id):
                ofd.punch(punch.object_id, punch.size)
                tgt.stamp(client_id, [punch.object_id])
        else:
            raise LpError(errno.EINVAL, f"no replay of {item.method!r} on an OST")
    except DecodeError:
        return mpb.ReplayFailure(xid=item.xid, errno=errno.EINVAL, message="replayed request does not decode")
    except LpError as e:
        log.warning("replay of xid %d from %s failed: %s", item.xid, client_id, e)
        return mpb.ReplayFailure(xid=item.xid, errno=e.errno, message=e.message)
    return None


def _end(tgt: Tgt, missing: list[str]) -> None:
    if missing:
        log.warning("recovery: %d clients did not come back: %s", len(missing), ", ".join(missing))
    tgt.commit()
    tgt.recovered()
