"""The OSS's options and tunables: their specs, their binding to the running server, and where run-time settings are kept.

Tunables are served under the scope `ost.<index>.` (`ost.0.callback_timeout`,
`ost.0.heartbeat_interval`, `ost.0.scrub_rate`, `ost.0.log.ldlm`). A settable
one changes the live object at once (the lock server's callback timeout, the
announcer's period, the scrub's rate, a logger's level). Values set at run time are kept in
DIR/params.json (name -> value text), replaced atomically at every change.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from lustrepy.common.params import ParamSpec, Registry, bind_logs, daemon_specs
from lustrepy.oss.identity import MAX_INDEX, OstIdentity
from lustrepy.oss.osd import Osd
from lustrepy.rpc import tls

log = logging.getLogger(__name__)

PARAMS_FILE = "params.json"
LOG_SUBSYSTEMS = ("ldlm", "rpc", "oss", "oss.ofd", "oss.osd", "oss.announce", "oss.service", "oss.tgt",
                  "oss.recovery", "oss.barrier", "oss.integrity", "oss.scrub")

OPTIONS = (
    ParamSpec("dir", "str", None, "OST data directory", settable=False),
    ParamSpec("listen", "address", None, "HOST:PORT to serve on (port 0: any free port)", settable=False),
    *tls.OPTIONS,
    ParamSpec("mds", "addresses", None, "HOST:PORT of the MDS to announce to (HOST:PORT,HOST:PORT: the MDT's failover addresses)", settable=False),
    ParamSpec("index", "int", None, "OST index (needed to format)", settable=False, minimum=0, maximum=MAX_INDEX),
    ParamSpec("fsname", "str", None, "file system name (needed to format; must match a formatted OST)",
              settable=False),
    ParamSpec("capacity", "size", None, "cap the space this OST reports and accepts (none: the disk's)",
              settable=False, minimum=1),
    ParamSpec("advertise", "str", None, "host announced to the MDS when listening on a wildcard address",
              settable=False, tunable=False),
    ParamSpec("node", "str", None, "the host this OSS runs on, as mirror placement sees it: two mirrors of a "
              "file never share one (default: the announced host)", settable=False, tunable=False),
    ParamSpec("failure_domain", "str", "", "what fails together with this OSS (a rack, a power feed): mirrors "
              "go to different domains while there are enough", settable=False, tunable=False),
    ParamSpec("lane", "bool", True, "serve clients' bulk data on the request lane too (a TCP port beside gRPC)",
              settable=False, tunable=False),
    ParamSpec("heartbeat_interval", "float", 1.0, "seconds between announces to the MDS given (MDT0; the "
              "other MDTs ask for their own)",
              minimum=0.01, maximum=3600),
    ParamSpec("commit_interval", "float", 1.0, "seconds between commits of written objects (what a crash "
              "of the OSS host may lose, and clients keep to replay)", minimum=0.01, maximum=60),
    ParamSpec("recovery_window", "float", 60.0, "seconds the clients that wrote since the last commit get "
              "to replay after a restart", settable=False, minimum=0.1, maximum=3600),
    ParamSpec("checksums", "bool", True, "keep a crc32c of every 64 KiB block of every object and check it on "
              "every read (off: for measurements only; the next start with them recomputes them all)",
              settable=False, tunable=False),
    ParamSpec("scrub_rate", "float", 16.0, "MiB/s the background scrub reads to check objects against their "
              "checksums (0: off); a change starts a pass at once", minimum=0, maximum=1_000_000),
    ParamSpec("scrub_interval", "float", 3600.0, "seconds from the end of one scrub pass to the start of the "
              "next", minimum=0.1, maximum=30 * 86400),
    *daemon_specs(LOG_SUBSYSTEMS),
)


def scope(index: int) -> str:
    return f"ost.{index}"


class FileParamStore:
    """Run-time settings in DIR/params.json, replaced atomically (temp, fsync, rename) at each change."""

    def __init__(self, osd: Osd) -> None:
        self.osd = osd
        self._kept: dict[str, str] | None = None

    def load(self) -> dict[str, str]:
        if self._kept is None:
            self._kept = {}
            try:
                raw = self.osd.read_meta(PARAMS_FILE)
                doc = json.loads(raw) if raw is not None else {}
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
                self._kept = {str(k): str(v) for k, v in doc.items()}
            except (OSError, ValueError) as e:
                log.warning("ignoring %s: %s", PARAMS_FILE, e)
        return dict(self._kept)

    def save(self, name: str, value: str | None) -> None:
        kept = self.load()
        if value is None:
            kept.pop(name, None)
        else:
            kept[name] = value
        self.osd.write_meta(PARAMS_FILE, (json.dumps(kept, indent=1, sort_keys=True) + "\n").encode())
        self._kept = kept


def registry(ident: OstIdentity, osd: Osd, values: dict[str, Any],
             live: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]]) -> Registry:
    """Bind the OSS's tunables: `live` maps each settable name to (read, write) on the running objects."""
    reg = Registry(scope(ident.index), FileParamStore(osd))
    by_name = {s.name: s for s in OPTIONS}
    for name in ("dir", "mds", "capacity", "recovery_window"):
        reg.bind(by_name[name], functools.partial(values.get, name))
    reg.bind(by_name["index"], lambda: ident.index)
    reg.bind(by_name["fsname"], lambda: ident.fsname)
    reg.bind(by_name["listen"], lambda: values.get("listen"))
    for name, (read, write) in live.items():
        reg.bind(by_name[name], read, write)
    bind_logs(reg, by_name, LOG_SUBSYSTEMS)
    return reg
