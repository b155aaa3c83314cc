"""OCPP 2.0.1 Smart Charging at the edge: the CSMS's K01/K08/K09/K10 requests, the profile
file, and the composite limit published to each SECC on the bus (``charging_limit``).

The rules live in the sans-I/O ``ocpp_bridge.smart_charging``; this module gives them the
clock, the running transactions (from the queue database), the disk and the bus:

* ``SmartChargingService`` (one per bridge): loads/saves ``charging_profiles.json`` next to the
  queue database (written atomically and fsynced, so an accepted profile survives a crash),
  recomputes and publishes the retained ``charging_limit`` of every EVSE when a profile is set
  or cleared, a transaction starts or ends, the bus (re)connects, and every
  ``REFRESH_SECONDS`` (the published schedule covers ``HORIZON_SECONDS``).
* ``SmartChargingHandlers``: the ``@on`` handlers, mixed into ``BridgeChargePoint``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from ocpp_bridge.ocpp_io import CsmsCallError
from ocpp_bridge.smart_charging import (
    MAX_COMPOSITE_SECONDS,
    CompositeSchedule,
    Limits,
    ProfileRejected,
    ProfileStore,
    Purpose,
    RateUnit,
    Transaction,
    format_time,
)
from secc import contract
from secc.common.logs import layer_logger
from secc.common.mqtt import BusUnavailable

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")

HORIZON_SECONDS = 24 * 3600      # what one charging_limit message covers
REFRESH_SECONDS = 900            # republished this often (recurring profiles, expiry)
MAX_BUS_PERIODS = 96             # the charging_limit schema's maxItems


class SmartChargingService:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        station = bridge.config.station
        self.limits = Limits(evse_max_power_w=station.max_power_w,
                             evse_max_current_a=station.max_current_a,
                             nominal_voltage=station.nominal_voltage, phases=station.phases)
        self.path = Path(bridge.config.storage.queue).parent / "charging_profiles.json"
        # per EVSE: the revision of its limit and what it was (absolute times), so a revision
        # changes only when the limit does (a new revision makes the SECC renegotiate)
        self.revisions: dict[int, int] = {}
        self.signatures: dict[int, dict[str, Any]] = {}
        self.store = self._load()
        self.published: dict[int, dict[str, Any]] = {}
        self._dirty = False
        bridge.bus.on_connect.append(self._on_bus_connect)

    # --- persistence -----------------------------------------------------------------------------
    def _load(self) -> ProfileStore:
        if not self.path.exists():
            return ProfileStore(self.limits)
        try:
            text = self.path.read_text()
            store = ProfileStore.from_json(text, self.limits)
            doc = json.loads(text)
            self.revisions = {int(k): int(v) for k, v in doc.get("revisions", {}).items()}
            self.signatures = {int(k): v for k, v in doc.get("signatures", {}).items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            broken = self.path.with_suffix(".broken")
            log.error("charging profile file unreadable: starting without profiles, file kept "
                      "for inspection", extra={"path": str(self.path), "kept_as": str(broken),
                                               "error": str(exc)})
            with contextlib.suppress(OSError):
                self.path.replace(broken)
            return ProfileStore(self.limits)
        log.info("charging profiles loaded", extra={"count": len(store.profiles),
                                                    "path": str(self.path)})
        return store

    def save(self) -> None:
        doc = json.loads(self.store.to_json())
        doc["revisions"] = {str(k): v for k, v in self.revisions.items()}
        doc["signatures"] = {str(k): v for k, v in self.signatures.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        with contextlib.suppress(OSError):  # the rename itself is durable once the dir is
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- state -----------------------------------------------------------------------------------
    def transactions(self) -> dict[int, Transaction]:
        return {evse: Transaction(tx, created)
                for evse, tx, created in self.bridge.queue.running_transaction_starts()}

    def composite(self, evse_id: int, duration: int, unit: RateUnit | None,
                  now: float | None = None) -> CompositeSchedule:
        now = time.time() if now is None else now
        return self.store.composite(evse_id, float(int(now)), duration, unit,
                                    self.transactions(), now)

    def limit_payload(self, evse_id: int, reason: str, now: float | None = None
                      ) -> dict[str, Any]:
        schedule = self.composite(evse_id, HORIZON_SECONDS, None, now)
        periods = []
        for period in schedule.periods[:MAX_BUS_PERIODS]:
            item: dict[str, Any] = {"start": period.start, "limit": round(period.limit, 3)}
            if period.number_phases is not None:
                item["number_phases"] = period.number_phases
            periods.append(item)
        duration = schedule.duration
        if len(schedule.periods) > MAX_BUS_PERIODS:  # cut where the next period would begin
            duration = schedule.periods[MAX_BUS_PERIODS].start
        signature = {"unit": schedule.unit.value, "end": int(schedule.start) + duration,
                     "periods": [[int(schedule.start) + p.start, p.limit, p.number_phases]
                                 for p in schedule.periods[:MAX_BUS_PERIODS]]}
        if not same_limit(self.signatures.get(evse_id), signature):
            self.signatures[evse_id] = signature
            self.revisions[evse_id] = self.revisions.get(evse_id, 0) + 1
            self._dirty = True
        payload: dict[str, Any] = {"revision": self.revisions.get(evse_id, 0),
                                   "schedule_start": format_time(schedule.start),
                                   "duration": duration,
                                   "charging_rate_unit": schedule.unit.value,
                                   "periods": periods, "reason": reason[:512]}
        transaction = self.transactions().get(evse_id)
        if transaction is not None:
            payload["transaction_id"] = transaction.transaction_id
        return payload

    async def publish(self, reason: str, evse_ids: list[int] | None = None) -> None:
        """Recompute and publish the retained charging_limit of these EVSEs (default: all);
        the revision of an EVSE changes only when its limit does."""
        self._dirty = False
        payloads = {evse_id: self.limit_payload(evse_id, reason)
                    for evse_id in evse_ids or list(self.bridge.config.station.evse_ids)}
        if self._dirty:
            self.save()
        for evse_id, payload in payloads.items():
            self.published[evse_id] = payload
            with contextlib.suppress(BusUnavailable):
                await self.bridge.bus.publish(
                    contract.BY_NAME["charging_limit"].topic_for(evse_id),
                    contract.encode("charging_limit", payload), retain=True)
            log.info("charging limit published", extra={
                "evse": evse_id, "revision": payload["revision"], "reason": reason,
                "unit": payload["charging_rate_unit"],
                "limit_now": payload["periods"][0]["limit"],
                "periods": len(payload["periods"])})

    async def _on_bus_connect(self) -> None:
        await self.publish("bus connected")

    async def refresh_loop(self) -> None:
        """Keep the published horizon ahead of the clock and drop expired profiles."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            expired = self.store.prune(time.time())
            try:
                if expired:
                    self.save()
                await self.publish(f"expired profiles {[p.id for p in expired]}" if expired
                                   else "periodic refresh")
            except Exception:  # noqa: BLE001 - the loop must survive; next round retries
                log.exception("charging limit refresh failed")

    async def transaction_event(self, evse_id: int, event: dict[str, Any]) -> None:
        """Called for every bus transaction_event after it is queued."""
        kind = event["event_type"]
        if kind == "Started":
            await self.publish(f"transaction started on EVSE {evse_id}")
        elif kind == "Ended":
            transaction_id = self.bridge.queue.transaction_of(evse_id, event["session_id"])
            removed = self.store.transaction_ended(transaction_id) if transaction_id else []
            if removed:
                self.save()
            await self.publish(f"transaction ended on EVSE {evse_id}; TxProfiles removed: "
                               f"{[p.id for p in removed]}")

    # --- the CSMS's requests -----------------------------------------------------------------------
    async def set_profile(self, evse_id: int, profile: dict[str, Any]
                          ) -> tuple[str, dict[str, str] | None]:
        if not self.bridge.device_model.get("SmartChargingCtrlr", "Enabled"):
            return "Rejected", {"reasonCode": "NotEnabled",
                                "additionalInfo": "SmartChargingCtrlr.Enabled is false"}
        if evse_id != 0 and evse_id not in self.bridge.config.station.evse_ids:
            return "Rejected", {"reasonCode": "UnknownEvse", "additionalInfo":
                                f"EVSE {evse_id} is not in station.evse_ids"}
        try:
            self.store.install(evse_id, profile, self.transactions().get(evse_id))
        except ProfileRejected as exc:
            log.warning("SetChargingProfile rejected", extra={
                "evse": evse_id, "profile": profile.get("id"), "reason": exc.reason,
                "detail": str(exc)})
            return "Rejected", {"reasonCode": exc.reason, "additionalInfo": str(exc)[:512]}
        self.save()   # before Accepted goes out: an accepted profile survives a crash
        log.info("charging profile installed", extra={
            "evse": evse_id, "profile": profile["id"], "purpose":
            profile["chargingProfilePurpose"], "stack_level": profile["stackLevel"]})
        await self.publish(f"SetChargingProfile id {profile['id']}",
                           None if evse_id == 0 else [evse_id])
        return "Accepted", None

    async def clear(self, profile_id: int | None, criteria: dict[str, Any] | None) -> str:
        criteria = criteria or {}
        purpose = criteria.get("chargingProfilePurpose")
        if purpose == Purpose.EXTERNAL.value:
            return "Unknown"  # not the CSMS's to clear
        removed = self.store.clear(
            profile_id=profile_id, evse_id=criteria.get("evseId"),
            purpose=Purpose(purpose) if purpose else None,
            stack_level=criteria.get("stackLevel"))
        if not removed:
            return "Unknown"
        self.save()
        await self.publish(f"ClearChargingProfile {[p.id for p in removed]}")
        return "Accepted"


