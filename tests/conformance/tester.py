"""The EV-side tester of the conformance suite (ISO 15118-4 style, SECC under test).

Written for this suite alone: its own V2GTP framing, SDP client, message builders and
expectations. It uses the project's EXI codec (``exi_schemas``) to encode and decode, and
nothing of the SECC's session code, transport code or the EV simulator (``sim/evcc``), so a
defect there cannot hide itself. It runs inside the EV network namespace of a veth link and
talks to the real daemon; the car's electrical side (control pilot, its DC contactors) is set
through the simulated board's control socket (``hal/sim_control.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import exi_schemas
from exi_schemas.generated import appprotocol as AP
from exi_schemas.generated import din as DIN
from exi_schemas.generated import iso2 as ISO2

SDP_PORT = 15118
SDP_REQUEST, SDP_RESPONSE = 0x9000, 0x9001
EXI = 0x8001
EVCCID = bytes.fromhex("00018700001A")                # R4's EVCCID
NAMESPACES = {"din": "urn:din:70121:2012:MsgDef", "iso2": "urn:iso:15118:2:2013:MsgDef"}


#: extra seconds on every answer wait; 0 for the message-timing cases, raised by the long-timer
#: module, which runs dozens of daemons side by side on a small machine (it checks the 60 s
#: timers, not the message timing)
SLACK = 0.0


class Closed(Exception):
    """The SECC closed (EOF) or reset the connection."""


class Silence(Exception):
    """Nothing arrived within the wait."""


def v2gtp(payload_type: int, payload: bytes, *, version: int = 0x01, inverse: int | None = None,
          length: int | None = None) -> bytes:
    """A V2GTP frame; every header field can be broken on purpose."""
    inv = (version ^ 0xFF) if inverse is None else inverse
    return struct.pack(">BBHI", version, inv, payload_type,
                       len(payload) if length is None else length) + payload


# --------------------------------------------------------------------------- SDP
async def sdp_discover(interface: str, request: bytes | None = None, *, tries: int = 5,
                       wait: float = 0.5) -> bytes | None:
    """Send the SDP request (default: TCP, no TLS) to ff02::1 and return the first answer's
    payload (20 bytes), or None after ``tries`` waits of ``wait`` seconds."""
    scope = socket.if_nametoindex(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
    sock.bind(("::", 0, 0, scope))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    frame = request if request is not None else v2gtp(SDP_REQUEST, bytes([0x10, 0x00]))
    try:
        for _ in range(tries):
            await loop.sock_sendto(sock, frame, ("ff02::1", SDP_PORT, 0, scope))
            deadline = loop.time() + wait
            while loop.time() < deadline:
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        data = await loop.sock_recv(sock, 2048)
                except TimeoutError:
                    break
                if len(data) >= 8 and data[:4] == bytes([1, 0xFE]) + struct.pack(
                        ">H", SDP_RESPONSE):
                    return data
        return None
    finally:
        sock.close()


def parse_sdp_response(data: bytes) -> dict[str, Any]:
    version, inverse, ptype, length = struct.unpack(">BBHI", data[:8])
    body = data[8:]
    return {"version": version, "inverse": inverse, "type": ptype, "length": length,
            "address": socket.inet_ntop(socket.AF_INET6, body[:16]),
            "port": struct.unpack(">H", body[16:18])[0], "security": body[18],
            "transport": body[19]}


# --------------------------------------------------------------------------- the connection
class Connection:
    """One TCP connection to the SECC, framed by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, interface: str, address: str, port: int,
                   ssl_context: Any = None) -> "Connection":
        scope = socket.if_nametoindex(interface)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        async with asyncio.timeout(5):
            await asyncio.get_running_loop().sock_connect(sock, (address, port, 0, scope))
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=ssl_context,
                server_hostname="" if ssl_context is not None else None)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, timeout: float = 2.0) -> tuple[int, bytes]:
        """The next frame (payload type, payload); ``Silence`` or ``Closed`` otherwise."""
        try:
            async with asyncio.timeout(timeout):
                header = await self.reader.readexactly(8)
                _, _, ptype, length = struct.unpack(">BBHI", header)
                return ptype, await self.reader.readexactly(length)
        except TimeoutError:
            raise Silence(f"no frame within {timeout} s") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise Closed(repr(exc)) from None

    async def expect_close(self, within: float = 5.0) -> float:
        """Seconds until the SECC closed the connection (anything received meanwhile is
        ignored); AssertionError if it stays open."""
        start = time.monotonic()
        while True:
            left = within - (time.monotonic() - start)
            if left <= 0:
                raise AssertionError(f"connection still open after {within} s")
            try:
                await self.receive(timeout=left)
            except Closed:
                return time.monotonic() - start
            except Silence:
                continue

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


