"""Safety policy shared by every board implementation.

:class:`BaseBoard` implements the public :class:`hal.board.Board` API once: feedback checks
(contactor welding, lock), unlock rules, DC set-point validation, the safe-state sequence and
the automatic reactions to dangerous events. A concrete board (simulated, serial MCU, GPIO)
only provides the ``_drive_*`` primitives and the raw readings, and feeds raw inputs to the
``_input_*`` hooks; the policy is tested once, against the simulated board.
"""

from __future__ import annotations

import logging

import abc
import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from hal.board import (
    Board,
    BoardError,
    BoardEvent,
    BoardLinkChanged,
    ContactorError,
    ContactorFault,
    ContactorFaultKind,
    DcCapabilities,
    DcOutput,
    EmergencyStopChanged,
    EventHub,
    InsulationTest,
    IsolationChanged,
    IsolationReading,
    IsolationState,
    LockError,
    LockFault,
    LockFaultKind,
    LockState,
    McuReset,
    OverTemperature,
    PilotStateChanged,
    SafeStateEntered,
    SafeStateReason,
    SafeStateReport,
    SafetyLimits,
    SetpointOutOfRange,
    UnsafeToUnlock,
)
from hal.pilot import PilotDebouncer, PilotSignal, PilotState

log = logging.getLogger("pysecc.hal")  # the "hal" layer of secc.common.logs


