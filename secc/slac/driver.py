"""asyncio driver: the EVSE SLAC state machine on a real PLC interface.

One raw AF_PACKET socket on the interface carries every HomePlug frame (EtherType 0x88E1)
to :class:`~secc.slac.evse.EvseSlac` and its :class:`~secc.slac.evse.SendFrame` actions back
to the wire; one asyncio timer handle follows the machine's ``next_deadline()``. All other
actions (PWM, pilot state, match results) go to the owner's ``on_action`` callback and to
:meth:`SlacDriver.wait_for`.

The socket listens to every EtherType with a kernel BPF filter that keeps only 0x88E1: that
way it also hears frames that a co-located process (a simulated modem, a bridge) transmits
on the same interface, which a protocol-bound socket would miss. Our own transmissions are
dropped by source MAC.

Interface facts come from the kernel's interface ioctls and /proc (no netlink library: that
alone was 8 MB of the daemon's RSS, issue 13): it must exist; a down interface is brought up;
its MAC, MTU and carrier (IFF_RUNNING) are read, and :meth:`SlacDriver.link_local` waits for a
non-tentative fe80:: address (SDP/V2G must bind to it, FIELD_NOTES "Transport"). Carrier
loss is reported to the machine as modem link loss (debounced there).
"""

from __future__ import annotations

import asyncio
import os
import contextlib
import ctypes
import fcntl
import ipaddress
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from secc.common.logs import layer_logger
from secc.slac import messages as m
from secc.slac.config import SlacConfig
from secc.slac.evse import Action, EvseSlac, SendFrame

log = layer_logger("slac")

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
IFA_F_TENTATIVE = 0x40
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCGIFMTU, SIOCGIFHWADDR = 0x8913, 0x8914, 0x8921, 0x8927
IFF_UP, IFF_RUNNING = 0x1, 0x40
MIN_IPV6_MTU = 1280


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


# ldh [12]; jeq #0x88e1 ? accept : drop  -- the kernel hands us HomePlug frames only
_HOMEPLUG_BPF = [(0x28, 0, 0, 12), (0x15, 0, 1, m.ETH_P_HOMEPLUG),
                 (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0)]


def attach_homeplug_filter(sock: socket.socket) -> None:
    program = (_SockFilter * len(_HOMEPLUG_BPF))(*[_SockFilter(*ins) for ins in _HOMEPLUG_BPF])
    fprog = _SockFprog(len(_HOMEPLUG_BPF), program)
    # the kernel copies the program during setsockopt: no need to keep it alive
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))  # type: ignore[arg-type]


def open_homeplug_socket(iface: str) -> socket.socket:
    """Raw socket on ``iface`` that receives every HomePlug frame, in or out."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        attach_homeplug_filter(sock)
        sock.bind((iface, ETH_P_ALL))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class InterfaceInfo:
    name: str
    index: int
    mac: bytes
    mtu: int
    up: bool
    carrier: bool


class InterfaceError(RuntimeError):
    """The PLC interface is missing or unusable (the message says how to fix it)."""


def _ifreq(sock: socket.socket, request: int, iface: str, data: bytes = b"") -> bytes:
    """One ``struct ifreq`` ioctl on ``iface``; returns the 24-byte union part."""
    ifr = struct.pack("16s24s", iface.encode(), data)
    return fcntl.ioctl(sock.fileno(), request, ifr)[16:]


def interface_info(iface: str, bring_up: bool = True) -> InterfaceInfo:
    """Facts of ``iface`` in the calling thread's network namespace."""
    try:
        index = socket.if_nametoindex(iface)
    except OSError:
        raise InterfaceError(f"PLC interface {iface!r} does not exist") from None
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        flags = struct.unpack_from("H", _ifreq(sock, SIOCGIFFLAGS, iface))[0]
        if bring_up and not flags & IFF_UP:
            log.info("PLC interface is down: bringing it up", extra={"iface": iface})
            _ifreq(sock, SIOCSIFFLAGS, iface, struct.pack("H", flags | IFF_UP))
            flags = struct.unpack_from("H", _ifreq(sock, SIOCGIFFLAGS, iface))[0]
        mac = _ifreq(sock, SIOCGIFHWADDR, iface)[2:8]   # sockaddr: family, then the address
        mtu = struct.unpack_from("i", _ifreq(sock, SIOCGIFMTU, iface))[0]
    return InterfaceInfo(name=iface, index=index, mac=bytes(mac), mtu=mtu,
                         up=bool(flags & IFF_UP), carrier=bool(flags & IFF_RUNNING))


