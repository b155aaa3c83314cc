"""Smart charging between the session cores and the bus (the SECC's side of OCPP K).

* ``charging_limit`` (retained, from the bridge) becomes ``BoardController.charging_limit``;
  the session driver hands it to the core before every request, so the next response
  already carries the new limit.
* The cores' ``EVChargingNeeds`` / ``EVChargingSchedule`` events become the bus requests
  ``notify_ev_charging_needs`` / ``notify_ev_charging_schedule`` (OCPP NotifyEVChargingNeeds
  and NotifyEVChargingSchedule). They run as background tasks: the car never waits for the
  CSMS; a CSMS that wants to shape the schedule answers with SetChargingProfile, which comes
  back as a new ``charging_limit`` revision (and a renegotiation where the protocol has one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from secc.bus.client import BusRequestError
from secc.common.logs import layer_logger
from secc.common.mqtt import BusTimeout, BusUnavailable
from secc.contract import BusPayloadError
from secc.v2g.charging_limit import ChargingLimit
from secc.v2g.evse import PublishEvent

log = layer_logger("bus")

NOTIFY_TIMEOUT = 5.0        # s: the session waits for the needs answer less than this anyway
ENVELOPE = ("session_id", "protocol")   # added to every event by the session layer
ISO20_TRANSFER = {"DC": "DC", "DC_BPT": "DC", "AC": "AC_three_phase", "AC_BPT": "AC_three_phase"}


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def needs_request(session_id: str, data: dict[str, Any], wall_now: float) -> dict[str, Any]:
    """The ``notify_ev_charging_needs`` payload for a core's EVChargingNeeds event (ISO-2:
    already OCPP ChargingNeedsType plus ``departure_in_s``; -20: its own summary)."""
    if "requestedEnergyTransfer" in data:            # ISO-2
        needs = {k: v for k, v in data.items() if k not in ("departure_in_s", *ENVELOPE)}
        departure = data.get("departure_in_s")
    else:                                            # -20
        needs = {"requestedEnergyTransfer": ISO20_TRANSFER.get(str(data.get("service")), "DC")}
        departure = data.get("departure_time")
        if data.get("ev_max_charge_current") is not None and data.get("ev_max_voltage"):
            dc: dict[str, Any] = {"evMaxCurrent": round(data["ev_max_charge_current"]),
                                  "evMaxVoltage": round(data["ev_max_voltage"])}
            if data.get("ev_max_charge_power") is not None:
                dc["evMaxPower"] = round(data["ev_max_charge_power"])
            if data.get("ev_target_energy_request") is not None:
                dc["energyAmount"] = round(data["ev_target_energy_request"])
            if needs["requestedEnergyTransfer"] == "DC":
                needs["dcChargingParameters"] = dc
    if departure is not None:
        needs["departureTime"] = _utc(wall_now + int(departure))
    return {"session_id": session_id, "charging_needs": needs}


def schedule_request(session_id: str, data: dict[str, Any], wall_now: float) -> dict[str, Any]:
    schedule = {k: v for k, v in data.items() if k not in ENVELOPE}
    return {"session_id": session_id, "time_base": _utc(wall_now), "charging_schedule": schedule}


class SmartChargingLink:
    """Connects one EVSE's bus client and session controller."""

    def __init__(self, bus: Any, controller: Any) -> None:
        self.bus = bus
        self.controller = controller
        self._tasks: set[asyncio.Task] = set()
        bus.on_event("charging_limit", self.on_charging_limit)

    async def on_charging_limit(self, payload: dict[str, Any]) -> None:
        limit = ChargingLimit.from_bus(payload)
        self.controller.charging_limit = limit
        log.info("charging limit from the CSMS", extra={
            "revision": limit.revision, "unit": limit.unit,
            "limit_now": (limit.period_at(time.time()) or limit.periods[0]).limit,
            "periods": len(limit.periods), "reason": limit.reason})

    def on_session_event(self, event: PublishEvent, session_id: str) -> None:
        if not session_id:
            return
        if event.kind == "EVChargingNeeds":
            self._spawn("notify_ev_charging_needs",
                        needs_request(session_id, event.data, time.time()))
        elif event.kind == "EVChargingSchedule":
            self._spawn("notify_ev_charging_schedule",
                        schedule_request(session_id, event.data, time.time()))

    def _spawn(self, name: str, payload: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._request(name, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, name: str, payload: dict[str, Any]) -> None:
        status = "Failed"
        try:
            reply = await self.bus.request(name, payload, timeout=NOTIFY_TIMEOUT)
            status = reply.get("status", "Failed")
            log.info("smart charging notification answered", extra={
                "request": name, "status": status})
        except (BusRequestError, BusTimeout, BusUnavailable, BusPayloadError,
                asyncio.TimeoutError) as exc:
            log.warning("smart charging notification not delivered", extra={
                "request": name, "error": str(exc)})
        if name == "notify_ev_charging_needs":   # ends the session's wait for the CSMS
            self.controller.charging_needs_answer = (payload["session_id"], status)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
