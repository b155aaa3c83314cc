"""Smart Charging through the real bridge: the test CSMS over a websocket, mosquitto, and the
SECC's bus client receiving the composite limit on ``charging_limit``."""

from __future__ import annotations

import asyncio
import contextlib
import time

from bridge_harness import (
    STATION,
    bridge_config,
    online_bridge,
    running_bridge,
    secc_config,
    wait_until,
)

from ocpp_bridge.smart_charging import format_time
from secc.bus.client import SeccBusClient


@contextlib.asynccontextmanager
async def system(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            limits: list[dict] = []

            async def on_limit(payload: dict) -> None:
                limits.append(payload)

            secc.on_event("charging_limit", on_limit)
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            yield bridge, secc, limits


def tx_default(pid: int, limit: float, level: int = 0, unit: str = "A") -> dict:
    return {"id": pid, "stackLevel": level, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{
                "id": 1, "chargingRateUnit": unit, "startSchedule": format_time(time.time() - 60),
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}]}


async def start_transaction(bridge, secc, session_id: str) -> str:
    await secc.send_transaction_event("Started", session_id, "CablePluggedIn",
                                      charging_state="EVConnected")
    await wait_until(lambda: bridge.queue.transaction_of(1, session_id), 5, "transaction")
    return bridge.queue.transaction_of(1, session_id)