# --------------------------------------------------------------------------- messages
def body_type(mod: ModuleType, element: str) -> type:
    return next(f[4] for f in mod.FIELDS[mod.BodyType] if f[3] == element)


def body_field(mod: ModuleType, element: str) -> str:
    return next(f[0] for f in mod.FIELDS[mod.BodyType] if f[3] == element)


def pv(mod: ModuleType, value: float, unit: str, multiplier: int = 0) -> Any:
    return mod.PhysicalValueType(multiplier=multiplier, unit=unit, value=int(value))


def dc_ev_status(mod: ModuleType, soc: int = 30, error: str = "NO_ERROR") -> Any:
    return mod.DC_EVStatusType(ev_ready=True, ev_error_code=error, evresssoc=soc)


@dataclass
class Protocol:
    """What differs between DIN and ISO-2 DC / ISO-2 AC for the tester."""

    name: str                      # din | iso2-dc | iso2-ac
    mod: ModuleType
    schema: str
    namespace: str

    @property
    def din(self) -> bool:
        return self.name == "din"

    @property
    def ac(self) -> bool:
        return self.name == "iso2-ac"

    # names that differ
    @property
    def payment_selection(self) -> str:
        return "ServicePaymentSelectionReq" if self.din else "PaymentServiceSelectionReq"

    @property
    def authorization(self) -> str:
        return "ContractAuthenticationReq" if self.din else "AuthorizationReq"

    @property
    def mode(self) -> str:
        return "AC_three_phase_core" if self.ac else "DC_extended"


PROTOCOLS = {
    "din": Protocol("din", DIN, "din", NAMESPACES["din"]),
    "iso2-dc": Protocol("iso2-dc", ISO2, "iso2", NAMESPACES["iso2"]),
    "iso2-ac": Protocol("iso2-ac", ISO2, "iso2", NAMESPACES["iso2"]),
}


