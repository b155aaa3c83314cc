"""The protocol-neutral part of the simulated EVCC: a sans-I/O request/response engine.

A protocol module (``din.py``, ``iso2.py``) subclasses :class:`EvccSession` and supplies

* ``FLOWS[mode]``: the nominal sequence as data, ``{step: next step}`` (a *step* is a message
  name without Req/Res, e.g. ``"CableCheck"``);
* ``build_<Step>()``: the request body of that step, from the vehicle state;
* ``on_<Step>(response, now)``: what the response means; returns the next step, or ``None``
  for the nominal one from the flow table. Content-dependent branches (Ongoing repeats,
  pre-charge convergence, the charge loop, renegotiation) live only in these handlers.

A protocol whose messages travel in another envelope (ISO 15118-20: every message its own EXI
root, a payload type per schema) overrides only the two envelope hooks, ``pack_request`` and
``unpack_response``.

The engine does the rest in one place: EXI encode/decode, SessionID bookkeeping, checking that
the answer is the response to what we sent, FAILED* response codes, the EV-side timeouts
(V2G_EVCC_Msg_Timeout per message, Ongoing / CableCheck / PreCharge limits per step), the
misbehaviour knobs, and the session record the runner returns.

Like aioquic, nothing here touches a socket or a clock::

    send = evcc.start(now)                      # -> Send (bytes, not_before, deadline)
    result = evcc.receive(payload_type, payload, now)   # -> Send or Finished
    evcc.next_deadline(); evcc.handle_timer(now)        # -> Finished on timeout
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import exi_schemas as exi
from secc.common.logs import layer_logger
from secc.v2gtp.header import PayloadType
from sim.evcc.battery import Battery
from sim.evcc.failures import (
    EvccFailure,
    InvalidResponse,
    MessageTimeout,
    OngoingTimeout,
    ResponseCodeFailed,
    SessionIdMismatch,
    UndecodableResponse,
    UnexpectedMessage,
)

log = layer_logger("sim")

#: Pseudo-step after SessionStopRes (or a pause): nothing more to send.
DONE = "Done"

#: V2G_EVCC_Msg_Timeout for messages without an entry in the protocol's table.
GENERAL_MESSAGE_TIMEOUT = 2.0
#: V2G_EVCC_Ongoing_Timeout (ISO 15118-2 Table 109 / DIN 70121 Table 76).
ONGOING_TIMEOUT = 60.0
#: V2G_EVCC_CableCheck_Timeout.
CABLE_CHECK_TIMEOUT = 40.0
#: V2G_EVCC_PreCharge_Timeout.
PRECHARGE_TIMEOUT = 7.0


@dataclass
class Misbehaviour:
    """Ways to break the protocol on purpose (for SECC tests); everything off by default.

    Each knob that names a step acts on the first time that step is due.
    """

    skip: frozenset[str] = frozenset()          # never send these steps: jump to the next one
    send_instead: dict[str, str] = field(default_factory=dict)  # {"CableCheck": "CurrentDemand"}
    wrong_session_id: frozenset[str] = frozenset()  # send this step with a random SessionID
    stall: dict[str, float] = field(default_factory=dict)  # wait this long before the step
    garbage: frozenset[str] = frozenset()       # send bytes that are not EXI instead
    pause_instead_of_terminate: bool = False    # ISO-2/-20: SessionStop(Pause)
    renegotiate_after: int | None = None        # ISO-2/-20: renegotiate after N loops
    ignore_evse_stop: bool = False              # ISO-2: keep charging through StopCharging
    # Plug & Charge (ISO-2 or -20 with a contract)
    pnc_wrong_challenge: bool = False           # AuthorizationReq echoes another GenChallenge
    pnc_bad_signature: bool = False             # sign AuthorizationReq with a stranger's key
    pnc_garbage_certificate: bool = False       # PaymentDetailsReq with non-X.509 bytes
    pnc_expired_certificate: bool = False       # the contract leaf re-dated to have expired


@dataclass(frozen=True)
class PncContract:
    """The car's contract credential for Plug & Charge: certificate chain (DER, leaf first)
    and the leaf's private key, which signs AuthorizationReq. The eMAID defaults to the
    leaf's CN."""

    certificate: bytes
    sub_certificates: tuple[bytes, ...]
    key: ec.EllipticCurvePrivateKey
    emaid: str = ""

    def __post_init__(self) -> None:
        if not self.emaid:
            try:
                leaf = x509.load_der_x509_certificate(self.certificate)
                names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                object.__setattr__(self, "emaid", str(names[0].value) if names else "")
            except ValueError:
                pass  # garbage on purpose (tests): the eMAID must then be given

    @classmethod
    def from_pem(cls, chain_pem: bytes, key_pem: bytes, emaid: str = "") -> PncContract:
        """From PEM files: the chain leaf first, then the sub-CAs; an EC private key."""
        certs = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the contract key must be an EC private key")
        der = [c.public_bytes(serialization.Encoding.DER) for c in certs]
        return cls(der[0], tuple(der[1:]), key, emaid)

    @classmethod
    def from_credential(cls, credential: Any) -> PncContract:
        """From ``sim.testing.pki.ContractCredential`` (tests and the demo)."""
        return cls(credential.leaf.cert_der, tuple(credential.sub_ca_ders), credential.leaf.key)


