"""The PLC interface's IPv6 link-local address, once it is really usable.

SDP and the V2G TCP/TLS servers must live on the PLC interface only (EVerest PRs #763, #615:
multi-connector chargers broke when SDP listened on every interface), and a freshly brought
up interface has a *tentative* fe80:: address until duplicate address detection (DAD) ends:
binding to it fails with EADDRNOTAVAIL. So: check the interface exists, wait until it has a
non-tentative link-local address, and use its scope id for every bind.

The address table is read from ``/proc/thread-self/net/if_inet6`` so that it reflects the
network namespace of the *calling thread* (tests run each side in its own namespace).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path

IF_INET6 = Path("/proc/thread-self/net/if_inet6")
IFA_F_OPTIMISTIC = 0x04
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40


class InterfaceError(OSError):
    """The PLC interface is unusable for V2G (missing, no address, DAD failed)."""


@dataclass(frozen=True, slots=True)
class LinkLocalAddress:
    interface: str
    scope_id: int  # the interface index
    address: str  # compressed text form, without "%scope"

    def sockaddr(self, port: int) -> tuple[str, int, int, int]:
        """The 4-tuple for ``bind``/``connect`` of an AF_INET6 socket."""
        return (self.address, port, 0, self.scope_id)

    @property
    def packed(self) -> bytes:
        return ipaddress.IPv6Address(self.address).packed


def _addresses(interface: str) -> list[tuple[str, int]]:
    """(address, flags) of every fe80::/10 address on ``interface``."""
    found = []
    try:
        lines = IF_INET6.read_text().splitlines()
    except FileNotFoundError:  # IPv6 disabled in the kernel
        return found
    for line in lines:
        fields = line.split()
        if len(fields) != 6 or fields[5] != interface:
            continue
        address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        if address.is_link_local:
            found.append((str(address), int(fields[4], 16)))
    return found


def read_link_local(interface: str) -> LinkLocalAddress | None:
    """The usable link-local address now, or None while DAD is still running.

    Raises ``InterfaceError`` when the interface does not exist or DAD failed.
    """
    try:
        index = socket.if_nametoindex(interface)
    except OSError as exc:
        raise InterfaceError(f"network interface {interface!r} does not exist") from exc
    addresses = _addresses(interface)
    for address, flags in addresses:
        if not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            return LinkLocalAddress(interface, index, address)
    if addresses and all(flags & IFA_F_DADFAILED for _, flags in addresses):
        raise InterfaceError(f"duplicate address detection failed on {interface!r}")
    return None


async def wait_for_link_local(interface: str, timeout: float = 5.0,
                              poll_interval: float = 0.05) -> LinkLocalAddress:
    """Wait (DAD takes ~1-2 s after link-up) for a usable link-local address."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_link_local(interface)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise InterfaceError(f"no usable (non-tentative) fe80:: address on {interface!r} "
                                 f"after {timeout:.1f} s; is the link up?")
        await asyncio.sleep(poll_interval)