def default_request(p: Protocol, name: str, **over: Any) -> Any:
    """R4's GoodCase request ``name`` (EV limits 700 V / 110 A / 60.5 kW DC, 500 V / 32 A AC),
    with ``over`` replacing fields."""
    M = p.mod
    cls = body_type(M, name)
    fields: dict[str, Any] = {}
    if name == "SessionSetupReq":
        fields = {"evccid": EVCCID}
    elif name == "ServiceDiscoveryReq":
        fields = {}
    elif name == "ServiceDetailReq":
        fields = {"service_id": 1}
    elif name in ("ServicePaymentSelectionReq", "PaymentServiceSelectionReq"):
        fields = {"selected_payment_option": "ExternalPayment",
                  "selected_service_list": M.SelectedServiceListType(
                      selected_service=[M.SelectedServiceType(service_id=1)])}
    elif name == "ContractAuthenticationReq":
        fields = {}
    elif name == "AuthorizationReq":
        fields = {}
    elif name == "ChargeParameterDiscoveryReq":
        if p.ac:
            fields = {"requested_energy_transfer_mode": p.mode,
                      "ac_ev_charge_parameter": M.AC_EVChargeParameterType(
                          departure_time=50, e_amount=pv(M, 30, "Wh", 3),
                          ev_max_voltage=pv(M, 500, "V"), ev_max_current=pv(M, 32, "A"),
                          ev_min_current=pv(M, 1, "A"))}
        else:
            key = "ev_requested_energy_transfer_type" if p.din else "requested_energy_transfer_mode"
            fields = {key: p.mode, "dc_ev_charge_parameter": M.DC_EVChargeParameterType(
                dc_ev_status=dc_ev_status(M), ev_maximum_current_limit=pv(M, 110, "A"),
                ev_maximum_power_limit=pv(M, 605, "W", 2),
                ev_maximum_voltage_limit=pv(M, 700, "V"))}
    elif name == "CableCheckReq":
        fields = {"dc_ev_status": dc_ev_status(M)}
    elif name == "PreChargeReq":
        fields = {"dc_ev_status": dc_ev_status(M), "ev_target_voltage": pv(M, 400, "V"),
                  "ev_target_current": pv(M, 2, "A")}
    elif name == "PowerDeliveryReq":
        start = over.pop("start", True)
        if p.din:
            fields = {"ready_to_charge_state": start}
        else:
            fields = {"charge_progress": over.pop("progress", "Start" if start else "Stop"),
                      "sa_schedule_tuple_id": 1}
        if not p.ac:
            fields["dc_ev_power_delivery_parameter"] = M.DC_EVPowerDeliveryParameterType(
                dc_ev_status=dc_ev_status(M, error=over.pop("ev_error", "NO_ERROR")),
                charging_complete=not start)
    elif name == "CurrentDemandReq":
        fields = {"dc_ev_status": dc_ev_status(M), "ev_target_current": pv(M, 20, "A"),
                  "ev_target_voltage": pv(M, 440, "V"),
                  "ev_maximum_voltage_limit": pv(M, 700, "V"),
                  "ev_maximum_current_limit": pv(M, 110, "A"),
                  "ev_maximum_power_limit": pv(M, 605, "W", 2), "charging_complete": False}
    elif name == "ChargingStatusReq":
        fields = {}
    elif name == "WeldingDetectionReq":
        fields = {"dc_ev_status": dc_ev_status(M)}
    elif name == "SessionStopReq":
        fields = {} if p.din else {"charging_session": "Terminate"}
    elif name == "MeteringReceiptReq":
        fields = {"session_id": bytes(8), "meter_info": M.MeterInfoType(meter_id="X")}
    _special(p, name, fields, over)
    fields.update(over)
    return cls(**fields)


