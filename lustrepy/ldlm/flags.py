"""LDLM_FL_* flags carried in LockEnqueueRequest.flags (a u32 on the wire).

Only constants live here; never logic. Values are this project's own (they
need not match Lustre's 64-bit flag word).
"""

from __future__ import annotations

BLOCK_NOWAIT = 0x1      # fail with EAGAIN instead of waiting (and send no blocking callbacks)
GLIMPSE = 0x2           # if another owner's PW/EX lock conflicts, answer with a glimpsed LVB and no lock
NO_EXPANSION = 0x4      # grant exactly the requested extent, never grow it

ALL = BLOCK_NOWAIT | GLIMPSE | NO_EXPANSION
