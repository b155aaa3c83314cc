"""The board interface the session layer and the daemon talk to.

One :class:`Board` per charging point. Everything a session needs from hardware is here:
control pilot (IEC 61851-1), contactors with feedback, connector lock, meter, isolation
monitor, DC power module, temperatures, emergency stop, and one :meth:`Board.safe_state`.

Commands are ``async`` methods (a serial MCU answers over a link; the simulated board answers
at once). Things the hardware tells us unasked are *events*: frozen dataclasses delivered

* to every ``asyncio.Queue`` returned by :meth:`Board.subscribe` (the session layer's way), and
* to every plain callback registered with :meth:`Board.add_listener` (called synchronously,
  in the order of publication; handy for sans-I/O tests and loggers).

Both see the same events in the same order. Event classes: :class:`PilotStateChanged`,
:class:`EmergencyStopChanged`, :class:`IsolationChanged`, :class:`ContactorFault`,
:class:`LockFault`, :class:`OverTemperature`, :class:`BoardLinkChanged`, :class:`McuReset`,
:class:`SafeStateEntered`.

The board reacts on its own to dangerous events (emergency stop, isolation fault, contactor
fault, over-temperature, pilot state E, unplug with closed contactors, MCU link loss, MCU
reset): it enters the safe state and publishes
:class:`SafeStateEntered`; the session layer only has to stop the session.
"""

from __future__ import annotations

import logging

import abc
import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.pilot import PilotSignal, PilotState

_log = logging.getLogger("pysecc.hal")  # the "hal" layer of secc.common.logs

__all__ = [
    "Board", "BoardError", "BoardEvent", "BoardLinkChanged", "ContactorError", "ContactorFault",
    "ContactorFaultKind", "DcCapabilities", "DcOutput", "EmergencyStopChanged", "EventHub",
    "InsulationTest", "IsolationChanged", "IsolationReading", "IsolationState", "LinkDown", "LockError",
    "LockFault", "LockFaultKind", "LockState", "McuReset", "MeterReading", "OverTemperature",
    "PilotSignal",
    "PilotState", "PilotStateChanged", "SafeStateEntered", "SafeStateReason", "SafeStateReport",
    "SafetyLimits", "SetpointOutOfRange", "SignedMeterValue", "UnsafeToUnlock",
]


# --------------------------------------------------------------------------- errors


class BoardError(Exception):
    """Base of every error a board command raises."""


class ContactorError(BoardError):
    """Contactor feedback does not follow the command (welded, or failed to close)."""


class LockError(BoardError):
    """Lock feedback does not follow the command."""


class UnsafeToUnlock(BoardError):
    """Unlock refused: contactors not proven open, current flowing or voltage present."""


class SetpointOutOfRange(BoardError):
    """A DC set-point outside the power module's capabilities (or discharge on a unidirectional
    module)."""


class LinkDown(BoardError):
    """The board controller (MCU) does not answer; the command was not applied."""


# --------------------------------------------------------------------------- readings


class LockState(enum.Enum):
    UNLOCKED = "unlocked"
    LOCKED = "locked"
    UNKNOWN = "unknown"   # motor moving, sensor between positions, or no feedback yet


class IsolationState(enum.Enum):
    """IEC 61851-23 insulation monitoring: > 500 ohm/V valid, 100..500 warning, < 100 fault."""

    VALID = "valid"
    WARNING = "warning"
    FAULT = "fault"
    NOT_MEASURED = "not_measured"   # monitor off (e.g. output not energised)


@dataclass(frozen=True)
class IsolationReading:
    resistance_ohm: float | None
    state: IsolationState
    at: float


@dataclass(frozen=True)
class InsulationTest:
    """The insulation test of a DC cable check (IEC 61851-23 CC.4.1), as the board runs it.

    Started by :meth:`Board.start_insulation_test` under the caller's ``token``. The board
    drives the output to ``voltage_v`` and holds it; the test is ``complete`` once the output
    stayed at the test voltage for ``SafetyLimits.insulation_test_hold_s`` and the monitor
    produced a reading during that hold (``state``), or at once on a FAULT reading during the
    hold. A reading taken before the hold (idle, stale, another voltage) never completes it."""

    token: int
    voltage_v: float
    started_at: float
    held_since: float | None = None
    complete: bool = False
    state: IsolationState = IsolationState.NOT_MEASURED
    resistance_ohm: float | None = None


@dataclass(frozen=True)
class SignedMeterValue:
    """An opaque signed reading as the meter produced it, passed to OCPP unchanged.

    ``format`` names the encoding ("OCMF", "EDL", ...); ``data`` is what the meter signed;
    ``public_key`` is the meter's key when it reports one (OCPP signedMeterValue.publicKey).
    """

    data: bytes
    format: str
    public_key: bytes | None = None


@dataclass(frozen=True)
class MeterReading:
    energy_wh: float          # imported energy register (monotonic)
    power_w: float            # signed: negative while discharging (bidirectional)
    voltage_v: float
    current_a: float          # signed like power
    at: float
    energy_exported_wh: float = 0.0
    signed: SignedMeterValue | None = None