def _special(p: Protocol, name: str, fields: dict[str, Any], over: dict[str, Any]) -> None:
    """Case-table shorthands: ``mode``, ``max_current`` (the EV maximum current), ``profile_w``
    (one ChargingProfile entry of that power), ``departure_time``, a bare ServiceID for
    ``selected_service_list``."""
    M = p.mod
    if "mode" in over:
        key = "ev_requested_energy_transfer_type" if p.din else "requested_energy_transfer_mode"
        fields[key] = over.pop("mode")
    if "max_current" in over:
        amps = over.pop("max_current")
        if p.ac:
            fields["ac_ev_charge_parameter"].ev_max_current = pv(M, amps, "A")
        else:
            fields["dc_ev_charge_parameter"].ev_maximum_current_limit = pv(M, amps, "A")
    if "departure_time" in over:
        seconds = over.pop("departure_time")
        param = fields.get("ac_ev_charge_parameter") or fields.get("dc_ev_charge_parameter")
        param.departure_time = seconds
    if "profile_w" in over:
        watts = over.pop("profile_w")
        fields["charging_profile"] = M.ChargingProfileType(profile_entry=[M.ProfileEntryType(
            charging_profile_entry_start=0,
            charging_profile_entry_max_power=pv(M, watts // 10, "W", 1))])
    if isinstance(over.get("selected_service_list"), int):
        fields["selected_service_list"] = M.SelectedServiceListType(
            selected_service=[M.SelectedServiceType(service_id=over.pop("selected_service_list"))])


@dataclass
class Exchange:
    request: str
    response: str | None
    body: Any
    seconds: float
    at: float = field(default_factory=time.monotonic)   # when the answer arrived


@dataclass
class Ev:
    """The tester's car: one connection, the SessionID the SECC gave, a log of exchanges."""

    p: Protocol
    conn: Connection
    session_id: bytes = bytes(8)
    log: list[Exchange] = field(default_factory=list)

    async def handshake(self, offers: list[tuple[str, int, int, int]] | None = None) -> Any:
        """SupportedAppProtocolReq: (namespace, major, minor, priority) per entry."""
        offers = offers or [(self.p.namespace, 2, 0, 1)]
        req = AP.supportedAppProtocolReq(app_protocol=[
            AP.AppProtocolType(protocol_namespace=ns, version_number_major=major,
                               version_number_minor=minor, schema_id=i + 1, priority=prio)
            for i, (ns, major, minor, prio) in enumerate(offers)])
        await self.conn.send_raw(v2gtp(EXI, exi_schemas.encode(req)))
        _, payload = await self.conn.receive(2.0 + SLACK)
        return exi_schemas.decode(payload, "appprotocol")

    def encode(self, name: str, body: Any, session_id: bytes | None = None) -> bytes:
        M = self.p.mod
        sid = self.session_id if session_id is None else session_id
        msg = M.V2G_Message(header=M.MessageHeaderType(session_id=sid),
                            body=M.BodyType(**{body_field(M, name): body}))
        return exi_schemas.encode(msg)

    async def request(self, name: str, body: Any = None, *, session_id: bytes | None = None,
                      timeout: float = 2.0, **over: Any) -> tuple[str, Any]:
        body = over.pop("body", None) if body is None else body
        body = default_request(self.p, name, **over) if body is None else body
        start = time.monotonic()
        await self.conn.send_raw(v2gtp(EXI, self.encode(name, body, session_id)))
        _, payload = await self.conn.receive(timeout + SLACK)
        msg = exi_schemas.decode(payload, self.p.schema)
        element, res = exi_schemas.body_element(msg)
        self.log.append(Exchange(name, element, res, time.monotonic() - start))
        if name == "SessionSetupReq" and getattr(res, "response_code", "").startswith("OK"):
            self.session_id = msg.header.session_id
        return element, res

    async def until_finished(self, name: str, limit: float = 60.0, pause: float = 0.2,
                             **over: Any) -> tuple[str, Any]:
        """Repeat ``name`` while the SECC answers EVSEProcessing=Ongoing."""
        deadline = time.monotonic() + limit
        while True:
            element, res = await self.request(name, **over)
            if (getattr(res, "evse_processing", "Finished") != "Ongoing"
                    or not str(res.response_code).startswith("OK")
                    or time.monotonic() > deadline):
                return element, res
            await asyncio.sleep(pause)


# --------------------------------------------------------------------------- the car's pilot
class Pilot:
    """The simulated board's control socket: the tester sets CP and reads the SECC's side."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(self.path)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            answer = json.loads(await reader.readline())
        finally:
            writer.close()
        if not answer.get("ok"):
            raise AssertionError(f"control socket refused {request}: {answer}")
        return answer

    async def set(self, state: str) -> None:
        await self.ask({"cmd": "cp", "state": state})

    async def status(self) -> dict[str, Any]:
        return await self.ask({"cmd": "status"})

    async def wait_for(self, predicate, within: float = 3.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            status = await self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"board never reached the expected state: {status}")
            await asyncio.sleep(0.02)


def foreign_session_id(own: bytes) -> bytes:
    """R4 draws a random SessionID 1..429496 (never zero)."""
    while True:
        candidate = random.randint(1, 429_496).to_bytes(8, "big")
        if candidate != own:
            return candidate