async def test_tx_default_profile_reaches_the_secc_and_the_composite_schedule(
        tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        await wait_until(lambda: limits, 5, "initial (unlimited) charging limit")
        first = limits[-1]
        answer = await csms.call(STATION, "SetChargingProfile",
                                 {"evseId": 1, "chargingProfile": tx_default(1, 16.0)})
        assert answer == {"status": "Accepted"}
        await wait_until(lambda: limits[-1]["periods"][0]["limit"] == 16.0, 5, "new limit")
        composite = await csms.call(STATION, "GetCompositeSchedule",
                                    {"duration": 600, "evseId": 1, "chargingRateUnit": "A"})
        watts = await csms.call(STATION, "GetCompositeSchedule",
                                {"duration": 600, "evseId": 1, "chargingRateUnit": "W"})
    assert first["periods"][0]["limit"] == bridge.config.station.max_power_w
    assert limits[-1]["revision"] > first["revision"]
    assert limits[-1]["charging_rate_unit"] == "A"
    assert "SetChargingProfile id 1" in limits[-1]["reason"]
    assert composite["status"] == "Accepted"
    assert composite["schedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    assert composite["schedule"]["evseId"] == 1 and composite["schedule"]["duration"] == 600
    assert watts["schedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0 * 230 * 3


async def test_invalid_profiles_are_rejected_with_a_reason(tmp_path, bus_broker, csms):
    station_max_on_evse = tx_default(2, 100.0)
    station_max_on_evse["chargingProfilePurpose"] = "ChargingStationMaxProfile"
    tx_without_transaction = tx_default(3, 10.0)
    tx_without_transaction.update(chargingProfilePurpose="TxProfile", transactionId="nope")
    async with system(tmp_path, bus_broker, csms):
        a = await csms.call(STATION, "SetChargingProfile",
                            {"evseId": 1, "chargingProfile": station_max_on_evse})
        b = await csms.call(STATION, "SetChargingProfile",
                            {"evseId": 1, "chargingProfile": tx_without_transaction})
        c = await csms.call(STATION, "SetChargingProfile",
                            {"evseId": 3, "chargingProfile": tx_default(4, 10.0)})
        d = await csms.call(STATION, "GetCompositeSchedule", {"duration": 60, "evseId": 3})
    assert a["status"] == "Rejected" and a["statusInfo"]["reasonCode"] == "InvalidProfile"
    assert "evseId 0" in a["statusInfo"]["additionalInfo"]
    assert b["status"] == "Rejected" and b["statusInfo"]["reasonCode"] == "TxNotFound"
    assert c["status"] == "Rejected" and c["statusInfo"]["reasonCode"] == "UnknownEvse"
    assert d["status"] == "Rejected"


async def test_tx_profile_lives_as_long_as_its_transaction(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        await csms.call(STATION, "SetChargingProfile",
                        {"evseId": 0, "chargingProfile": tx_default(1, 20.0)})
        transaction_id = await start_transaction(bridge, secc, "sc1")
        profile = tx_default(2, 8.0)
        profile.update(chargingProfilePurpose="TxProfile", transactionId=transaction_id)
        answer = await csms.call(STATION, "SetChargingProfile",
                                 {"evseId": 1, "chargingProfile": profile})
        await wait_until(lambda: limits[-1]["periods"][0]["limit"] == 8.0, 5, "TxProfile limit")
        assert limits[-1]["transaction_id"] == transaction_id
        await secc.send_transaction_event("Ended", "sc1", "EVCommunicationLost",
                                          stopped_reason="EVDisconnected")
        await wait_until(lambda: limits[-1]["periods"][0]["limit"] == 20.0, 5, "back to default")
    assert answer == {"status": "Accepted"}
    assert "transaction ended" in limits[-1]["reason"] and "[2]" in limits[-1]["reason"]
    assert [p.id for p in bridge.smart_charging.store.profiles] == [1]


async def test_station_max_is_shared_and_clear_restores(tmp_path, bus_broker, csms):
    station_max = tx_default(9, 11_000.0, unit="W")
    station_max["chargingProfilePurpose"] = "ChargingStationMaxProfile"
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        await csms.call(STATION, "SetChargingProfile",
                        {"evseId": 0, "chargingProfile": station_max})
        await wait_until(lambda: limits[-1]["periods"][0]["limit"] == 11_000.0, 5, "cap")
        cleared = await csms.call(STATION, "ClearChargingProfile",
                                  {"chargingProfileCriteria": {
                                      "chargingProfilePurpose": "ChargingStationMaxProfile"}})
        unknown = await csms.call(STATION, "ClearChargingProfile", {"chargingProfileId": 9})
        await wait_until(lambda: limits[-1]["periods"][0]["limit"]
                         == bridge.config.station.max_power_w, 5, "cap removed")
    assert cleared == {"status": "Accepted"} and unknown == {"status": "Unknown"}


async def test_get_charging_profiles_reports_per_evse(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms):
        for evse, pid in ((1, 1), (2, 2), (0, 3)):
            assert (await csms.call(STATION, "SetChargingProfile", {
                "evseId": evse, "chargingProfile": tx_default(pid, 10.0 + pid)}))[
                "status"] == "Accepted"
        answer = await csms.call(STATION, "GetChargingProfiles", {
            "requestId": 42, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}})
        await csms.wait_for("ReportChargingProfiles", 3, 5)
        none = await csms.call(STATION, "GetChargingProfiles", {
            "requestId": 43, "chargingProfile": {"stackLevel": 5}})
    reports = csms.messages("ReportChargingProfiles")
    assert answer == {"status": "Accepted"} and none == {"status": "NoProfiles"}
    assert [(r["evseId"], [p["id"] for p in r["chargingProfile"]], r["tbc"]) for r in reports] \
        == [(0, [3], True), (1, [1], True), (2, [2], False)]
    assert all(r["requestId"] == 42 and r["chargingLimitSource"] == "CSO" for r in reports)


async def test_profiles_survive_a_bridge_restart(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        await csms.call(STATION, "SetChargingProfile",
                        {"evseId": 1, "chargingProfile": tx_default(5, 12.0)})
        await wait_until(lambda: limits[-1]["periods"][0]["limit"] == 12.0, 5, "limit")
        revision = limits[-1]["revision"]
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        composite = await csms.call(STATION, "GetCompositeSchedule",
                                    {"duration": 60, "evseId": 1, "chargingRateUnit": "A"})
        await wait_until(lambda: limits and limits[-1]["revision"] >= revision, 5, "limit")
    assert composite["schedule"]["chargingSchedulePeriod"][0]["limit"] == 12.0
    assert limits[-1]["periods"][0]["limit"] == 12.0


async def test_notify_ev_charging_needs_and_schedule_reach_the_csms(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        needs = await secc.request("notify_ev_charging_needs", {
            "session_id": "s9", "charging_needs": {
                "requestedEnergyTransfer": "DC",
                "dcChargingParameters": {"evMaxCurrent": 200, "evMaxVoltage": 500}}})
        schedule = await secc.request("notify_ev_charging_schedule", {
            "session_id": "s9", "time_base": "2026-01-01T00:00:00Z",
            "charging_schedule": {"id": 1, "chargingRateUnit": "W",
                                  "chargingSchedulePeriod": [{"startPeriod": 0,
                                                              "limit": 11000.0}]}})
        await asyncio.sleep(0)
    assert needs == {"status": "Accepted"} and schedule == {"status": "Accepted"}
    assert csms.messages("NotifyEVChargingNeeds")[0]["evseId"] == 1
    assert csms.messages("NotifyEVChargingSchedule")[0]["chargingSchedule"]["id"] == 1


def test_revision_changes_only_when_the_limit_does():
    from ocpp_bridge.smart_charging_handlers import same_limit

    old = {"unit": "W", "end": 1000 + 86400,
           "periods": [[1000, 11000.0, None], [1600, 7000.0, None], [2200, 11000.0, None]]}
    later = {"unit": "W", "end": 1700 + 86400,      # time passed one boundary: same limit
             "periods": [[1700, 7000.0, None], [2200, 11000.0, None]]}
    lower = {"unit": "W", "end": 1700 + 86400,
             "periods": [[1700, 6000.0, None], [2200, 11000.0, None]]}
    moved = {"unit": "W", "end": 1700 + 86400,
             "periods": [[1700, 7000.0, None], [2300, 11000.0, None]]}
    assert same_limit(old, later) and same_limit(old, old)
    assert not same_limit(old, lower) and not same_limit(old, moved)
    assert not same_limit(None, old) and not same_limit(old, {**later, "unit": "A"})


async def test_transaction_start_without_profiles_keeps_the_revision(tmp_path, bus_broker, csms):
    async with system(tmp_path, bus_broker, csms) as (bridge, secc, limits):
        await wait_until(lambda: limits, 5, "initial limit")
        first = limits[-1]["revision"]
        await start_transaction(bridge, secc, "sc9")
        await wait_until(lambda: "transaction started" in limits[-1]["reason"], 5, "republish")
        assert limits[-1]["revision"] == first          # nothing changed for the car
        await csms.call(STATION, "SetChargingProfile",
                        {"evseId": 1, "chargingProfile": tx_default(1, 16.0)})
        await wait_until(lambda: limits[-1]["periods"][0]["limit"] == 16.0, 5, "limit")
    assert limits[-1]["revision"] == first + 1
