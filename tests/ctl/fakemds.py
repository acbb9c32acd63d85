"""A stand-in MDS for lfsctl command tests: a real gRPC server answering Statfs and Info from given replies.

It implements nothing of the MDS's behaviour; it only lets lfsctl's client side
be tested over real RPC without starting the server processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from lustrepy.rpc.channel import bind, make_server
from lustrepy.rpc.convert import rep_ok
from lustrepy.rpc.v1 import common_pb2 as cpb
from lustrepy.rpc.v1 import mds_pb2 as mpb
from lustrepy.rpc.v1 import mds_pb2_grpc as mgrpc

GiB = 1 << 30


def statfs(total_gib: float, used_gib: float, files: int = 0, ffree: int = 0, bsize: int = 4096) -> cpb.Statfs:
    blocks = int(total_gib * GiB) // bsize
    used = int(used_gib * GiB) // bsize
    return cpb.Statfs(bsize=bsize, blocks=blocks, bfree=blocks - used, bavail=blocks - used, files=files,
                      ffree=ffree)


def statfs_reply(fsname: str = "testfs", osts: int = 4, inactive: tuple[int, ...] = ()) -> mpb.MdsStatfsReply:
    rep = mpb.MdsStatfsReply(hdr=rep_ok(), fsname=fsname, mdt=statfs(10, 1, files=1000, ffree=900))
    for i in range(osts):
        rep.osts.add(index=i, uuid=f"{fsname}-OST{i:04x}_UUID", address=f"127.0.0.1:{40001 + i}",
                     active=i not in inactive, last_seen_s=0.5 if i not in inactive else 7.25,
                     statfs=statfs(100, 10 * (i % 9 + 1)), precreated=32)
    return rep


def info_reply(fsname: str = "testfs") -> mpb.MdsInfoReply:
    return mpb.MdsInfoReply(hdr=rep_ok(), uuid=f"{fsname}-MDT0000_UUID", fsname=fsname, address="127.0.0.1:40000",
                            uptime_s=3725.0, version="0.1.0", clients=2, last_transno=42, last_committed=40,
                            counters={"statfs": 3, "intent": 10})


@dataclass
class FakeMds(mgrpc.MdsServicer):
    statfs: mpb.MdsStatfsReply = field(default_factory=statfs_reply)
    info: mpb.MdsInfoReply = field(default_factory=info_reply)
    calls: list[str] = field(default_factory=list)

    def Statfs(self, request: mpb.StatfsRequest, context: grpc.ServicerContext) -> mpb.MdsStatfsReply:
        self.calls.append("statfs")
        return self.statfs

    def Info(self, request: mpb.MdsInfoRequest, context: grpc.ServicerContext) -> mpb.MdsInfoReply:
        self.calls.append("info")
        return self.info

    def Fld(self, request: mpb.FldRequest, context: grpc.ServicerContext) -> mpb.FldReply:
        """As an MDS of one MDT from before Fld answers: the method is unknown (quietly, unlike the
        generated servicer, which logs a traceback in this process)."""
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not found!")
        return mpb.FldReply()


class Serving:
    def __init__(self, fake: FakeMds) -> None:
        self.fake = fake
        self.server = make_server(max_workers=4)
        mgrpc.add_MdsServicer_to_server(fake, self.server)
        self.port = bind(self.server, "127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(0).wait(5)
