"""The MDS's options and tunables: their specs, their binding to the running Mdt, and where run-time settings are kept.

Tunables are served under the scope `mds.` (`mds.callback_timeout`,
`mds.wbc.contention_window`, `mds.log.ldlm`). Each settable one changes the
live object at once (the lock server's callback timeout, the OST registry's
timeout, the WBC contention policy, the precreation batch, a logger's level)
and the Mdt's config record with it. Values set at run time are kept in the
`params` table of the MDT database, next to what they tune. The default
stripe count and size are the root directory's default layout: the MDT keeps
them itself, so they are neither in that table nor in the configuration file.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import TYPE_CHECKING, Any, Callable

from lustrepy.common.errors import LpError
from lustrepy.common.fid import ROOT_FID
from lustrepy.common.layout import STRIPE_UNIT, Layout, MAX_STRIPE_SIZE
from lustrepy.common.objid import MAX_MDTS
from lustrepy.common.params import ParamSpec, Registry, bind_logs, daemon_specs, bad
from lustrepy.common.records import Cred
from lustrepy.common import capa
from lustrepy.mds import nodemap, schema
from lustrepy.ldlm.inodebits import IBit
from lustrepy.mds.lod import DEFAULT_RESERVED
from lustrepy.mds.namespace import Tx
from lustrepy.mds.reserve import DEFAULT_RESERVE
from lustrepy.mds.store import Store
from lustrepy.rpc import tls

if TYPE_CHECKING:
    from lustrepy.mds.mdt import Mdt

SCOPE = "mds"
MAX_PRECREATE = 20_000      # an OSS creates at most this many objects per Precreate call

LOG_SUBSYSTEMS = ("ldlm", "rpc", "mds", "mds.wbc", "mds.osp", "mds.replay", "mds.recovery", "mds.intent",
                  "mds.reint", "mds.resync")

OPTIONS = (
    ParamSpec("dir", "str", None, "MDT data directory", settable=False),
    ParamSpec("fsname", "str", None, "file system name (must match the formatted MDT)", settable=False),
    ParamSpec("listen", "address", "127.0.0.1:0", "HOST:PORT to serve on (port 0: any free port)",
              settable=False),
    ParamSpec("index", "int", 0, "this MDT's index in its file system (0: MDT0, the root and the FID location "
              "database; 1..: more MDTs, which register with MDT0)", settable=False, tunable=False,
              minimum=0, maximum=MAX_MDTS - 1),
    ParamSpec("mdt0", "str", "", "HOST:PORT of MDT0's MDS (needed by MDT1..)", settable=False, tunable=False),
    ParamSpec("dne_wait", "float", 30.0, "seconds a request across MDTs waits for the other MDT before it is "
              "left to finish in the background", settable=False, tunable=False, minimum=0.1, maximum=3600),
    ParamSpec("lane", "bool", True, "serve clients' requests on the request lane too (a TCP port beside gRPC)",
              settable=False, tunable=False),
    ParamSpec("lane_port", "int", 0, "the request lane's port on the listen host (0: any free port)",
              settable=False, tunable=False, minimum=0, maximum=65535),
    *tls.OPTIONS,
    ParamSpec("heartbeat_interval", "float", 1.0, "seconds between OSS heartbeats (told to each OSS)",
              minimum=0.01, maximum=3600),
    ParamSpec("ost_timeout", "float", 5.0, "an OST without a heartbeat this long is inactive",
              minimum=0.05, maximum=86400),
    ParamSpec("commit_interval", "float", 1.0, "seconds between syncs of the database log",
              minimum=0.01, maximum=60),
    ParamSpec("precreate_batch", "int", 512, "objects asked of an OST per precreation at first (doubled up to 8192 while creates empty its pool)",
              minimum=1, maximum=MAX_PRECREATE),
    ParamSpec("precreate_low", "int", 128, "precreate more when an OST's pool falls below this many objects",
              minimum=0, maximum=10 * MAX_PRECREATE),
    ParamSpec("ost_reserved", "size", DEFAULT_RESERVED,
              "an OST with less free space than this gets no new objects while others have more (0: off)",
              minimum=0, maximum=1 << 60),
    ParamSpec("pool_wait", "float", 5.0, "seconds a create waits for object pools to refill",
              minimum=0, maximum=600),
    ParamSpec("reserve", "size", DEFAULT_RESERVE,
              "disk space held back beside the database (mdt.reserve) so that a full disk still lets opens, closes "
              "and unlinks through (0: none)", settable=False, tunable=False, minimum=0, maximum=1 << 40),
    ParamSpec("start_check", "str", "quick",
              "how much of the database to check at start: quick (PRAGMA quick_check), full (integrity_check) "
              "or none", settable=False, tunable=False, choices=("quick", "full", "none")),
    ParamSpec("recovery_window", "float", 60.0,
              "seconds the clients known at a restart get to come back and replay what it lost",
              settable=False, minimum=0, maximum=86400),
    ParamSpec("wbc.contention_threshold", "int", 16,
              "conflicts on a directory within the window that stop WBC grants there",
              minimum=1, maximum=1_000_000),
    ParamSpec("wbc.contention_window", "float", 4.0, "seconds over which conflicts are counted",
              minimum=0.001, maximum=86400),
    ParamSpec("wbc.contention_hold", "float", 30.0,
              "seconds without a conflict before a contended directory gets WBC grants again",
              minimum=0, maximum=86400),
    ParamSpec("mirror.resync_delay", "float", 300.0,
              "seconds an OST stays inactive before the MDS rebuilds its mirrors' objects on other OSTs",
              minimum=0, maximum=86400 * 30),
    ParamSpec("mirror.resync_bandwidth", "size", 64 << 20,
              "bytes a second the MDS's mirror copies (resync, re-replication) move at most (0: no bound)",
              minimum=0, maximum=1 << 40),
    ParamSpec("capa_lifetime", "float", 3600.0, "seconds an object capability is good for after its issue",
              minimum=1, maximum=86400),
    ParamSpec("root_squash", "str", "", "UID:GID that root (uid 0, gid 0) of clients becomes (empty: none)",
              check=nodemap.parse_squash),
    ParamSpec("nosquash_clients", "str", "", "clients (certificate names, comma-separated) root_squash spares",
              check=nodemap.parse_names),
    ParamSpec("readonly_clients", "str", "", "clients (certificate names, comma-separated) that may only read",
              check=nodemap.parse_names),
    *daemon_specs(LOG_SUBSYSTEMS),
)

# Kept by the MDT itself (the root's default layout): served, never in the configuration file.
LAYOUT_PARAMS = (
    ParamSpec("default_stripe_count", "int", 1, "stripes of new files where no directory sets its own (-1: all)",
              minimum=-1, maximum=0xFFFF),
    ParamSpec("default_stripe_size", "size", 1 << 20, "stripe size of new files where no directory sets its own",
              minimum=STRIPE_UNIT, maximum=MAX_STRIPE_SIZE),
)

_CFG_FIELDS = ("heartbeat_interval", "ost_timeout", "callback_timeout", "commit_interval", "precreate_batch",
               "precreate_low", "ost_reserved", "pool_wait", "recovery_window")


class SqlParamStore:
    """Run-time settings in the MDT database's `params` table (each change one transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store             # its `params` table: lustrepy.mds.schema

    def load(self) -> dict[str, str]:
        return {n: v for n, v in self.store.read().conn.execute("SELECT name, value FROM params")}

    def save(self, name: str, value: str | None) -> None:
        if value is None:
            self.store.write(lambda tx: tx.conn.execute("DELETE FROM params WHERE name = ?", (name,)))
        else:
            self.store.write(lambda tx: tx.conn.execute(
                "INSERT OR REPLACE INTO params (name, value, set_ns) VALUES (?, ?, ?)",
                (name, value, time.time_ns())))


