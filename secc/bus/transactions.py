"""Session events -> OCPP-shaped transaction events and meter values on the bus.

One table says which transaction event each session event becomes; the reporter adds the
meter reading to each and, while energy flows, sends a MeterValuePeriodic update every
``meter_interval`` seconds. Why a session ended travels as the core's ``EndReason``
(``end_reason``); the bridge alone turns it into OCPP trigger and stopped reasons
(``ocpp_bridge/stop_reasons.py``). A paused session (ISO-2/-20 SessionStop(Pause)) keeps its
transaction open, suspended by the EV, until it resumes, the car starts another session, or
the cable is unplugged. Every event goes through the SECC's persistent outbox
(``SeccBusClient.send_transaction_event``), so nothing accepted is lost when the bus or the
bridge is down.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

from secc.bus.client import reading, sample, utc_now
from secc.common.logs import layer_logger
from secc.contract.reasons import EndReason
from secc.v2g.evse import PublishEvent

log = layer_logger("bus")

# session event -> (event type, trigger reason, charging state). The trigger of an Ended
# event is the bridge's to decide from end_reason; the one here is for bridges before it.
TRANSACTION_EVENTS: dict[str, tuple[str, str, str | None]] = {
    "SessionStarted": ("Started", "EVDetected", "EVConnected"),
    "Authorized": ("Updated", "Authorized", None),
    "ChargingStarted": ("Updated", "ChargingStateChanged", "Charging"),
    "ChargingStopped": ("Updated", "ChargingStateChanged", "EVConnected"),
    "SessionPaused": ("Updated", "ChargingStateChanged", "SuspendedEV"),
    "SessionResumed": ("Updated", "ChargingStateChanged", "EVConnected"),
    "SessionStopped": ("Ended", "StopAuthorized", "Idle"),
}


def end_reason_of(event: PublishEvent) -> EndReason:
    """The ``EndReason`` of a SessionStopped event. Every core sets one; an event without
    one is a bug, reported as INTERNAL_ERROR rather than dropped (the transaction must end)."""
    try:
        return EndReason(event.data["end_reason"])
    except (KeyError, ValueError):
        log.error("SessionStopped without a valid end_reason (a bug): reported as internal_error",
                  extra={"data": repr(event.data)[:200]})
        return EndReason.INTERNAL_ERROR


def _signed_value(signed: Any) -> dict[str, str] | None:
    """hal SignedMeterValue -> the contract's ``signed`` object (base64, as OCPP carries it)."""
    if signed is None:
        return None
    data = base64.b64encode(signed.data).decode()
    if len(data) > 2500:  # OCPP's signedMeterData limit: keep the reading, drop the signature
        log.warning("signed meter value too long for OCPP, sent unsigned",
                    extra={"length": len(data)})
        return None
    method = ""
    if signed.format == "OCMF":
        # OCMF|payload|{"SA": "<signature algorithm>", "SD": ...}
        with contextlib.suppress(Exception):
            method = json.loads(signed.data.decode().rsplit("|", 1)[1]).get("SA", "")
    return {"signed_meter_data": data, "signing_method": method[:50],
            "encoding_method": signed.format,
            "public_key": base64.b64encode(signed.public_key or b"").decode()}


class TransactionReporter:
    """Listens to session events (``on_event``) and reports them to the bus."""

    def __init__(self, bus: Any, board: Any, meter_interval: float = 10.0) -> None:
        self.bus = bus
        self.board = board
        self.meter_interval = meter_interval
        self._periodic: asyncio.Task | None = None
        self._id_token: dict[str, str] | None = None
        self.session_id: str | None = None     # the running transaction's session
        self._paused: str | None = None   # session id of a paused session's open transaction

    async def _readings(self, context: str | None = None) -> list[dict[str, Any]]:
        """The meter now; at the transaction's begin and end the energy register is signed
        by the meter when it can (OCMF), for OCPP's signedMeterValue."""
        signed = context in ("Transaction.Begin", "Transaction.End")
        try:
            meter = await self.board.read_meter(signed=signed)
        except Exception as exc:  # a meter fault must not block the transaction record
            log.warning("meter read failed", extra={"error": repr(exc)})
            return []
        energy = sample("Energy.Active.Import.Register", meter.energy_wh, unit="Wh",
                        context=context, signed=_signed_value(meter.signed))
        return [reading(utc_now(), [
            energy, sample("Power.Active.Import", meter.power_w, unit="W", context=context),
            sample("Current.Import", meter.current_a, unit="A", context=context),
            sample("Voltage", meter.voltage_v, unit="V", context=context)])]

    async def on_event(self, event: PublishEvent) -> None:
        mapping = TRANSACTION_EVENTS.get(event.kind)
        session_id = event.data.get("session_id")
        if mapping is None or not session_id:
            return
        if event.kind == "SessionStarted" and self._paused not in (None, session_id):
            # the car came back with a new session instead of resuming: the old one is over
            await self._end_paused(EndReason.EV_STOPPED)
        if event.kind == "SessionPaused":
            self._paused = session_id
        elif event.kind in ("SessionResumed", "SessionStopped") and self._paused == session_id:
            self._paused = None
        event_type, trigger, state = mapping
        self.session_id = None if event_type == "Ended" else str(session_id)
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(event_type)
        kwargs: dict[str, Any] = {"readings": await self._readings(context)}
        if state:
            kwargs["charging_state"] = state
        if event.kind == "Authorized" and event.data.get("id_token"):
            self._id_token = {"id_token": str(event.data["id_token"])[:36],
                              "type": event.data.get("id_token_type", "Central")}
            kwargs["id_token"] = self._id_token
        if event.kind == "SessionStopped":
            kwargs["end_reason"] = end_reason_of(event).value
        await self.bus.send_transaction_event(event_type, session_id, trigger, **kwargs)
        if event.kind == "ChargingStarted":
            self._start_periodic(session_id)
        elif event.kind in ("ChargingStopped", "SessionPaused", "SessionStopped"):
            await self._stop_periodic()

    async def triggered_meter_values(self) -> str:
        """TriggerMessage(MeterValues): a reading now, context Trigger (a MeterValues
        message even during a transaction)."""
        return await self.bus.send_meter_values(await self._readings("Trigger"))

    async def triggered_transaction_event(self) -> str | None:
        """TriggerMessage(TransactionEvent): Updated/Trigger for the running transaction."""
        if self.session_id is None:
            return None
        return await self.bus.send_transaction_event("Updated", self.session_id, "Trigger",
                                                     readings=await self._readings("Trigger"))
    async def ev_unplugged(self) -> None:
        """The pilot went to A: a paused session's transaction ends now."""
        await self._end_paused(EndReason.EV_UNPLUGGED)

    async def _end_paused(self, end: EndReason) -> None:
        if self._paused is not None:
            await self.on_event(PublishEvent("SessionStopped", {
                "session_id": self._paused, "reason": "paused session over",
                "end_reason": end}))

    def _start_periodic(self, session_id: str) -> None:
        if self._periodic is None:
            self._periodic = asyncio.create_task(self._meter_loop(session_id))

    async def _stop_periodic(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
            self._periodic = None

    async def _meter_loop(self, session_id: str) -> None:
        while True:
            await asyncio.sleep(self.meter_interval)
            await self.bus.send_transaction_event("Updated", session_id, "MeterValuePeriodic",
                                                  charging_state="Charging",
                                                  readings=await self._readings(
                                                      "Sample.Periodic"))

    async def close(self) -> None:
        await self._stop_periodic()
