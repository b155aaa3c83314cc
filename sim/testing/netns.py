"""A simulated PLC link: two network namespaces joined by a veth pair.

The EV side lives in one namespace, the SECC in the other; SLAC frames (EtherType 0x88E1)
and V2G over IPv6 link-local cross the veth exactly as they cross the modem's Ethernet side.
Interfaces and addresses are handled with pyroute2; duplicate address detection is off so
link-local addresses are usable at once. Needs root (CAP_NET_ADMIN).

Code runs "inside" a namespace in three ways:
* ``link.socket(side, ...)`` creates a socket in that namespace (it stays there after);
* ``link.run_coroutine(side, factory)`` runs an asyncio coroutine on a thread switched into
  that namespace, with its own event loop;
* ``link.popen(side, argv)`` starts a process there (``ip netns exec``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute, NetNS, netns

CLONE_NEWNET = 0x40000000
IFA_F_TENTATIVE = 0x40
AF_INET6 = socket.AF_INET6

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def inside_netns(name: str) -> Iterator[None]:
    """Switch the *calling thread* into namespace ``name`` for the block, then back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def _off_loop(fn: Callable[[], Any]) -> Any:
    """pyroute2's synchronous API cannot run inside a running asyncio loop; use a thread then."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def netns_supported() -> tuple[bool, str]:
    """Whether this process may create namespaces; the reason when not."""
    if os.geteuid() != 0:
        return False, "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"pysecc-probe-{secrets.token_hex(3)}"
    try:
        netns.create(probe)
        netns.remove(probe)
    except Exception as exc:  # pragma: no cover - depends on the host
        return False, f"cannot create a network namespace: {exc}"
    return True, ""


@dataclass
class VethLink:
    """Two namespaces ``ev`` and ``secc`` joined by a veth pair. Use as a context manager."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    mtu: int = 1500

    def __post_init__(self) -> None:
        self.namespaces = {"ev": f"pysecc-ev-{self.tag}", "secc": f"pysecc-secc-{self.tag}"}
        # interface names are at most 15 characters
        self.ifnames = {"ev": f"ev{self.tag}", "secc": f"se{self.tag}"}
        self._created: list[str] = []

    # --- set-up and tear-down -------------------------------------------------------------
    def create(self) -> "VethLink":
        try:
            for side in ("ev", "secc"):
                netns.create(self.namespaces[side])
                self._created.append(self.namespaces[side])
            with IPRoute() as ipr:
                ipr.link("add", ifname=self.ifnames["ev"], kind="veth",
                         peer={"ifname": self.ifnames["secc"],
                               "net_ns_fd": self.namespaces["secc"]})
                index = ipr.link_lookup(ifname=self.ifnames["ev"])[0]
                ipr.link("set", index=index, net_ns_fd=self.namespaces["ev"])
            for side in ("ev", "secc"):
                self._bring_up(side)
            for side in ("ev", "secc"):
                self.link_local(side)  # waits until usable
        except BaseException:
            self.destroy()
            raise
        return self

    def _bring_up(self, side: str) -> None:
        ifname = self.ifnames[side]
        with inside_netns(self.namespaces[side]):
            for path in (f"/proc/sys/net/ipv6/conf/{ifname}/accept_dad",
                         f"/proc/sys/net/ipv6/conf/{ifname}/dad_transmits"):
                with open(path, "w") as fh:
                    fh.write("0")
        with NetNS(self.namespaces[side]) as ns:
            for name in ("lo", ifname):
                index = ns.link_lookup(ifname=name)[0]
                ns.link("set", index=index, state="up", **({"mtu": self.mtu} if name == ifname else {}))

    def destroy(self) -> None:
        for name in self._created:
            with contextlib.suppress(Exception):
                netns.remove(name)  # removing a namespace deletes its veth end, and the peer
        self._created.clear()

    def __enter__(self) -> "VethLink":
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # --- facts about each side ------------------------------------------------------------
    def ifindex(self, side: str) -> int:
        def lookup() -> int:
            with NetNS(self.namespaces[side]) as ns:
                return ns.link_lookup(ifname=self.ifnames[side])[0]
        return _off_loop(lookup)

    def mac(self, side: str) -> bytes:
        def lookup() -> bytes:
            with NetNS(self.namespaces[side]) as ns:
                index = ns.link_lookup(ifname=self.ifnames[side])[0]
                link = ns.get_links(index)[0]
                return bytes.fromhex(link.get_attr("IFLA_ADDRESS").replace(":", ""))
        return _off_loop(lookup)

    def link_local(self, side: str, timeout: float = 5.0) -> str:
        """The side's fe80:: address once it is no longer tentative (usable from a loop too)."""
        return _off_loop(lambda: self._link_local(side, timeout))

    def _link_local(self, side: str, timeout: float) -> str:
        index = self.ifindex(side)
        deadline = time.monotonic() + timeout
        while True:
            with NetNS(self.namespaces[side]) as ns:
                for addr in ns.get_addr(family=AF_INET6, index=index):
                    value = addr.get_attr("IFA_ADDRESS")
                    flags = addr.get_attr("IFA_FLAGS") or addr["flags"]
                    if value.startswith("fe80:") and not flags & IFA_F_TENTATIVE:
                        return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"no usable link-local address on {self.ifnames[side]}")
            time.sleep(0.02)

    # --- running code inside ------------------------------------------------------------------
    def socket(self, side: str, family: int, type: int, proto: int = 0) -> socket.socket:
        with inside_netns(self.namespaces[side]):
            return socket.socket(family, type, proto)

    def popen(self, side: str, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.namespaces[side], *argv], **kwargs)

    def run_coroutine(self, side: str,
                      factory: Callable[[], Coroutine[Any, Any, Any]]) -> concurrent.futures.Future:
        """Run ``factory()`` on a new thread inside the namespace; returns its future."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def worker() -> None:
            try:
                with inside_netns(self.namespaces[side]):
                    result = asyncio.run(factory())
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=worker, name=f"netns-{side}", daemon=True).start()
        return future

    async def run_coroutine_async(self, side: str,
                                  factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return await asyncio.wrap_future(self.run_coroutine(side, factory))
