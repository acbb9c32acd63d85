"""The inode-bits lock policy (as Lustre's ldlm_inodebits.c), used by the MDS.

An MDS lock names an inode and a set of bits saying which part of the inode's
cached state it protects. Pure rules; never touches resources or queues.
"""

from __future__ import annotations

from enum import IntFlag

from lustrepy.ldlm.modes import LockMode, compatible


class IBit(IntFlag):
    LOOKUP = 1      # the name -> FID binding in the parent, and the entry's existence
    UPDATE = 2      # size, links, times and directory contents
    OPEN = 4        # the file is open (open-lock)
    LAYOUT = 8      # the file's layout
    PERM = 16       # mode, owner, group
    XATTR = 32      # extended attributes


FULL = int(IBit.LOOKUP | IBit.UPDATE | IBit.OPEN | IBit.LAYOUT | IBit.PERM | IBit.XATTR)


def valid_bits(bits: int) -> bool:
    """Bits a lock request may carry: at least one, none unknown."""
    bits = int(bits)                # an IBit's own operators cost far more than an int's
    return bits != 0 and bits & ~FULL == 0


def conflict(mode_a: LockMode, bits_a: int, mode_b: LockMode, bits_b: int) -> bool:
    """Two inode-bits locks conflict only when their bits intersect and their modes do."""
    return bool(bits_a & bits_b) and not compatible(mode_a, mode_b)


def covers_bits(held: int, wanted: int) -> bool:
    """A held lock serves a request when it protects every bit asked for."""
    return wanted & ~held == 0


def bits_str(bits: int) -> str:
    """"LOOKUP|UPDATE" for humans (lfsctl locks, logs)."""
    names = [b.name for b in IBit if bits & b and b.name]
    return "|".join(names) if names else "0"
