"""Named server tunables in the `lctl get_param` shape: typed specs, parsing, and the registry a server serves.

Names are dotted. Each server puts its own scope in front of the names it
owns: `mds.` on the MDS, `ost.<index>.` on an OSS (`mds.callback_timeout`,
`mds.wbc.contention_window`, `ost.1.heartbeat_interval`, `mds.log.ldlm`).
A spec says the type, the default, the bounds and whether the value may be
changed while the server runs. The same specs check the daemons' TOML
configuration files (config.py), where keys are the names without the scope.

A registry binds each spec to the live value in the running server (a read
and, for settable ones, a write function). A value set at run time is kept
by an override store the server owns (its database or data directory) and
applied again at the next start, over the configuration file and the
command line, until it is reset. Bad names and values raise LpError with a
one-line message naming the key (ENOENT: no such tunable; EINVAL: bad value;
EPERM: fixed while the server runs). Never does I/O itself (the store does).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from lustrepy.common import logs, nids
from lustrepy.common.errors import LpError

log = logging.getLogger(__name__)

LEVELS = ("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KINDS = ("int", "float", "bool", "str", "level", "size", "address", "addresses")
_SIZE_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One option or tunable: `name` is relative to its server's scope (no `mds.` in front)."""

    name: str
    kind: str                       # one of KINDS
    default: Any
    help: str
    settable: bool = True           # may change while the server runs (else: config file / command line only)
    tunable: bool = True            # served by get-param (False: a start-up option such as dir or listen)
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[Any], object] | None = None     # a further check of a parsed value (LpError when bad)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")


@dataclass(frozen=True, slots=True)
class ParamValue:
    """A tunable as get-param shows it: full name, current value as text, and what it is."""

    name: str
    value: str
    kind: str
    settable: bool
    default: str
    help: str


class ParamStore(Protocol):
    """Where a server keeps the values set at run time (full name -> text)."""

    def load(self) -> dict[str, str]: ...

    def save(self, name: str, value: str | None) -> None: ...   # None: forget it


def daemon_specs(subsystems: tuple[str, ...]) -> tuple[ParamSpec, ...]:
    """What every daemon has: its port file, lock callback timeout, and log levels (the
    daemon's and one per subsystem)."""
    return (
        ParamSpec("port_file", "str", None, "write the port here once serving", settable=False, tunable=False),
        ParamSpec("callback_timeout", "float", 10.0,
                  "seconds a lock holder has to cancel after a blocking callback before it is evicted",
                  minimum=0.1, maximum=3600),
        ParamSpec("log.level", "level", "INFO", "the daemon's log level"),
        *(ParamSpec(f"log.{s}", "level", "NOTSET", f"log level of {s} (NOTSET: the daemon's level)")
          for s in subsystems),
    )


def bad(name: str, message: str) -> LpError:
    return LpError(errno.EINVAL, f"{name}: {message}")


def parse(spec: ParamSpec, raw: Any, name: str = "") -> Any:
    """Check and convert a value from text (set-param, command line) or TOML (int, float, bool, str).

    Raises LpError(EINVAL) naming the key."""
    v = _parse(spec, raw, name)
    if spec.check is not None:
        try:
            spec.check(v)
        except LpError as e:
            raise bad(name or spec.name, e.message) from None
    return v


def _parse(spec: ParamSpec, raw: Any, name: str) -> Any:
    key = name or spec.name
    k = spec.kind
    if isinstance(raw, str):
        raw = raw.strip()
    if k == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise bad(key, f"expected true or false, not {raw!r}")
    if k in ("int", "size"):
        v = _int(raw, k == "size")
        if v is None:
            what = "a size (bytes, or with K/M/G/T)" if k == "size" else "an integer"
            raise bad(key, f"expected {what}, not {raw!r}")
        return _bounded(spec, key, v)
    if k == "float":
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise bad(key, f"expected a number, not {raw!r}")
        try:
            f = float(raw)
        except ValueError:
            raise bad(key, f"expected a number, not {raw!r}") from None
        if f != f or f in (float("inf"), float("-inf")):
            raise bad(key, f"expected a finite number, not {raw!r}")
        return _bounded(spec, key, f)
    if not isinstance(raw, str):
        raise bad(key, f"expected a string, not {raw!r}")
    if k == "level":
        lv = raw.upper()
        if lv == "WARN":
            lv = "WARNING"
        if lv not in LEVELS:
            raise bad(key, f"expected a log level ({', '.join(LEVELS)}), not {raw!r}")
        return lv
    if k == "address":
        host, sep, port = raw.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise bad(key, f"expected HOST:PORT, not {raw!r}")
        return raw
    if k == "addresses":            # a failover list (common.nids)
        try:
            nids.split_addresses(raw)
        except ValueError as e:
            raise bad(key, str(e)) from None
        return raw
    if spec.choices and raw not in spec.choices:
        raise bad(key, f"expected one of {', '.join(spec.choices)}, not {raw!r}")
    return raw


def _int(raw: Any, size: bool) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if not isinstance(raw, str) or not raw:
        return None
    mult = 1
    if size:
        t = raw.upper().removesuffix("B").removesuffix("I")
        if t and t[-1] in _SIZE_SUFFIX:
            mult, t = _SIZE_SUFFIX[t[-1]], t[:-1]
        raw = t
    try:
        return int(raw, 0) * mult
    except ValueError:
        return None


