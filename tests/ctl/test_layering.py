"""lfsctl reaches servers over RPC only: no module of lustrepy.ctl imports a server, client or lock package."""

from __future__ import annotations

import ast
from pathlib import Path

import lustrepy.ctl

FORBIDDEN = ("lustrepy.mds", "lustrepy.oss", "lustrepy.client", "lustrepy.ldlm")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_ctl_imports_no_server_package() -> None:
    pkg = Path(lustrepy.ctl.__file__).parent
    bad = {f"{p.name}: {name}" for p in pkg.glob("*.py") for name in imported(p)
           if name.startswith(FORBIDDEN)}
    assert not bad
