"""A simulated MCU firmware speaking hal/MCU_PROTOCOL.md, for tests and bring-up.

:class:`SimulatedMcu` is the firmware, sans-I/O: the protocol link (MCU role), the command
handlers, the heartbeat watchdog that forces the outputs safe, and a :class:`hal.sim.SimPlant`
as the hardware behind it. :class:`PtyMcu` runs it on the master side of a pseudo-terminal so a
:class:`hal.serial_board.SerialBoard` opens the slave side with pyserial, exactly as it would
open a real UART.

Bring-up without hardware: ``python -m hal.mcu_sim`` prints a device path; point a board
config's ``[serial].port`` at it.

Fault switches for tests: ``faults.drop_rx`` / ``faults.corrupt_tx`` (lost frames, CRC errors),
``silent`` (the MCU's transmit path is dead: it still hears the host, nothing it sends
arrives), :meth:`SimulatedMcu.reboot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tty
from collections.abc import Callable

from hal.board import IsolationState, LockState
from hal.mcu_protocol import (
    NO_RESISTANCE,
    PILOT_CODES,
    FaultPlan,
    Hello,
    LinkLost,
    LinkTiming,
    LinkUp,
    McuLink,
    MessageReceived,
    MsgType,
    NakReason,
    PayloadError,
    SetDc,
    SignedMeter,
    Status,
    StatusFlag,
    decode_u8,
    decode_u16,
)
from hal.pilot import PilotSignal
from hal.sim import SimPlant, isolation_state

_ISOLATION_CODES = {IsolationState.VALID: 0, IsolationState.WARNING: 1,
                    IsolationState.FAULT: 2, IsolationState.NOT_MEASURED: 3}


class Refused(Exception):
    """The firmware will not do this now (emergency stop, latched safe state)."""


class SimulatedMcu:
    """The firmware. Drive it with ``receive_bytes`` / ``handle_timer``; read ``data_to_send``."""

    def __init__(self, plant: SimPlant | None = None, *, boot_counter: int = 1,
                 status_period_s: float = 0.05, tick_s: float = 0.01,
                 rated_voltage_v: float = 1000.0, firmware: str = "pysecc-mcu-sim 1") -> None:
        self.plant = plant or SimPlant()
        self.boot_counter = boot_counter
        self.status_period_s = status_period_s
        self.tick_s = tick_s
        self.rated_voltage_v = rated_voltage_v
        self.firmware = firmware
        self.faults = FaultPlan()
        self.silent = False
        self.latched_safe = False
        self.watchdog_trips: list[float] = []     # when the heartbeat watchdog fired
        self.commands: list[tuple[int, bytes]] = []   # every command executed (tests)
        self._last_step: float | None = None
        self._next_status = 0.0
        self._last_discrete: tuple | None = None
        self.link = self._new_link()
        self._handlers: dict[int, Callable[[bytes], None]] = {
            MsgType.SET_PWM: self._set_pwm,
            MsgType.SET_CONTACTORS: self._set_contactors,
            MsgType.SET_LOCK: self._set_lock,
            MsgType.SET_DC: self._set_dc,
            MsgType.ENTER_SAFE_STATE: self._enter_safe_state,
            MsgType.REQ_SIGNED_METER: self._signed_meter,
        }

    def _new_link(self) -> McuLink:
        hello = Hello(self.boot_counter, self.firmware, tuple(self.plant.temperatures))
        return McuLink("mcu", LinkTiming(), hello)

    # ------------------------------------------------------------------ lifecycle
    def boot(self, now: float) -> None:
        """Power-on: outputs safe, HELLO out."""
        self.plant.safe_outputs()
        self.latched_safe = False
        self._last_step = now
        self._next_status = now
        self.link.start(now)

    def reboot(self, now: float) -> None:
        """A watchdog/brown-out reset: new boot counter, fresh link state, outputs safe."""
        self.boot_counter += 1
        self.link = self._new_link()
        self._last_discrete = None
        self.boot(now)

    # ------------------------------------------------------------------ sans-I/O driving
    def receive_bytes(self, data: bytes, now: float) -> None:
        self.link.receive_bytes(self.faults.filter_rx(data), now)
        self._process_events(now)

    def handle_timer(self, now: float) -> None:
        if self._last_step is not None and now > self._last_step:
            self.plant.step(now - self._last_step)
            self._last_step = now
        self.link.handle_timer(now)
        self._process_events(now)
        status = self._status()
        discrete = (status.pilot_raw, status.flags, status.isolation_state)
        if now >= self._next_status or discrete != self._last_discrete:
            self._last_discrete = discrete
            self._next_status = now + self.status_period_s
            self.link.send(MsgType.STATUS, status.encode(), reliable=False)

    def next_deadline(self) -> float:
        candidates = [self._next_status, (self._last_step or 0.0) + self.tick_s]
        link_deadline = self.link.next_deadline()
        if link_deadline is not None:
            candidates.append(link_deadline)
        return min(candidates)

    def data_to_send(self, now: float) -> bytes:
        if self.silent:
            self.link.data_to_send(now)          # frames produced, but the TX line is dead
            return b""
        return self.faults.filter_tx(self.link.data_to_send(now))

    # ------------------------------------------------------------------ events
    def _process_events(self, now: float) -> None:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, LinkUp):
                self.latched_safe = False
            elif isinstance(event, LinkLost):
                self.plant.safe_outputs()         # heartbeat watchdog: contactors open now
                self.latched_safe = True
                self.watchdog_trips.append(now)
            elif isinstance(event, MessageReceived) and event.seq:
                self._execute(event)
            elif isinstance(event, MessageReceived) and event.type == MsgType.ENTER_SAFE_STATE:
                self.plant.safe_outputs()         # the host's blind request after link loss

    def _execute(self, message: MessageReceived) -> None:
        handler = self._handlers.get(message.type)
        if handler is None:
            self.link.answer(message.seq, NakReason.UNKNOWN_TYPE)
            return
        try:
            handler(message.payload)
        except PayloadError:
            self.link.answer(message.seq, NakReason.BAD_PAYLOAD)
            return
        except Refused:
            self.link.answer(message.seq, NakReason.REFUSED)
            return
        self.commands.append((message.type, message.payload))
        self.link.answer(message.seq)
        if message.type == MsgType.REQ_SIGNED_METER:
            meter = self.plant.signed_reading()
            reply = SignedMeter(meter.format, meter.data, meter.public_key or b"")
            self.link.send(MsgType.SIGNED_METER, reply.encode())

    def _refuse_energising(self) -> None:
        if self.plant.emergency_stop:
            raise Refused("emergency stop")
        if self.latched_safe:
            raise Refused("safe state latched until HELLO_REQ")

    # ------------------------------------------------------------------ command handlers
    def _set_pwm(self, payload: bytes) -> None:
        permille = decode_u16(payload)
        signal = PilotSignal.from_permille(permille)
        if signal.kind.value == "pwm":
            self._refuse_energising()
        self.plant.pilot_signal = signal

    def _set_contactors(self, payload: bytes) -> None:
        closed = bool(decode_u8(payload))
        if closed:
            self._refuse_energising()
        self.plant.command_contactors(closed)

    def _set_lock(self, payload: bytes) -> None:
        self.plant.command_lock(bool(decode_u8(payload)))

    def _set_dc(self, payload: bytes) -> None:
        setpoint = SetDc.decode(payload)
        if setpoint.enabled:
            self._refuse_energising()
        self.plant.command_dc(setpoint.voltage_mv / 1000, setpoint.current_ma / 1000,
                              setpoint.enabled)

    def _enter_safe_state(self, payload: bytes) -> None:
        if payload:
            raise PayloadError("ENTER_SAFE_STATE has no payload")
        self.plant.safe_outputs()

    def _signed_meter(self, payload: bytes) -> None:
        if payload:
            raise PayloadError("REQ_SIGNED_METER has no payload")

    # ------------------------------------------------------------------ status
    def _status(self) -> Status:
        p = self.plant
        flags = StatusFlag(0)
        if p.contactors_feedback:
            flags |= StatusFlag.CONTACTORS_CLOSED
        if p.contactors_command:
            flags |= StatusFlag.CONTACTORS_COMMANDED
        if p.emergency_stop:
            flags |= StatusFlag.EMERGENCY_STOP
        if p.lock_feedback is LockState.LOCKED:
            flags |= StatusFlag.LOCK_LOCKED
        elif p.lock_feedback is LockState.UNLOCKED:
            flags |= StatusFlag.LOCK_UNLOCKED
        if p.dc_enabled:
            flags |= StatusFlag.DC_ENABLED
        if self.latched_safe:
            flags |= StatusFlag.MCU_SAFE_STATE
        ohm = p.isolation_resistance_ohm
        return Status(
            pilot_raw=PILOT_CODES.index(p.pilot_raw.value),
            flags=flags,
            pwm_permille=p.pilot_signal.duty_permille,
            voltage_mv=round(p.output_voltage_v * 1000),
            current_ma=round(p.output_current_a * 1000),
            isolation_ohm=NO_RESISTANCE if ohm is None else min(round(ohm), NO_RESISTANCE - 1),
            isolation_state=_ISOLATION_CODES[isolation_state(ohm, self.rated_voltage_v)],
            energy_import_wh_milli=round(p.energy_import_wh * 1000),
            energy_export_wh_milli=round(p.energy_export_wh * 1000),
            temperatures_decidegc=tuple(round(t * 10) for t in p.temperatures.values()),
        )


class PtyMcu:
    """Runs a :class:`SimulatedMcu` on a file descriptor (the master side of a pty)."""

    def __init__(self, mcu: SimulatedMcu, fd: int) -> None:
        self.mcu = mcu
        self.fd = fd
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._reading = False

    @classmethod
    def open_pty(cls, mcu: SimulatedMcu) -> tuple[PtyMcu, str, int]:
        """A new pty in raw mode: (runner on the master, slave device path, slave fd).

        Keep the slave fd open while the test runs: with no slave open, reads on the master
        fail with EIO.
        """
        master, slave = os.openpty()
        tty.setraw(slave)          # no echo, no line discipline before pyserial opens it
        os.set_blocking(master, False)
        return cls(mcu, master), os.ttyname(slave), slave

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.mcu.boot(loop.time())
        self._add_reader()
        self._task = loop.create_task(self._timers())

    def _add_reader(self) -> None:
        asyncio.get_running_loop().add_reader(self.fd, self._readable)
        self._reading = True

    def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:            # EIO: nobody has the slave open; retry from the timer task
            loop.remove_reader(self.fd)
            self._reading = False
            return
        self.mcu.receive_bytes(data, loop.time())
        self._flush()
        self._wake.set()

    def _flush(self) -> None:
        data = self.mcu.data_to_send(asyncio.get_running_loop().time())
        if data:
            with contextlib.suppress(BlockingIOError, OSError):   # a UART nobody reads
                os.write(self.fd, data)

    async def _timers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.mcu.handle_timer(now)
            self._flush()
            if not self._reading:
                self._add_reader()
            delay = max(0.001, self.mcu.next_deadline() - loop.time())
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow our cancellation
            # when the wake-up and the cancel coincide, and close() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._reading:
            asyncio.get_running_loop().remove_reader(self.fd)
            self._reading = False

    def reboot(self) -> None:
        self.mcu.reboot(asyncio.get_running_loop().time())
        self._flush()


async def _serve_forever() -> None:
    runner, path, _slave = PtyMcu.open_pty(SimulatedMcu())
    await runner.start()
    print(f"simulated MCU on {path} (Ctrl-C to stop)", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever())
    sys.exit(0)
