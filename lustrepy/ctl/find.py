"""`lfsctl find`: walk a mounted lustrepy tree and print the paths that match, in the shape of `lfs find`.

Runs on the client side only: os.scandir over the mount, never crossing into
another file system (as find -xdev), and the layout extended attribute
(`lustrepy.lov`, decoded as `lfsctl getstripe` does) only when --ost,
--stripe-count or a mirror test needs it. It talks to no server and changes nothing. A path
that does not exist or is not on lustrepy is a one-line error; a directory
that cannot be read is reported on its own line and the walk goes on (exit 1).

Tests, all of which must hold (as find's implicit -a):
  --type f|d|l              regular file, directory, symbolic link
  --name GLOB               the entry's name (fnmatch, as find -name)
  --size [+-]N[kMGTP]       more than (+) or less than (-) N units, or N once rounded up to the unit
  --stripe-count [+-]N      a file's stripe count, a directory's default one
  --ost N[,N...]            a file with an object on one of these OSTs (in any mirror)
  --mirror-count [+-]N      a file's number of mirrors (an unmirrored file has none)
  --mirror-state [^]STATE   a file with a mirror in that state (in_sync, stale, syncing); ^STATE: none
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import logging
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import mounts, output, stripe

log = logging.getLogger(__name__)

PROG = "lfsctl"
_UNITS = {"": 1, "C": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_TYPES = {"f": stat.S_IFREG, "d": stat.S_IFDIR, "l": stat.S_IFLNK}
_TYPE_NAMES = {stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink"}


@dataclass(frozen=True, slots=True)
class Compare:
    """A [+-]N test, N in units of `unit` bytes, as lfs find reads it: '+' more than N units, '-' less
    than N units, '' exactly N once the value is rounded up to the unit (so 1M is 1..1048576 bytes)."""

    sign: str
    n: int
    unit: int = 1

    def matches(self, value: int) -> bool:
        if self.sign == "+":
            return value > self.n * self.unit
        if self.sign == "-":
            return value < self.n * self.unit
        return -(-value // self.unit) == self.n


@dataclass(frozen=True, slots=True)
class Criteria:
    type: int | None = None             # S_IFREG / S_IFDIR / S_IFLNK
    name: str | None = None
    size: tuple[Compare, ...] = ()              # all must hold (a range: --size +1M --size=-4M)
    stripe_count: tuple[Compare, ...] = ()
    osts: frozenset[int] | None = None
    mirror_count: tuple[Compare, ...] = ()
    mirror_state: str | None = None              # "stale", or "^stale" for files with no stale mirror

    @property
    def needs_layout(self) -> bool:
        return bool(self.stripe_count) or self.osts is not None or bool(self.mirror_count) or bool(self.mirror_state)


@dataclass(frozen=True, slots=True)
class Found:
    path: str
    kind: int                           # S_IFMT bits
    size: int
    layout: dict[str, Any] | None       # decoded layout, when it was read


def parse_compare(text: str, units: bool) -> Compare:
    """[+-]N, with a K/M/G/T/P suffix (binary; c = bytes) when `units`. ValueError when malformed."""
    t = text.strip()
    sign = t[0] if t[:1] in ("+", "-") else ""
    t = t[len(sign):]
    unit = 1
    if units and t and t[-1].upper() in _UNITS:
        unit = _UNITS[t[-1].upper()]
        t = t[:-1]
    if not t.isdigit():
        raise ValueError(text)
    return Compare(sign, int(t), unit)


def parse_osts(text: str) -> frozenset[int]:
    try:
        out = frozenset(int(x, 0) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(text) from None
    if not out or min(out) < 0:
        raise ValueError(text)
    return out


def _layout(path: str) -> dict[str, Any] | None:
    try:
        return stripe.decode(stripe.get_lov(path))
    except OSError as e:
        if e.errno in stripe.NO_LOV:
            return None
        raise
    except LpError:
        log.debug("%s: malformed layout attribute", path)
        return None


def matches(c: Criteria, name: str, kind: int, size: int, layout: dict[str, Any] | None) -> bool:
    """The pure test of one entry (layout: as decoded, None when it has none or it was not read)."""
    if c.type is not None and kind != c.type:
        return False
    if c.name is not None and not fnmatch.fnmatchcase(name, c.name):
        return False
    if not all(t.matches(size) for t in c.size):
        return False
    if c.stripe_count:
        if layout is None or kind not in (stat.S_IFREG, stat.S_IFDIR):
            return False
        count = max(int(layout.get("stripe_count", 0)), 0)
        if not all(t.matches(count) for t in c.stripe_count):
            return False
    if c.osts is not None:
        if layout is None or kind != stat.S_IFREG or not _osts(layout) & c.osts:
            return False
    if c.mirror_count or c.mirror_state:
        if layout is None or kind != stat.S_IFREG:
            return False
        mirrors = layout.get("mirrors") or []
        if not all(t.matches(len(mirrors)) for t in c.mirror_count):
            return False
        if c.mirror_state:
            state = c.mirror_state.lstrip("^")
            if any(m["state"] == state for m in mirrors) == c.mirror_state.startswith("^"):
                return False
    return True


def _osts(layout: dict[str, Any]) -> set[int]:
    """Every OST a file has an object on, in any mirror."""
    objs = list(layout.get("objects") or []) + [o for m in layout.get("mirrors") or [] for o in m["objects"]]
    return {int(i) for i, _ in objs}


def check_root(path: str) -> os.stat_result:
    """The starting path's stat; QuietError when it does not exist or is not on a lustrepy mount."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise QuietError(f"{path}: No such file or directory") from None
    except OSError as e:
        raise QuietError(f"{path}: {os.strerror(e.errno or errno.EIO)}") from None
    m = mounts.mount_of(os.path.realpath(path), mounts.read_mounts())
    if m is None or m.fstype != mounts.FSTYPE:
        kind = f" ({m.fstype} on {m.point})" if m else ""
        raise QuietError(f"{path}: not on a lustrepy file system{kind}")
    return st


