"""A network namespace with nothing but a loopback interface, and the kernel's own count
of every attempt to leave it.

With no route out, a connect() or sendto() to any address beyond loopback fails at once
with ENETUNREACH, and the kernel counts each such failure in the namespace's IP
statistics (`OutNoRoutes` in /proc/net/snmp and /proc/net/snmp6; tcp_v4_connect,
udp_sendmsg and the IPv6 paths all bump it). No packet is made, so nothing reaches any
network, yet every attempt is seen: a TCP connect, a UDP datagram, and a DNS lookup,
since the namespace's resolv.conf names a non-loopback resolver (192.0.2.53, TEST-NET-1)
whatever the host uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any


def usable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "`ip` is missing (apt-get install iproute2)"
    return None


class Namespace:
    def __init__(self) -> None:
        self.name = f"assistd-t-{uuid.uuid4().hex[:8]}"
        self._etc = Path("/etc/netns") / self.name

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        # `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc/*.
        self._etc.mkdir(parents=True, exist_ok=True)
        (self._etc / "resolv.conf").write_text("nameserver 192.0.2.53\n")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        shutil.rmtree(self._etc, ignore_errors=True)

    def run(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """`cmd` inside the namespace (environment and files as the caller's)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 600)
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], **kwargs)

    def interfaces(self) -> list[str]:
        out = subprocess.run(
            ["ip", "-n", self.name, "-o", "link", "show"], capture_output=True, text=True
        ).stdout
        return [line.split(":")[1].strip() for line in out.splitlines() if line.strip()]

    def escape_attempts(self) -> dict[str, int]:
        """Attempts so far to reach anything beyond loopback, by IP version."""
        out = self.run(["cat", "/proc/net/snmp", "/proc/net/snmp6"], check=True).stdout
        counts = {"ipv4": 0, "ipv6": 0}
        lines = out.splitlines()
        for header, values in zip(lines, lines[1:], strict=False):
            if header.startswith("Ip: ") and values.startswith("Ip: ") and header != values:
                fields = dict(zip(header.split()[1:], values.split()[1:], strict=True))
                if "OutNoRoutes" in fields:
                    counts["ipv4"] = int(fields["OutNoRoutes"])
        for line in lines:
            if line.startswith("Ip6OutNoRoutes"):
                counts["ipv6"] = int(line.split()[1])
        return counts
