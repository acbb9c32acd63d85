"""Identity of an OST directory: file system name, OST index and uuid, in DIR/ost.json.

A directory is formatted once (when it is empty or new and both fsname and
index are given) and from then on only serves that file system at that index.
Never touches objects; never changes a recorded identity.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass

from lustrepy.common.errors import QuietError
from lustrepy.oss.osd import Osd

log = logging.getLogger(__name__)

IDENTITY_FILE = "ost.json"
MAX_INDEX = 0xFFFF
_FSNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True, slots=True)
class OstIdentity:
    fsname: str
    index: int
    uuid: str

    @property
    def name(self) -> str:
        """The target name, e.g. testfs-OST0001."""
        return f"{self.fsname}-OST{self.index:04x}"


def ost_uuid(fsname: str, index: int) -> str:
    return f"{fsname}-OST{index:04x}_UUID"


def check_fsname(fsname: str) -> None:
    if not _FSNAME_RE.match(fsname):
        raise QuietError(f"invalid file system name {fsname!r} (1-32 letters, digits, '_' or '-')")


def check_index(index: int) -> None:
    if not 0 <= index <= MAX_INDEX:
        raise QuietError(f"invalid OST index {index} (0..{MAX_INDEX})")


LOCK_FILE = "oss.lock"              # flock held while an OSS serves (or formats) the directory


def load_or_format(osd: Osd, fsname: str | None, index: int | None) -> OstIdentity:
    """The directory's identity, formatting it first when it is new and both are given.

    Raises QuietError (one line) when the directory belongs to another file
    system or index, is not an OST directory, or cannot be read.
    """
    if fsname is not None:
        check_fsname(fsname)
    if index is not None:
        check_index(index)
    root = osd.root
    if os.path.exists(root) and not os.path.isdir(root):
        raise QuietError(f"{root} is not a directory")
    try:
        raw = osd.read_meta(IDENTITY_FILE)
    except OSError as e:
        raise QuietError(f"cannot read {os.path.join(root, IDENTITY_FILE)}: {e.strerror}") from None
    if raw is None:
        return _format(osd, fsname, index)
    ident = _parse(raw, os.path.join(root, IDENTITY_FILE))
    if fsname is not None and fsname != ident.fsname:
        raise QuietError(f"{root} belongs to file system {ident.fsname!r}, not {fsname!r}")
    if index is not None and index != ident.index:
        raise QuietError(f"{root} is OST index {ident.index}, not {index}")
    try:
        osd.make_dirs()             # repairs a format interrupted before the object dirs existed
    except OSError as e:
        raise QuietError(f"cannot use {root}: {e.strerror}") from None
    return ident


def _format(osd: Osd, fsname: str | None, index: int | None) -> OstIdentity:
    root = osd.root
    if fsname is None or index is None:
        raise QuietError(f"{root} is not a formatted OST; give --fsname and --index to format it")
    try:
        if os.path.isdir(root) and not _is_blank(osd):
            raise QuietError(f"{root} is not empty and holds no {IDENTITY_FILE}; refusing to format it")
        os.makedirs(root, exist_ok=True)
        osd.make_dirs()
        ident = OstIdentity(fsname, index, ost_uuid(fsname, index))
        doc = {"fsname": fsname, "index": index, "uuid": ident.uuid, "formatted": int(time.time())}
        osd.write_meta(IDENTITY_FILE, (json.dumps(doc, indent=1) + "\n").encode())
    except OSError as e:
        raise QuietError(f"cannot format {root}: {e.strerror or e}") from None
    log.info("formatted %s as %s", root, ident.uuid)
    return ident


def _is_blank(osd: Osd) -> bool:
    """True for an empty directory, or one left by a format that stopped before ost.json."""
    for name in os.listdir(osd.root):
        if name.startswith(IDENTITY_FILE + ".tmp.") or name == LOCK_FILE:
            continue
        if name != os.path.basename(osd.objdir) or not os.path.isdir(osd.objdir):
            return False
        for sub in os.listdir(osd.objdir):
            subpath = os.path.join(osd.objdir, sub)
            if not os.path.isdir(subpath) or os.listdir(subpath):
                return False
    return True


def _parse(raw: bytes, where: str) -> OstIdentity:
    try:
        doc = json.loads(raw)
        fsname, index, uuid = doc["fsname"], doc["index"], doc["uuid"]
        if not (isinstance(fsname, str) and isinstance(index, int) and isinstance(uuid, str)):
            raise TypeError("wrong field types")
    except (ValueError, KeyError, TypeError) as e:
        raise QuietError(f"{where} is damaged: {e}") from None
    return OstIdentity(fsname, index, uuid)
