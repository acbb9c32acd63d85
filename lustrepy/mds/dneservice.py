"""The MDS's RPCs of a file system with several MDTs (Lustre's DNE): MDT registration with MDT0
(MdtAnnounce) and the FID location database for clients, OSSes and lfsctl (Fld).

A mixin of MdsService: it needs only `self.mdt`. Failures come back as the reply's errno.
"""

from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING, Any

import grpc

from lustrepy.common.errors import LpError
from lustrepy.mds import dne, fld, reint
from lustrepy.rpc.convert import cred_from_hdr, rep_err, rep_ok
from lustrepy.rpc.fldwire import mdts_to_pb, ranges_to_pb
from lustrepy.rpc.v1 import mds_pb2 as mpb

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

log = logging.getLogger(__name__)

MAX_ADDRESS = 256


class DneHandlers:
    mdt: Mdt

    def MdtAnnounce(self, request: mpb.MdtAnnounceRequest, context: grpc.ServicerContext) -> mpb.MdtAnnounceReply:
        mdt = self.mdt
        mdt.counters["mdt_announce"] += 1
        try:
            if mdt.index != 0:
                raise LpError(errno.EXDEV, f"{mdt.uuid} is not MDT0: announce to MDT0")
            if request.fsname != mdt.fsname:
                raise LpError(errno.EINVAL, f"MDT {request.uuid} belongs to {request.fsname!r}, not {mdt.fsname!r}")
            if not request.address or len(request.address) > MAX_ADDRESS:
                raise LpError(errno.EINVAL, "an MDT announces the address it serves at")
            known = {i: (u, n, a) for i, u, n, a in mdt.store.peek(fld.registered)}
            if known.get(request.index) != (request.uuid, request.instance, request.address):
                if mdt.recovery.blocks():       # replays take the next transnos: register after them
                    raise LpError(errno.EAGAIN, "MDT0 is recovering; announce again shortly")
                mdt.store.write(lambda tx: fld.register(tx, mdt.fsname, request.index, request.uuid,
                                                        request.instance, request.address))
                mdt.committer.commit_now()      # the range is durable before that MDT uses it
                log.info("MDT%04x %s registered at %s", request.index, request.uuid, request.address)
            mdt.mdts.beat(request.index)
            view = mdt.mdts.view()
        except LpError as e:
            log.warning("refused MDT announce from %s: %s", request.uuid[:80], e.message)
            return mpb.MdtAnnounceReply(hdr=rep_err(e))
        except Exception:
            log.exception("MDT announce from %s failed", request.uuid[:80])
            return mpb.MdtAnnounceReply(hdr=rep_err(LpError(errno.EIO, "internal error in MDT announce")))
        return mpb.MdtAnnounceReply(hdr=rep_ok(), ranges=ranges_to_pb(view.ranges),
                                    heartbeat_interval_s=mdt.cfg.heartbeat_interval, mdts=mdts_to_pb(view.mdts))

    def Fld(self, request: mpb.FldRequest, context: grpc.ServicerContext) -> mpb.FldReply:
        self.mdt.counters["fld"] += 1
        try:
            view = self.mdt.mdts.view()
        except LpError as e:
            return mpb.FldReply(hdr=rep_err(e))
        return mpb.FldReply(hdr=rep_ok(), ranges=ranges_to_pb(view.ranges), mdts=mdts_to_pb(view.mdts))

    def DneUpdate(self, request: mpb.DneUpdateRequest, context: grpc.ServicerContext) -> mpb.DneUpdateReply:
        self.mdt.counters["dne_update"] += 1
        try:
            return dne.apply(self.mdt, request)
        except LpError as e:
            return mpb.DneUpdateReply(hdr=rep_err(e))
        except Exception:
            log.exception("update from %s failed", request.coordinator[:80])
            return mpb.DneUpdateReply(hdr=rep_err(LpError(errno.EIO, "internal error in DneUpdate")))

    def MkdirAt(self, request: mpb.MkdirAtRequest, context: grpc.ServicerContext) -> mpb.ReintReply:
        """For admins: a directory made with the caller's credentials, on the MDT it names."""
        self.mdt.counters["mkdir_at"] += 1
        try:
            cred = cred_from_hdr(request.hdr)
            return reint.run(self.mdt, mpb.ReintOp(mkdir=request.op), cred, "")[1]
        except LpError as e:
            return mpb.ReintReply(hdr=rep_err(e))
        except Exception:
            log.exception("mkdir_at failed")
            return mpb.ReintReply(hdr=rep_err(LpError(errno.EIO, "internal error in MkdirAt")))

    def announce_extras(self) -> dict[str, Any]:
        """What an OSS's announce reply says of the MDTs: which one answers, and (from MDT0, or
        from an MDT that heard MDT0) every MDT the OSS must announce to."""
        mdt = self.mdt
        return {"mdt_index": mdt.index, "mdts": mdts_to_pb(mdt.mdts.view().mdts)}