def _value_at(signature: dict[str, Any], when: int) -> tuple[float, int | None] | None:
    found = None
    for start, limit, phases in signature["periods"]:
        if start <= when:
            found = (limit, phases)
    return found


def same_limit(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether ``new`` says the same as ``old`` wherever both speak (time passing on and the
    horizon moving ahead are no change). Signatures: unit, end, [[epoch start, limit,
    phases], ...]."""
    if old is None or old["unit"] != new["unit"]:
        return False
    start = new["periods"][0][0]
    end = min(old["end"], new["end"])
    points = {t for t, _, _ in new["periods"]} | {t for t, _, _ in old["periods"]}
    points = {max(t, start) for t in points if t < end}
    return all(_value_at(old, t) == _value_at(new, t) for t in points)


def _profile_status(status: str, info: dict[str, str] | None) -> Any:
    if info is None:
        return call_result.SetChargingProfile(status=status)
    return call_result.SetChargingProfile(status=status, status_info={
        "reason_code": info["reasonCode"][:20], "additional_info": info["additionalInfo"]})


class SmartChargingHandlers:
    """``@on`` handlers for BridgeChargePoint (``self.bridge`` is the Bridge)."""

    bridge: Bridge

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict, **_: Any):
        status, info = await self.bridge.smart_charging.set_profile(
            evse_id, snake_to_camel_case(charging_profile))
        return _profile_status(status, info)

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                        charging_profile_criteria: dict | None = None,
                                        **_: Any):
        criteria = snake_to_camel_case(charging_profile_criteria) \
            if charging_profile_criteria else None
        status = await self.bridge.smart_charging.clear(charging_profile_id, criteria)
        return call_result.ClearChargingProfile(status=status)

    def _matching_profiles(self, charging_profile: dict, evse_id: int | None) -> list[Any]:
        criteria = snake_to_camel_case(charging_profile)
        sources = criteria.get("chargingLimitSource")
        if sources and "CSO" not in sources:
            return []   # every profile here came from the CSMS (source CSO)
        purpose = criteria.get("chargingProfilePurpose")
        return self.bridge.smart_charging.store.select(
            evse_id=evse_id, purpose=Purpose(purpose) if purpose else None,
            stack_level=criteria.get("stackLevel"), ids=criteria.get("chargingProfileId"))

    @on(Action.get_charging_profiles)
    async def on_get_charging_profiles(self, request_id: int, charging_profile: dict,
                                       evse_id: int | None = None, **_: Any):
        found = self._matching_profiles(charging_profile, evse_id)
        return call_result.GetChargingProfiles(status="Accepted" if found else "NoProfiles")

    @after(Action.get_charging_profiles)
    async def after_get_charging_profiles(self, request_id: int, charging_profile: dict,
                                          evse_id: int | None = None, **_: Any) -> None:
        """K09: one ReportChargingProfiles per EVSE, tbc on all but the last."""
        found = self._matching_profiles(charging_profile, evse_id)
        by_evse: dict[int, list[dict[str, Any]]] = {}
        for item in found:
            by_evse.setdefault(item.evse_id, []).append(item.profile)
        groups = sorted(by_evse.items())
        try:
            for index, (evse, profiles) in enumerate(groups):
                await self.call_raw("ReportChargingProfiles", {  # type: ignore[attr-defined]
                    "requestId": request_id, "chargingLimitSource": "CSO", "evseId": evse,
                    "chargingProfile": profiles, "tbc": index < len(groups) - 1})
        except (CsmsCallError, TimeoutError) as exc:
            log.warning("ReportChargingProfiles failed", extra={"error": str(exc)})

    @on(Action.get_composite_schedule)
    async def on_get_composite_schedule(self, duration: int, evse_id: int,
                                        charging_rate_unit: str | None = None, **_: Any):
        service = self.bridge.smart_charging
        if evse_id != 0 and evse_id not in self.bridge.config.station.evse_ids:
            return call_result.GetCompositeSchedule(status="Rejected", status_info={
                "reason_code": "UnknownEvse",
                "additional_info": f"EVSE {evse_id} is not in station.evse_ids"})
        unit = RateUnit(charging_rate_unit) if charging_rate_unit else None
        if unit is not None and unit not in service.limits.rate_units:
            return call_result.GetCompositeSchedule(status="Rejected", status_info={
                "reason_code": "UnsupportedRateUnit", "additional_info": unit.value})
        duration = max(1, min(int(duration), MAX_COMPOSITE_SECONDS))
        schedule = service.composite(evse_id, duration, unit)
        return call_result.GetCompositeSchedule(status="Accepted", schedule=schedule.to_ocpp())
