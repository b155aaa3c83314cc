"""Security profiles 1-3 against the test CSMS over real TLS sockets, good and bad."""

from __future__ import annotations


import pytest
from bridge_harness import PASSWORD, STATION, BusSpy, bridge_config, running_bridge, wait_until

from ocpp_bridge.config import ConfigError
from sim.csms import CsmsPki, TestCsms


@pytest.fixture(scope="module")
def csms_pki(tmp_path_factory):
    return CsmsPki(tmp_path_factory.mktemp("csms-pki"))


async def tls_csms(pki: CsmsPki, *, mtls: bool) -> TestCsms:
    csms = TestCsms(passwords={STATION: PASSWORD}, tls=pki.server_tls(require_client_cert=mtls),
                    require_client_cert=mtls, pki=pki)
    return await csms.start()


def sp3_config(tmp_path, bus_broker, csms, csms_pki, cert, key):
    """Security profile 3: TLS with the CSMS root, our client certificate, no password."""
    return bridge_config(tmp_path, bus_broker, csms, security_profile=3, password=None,
                         ca_file=csms_pki.files["root"], client_cert=cert, client_key=key)


async def test_sp1_wrong_password_is_refused_and_logged(tmp_path, bus_broker, csms, pysecc_logs):
    config = bridge_config(tmp_path, bus_broker, csms, password="not-the-password")
    async with running_bridge(config) as bridge:
        await wait_until(lambda: any(e[0] == "refused" for e in csms.events), 5, "refusal")
        assert not bridge.online
    assert not any(e[0] == "connected" for e in csms.events)
    assert any("HTTP 401" in r.getMessage() for r in pysecc_logs.records)


async def test_sp2_tls_with_basic_auth_connects(tmp_path, bus_broker, csms_pki):
    csms = await tls_csms(csms_pki, mtls=False)
    try:
        config = bridge_config(tmp_path, bus_broker, csms, security_profile=2,
                               ca_file=csms_pki.files["root"])
        async with running_bridge(config) as bridge:
            await wait_until(lambda: bridge.online, 10, "SP2 online")
            await csms.wait_for("BootNotification")
    finally:
        await csms.stop()


async def test_sp2_wrong_server_certificate_is_refused_with_diagnosis(
        tmp_path, bus_broker, csms_pki, pysecc_logs):
    csms = await tls_csms(csms_pki, mtls=False)
    try:
        config = bridge_config(tmp_path, bus_broker, csms, security_profile=2,
                               ca_file=csms_pki.files["stranger_root"])
        async with BusSpy(bus_broker, "pysecc/v1/evse/1/events/error") as spy:
            async with running_bridge(config) as bridge:
                await wait_until(lambda: spy.messages, 10, "TLS error event")
                assert not bridge.online
    finally:
        await csms.stop()
    assert not any(e[0] == "connected" for e in csms.events)
    assert spy.messages[0]["code"] == "TlsHandshakeFailed"
    record = next(r for r in pysecc_logs.records if "TLS handshake" in r.getMessage())
    assert "CERTIFICATE_VERIFY_FAILED" in record.getMessage()
    assert "CSMSRootCertificate" in record.getMessage()
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in record.we_offered_ciphers
    assert "TLSv1_2" in record.we_offered_versions
    assert "server chose TLSv1.3" in record.handshake       # read from the ServerHello


async def test_sp3_mutual_tls_with_station_certificate_connects(tmp_path, bus_broker, csms_pki):
    csms = await tls_csms(csms_pki, mtls=True)
    cert, key = csms_pki.station_credentials(STATION)
    try:
        config = sp3_config(tmp_path, bus_broker, csms, csms_pki, cert, key)
        async with running_bridge(config) as bridge:
            await wait_until(lambda: bridge.online, 10, "SP3 online")
    finally:
        await csms.stop()


async def test_sp3_certificate_of_another_station_is_refused(tmp_path, bus_broker, csms_pki):
    csms = await tls_csms(csms_pki, mtls=True)
    cert, key = csms_pki.station_credentials("SOMEONE-ELSE")
    try:
        config = sp3_config(tmp_path, bus_broker, csms, csms_pki, cert, key)
        async with running_bridge(config) as bridge:
            await wait_until(lambda: any(e[0] == "refused" for e in csms.events), 10, "refusal")
            assert not bridge.online
    finally:
        await csms.stop()


async def test_sp3_client_certificate_from_unknown_ca_fails_handshake(tmp_path, bus_broker,
                                                                      csms_pki, pysecc_logs):
    csms = await tls_csms(csms_pki, mtls=True)
    other = CsmsPki(tmp_path / "other-pki")
    cert, key = other.station_credentials(STATION)
    try:
        config = sp3_config(tmp_path, bus_broker, csms, csms_pki, cert, key)
        async with running_bridge(config) as bridge:
            await wait_until(lambda: sum("refused by the CSMS" in r.getMessage()
                                         for r in pysecc_logs.records) >= 2, 10,
                             "two refused connection attempts")
            assert not bridge.online and bridge.csms_connections == 0
    finally:
        await csms.stop()
    assert not any(e[0] == "connected" for e in csms.events)
    # the same-named "Station CA" of another PKI: the CSMS's signature check fails
    refused = [r.getMessage() for r in pysecc_logs.records
               if "refused by the CSMS" in r.getMessage()]
    assert refused and "rejected our client certificate" in refused[0]
    assert "server chose TLSv1.3" in refused[0]
    # and the CSMS side logs what the bridge offered in its ClientHello
    assert "sent fatal decrypt_error" in csms.tls_failures[0]
    assert "TLSv1.3,TLSv1.2" in csms.tls_failures[0]
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in csms.tls_failures[0]


@pytest.mark.parametrize("overrides, message", [
    ({"security_profile": 2}, "wss://"),
    ({"security_profile": 4}, "1, 2 or 3"),
    ({"password": None}, "password"),
])
def test_config_rejects_inconsistent_security_settings(tmp_path, bus_broker, overrides, message):
    csms = TestCsms(port=1)
    with pytest.raises(ConfigError, match=message):
        bridge_config(tmp_path, bus_broker, csms, **overrides)


async def test_sp3_renewed_station_certificate_is_used_on_the_next_connection(
        tmp_path, bus_broker, csms_pki):
    csms = await tls_csms(csms_pki, mtls=True)
    cert, key = csms_pki.station_credentials(STATION)
    try:
        config = sp3_config(tmp_path, bus_broker, csms, csms_pki, cert, key)
        async with running_bridge(config) as bridge:
            await wait_until(lambda: bridge.online, 10, "SP3 online")
            answer = await csms.call(STATION, "TriggerMessage",
                                     {"requestedMessage": "SignChargingStationCertificate"})
            signed = config.storage.certificates / "ChargingStationCertificate" / "chain.pem"
            await wait_until(signed.exists, 5, "renewed certificate installed")
            await csms.disconnect()
            await wait_until(lambda: len(csms.client_serials) >= 2 and bridge.online, 10,
                             "reconnected")
    finally:
        await csms.stop()
    assert answer == {"status": "Accepted"}
    assert csms.messages("SignCertificate")[0]["certificateType"] == "ChargingStationCertificate"
    assert csms.client_serials[0] != csms.client_serials[-1]
