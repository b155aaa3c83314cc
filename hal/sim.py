"""The simulated board: deterministic hardware plus a scriptable EV side.

Two halves:

* :class:`SimPlant` — the physics and the fault switches: pilot as the EV pulls it, contactors
  (with welding / fail-to-close), lock motor (with jamming), DC power module charging a
  capacitive EV inlet (CableCheck, PreCharge) or feeding the battery once the EV closes its own
  contactors (CurrentDemand), AC basic charging, isolation resistance, meter with an OCMF
  signed reading, temperatures, emergency stop. Pure: advanced by ``step(dt)``. The simulated
  MCU (``hal/mcu_sim.py``) reuses it.
* :class:`SimBoard` — the :class:`hal.board.Board` over the plant.

Time: by default the board runs on *virtual* time. Nothing moves unless :meth:`SimBoard.advance`
is called, and when a command waits for feedback (e.g. safe state waiting for the output to
bleed below 60 V) the board simulates forward instead of sleeping: tests are instant and exactly
repeatable. ``SimBoard(realtime=True)`` instead follows the event loop clock (the EV simulator
and the demo): :meth:`start` runs a task that advances the plant every ``tick_s``.

The EV simulator and tests script the EV side and faults with the ``ev_*``, ``inject_*`` and
``press/release_emergency_stop`` methods.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hal.base import BaseBoard
from hal.board import (
    DcCapabilities,
    DcOutput,
    IsolationReading,
    IsolationState,
    LockState,
    MeterReading,
    SafeStateReason,
    SafetyLimits,
    SignedMeterValue,
)
from hal.pilot import HLC_DUTY_PERCENT, PilotSignal, PilotSignalKind, PilotState, current_for_duty

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

OCMF_EPOCH = 1767225600.0          # 2026-01-01T00:00:00Z: virtual t=0 in signed readings


@functools.cache
def _sim_meter_key() -> ec.EllipticCurvePrivateKey:
    """The simulated meter's fixed P-256 key. ``cryptography`` (~12 MB of RSS) is imported
    here, at the first signed reading, not with the board: a daemon whose meter does not
    sign never loads it (``SimBoard.warm_up`` loads it before READY when it does)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.derive_private_key(0x5EC5_1A1B_0A2D, ec.SECP256R1())


def isolation_state(resistance_ohm: float | None, rated_voltage_v: float,
                    warning_ohm_per_v: float = 500.0,
                    fault_ohm_per_v: float = 100.0) -> IsolationState:
    """IEC 61851-23 style thresholds, scaled by the output's rated voltage."""
    if resistance_ohm is None:
        return IsolationState.NOT_MEASURED
    if resistance_ohm < fault_ohm_per_v * rated_voltage_v:
        return IsolationState.FAULT
    if resistance_ohm < warning_ohm_per_v * rated_voltage_v:
        return IsolationState.WARNING
    return IsolationState.VALID


def _towards(value: float, target: float, max_step: float) -> float:
    if abs(target - value) <= max_step:
        return target
    return value + math.copysign(max_step, target - value)


