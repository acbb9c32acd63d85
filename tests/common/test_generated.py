"""The checked-in gRPC modules match the .proto files (regenerate: python -m lustrepy.rpc.regen)."""

from lustrepy.rpc import regen


def test_generated_modules_are_fresh():
    assert regen.stale() == [], "run: python -m lustrepy.rpc.regen"


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    # a copy of the package dir with one generated file altered must be reported
    import shutil
    pkg = tmp_path / "lustrepy" / "rpc" / "v1"
    shutil.copytree(regen.PKG_DIR, pkg)
    (pkg / "oss_pb2.py").write_text("# edited by hand\n")
    monkeypatch.setattr(regen, "PKG_DIR", pkg)
    monkeypatch.setattr(regen, "ROOT", tmp_path)
    assert regen.stale() == ["oss_pb2.py"]
