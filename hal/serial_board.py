"""A board whose hardware sits behind an MCU on a UART (hal/MCU_PROTOCOL.md).

pyserial at the edge only: the port is opened non-blocking and watched with
``loop.add_reader``; every byte goes through the sans-I/O :class:`hal.mcu_protocol.McuLink`.
The MCU's STATUS frames feed the shared policy in :class:`hal.base.BaseBoard` (pilot debounce,
feedback checks, events); commands are reliable frames whose ACK (or NAK) ends the ``await``.

Link loss (heartbeat silence or retries exhausted) publishes ``BoardLinkChanged(up=False)``
and the board's safe state runs at once; the MCU, missing our heartbeats, opens its contactors
by itself (the protocol's watchdog). A HELLO with a new boot counter publishes ``McuReset``.
"""

from __future__ import annotations

import logging

import asyncio
import contextlib
from collections.abc import Callable

import serial

from hal.base import BaseBoard
from hal.board import (
    BoardError,
    BoardLinkChanged,
    DcCapabilities,
    DcOutput,
    IsolationReading,
    IsolationState,
    LinkDown,
    LockState,
    McuReset,
    MeterReading,
    SafeStateReason,
    SafetyLimits,
    SignedMeterValue,
)
from hal.mcu_protocol import (
    NO_RESISTANCE,
    PILOT_CODES,
    Delivered,
    DeliveryFailed,
    FaultPlan,
    Hello,
    LinkLost,
    LinkNotUp,
    LinkTiming,
    LinkUp,
    McuLink,
    MessageReceived,
    MsgType,
    Nacked,
    NakReason,
    PayloadError,
    PeerReset,
    SetDc,
    SignedMeter,
    Status,
    StatusFlag,
    encode_u8,
    encode_u16,
)
from hal.pilot import PilotSignal, PilotState

log = logging.getLogger("pysecc.hal")  # the "hal" layer of secc.common.logs

_ISOLATION_STATES = (IsolationState.VALID, IsolationState.WARNING, IsolationState.FAULT,
                     IsolationState.NOT_MEASURED)


