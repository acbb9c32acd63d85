"""A local cluster's certificates: its CA and one certificate per server, the mount and lfsctl.

`lfsctl cluster up` makes them under DIR/certs on first start (and a
certificate for each OST added later; every MDS, MDT0's and MDT1..'s, uses
the one `mds` certificate), passes their paths to every server
and to the mount, and lfsctl finds DIR/certs/admin.crt by itself. A cluster
started with --plaintext has none.
"""

from __future__ import annotations

import os
from pathlib import Path

from lustrepy.common import certs
from lustrepy.ctl.clusterfile import ClusterRecord, ServerRecord
from lustrepy.rpc import tls

ADMIN = "admin"
CLIENT = "client"


def certs_dir(root: str) -> Path:
    return Path(root) / "certs"


def site_ca() -> Path | None:
    """A CA given in $LUSTREPY_CERTS (its ca.key there): the cluster's certificates are signed by it."""
    env = os.environ.get(tls.ENV_CERTS)
    if env and (Path(env) / "ca.key").is_file() and (Path(env) / "ca.crt").is_file():
        return Path(env)
    return None


def ensure(rec: ClusterRecord) -> None:
    """The CA and every certificate this cluster needs, made where missing: signed by the CA of
    $LUSTREPY_CERTS when it holds one, else by the cluster's own in DIR/certs."""
    if rec.options.plaintext:
        return
    d = certs_dir(rec.root)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    ca = site_ca()
    if ca is None:
        ca = d
        if not (d / "ca.crt").exists():
            certs.init_ca(d, rec.fsname)
    wanted = [("mds", "mds"), ("admin", ADMIN), ("client", CLIENT)]
    wanted += [("oss", o.name) for o in rec.osts]
    for role, name in wanted:
        if not certs.Paths.in_dir(d, name).exist():
            certs.issue(ca, role, name, hosts=[rec.options.host, "localhost"], force=True, out=d)


def cert_name(server: ServerRecord) -> str:
    """The certificate a server uses: `mds` for every MDS, its own name for an OSS."""
    return "mds" if server.role == "mds" else server.name


def server_args(rec: ClusterRecord, server: ServerRecord) -> tuple[str, ...]:
    """A server's TLS options on its command line."""
    if rec.options.plaintext:
        return ("--plaintext",)
    p = certs.Paths.in_dir(certs_dir(rec.root), cert_name(server))
    return ("--ca", str(p.ca), "--cert", str(p.cert), "--key", str(p.key))


def mount_opts(rec: ClusterRecord, opts: str) -> str:
    """The mount's options with the cluster's client certificate (unless they name one)."""
    given = {o.partition("=")[0] for o in opts.split(",") if o}
    if given & {"ca", "cert", "key", "plaintext"}:
        return opts
    if rec.options.plaintext:
        extra = "plaintext"
    else:
        p = certs.Paths.in_dir(certs_dir(rec.root), CLIENT)
        extra = f"ca={p.ca},cert={p.cert},key={p.key}"
    return f"{opts},{extra}" if opts else extra


def use_admin(rec: ClusterRecord) -> None:
    """From now on this process speaks to the cluster as its admin."""
    if rec.options.plaintext:
        tls.use(None)
    else:
        tls.use(tls.Identity.load(certs.Paths.in_dir(certs_dir(rec.root), ADMIN)))
