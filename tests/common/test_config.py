"""The daemons' TOML configuration: the shipped examples, key and value checking, and precedence on real daemons."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lustrepy.common import config
from lustrepy.common.errors import LpError
from lustrepy.common.params import ParamSpec, parse
from lustrepy.ctl import params as ctl_params
from lustrepy.mds import params as mds_params
from lustrepy.oss import params as oss_params
from tests.support.servers import BIN, Proc, wait_for

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "systemd" / "etc" / "lustrepy"


def write(tmp_path: Path, text: str, name: str = "c.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_shipped_examples_are_valid(tmp_path: Path) -> None:
    mds = config.load(str(EXAMPLES / "mds.toml"), mds_params.OPTIONS)
    assert mds == {"fsname": "testfs", "dir": "/var/lib/lustrepy/mdt", "listen": "0.0.0.0:9880", "log.level": "INFO"}
    oss = config.load(str(EXAMPLES / "oss.toml"), oss_params.OPTIONS)
    assert oss["mds"] == "mds.example.net:9880" and oss["log.level"] == "INFO"
    # every commented-out setting ("# key = value") is a real key with a valid value
    for name, specs in (("mds.toml", mds_params.OPTIONS), ("oss.toml", oss_params.OPTIONS)):
        text = "".join(ln.removeprefix("# ") + "\n" for ln in (EXAMPLES / name).read_text().splitlines()
                       if ln.startswith("[") or re.fullmatch(r"# [\w\".]+ = \S+", ln))
        values = config.load(write(tmp_path, text, name), specs)
        assert len(values) > 3, (name, text)


@pytest.mark.parametrize("text, message", [
    ("calback_timeout = 3\n", "unknown key 'calback_timeout' (did you mean 'callback_timeout'?)"),
    ("callback_timeout = 'soon'\n", "key callback_timeout: expected a number, not 'soon'"),
    ("callback_timeout = 0\n", "key callback_timeout: 0 is below the minimum 0.1"),
    ("[wbc]\ncontention_threshold = 2.5\n", "key wbc.contention_threshold: expected an integer, not 2.5"),
    ("[log]\nldlm = 'LOUD'\n", "key log.ldlm: expected a log level"),
    ("listen = 'nowhere'\n", "key listen: expected HOST:PORT, not 'nowhere'"),
    ("listen = [1, 2]\n", "key listen: expected one address value, not a list"),
    ("fsname = \n", "not valid TOML"),
    ("default_stripe_count = 2\n", "unknown key 'default_stripe_count'"),
])
def test_bad_keys_and_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as ei:
        config.load(path, mds_params.OPTIONS)
    assert str(ei.value).startswith(f"{path}: ") and message in str(ei.value), str(ei.value)
    assert "\n" not in str(ei.value)


def test_precedence_default_file_command_line() -> None:
    specs = (ParamSpec("a", "int", 1, ""), ParamSpec("b", "int", 2, ""), ParamSpec("c", "int", 3, ""))
    assert config.resolve(specs, {"b": 20, "c": 30}, {"c": "300", "a": None}) == {"a": 1, "b": 20, "c": 300}


def test_parse_kinds() -> None:
    assert parse(ParamSpec("s", "size", 0, ""), "128K") == 131072
    assert parse(ParamSpec("s", "size", 0, ""), "2GiB") == 2 << 30
    assert parse(ParamSpec("b", "bool", False, ""), "on") is True
    assert parse(ParamSpec("l", "level", "INFO", ""), "warn") == "WARNING"
    with pytest.raises(LpError):
        parse(ParamSpec("f", "float", 0.0, ""), "nan")
    with pytest.raises(LpError):
        parse(ParamSpec("i", "int", 0, ""), True)


def test_may_match_decides_which_servers_are_asked() -> None:
    assert ctl_params.may_match("mds", "mds.wbc.*") and ctl_params.may_match("ost.1", "*.callback_timeout")
    assert not ctl_params.may_match("ost.1", "mds.*") and not ctl_params.may_match("ost.12", "ost.1.*")
    assert ctl_params.may_match("ost.12", "ost.1*")


def run_daemon(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("prog", ["lustrepy-mds", "lustrepy-oss"])
def test_a_bad_file_stops_the_daemon_in_one_line(tmp_path: Path, prog: str) -> None:
    path = write(tmp_path, "[log]\nlevel = 'chatty'\n")
    r = run_daemon(str(BIN / prog), "--config", path, "--dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                   *(["--mds", "127.0.0.1:1"] if prog == "lustrepy-oss" else []))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [f"{prog}: {path}: key log.level: expected a log level "
                                     "(NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL), not 'chatty'"]
    r = run_daemon(str(BIN / prog), "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 1 and r.stderr == f"{prog}: {tmp_path / 'missing.toml'}: no such configuration file\n"


def test_daemons_read_the_file_and_the_command_line_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mds_conf = write(tmp_path, f"""fsname = "cfgfs"
dir = "{tmp_path / 'mdt'}"
listen = "127.0.0.1:0"
port_file = "{tmp_path / 'mds.port'}"
callback_timeout = 12
[wbc]
contention_window = 6
[log]
"mds.wbc" = "DEBUG"
""", "mds.toml")
    mds = Proc("mds", [str(BIN / "lustrepy-mds"), "--config", mds_conf, "--callback-timeout", "13"],
               tmp_path / "mds.log", tmp_path / "mds.port")
    oss = None
    try:
        mds.start()
        oss_conf = write(tmp_path, f"""fsname = "cfgfs"
