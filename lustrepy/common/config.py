"""The daemons' configuration files: one TOML file per role, read with tomllib and checked against the role's specs.

Keys are the role's option and tunable names without the server's scope:
`callback_timeout = 10`, and a dotted name is a table (`[wbc]
contention_window = 4` is `wbc.contention_window`; `[log] ldlm = "DEBUG"`
is `log.ldlm`). Every key is optional (the spec's default applies); an
unknown key or a bad value is a ConfigError, one line naming the file and
the key. Precedence, lowest first: spec default, file, command line (and, on
the server, a value kept from set-param; see params.py). Never does anything
but read the one file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.params import ParamSpec, parse


class ConfigError(QuietError):
    """A configuration file that cannot be used: one line naming the file and the key."""


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"wbc": {"contention_window": 4}} -> {"wbc.contention_window": 4}."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def load(path: str | None, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """The values the file sets (relative name -> checked value); {} without a file."""
    if not path:
        return {}
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {}
    for key, raw in flatten(doc).items():
        spec = by_name.get(key)
        if spec is None:
            raise ConfigError(f"{path}: unknown key {key!r}{_hint(key, by_name)}")
        if isinstance(raw, (list, dict)) or hasattr(raw, "isoformat"):
            raise ConfigError(f"{path}: key {key}: expected one {spec.kind} value, not a {type(raw).__name__}")
        try:
            out[key] = parse(spec, raw, key)
        except LpError as e:
            raise ConfigError(f"{path}: key {e.message}") from None
    return out


def _hint(key: str, names: Mapping[str, ParamSpec]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve(specs: Iterable[ParamSpec], from_file: Mapping[str, Any],
            from_cli: Mapping[str, Any]) -> dict[str, Any]:
    """Every spec's value: the command line's when given (not None), else the file's, else the default.

    Command-line values are checked by the same specs (a bad one is a QuietError naming the option)."""
    out: dict[str, Any] = {}
    for s in specs:
        cli = from_cli.get(s.name)
        if cli is not None:
            try:
                out[s.name] = parse(s, cli, "--" + s.name.replace("_", "-").replace(".", "-"))
            except LpError as e:
                raise QuietError(e.message) from None
        elif s.name in from_file:
            out[s.name] = from_file[s.name]
        else:
            out[s.name] = s.default
    return out
