"""``secc doctor`` reads what the real bridge recorded about the CSMS (retained bridge/csms
state): faults are produced by the test CSMS and the bridge, never written by the test."""

from __future__ import annotations

import asyncio

from bridge_harness import (BUS_PASSWORD, BUS_USER, PASSWORD, STATION, bridge_config,
                            running_bridge, secc_config, wait_until)

from secc.bus.client import SeccBusClient
from secc.config import loads_board_config
from secc.doctor import Status
from secc.doctor.bus import bus_findings, read_bus
from sim.charger import start_bridge_process
from sim.csms import CsmsPki, TestCsms



def board(broker, password: str = BUS_PASSWORD, port: int | None = None):
    return loads_board_config(f"""
[board]
name = "doctor"
evse_id = "DE*PNX*E00001*1"
[bus]
enabled = true
mqtt_host = "{broker.host}"
mqtt_port = {port or broker.port}
username = "{BUS_USER}"
password = "{password}"
""")


async def doctor(config) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in bus_findings(config, await read_bus(config, wait=1.0)):
        found.setdefault(finding.check, []).append(finding)
    return found


async def doctor_until(config, check: str, predicate, timeout: float = 10.0) -> dict:
    """The doctor's findings once ``predicate(finding of check)`` holds (the retained state
    the bridge publishes may lag its in-memory state by a bus round trip)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await doctor(config)
        if check in found and predicate(found[check][0]):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check}: {found.get(check)}")


async def test_csms_without_15118_messages_is_named_with_the_fix(tmp_path, bus_broker, csms):
    csms.without_pnc()
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await wait_until(lambda: bridge.online, 10, "bridge online")
        secc = SeccBusClient(secc_config(tmp_path, bus_broker))
        await secc.start()
        try:
            await secc.wait_connected(5)
            try:
                await secc.request("get_15118_ev_certificate", {
                    "session_id": "s1", "iso15118_schema_version": "urn:iso:15118:2:2013:MsgDef",
                    "action": "Install", "exi_request": "gJgAAAA="})
            except Exception as exc:  # the bus error reply: NotSupportedByCsms
                assert "NotSupportedByCsms" in repr(exc) or "does not support" in str(exc)
            found = await doctor(board(bus_broker))
            assert found["secc.daemon"][0].status is Status.OK
        finally:
            await secc.stop()
        found = await doctor(board(bus_broker))
        assert "stopped or lost the broker" in found["secc.daemon"][0].summary
    assert found["bus.broker"][0].status is Status.OK
    assert found["bridge.alive"][0].status is Status.OK
    assert found["csms.connection"][0].status is Status.OK
    assert "security profile 1" in found["csms.connection"][0].summary
    assert found["csms.security_profile"][0].status is Status.WARN
    refused = found["csms.iso15118"]
    assert [f.status for f in refused] == [Status.FAIL]
    assert "Get15118EVCertificate" in refused[0].summary
    assert "NotImplemented" in refused[0].summary
    assert "[v2g].plug_and_charge = false" in refused[0].fix


async def test_healthy_csms_link_has_no_15118_finding(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await wait_until(lambda: bridge.online, 10, "bridge online")
        found = await doctor(board(bus_broker))
    assert [f.status for f in found["csms.iso15118"]] == [Status.OK]
    assert found["secc.daemon"][0].status is Status.WARN          # no SECC in this test
    assert found["csms.connection"][0].details["registration"] == "Accepted"


async def test_csms_tls_failure_is_reported_with_its_cause(tmp_path, bus_broker):
    pki = CsmsPki(tmp_path / "csms-pki")
    csms = await TestCsms(passwords={STATION: PASSWORD}, tls=pki.server_tls(), pki=pki).start()
    try:
        config = bridge_config(tmp_path, bus_broker, csms, security_profile=2,
                               ca_file=pki.files["stranger_root"])
        async with running_bridge(config):
            found = await doctor_until(board(bus_broker), "csms.tls",
                                       lambda f: f.status is Status.FAIL)
    finally:
        await csms.stop()
    assert found["csms.connection"][0].status is Status.FAIL
    tls = found["csms.tls"][0]
    assert tls.status is Status.FAIL and "CERTIFICATE_VERIFY_FAILED" in tls.summary
    assert "TLS versions/cipher suites" in tls.fix


async def test_bridge_down_broker_down_and_wrong_password(tmp_path, bus_broker, csms):
    # the bridge as the unit runs it, stopped as systemd stops it (SIGTERM)
    bridge = start_bridge_process(bridge_config(tmp_path, bus_broker, csms),
                                  tmp_path / "bridge.toml")
    try:
        await csms.wait_for("BootNotification", timeout=20)
        found = await doctor(board(bus_broker))
        assert found["bridge.alive"][0].status is Status.OK
    finally:
        bridge.terminate()
        await asyncio.to_thread(bridge.wait, 10)
    # gone: the broker publishes its last will (online = false, retained)
    found = await doctor(board(bus_broker))
    assert found["bridge.alive"][0].status is Status.FAIL
    assert "pysecc-ocpp-bridge" in found["bridge.alive"][0].fix

    found = await doctor(board(bus_broker, password="wrong"))
    assert found["bus.broker"][0].status is Status.FAIL
    assert "refused our credentials" in found["bus.broker"][0].summary
    assert "[bus].username/password" in found["bus.broker"][0].fix

    from secc.bus.broker import free_tcp_port
    found = await doctor(board(bus_broker, port=free_tcp_port()))
    assert found["bus.broker"][0].status is Status.FAIL
    assert "no broker reachable" in found["bus.broker"][0].summary


async def test_csms_that_rejects_the_station_is_named(tmp_path, bus_broker, csms):
    csms.behave("BootNotification", "reject")
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await wait_until(lambda: bridge.registration == "Rejected", 10, "BootNotification")
        found = await doctor_until(board(bus_broker), "csms.connection",
                                   lambda f: "Rejected" in f.summary)
    connection = found["csms.connection"][0]
    assert connection.status is Status.FAIL
    assert "answered BootNotification Rejected" in connection.summary
    assert "accept this station id" in connection.fix
