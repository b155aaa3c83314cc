"""What the session core knows of the charger (inputs) and what it asks of it (actions).

The core never calls the HAL. The daemon keeps an ``EvseSnapshot`` current from the board
(power module, isolation monitor, meter, e-stop) and carries out the ``Action``s the core
returns. Tests drive the core with snapshots alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from hal.board import SafeStateReason
from secc.authorization import AuthorizationRequest


class Isolation(enum.Enum):
    """IsolationLevelType of DIN/ISO-2 (-20 uses the same idea)."""

    INVALID = "Invalid"   # not measured yet
    VALID = "Valid"
    WARNING = "Warning"
    FAULT = "Fault"
    NO_IMD = "No_IMD"


class StopReason(enum.Enum):
    """Why the EVSE side ends or refuses charging (maps to EVSEStatusCode/notification)."""

    NONE = "none"
    EMERGENCY = "emergency"          # e-stop pressed -> EVSE_EmergencyShutdown
    ISOLATION_FAULT = "isolation"    # IMD fault -> EVSE_IsolationMonitoringActive / Shutdown
    REMOTE_STOP = "remote_stop"      # CSMS RequestStopTransaction -> StopCharging notification
    MALFUNCTION = "malfunction"      # power module / contactor fault -> EVSE_Malfunction
    UTILITY = "utility"              # utility interrupt


@dataclass(frozen=True)
class EvseLimits:
    """Rated limits of this EVSE (board config)."""

    max_voltage: float = 920.0
    min_voltage: float = 150.0
    max_current: float = 200.0
    min_current: float = 0.0
    max_power: float = 150_000.0
    current_regulation_tolerance: float = 5.0
    peak_current_ripple: float = 2.0
    energy_to_be_delivered: float | None = None
    # AC
    ac_nominal_voltage: float = 230.0
    ac_max_current: float = 32.0
    ac_phases: int = 3


@dataclass(frozen=True)
class InsulationTestResult:
    """The board's report on the insulation test it runs for a cable check (IEC 61851-23).

    ``token`` names the test (the core's ``StartIsolationCheck.token``): a result counts only
    for the cable check that started it. ``complete`` is True once the test voltage was held
    for the board's test time and the monitor measured during that hold; ``state`` is then
    its verdict (VALID/WARNING pass, FAULT fails), INVALID while it runs."""

    token: int
    voltage: float
    complete: bool = False
    state: Isolation = Isolation.INVALID


@dataclass
class EvseSnapshot:
    """The charger's present state, refreshed by the daemon before each request."""

    present_voltage: float = 0.0
    present_current: float = 0.0
    isolation: Isolation = Isolation.INVALID
    insulation_test: InsulationTestResult | None = None
    stop_reason: StopReason = StopReason.NONE
    meter_wh: float = 0.0
    cp_state: str = "B"
    contactors_closed: bool = False
    current_limit_achieved: bool = False
    voltage_limit_achieved: bool = False
    power_limit_achieved: bool = False
    # the EVSE has no schedule for the car yet (a tester's hook on the simulated board):
    # ChargeParameterDiscovery answers Ongoing, at most [v2g.timers].ongoing_timeout
    schedule_pending: bool = False


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    pass


@dataclass(frozen=True)
class SetContactors(Action):
    closed: bool


@dataclass(frozen=True)
class SetLock(Action):
    locked: bool


@dataclass(frozen=True)
class SetDcOutput(Action):
    """Power module set-point; ``enabled=False`` means output off (0 A)."""

    voltage: float
    current: float
    enabled: bool = True


@dataclass(frozen=True)
class StartIsolationCheck(Action):
    """Start the cable check's insulation test at ``voltage``; the board reports it back in
    ``EvseSnapshot.insulation_test`` under ``token``."""

    voltage: float
    token: int = 0


@dataclass(frozen=True)
class RequestAuthorization(Action):
    request: AuthorizationRequest


@dataclass(frozen=True)
class PublishEvent(Action):
    """A session event for the bus (SessionStarted, Authorized, ChargingStarted ...)."""

    kind: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EnterSafeState(Action):
    """No current, contactors open, lock released only when safe.

    ``cause`` is the board's ``SafeStateReason``: normal ends (SESSION_END,
    COMMUNICATION_ERROR) leave the pilot at +12 V; faults put it in state F. ``reason`` is the
    text for the log."""

    reason: str
    cause: SafeStateReason = SafeStateReason.SESSION_END

    def __post_init__(self) -> None:
        if not isinstance(self.cause, SafeStateReason):
            raise TypeError(f"EnterSafeState cause must be a SafeStateReason, not {self.cause!r}")


@dataclass(frozen=True)
class CloseConnection(Action):
    """Close the V2G connection after the response (if any) is sent."""

    reason: str


@dataclass(frozen=True)
class RequestCertificate(Action):
    """ISO 15118-2 Plug & Charge: forward the EV's CertificateInstallation/UpdateReq to the
    CSMS (OCPP Get15118EVCertificate) and give the answer back to the core with
    ``certificate_answered``. -2 has no Ongoing for these requests, so the driver awaits the
    answer (at most ``timeout`` seconds) before the response is produced."""

    session_id: str          # hex
    action: str              # "Install" | "Update"
    exi_request: str         # base64 EXI of the EV's V2G_Message
    schema_version: str      # "urn:iso:15118:2:2013:MsgDef"
    timeout: float
