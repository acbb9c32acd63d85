"""Server addresses with failover: 'HOST:PORT' or 'HOST1:PORT1,HOST2:PORT2,...'.

Lustre names a target's servers by failover NIDs: the same MDT can be served
from one host or another (its storage reaches both), and a client or an OSS
tries them in turn. Here an address list is parsed and checked once, and
turned into a gRPC target whose channel connects to the first address that
answers, and does so again after a connection breaks.
"""

from __future__ import annotations

import ipaddress
import socket

MAX_ADDRESSES = 8


def split_addresses(text: str) -> list[tuple[str, int]]:
    """'h1:p1,h2:p2' -> [(h1, p1), (h2, p2)] (IPv6 in brackets); ValueError saying what is wrong."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"expected HOST:PORT[,HOST:PORT...], got {text!r}")
    if len(parts) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} failover addresses, got {len(parts)}")
    out = []
    for p in parts:
        host, sep, port = p.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {p!r}")
        out.append((host.strip("[]"), int(port)))
    return out


def hosts(text: str) -> list[str]:
    """The hosts of an address list, in order (duplicates once)."""
    return list(dict.fromkeys(h for h, _ in split_addresses(text)))


def grpc_target(text: str) -> str:
    """The gRPC target for an address list: one address as it is (gRPC resolves its name);
    several as an `ipv4:`/`ipv6:` list of the addresses their names resolve to, which the
    channel tries in order. ValueError when a name does not resolve or the list mixes
    IPv4-only and IPv6-only hosts."""
    if "," not in text:
        return text.strip()
    addrs = split_addresses(text)
    v4: list[str] = []
    v6: list[str] = []
    for host, port in addrs:
        a4, a6 = _resolve(host)
        if a4:
            v4.append(f"{a4}:{port}")
        if a6:
            v6.append(f"[{a6}]:{port}")
    if len(v4) == len(addrs):
        return "ipv4:" + ",".join(v4)
    if len(v6) == len(addrs):
        return "ipv6:" + ",".join(v6)
    raise ValueError(f"{text!r}: failover addresses must all have IPv4 or all IPv6 addresses")


def _resolve(host: str) -> tuple[str | None, str | None]:
    """The first IPv4 and IPv6 address of a host name or literal."""
    try:
        ip = ipaddress.ip_address(host)
        return (str(ip), None) if ip.version == 4 else (None, str(ip))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(f"cannot resolve {host!r}: {e.strerror or e}") from None
    a4 = next((str(i[4][0]) for i in infos if i[0] == socket.AF_INET), None)
    a6 = next((str(i[4][0]) for i in infos if i[0] == socket.AF_INET6), None)
    return a4, a6