def walk(root: str, c: Criteria, errors: list[str]) -> Iterator[Found]:
    """Entries under root (root first, then depth first in directory order) that match c.

    Never follows symbolic links or crosses into another file system; an
    unreadable directory is added to `errors` and skipped.
    """
    st = check_root(root)
    dev = st.st_dev

    def visit(path: str, name: str, kind: int, size: int) -> Found | None:
        layout = None
        if c.needs_layout and kind in (stat.S_IFREG, stat.S_IFDIR):
            try:
                layout = _layout(path)
            except OSError as e:
                errors.append(f"{path}: {os.strerror(e.errno or errno.EIO)}")
                return None
        return Found(path, kind, size, layout) if matches(c, name, kind, size, layout) else None

    first = visit(root, os.path.basename(os.path.normpath(root)), stat.S_IFMT(st.st_mode), st.st_size)
    if first is not None:
        yield first
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            errors.append(f"{d}: {os.strerror(e.errno or errno.EIO)}")
            continue
        subdirs = []
        for ent in entries:
            try:
                est = ent.stat(follow_symlinks=False)
            except OSError as err:
                if err.errno != errno.ENOENT:       # gone since listed: not an error
                    errors.append(f"{ent.path}: {os.strerror(err.errno or errno.EIO)}")
                continue
            kind = stat.S_IFMT(est.st_mode)
            found = visit(ent.path, ent.name, kind, est.st_size)
            if found is not None:
                yield found
            if kind == stat.S_IFDIR and est.st_dev == dev:
                subdirs.append(ent.path)
        stack.extend(reversed(subdirs))


def found_json(f: Found) -> dict[str, Any]:
    d: dict[str, Any] = {"path": f.path, "type": _TYPE_NAMES.get(f.kind, "other"), "size": f.size}
    if f.layout is not None:
        d["stripe_count"] = f.layout.get("stripe_count")
        d["osts"] = sorted(_osts(f.layout))
        if f.layout.get("mirrors"):
            d["mirrors"] = {m["mirror_id"]: m["state"] for m in f.layout["mirrors"]}
    return d


def criteria(args: argparse.Namespace) -> Criteria:
    return Criteria(type=_TYPES[args.type] if args.type else None, name=args.name, size=tuple(args.size or ()),
                    stripe_count=tuple(args.stripe_count or ()), osts=args.ost,
                    mirror_count=tuple(args.mirror_count or ()), mirror_state=args.mirror_state)


def run(args: argparse.Namespace) -> int:
    c = criteria(args)
    for p in args.paths:
        check_root(p)           # every bad path is a one-line error before anything is printed
    errors: list[str] = []
    found: list[dict[str, Any]] = []
    for p in args.paths:
        for f in walk(p, c, errors):
            if args.json:
                found.append(found_json(f))
            else:
                sys.stdout.write(f"{f.path}\n")
    if args.json:
        sys.stdout.write(output.to_json(found))
    sys.stdout.flush()
    for line in errors:
        sys.stderr.write(f"{PROG}: {line}\n")
    return 1 if errors else 0


def _arg(fn: Any, what: str) -> Any:
    def parse(text: str) -> Any:
        try:
            return fn(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad {what} {text!r}") from None
    return parse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    # find walks a mount and asks no server: it takes --json (the first parent) and no MDS options
    p = sub.add_parser("find", parents=parents[:1], help="find files and directories on a lustrepy mount",
                       description="Walk each PATH on a lustrepy mount and print the paths matching every "
                                   "test given, as `lfs find` does. Reads the mount only.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--type", "-t", choices=sorted(_TYPES), help="f: regular file, d: directory, l: symlink")
    p.add_argument("--name", "-n", metavar="GLOB", help="the entry's name matches GLOB (as find -name)")
    p.add_argument("--size", "-s", type=_arg(lambda t: parse_compare(t, True), "size"), metavar="[+-]N[kMGTP]",
                   action="append",
                   help="more than (+) or less than (-) N bytes (or K, M, ... units), or exactly N once rounded "
                        "up to the unit; write --size=-N for 'less than'; give it twice for a range")
    p.add_argument("--stripe-count", "-c", dest="stripe_count", type=_arg(lambda t: parse_compare(t, False),
                   "stripe count"), metavar="[+-]N", action="append", help="a file's stripe count (a directory's default one)")
    p.add_argument("--ost", "-O", type=_arg(parse_osts, "OST index list"), metavar="N[,N...]",
                   help="files with an object on one of these OSTs")
    p.add_argument("--mirror-count", dest="mirror_count", type=_arg(lambda t: parse_compare(t, False),
                   "mirror count"), metavar="[+-]N", action="append", help="files with N (more, fewer) mirrors")
    p.add_argument("--mirror-state", dest="mirror_state", choices=[f"{n}{s}" for n in ("", "^")
                                                                   for s in ("in_sync", "stale", "syncing")],
                   metavar="[^]STATE", help="files with a mirror in STATE (in_sync, stale, syncing); ^STATE: "
                                            "with none in it")
    p.set_defaults(func=run)
