"""`lfsctl ca` and a local cluster's own certificates: made by `cluster up`, found by lfsctl."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def lfsctl(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lfsctl"), *argv], capture_output=True, text=True, timeout=120, env=env)


def test_init_issue_show(tmp_path):
    d = tmp_path / "ca"
    r = lfsctl("ca", "init", str(d))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(d / "ca.key").st_mode) == 0o600
    r = lfsctl("ca", "issue", "--role", "oss", "--name", "oss7", "--host", "10.0.0.7", "--host", "oss7.example",
               "--json", str(d))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["role"] == "oss" and Path(out["cert"]).exists()
    assert stat.S_IMODE(os.stat(out["key"]).st_mode) == 0o600
    r = lfsctl("ca", "show", "--json", out["cert"])
    shown = json.loads(r.stdout)
    assert (shown["role"], shown["name"]) == ("oss", "oss7") and "CN=oss7" in shown["subject"]
    assert json.loads(lfsctl("ca", "show", "--json", str(d / "ca.crt")).stdout)["role"] == "ca"


@pytest.mark.parametrize("argv, message", [
    (["issue", "--role", "client", "--name", "bad name"], "bad certificate name"),
    (["issue", "--role", "client", "--name", "ca"], "names the CA's own files"),
    (["issue", "--role", "client", "--name", "n1", "--days", "0"], "bad validity"),
])
def test_bad_requests_are_one_line(tmp_path, argv, message):
    d = tmp_path / "ca"
    assert lfsctl("ca", "init", str(d)).returncode == 0
    r = lfsctl("ca", *argv, str(d))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_no_ca_or_an_existing_certificate_is_one_line(tmp_path):
    r = lfsctl("ca", "issue", "--role", "client", "--name", "n1", str(tmp_path / "none"))
    assert r.returncode == 1 and "no CA in" in r.stderr and r.stderr.count("\n") == 1
    d = tmp_path / "ca"
    assert lfsctl("ca", "init", str(d)).returncode == 0
    r = lfsctl("ca", "init", str(d))
    assert r.returncode == 1 and "exists" in r.stderr
    assert lfsctl("ca", "issue", "--role", "client", "--name", "n1", str(d)).returncode == 0
    r = lfsctl("ca", "issue", "--role", "client", "--name", "n1", str(d))
    assert r.returncode == 1 and "exists" in r.stderr
    assert lfsctl("ca", "issue", "--role", "client", "--name", "n1", "--force", str(d)).returncode == 0
    r = lfsctl("ca", "issue", "--role", "wizard", "--name", "n1", str(d))
    assert r.returncode == 2


def test_cluster_up_makes_its_own_ca_and_lfsctl_finds_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LUSTREPY_CERTS"}
    root = tmp_path / "c"
    r = lfsctl("cluster", "up", "--root", str(root), "--osts", "1", env=env)
    try:
        assert r.returncode == 0, r.stderr
        assert sorted(p.name for p in (root / "certs").glob("*.crt")) == [
            "admin.crt", "ca.crt", "client.crt", "mds.crt", "ost0.crt"]
        assert stat.S_IMODE(os.stat(root / "certs").st_mode) == 0o700
        r = lfsctl("df", "--root", str(root), "--json", env=env)
        assert r.returncode == 0, r.stderr
        r = lfsctl("--plaintext", "df", "--root", str(root), env=env)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    finally:
        lfsctl("cluster", "down", "--root", str(root), env=env)


def test_a_plaintext_cluster(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LUSTREPY_CERTS"}
    root = tmp_path / "c"
    r = lfsctl("cluster", "up", "--plaintext", "--root", str(root), "--osts", "1", "--mount", str(tmp_path / "m"),
               env=env)
    try:
        assert r.returncode == 0, r.stderr
        assert not (root / "certs").exists()
        (tmp_path / "m" / "f").write_bytes(b"plain")
        assert (tmp_path / "m" / "f").read_bytes() == b"plain"
        assert lfsctl("--plaintext", "df", "--root", str(root), env=env).returncode == 0
    finally:
        lfsctl("cluster", "down", "--root", str(root), env=env)
