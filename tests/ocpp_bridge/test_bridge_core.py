"""OCPP 2.0.1 Core and Local Auth List through the real bus: test CSMS -> bridge -> mosquitto
-> the SECC's command handling (``secc.session.evse_commands``) on a simulated board.

Sessions with a real car (Reset and ChangeAvailability while charging) are in
tests/session/test_charger_core.py."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from bridge_harness import STATION, bridge_config, online_bridge, running_bridge, secc_config
from bridge_harness import wait_until

from hal.pilot import PilotSignal, PilotSignalKind
from hal.sim import SimBoard
from ocpp_bridge.ocpp_io import CsmsCallError
from secc.authorization import AuthorizationRequest, AuthorizationStatus
from secc.bus.authorizer import BusAuthorizer
from secc.bus.client import SeccBusClient
from secc.bus.transactions import TransactionReporter
from secc.cert_commands import CertificateCommands
from secc.session.evse_commands import EvseCommands
from sim.csms import CsmsPki


class Evse:
    """One EVSE's SECC side without the V2G stack: board, bus client, reporter, commands."""

    def __init__(self, board: SimBoard, bus: SeccBusClient) -> None:
        self.board, self.bus = board, bus
        self.session = False
        self.stops: list[str] = []
        self.reporter = TransactionReporter(bus, board, 60)
        self.commands = EvseCommands(board, bus, hlc_duty_percent=5.0,
                                     session_active=lambda: self.session,
                                     stop_session=self.stops.append, reporter=self.reporter)
        self.commands.register()

    @property
    def pilot(self) -> PilotSignalKind:
        return self.board.plant.pilot_signal.kind


async def _certificates_changed(kind: str) -> None:
    pass


@contextlib.asynccontextmanager
async def station(tmp_path, bus_broker, csms, **csms_overrides):
    board = SimBoard(realtime=True)
    await board.start()
    bus = SeccBusClient(secc_config(tmp_path, bus_broker))
    evse = Evse(board, bus)
    # the SECC makes its own TLS key and CSR (TriggerMessage SignV2GCertificate asks for it)
    certificates = CertificateCommands(tmp_path / "secc-certs", _certificates_changed)
    bus.on_command("create_csr", certificates.create_csr)
    try:
        async with running_bridge(bridge_config(tmp_path, bus_broker, csms,
                                                **csms_overrides)) as bridge:
            async with bus:
                await online_bridge(bridge, csms)
                await bus.wait_connected()
                await evse.commands.publish_state()
                yield bridge, evse
    finally:
        await board.close()


def statuses(csms, evse_id: int = 1) -> list[str]:
    return [s["connectorStatus"] for s in csms.messages("StatusNotification")
            if s["evseId"] == evse_id]


async def test_change_availability_inoperative_and_back(tmp_path, bus_broker, csms):
    async with station(tmp_path, bus_broker, csms) as (_, evse):
        evse.board.ev_set_pilot("B")
        await wait_until(lambda: evse.board.pilot_state.value == "B", 5, "plugged")
        await evse.board.set_pilot(PilotSignal.hlc(5.0))
        answer = await csms.call(STATION, "ChangeAvailability",
                                 {"operationalStatus": "Inoperative", "evse": {"id": 1}})
        assert answer["status"] == "Accepted"
        await wait_until(lambda: statuses(csms)[-1:] == ["Unavailable"], 5, "Unavailable")
        assert evse.pilot is PilotSignalKind.X1          # no PWM: no SLAC, no session
        assert not evse.commands.may_offer_charging()
        answer = await csms.call(STATION, "ChangeAvailability",
                                 {"operationalStatus": "Operative", "evse": {"id": 1}})
        assert answer["status"] == "Accepted"
        await wait_until(lambda: statuses(csms)[-1:] == ["Occupied"], 5, "Occupied again")
        assert evse.pilot is PilotSignalKind.PWM          # car plugged in: 5 % is back
        assert evse.board.plant.pilot_signal.duty_percent == 5.0


async def test_change_availability_during_a_session_is_scheduled(tmp_path, bus_broker, csms):
    async with station(tmp_path, bus_broker, csms) as (_, evse):
        evse.board.ev_set_pilot("B")
        await evse.board.set_pilot(PilotSignal.hlc(5.0))
        evse.session = True
        answer = await csms.call(STATION, "ChangeAvailability",
                                 {"operationalStatus": "Inoperative"})   # whole station
        assert answer["status"] == "Rejected"   # EVSE 2 has no SECC: nobody to make it so
        answer = await csms.call(STATION, "ChangeAvailability",
                                 {"operationalStatus": "Inoperative",
                                  "evse": {"id": 1, "connectorId": 1}})
        assert answer["status"] == "Scheduled"
        assert evse.commands.operative and evse.pilot is PilotSignalKind.PWM   # not cut
        evse.session = False
        await evse.commands.session_ended()
        assert not evse.commands.operative and evse.pilot is PilotSignalKind.X1
        await wait_until(lambda: statuses(csms)[-1:] == ["Unavailable"], 5, "Unavailable")
        bad = await csms.call(STATION, "ChangeAvailability",
                              {"operationalStatus": "Inoperative",
                               "evse": {"id": 1, "connectorId": 2}})
        assert bad["status"] == "Rejected"