def registry(mdt: Mdt, settings: dict[str, str]) -> Registry:
    """Bind every MDS tunable to `mdt` (not yet applying kept run-time settings: see Registry.apply_saved)."""
    reg = Registry(SCOPE, SqlParamStore(mdt.store))
    by_name = {s.name: s for s in OPTIONS}

    def set_cfg(field: str) -> Callable[[Any], None]:
        def write(v: Any) -> None:
            mdt.cfg = dataclasses.replace(mdt.cfg, **{field: v})
            _push(mdt, field, v)
        return write

    reg.bind(by_name["dir"], lambda: str(mdt.cfg.dir))
    reg.bind(by_name["fsname"], lambda: mdt.fsname)
    reg.bind(by_name["listen"], lambda: mdt.address or settings.get("listen", ""))
    for f in _CFG_FIELDS:
        reg.bind(by_name[f], functools.partial(_cfg_value, mdt, f), set_cfg(f) if by_name[f].settable else None)
    for f, attr in (("wbc.contention_threshold", "threshold"), ("wbc.contention_window", "window_s"),
                    ("wbc.contention_hold", "hold_s")):
        reg.bind(by_name[f], functools.partial(_contention_value, mdt, attr), _set_contention(mdt, f, attr))
    for f, attr in (("mirror.resync_delay", "delay"), ("mirror.resync_bandwidth", "bandwidth")):
        reg.bind(by_name[f], functools.partial(getattr, mdt.resync, attr),
                 functools.partial(setattr, mdt.resync, attr))
    reg.bind(by_name["capa_lifetime"], lambda: mdt.capa_lifetime, functools.partial(setattr, mdt, "capa_lifetime"))
    mdt.capa_lifetime = float(settings.get("capa_lifetime") or capa.LIFETIME_S)
    nm = mdt.nodemap
    for f, read, write in (("root_squash", lambda: "" if nm.squash is None else "%d:%d" % nm.squash, nm.set_squash),
                           ("nosquash_clients", lambda: ",".join(sorted(nm.nosquash)), nm.set_nosquash),
                           ("readonly_clients", lambda: ",".join(sorted(nm.readonly_names)), nm.set_readonly)):
        write(settings.get(f) or "")
        reg.bind(by_name[f], read, write)
    bind_logs(reg, by_name, LOG_SUBSYSTEMS)
    count, size = LAYOUT_PARAMS
    reg.bind(count, lambda: _root_layout(mdt).stripe_count,
             lambda v: _set_root_layout(mdt, count.name, stripe_count=v), persist=False)
    reg.bind(size, lambda: _root_layout(mdt).stripe_size,
             lambda v: _set_root_layout(mdt, size.name, stripe_size=v), persist=False)
    return reg