def find_link_local(index: int) -> str | None:
    """The interface's non-tentative fe80:: address, if it has one yet (the calling thread's
    namespace: /proc/thread-self/net)."""
    with open("/proc/thread-self/net/if_inet6") as table:
        for line in table:
            fields = line.split()
            if len(fields) < 6 or int(fields[1], 16) != index:
                continue
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            if address.is_link_local and not int(fields[4], 16) & IFA_F_TENTATIVE:
                return str(address)
    return None


class SlacDriver:
    """Runs :class:`EvseSlac` on interface ``iface``. Use ``async with``."""

    def __init__(self, iface: str, config: SlacConfig | None = None,
                 on_action: Callable[[Action], None] | None = None,
                 carrier_poll_interval: float = 1.0) -> None:
        self.iface = iface
        self.config = config or SlacConfig()
        self.on_action = on_action
        self.carrier_poll_interval = carrier_poll_interval
        self.info: InterfaceInfo | None = None
        self.machine: EvseSlac | None = None
        self.frames_in = 0
        self.frames_out = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._events: asyncio.Queue[Action] = asyncio.Queue()
        self._vendor_waiters: dict[int, asyncio.Future[m.Mme]] = {}
        self._carrier_task: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> SlacDriver:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.info = await asyncio.to_thread(interface_info, self.iface)
        if self.info.mtu < MIN_IPV6_MTU:
            log.warning("PLC interface MTU below the IPv6 minimum", extra={
                "iface": self.iface, "mtu": self.info.mtu})
        self.machine = EvseSlac(self.config, self.info.mac)
        self._sock = open_homeplug_socket(self.iface)
        self._loop.add_reader(self._sock.fileno(), self._on_readable)
        self._carrier_task = asyncio.create_task(self._watch_carrier())
        log.info("SLAC driver ready", extra={
            "iface": self.iface, "mac": m.mac_str(self.info.mac), "mtu": self.info.mtu,
            "carrier": self.info.carrier})

    async def close(self) -> None:
        if self._carrier_task is not None:
            self._carrier_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._carrier_task
        if self._timer is not None:
            self._timer.cancel()
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    # --- owner events -------------------------------------------------------------------------
    def pilot_state_b(self) -> None:
        self._apply(self._machine().pilot_state_b(self._now()))

    def pilot_unplugged(self) -> None:
        self._apply(self._machine().pilot_unplugged(self._now()))

    def modem_link(self, up: bool) -> None:
        self._apply(self._machine().modem_link(up, self._now()))

    async def wait_for(self, *kinds: type, timeout: float) -> Action:
        """The next action of one of ``kinds`` (e.g. MatchSucceeded, MatchFailed)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {'/'.join(k.__name__ for k in kinds)} within {timeout} s")
            action = await asyncio.wait_for(self._events.get(), remaining)
            if isinstance(action, kinds):
                return action

    async def link_local(self, timeout: float = 5.0) -> str:
        """The interface's usable fe80:: address (waits for duplicate address detection)."""
        assert self.info is not None
        deadline = time.monotonic() + timeout
        while True:
            addr = await asyncio.to_thread(find_link_local, self.info.index)
            if addr:
                return addr
            if time.monotonic() > deadline:
                raise InterfaceError(f"{self.iface} has no usable IPv6 link-local address")
            await asyncio.sleep(0.05)

    # --- vendor diagnostics (outside the SLAC state machine) ---------------------------------
    async def vendor_request(self, mmtype: int, timeout: float = 1.0) -> m.Mme:
        """Send a Qualcomm VS_*.REQ to the local modem and return its CNF."""
        assert self.info is not None
        return await self._confirmed(
            m.vs_request(mmtype, self.config.modem_mac_bytes, self.info.mac), timeout)

    async def set_key_probe(self, timeout: float = 1.0) -> m.Mme:
        """One CM_SET_KEY.REQ with a fresh random NMK (what every new SLAC session does) and
        the modem's CNF, whatever its result: for ``secc doctor``, outside the state machine.
        Never while a car is matched: the modem leaves the car's network."""
        assert self.info is not None
        nmk = os.urandom(16)
        return await self._confirmed(
            m.set_key_req(self.config.modem_mac_bytes, self.info.mac, nmk, m.nid_from_nmk(nmk),
                          int.from_bytes(os.urandom(4), "little")), timeout)

    async def _confirmed(self, request: m.Mme, timeout: float) -> m.Mme:
        assert self._loop is not None
        cnf_type = request.mmtype | m.MODE_CNF
        future: asyncio.Future[m.Mme] = self._loop.create_future()
        self._vendor_waiters[cnf_type] = future
        self._send(m.encode(request), m.mmtype_name(request.mmtype))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._vendor_waiters.pop(cnf_type, None)

    async def modem_firmware(self, timeout: float = 1.0) -> tuple[str, str]:
        """(chip, firmware version) of the local modem; warns when it cannot do EVSE SLAC."""
        cnf = await self.vendor_request(m.VS_SW_VER_REQ, timeout)
        chip = m.DEVICE_CLASSES.get(cnf.device_class, f"class 0x{cnf.device_class:02X}")
        version = m.sw_version_text(cnf.body)
        if cnf.device_class not in m.EVSE_CAPABLE_DEVICE_CLASSES or "7420" in version:
            log.warning("modem is not a QCA7000/7005: it will not report attenuation "
                        "profiles, SLAC will run without them", extra={"chip": chip,
                                                                       "firmware": version})
        return chip, version

    # --- internals ----------------------------------------------------------------------------
    def _machine(self) -> EvseSlac:
        if self.machine is None:
            raise RuntimeError("SlacDriver.open() first")
        return self.machine

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_readable(self) -> None:
        assert self._sock is not None and self.info is not None
        for _ in range(64):  # drain, but let other tasks run under a flood
            try:
                frame, address = self._sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("PLC socket receive failed", extra={"error": str(exc)})
                return
            if address[2] == PACKET_OUTGOING and frame[6:12] == self.info.mac:
                continue  # our own transmission
            self.frames_in += 1
            self._dispatch_vendor(frame)
            self._apply(self._machine().receive_frame(frame, self._now()))

    def _dispatch_vendor(self, frame: bytes) -> None:
        if not self._vendor_waiters or len(frame) < 17:
            return
        (mmtype,) = struct.unpack_from("<H", frame, 15)
        future = self._vendor_waiters.get(mmtype)
        if future is None or future.done():
            return
        try:
            future.set_result(m.decode(frame))
        except m.MmeError as exc:
            log.info("malformed vendor confirmation", extra={"reason": str(exc)})

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendFrame):
                self._send(action.frame, action.name)
                continue
            self._events.put_nowait(action)
            if self.on_action is not None:
                self.on_action(action)
        self._rearm()

    def _send(self, frame: bytes, name: str) -> None:
        if self._sock is None:  # closed: late actions are dropped
            log.debug("driver closed: frame not sent", extra={"mme": name})
            return
        try:
            self._sock.send(frame)
            self.frames_out += 1
        except OSError as exc:  # ENETDOWN, ENOBUFS: the machine's timers recover
            log.warning("PLC socket send failed", extra={"mme": name, "error": str(exc)})

    def _rearm(self) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sock is None:
            return
        deadline = self._machine().next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._apply(self._machine().handle_timer(self._now()))

    async def _watch_carrier(self) -> None:
        assert self.info is not None
        carrier = self.info.carrier
        while True:
            await asyncio.sleep(self.carrier_poll_interval)
            try:
                info = await asyncio.to_thread(interface_info, self.iface, False)
            except Exception as exc:  # interface vanished (modem driver unloaded)
                log.warning("PLC interface lookup failed", extra={"error": str(exc)})
                self.modem_link(False)
                continue
            if carrier and not info.carrier:
                log.warning("PLC interface lost carrier (modem gone?)", extra={
                    "iface": self.iface})
                self.modem_link(False)
            carrier = info.carrier
            self.info = info  # carrier and MTU as now (secc doctor, the status line)