@dataclass
class SimPlant:
    """Hardware + EV physics. Every attribute is plain state a script may read or set."""

    # EV side (scripted)
    pilot_raw: PilotState = PilotState.A
    ev_contactors_closed: bool = False      # EV battery connected to the inlet
    ev_battery_voltage_v: float = 400.0
    ev_internal_resistance_ohm: float = 0.05
    ev_ac_current_draw_a: float = 16.0      # what an AC car would take if the duty allows
    # EVSE outputs and their feedback
    pilot_signal: PilotSignal = field(default_factory=PilotSignal.x1)
    contactors_command: bool = False
    contactors_feedback: bool = False
    lock_feedback: LockState = LockState.UNLOCKED
    dc_enabled: bool = False
    dc_target_voltage_v: float = 0.0
    dc_target_current_a: float = 0.0
    output_voltage_v: float = 0.0
    output_current_a: float = 0.0
    # model constants
    ac: bool = False                        # AC board: mains through the contactors
    meter_signs: bool = True                # the meter signs readings asked for signed (OCMF)
    mains_voltage_v: float = 230.0
    inlet_capacitance_f: float = 0.002      # cable + EV inlet X-capacitors
    voltage_slew_v_per_s: float = 1000.0    # power module voltage ramp
    current_slew_a_per_s: float = 200.0
    bleed_time_constant_s: float = 0.15     # output discharge resistor with contactors open
    # faults (scripted)
    welded: bool = False
    contactor_fails_to_close: bool = False
    lock_jammed: bool = False
    emergency_stop: bool = False
    isolation_resistance_ohm: float | None = 10e6
    output_voltage_cap_v: float | None = None   # power module fault: cannot go above this
    # insulation monitor: measures every imd_period_s; a reading keeps the time it was taken
    imd_period_s: float = 0.2
    imd_resistance_ohm: float | None = 10e6     # last measurement (from before: stale)
    imd_measured_at: float = 0.0
    # meter and sensors
    energy_import_wh: float = 0.0
    energy_export_wh: float = 0.0
    temperatures: dict[str, float] = field(
        default_factory=lambda: {"connector": 25.0, "power_module": 30.0})
    now: float = 0.0

    # -- commands from the EVSE side
    def command_contactors(self, closed: bool) -> None:
        self.contactors_command = closed
        if closed and not self.contactor_fails_to_close:
            self.contactors_feedback = True
        elif not closed and not self.welded:
            self.contactors_feedback = False

    def command_lock(self, locked: bool) -> None:
        if not self.lock_jammed:
            self.lock_feedback = LockState.LOCKED if locked else LockState.UNLOCKED

    def command_dc(self, voltage_v: float, current_a: float, enabled: bool) -> None:
        self.dc_target_voltage_v = voltage_v
        self.dc_target_current_a = current_a
        self.dc_enabled = enabled

    def safe_outputs(self) -> None:
        """What the MCU does by itself on heartbeat loss: module off, contactors open, F."""
        self.command_dc(0.0, 0.0, False)
        self.command_contactors(False)
        self.pilot_signal = PilotSignal.state_f()

    # -- physics
    def measure_isolation(self) -> None:
        self.imd_resistance_ohm = self.isolation_resistance_ohm
        self.imd_measured_at = self.now

    def step(self, dt: float) -> None:
        self.now += dt
        if dt <= 0:
            return
        if self.now - self.imd_measured_at >= self.imd_period_s - 1e-9:
            self.measure_isolation()
        if self.ac:
            self._step_ac()
        else:
            self._step_dc(dt)
        power = self.output_voltage_v * self.output_current_a
        if power >= 0:
            self.energy_import_wh += power * dt / 3600.0
        else:
            self.energy_export_wh += -power * dt / 3600.0

    def _step_ac(self) -> None:
        closed = self.contactors_feedback
        self.output_voltage_v = self.mains_voltage_v if closed else 0.0
        allowed = None
        if self.pilot_signal.kind is PilotSignalKind.PWM:
            allowed = current_for_duty(self.pilot_signal.duty_percent)
            if allowed is None and self.pilot_signal.duty_percent <= HLC_DUTY_PERCENT:
                # 5 % = digital communication: the car takes what the V2G messages allow
                allowed = self.ev_ac_current_draw_a
        drawing = closed and self.pilot_raw.ev_ready and allowed is not None
        self.output_current_a = min(self.ev_ac_current_draw_a, allowed) if drawing else 0.0

    def _step_dc(self, dt: float) -> None:
        energised = self.contactors_feedback and self.dc_enabled
        if energised and self.ev_contactors_closed:
            # Battery load: current follows the set-point, limited by the voltage set-point.
            wanted = self.dc_target_current_a
            headroom = (self.dc_target_voltage_v - self.ev_battery_voltage_v)
            wanted = min(wanted, headroom / self.ev_internal_resistance_ohm)
            self.output_current_a = _towards(self.output_current_a, wanted,
                                             self.current_slew_a_per_s * dt)
            self.output_voltage_v = (self.ev_battery_voltage_v
                                     + self.output_current_a * self.ev_internal_resistance_ohm)
        elif energised:
            # Capacitive inlet (CableCheck / PreCharge): dV/dt = I / C, capped by the slew.
            limit = max(self.dc_target_current_a, 0.0)
            target_v = self.dc_target_voltage_v
            if self.output_voltage_cap_v is not None:
                target_v = min(target_v, self.output_voltage_cap_v)
            max_dv = min(limit / self.inlet_capacitance_f, self.voltage_slew_v_per_s) * dt
            if target_v < self.output_voltage_v:
                max_dv = self.voltage_slew_v_per_s * dt     # the module can sink to go down
            new_v = _towards(self.output_voltage_v, target_v, max_dv)
            self.output_current_a = self.inlet_capacitance_f * (new_v - self.output_voltage_v) / dt
            self.output_voltage_v = new_v
        else:
            self.output_current_a = 0.0
            if self.ev_contactors_closed:
                self.output_voltage_v = self.ev_battery_voltage_v
            else:
                self.output_voltage_v *= math.exp(-dt / self.bleed_time_constant_s)
                if self.output_voltage_v < 0.5:
                    self.output_voltage_v = 0.0

    # -- readings
    def meter(self, signed: bool) -> MeterReading:
        reading = MeterReading(
            energy_wh=round(self.energy_import_wh, 3),
            power_w=round(self.output_voltage_v * self.output_current_a, 3),
            voltage_v=round(self.output_voltage_v, 3),
            current_a=round(self.output_current_a, 3),
            at=self.now,
            energy_exported_wh=round(self.energy_export_wh, 3),
        )
        if not signed or not self.meter_signs:
            return reading
        return MeterReading(**{**reading.__dict__, "signed": self.signed_reading()})

    def signed_reading(self) -> SignedMeterValue:
        """An OCMF document signed with ECDSA P-256 (RFC 6979 deterministic nonces)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(OCMF_EPOCH + self.now))
        millis = int((self.now % 1) * 1000)
        payload = {
            "FV": "1.0", "GI": "pysecc simulated meter", "GS": "SIM-0001", "PG": "T1",
            "RD": [{"TM": f"{stamp},{millis:03d}+0000 S", "TX": "T",
                    "RV": round(self.energy_import_wh / 1000.0, 4), "RI": "1-b:1.8.0",
                    "RU": "kWh", "ST": "G"}],
        }
        body = json.dumps(payload, separators=(",", ":"))
        signature = _sim_meter_key().sign(
            body.encode(), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        sig = json.dumps({"SA": "ECDSA-secp256r1-SHA256", "SD": signature.hex().upper()},
                         separators=(",", ":"))
        public = _sim_meter_key().public_key().public_bytes(Encoding.DER,
                                                            PublicFormat.SubjectPublicKeyInfo)
        return SignedMeterValue(data=f"OCMF|{body}|{sig}".encode(), format="OCMF",
                                public_key=public)


def sim_meter_public_key() -> ec.EllipticCurvePublicKey:
    """The simulated meter's key, for tests that verify OCMF signatures."""
    return _sim_meter_key().public_key()