@dataclass(frozen=True)
class ProvisioningCredential:
    """The car's OEM provisioning certificate and key (ISO 15118-2 CertificateInstallation):
    the car signs CertificateInstallationReq with the key, and the eMSP encrypts the new
    contract key for it. ``root_ids``: (issuer name, serial) of the V2G roots the car trusts
    (ListOfRootCertificateIDs); ``v2g_root``: DER of the root to check the CPS chain with."""

    certificate: bytes
    key: ec.EllipticCurvePrivateKey
    root_ids: tuple[tuple[str, int], ...] = ()
    v2g_root: bytes | None = None

    @classmethod
    def from_certificates(cls, certificate: bytes, key: ec.EllipticCurvePrivateKey,
                          v2g_root: x509.Certificate | None) -> ProvisioningCredential:
        """The OEM certificate (DER) and key, trusting ``v2g_root`` (its issuer and serial are
        the car's ListOfRootCertificateIDs)."""
        if v2g_root is None:
            return cls(certificate, key)
        return cls(certificate, key,
                   ((v2g_root.subject.rfc4514_string(), v2g_root.serial_number),),
                   v2g_root.public_bytes(serialization.Encoding.DER))

    @classmethod
    def from_credential(cls, credential: Any, v2g_root: Any = None) -> ProvisioningCredential:
        """From ``sim.testing.pki.Credential``s: the vehicle leaf and the V2G root."""
        return cls.from_certificates(credential.cert_der, credential.key,
                                     v2g_root.cert if v2g_root is not None else None)

    @classmethod
    def from_pem(cls, chain_pem: bytes, key_pem: bytes,
                 v2g_root_pem: bytes) -> ProvisioningCredential:
        """From PEM files (``python -m sim.ev --oem-chain --oem-key --v2g-root``): the OEM
        provisioning chain, leaf first (only the leaf travels in CertificateInstallationReq),
        its EC private key, and the V2G root the car checks the CPS chain against."""
        leaf = x509.load_pem_x509_certificates(chain_pem)[0]
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the OEM provisioning key must be an EC private key")
        if key.public_key().public_numbers() != leaf.public_key().public_numbers():
            raise ValueError("the OEM provisioning key does not belong to the certificate")
        root = x509.load_pem_x509_certificates(v2g_root_pem)[0]
        return cls.from_certificates(leaf.public_bytes(serialization.Encoding.DER), key, root)


@dataclass
class EvccConfig:
    """How the simulated car behaves when it behaves (timing, identity, choices)."""

    mode: str = "dc"                            # "dc" or "ac"
    evcc_id: bytes = bytes.fromhex("020000000001")  # the EV's MAC, as real cars send
    resume_session_id: bytes | None = None      # SessionSetupReq with the paused SessionID
    energy_transfer_mode: str | None = None     # None: DC_extended / AC_three_phase_core
    repeat_interval: float = 0.0                # gap before repeating an Ongoing step
    loop_interval: float = 0.0                  # gap between charge-loop requests
    seconds_per_iteration: float | None = None  # simulated charging time per loop; None: real
    precharge_tolerance: float = 20.0           # V: |EVSEPresentVoltage - target| to go on
    welding_detection_max: int = 3              # repeat WeldingDetection while voltage > 60 V
    message_timeouts: dict[str, float] = field(default_factory=dict)  # overrides per step
    ongoing_timeout: float = ONGOING_TIMEOUT
    cable_check_timeout: float = CABLE_CHECK_TIMEOUT
    precharge_timeout: float = PRECHARGE_TIMEOUT
    progress_every: int = 1                     # log every n-th charge-loop iteration
    contract: PncContract | None = None         # ISO-2/-20: Plug & Charge when offered
    provisioning: ProvisioningCredential | None = None  # ISO-2: no contract yet: install one

    def __post_init__(self) -> None:
        if self.mode not in ("dc", "ac"):
            raise ValueError(f"mode must be 'dc' or 'ac', not {self.mode!r}")