class SerialBoard(BaseBoard):
    """:class:`hal.board.Board` over a serial MCU. ``await start()`` then
    ``await wait_connected()``; commands raise :class:`hal.board.LinkDown` when the MCU does
    not answer."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = 115200,
        timing: LinkTiming | None = None,
        capabilities: DcCapabilities,
        limits: SafetyLimits = SafetyLimits(),
        pilot_debounce_s: float = 0.03,
        auto_safe_state: bool = True,
        signed_meter_timeout_s: float = 1.0,
    ) -> None:
        import time

        super().__init__(capabilities=capabilities, limits=limits,
                         pilot_debounce_s=pilot_debounce_s, auto_safe_state=auto_safe_state,
                         clock=time.monotonic)
        self.port = port
        self.baud = baud
        self.link = McuLink("host", timing or LinkTiming())
        self.faults = FaultPlan()          # test hook: drop/corrupt frames on the host side
        self.signed_meter_timeout_s = signed_meter_timeout_s
        self.hello: Hello | None = None
        self._serial: serial.Serial | None = None
        self._status: Status | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._signed_waiters: list[asyncio.Future[SignedMeter]] = []
        self._connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._latch_reported = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._serial is not None:
            return
        loop = asyncio.get_running_loop()
        self._serial = serial.Serial(self.port, self.baud, timeout=0, write_timeout=0.5)
        loop.add_reader(self._serial.fileno(), self._readable)
        self.link.start(loop.time())
        self._flush()
        self._task = loop.create_task(self._timers())

    async def wait_connected(self, timeout_s: float = 2.0) -> None:
        """Until the MCU answered HELLO_REQ; raises :class:`LinkDown` on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            raise LinkDown(f"no HELLO from the MCU on {self.port} in {timeout_s} s") from None

    async def close(self, safe: bool = True) -> None:
        """Safe state first (unless ``safe=False``: simulates the host dying), then the port."""
        await self.wait_background()
        if safe and self.link.up:
            await self.safe_state(SafeStateReason.SHUTDOWN)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._serial is not None:
            asyncio.get_running_loop().remove_reader(self._serial.fileno())
            self._serial.close()
            self._serial = None

    @property
    def link_up(self) -> bool:
        return self.link.up

    # ------------------------------------------------------------------ I/O edge
    def _readable(self) -> None:
        assert self._serial is not None
        try:
            data = self._serial.read(4096)
        except serial.SerialException as exc:
            log.error("serial read failed", extra={"port": self.port, "error": str(exc)})
            return
        now = asyncio.get_running_loop().time()
        self.link.receive_bytes(self.faults.filter_rx(data), now)
        self._process_link_events(now)
        self._flush()
        self._wake.set()

    def _flush(self) -> None:
        if self._serial is None:
            return
        data = self.faults.filter_tx(self.link.data_to_send(asyncio.get_running_loop().time()))
        if data:
            try:
                self._serial.write(data)
            except serial.SerialException as exc:
                log.error("serial write failed", extra={"port": self.port, "error": str(exc)})

    async def _timers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.link.handle_timer(now)
            self._process_link_events(now)
            self._input_timers(now)
            self._flush()
            deadlines = [d for d in (self.link.next_deadline(), self._next_deadline())
                         if d is not None]
            delay = max(0.001, min(deadlines) - loop.time()) if deadlines else 0.05
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow our cancellation
            # when the wake-up and the cancel coincide, and close() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    # ------------------------------------------------------------------ link events
    def _process_link_events(self, now: float) -> None:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, MessageReceived):
                self._on_message(event, now)
            elif isinstance(event, Delivered):
                self._resolve(event.seq, None)
            elif isinstance(event, Nacked):
                reason = NakReason(event.reason).name if event.reason in iter(NakReason) \
                    else str(event.reason)
                self._resolve(event.seq, BoardError(f"MCU refused the command ({reason})"))
            elif isinstance(event, DeliveryFailed):
                self._resolve(event.seq, LinkDown(event.reason))
            elif isinstance(event, LinkUp):
                self.hello = event.hello
                self._connected.set()
                log.info("MCU link up", extra={"port": self.port,
                                               "boot_counter": event.boot_counter})
                self._publish(BoardLinkChanged(at=now, up=True))
            elif isinstance(event, LinkLost):
                self._status = None
                self._connected.clear()
                for waiter in self._signed_waiters:
                    if not waiter.done():
                        waiter.set_exception(LinkDown(event.reason))
                # Best effort: if only the MCU's transmit path died, it still hears this.
                self.link.send(MsgType.ENTER_SAFE_STATE, reliable=False)
                log.error("MCU link lost", extra={"port": self.port, "reason": event.reason})
                self._publish(BoardLinkChanged(at=now, up=False, reason=event.reason))
            elif isinstance(event, PeerReset):
                self._status = None
                log.error("MCU reset", extra={"boot_counter": event.boot_counter})
                self._publish(McuReset(at=now, boot_counter=event.boot_counter))

    def _resolve(self, seq: int, error: Exception | None) -> None:
        future = self._pending.pop(seq, None)
        if future is None or future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def _on_message(self, message: MessageReceived, now: float) -> None:
        try:
            if message.type == MsgType.STATUS:
                self._on_status(Status.decode(message.payload), now)
            elif message.type == MsgType.SIGNED_METER:
                reply = SignedMeter.decode(message.payload)
                for waiter in self._signed_waiters:
                    if not waiter.done():
                        waiter.set_result(reply)
                self._signed_waiters.clear()
        except PayloadError as exc:
            log.warning("bad MCU payload", extra={"type": message.type, "error": str(exc)})

    def _on_status(self, status: Status, now: float) -> None:
        self._status = status
        if status.pilot_raw < len(PILOT_CODES):
            self._input_pilot(PilotState(PILOT_CODES[status.pilot_raw]), now)
        self._input_emergency_stop(bool(status.flags & StatusFlag.EMERGENCY_STOP), now)
        self._input_isolation(self._isolation_from(status, now))
        self._input_contactor_feedback(bool(status.flags & StatusFlag.CONTACTORS_CLOSED), now)
        self._input_temperatures(self._temperatures_from(status), now)
        latched = bool(status.flags & StatusFlag.MCU_SAFE_STATE)
        if latched and not self._latch_reported:
            # The MCU's watchdog fired although our link looks up (we stalled): treat it as
            # a link loss, then clear the latch with a new handshake.
            self._latch_reported = True
            self._publish(BoardLinkChanged(at=now, up=False, reason="MCU watchdog expired"))
            self.link.rehello()
        elif not latched:
            self._latch_reported = False

    @staticmethod
    def _isolation_from(status: Status, now: float) -> IsolationReading:
        ohm = None if status.isolation_ohm == NO_RESISTANCE else float(status.isolation_ohm)
        state = _ISOLATION_STATES[min(status.isolation_state, 3)]
        return IsolationReading(ohm, state, now)

    # ------------------------------------------------------------------ commands
    async def _command(self, msg_type: MsgType, payload: bytes = b"") -> None:
        try:
            seq = self.link.send(msg_type, payload)
        except LinkNotUp:
            raise LinkDown(f"MCU link on {self.port} is down") from None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        self._flush()
        self._wake.set()
        await future

    async def _drive_pilot(self, signal: PilotSignal) -> None:
        await self._command(MsgType.SET_PWM, encode_u16(signal.duty_permille))

    async def _drive_contactors(self, closed: bool) -> None:
        await self._command(MsgType.SET_CONTACTORS, encode_u8(int(closed)))

    async def _drive_lock(self, locked: bool) -> None:
        await self._command(MsgType.SET_LOCK, encode_u8(int(locked)))

    async def _drive_dc(self, voltage_v: float, current_a: float, enabled: bool) -> None:
        setpoint = SetDc(round(voltage_v * 1000), round(current_a * 1000), enabled)
        await self._command(MsgType.SET_DC, setpoint.encode())

    async def _wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        if not self.link.up:                 # no feedback will come: do not wait for it
            return predicate()
        return await super()._wait_until(predicate, timeout_s)

    # ------------------------------------------------------------------ feedback
    def _contactor_feedback(self) -> bool | None:
        if self._status is None:
            return None
        return bool(self._status.flags & StatusFlag.CONTACTORS_CLOSED)

    def _lock_feedback(self) -> LockState:
        if self._status is None:
            return LockState.UNKNOWN
        if self._status.flags & StatusFlag.LOCK_LOCKED:
            return LockState.LOCKED
        if self._status.flags & StatusFlag.LOCK_UNLOCKED:
            return LockState.UNLOCKED
        return LockState.UNKNOWN

    def _output_present(self) -> DcOutput:
        if self._status is None:     # unknown: assume the worst for unlock decisions
            return DcOutput(float("inf"), float("inf"), self._clock())
        return DcOutput(self._status.voltage_mv / 1000, self._status.current_ma / 1000,
                        self._clock())

    async def read_dc_output(self) -> DcOutput:
        self._require_status()          # unknown values are an error, never a number
        return self._output_present()

    def _require_status(self) -> Status:
        if self._status is None:
            raise LinkDown(f"no STATUS from the MCU on {self.port}")
        return self._status

    # ------------------------------------------------------------------ readings
    async def read_meter(self, signed: bool = False) -> MeterReading:
        status = self._require_status()
        voltage, current = status.voltage_mv / 1000, status.current_ma / 1000
        signed_value = None
        if signed:
            waiter: asyncio.Future[SignedMeter] = asyncio.get_running_loop().create_future()
            self._signed_waiters.append(waiter)
            await self._command(MsgType.REQ_SIGNED_METER)
            try:
                reply = await asyncio.wait_for(waiter, self.signed_meter_timeout_s)
            except TimeoutError:
                raise LinkDown("no SIGNED_METER answer from the MCU") from None
            signed_value = SignedMeterValue(reply.data, reply.format, reply.public_key or None)
        return MeterReading(
            energy_wh=status.energy_import_wh_milli / 1000,
            power_w=round(voltage * current, 3),
            voltage_v=voltage,
            current_a=current,
            at=self._clock(),
            energy_exported_wh=status.energy_export_wh_milli / 1000,
            signed=signed_value,
        )

    async def read_isolation(self) -> IsolationReading:
        return self._isolation_from(self._require_status(), self._clock())

    async def read_temperatures(self) -> dict[str, float]:
        return self._temperatures_from(self._require_status())

    def _temperatures_from(self, status: Status) -> dict[str, float]:
        names = list(self.hello.sensors) if self.hello else []
        names += [f"sensor{i}" for i in range(len(names), len(status.temperatures_decidegc))]
        return {name: t / 10 for name, t in zip(names, status.temperatures_decidegc,
                                                 strict=False)}
