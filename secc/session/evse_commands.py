"""What the CSMS asks of one EVSE through the OCPP bridge, and the EVSE state the CSMS sees.

Commands (docs/bus.md): ``reset``, ``change_availability``, ``unlock_connector``,
``trigger_message``. The daemon owns the session and the pilot; this class decides:

* **Availability** (OCPP G03/G04). Inoperative: the pilot goes to X1 (steady +12 V, no PWM:
  IEC 61851-1 state B1/A1, "no charging offered"), so a car cannot start SLAC or high-level
  communication, and the state becomes ``Unavailable``. A running session is never cut for
  it: the answer is ``Scheduled`` and the change follows the session's end. Operative again:
  with a car plugged in, the 5 % PWM comes back and the car can start a session.
* **Reset** (OCPP B11/B12). Immediate: a running session is stopped the way a remote stop
  stops it (the car is told to stop, contactors open, TransactionEvent Ended with
  ``ImmediateReset``), then the EVSE resets. OnIdle: ``Scheduled`` while a session runs, reset
  after it. The reset itself: the board's safe state, then the pilot as for a fresh plug-in,
  the state re-published (READY again).
* **UnlockConnector** (F05): refused with ``OngoingAuthorizedTransaction`` while a session
  runs; otherwise the board unlocks only when it proves it safe (contactors open, no
  voltage or current: ``hal`` refuses otherwise), else ``UnlockFailed`` with the reason.
* **TriggerMessage** MeterValues / TransactionEvent: a reading now, context ``Trigger``.

``state()`` is the one place that says which ``session_state`` this EVSE is in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hal.board import BoardError, PilotSignal, PilotState, SafeStateReason
from secc.common.logs import layer_logger
from secc.contract.reasons import EndReason

log = layer_logger("v2g")

PLUGGED = (PilotState.B, PilotState.C, PilotState.D)
RESET_STOP_CAUSE = EndReason.IMMEDIATE_RESET   # end_reason of a session stopped by a Reset


class EvseCommands:
    def __init__(self, board: Any, bus: Any, *, hlc_duty_percent: float,
                 session_active: Callable[[], bool],
                 stop_session: Callable[[EndReason], None],
                 reporter: Any = None,
                 on_reset: Callable[[], Awaitable[None]] | None = None,
                 offer_charging: Callable[[], Awaitable[None]] | None = None,
                 state_path: Path | None = None) -> None:
        """``offer_charging``: what the daemon does at a plug-in (5 % PWM, SLAC); used when
        the EVSE becomes operative again, or is reset, with a car plugged in.
        ``state_path``: where the availability is kept across restarts (JSON)."""
        self.board = board
        self.bus = bus
        self.hlc_duty_percent = hlc_duty_percent
        self.session_active = session_active
        self.stop_session = stop_session
        self.reporter = reporter
        self.on_reset = on_reset
        self.offer_charging = offer_charging
        self.state_path = state_path
        self.operative = self._load_operative()
        self.charging = False
        self.pending_operative: bool | None = None
        self.pending_reset = False
        self.resets = 0
        self._tasks: set[asyncio.Task] = set()

    def register(self) -> None:
        self.bus.on_command("reset", self.on_reset_command)
        self.bus.on_command("change_availability", self.on_change_availability)
        self.bus.on_command("unlock_connector", self.on_unlock_connector)
        self.bus.on_command("trigger_message", self.on_trigger_message)

    # --- state ----------------------------------------------------------------------------------
    def state(self) -> str:
        if not self.operative and not self.session_active():
            return "Unavailable"
        if self.session_active():
            return "Charging" if self.charging else "Occupied"
        return "Occupied" if self.board.pilot_state in PLUGGED else "Available"

    async def publish_state(self, session_id: str | None = None) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish_state(self.state(), session_id=session_id)
        except Exception as exc:  # noqa: BLE001 - informational, retained on the next change
            log.warning("EVSE state not published", extra={"error": repr(exc)})

    def may_offer_charging(self) -> bool:
        """The daemon asks before it offers 5 % PWM to a plugged-in car."""
        return self.operative and not self.pending_reset

    # --- session lifecycle (from the daemon) --------------------------------------------------------
    async def session_ended(self) -> None:
        """Apply what was Scheduled for the end of the session."""
        self.charging = False
        if self.pending_operative is not None:
            operative, self.pending_operative = self.pending_operative, None
            await self._set_operative(operative)
        if self.pending_reset:
            await self._reset()

    # --- commands -----------------------------------------------------------------------------------
    async def on_change_availability(self, command: dict[str, Any]) -> dict[str, Any]:
        operative = command["operational"]
        if self.session_active() and operative != self.operative:
            self.pending_operative = operative
            log.info("availability change scheduled after the session",
                     extra={"operative": operative})
            return {"status": "Scheduled", "reason": "applied when the running session ends"}
        self.pending_operative = None
        await self._set_operative(operative)
        return {"status": "Accepted"}

    def _load_operative(self) -> bool:
        if self.state_path is None or not self.state_path.exists():
            return True
        try:
            return bool(json.loads(self.state_path.read_text())["operative"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("availability file unreadable, EVSE operative", extra={
                "path": str(self.state_path), "error": repr(exc)})
            return True

    def _save_operative(self) -> None:
        if self.state_path is None:
            return
        try:   # rare (a CSMS command), not on a session's path
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"operative": self.operative}))
            tmp.replace(self.state_path)
        except OSError as exc:
            log.error("availability not saved: it will not survive a restart", extra={
                "path": str(self.state_path), "error": repr(exc)})

    async def _set_operative(self, operative: bool) -> None:
        changed = operative != self.operative
        self.operative = operative
        if changed:
            self._save_operative()
        log.info("EVSE availability", extra={"operative": operative, "changed": changed})
        try:
            if not operative:
                await self.board.set_pilot(PilotSignal.x1())
            elif changed and not self.session_active():
                await self._offer_if_plugged()
        except BoardError as exc:
            log.warning("pilot not changed", extra={"error": str(exc)})
        await self.publish_state()

    async def _offer_if_plugged(self) -> None:
        if self.board.pilot_state not in PLUGGED:
            return
        if self.offer_charging is not None:
            await self.offer_charging()
        else:
            await self.board.set_pilot(PilotSignal.hlc(self.hlc_duty_percent))

    async def on_reset_command(self, command: dict[str, Any]) -> dict[str, Any]:
        if not self.session_active():
            self._spawn(self._reset())
            return {"status": "Accepted"}
        self.pending_reset = True
        if command["type"] == "OnIdle":
            log.info("reset scheduled after the session")
            return {"status": "Scheduled", "reason": "reset when the running session ends"}
        log.info("immediate reset: stopping the running session")
        self.stop_session(RESET_STOP_CAUSE)
        return {"status": "Accepted"}

    async def _reset(self) -> None:
        self.pending_reset = False
        log.info("EVSE reset")
        report = await self.board.safe_state(SafeStateReason.SESSION_END)
        if not report.safe:
            log.error("reset: safe state not proven", extra={"problems": "; ".join(
                report.problems)})
        if self.on_reset is not None:
            await self.on_reset()
        try:
            if not self.operative:
                await self.board.set_pilot(PilotSignal.x1())
            else:
                await self._offer_if_plugged()
        except BoardError as exc:
            log.warning("pilot not restored after reset", extra={"error": str(exc)})
        self.resets += 1
        await self.publish_state()

    async def on_unlock_connector(self, command: dict[str, Any]) -> dict[str, Any]:
        if self.session_active():
            return {"status": "OngoingAuthorizedTransaction",
                    "reason": "a session runs on this EVSE; stop it first"}
        blockers = self.board.unlock_blockers()
        if blockers:
            return {"status": "UnlockFailed", "reason": "unsafe: " + "; ".join(blockers)}
        try:
            await self.board.unlock()
        except BoardError as exc:
            return {"status": "UnlockFailed", "reason": str(exc)[:500]}
        log.info("connector unlocked on request of the CSMS")
        return {"status": "Unlocked"}

    async def on_trigger_message(self, command: dict[str, Any]) -> dict[str, Any]:
        if self.reporter is None:
            return {"status": "Rejected", "reason": "no meter reporting on this SECC"}
        wanted = command["requested_message"]
        if wanted == "TransactionEvent":
            sent = await self.reporter.triggered_transaction_event()
            if not sent:
                return {"status": "Rejected", "reason": "no running transaction"}
        else:
            await self.reporter.triggered_meter_values()
        return {"status": "Accepted"}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