async def test_unlock_connector_only_when_safe(tmp_path, bus_broker, csms):
    async with station(tmp_path, bus_broker, csms) as (_, evse):
        await evse.board.lock()
        evse.board.inject_welded_contactor()             # a contactor not proven open
        evse.board.plant.contactors_feedback = True
        unsafe = await csms.call(STATION, "UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert unsafe["status"] == "UnlockFailed"
        assert "contactors not proven open" in evse.board.unlock_blockers()
        assert evse.board.lock_state.value == "locked"
        evse.board.inject_welded_contactor(False)
        evse.board.plant.contactors_feedback = False
        evse.session = True
        busy = await csms.call(STATION, "UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert busy["status"] == "OngoingAuthorizedTransaction"
        evse.session = False
        ok = await csms.call(STATION, "UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert ok["status"] == "Unlocked"
        assert evse.board.lock_state.value == "unlocked"
        unknown = await csms.call(STATION, "UnlockConnector", {"evseId": 7, "connectorId": 1})
        assert unknown["status"] == "UnknownConnector"
        silent = await csms.call(STATION, "UnlockConnector", {"evseId": 2, "connectorId": 1})
        assert silent["status"] == "UnlockFailed"    # no SECC answers for EVSE 2


async def test_reset_on_idle_reboots_the_station_with_remote_reset(tmp_path, bus_broker, csms):
    async with station(tmp_path, bus_broker, csms) as (bridge, evse):
        evse.session = True
        answer = await csms.call(STATION, "Reset", {"type": "OnIdle", "evseId": 1})
        assert answer["status"] == "Scheduled"
        assert evse.commands.resets == 0 and evse.stops == []   # nothing interrupted
        evse.session = False
        await evse.commands.session_ended()
        assert evse.commands.resets == 1
        immediate = await csms.call(STATION, "Reset", {"type": "Immediate", "evseId": 1})
        assert immediate["status"] == "Accepted"
        await wait_until(lambda: evse.commands.resets == 2, 5, "second reset")
        station_wide = await csms.call(STATION, "Reset", {"type": "Immediate"})
        assert station_wide["status"] == "Rejected"   # EVSE 2 has no SECC to reset


async def test_immediate_reset_stops_the_running_session(tmp_path, bus_broker, csms):
    async with station(tmp_path, bus_broker, csms) as (_, evse):
        evse.session = True
        answer = await csms.call(STATION, "Reset", {"type": "Immediate", "evseId": 1})
        assert answer["status"] == "Accepted"
        assert evse.stops == ["immediate_reset"]
        assert evse.commands.resets == 0          # the reset waits for the session's end
        evse.session = False
        await evse.commands.session_ended()
        assert evse.commands.resets == 1


async def test_station_reset_boots_again_with_remote_reset(tmp_path, bus_broker, csms):
    config = bridge_config(tmp_path, bus_broker, csms)
    config = replace(config, station=replace(config.station, evse_ids=(1,)))  # one SECC
    board = SimBoard(realtime=True)
    await board.start()
    try:
        async with running_bridge(config) as bridge:
            async with SeccBusClient(secc_config(tmp_path, bus_broker)) as bus:
                evse = Evse(board, bus)
                await online_bridge(bridge, csms)
                await bus.wait_connected()
                answer = await csms.call(STATION, "Reset", {"type": "OnIdle"})
                assert answer["status"] == "Accepted"
                boots = await csms.wait_for("BootNotification", 2)
                await wait_until(lambda: bridge.online, 10, "online again")
                await wait_until(lambda: evse.commands.resets == 1, 5, "SECC reset")
                events = await csms.wait_for("SecurityEventNotification", 2)
    finally:
        await board.close()
    assert boots[0]["reason"] == "PowerUp" and boots[1]["reason"] == "RemoteReset"
    assert "ResetOrReboot" in [e["type"] for e in events]


async def test_trigger_message_for_every_trigger(tmp_path, bus_broker, csms):
    csms.pki = None
    async with station(tmp_path, bus_broker, csms) as (bridge, evse):
        async def trigger(message: str, evse_id: int | None = None) -> str:
            payload = {"requestedMessage": message}
            if evse_id is not None:
                payload["evse"] = {"id": evse_id}
            return (await csms.call(STATION, "TriggerMessage", payload))["status"]

        assert await trigger("BootNotification") == "Rejected"   # already accepted
        assert await trigger("Heartbeat") == "Accepted"
        await csms.wait_for("Heartbeat")
        before = len(csms.messages("StatusNotification"))
        assert await trigger("StatusNotification", 1) == "Accepted"
        await csms.wait_for("StatusNotification", before + 1)
        assert await trigger("MeterValues", 1) == "Accepted"
        meter = (await csms.wait_for("MeterValues"))[0]
        assert meter["evseId"] == 1
        assert meter["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
        assert await trigger("TransactionEvent", 1) == "Rejected"   # no transaction
        await evse.reporter.bus.send_transaction_event("Started", "tr1", "CablePluggedIn",
                                                       charging_state="EVConnected")
        evse.reporter.session_id = "tr1"
        await evse.bus.flush(5)
        assert await trigger("TransactionEvent", 1) == "Accepted"
        events = await csms.wait_for("TransactionEvent", 2)
        assert events[-1]["triggerReason"] == "Trigger" and events[-1]["seqNo"] == 1
        assert await trigger("LogStatusNotification") == "Accepted"
        assert (await csms.wait_for("LogStatusNotification"))[0]["status"] == "Idle"
        assert await trigger("FirmwareStatusNotification") == "Accepted"
        assert (await csms.wait_for("FirmwareStatusNotification"))[0]["status"] == "Idle"
        assert await trigger("SignChargingStationCertificate") == "Accepted"
        assert (await csms.wait_for("SignCertificate"))[0]["certificateType"] == \
            "ChargingStationCertificate"
        assert await trigger("SignV2GCertificate") == "Accepted"
        assert (await csms.wait_for("SignCertificate", 2))[1]["certificateType"] == \
            "V2GCertificate"
        assert await trigger("SignCombinedCertificate") == "NotImplemented"
        assert await trigger("PublishFirmwareStatusNotification") == "NotImplemented"
        assert await trigger("MeterValues", 9) == "Rejected"


async def test_get_report_and_base_report_cover_the_device_model(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await online_bridge(bridge, csms)
        full = await csms.call(STATION, "GetBaseReport", {"requestId": 1,
                                                          "reportBase": "FullInventory"})
        assert full["status"] == "Accepted"
        await wait_until(lambda: any(not m["tbc"] for m in csms.messages("NotifyReport")),
                         5, "last NotifyReport")
        items = [i for m in csms.messages("NotifyReport") for i in m.get("reportData", [])]
        names = {(i["component"]["name"], i["variable"]["name"]) for i in items}
        from ocpp_bridge.device_model import DEFINITIONS
        assert names == set(DEFINITIONS)
        assert all(i["variableAttribute"][0]["mutability"] for i in items)
        summary = await csms.call(STATION, "GetBaseReport", {"requestId": 2,
                                                             "reportBase": "SummaryInventory"})
        assert summary["status"] == "NotSupported"
        one = await csms.call(STATION, "GetReport", {"requestId": 3, "componentVariable": [
            {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"}}]})
        assert one["status"] == "Accepted"
        await wait_until(lambda: any(m["requestId"] == 3
                                     for m in csms.messages("NotifyReport")), 5, "report 3")
        report = next(m for m in csms.messages("NotifyReport") if m["requestId"] == 3)
        assert [(i["component"]["name"], i["variable"]["name"])
                for i in report["reportData"]] == [("LocalAuthListCtrlr", "Entries")]
        enabled = await csms.call(STATION, "GetReport", {"requestId": 4,
                                                         "componentCriteria": ["Enabled"]})
        assert enabled["status"] == "Accepted"
        await wait_until(lambda: any(m["requestId"] == 4
                                     for m in csms.messages("NotifyReport")), 5, "report 4")
        components = {i["component"]["name"] for m in csms.messages("NotifyReport")
                      if m["requestId"] == 4 for i in m["reportData"]}
        assert components == {"AuthCacheCtrlr", "LocalAuthListCtrlr", "SmartChargingCtrlr"}
        empty = await csms.call(STATION, "GetReport", {"requestId": 5, "componentVariable": [
            {"component": {"name": "NoSuchCtrlr"}}]})
        assert empty["status"] == "EmptyResultSet"


async def test_get_transaction_status_clear_cache_and_data_transfer(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            csms.behave("TransactionEvent", "timeout")    # the CSMS sits on it: stays queued
            await secc.send_transaction_event("Started", "gts1", "CablePluggedIn",
                                              charging_state="EVConnected")
            await secc.flush(5)
            tid = bridge.queue.transaction_of(1, "gts1")
            status = await csms.call(STATION, "GetTransactionStatus", {"transactionId": tid})
            assert status == {"messagesInQueue": True, "ongoingIndicator": True}
            csms.behave("TransactionEvent", "accept")
            await secc.send_transaction_event("Ended", "gts1", "EVDeparted",
                                              stopped_reason="EVDisconnected")
            await secc.flush(5)
            await csms.wait_for("TransactionEvent", 3, timeout=15)
            await wait_until(lambda: bridge.queue.pending() == 0, 10, "queue drained")
            status = await csms.call(STATION, "GetTransactionStatus", {"transactionId": tid})
            assert status == {"messagesInQueue": False, "ongoingIndicator": False}
            unknown = await csms.call(STATION, "GetTransactionStatus", {"transactionId": "nope"})
            assert unknown == {"messagesInQueue": False, "ongoingIndicator": False}
            any_queued = await csms.call(STATION, "GetTransactionStatus", {})
            assert any_queued == {"messagesInQueue": False}
            # ClearCache
            bridge.auth_cache.remember("04AA", "ISO14443", "Accepted", 4e9)
            assert (await csms.call(STATION, "ClearCache", {}))["status"] == "Accepted"
            assert bridge.auth_cache.lookup("04AA", "ISO14443", 0) is None
            await csms.call(STATION, "SetVariables", {"setVariableData": [{
                "component": {"name": "AuthCacheCtrlr"}, "variable": {"name": "Enabled"},
                "attributeValue": "false"}]})
            assert (await csms.call(STATION, "ClearCache", {}))["status"] == "Rejected"
            # DataTransfer
            answer = await csms.call(STATION, "DataTransfer", {"vendorId": "com.example",
                                                               "messageId": "x", "data": 1})
            assert answer["status"] == "UnknownVendorId"


async def test_local_auth_list_versions_and_offline_authorization(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            version = await csms.call(STATION, "GetLocalListVersion", {})
            assert version["versionNumber"] == 0

            def entry(token: str, status: str | None) -> dict:
                item: dict = {"idToken": {"idToken": token, "type": "ISO14443"}}
                if status:
                    item["idTokenInfo"] = {"status": status}
                return item

            full = await csms.call(STATION, "SendLocalList", {
                "versionNumber": 5, "updateType": "Full",
                "localAuthorizationList": [entry("04AA", "Accepted"), entry("04BB", "Blocked"),
                                           entry("04CC", "Accepted")]})
            assert full["status"] == "Accepted"
            stale = await csms.call(STATION, "SendLocalList", {
                "versionNumber": 5, "updateType": "Differential",
                "localAuthorizationList": [entry("04DD", "Accepted")]})
            assert stale["status"] == "VersionMismatch"
            diff = await csms.call(STATION, "SendLocalList", {
                "versionNumber": 6, "updateType": "Differential",
                "localAuthorizationList": [entry("04CC", None), entry("04DD", "Accepted")]})
            assert diff["status"] == "Accepted"
            assert (await csms.call(STATION, "GetLocalListVersion", {}))["versionNumber"] == 6
            entries = await csms.call(STATION, "GetVariables", {"getVariableData": [{
                "component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"}}, {
                "component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}]})
            assert [r["attributeValue"] for r in entries["getVariableResult"]] == ["3", "0"]
            await csms.call(STATION, "InstallCertificate", {
                "certificateType": "MORootCertificate",
                "certificate": CsmsPki(tmp_path / "pki").files["root"].read_text()})
            entries = await csms.call(STATION, "GetVariables", {"getVariableData": [{
                "component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}]})
            assert entries["getVariableResult"][0]["attributeValue"] == "1"
            await csms.call(STATION, "SetVariables", {"setVariableData": [{
                "component": {"name": "AuthCtrlr"}, "variable": {"name": "LocalAuthorizeOffline"},
                "attributeValue": "true"}]})
            await csms.stop()                     # the CSMS goes away
            await wait_until(lambda: not bridge.online, 10, "offline")
            authorizer = BusAuthorizer(secc)

            async def offline(token: str):
                return await authorizer.authorize(AuthorizationRequest("1", "la1", token,
                                                                       "ISO14443"))
            accepted = await offline("04AA")
            assert accepted.status is AuthorizationStatus.ACCEPTED
            assert "local authorization list v6" in accepted.reason
            assert (await offline("04BB")).status is AuthorizationStatus.BLOCKED
            assert (await offline("04DD")).status is AuthorizationStatus.ACCEPTED
            removed = await offline("04CC")        # removed by the Differential update
            assert removed.status is AuthorizationStatus.TIMEOUT   # undecided offline
    await csms.start()   # the fixture stops it again


async def test_known_but_unsupported_action_is_not_supported(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await online_bridge(bridge, csms)
        with pytest.raises(CsmsCallError) as info:
            await csms.call(STATION, "ReserveNow", {
                "id": 1, "expiryDateTime": "2030-01-01T00:00:00Z",
                "idToken": {"idToken": "04AA", "type": "ISO14443"}})
    assert info.value.code == "NotSupported"
