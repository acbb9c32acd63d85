"""A CA for a test run: the certificates the programs under test look for, and the run's own identity.

`$LUSTREPY_CERTS` names its directory: ca.crt and ca.key, mds.crt, oss.crt,
client.crt and admin.crt with their keys. Servers started without certificate
options take mds.crt or oss.crt from it, mounts client.crt, lfsctl admin.crt,
and `lfsctl cluster up` signs its cluster's certificates with its CA. The
process that made it speaks as that admin, whose certificate is also good for
serving (servers a test runs in itself).
"""

from __future__ import annotations

import os
from pathlib import Path

from lustrepy.common import certs
from lustrepy.rpc import tls


def make_ca(d: Path) -> certs.Paths:
    """A CA in d with the certificates the suite's programs look for; the admin's paths."""
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    d.chmod(0o700)
    certs.init_ca(d, "tests")
    for role in ("mds", "oss", "client"):
        certs.issue(d, role, role)
    return certs.issue(d, "admin", "admin", serve=True)


def use_ca(d: Path) -> None:
    """Make a CA in d, point $LUSTREPY_CERTS at it and speak as its admin from now on."""
    admin = make_ca(d)
    os.environ[tls.ENV_CERTS] = str(d)
    tls.use(tls.Identity.load(admin))