@dataclass(frozen=True)
class DcOutput:
    """Present values at the charger output (cable side of the contactors)."""

    voltage_v: float
    current_a: float          # negative = energy flowing from the EV (discharge)
    at: float


@dataclass(frozen=True)
class DcCapabilities:
    """What the power module can do; set-points outside raise :class:`SetpointOutOfRange`."""

    max_voltage_v: float
    max_current_a: float
    max_power_w: float
    min_voltage_v: float = 0.0
    max_discharge_current_a: float = 0.0   # > 0 only for bidirectional modules
    max_discharge_power_w: float = 0.0

    @property
    def bidirectional(self) -> bool:
        return self.max_discharge_current_a > 0


@dataclass(frozen=True)
class SafetyLimits:
    """Thresholds the safety logic uses; the board config's ``[board]`` table sets them."""

    contactor_feedback_timeout_s: float = 0.2
    lock_feedback_timeout_s: float = 1.0
    unlock_max_current_a: float = 1.0       # current considered "no current"
    unlock_max_voltage_v: float = 60.0      # IEC 61851-23: output below 60 V before unlocking
    discharge_timeout_s: float = 2.0        # how long safe_state waits for the output to bleed
    current_ramp_down_timeout_s: float = 1.0
    max_temperature_c: float = 90.0         # any sensor above this: OverTemperature, safe state
    temperature_hysteresis_c: float = 5.0   # cleared only this far below the limit
    insulation_test_hold_s: float = 1.0     # cable check: test voltage held this long, measured
    insulation_test_voltage_fraction: float = 0.95   # "held" = output >= this x test voltage


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class BoardEvent:
    at: float


@dataclass(frozen=True)
class PilotStateChanged(BoardEvent):
    previous: PilotState
    state: PilotState


@dataclass(frozen=True)
class EmergencyStopChanged(BoardEvent):
    active: bool


@dataclass(frozen=True)
class IsolationChanged(BoardEvent):
    reading: IsolationReading


class ContactorFaultKind(enum.Enum):
    WELDED = "welded"                     # commanded open, feedback stays closed
    FAILED_TO_CLOSE = "failed_to_close"   # commanded closed, feedback stays open
    UNEXPECTED_OPEN = "unexpected_open"   # opened without a command (e.g. MCU safe state)


@dataclass(frozen=True)
class ContactorFault(BoardEvent):
    kind: ContactorFaultKind


class LockFaultKind(enum.Enum):
    FAILED_TO_LOCK = "failed_to_lock"
    FAILED_TO_UNLOCK = "failed_to_unlock"


@dataclass(frozen=True)
class LockFault(BoardEvent):
    kind: LockFaultKind


@dataclass(frozen=True)
class OverTemperature(BoardEvent):
    """A sensor crossed ``SafetyLimits.max_temperature_c`` (active) or cooled down again."""

    sensor: str
    celsius: float
    active: bool


@dataclass(frozen=True)
class BoardLinkChanged(BoardEvent):
    """The host <-> MCU link went down (heartbeat or retries exhausted) or came back."""

    up: bool
    reason: str = ""


@dataclass(frozen=True)
class McuReset(BoardEvent):
    """The MCU rebooted (its HELLO carried a new boot counter): its outputs are in safe state."""

    boot_counter: int


class SafeStateReason(enum.Enum):
    """Why the board went to safe state; ``is_fault`` decides the pilot signal."""

    SESSION_END = "session_end"
    EV_UNPLUGGED = "ev_unplugged"
    SHUTDOWN = "shutdown"
    COMMUNICATION_ERROR = "communication_error"
    EMERGENCY_STOP = "emergency_stop"
    ISOLATION_FAULT = "isolation_fault"
    CONTACTOR_FAULT = "contactor_fault"
    PILOT_FAULT = "pilot_fault"
    OVER_TEMPERATURE = "over_temperature"
    LINK_LOST = "link_lost"
    MCU_RESET = "mcu_reset"

    @property
    def is_fault(self) -> bool:
        """Faults put the pilot in state F (EVSE not available); normal ends use +12 V (X1)."""
        return self not in _NORMAL_ENDS


_NORMAL_ENDS = frozenset({SafeStateReason.SESSION_END, SafeStateReason.EV_UNPLUGGED,
                          SafeStateReason.SHUTDOWN, SafeStateReason.COMMUNICATION_ERROR})


@dataclass(frozen=True)
class SafeStateReport:
    """What :meth:`Board.safe_state` achieved; it never raises, it reports."""

    reason: SafeStateReason
    pilot: PilotSignal | None          # None: could not be applied
    current_zeroed: bool               # power module set to 0 A and output current below limit
    contactors_open: bool              # proven by feedback
    welded: bool
    unlocked: bool
    residual_voltage_v: float | None
    problems: tuple[str, ...] = ()

    @property
    def safe(self) -> bool:
        return self.current_zeroed and self.contactors_open and not self.welded


@dataclass(frozen=True)
class SafeStateEntered(BoardEvent):
    report: SafeStateReport


# --------------------------------------------------------------------------- event delivery