def _bounded(spec: ParamSpec, key: str, v: Any) -> Any:
    if spec.minimum is not None and v < spec.minimum:
        raise bad(key, f"{v:g} is below the minimum {spec.minimum:g}")
    if spec.maximum is not None and v > spec.maximum:
        raise bad(key, f"{v:g} is above the maximum {spec.maximum:g}")
    return v


def show(spec: ParamSpec, v: Any) -> str:
    """The canonical text of a value (what get-param prints and the override store keeps)."""
    if v is None:
        return ""
    if spec.kind == "bool":
        return "true" if v else "false"
    if spec.kind == "float":
        return f"{float(v):g}"
    return str(v)


@dataclass(slots=True)
class _Bound:
    spec: ParamSpec
    read: Callable[[], Any]
    write: Callable[[Any], None] | None
    base: str = ""                  # the value before any run-time setting (config file, command line)
    persist: bool = True            # False: the write itself is durable (kept elsewhere by the server)


class Registry:
    """The tunables one server serves, under one scope (e.g. "mds" or "ost.3")."""

    def __init__(self, scope: str, store: ParamStore | None = None) -> None:
        self.scope = scope
        self._store = store
        self._params: dict[str, _Bound] = {}
        self._mu = threading.Lock()

    def full(self, rel: str) -> str:
        return f"{self.scope}.{rel}"

    def bind(self, spec: ParamSpec, read: Callable[[], Any], write: Callable[[Any], None] | None = None,
             *, persist: bool = True) -> None:
        """Serve `spec`: `read` gives the live value, `write` (settable specs) changes it at once."""
        if spec.settable and write is None:
            raise ValueError(f"{spec.name}: a settable tunable needs a write function")
        b = _Bound(spec, read, write, persist=persist)
        b.base = show(spec, read())
        self._params[self.full(spec.name)] = b

    def names(self) -> list[str]:
        return sorted(self._params)

    # ---- start-up -------------------------------------------------------------------

    def apply_saved(self) -> list[tuple[str, str]]:
        """Apply the values kept from earlier run-time settings; returns those applied.

        A kept value that no longer parses (or names a tunable this server no longer
        has) is logged and skipped, never fatal."""
        if self._store is None:
            return []
        applied = []
        for name, text in sorted(self._store.load().items()):
            b = self._params.get(name)
            if b is None or not b.spec.settable or not b.persist:
                log.warning("ignoring kept setting %s=%s: no such run-time tunable here", name, text)
                continue
            try:
                v = parse(b.spec, text, name)
                assert b.write is not None
                b.write(v)
            except LpError as e:
                log.warning("ignoring kept setting %s=%s: %s", name, text, e.message)
                continue
            applied.append((name, show(b.spec, v)))
            if show(b.spec, v) != b.base:
                log.info("%s=%s (set at run time; configured %s)", name, show(b.spec, v), b.base)
        return applied

    # ---- get / set ------------------------------------------------------------------

    def get(self, patterns: Iterable[str] = ()) -> list[ParamValue]:
        """The tunables whose full names match any of the glob patterns (all when none), by name."""
        pats = [p for p in patterns if p] or ["*"]
        out = []
        for name in self.names():
            if any(fnmatch.fnmatchcase(name, p) for p in pats):
                out.append(self._value(name))
        return out

    def _value(self, name: str) -> ParamValue:
        b = self._params[name]
        return ParamValue(name=name, value=show(b.spec, b.read()), kind=b.spec.kind, settable=b.spec.settable,
                          default=show(b.spec, b.spec.default), help=b.spec.help)

    def expand(self, pattern: str) -> list[str]:
        """Full names a set-param NAME (maybe a glob) means here; ENOENT when none."""
        names = [n for n in self.names() if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            raise LpError(errno.ENOENT, f"{pattern}: no such tunable")
        return names

    def set(self, settings: Iterable[tuple[str, str | None]]) -> list[ParamValue]:
        """Set (value text) or reset (None: back to the configured value) each NAME; all are
        checked before any is changed. Returns the tunables as they now are."""
        plan: list[tuple[str, _Bound, Any, bool]] = []
        for pattern, text in settings:
            for name in self.expand(pattern):
                b = self._params[name]
                if not b.spec.settable:
                    raise LpError(errno.EPERM, f"{name}: fixed while the server runs "
                                               "(set it in the configuration file and restart)")
                reset = text is None
                plan.append((name, b, parse(b.spec, b.base if reset else text, name), reset))
        changed = []
        with self._mu:
            for name, b, v, reset in plan:
                assert b.write is not None
                b.write(v)
                if b.persist and self._store is not None:
                    self._store.save(name, None if reset else show(b.spec, v))
                log.info("%s %s=%s", "reset" if reset else "set", name, show(b.spec, v))
                changed.append(name)
        return [self._value(n) for n in dict.fromkeys(changed)]


def split_setting(arg: str) -> tuple[str, str]:
    """'NAME=VALUE' -> (NAME, VALUE); ValueError when there is no '=' or no name."""
    name, sep, value = arg.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=VALUE, not {arg!r}")
    return name.strip(), value.strip()


def bind_logs(reg: Registry, by_name: dict[str, ParamSpec], subsystems: tuple[str, ...]) -> None:
    """Serve the daemon's log level and each subsystem's (daemon_specs) from the logging setup."""
    reg.bind(by_name["log.level"], lambda: logs.get_level(""), lambda v: logs.set_level("", v))
    for s in subsystems:
        reg.bind(by_name[f"log.{s}"], functools.partial(logs.get_level, s), functools.partial(logs.set_level, s))

