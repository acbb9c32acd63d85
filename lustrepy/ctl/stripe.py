"""`lfsctl getstripe` and `lfsctl setstripe`: a file's or directory's layout on a mounted lustrepy path.

As Lustre's `lfs`, these work through the layout extended attribute of the
path (`lustrepy.lov`, compact JSON, see lustrepy.common.layout) with
getxattr/setxattr on the mount: they never talk to a server, so they need a
mounted file system and act with the caller's permissions.

  getstripe PATH...   the layout in `lfs getstripe`'s shape (a directory: its default layout)
  setstripe PATH      a directory's default layout for new files; a new file (created empty with
                      the layout, like `lfs setstripe`); an existing file only while it has no objects

The pure parts (size parsing, decoding, rendering, the requested layout) are
separate functions so they can be checked without a mount. Never removes a
file it did not create in the same call.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import stat
import sys
from collections.abc import Callable
from typing import Any

from lustrepy.common import layout as lo
from lustrepy.common.errors import LpError, QuietError
from lustrepy.ctl import mounts, output

log = logging.getLogger(__name__)

LOV = lo.LOV_XATTR.decode()
PROG = "lfsctl"
NO_LOV = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)
# Lustre's lfs creates the file to be striped with O_LOV_DELAY_CREATE (O_NOCTTY | FASYNC) so that open
# allocates no objects before the layout is set. FUSE drops O_NOCTTY but hands O_ASYNC (meaningless
# at open for a regular file) to the client's create: the client may take it as "no objects yet".
O_LOV_DELAY_CREATE = os.O_NOCTTY | os.O_ASYNC
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


# ---- the xattr (module-level so tests can stand in for a mount) ------------------------------------

def get_lov(path: str) -> bytes:
    return os.getxattr(path, LOV)


def set_lov(target: str | int, value: bytes) -> None:
    os.setxattr(target, LOV, value)


def remove_lov(path: str) -> None:
    os.removexattr(path, LOV)


# ---- pure parts ---------------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """Stripe sizes as lfs takes them: bytes, or a whole number with K, M, G or T (binary, any case,
    an optional trailing B or iB). QuietError (usage, exit 2) when malformed."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in _UNITS else (t, "")
    if not num.isdigit():
        raise QuietError(f"bad stripe size {text!r}: expected bytes or a number with K, M or G (e.g. 1M)", 2)
    return int(num) * _UNITS[unit]


def decode(value: bytes) -> dict[str, Any]:
    """A `lustrepy.lov` value -> dict with stripe_size, stripe_count, stripe_offset, pattern,
    layout_gen and (files with objects) objects as [[ost_index, object_id], ...]."""
    try:
        d: dict[str, Any] = json.loads(value.decode())
        if not isinstance(d, dict):
            raise TypeError("not a JSON object")
        out: dict[str, Any] = {"stripe_size": int(d["stripe_size"]), "stripe_count": int(d["stripe_count"]),
                               "stripe_offset": int(d.get("stripe_offset", -1)),
                               "pattern": str(d.get("pattern", "raid0")),
                               "layout_gen": int(d.get("layout_gen") or d.get("generation") or 0)}
        if "objects" in d:
            out["objects"] = [[int(i), int(oid)] for i, oid in d["objects"]]
        if "fid" in d:
            out["fid"] = str(d["fid"])
        if int(d.get("mirror_count", 0)) > 1 or d.get("mirrors"):
            out["mirror_count"] = int(d.get("mirror_count") or len(d["mirrors"]))
        if d.get("mirrors"):
            out["mirrors"] = [{"mirror_id": int(m["id"]), "state": str(m["state"]),
                               "stripe_size": int(m["stripe_size"]), "stripe_count": int(m["stripe_count"]),
                               "objects": [[int(i), int(oid)] for i, oid in m["objects"]]} for m in d["mirrors"]]
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
        raise LpError(errno.EINVAL, f"malformed {LOV} value ({e})") from None
    return out