@dataclass
class VehicleSignals:
    """What the car does outside the messages, for a driver that simulates the charger's
    hardware (CP state, the car's DC contactors, its battery voltage at the inlet).

    DC: state C before CableCheck, contactors closed after PowerDeliveryRes(Start), opened and
    back to state B after PowerDeliveryRes(Stop). AC: state C with PowerDeliveryReq(Start),
    B after PowerDeliveryRes(Stop). Any failure: contactors open, state B.
    """

    pilot: str = "B"
    contactors_closed: bool = False
    battery_voltage: float = 0.0


@dataclass(frozen=True)
class Send:
    """Send ``payload`` at ``not_before`` (now, or later when pacing/stalling); the response
    is due by ``deadline``."""

    step: str
    payload_type: int
    payload: bytes
    not_before: float
    deadline: float
    message: Any = None  # the encoded message object (None when garbage is sent)


@dataclass
class Exchange:
    """One request and its response, with the times the driver reported."""

    step: str
    sent_at: float
    received_at: float | None = None
    response_code: str | None = None
    evse_processing: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.received_at is None else self.received_at - self.sent_at


@dataclass
class SessionRecord:
    """Everything the session did; what the runner returns inside its result."""

    protocol: str
    mode: str
    session_id: bytes = b""
    evse_id: str = ""
    exchanges: list[Exchange] = field(default_factory=list)
    loop_iterations: int = 0
    energy_wh: float = 0.0
    soc_start: float = 0.0
    soc_end: float = 0.0
    stop_reason: str = ""           # target_soc, max_iterations, evse_stop, ...
    paused: bool = False            # ended with SessionStop(Pause)
    resumed: bool = False           # SessionSetupRes said OK_OldSessionJoined
    renegotiations: int = 0
    metering_receipts: int = 0
    sa_schedule_tuple_id: int | None = None
    # what the EVSE offered, on change: (wall-clock time, name, value), e.g. "PMax" (first
    # PMaxSchedule entry, W), "EVSEMaximumPowerLimit" (W), "EVSEMaxCurrent" (A)
    evse_limits: list[tuple[float, str, float]] = field(default_factory=list)
    installed_emaid: str = ""       # ISO-2: contract installed by CertificateInstallation
    failure: EvccFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def saw_limit(self, name: str, value: float) -> None:
        """Record an EVSE limit when it differs from the last one of that name."""
        last = next((v for _, n, v in reversed(self.evse_limits) if n == name), None)
        if last is None or abs(last - value) > 1e-6:
            self.evse_limits.append((time.time(), name, value))

    @property
    def steps_sent(self) -> list[str]:
        return [e.step for e in self.exchanges]

    @property
    def response_codes(self) -> list[tuple[str, str]]:
        return [(e.step, e.response_code) for e in self.exchanges if e.response_code]


@dataclass(frozen=True)
class Finished:
    """The session is over (normally or not); ``record.failure`` says which."""

    record: SessionRecord

    @property
    def failure(self) -> EvccFailure | None:
        return self.record.failure


