"""File identifiers (FIDs), FID sequences and the FID -> st_ino flattening.

A FID is (seq, oid, ver) and is never reused. The MDS hands out whole
sequences of SEQ_WIDTH object ids; whoever holds a sequence names new files
without asking anyone. Never does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEQ_WIDTH = 128 * 1024          # oids per sequence: [1, SEQ_WIDTH]
ROOT_SEQ = 0x200000007          # as Lustre's root FID [0x200000007:0x1:0x0]
FIRST_SEQ = 0x200000400         # first sequence handed out by the MDS
_OID_BITS = 17                  # SEQ_WIDTH == 1 << _OID_BITS

_FID_RE = re.compile(r"^\[?(0x[0-9a-fA-F]+|\d+):(0x[0-9a-fA-F]+|\d+):(0x[0-9a-fA-F]+|\d+)\]?$")


@dataclass(frozen=True, order=True, slots=True)
class Fid:
    seq: int
    oid: int
    ver: int = 0

    def __str__(self) -> str:
        return f"[{self.seq:#x}:{self.oid:#x}:{self.ver:#x}]"

    @classmethod
    def parse(cls, text: str) -> Fid:
        """Parse "[0x200000007:0x1:0x0]" (brackets optional); ValueError when malformed."""
        m = _FID_RE.match(text.strip())
        if not m:
            raise ValueError(f"not a FID: {text!r}")
        seq, oid, ver = (int(g, 0) for g in m.groups())
        return cls(seq, oid, ver)

    def is_zero(self) -> bool:
        return self.seq == 0 and self.oid == 0 and self.ver == 0

    def ino(self) -> int:
        """Deterministic 64-bit inode number, the same on every client.

        Sequences hold at most 2**17 oids, so (seq relative to ROOT_SEQ, oid)
        packs without collisions for any FID this file system hands out.
        """
        if self.seq == ROOT_SEQ:
            return self.oid               # root is inode 1
        rel = self.seq - ROOT_SEQ
        return ((rel << _OID_BITS) | (self.oid & (SEQ_WIDTH - 1))) & 0xFFFF_FFFF_FFFF_FFFF


ROOT_FID = Fid(ROOT_SEQ, 1, 0)
ZERO_FID = Fid(0, 0, 0)


def valid_fid(fid: Fid) -> bool:
    """Shape check for a FID arriving off the wire."""
    return fid.seq >= ROOT_SEQ and 1 <= fid.oid <= SEQ_WIDTH and fid.ver == 0
