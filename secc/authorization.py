"""How the session layer asks whether a car may charge.

The V2G session state machines never talk to OCPP. They emit an authorization request and
answer the car with EVSEProcessing=Ongoing until the decision arrives through an
``Authorizer``. The OCPP bridge implements one over the MQTT bus (secc/bus); a local
allow-list implements one for stand-alone chargers and tests.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Protocol


class AuthorizationStatus(enum.Enum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNKNOWN = "Unknown"
    NO_CREDIT = "NoCredit"
    NOT_ALLOWED_TYPE_EVSE = "NotAllowedTypeEVSE"
    NOT_AT_THIS_LOCATION = "NotAtThisLocation"
    NOT_AT_THIS_TIME = "NotAtThisTime"
    CONCURRENT_TX = "ConcurrentTx"
    # local outcomes
    TIMEOUT = "Timeout"            # no answer in time (bus or CSMS down)
    CERTIFICATE_REJECTED = "CertificateRejected"


@dataclass(frozen=True)
class AuthorizationRequest:
    evse_id: str
    session_id: str
    id_token: str                      # EIM: RFID/app token or "EXTERNAL"; PnC: the eMAID
    id_token_type: str = "Central"     # OCPP IdTokenEnumType: Central, eMAID, ISO14443, Local ...
    contract_chain_pem: str | None = None            # PnC: leaf + sub-CAs, PEM
    ocsp_request_data: list[dict] = field(default_factory=list)  # PnC: OCPP OCSPRequestDataType


@dataclass(frozen=True)
class AuthorizationDecision:
    status: AuthorizationStatus
    reason: str = ""                   # for the field engineer's log line

    @property
    def accepted(self) -> bool:
        return self.status is AuthorizationStatus.ACCEPTED


class Authorizer(Protocol):
    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision: ...


@dataclass
class AllowListAuthorizer:
    """Stand-alone authorizer: tokens in the list are accepted, others are ``Invalid``.

    ``accept_all`` serves free-vend chargers (EIM with ExternalPayment and no token)."""

    tokens: frozenset[str] = frozenset()
    accept_all: bool = False

    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        if self.accept_all or request.id_token in self.tokens:
            return AuthorizationDecision(AuthorizationStatus.ACCEPTED, "local allow-list")
        return AuthorizationDecision(AuthorizationStatus.INVALID,
                                     f"token {request.id_token!r} not in local allow-list")


@dataclass
class OfflineFallbackAuthorizer:
    """Ask ``primary`` (the bus/OCPP bridge); when it cannot be reached at all (decision
    TIMEOUT: broker or bridge down), decide by the board's offline policy instead of leaving
    the car without an answer. The bridge itself handles a CSMS that is offline (local list,
    cache, contract validation); this covers the bus between SECC and bridge."""

    primary: Authorizer
    accept_when_unreachable: bool = False

    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        decision = await self.primary.authorize(request)
        if decision.status is not AuthorizationStatus.TIMEOUT:
            return decision
        if self.accept_when_unreachable:
            return AuthorizationDecision(AuthorizationStatus.ACCEPTED,
                                         f"offline policy accept ({decision.reason})")
        return AuthorizationDecision(AuthorizationStatus.TIMEOUT,
                                     f"offline policy reject ({decision.reason})")


class HoldableAuthorizer:
    """The authorization hook of the simulated board's control socket (hal/sim_control.py,
    ``{"cmd": "authorization", "mode": ...}``), for outside testers: ``pass`` lets ``primary``
    decide (the default), ``hold`` keeps every decision pending (the car hears
    EVSEProcessing=Ongoing until the board's ``[v2g.timers].ongoing_timeout``, like an RFID
    card that is never presented), ``accept``/``reject`` decide at once. Leaving ``hold``
    releases the pending decisions under the new mode."""

    MODES = ("pass", "hold", "accept", "reject")

    def __init__(self, primary: Authorizer) -> None:
        self.primary = primary
        self.mode = "pass"
        self._changed: asyncio.Event | None = None

    def set_mode(self, mode: str) -> None:
        if mode not in self.MODES:
            raise ValueError(f"authorization mode must be one of {', '.join(self.MODES)}, "
                             f"got {mode!r}")
        self.mode = mode
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        while self.mode == "hold":
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
        if self.mode == "accept":
            return AuthorizationDecision(AuthorizationStatus.ACCEPTED, "sim hook: accept")
        if self.mode == "reject":
            return AuthorizationDecision(AuthorizationStatus.INVALID, "sim hook: reject")
        return await self.primary.authorize(request)