def render_file(path: str, d: dict[str, Any]) -> str:
    """A file's layout as `lfs getstripe` prints it (a mirrored one as its composite layout)."""
    if d.get("mirrors"):
        return render_mirrored(path, d)
    objects = d.get("objects") or []
    offset = objects[0][0] if objects else d["stripe_offset"]
    lines = [path,
             f"lmm_stripe_count:  {d['stripe_count']}",
             f"lmm_stripe_size:   {d['stripe_size']}",
             f"lmm_pattern:       {d['pattern']}",
             f"lmm_layout_gen:    {d.get('layout_gen', 0)}",
             f"lmm_stripe_offset: {offset}"]
    if objects:
        lines.append("\tobdidx\t\t objid\t\t objid\t\t group")
        lines += [f"\t{idx:6d}\t{oid:14d}\t{oid:#13x}\t{0:14d}" for idx, oid in objects]
    return "\n".join(lines) + "\n"


def render_mirrored(path: str, d: dict[str, Any]) -> str:
    """A mirrored file: the composite layout, then each mirror's RAID0 layout and objects."""
    mirrors = d["mirrors"]
    lines = [path, f"  lcm_layout_gen:    {d.get('layout_gen', 0)}", f"  lcm_mirror_count:  {len(mirrors)}",
             f"  lcm_entry_count:   {len(mirrors)}"]
    for m in mirrors:
        flags = {"in_sync": "init", "stale": "init,stale"}.get(m["state"], "init,stale,syncing")
        lines += [f"    lcme_mirror_id:      {m['mirror_id']}", f"    lcme_flags:          {flags}",
                  f"      lmm_stripe_count:  {m['stripe_count']}", f"      lmm_stripe_size:   {m['stripe_size']}",
                  f"      lmm_pattern:       {d['pattern']}",
                  f"      lmm_stripe_offset: {m['objects'][0][0] if m['objects'] else -1}",
                  "\tobdidx\t\t objid\t\t objid\t\t group"]
        lines += [f"\t{idx:6d}\t{oid:14d}\t{oid:#13x}\t{0:14d}" for idx, oid in m["objects"]]
    return "\n".join(lines) + "\n"


def render_dir(path: str, d: dict[str, Any]) -> str:
    """A directory's default layout as `lfs getstripe -d` prints it."""
    mirrors = f" mirror_count: {d['mirror_count']}" if d.get("mirror_count", 0) > 1 else ""
    return (f"{path}\nstripe_count:  {d['stripe_count']} stripe_size:   {d['stripe_size']} "
            f"pattern:       {d['pattern']} stripe_offset: {d['stripe_offset']}{mirrors}\n")


def as_json(path: str, is_dir: bool, d: dict[str, Any]) -> dict[str, Any]:
    out = {"path": path, "type": "directory" if is_dir else "file", **d}
    if not is_dir:
        out.setdefault("objects", [])
    return out


def requested(base: dict[str, Any] | None, count: int | None, size: int | None, offset: int | None,
              mirrors: int | None = None) -> lo.Layout:
    """The layout setstripe (or mirror create) asks for: given values, the rest (or 0 = default) from
    `base`, the layout of the directory the new one inherits from. QuietError naming what is wrong."""
    base = base or {}

    def pick(given: int | None, key: str, default: int) -> int:
        return given if given else int(base.get(key, default))

    layout = lo.Layout(stripe_size=pick(size, "stripe_size", lo.DEFAULT_STRIPE_SIZE),
                       stripe_count=pick(count, "stripe_count", lo.DEFAULT_STRIPE_COUNT),
                       stripe_offset=offset if offset is not None else int(base.get("stripe_offset", -1)),
                       mirror_count=pick(mirrors, "mirror_count", 0))
    if layout.stripe_size > lo.MAX_STRIPE_SIZE:
        raise QuietError(f"stripe size {layout.stripe_size} is over the maximum {lo.MAX_STRIPE_SIZE}", 2)
    try:
        layout.check()
    except LpError as e:
        raise QuietError(e.message, 2) from None
    return layout