def _cfg_value(mdt: Mdt, field: str) -> Any:
    return getattr(mdt.cfg, field)


def _contention_value(mdt: Mdt, attr: str) -> Any:
    return getattr(mdt.cfg.contention, attr)


def _push(mdt: Mdt, field: str, v: Any) -> None:
    """Hand a changed setting to the live object that uses it."""
    if field == "ost_timeout":
        mdt.registry.timeout = v
    elif field == "callback_timeout":
        mdt.lockd.callback_timeout = v
    elif field == "commit_interval":
        mdt.committer.interval = v
    elif field == "precreate_batch":
        mdt.osp.batch = v
    elif field == "ost_reserved":
        mdt.allocator.reserved = v
    elif field == "precreate_low":
        mdt.osp.low_water = v
        mdt.osp.wake()


def _set_contention(mdt: Mdt, name: str, attr: str) -> Callable[[Any], None]:
    def write(v: Any) -> None:
        try:
            policy = dataclasses.replace(mdt.cfg.contention, **{attr: v})
        except ValueError as e:
            raise bad(f"{SCOPE}.{name}", str(e)) from None
        mdt.cfg = dataclasses.replace(mdt.cfg, contention=policy)
        mdt.wbc.policy = policy
    return write


def _root_layout(mdt: Mdt) -> Layout:
    return mdt.store.read().default_layout(ROOT_FID)


def _set_root_layout(mdt: Mdt, name: str, **change: Any) -> None:
    """Change the file system's default striping: the root directory's default layout and the MDT's record
    of it, with the root's LAYOUT lock taken so clients drop what they cached of it."""
    def fn(tx: Tx) -> None:
        lo = dataclasses.replace(tx.default_layout(ROOT_FID), **change)
        try:
            lo.check()
        except LpError as e:
            raise bad(f"{SCOPE}.{name}", e.message) from None
        tx.set_default_layout(Cred(), ROOT_FID, lo)
        tx.conn.execute("UPDATE meta SET default_layout = ?", (schema.layout_to_db(lo),))

    with mdt.locks.update([(ROOT_FID, IBit.LAYOUT | IBit.XATTR)]):
        mdt.store.write(fn)
