"""Separate hosts on one machine for multi-node tests: network namespaces on one switch.

A `Lan` is a "switch" namespace holding a bridge, and hosts: one namespace
each, joined to the bridge by a veth pair whose host end is `eth0` with its
own address in a private /24, and whose switch end is the host's port. Every
namespace and veth lives inside namespaces the Lan made: nothing is added to
the caller's network namespace and nothing reaches off the machine. A host's
link is cut by taking its switch port down (a pulled cable) and comes back
by bringing it up.

Programs run on a host through `nsenter --net=...`, which enters only the
network namespace: a FUSE mount made that way is visible to the caller, and
the program's pid is the one Popen returns (nsenter execs it). `Lan.close()`
kills what still runs in its namespaces, by pid, and deletes them; it is safe
to call more than once and after a failed build. Never touches a namespace
it did not make.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip() or r.returncode}")
    return r


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"no `{tool}` command"
    probe = f"lpnt{os.getpid()}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return f"cannot make a network namespace: {r.stderr.strip() or r.returncode}"
    try:
        r = subprocess.run(["ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return f"cannot make a veth pair: {r.stderr.strip() or r.returncode}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


@dataclass
class Host:
    """One namespace on the Lan: `name` (of the namespace), `addr` (its eth0 address), `port` (switch side)."""

    lan: "Lan"
    role: str
    name: str
    addr: str
    port: str

    @property
    def netns(self) -> str:
        return str(NETNS_DIR / self.name)

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run on this host (its network namespace only)."""
        return ["nsenter", f"--net={self.netns}", *argv]

    def run(self, argv: list[str], timeout: float = 60.0, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.wrap(argv), capture_output=True, text=True, timeout=timeout, **kw)

    def link(self, up: bool) -> None:
        """Plug (up) or pull (down) this host's cable at the switch."""
        _ip("-n", self.lan.switch, "link", "set", self.port, "up" if up else "down")


@dataclass
class Lan:
    """A switch namespace with a bridge, and hosts on 10.213.0.0/24 (by default) behind it."""

    subnet: str = "10.213.0"
    prefix: str = field(default_factory=lambda: f"lpnt{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def start(self) -> "Lan":
        self._add_netns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def add_host(self, role: str, octet: int) -> Host:
        """A new host `role` at SUBNET.octet, linked to the switch and up."""
        if role in self.hosts:
            raise ValueError(f"host {role} exists")
        name, port = f"{self.prefix}-{role}", f"p{octet}"
        addr = f"{self.subnet}.{octet}"
        self._add_netns(name)
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", name, "addr", "add", f"{addr}/24", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        host = Host(self, role, name, addr, port)
        self.hosts[role] = host
        return host

    def pids(self, name: str) -> list[int]:
        r = _ip("netns", "pids", name, check=False)
        return [int(p) for p in r.stdout.split() if p.isdigit()]

    def close(self) -> list[str]:
        """Kill what still runs in our namespaces (by pid) and delete them; returns what was left over."""
        leftovers: list[str] = []
        for name in reversed(self._made):
            for pid in self.pids(name):
                leftovers.append(f"pid {pid} in {name}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            r = _ip("netns", "del", name, check=False)
            if r.returncode != 0 and (NETNS_DIR / name).exists():
                leftovers.append(f"namespace {name}: {r.stderr.strip()}")
        self._made.clear()
        self.hosts.clear()
        return leftovers