def snake(step: str) -> str:
    """``"ChargeParameterDiscovery"`` -> ``"charge_parameter_discovery"`` (body field stem)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", step).lower()


def physical(module: ModuleType, value: float, unit: str) -> Any:
    """A PhysicalValueType with the smallest multiplier that keeps ``value`` within int16
    (one decimal when it fits, like the Ioniq and Tesla captures). The schema allows
    multipliers -3..3: beyond 32767e3 the value saturates instead of failing to encode."""
    multiplier = -1 if abs(value) * 10 <= 32767 else 0
    while abs(round(value / 10 ** multiplier)) > 32767 and multiplier < 3:
        multiplier += 1
    scaled = max(-32768, min(32767, int(round(value / 10 ** multiplier))))
    return module.PhysicalValueType(multiplier=multiplier, unit=unit, value=scaled)


def value_of(physical_value: Any) -> float:
    """The float a PhysicalValueType stands for (0 when absent)."""
    if physical_value is None:
        return 0.0
    return physical_value.value * 10.0 ** physical_value.multiplier


def body_element(message: Any) -> tuple[str, Any]:
    """(field name, value) of the one element set in a V2G_Message body."""
    body = message.body
    for name in body.__slots__:
        value = getattr(body, name)
        if value is not None:
            return name, value
    return "empty body", None


class EvccSession:
    """Base class of the per-protocol EVCC state machines (see module docstring)."""

    PROTOCOL: ClassVar[str]
    SCHEMA: ClassVar[str]
    MESSAGES: ClassVar[ModuleType]
    FLOWS: ClassVar[dict[str, dict[str, str]]]
    MESSAGE_TIMEOUTS: ClassVar[dict[str, float]]
    #: steps that may stay Ongoing / not converged, and which EVCC limit bounds them
    STEP_LIMITS: ClassVar[dict[str, str]] = {}
    LOOP_STEPS: ClassVar[frozenset[str]] = frozenset({"CurrentDemand", "ChargingStatus"})
    PAYLOAD_TYPE: ClassVar[int] = PayloadType.EXI

    def __init__(self, battery: Battery | None = None, config: EvccConfig | None = None,
                 misbehaviour: Misbehaviour | None = None) -> None:
        self.battery = battery or Battery()
        self.config = config or EvccConfig()
        self.misbehaviour = misbehaviour or Misbehaviour()
        self.flow = dict(self.FLOWS[self.config.mode])
        self.record = SessionRecord(self.PROTOCOL, self.config.mode,
                                    soc_start=self.battery.soc, soc_end=self.battery.soc)
        self.session_id = self.config.resume_session_id or bytes(8)
        self.step: str | None = None            # awaiting the response to this step
        self._message_deadline: float | None = None
        self._step_deadline: tuple[float, str, float] | None = None  # (when, step, limit)
        self._step_started_at: float = 0.0
        self._used_knobs: set[tuple[str, str]] = set()
        self._last_loop_at: float | None = None
        self._finished: Finished | None = None
        self.signals = VehicleSignals(battery_voltage=self.battery.voltage())
        self.response_signature: Any = None

    # --- sans-I/O interface ---------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._finished is not None

    def start(self, now: float) -> Send | Finished:
        """The first request: SessionSetupReq (with the old SessionID when resuming)."""
        return self._send(self.flow.get("Start", "SessionSetup"), now)

    def receive(self, payload_type: int, payload: bytes, now: float) -> Send | Finished:
        """Feed the SECC's response; get the next request or the end of the session."""
        if self._finished is not None:
            return self._finished
        try:
            return self._handle_response(payload_type, payload, now)
        except EvccFailure as failure:
            return self.fail(failure)
        except Exception as exc:  # noqa: BLE001 - a response we cannot act on ends the session
            log.warning("response handling failed", exc_info=True)
            return self.fail(InvalidResponse(self.step or "idle",
                                             f"cannot act on the response: "
                                             f"{type(exc).__name__}: {exc}"))

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must be called if no response arrived."""
        if self._finished is not None:
            return None
        deadlines = [d for d in (self._message_deadline,
                                 self._step_deadline[0] if self._step_deadline else None)
                     if d is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> Finished | None:
        """Enforce the EV timeouts; returns ``Finished`` when one expired."""
        if self._finished is not None or self.step is None:
            return self._finished
        if self._step_deadline is not None and now >= self._step_deadline[0]:
            _, step, limit = self._step_deadline
            return self.fail(OngoingTimeout(step, limit))
        if self._message_deadline is not None and now >= self._message_deadline:
            return self.fail(MessageTimeout(self.step, self._message_timeout(self.step)))
        return None

    def fail(self, failure: EvccFailure) -> Finished:
        """End the session with ``failure`` (also used by the runner for a lost connection)."""
        if self._finished is not None:
            return self._finished
        self.record.failure = failure
        self.signals.pilot, self.signals.contactors_closed = "B", False
        log.warning(f"session failed at {failure.step}: {failure.detail}",
                    extra={"failure": type(failure).__name__})
        return self._finish()

    # --- the engine -----------------------------------------------------------------------------
    def _handle_response(self, payload_type: int, payload: bytes, now: float) -> Send | Finished:
        step = self.step
        if step is None:
            raise UnexpectedMessage("idle", "nothing", "a message")
        exchange = self.record.exchanges[-1]
        exchange.received_at = now
        self._message_deadline = None
        response, header = self.unpack_response(step, payload_type, payload)
        exchange.response_code = response.response_code
        exchange.evse_processing = getattr(response, "evse_processing", None)
        if response.response_code.upper().startswith("FAILED"):
            raise ResponseCodeFailed(step, response.response_code)
        if step != "SessionSetup" and header.session_id != self.session_id:
            raise SessionIdMismatch(step, f"SessionID {header.session_id.hex()} is "
                                          f"not ours ({self.session_id.hex()})")
        self._header = header
        handler = getattr(self, f"on_{step}", None)
        next_step = handler(response, now) if handler is not None else None
        if next_step is None:
            next_step = self.flow[step]
        if next_step == DONE:
            return self._finish()
        return self._send(next_step, now)

    def unpack_response(self, step: str, payload_type: int, payload: bytes) -> tuple[Any, Any]:
        """The envelope hook, inbound: (response body, message header) of the response to
        ``step``, or a typed failure. DIN/ISO-2: one V2G_Message root whose body holds the
        response; ISO 15118-20 overrides this (each message its own root)."""
        if payload_type != self.PAYLOAD_TYPE:
            raise UndecodableResponse(step, f"payload type 0x{payload_type:04x}")
        try:
            message = exi.decode(payload, self.SCHEMA)
        except exi.ExiDecodeError as exc:
            raise UndecodableResponse(step, f"EXI decode failed: {exc}") from None
        if not isinstance(message, self.MESSAGES.V2G_Message):  # another global element
            raise UnexpectedMessage(step, "V2G_Message", type(message).__name__)
        name, response = body_element(message)
        # the header signature of a signed response (ISO-2 CertificateInstallationRes)
        self.response_signature = getattr(message.header, "signature", None)
        expected = f"{snake(step)}_res"
        if name != expected:
            raise UnexpectedMessage(step, expected, name)
        return response, message.header

    def _send(self, step: str, now: float) -> Send | Finished:
        knobs = self.misbehaviour
        skipped: set[str] = set()
        while step in knobs.skip and step not in skipped:  # a self-loop cannot be skipped
            log.info(f"misbehaving: skipping {step}Req")
            skipped.add(step)
            step = self.flow.get(step, DONE)
            if step == DONE:  # e.g. SessionStop skipped: the car just goes away
                return self._finish()
        if step in knobs.send_instead and self._use_knob("instead", step):
            log.info(f"misbehaving: {knobs.send_instead[step]}Req instead of {step}Req")
            step = knobs.send_instead[step]
        delay = self._pacing(step)
        if step in knobs.stall and self._use_knob("stall", step):
            log.info(f"misbehaving: stalling {knobs.stall[step]:g} s before {step}Req")
            delay += knobs.stall[step]
        not_before = now + delay
        if step != self.step or not self._repeating:
            self._enter_step(step, not_before)  # a step's time limit runs from its first send
        session_id = self.session_id
        if step in knobs.wrong_session_id and self._use_knob("session", step):
            session_id = self.mangled_session_id(session_id)
        message, payload, payload_type = self.pack_request(step, session_id)
        if step in knobs.garbage and self._use_knob("garbage", step):
            message, payload = None, b"\x80\x00" + bytes(range(0xF0, 0x100)) * 2
        if self._step_deadline is not None and not_before >= self._step_deadline[0]:
            raise OngoingTimeout(step, self._step_deadline[2])  # would be sent too late
        self.step = step
        self._repeating = False
        self._message_deadline = not_before + self._message_timeout(step)
        self.record.exchanges.append(Exchange(step, not_before))
        return Send(step, payload_type, payload, not_before, self._message_deadline, message)

    def pack_request(self, step: str, session_id: bytes) -> tuple[Any, bytes, int]:
        """The envelope hook, outbound: (message, EXI bytes, V2GTP payload type) of the request
        for ``step`` (its body from ``build_<step>``). DIN/ISO-2: the body inside one
        V2G_Message; ISO 15118-20 overrides this (each message its own root and schema)."""
        body = getattr(self, f"build_{step}")()
        header = self.MESSAGES.MessageHeaderType(session_id=session_id)
        signature = self.header_signature(step, body)
        if signature is not None:
            header.signature = signature
        message = self.MESSAGES.V2G_Message(
            header=header, body=self.MESSAGES.BodyType(**{f"{snake(step)}_req": body}))
        return message, exi.encode(message), self.PAYLOAD_TYPE

    def mangled_session_id(self, session_id: bytes) -> bytes:
        """The SessionID the ``wrong_session_id`` knob sends instead of ours."""
        return bytes(b ^ 0xA5 for b in session_id) or secrets.token_bytes(8)

    _repeating = False

    def header_signature(self, step: str, body: Any) -> Any:
        """The header's XML signature for this request (None: unsigned, the default)."""
        return None

    def repeat(self, step: str) -> str:
        """Return from a handler to send ``step`` again without restarting its time limit."""
        self._repeating = True
        return step

    def _enter_step(self, step: str, now: float) -> None:
        self._step_started_at = now
        self._ongoing_logged = None
        limit_name = self.STEP_LIMITS.get(step)
        if limit_name is None:
            self._step_deadline = None
        else:
            limit = getattr(self.config, limit_name)
            self._step_deadline = (now + limit, step, limit)

    def _pacing(self, step: str) -> float:
        if self._repeating and step in self.LOOP_STEPS:
            return self.config.loop_interval
        if self._repeating:
            return self.config.repeat_interval
        return 0.0

    def _use_knob(self, kind: str, step: str) -> bool:
        if (kind, step) in self._used_knobs:
            return False
        self._used_knobs.add((kind, step))
        return True

    def _message_timeout(self, step: str) -> float:
        return self.config.message_timeouts.get(
            step, self.MESSAGE_TIMEOUTS.get(step, GENERAL_MESSAGE_TIMEOUT))

    def _finish(self) -> Finished:
        self.signals.battery_voltage = self.battery.voltage()
        self.record.soc_end = self.battery.soc
        self.record.energy_wh = self.battery.energy_delivered_wh
        self._message_deadline = None
        self._step_deadline = None
        self._finished = Finished(self.record)
        return self._finished

    # --- helpers for the protocol handlers ----------------------------------------------------
    def say(self, text: str, level: int = logging.INFO, **fields: Any) -> None:
        """A progress line for people watching a demo (layer ``sim``)."""
        log.log(level, text, extra={"protocol": self.PROTOCOL, **fields})

    def ongoing(self, step: str, processing: str | None, now: float) -> str | None:
        """Repeat ``step`` while the SECC says Ongoing (the step's time limit is a timer)."""
        if processing is not None and processing.startswith("Ongoing"):
            if self._step_deadline is not None and now >= self._step_deadline[0]:
                raise OngoingTimeout(step, self._step_deadline[2])
            if self._ongoing_logged != step:
                self.say(f"{step} ongoing...")
                self._ongoing_logged = step
            return self.repeat(step)
        self.say(f"{step} OK")
        return None

    _ongoing_logged: str | None = None

    def session_setup_done(self, response_code: str, evse_id: str) -> None:
        self.session_id = self._header.session_id
        self.record.session_id = self.session_id
        self.record.evse_id = evse_id
        self.record.resumed = response_code == "OK_OldSessionJoined"
        kind = "resumed session" if self.record.resumed else "new session"
        self.say(f"SessionSetup OK ({kind} {self.session_id.hex()}) with EVSE {evse_id}")

    def loop_tick(self, power_w: float, now: float, voltage: float, current: float) -> None:
        """Account one charge-loop response: energy into the battery, progress line."""
        self.record.loop_iterations += 1
        if self.config.seconds_per_iteration is not None:
            seconds = self.config.seconds_per_iteration
        else:
            seconds = 0.0 if self._last_loop_at is None else now - self._last_loop_at
        self._last_loop_at = now
        self.battery.charge(power_w, seconds)
        n = self.record.loop_iterations
        if n == 1 or n % max(1, self.config.progress_every) == 0:
            self.say(f"{self.step} {current:.0f} A {voltage:.0f} V SoC {self.battery.soc:.0f}%",
                     iteration=n)

    def stop_reason(self) -> str | None:
        """Why the car wants to stop charging now (None: go on)."""
        if self.battery.soc >= self.battery.target_soc:
            return "target_soc"
        if self.battery.charging_complete(self.record.loop_iterations):
            return "max_iterations"
        return None