@dataclass
class EventHub:
    """Fans one event stream out to asyncio queues and synchronous callbacks."""

    _queues: list[asyncio.Queue[BoardEvent]] = field(default_factory=list)
    _listeners: list[Callable[[BoardEvent], None]] = field(default_factory=list)

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[BoardEvent]:
        queue: asyncio.Queue[BoardEvent] = asyncio.Queue(maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[BoardEvent]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def add_listener(self, callback: Callable[[BoardEvent], None]) -> None:
        self._listeners.append(callback)

    def publish(self, event: BoardEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:      # a broken listener must not stop the board's own reactions
                _log.exception("board event listener failed", extra={"event": type(event).__name__})
        for queue in self._queues:
            if queue.full():        # a stalled consumer loses its oldest event, never blocks us
                queue.get_nowait()
            queue.put_nowait(event)


# --------------------------------------------------------------------------- the interface


class Board(abc.ABC):
    """What the session layer and the daemon use. See the module docstring for events."""

    # events ---------------------------------------------------------------
    @abc.abstractmethod
    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[BoardEvent]:
        """A queue that receives every event published from now on."""

    @abc.abstractmethod
    def add_listener(self, callback: Callable[[BoardEvent], None]) -> None:
        """Call ``callback(event)`` synchronously for every event."""

    # lifecycle -----------------------------------------------------------
    @abc.abstractmethod
    async def start(self) -> None:
        """Open the hardware and start background work (polling, link). Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Enter the safe state (best effort) and release the hardware."""

    async def __aenter__(self) -> Board:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # control pilot -------------------------------------------------------
    @property
    @abc.abstractmethod
    def pilot_state(self) -> PilotState:
        """The debounced pilot state (A..F)."""

    @property
    @abc.abstractmethod
    def pilot_signal(self) -> PilotSignal:
        """What the EVSE currently drives on the pilot."""

    @abc.abstractmethod
    async def set_pilot(self, signal: PilotSignal) -> None:
        """Drive the pilot: ``PilotSignal.hlc()`` (5 %), ``.nominal(amps)``, ``.x1()`` (100 %),
        ``.state_f()``."""

    # contactors ----------------------------------------------------------
    @property
    @abc.abstractmethod
    def contactors_closed(self) -> bool | None:
        """Feedback (auxiliary contacts): True closed, False open, None unknown."""

    @abc.abstractmethod
    async def close_contactors(self) -> None:
        """Close and prove it by feedback; raises :class:`ContactorError` otherwise."""

    @abc.abstractmethod
    async def open_contactors(self) -> None:
        """Open and prove it by feedback; raises :class:`ContactorError` when welded."""

    # lock ----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def lock_state(self) -> LockState: ...

    @abc.abstractmethod
    async def lock(self) -> None:
        """Lock the connector and prove it by feedback; raises :class:`LockError`."""

    @abc.abstractmethod
    async def unlock(self) -> None:
        """Unlock only when safe (contactors proven open, no current, output < 60 V);
        raises :class:`UnsafeToUnlock` or :class:`LockError`."""

    # meter ---------------------------------------------------------------
    @abc.abstractmethod
    async def read_meter(self, signed: bool = False) -> MeterReading:
        """Latest meter reading; ``signed=True`` asks for a signed value where supported."""

    def warm_up(self) -> None:
        """Load and run once, before the daemon is READY, what the board's first calls in a
        session would otherwise load (e.g. a meter that signs in software: its crypto
        library). Called in a worker thread by ``secc.session.warmup``; must not touch the
        hardware. Default: nothing (a real meter signs in its own hardware)."""

    # isolation -----------------------------------------------------------
    @abc.abstractmethod
    async def read_isolation(self) -> IsolationReading: ...

    @abc.abstractmethod
    async def start_insulation_test(self, voltage_v: float, token: int) -> None:
        """Start the cable check's insulation test at ``voltage_v`` (replaces any earlier one)."""

    @abc.abstractmethod
    def insulation_test(self) -> InsulationTest | None:
        """The last test started, with its progress; None if none was started."""

    # DC power module -----------------------------------------------------
    @property
    @abc.abstractmethod
    def dc_capabilities(self) -> DcCapabilities: ...

    @abc.abstractmethod
    async def set_dc_setpoint(self, voltage_v: float, current_a: float) -> None:
        """Target voltage and current (negative current: discharge, bidirectional only).
        Enables the module output."""

    @abc.abstractmethod
    async def dc_off(self) -> None:
        """Zero current and disable the module output."""

    @abc.abstractmethod
    async def read_dc_output(self) -> DcOutput: ...

    # misc ----------------------------------------------------------------
    @abc.abstractmethod
    async def read_temperatures(self) -> dict[str, float]:
        """Sensor name -> degrees Celsius."""

    @property
    @abc.abstractmethod
    def emergency_stop_active(self) -> bool: ...

    @abc.abstractmethod
    async def safe_state(self, reason: SafeStateReason) -> SafeStateReport:
        """Current to 0, contactors open, pilot X1 (normal end) or F (fault), lock released
        only when safe. Never raises; publishes :class:`SafeStateEntered`."""
