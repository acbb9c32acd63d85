"""Regenerate the checked-in gRPC modules from the .proto files.

    python -m lustrepy.rpc.regen          # rewrite lustrepy/rpc/v1/*_pb2*.py
    python -m lustrepy.rpc.regen --check  # exit 1 when the checked-in files are stale

Generation runs from the repository root with `-I .`, so the generated imports
read `from lustrepy.rpc.v1 import common_pb2` and need no editing.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

PKG_DIR = Path(__file__).resolve().parent / "v1"
ROOT = PKG_DIR.parents[2]
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PKG_DIR.glob("*.proto"))


def generate(out_root: Path) -> None:
    """Run protoc on every .proto into out_root (which mirrors the repo root)."""
    from grpc_tools import protoc  # a build-time tool, imported only here

    include = Path(protoc.__file__).resolve().parent / "_proto"
    rel = [str(p.relative_to(ROOT)) for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *rel,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_names() -> list[str]:
    return [p.name[: -len(".proto")] + s for p in proto_files() for s in GENERATED_SUFFIXES]


def stale() -> list[str]:
    """Names of generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PKG_DIR.relative_to(ROOT)
        return [
            n
            for n in generated_names()
            if not (PKG_DIR / n).exists() or not filecmp.cmp(fresh / n, PKG_DIR / n, shallow=False)
        ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lustrepy.rpc.regen", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale generated files")
    ns = ap.parse_args(argv)
    if ns.check:
        bad = stale()
        if bad:
            print("stale generated modules: " + ", ".join(bad) + " (run python -m lustrepy.rpc.regen)")
            return 1
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PKG_DIR.relative_to(ROOT)
        for n in generated_names():
            shutil.copyfile(fresh / n, PKG_DIR / n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