# ---- I/O ----------------------------------------------------------------------------------------

def _errname(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    return f"{e.strerror or e} ({name})" if name else str(e.strerror or e)


def _on_lustrepy(path: str) -> bool:
    m = mounts.mount_of(path, mounts.read_mounts())
    return m is not None and m.fstype == mounts.FSTYPE


def read_layout(path: str) -> dict[str, Any] | None:
    """The decoded layout of path; None for a lustrepy file that has no layout yet.
    QuietError when path is not on lustrepy or cannot be read."""
    try:
        value = get_lov(path)
    except OSError as e:
        if e.errno in NO_LOV:
            if e.errno == errno.ENODATA and _on_lustrepy(path):
                return None
            raise QuietError(f"{path}: not a lustrepy file (no {LOV})") from None
        raise QuietError(f"{path}: {_errname(e)}") from None
    try:
        return decode(value)
    except LpError as e:
        raise QuietError(f"{path}: {e.message}") from None


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise QuietError(f"{path}: {_errname(e)}") from None


def getstripe_one(path: str) -> tuple[bool, dict[str, Any] | None]:
    st = _stat(path)
    if st is None:
        raise QuietError(f"{path}: No such file or directory")
    return stat.S_ISDIR(st.st_mode), read_layout(path)


def _parent(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) or "/"


def setstripe_one(path: str, count: int | None, size: int | None, offset: int | None, delete: bool,
                  mirrors: int | None = None) -> None:
    st = _stat(path)
    if delete:
        if st is None or not stat.S_ISDIR(st.st_mode):
            raise QuietError(f"{path}: -d removes a directory's default layout; not a directory")
        read_layout(path)
        _xattr_call(path, lambda: remove_lov(path))
        return
    if st is not None and stat.S_ISDIR(st.st_mode):
        want = requested(read_layout(path), count, size, offset, mirrors)
        _xattr_call(path, lambda: set_lov(path, lo.encode_lov(want)))
    elif st is None:
        parent = _parent(path)
        if not os.path.isdir(parent):
            raise QuietError(f"{path}: No such file or directory (no directory {parent} to create it in)")
        try:
            base = read_layout(parent)
        except QuietError as e:
            if "not a lustrepy file" in str(e):
                raise QuietError(f"{path}: not on a lustrepy file system ({parent} has no {LOV})") from None
            raise
        _create_striped(path, requested(base, count, size, offset, mirrors))
    elif stat.S_ISREG(st.st_mode):
        cur = read_layout(path)
        if cur is not None and cur.get("objects"):
            raise QuietError(f"{path}: already has a layout with objects (EEXIST): setstripe a new path "
                             f"or the directory new files inherit from")
        want = requested(read_layout(_parent(path)), count, size, offset, mirrors)
        _xattr_call(path, lambda: set_lov(path, lo.encode_lov(want)))
    else:
        raise QuietError(f"{path}: layouts apply to regular files and directories only")


def _create_striped(path: str, want: lo.Layout) -> None:
    """Create path empty with the layout, as `lfs setstripe` does; remove it again when the layout
    cannot be set (it was created here, so nothing else can have used it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_LOV_DELAY_CREATE, 0o666)
    except OSError as e:
        raise QuietError(f"{path}: cannot create: {_errname(e)}") from None
    try:
        _xattr_call(path, lambda: set_lov(fd, lo.encode_lov(want)))
    except QuietError as e:
        try:
            os.unlink(path)
        except OSError as u:
            log.warning("could not remove %s after failing to set its layout: %s", path, u.strerror)
        if "(EEXIST)" in str(e):
            raise QuietError(f"{path}: the file got objects when it was created, so its layout cannot be set "
                             f"(EEXIST); removed it again") from None
        raise
    finally:
        os.close(fd)


def _xattr_call(path: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except OSError as e:
        if e.errno == errno.EEXIST:
            raise QuietError(f"{path}: already has a layout with objects (EEXIST)") from None
        if e.errno in NO_LOV and not _on_lustrepy(path):
            raise QuietError(f"{path}: not on a lustrepy file system (no {LOV})") from None
        raise QuietError(f"{path}: cannot set the layout: {_errname(e)}") from None


# ---- commands -----------------------------------------------------------------------------------

def _say(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad stripe count {text!r}: a number, -1 for all OSTs") from None
    if n < -1:
        raise argparse.ArgumentTypeError(f"bad stripe count {n}: -1 (all OSTs), 0 (default) or more")
    return n


def _index(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -2
    if n < -1:
        raise argparse.ArgumentTypeError(f"bad OST index {text!r}: an OST index, or -1 to let the MDS choose")
    return n


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except QuietError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("getstripe", parents=parents, help="show the layout of files and directories",
                       description="Show the striping of each PATH on a lustrepy mount, as `lfs getstripe` "
                                   "does: a file's layout and objects, a directory's default layout. "
                                   "--json prints one object (several PATHs: a list).")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.set_defaults(func=run_getstripe)

    s = sub.add_parser("setstripe", parents=parents, help="set the layout of a new file or a directory",
                       description="Set the striping of PATH on a lustrepy mount: on a directory, the "
                                   "default for files created in it; on a path that does not exist, create "
                                   "an empty file with that layout; an existing file only while it has no "
                                   "objects. Values not given (or 0) come from the directory the layout "
                                   "is inherited from.")
    s.add_argument("-c", "--stripe-count", dest="count", type=_count, metavar="COUNT",
                   help="number of OSTs to stripe over (-1: all)")
    s.add_argument("-S", "--stripe-size", dest="size", type=_size, metavar="SIZE",
                   help="bytes per stripe, a multiple of 64K (suffixes K, M, G)")
    s.add_argument("-i", "--stripe-index", dest="index", type=_index, metavar="OST",
                   help="OST index of the first stripe (-1: the MDS chooses)")
    s.add_argument("-d", "--delete", action="store_true",
                   help="remove a directory's default layout (it inherits again)")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.set_defaults(func=run_setstripe)


def run_getstripe(args: argparse.Namespace) -> int:
    failed = False
    blocks: list[str] = []
    found: list[dict[str, Any]] = []
    for path in args.paths:
        try:
            is_dir, d = getstripe_one(path)
        except QuietError as e:
            _say(str(e))
            failed = True
            continue
        if d is None:
            blocks.append(f"{path} has no stripe info\n")
            found.append({"path": path, "type": "directory" if is_dir else "file", "objects": []})
        else:
            blocks.append(render_dir(path, d) if is_dir else render_file(path, d))
            found.append(as_json(path, is_dir, d))
    if args.json:
        if found:
            sys.stdout.write(output.to_json(found[0] if len(args.paths) == 1 else found))
    else:
        sys.stdout.write("\n".join(blocks))
    return 1 if failed else 0


def run_setstripe(args: argparse.Namespace) -> int:
    if args.delete and (args.count is not None or args.size is not None or args.index is not None):
        raise QuietError("setstripe: -d takes no -c, -S or -i", 2)
    if not args.delete and args.count is None and args.size is None and args.index is None:
        raise QuietError("setstripe: give at least one of -c COUNT, -S SIZE, -i OST (or -d)", 2)
    requested(None, args.count, args.size, args.index)      # bad values are usage errors, before any I/O
    failed = False
    done: list[dict[str, Any]] = []
    for path in args.paths:
        try:
            setstripe_one(path, args.count, args.size, args.index, args.delete)
            if args.json:
                is_dir, d = getstripe_one(path)
                done.append(as_json(path, is_dir, d or {}))
        except QuietError as e:
            if e.exitcode == 2:
                raise
            _say(str(e))
            failed = True
    if args.json and done:
        sys.stdout.write(output.to_json(done[0] if len(args.paths) == 1 else done))
    return 1 if failed else 0
