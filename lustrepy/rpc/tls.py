"""A process's TLS identity: the cluster CA it trusts and the certificate it presents.

Every daemon, mount and lfsctl holds one identity for the whole process
(`use()`), which rpc.channel applies to every gRPC channel and server and
rpc.lane to every lane connection: mutual TLS, each end checking the other's
certificate against the cluster CA, and a client checking that the server it
reached holds a server certificate of the role it wanted (mds.lustrepy,
oss.lustrepy or server.lustrepy, whatever address it dialled). Without an
identity a process speaks plaintext, which servers accept only as an explicit
option and on loopback addresses.

The options every program takes (servers in their TOML file, the mount as
options, lfsctl as flags or found by itself): ca, cert, key and plaintext.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lustrepy.common import certs
from lustrepy.common.errors import LpError, QuietError
from lustrepy.common.params import ParamSpec

if TYPE_CHECKING:
    import grpc

OPTIONS = (
    ParamSpec("ca", "str", None, "the cluster CA's certificate (PEM) to trust", settable=False, tunable=False),
    ParamSpec("cert", "str", None, "this server's certificate (PEM), issued by the cluster CA",
              settable=False, tunable=False),
    ParamSpec("key", "str", None, "the key of that certificate (PEM)", settable=False, tunable=False),
    ParamSpec("plaintext", "bool", False, "serve without TLS (loopback addresses only; for development)",
              settable=False, tunable=False),
)


@dataclass(frozen=True)
class Identity:
    """A CA to trust and a certificate with its key, read once; builds the credentials of both stacks."""

    paths: certs.Paths
    ca: bytes
    cert: bytes
    key: bytes
    subject: certs.Subject
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, paths: certs.Paths) -> Identity:
        blobs = []
        for what, p in (("CA certificate", paths.ca), ("certificate", paths.cert), ("key", paths.key)):
            try:
                blobs.append(Path(p).read_bytes())
            except OSError as e:
                raise LpError(e.errno or errno.EIO, f"cannot read the {what} {p}: {e.strerror}") from None
        subject = certs.subject_of(blobs[1])
        return cls(paths, blobs[0], blobs[1], blobs[2], subject)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        import grpc     # here, not at import: the mount program reads its identity before it forks
        if "chan" not in self._cache:
            self._cache["chan"] = grpc.ssl_channel_credentials(self.ca, self.key, self.cert)
        return self._cache["chan"]  # type: ignore[no-any-return]

    def server_credentials(self) -> grpc.ServerCredentials:
        import grpc
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=True)

    def ssl_context(self, server_side: bool) -> ssl.SSLContext:
        """Python ssl's context for lane sockets, made once per side."""
        k = "srv" if server_side else "cli"
        if k not in self._cache:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_cert_chain(str(self.paths.cert), str(self.paths.key))
            ctx.load_verify_locations(cadata=self.ca.decode())
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._cache[k] = ctx
        return self._cache[k]  # type: ignore[no-any-return]


_mu = threading.Lock()
_current: Identity | None = None


def use(identity: Identity | None) -> None:
    """This process's identity from now on (None: plaintext)."""
    global _current
    with _mu:
        _current = identity


def current() -> Identity | None:
    return _current


def from_values(values: Mapping[str, Any], role: str) -> Identity | None:
    """The identity a server's settings name, or None with plaintext = true; without either,
    ROLE.crt in $LUSTREPY_CERTS or /etc/lustrepy/certs. A one-line LpError when there is none,
    or half of one."""
    given = [values.get(k) for k in ("ca", "cert", "key")]
    if any(given) or values.get("plaintext"):
        ca, cert, key = (str(g) if g else None for g in given)
        return explicit(ca, cert, key, bool(values.get("plaintext")), "configuration")
    found = search(role, [os.environ.get(ENV_CERTS), ETC_CERTS])
    if found is None:
        raise LpError(errno.EINVAL, f"no certificate: set ca, cert and key (lfsctl ca issue --role {role}), put "
                                    f"{role}.crt and {role}.key beside ca.crt in {ETC_CERTS}, "
                                    "or plaintext = true for loopback development")
    return Identity.load(found)


def loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_plaintext_host(host: str) -> None:
    """Plaintext serves loopback only: a one-line refusal for any other address."""
    if _current is None and not loopback(host):
        raise LpError(errno.EACCES, f"plaintext is for loopback only: cannot serve on {host} without TLS "
                                    "(give ca, cert and key)")


def arguments(ap: argparse.ArgumentParser) -> None:
    """A server's --ca, --cert, --key and --plaintext (over its configuration file's)."""
    ap.add_argument("--ca", metavar="FILE", help="the cluster CA's certificate (PEM)")
    ap.add_argument("--cert", metavar="FILE", help="this server's certificate (lfsctl ca issue)")
    ap.add_argument("--key", metavar="FILE", help="the key of that certificate")
    ap.add_argument("--plaintext", action="store_true", default=None,
                    help="no TLS: for development on loopback addresses only")


def use_values(values: Mapping[str, Any], role: str) -> None:
    """Take a server's identity from its settings (a plaintext one only on a loopback listen
    address), or end with one line."""
    try:
        use(from_values(values, role))
        if values.get("listen"):
            check_plaintext_host(str(values["listen"]).rsplit(":", 1)[0].strip("[]"))
    except LpError as e:
        raise QuietError(e.message) from None


ENV_CERTS = "LUSTREPY_CERTS"
ETC_CERTS = "/etc/lustrepy/certs"


def _trusted(d: Path) -> bool:
    """A directory to take certificates from unasked: ours, and no one else may write it."""
    try:
        st = d.stat()
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def search(name: str, dirs: list[str | None]) -> certs.Paths | None:
    """The first of dirs (None and missing ones skipped) holding ca.crt, NAME.crt and NAME.key,
    and owned by this user with no one else allowed to write it."""
    for d in dirs:
        if not d:
            continue
        p = certs.Paths.in_dir(d, name)
        if p.exist() and _trusted(Path(d)):
            return p
    return None


def explicit(ca: str | None, cert: str | None, key: str | None, plaintext: bool, what: str) -> Identity | None:
    """The identity of given paths (all three, or plaintext, or nothing: then LpError ENOENT is
    for the caller to search instead)."""
    if plaintext:
        if ca or cert or key:
            raise LpError(errno.EINVAL, f"{what}: plaintext with ca/cert/key: choose one")
        return None
    if not (ca and cert and key):
        raise LpError(errno.EINVAL, f"{what}: give all of ca, cert and key")
    return Identity.load(certs.Paths(Path(ca), Path(cert), Path(key)))
