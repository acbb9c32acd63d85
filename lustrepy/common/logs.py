"""The one place that sets logging up for daemons and tools.

Daemons log one line per event to stderr (journald keeps it under systemd);
levels can be raised per subsystem (logger name) with `levels`.
"""

from __future__ import annotations

import logging
import sys


def setup(level: str = "INFO", levels: dict[str, str] | None = None, prog: str = "") -> None:
    fmt = "%(asctime)s " + (f"{prog}[%(process)d] " if prog else "") + "%(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, lvl in (levels or {}).items():
        logging.getLogger(name).setLevel(lvl.upper())
