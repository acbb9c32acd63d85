"""The systemd units pass `systemd-analyze verify` once rendered as the README installs them, and name the shipped configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

SYSTEMD = Path(__file__).resolve().parents[1] / "systemd"
INSTALL_BIN = "/opt/lustrepy/bin"           # where the units expect the virtualenv's programs
VENV_BIN = Path(sys.executable).parent


def render(dest: Path) -> list[Path]:
    """Copy every unit to dest with the programs pointing at this virtualenv; a template
    (name@.service) is rendered as its instance 0 too. Returns the units to verify."""
    out = []
    for unit in sorted(SYSTEMD.glob("*.service")) + sorted(SYSTEMD.glob("*.mount")):
        text = unit.read_text().replace(INSTALL_BIN, str(VENV_BIN))
        (dest / unit.name).write_text(text)
        if unit.name.endswith("@.service"):
            instance = dest / unit.name.replace("@.service", "@0.service")
            instance.write_text(text)
            out.append(instance)
        else:
            out.append(dest / unit.name)
    return out


def test_units_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    units = render(tmp_path)
    assert {u.name for u in units} == {"lustrepy-mds.service", "lustrepy-oss@0.service", "mnt-lustrepy.mount"}
    r = subprocess.run([tool, "verify", *map(str, units)], capture_output=True, text=True, timeout=50)
    ours = [ln for ln in (r.stdout + r.stderr).splitlines()
            if str(tmp_path) in ln or any(u.name in ln for u in units) or "lustrepy" in ln]
    assert r.returncode == 0 and ours == [], r.stdout + r.stderr


def test_units_use_the_shipped_configuration() -> None:
    mds = (SYSTEMD / "lustrepy-mds.service").read_text()
    oss = (SYSTEMD / "lustrepy-oss@.service").read_text()
    assert "Type=notify" in mds and "Type=notify" in oss and "Restart=on-failure" in mds + oss
    assert "--config /etc/lustrepy/mds.toml" in mds and "--config /etc/lustrepy/oss.toml --index %i" in oss
    for name in ("mds.toml", "oss.toml"):
        assert (SYSTEMD / "etc" / "lustrepy" / name).is_file()
    assert not list((SYSTEMD / "etc" / "lustrepy").glob("*.conf"))
