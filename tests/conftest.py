"""The whole suite's setting: tests see nothing of what else runs on the machine,
and every channel is mutual TLS under a CA of the session.

A developer may run a cluster with `scripts/up` (under /tmp/lustrepy, mounted on
/mnt/lustrepy) and have LUSTREPY_* variables set in the shell. Every test, and
every program a test starts (they inherit the environment), runs with
$LUSTREPY_ROOT naming an empty directory of the session (so `lfsctl` never finds
the developer's cluster: a set $LUSTREPY_ROOT is the only root it looks at) and
without the variables that would point commands elsewhere.

$LUSTREPY_CERTS names the session's CA directory (tests/support/pki.py); the
test process speaks as its admin.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lustrepy.rpc import tls
from tests.support.pki import make_ca

# what would point the programs under test at another MDS or at other binaries
_AMBIENT = ("LUSTREPY_MGS", "LUSTREPY_BINDIR", "LUSTREPY_CERTS")


@pytest.fixture(scope="session", autouse=True)
def no_ambient_lustrepy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in _AMBIENT:
            mp.delenv(name, raising=False)
        mp.setenv("LUSTREPY_ROOT", str(tmp_path_factory.mktemp("no-ambient-cluster")))
        ca = tmp_path_factory.mktemp("cluster-ca")
        admin = make_ca(ca)
        mp.setenv(tls.ENV_CERTS, str(ca))
        tls.use(tls.Identity.load(admin))
        try:
            yield
        finally:
            tls.use(None)