class SimBoard(BaseBoard):
    """A :class:`hal.board.Board` over a :class:`SimPlant`; see the module docstring."""

    def __init__(
        self,
        *,
        capabilities: DcCapabilities | None = None,
        limits: SafetyLimits = SafetyLimits(),
        pilot_debounce_s: float = 0.03,
        plant: SimPlant | None = None,
        realtime: bool = False,
        tick_s: float = 0.01,
        auto_safe_state: bool = True,
    ) -> None:
        self.plant = plant or SimPlant()
        self.realtime = realtime
        self.tick_s = tick_s
        self._task: asyncio.Task[None] | None = None
        self._loop_origin: float | None = None
        super().__init__(
            capabilities=capabilities or DcCapabilities(
                max_voltage_v=1000.0, max_current_a=200.0, max_power_w=150_000.0,
                min_voltage_v=150.0, max_discharge_current_a=0.0),
            limits=limits, pilot_debounce_s=pilot_debounce_s,
            auto_safe_state=auto_safe_state, clock=self._now)
        self._scan()

    def _now(self) -> float:
        return self.plant.now

    # ------------------------------------------------------------------ time
    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` of virtual time in ``tick_s`` steps, publishing events on the
        way (pilot debounce expiries land at their exact deadline)."""
        end = self.plant.now + seconds
        while self.plant.now < end - 1e-12:
            step = min(self.tick_s, end - self.plant.now)
            deadline = self._next_deadline()
            if deadline is not None and self.plant.now < deadline < self.plant.now + step:
                step = deadline - self.plant.now
            self.plant.step(step)
            self._scan()

    def _scan(self) -> None:
        """Feed the plant's raw signals to the shared policy (debounce, events)."""
        now = self.plant.now
        self._input_pilot(self.plant.pilot_raw, now)
        self._input_emergency_stop(self.plant.emergency_stop, now)
        self._input_isolation(self._isolation())
        self._input_contactor_feedback(self.plant.contactors_feedback, now)
        self._input_temperatures(self.plant.temperatures, now)
        self._input_timers(now)

    async def _wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        if self.realtime:
            return await super()._wait_until(predicate, timeout_s)
        end = self.plant.now + timeout_s
        while not predicate():
            if self.plant.now >= end - 1e-12:
                return False
            self.advance(min(self.tick_s, end - self.plant.now))
        return True

    async def start(self) -> None:
        if self.realtime and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            self.advance(now - last)
            last = now

    async def close(self) -> None:
        await self.wait_background()
        await self.safe_state(SafeStateReason.SHUTDOWN)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # ------------------------------------------------------------------ primitives
    async def _drive_pilot(self, signal: PilotSignal) -> None:
        self.plant.pilot_signal = signal

    async def _drive_contactors(self, closed: bool) -> None:
        self.plant.command_contactors(closed)

    def _contactor_feedback(self) -> bool | None:
        return self.plant.contactors_feedback

    async def _drive_lock(self, locked: bool) -> None:
        self.plant.command_lock(locked)

    def _lock_feedback(self) -> LockState:
        return self.plant.lock_feedback

    async def _drive_dc(self, voltage_v: float, current_a: float, enabled: bool) -> None:
        self.plant.command_dc(voltage_v, current_a, enabled)

    def _output_present(self) -> DcOutput:
        return DcOutput(self.plant.output_voltage_v, self.plant.output_current_a, self.plant.now)

    def _isolation(self) -> IsolationReading:
        """The monitor's last measurement, stamped with when it was taken."""
        ohm = self.plant.imd_resistance_ohm
        return IsolationReading(ohm, isolation_state(ohm, self._capabilities.max_voltage_v),
                                self.plant.imd_measured_at)

    # ------------------------------------------------------------------ readings
    async def read_meter(self, signed: bool = False) -> MeterReading:
        return self.plant.meter(signed)

    def warm_up(self) -> None:
        """A meter that signs: one signed reading now (loads ``cryptography``, derives the
        key), so the first Transaction.Begin of a session imports nothing."""
        if self.plant.meter_signs:
            self.plant.signed_reading()

    async def read_isolation(self) -> IsolationReading:
        return self._isolation()

    async def read_temperatures(self) -> dict[str, float]:
        return dict(self.plant.temperatures)

    # ------------------------------------------------------------------ scripting
    def ev_set_pilot(self, state: PilotState | str) -> None:
        """The EV pulls the pilot to ``state`` (raw; the board debounces it)."""
        self.plant.pilot_raw = PilotState(state)
        self._scan()

    def ev_close_contactors(self, closed: bool = True) -> None:
        self.plant.ev_contactors_closed = closed
        self._scan()

    def ev_set_battery_voltage(self, volts: float) -> None:
        self.plant.ev_battery_voltage_v = volts

    def inject_isolation_resistance(self, ohm: float | None) -> None:
        """The insulation resistance changes; the monitor measures it at once."""
        self.plant.isolation_resistance_ohm = ohm
        self.plant.measure_isolation()
        self._scan()

    def inject_output_voltage_cap(self, volts: float | None) -> None:
        """Power module fault: the output cannot rise above ``volts`` (None: healthy). An
        insulation test at a higher voltage then never holds its voltage, never completes."""
        self.plant.output_voltage_cap_v = volts

    def inject_welded_contactor(self, welded: bool = True) -> None:
        self.plant.welded = welded

    def inject_contactor_fails_to_close(self, fails: bool = True) -> None:
        self.plant.contactor_fails_to_close = fails

    def inject_lock_failure(self, jammed: bool = True) -> None:
        self.plant.lock_jammed = jammed

    def inject_meter_energy(self, energy_wh: float) -> None:
        self.plant.energy_import_wh = energy_wh

    def inject_temperature(self, sensor: str, celsius: float) -> None:
        self.plant.temperatures[sensor] = celsius
        self._scan()

    def press_emergency_stop(self) -> None:
        self.plant.emergency_stop = True
        self._scan()

    def release_emergency_stop(self) -> None:
        self.plant.emergency_stop = False
        self._scan()
