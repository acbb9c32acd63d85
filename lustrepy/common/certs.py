"""The cluster's certificate authority: its key and certificate, and the certificates it issues.

One CA per file system signs a certificate for every node. A certificate's
subject names the node (CN) and its role (OU: mds, oss, client or admin);
servers' certificates also carry the DNS name `<role>.lustrepy` and
`server.lustrepy`, which is what a peer checks a server against (the address
it dialled may be any host or IP), plus any host names and addresses asked
for. Keys are ECDSA P-256 (the cheapest handshake both gRPC and Python's ssl
offer). Files in a CA directory: ca.crt, ca.key, and NAME.crt, NAME.key per
node; keys are written 0600, never over an existing file unless asked.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lustrepy.common.errors import LpError

ROLES = ("mds", "oss", "client", "admin")
SERVER_ROLES = ("mds", "oss")
SERVER_NAME = "server.lustrepy"          # every server's certificate carries it
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CA_DAYS = 3650
CERT_DAYS = 825


def role_name(role: str) -> str:
    """The DNS name a server of this role is checked against: mds.lustrepy, oss.lustrepy."""
    return f"{role}.lustrepy"


@dataclass(frozen=True, slots=True)
class Paths:
    """Where one node's trust and identity live: the CA certificate, its certificate and key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, d: str | Path, name: str) -> Paths:
        d = Path(d)
        return cls(d / "ca.crt", d / f"{name}.crt", d / f"{name}.key")

    def exist(self) -> bool:
        return self.ca.is_file() and self.cert.is_file() and self.key.is_file()


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a certificate says its holder is."""

    role: str
    name: str


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise LpError(errno.EINVAL, f"bad certificate name {name!r}: letters, digits, '.', '_', '-', at most 64")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise LpError(errno.EINVAL, f"bad role {role!r}: one of {', '.join(ROLES)}")
    return role


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise LpError(errno.EEXIST, f"{path} exists (remove it, or use --force)") from None
    except OSError as e:
        raise LpError(e.errno or errno.EIO, f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def init_ca(d: str | Path, name: str = "lustrepy", force: bool = False) -> Path:
    """Make DIR/ca.key and DIR/ca.crt; returns the certificate's path."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lustrepy"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{check_name(name)} CA")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(d / "ca.key", _key_pem(key), 0o600, force)
    _write(d / "ca.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644, force)
    return d / "ca.crt"


def _load_ca(d: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), password=None)
    except FileNotFoundError as e:
        raise LpError(errno.ENOENT, f"no CA in {d}: {e.filename} is missing (lfsctl ca init {d})") from None
    except ValueError as e:
        raise LpError(errno.EINVAL, f"the CA in {d} is damaged: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LpError(errno.EINVAL, f"the CA key in {d} is not an EC key")
    return cert, key


def _alt_names(role: str, hosts: list[str], serve: bool) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    if role in SERVER_ROLES:
        names += [x509.DNSName(role_name(role)), x509.DNSName(SERVER_NAME)]
    elif serve:
        names += [x509.DNSName(role_name(r)) for r in SERVER_ROLES] + [x509.DNSName(SERVER_NAME)]
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def issue(d: str | Path, role: str, name: str, hosts: list[str] | None = None, days: int = CERT_DAYS,
          force: bool = False, out: str | Path | None = None, serve: bool = False) -> Paths:
    """Sign a certificate for (role, name) with the CA in DIR: NAME.crt and NAME.key in `out`
    (default DIR, beside ca.crt). With `serve`, a client or admin certificate is also good for
    serving (a process that runs servers in itself, such as a test)."""
    d = Path(d)
    check_role(role)
    check_name(name)
    if name == "ca":
        raise LpError(errno.EINVAL, "'ca' names the CA's own files")
    if not 1 <= days <= 36500:
        raise LpError(errno.EINVAL, f"bad validity {days} days: 1 to 36500")
    ca_cert, ca_key = _load_ca(d)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lustrepy"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role in SERVER_ROLES or serve:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    now = _now()
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    alt = _alt_names(role, hosts or [], serve)
    if alt:
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    p = Paths.in_dir(out or d, name)
    if out is not None and Path(out) != d:
        Path(out).mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(p.ca, (d / "ca.crt").read_bytes(), 0o644, True)
    _write(p.key, _key_pem(key), 0o600, force)
    _write(p.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, force)
    return p


def subject_of(pem: bytes) -> Subject:
    """The role and name a PEM certificate states; LpError EACCES when it states no known role."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise LpError(errno.EACCES, "unreadable peer certificate") from None
    return subject_of_cert(cert)


def subject_of_cert(cert: x509.Certificate) -> Subject:
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    role = str(ou[0].value) if ou else ""
    name = str(cn[0].value) if cn else ""
    if role not in ROLES or not name:
        raise LpError(errno.EACCES, f"certificate of {name or '?'} states no lustrepy role")
    return Subject(role, name)


def describe(path: str | Path) -> dict[str, str]:
    """What a certificate file says: role, name, validity, issuer (for lfsctl ca show)."""
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    out = {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
           "not_after": cert.not_valid_after_utc.isoformat(), "serial": f"{cert.serial_number:x}"}
    try:
        s = subject_of_cert(cert)
        out |= {"role": s.role, "name": s.name}
    except LpError:
        out |= {"role": "ca" if cert.issuer == cert.subject else "", "name": ""}
    return out
