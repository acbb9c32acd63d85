"""The one place that sets logging up for daemons and tools.

Daemons log one line per event to stderr (journald keeps it under systemd):
a message that spans lines (a traceback) is folded onto one line with " | ".
Levels can be raised per subsystem at start (`levels`) and at run time
(`set_level`, which the servers' `*.log.<subsystem>` tunables call). A
subsystem is a logger name below `lustrepy` ("ldlm", "mds.wbc", "rpc").
"""

from __future__ import annotations

import logging
import sys

ROOT = "lustrepy"


class OneLineFormatter(logging.Formatter):
    """Every record on one line: journald and grep see one event per line."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", " | ")


def setup(level: str = "INFO", levels: dict[str, str] | None = None, prog: str = "") -> None:
    fmt = "%(asctime)s " + (f"{prog}[%(process)d] " if prog else "") + "%(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, lvl in (levels or {}).items():
        set_level(name, lvl)


def logger_name(subsystem: str) -> str:
    """"ldlm" -> "lustrepy.ldlm"; "" -> the root logger."""
    return f"{ROOT}.{subsystem}" if subsystem else ""


def set_level(subsystem: str, level: str) -> None:
    """Set a subsystem's level ("NOTSET": follow the daemon's level); "" is the daemon's level itself."""
    lg = logging.getLogger(logger_name(subsystem))
    if not subsystem and level.upper() == "NOTSET":
        level = "WARNING"
    lg.setLevel(level.upper())


def get_level(subsystem: str) -> str:
    return logging.getLevelName(logging.getLogger(logger_name(subsystem)).level)
