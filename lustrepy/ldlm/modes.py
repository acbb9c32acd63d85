"""Lock modes, Lustre's compatibility matrix, and which held mode covers a wanted one.

Pure rules on small integers; never knows about resources, owners or the wire
(the enum values are the wire values of lustrepy.rpc.v1.LockMode).
"""

from __future__ import annotations

from enum import IntEnum


class LockMode(IntEnum):
    EX = 1      # exclusive
    PW = 2      # protected write
    PR = 4      # protected read
    CW = 8      # concurrent write
    CR = 16     # concurrent read
    NL = 32     # null


_EX, _PW, _PR, _CW, _CR, _NL = (LockMode.EX, LockMode.PW, LockMode.PR, LockMode.CW, LockMode.CR, LockMode.NL)

# Lustre's lck_compat_array: the modes each mode can be granted alongside.
COMPAT: dict[LockMode, frozenset[LockMode]] = {
    _EX: frozenset({_NL}),
    _PW: frozenset({_NL, _CR}),
    _PR: frozenset({_NL, _CR, _PR}),
    _CW: frozenset({_NL, _CR, _CW}),
    _CR: frozenset({_NL, _CR, _CW, _PR, _PW}),
    _NL: frozenset({_NL, _CR, _CW, _PR, _PW, _EX}),
}

# What a held lock of each mode may serve on the client without a new request.
COVERS: dict[LockMode, frozenset[LockMode]] = {
    _EX: frozenset({_EX, _PW, _PR, _CW, _CR, _NL}),
    _PW: frozenset({_PW, _PR, _CW, _CR, _NL}),
    _PR: frozenset({_PR, _CR, _NL}),
    _CW: frozenset({_CW, _CR, _NL}),
    _CR: frozenset({_CR, _NL}),
    _NL: frozenset({_NL}),
}

WRITE_MODES = frozenset({_EX, _PW, _CW})


def compatible(a: LockMode, b: LockMode) -> bool:
    """True when locks of modes a and b may be granted at once (symmetric)."""
    return b in COMPAT[a]


def covers(held: LockMode, wanted: LockMode) -> bool:
    """True when a held lock of mode `held` serves a request for `wanted`."""
    return wanted in COVERS[held]


def parse_mode(value: int | str) -> LockMode:
    """A mode from its wire number or its name ("PR", "LCK_PR"); ValueError otherwise."""
    if isinstance(value, str):
        name = value.strip().upper().removeprefix("LCK_")
        try:
            return LockMode[name]
        except KeyError:
            raise ValueError(f"unknown lock mode {value!r}") from None
    return LockMode(value)
