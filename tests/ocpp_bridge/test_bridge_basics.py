"""Boot, heartbeat, status, authorize and transaction events through the real bus and CSMS."""

from __future__ import annotations

import asyncio

from bridge_harness import bridge_config, online_bridge, running_bridge, secc_config, wait_until

from secc.authorization import AuthorizationRequest, AuthorizationStatus
from secc.bus.authorizer import BusAuthorizer
from secc.bus.client import SeccBusClient, reading, sample, utc_now


async def test_bridge_boots_and_reports_status_of_the_evse(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            await secc.publish_state("Occupied", session_id="aa01")
            await wait_until(lambda: {"evseId": 1, "connectorStatus": "Occupied"} in [
                {k: s[k] for k in ("evseId", "connectorStatus")}
                for s in csms.messages("StatusNotification")], 10, "Occupied")
    boot = csms.messages("BootNotification")[0]
    assert boot["chargingStation"]["vendorName"] == "pysecc"


async def test_eim_authorize_accepted_via_bus_authorizer(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            decision = await BusAuthorizer(secc).authorize(
                AuthorizationRequest("1", "aa02", "04A1B2C3D4", "ISO14443"))
    assert decision.status is AuthorizationStatus.ACCEPTED
    assert csms.messages("Authorize")[0]["idToken"] == {"idToken": "04A1B2C3D4",
                                                        "type": "ISO14443"}


async def test_transaction_events_reach_csms_in_order_with_seqno(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            # the SECC learns it from the bridge's retained topics; before that it would
            # (rightly) mark its events generated offline
            await wait_until(lambda: secc.csms_available, 10, "SECC sees the CSMS")
            await secc.send_transaction_event("Started", "aa03", "CablePluggedIn",
                                              charging_state="EVConnected")
            await secc.send_meter_values([reading(utc_now(), [
                sample("Energy.Active.Import.Register", 1000.0, unit="Wh")])], session_id="aa03")
            await secc.send_transaction_event("Ended", "aa03", "EVDeparted",
                                              stopped_reason="EVDisconnected")
            await secc.flush(10)
            events = await csms.wait_for("TransactionEvent", 3)
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
    assert [e["seqNo"] for e in events] == [0, 1, 2]
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert events[1]["triggerReason"] == "MeterValuePeriodic"
    assert events[1]["meterValue"][0]["sampledValue"][0]["value"] == 1000.0
    assert not any(e.get("offline") for e in events)
    await asyncio.sleep(0)


async def test_signed_ocmf_meter_values_reach_csms_as_signed_meter_value(tmp_path, bus_broker,
                                                                         csms):
    ocmf = 'OCMF|{"FV":"1.0","GI":"pysecc meter","RD":[{"RV":1.234,"RU":"kWh"}]}|' \
           '{"SA":"ECDSA-secp256r1-SHA256","SD":"3045022100ab"}'
    signed = {"signed_meter_data": ocmf, "signing_method": "ECDSA-secp256r1-SHA256",
              "encoding_method": "OCMF", "public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await online_bridge(bridge, csms)
            await secc.send_transaction_event("Started", "sg1", "Authorized", readings=[reading(
                utc_now(), [sample("Energy.Active.Import.Register", 1234.0, unit="Wh",
                                   context="Transaction.Begin", signed=signed)])])
            await secc.send_meter_values([reading(utc_now(), [sample("Power.Active.Import",
                                                                     7400.0, unit="W")])])
            await secc.flush(5)
            started = (await csms.wait_for("TransactionEvent"))[0]
            meter_values = (await csms.wait_for("MeterValues"))[0]
    value = started["meterValue"][0]["sampledValue"][0]
    assert value["signedMeterValue"] == {"signedMeterData": ocmf,
                                         "signingMethod": "ECDSA-secp256r1-SHA256",
                                         "encodingMethod": "OCMF",
                                         "publicKey": signed["public_key"]}
    assert value["context"] == "Transaction.Begin"
    assert value["unitOfMeasure"] == {"unit": "Wh"}
    # no session: not part of a transaction, so a MeterValues request
    assert meter_values["evseId"] == 1
    assert meter_values["meterValue"][0]["sampledValue"][0]["measurand"] == "Power.Active.Import"


async def test_id_token_refused_in_transaction_event_reaches_the_secc(tmp_path, bus_broker, csms):
    csms.behave("TransactionEvent", "reject")      # idTokenInfo.status = Invalid
    updates, errors = [], []

    async def on_update(event):
        updates.append(event)

    async def on_error(event):
        errors.append(event)

    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            secc.on_event("authorization_update", on_update)
            secc.on_event("bridge_error", on_error)
            await online_bridge(bridge, csms)
            await secc.wait_connected()
            await secc.send_transaction_event("Updated", "au1", "Authorized",
                                              id_token={"id_token": "04BAD", "type": "ISO14443"})
            await wait_until(lambda: updates, 5, "authorization update")
    assert updates[0]["session_id"] == "au1" and updates[0]["status"] == "Invalid"
    assert not errors