class BaseBoard(Board):
    """The policy half of a board; subclasses provide hardware primitives."""

    def __init__(
        self,
        *,
        capabilities: DcCapabilities,
        limits: SafetyLimits = SafetyLimits(),
        pilot_debounce_s: float = 0.03,
        auto_safe_state: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capabilities = capabilities
        self.limits = limits
        self.auto_safe_state = auto_safe_state
        self._clock = clock
        self._hub = EventHub()
        self._debouncer = PilotDebouncer(pilot_debounce_s)
        self._signal = PilotSignal.x1()
        self._contactors_commanded = False
        self._commanding_contactors = False
        self._last_contactor_feedback: bool | None = False
        self._estop = False
        self._isolation_state = IsolationState.NOT_MEASURED
        self._isolation_reading: IsolationReading | None = None
        self._insulation_test: InsulationTest | None = None
        self._hot_sensors: set[str] = set()
        self._in_safe_state = False
        self._safe_state_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self.last_safe_state: SafeStateReport | None = None
        # set instead of running when an event arrives outside an event loop (pure tests)
        self.pending_safe_state: SafeStateReason | None = None
        # The supervisor sees every event first, before queues and other listeners.
        self._hub.add_listener(self._supervise)

    # ------------------------------------------------------------------ primitives
    @abc.abstractmethod
    async def _drive_pilot(self, signal: PilotSignal) -> None: ...

    @abc.abstractmethod
    async def _drive_contactors(self, closed: bool) -> None: ...

    @abc.abstractmethod
    def _contactor_feedback(self) -> bool | None: ...

    @abc.abstractmethod
    async def _drive_lock(self, locked: bool) -> None: ...

    @abc.abstractmethod
    def _lock_feedback(self) -> LockState: ...

    @abc.abstractmethod
    async def _drive_dc(self, voltage_v: float, current_a: float, enabled: bool) -> None: ...

    @abc.abstractmethod
    def _output_present(self) -> DcOutput:
        """Voltage and current at the output (cable side); for AC boards the RMS values."""

    async def _wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for hardware feedback. Real boards sleep; the simulated board simulates."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if predicate():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(0.005, remaining))

    # ------------------------------------------------------------------ input hooks
    def _input_pilot(self, raw: PilotState, now: float) -> None:
        self._publish_pilot(self._debouncer.sample(raw, now), now)

    def _input_timers(self, now: float) -> None:
        self._publish_pilot(self._debouncer.poll(now), now)

    def _next_deadline(self) -> float | None:
        return self._debouncer.deadline()

    def _publish_pilot(self, change: tuple[PilotState, PilotState] | None, now: float) -> None:
        if change is not None:
            log.info("pilot state", extra={"previous": change[0].value, "state": change[1].value})
            self._hub.publish(PilotStateChanged(at=now, previous=change[0], state=change[1]))

    def _input_emergency_stop(self, active: bool, now: float) -> None:
        if active != self._estop:
            self._estop = active
            log.warning("emergency stop", extra={"active": active})
            self._hub.publish(EmergencyStopChanged(at=now, active=active))

    def _input_isolation(self, reading: IsolationReading) -> None:
        self._isolation_reading = reading
        self._follow_insulation_test(reading.at)
        if reading.state != self._isolation_state:
            self._isolation_state = reading.state
            log.info("isolation", extra={"state": reading.state.value,
                                         "ohm": reading.resistance_ohm})
            self._hub.publish(IsolationChanged(at=reading.at, reading=reading))

    def _input_temperatures(self, readings: dict[str, float], now: float) -> None:
        """Publish OverTemperature when a sensor crosses the limit (and when it cools down
        below limit - hysteresis)."""
        limit = self.limits.max_temperature_c
        for sensor, celsius in readings.items():
            if sensor not in self._hot_sensors and celsius > limit:
                self._hot_sensors.add(sensor)
                log.error("over temperature", extra={"sensor": sensor, "celsius": celsius})
                self._hub.publish(OverTemperature(at=now, sensor=sensor, celsius=celsius,
                                                  active=True))
            elif (sensor in self._hot_sensors
                  and celsius < limit - self.limits.temperature_hysteresis_c):
                self._hot_sensors.discard(sensor)
                self._hub.publish(OverTemperature(at=now, sensor=sensor, celsius=celsius,
                                                  active=False))

    def _input_contactor_feedback(self, closed: bool | None, now: float) -> None:
        """Detect contactors changing on their own (not while a command waits for them)."""
        previous, self._last_contactor_feedback = self._last_contactor_feedback, closed
        if self._commanding_contactors or closed == previous or closed is None:
            return
        if self._contactors_commanded and not closed:
            self._publish_contactor_fault(ContactorFaultKind.UNEXPECTED_OPEN, now)
        elif not self._contactors_commanded and closed:
            self._publish_contactor_fault(ContactorFaultKind.WELDED, now)

    def _publish(self, event: BoardEvent) -> None:
        self._hub.publish(event)

    def _publish_contactor_fault(self, kind: ContactorFaultKind, now: float) -> None:
        log.error("contactor fault", extra={"kind": kind.value})
        self._hub.publish(ContactorFault(at=now, kind=kind))

    # ------------------------------------------------------------------ supervisor
    def _supervise(self, event: BoardEvent) -> None:
        reason = self._reason_for(event)
        if reason is None or not self.auto_safe_state or self._in_safe_state:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:   # published from sync code outside a loop (pure tests)
            self.pending_safe_state = reason
            return
        task = loop.create_task(self.safe_state(reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reason_for(self, event: BoardEvent) -> SafeStateReason | None:
        """The one table of events the board answers by itself with the safe state."""
        if isinstance(event, EmergencyStopChanged) and event.active:
            return SafeStateReason.EMERGENCY_STOP
        if isinstance(event, IsolationChanged) and event.reading.state is IsolationState.FAULT:
            return SafeStateReason.ISOLATION_FAULT
        if isinstance(event, ContactorFault):
            return SafeStateReason.CONTACTOR_FAULT
        if isinstance(event, OverTemperature) and event.active:
            return SafeStateReason.OVER_TEMPERATURE
        if isinstance(event, BoardLinkChanged) and not event.up:
            return SafeStateReason.LINK_LOST
        if isinstance(event, McuReset):
            return SafeStateReason.MCU_RESET
        if isinstance(event, PilotStateChanged):
            if event.state is PilotState.E:
                return SafeStateReason.PILOT_FAULT
            if event.state is PilotState.A and (self._contactors_commanded
                                                or self._contactor_feedback()):
                return SafeStateReason.EV_UNPLUGGED
        return None

    async def wait_background(self) -> None:
        """Wait for automatic safe-state runs started by events (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ events API
    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[BoardEvent]:
        return self._hub.subscribe(maxsize)

    def unsubscribe(self, queue: asyncio.Queue[BoardEvent]) -> None:
        self._hub.unsubscribe(queue)

    def add_listener(self, callback: Callable[[BoardEvent], None]) -> None:
        self._hub.add_listener(callback)

    # ------------------------------------------------------------------ pilot
    @property
    def pilot_state(self) -> PilotState:
        return self._debouncer.state

    @property
    def pilot_signal(self) -> PilotSignal:
        return self._signal

    async def set_pilot(self, signal: PilotSignal) -> None:
        if signal.kind.value == "pwm" and (self._estop or self._in_fault()):
            raise BoardError("PWM refused: emergency stop, isolation fault or over-temperature")
        await self._drive_pilot(signal)
        self._signal = signal
        log.info("pilot signal", extra={"kind": signal.kind.value, "duty": signal.duty_percent})

    # ------------------------------------------------------------------ contactors
    @property
    def contactors_closed(self) -> bool | None:
        return self._contactor_feedback()

    def _in_fault(self) -> bool:
        """Conditions under which nothing may be energised."""
        return self._isolation_state is IsolationState.FAULT or bool(self._hot_sensors)

    async def close_contactors(self) -> None:
        if self._estop:
            raise ContactorError("close refused: emergency stop active")
        if self._in_fault():
            raise ContactorError("close refused: isolation fault or over-temperature")
        self._commanding_contactors = True
        try:
            self._contactors_commanded = True
            await self._drive_contactors(True)
            ok = await self._wait_until(lambda: self._contactor_feedback() is True,
                                        self.limits.contactor_feedback_timeout_s)
            if not ok:
                self._contactors_commanded = False
                await self._drive_contactors(False)
        finally:
            self._commanding_contactors = False
            self._last_contactor_feedback = self._contactor_feedback()
        if not ok:
            self._publish_contactor_fault(ContactorFaultKind.FAILED_TO_CLOSE, self._clock())
            raise ContactorError("contactors did not close (feedback stays open)")

    async def open_contactors(self) -> None:
        self._commanding_contactors = True
        try:
            self._contactors_commanded = False
            await self._drive_contactors(False)
            ok = await self._wait_until(lambda: self._contactor_feedback() is False,
                                        self.limits.contactor_feedback_timeout_s)
        finally:
            self._commanding_contactors = False
            self._last_contactor_feedback = self._contactor_feedback()
        if not ok:
            self._publish_contactor_fault(ContactorFaultKind.WELDED, self._clock())
            raise ContactorError("contactor welded: feedback stays closed after open command")

    # ------------------------------------------------------------------ lock
    @property
    def lock_state(self) -> LockState:
        return self._lock_feedback()

    async def lock(self) -> None:
        await self._drive_lock(True)
        if not await self._wait_until(lambda: self._lock_feedback() is LockState.LOCKED,
                                      self.limits.lock_feedback_timeout_s):
            self._publish(LockFault(at=self._clock(), kind=LockFaultKind.FAILED_TO_LOCK))
            raise LockError("connector lock did not report locked")

    def unlock_blockers(self) -> list[str]:
        """Why unlocking is unsafe right now (empty list: safe)."""
        blockers = []
        if self._contactor_feedback() is not False:
            blockers.append("contactors not proven open")
        present = self._output_present()
        if abs(present.current_a) > self.limits.unlock_max_current_a:
            blockers.append(f"current {present.current_a:.1f} A flowing")
        if abs(present.voltage_v) > self.limits.unlock_max_voltage_v:
            blockers.append(f"output at {present.voltage_v:.0f} V")
        return blockers

    async def unlock(self) -> None:
        blockers = self.unlock_blockers()
        if blockers:
            raise UnsafeToUnlock("; ".join(blockers))
        await self._drive_lock(False)
        if not await self._wait_until(lambda: self._lock_feedback() is LockState.UNLOCKED,
                                      self.limits.lock_feedback_timeout_s):
            self._publish(LockFault(at=self._clock(), kind=LockFaultKind.FAILED_TO_UNLOCK))
            raise LockError("connector lock did not report unlocked")

    # ------------------------------------------------------------------ DC module
    @property
    def dc_capabilities(self) -> DcCapabilities:
        return self._capabilities

    def check_setpoint(self, voltage_v: float, current_a: float) -> None:
        """Raise :class:`SetpointOutOfRange` unless the module can deliver this set-point."""
        cap = self._capabilities
        if not 0.0 <= voltage_v <= cap.max_voltage_v:
            raise SetpointOutOfRange(f"voltage {voltage_v} V outside 0..{cap.max_voltage_v} V")
        if current_a > cap.max_current_a:
            raise SetpointOutOfRange(f"current {current_a} A above {cap.max_current_a} A")
        if current_a < 0 and not cap.bidirectional:
            raise SetpointOutOfRange("negative current on a unidirectional power module")
        if current_a < -cap.max_discharge_current_a:
            raise SetpointOutOfRange(
                f"discharge {-current_a} A above {cap.max_discharge_current_a} A")
        power = voltage_v * current_a
        if power > cap.max_power_w:
            raise SetpointOutOfRange(f"power {power:.0f} W above {cap.max_power_w} W")
        if -power > cap.max_discharge_power_w and current_a < 0:
            raise SetpointOutOfRange(
                f"discharge power {-power:.0f} W above {cap.max_discharge_power_w} W")

    async def set_dc_setpoint(self, voltage_v: float, current_a: float) -> None:
        self.check_setpoint(voltage_v, current_a)
        if self._estop or self._in_fault():
            raise BoardError(
                "set-point refused: emergency stop, isolation fault or over-temperature")
        test = self._insulation_test
        if test is not None and voltage_v != test.voltage_v:
            self._abort_insulation_test(f"set-point changed to {voltage_v} V")
        await self._drive_dc(voltage_v, current_a, True)

    async def dc_off(self) -> None:
        self._abort_insulation_test("output switched off")
        await self._drive_dc(0.0, 0.0, False)

    # ------------------------------------------------------------------ insulation test
    async def start_insulation_test(self, voltage_v: float, token: int) -> None:
        """Drive the output to the test voltage at a small current (the cable and inlet only
        need charging) and follow the test in :meth:`insulation_test`."""
        await self.set_dc_setpoint(voltage_v, min(1.0, self._capabilities.max_current_a))
        self._insulation_test = InsulationTest(token=token, voltage_v=voltage_v,
                                               started_at=self._clock())
        log.info("insulation test started", extra={"voltage": voltage_v, "token": token})

    def _abort_insulation_test(self, why: str) -> None:
        test = self._insulation_test
        if test is not None and not test.complete:
            log.warning("insulation test aborted", extra={"token": test.token, "why": why})
            self._insulation_test = None

    def insulation_test(self) -> InsulationTest | None:
        self._follow_insulation_test(self._clock())
        return self._insulation_test

    def _follow_insulation_test(self, now: float) -> None:
        """Advance the running test from the present output voltage and the latest reading:
        the hold restarts whenever the output leaves the test voltage."""
        test = self._insulation_test
        if test is None or test.complete:
            return
        reading = self._isolation_reading
        if (reading is not None and reading.state is IsolationState.FAULT
                and reading.at >= test.started_at):
            self._insulation_test = replace(test, complete=True, state=reading.state,
                                            resistance_ohm=reading.resistance_ohm)
            log.warning("insulation test failed", extra={"token": test.token,
                                                         "ohm": reading.resistance_ohm})
            return
        held = (self._output_present().voltage_v
                >= self.limits.insulation_test_voltage_fraction * test.voltage_v)
        if not held:
            if test.held_since is not None:
                self._insulation_test = replace(test, held_since=None)
            return
        if test.held_since is None:
            test = self._insulation_test = replace(test, held_since=now)
        if reading is None or reading.at < test.held_since:
            return     # no measurement at the test voltage yet
        held_long = now - test.held_since >= self.limits.insulation_test_hold_s
        if held_long and reading.state in (IsolationState.VALID, IsolationState.WARNING):
            self._insulation_test = replace(test, complete=True, state=reading.state,
                                            resistance_ohm=reading.resistance_ohm)
            log.info("insulation test complete", extra={
                "token": test.token, "state": reading.state.value,
                "ohm": reading.resistance_ohm, "held_s": round(now - test.held_since, 3)})

    async def read_dc_output(self) -> DcOutput:
        return self._output_present()

    # ------------------------------------------------------------------ e-stop
    @property
    def emergency_stop_active(self) -> bool:
        return self._estop

    # ------------------------------------------------------------------ safe state
    async def safe_state(self, reason: SafeStateReason) -> SafeStateReport:
        if self._safe_state_lock is None:
            self._safe_state_lock = asyncio.Lock()
        async with self._safe_state_lock:
            self._in_safe_state = True
            try:
                report = await self._safe_state_sequence(reason)
            finally:
                self._in_safe_state = False
        self.last_safe_state = report
        log.warning("safe state", extra={"reason": reason.value, "safe": report.safe,
                                         "unlocked": report.unlocked,
                                         "problems": "; ".join(report.problems)})
        self._publish(SafeStateEntered(at=self._clock(), report=report))
        return report

    async def _safe_state_sequence(self, reason: SafeStateReason) -> SafeStateReport:
        """Current to zero, pilot X1/F (the EV stops drawing), contactors open, lock last."""
        problems: list[str] = []
        limits = self.limits

        async def attempt(what: str, step: Callable[[], object]) -> bool:
            try:
                await step()  # type: ignore[misc]
                return True
            except BoardError as exc:
                problems.append(f"{what}: {exc}")
                return False

        await attempt("power module off", self.dc_off)
        signal = PilotSignal.state_f() if reason.is_fault else PilotSignal.x1()
        pilot_ok = await attempt("pilot", lambda: self._apply_safe_pilot(signal))
        current_zeroed = await self._wait_until(
            lambda: abs(self._output_present().current_a) <= limits.unlock_max_current_a,
            limits.current_ramp_down_timeout_s)
        if not current_zeroed:
            problems.append("current did not fall to zero in time")
        await attempt("open contactors", self.open_contactors)
        feedback = self._contactor_feedback()
        welded = feedback is True
        unlocked = self._lock_feedback() is LockState.UNLOCKED
        if not unlocked and feedback is False:
            await self._wait_until(
                lambda: abs(self._output_present().voltage_v) <= limits.unlock_max_voltage_v,
                limits.discharge_timeout_s)
            unlocked = await attempt("unlock", self.unlock)
        elif not unlocked:
            problems.append("lock kept: contactors not proven open")
        return SafeStateReport(
            reason=reason,
            pilot=signal if pilot_ok else None,
            current_zeroed=current_zeroed,
            contactors_open=feedback is False,
            welded=welded,
            unlocked=unlocked,
            residual_voltage_v=self._output_present().voltage_v,
            problems=tuple(problems),
        )

    async def _apply_safe_pilot(self, signal: PilotSignal) -> None:
        await self._drive_pilot(signal)   # bypasses the PWM refusal: X1/F are always allowed
        self._signal = signal