mds = "{mds.address}"
listen = "127.0.0.1:0"
heartbeat_interval = 0.3
commit_interval = 2
""", "oss.toml")
        own = write(tmp_path, f'dir = "{tmp_path / "ost3"}"\nport_file = "{tmp_path / "ost3.port"}"\n'
                              'callback_timeout = 4\n', "oss-3.toml")
        oss = Proc("oss", [str(BIN / "lustrepy-oss"), "--config", oss_conf, "--config", own, "--index", "3"],
                   tmp_path / "ost3.log", tmp_path / "ost3.port").start()
        from lustrepy.ctl import query
        wait_for(lambda: query.fs_status(mds.address).active_indexes() == {3}, what="OST 3 active")
        from lustrepy.ctl.main import main
        assert main(["get-param", "--mgs", mds.address, "mds.fsname", "mds.callback_timeout",
                     "mds.wbc.contention_window", "mds.log.mds.wbc", "ost.3.*_interval", "ost.3.callback_timeout",
                     "ost.3.dir"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines() == ["mds.callback_timeout=13", "mds.fsname=cfgfs", "mds.log.mds.wbc=DEBUG",
                                    "mds.wbc.contention_window=6", "ost.3.callback_timeout=4",
                                    "ost.3.commit_interval=2", f"ost.3.dir={tmp_path / 'ost3'}", "ost.3.heartbeat_interval=0.3",
                                    "ost.3.scrub_interval=3600"]
    finally:
        for p in (oss, mds):
            if p is not None:
                p.stop()


def test_daemon_logs_are_one_line_per_event_and_levels_per_subsystem(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from lustrepy.common import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("lustrepy.mds.wbc").level)
    try:
        logs.setup("INFO", {"mds.wbc": "DEBUG"}, prog="lustrepy-test")
        assert logs.get_level("mds.wbc") == "DEBUG" and logs.get_level("ldlm") == "NOTSET"
        logging.getLogger("lustrepy.mds.wbc").debug("grant on %s to %s", "[0x200000400:0x1:0x0]", "client-1")
        logging.getLogger("lustrepy.ldlm").debug("not shown")
        try:
            raise ValueError("two\nlines")
        except ValueError:
            logging.getLogger("lustrepy.mds").exception("replay of a record from %s failed", "client-2")
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 2, lines
        assert "DEBUG lustrepy.mds.wbc: grant on [0x200000400:0x1:0x0] to client-1" in lines[0]
        assert "replay of a record from client-2 failed | Traceback" in lines[1] and "two | lines" in lines[1]
        logs.set_level("mds.wbc", "NOTSET")
        assert logs.get_level("mds.wbc") == "NOTSET"
    finally:
        root.handlers[:], level, wbc = saved
        root.setLevel(level)
        logging.getLogger("lustrepy.mds.wbc").setLevel(wbc)
