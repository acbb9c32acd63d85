"""Random protobuf messages with extreme field values, built from the messages' descriptors.

Every scalar field gets, at random, one of the values a careless server trips
on (0, -1, the type's limits, huge lengths, names with '/', '..', NUL bytes
and invalid UTF-8 where the type allows), a random value, or nothing; repeated
fields get from none to many elements; nested messages are filled the same
way to a bounded depth. The seed decides everything, so a failure names the
message that caused it.
"""

from __future__ import annotations

import random

from google.protobuf.descriptor import Descriptor, FieldDescriptor

MAX_DEPTH = 4
MAX_REPEATED = 300

_I32 = (0, 1, -1, 2**31 - 1, -(2**31), 7, 4096)
_U32 = (0, 1, 2**32 - 1, 2**31, 4096, 65535, 65536)
_I64 = (0, 1, -1, 2**63 - 1, -(2**63), 2**40, 4096)
_U64 = (0, 1, 2**64 - 1, 2**63, 2**40, 2**32, 4096)
_STRINGS = ("", "a", "..", "../../../../etc/passwd", "/", "x" * 4096, "a/b", "\u00e9\u4e2d", "name\nline",
            "testfs", "client:1", " ", "*", "%s%s%n", "x" * 300)
_BYTES = (b"", b"\0", b"..", b"a/b", b"\xff\xfe", b"x" * 256, b"x" * 70000, b"/etc/passwd", b"a\0b")


def _scalar(rng: random.Random, f: FieldDescriptor):
    t = f.type
    pick_extreme = rng.random() < 0.6
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return rng.choice(_I32) if pick_extreme else rng.randint(-(2**31), 2**31 - 1)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return rng.choice(_U32) if pick_extreme else rng.randint(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return rng.choice(_I64) if pick_extreme else rng.randint(-(2**63), 2**63 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return rng.choice(_U64) if pick_extreme else rng.randint(0, 2**64 - 1)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return rng.choice((0.0, -1.0, 1e308, -1e308, float("inf"), float("nan"), 1e-9, 3.5))
    if t == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if t == FieldDescriptor.TYPE_STRING:
        return rng.choice(_STRINGS) if pick_extreme else "".join(rng.choice("abc/._-:") for _ in range(rng.randint(0, 40)))
    if t == FieldDescriptor.TYPE_BYTES:
        return rng.choice(_BYTES) if pick_extreme else rng.randbytes(rng.randint(0, 512))
    if t == FieldDescriptor.TYPE_ENUM:
        values = [v.number for v in f.enum_type.values]
        return rng.choice(values + [max(values) + 1, 2**31 - 1, -1])
    raise AssertionError(f"unhandled field type {t}")


def fill(rng: random.Random, msg, depth: int = 0) -> None:
    """Set random fields of `msg` (a protobuf message instance) in place."""
    d: Descriptor = msg.DESCRIPTOR
    for f in d.fields:
        if rng.random() < 0.3:
            continue                                    # left unset
        if f.is_repeated:
            n = rng.choice((0, 1, 2, 5, rng.randint(0, MAX_REPEATED)))
            container = getattr(msg, f.name)
            if f.type == FieldDescriptor.TYPE_MESSAGE:
                if f.message_type.GetOptions().map_entry:
                    continue
                if depth >= MAX_DEPTH:
                    continue
                for _ in range(n):
                    fill(rng, container.add(), depth + 1)
            else:
                for _ in range(n):
                    container.append(_value(rng, f))
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < MAX_DEPTH:
                fill(rng, getattr(msg, f.name), depth + 1)
        else:
            setattr(msg, f.name, _value(rng, f))


def _value(rng: random.Random, f: FieldDescriptor):
    v = _scalar(rng, f)
    if f.type == FieldDescriptor.TYPE_FLOAT and v == 1e308:
        return 3.0e38
    return v
