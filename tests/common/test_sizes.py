"""Modules small enough to read in one sitting: no module of the package over
600 lines, no class over 400 (generated code aside)."""

from __future__ import annotations

import ast
from pathlib import Path

import lustrepy

PACKAGE = Path(lustrepy.__file__).parent
MAX_MODULE = 600
MAX_CLASS = 400


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "rpc/v1" not in p.as_posix())


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE}
    assert long == {}


def test_no_class_is_over_400_lines():
    long = {}
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS:
                long[f"{p.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}
