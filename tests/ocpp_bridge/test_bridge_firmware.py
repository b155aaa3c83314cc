"""SignedUpdateFirmware: the package format, signature and certificate checks, the
side-by-side store, and the whole flow through the bridge against the test CSMS and its file
server (download, verify, install, switch at idle, confirm or roll back after the restart)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tarfile

import pytest
from bridge_harness import STATION, bridge_config, online_bridge, running_bridge, secc_config
from bridge_harness import wait_until

from ocpp_bridge.firmware import (
    FirmwareRejected,
    FirmwareStore,
    build_package,
    check_signing_certificate,
    read_manifest,
    sign_package,
    verify_signature,
)
from secc.bus.client import SeccBusClient
from sim.file_server import FileServer
from sim.testing.pki import TestPKI


@pytest.fixture(scope="module")
def maker():
    pki = TestPKI()
    root = pki.make_root("Manufacturer Root CA", "pysecc OEM", None)
    signer = pki.issue_leaf(root, "pysecc firmware signing", "pysecc OEM")
    other_root = pki.make_root("Someone Else Root", "evil", None)
    stranger = pki.issue_leaf(other_root, "pysecc firmware signing", "evil")
    return root, signer, stranger


def package(tmp_path, version="0.2.0", payload=b"wheel bytes"):
    wheel = tmp_path / f"pysecc-{version}-py3-none-any.whl"
    wheel.write_bytes(payload)
    return build_package(version, [wheel])


# --- pure checks ------------------------------------------------------------------------------------
def test_package_manifest_and_hashes(tmp_path):
    good = package(tmp_path)
    assert read_manifest(good)["version"] == "0.2.0"
    # a member changed after the manifest was written
    tampered = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(good)) as src, tarfile.open(fileobj=tampered,
                                                                     mode="w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.endswith(".whl"):
                data = data.replace(b"wheel", b"WHEEL")
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(FirmwareRejected, match="SHA-256") as info:
        read_manifest(tampered.getvalue())
    assert info.value.status == "InstallVerificationFailed"
    for cut in (600, 1100):     # inside the manifest; inside the wheel
        with pytest.raises(FirmwareRejected, match="unreadable|missing"):
            read_manifest(good[:cut])


def test_signature_and_certificate_checks(tmp_path, maker):
    root, signer, stranger = maker
    data = package(tmp_path)
    signature = sign_package(data, signer.key_pem)
    cert = check_signing_certificate(signer.cert_pem.decode(), [root.cert])
    verify_signature(data, cert, signature)
    for bad_data in (data[:-10], data + b"x"):
        with pytest.raises(FirmwareRejected) as info:
            verify_signature(bad_data, cert, signature)
        assert info.value.status == "InvalidSignature"
    with pytest.raises(FirmwareRejected) as info:
        verify_signature(data, cert, sign_package(data, stranger.key_pem))
    assert info.value.status == "InvalidSignature"
    for pem, roots, words in ((stranger.cert_pem.decode(), [root.cert], "no trusted root"),
                              (signer.cert_pem.decode(), [], "no ManufacturerRootCertificate"),
                              ("garbage", [root.cert], "unreadable")):
        with pytest.raises(FirmwareRejected, match=words) as info:
            check_signing_certificate(pem, roots)
        assert info.value.status == "InvalidCertificate"


def test_store_installs_side_by_side_switches_and_rolls_back(tmp_path):
    store = FirmwareStore(tmp_path / "fw")
    for version in ("0.1.0", "0.2.0"):
        data = package(tmp_path, version, version.encode())
        store.install(data, read_manifest(data), create_venv=False)
    store.switch("0.1.0", 1, deadline=0)
    store.confirm()
    store.switch("0.2.0", 2, deadline=0)
    assert store.current_version() == "0.2.0" and store.previous_version() == "0.1.0"
    assert (tmp_path / "fw" / "current" / "pysecc-0.2.0-py3-none-any.whl").read_bytes() == \
        b"0.2.0"
    assert (tmp_path / "fw" / "versions" / "0.1.0").is_dir()        # kept beside it
    assert store.pending()["version"] == "0.2.0"
    assert store.rollback() == "0.1.0"
    assert store.current_version() == "0.1.0" and store.pending() is None
    with pytest.raises(FirmwareRejected, match="already running"):
        data = package(tmp_path, "0.1.0")
        store.install(data, read_manifest(data), create_venv=False)


# --- through the bridge ----------------------------------------------------------------------------
def config_for(tmp_path, bus_broker, csms, marker):
    config = bridge_config(tmp_path, bus_broker, csms)
    return dataclasses.replace(config, station=dataclasses.replace(
        config.station, firmware_create_venv=False, firmware_version="0.1.0",
        firmware_restart_command=f"echo restart >> {marker}"))


@contextlib.asynccontextmanager
async def station(tmp_path, bus_broker, csms, files, maker, *, seccs=True):
    marker = tmp_path / "restarts"
    async with running_bridge(config_for(tmp_path, bus_broker, csms, marker)) as bridge:
        bridge.firmware.idle_poll = 0.1
        async with contextlib.AsyncExitStack() as stack:
            if seccs:
                for evse in (1, 2):
                    await stack.enter_async_context(SeccBusClient(secc_config(tmp_path,
                                                                              bus_broker, evse)))
            await online_bridge(bridge, csms)
            root = maker[0]
            answer = await csms.call(STATION, "InstallCertificate", {
                "certificateType": "ManufacturerRootCertificate",
                "certificate": root.cert_pem.decode()})
            assert answer["status"] == "Accepted"
            yield bridge, marker


def update_request(files, data, signer, request_id=1, signature=None, path="/fw/pkg.tar",
                   retries=0):
    return {"requestId": request_id, "retries": retries, "retryInterval": 0, "firmware": {
        "location": files.serve(path, data), "retrieveDateTime": "2020-01-01T00:00:00Z",
        "signingCertificate": signer.cert_pem.decode(),
        "signature": signature or sign_package(data, signer.key_pem)}}


def firmware_statuses(csms, request_id):
    return [m["status"] for m in csms.messages("FirmwareStatusNotification")
            if m.get("requestId") == request_id]


async def test_signed_update_switches_and_is_confirmed_after_restart(
        tmp_path, bus_broker, csms, maker):
    data = package(tmp_path, "0.2.0")
    async with FileServer() as files:
        async with station(tmp_path, bus_broker, csms, files, maker) as (bridge, marker):
            answer = await csms.call(STATION, "UpdateFirmware",
                                     update_request(files, data, maker[1]))
            await wait_until(lambda: "InstallRebooting" in firmware_statuses(csms, 1), 10,
                             "switch")
            await wait_until(lambda: marker.exists(), 5, "restart command")
            assert bridge.firmware.store.current_version() == "0.2.0"
        # the restart: a new bridge process on the same storage, the SECCs come back
        async with station(tmp_path, bus_broker, csms, files, maker) as (bridge, marker):
            await wait_until(lambda: "Installed" in firmware_statuses(csms, 1), 10,
                             "confirmed")
    assert answer == {"status": "Accepted"}
    assert firmware_statuses(csms, 1) == ["Downloading", "Downloaded", "SignatureVerified",
                                          "Installing", "InstallRebooting", "Installed"]
    boots = csms.messages("BootNotification")
    assert boots[0]["chargingStation"]["firmwareVersion"] == "0.1.0"
    assert boots[-1]["chargingStation"]["firmwareVersion"] == "0.2.0"


async def test_version_that_never_gets_ready_is_rolled_back(tmp_path, bus_broker, csms, maker):
    data = package(tmp_path, "0.3.0")
    async with FileServer() as files:
        async with station(tmp_path, bus_broker, csms, files, maker) as (bridge, marker):
            bridge.firmware.ready_timeout = 1.5
            await csms.call(STATION, "UpdateFirmware",
                            update_request(files, data, maker[1], request_id=3))
            await wait_until(lambda: "InstallRebooting" in firmware_statuses(csms, 3), 10,
                             "switch")
            await wait_until(lambda: marker.exists(), 10, "restart command")
        # after the restart the SECCs never come online: not READY
        async with station(tmp_path, bus_broker, csms, files, maker, seccs=False) as (
                bridge, marker):
            await wait_until(lambda: "InstallationFailed" in firmware_statuses(csms, 3), 10,
                             "rollback")
            assert bridge.firmware.store.current_version() is None     # back to the original
            await wait_until(lambda: marker.read_text().count("restart") == 2, 10,
                             "restart after the rollback")            # switch + rollback
    assert firmware_statuses(csms, 3)[-2:] == ["InstallRebooting", "InstallationFailed"]


async def test_bad_signature_wrong_certificate_and_truncated_download_change_nothing(
        tmp_path, bus_broker, csms, maker):
    root, signer, stranger = maker
    data = package(tmp_path, "0.4.0")
    async with FileServer() as files:
        async with station(tmp_path, bus_broker, csms, files, maker) as (bridge, marker):
            other = sign_package(data + b"-", signer.key_pem)
            await csms.call(STATION, "UpdateFirmware",
                            update_request(files, data, signer, request_id=4, signature=other))
            await wait_until(lambda: "InvalidSignature" in firmware_statuses(csms, 4), 10, "sig")
            wrong = await csms.call(STATION, "UpdateFirmware",
                                    update_request(files, data, stranger, request_id=5))
            files.truncate_after["/fw/cut.tar"] = len(data) // 2
            await csms.call(STATION, "UpdateFirmware", update_request(
                files, data, signer, request_id=6, path="/fw/cut.tar", retries=1))
            await wait_until(lambda: "DownloadFailed" in firmware_statuses(csms, 6), 20, "cut")
            await wait_until(lambda: {"InvalidFirmwareSignature",
                                      "InvalidFirmwareSigningCertificate"} <= {
                m["type"] for m in csms.messages("SecurityEventNotification")}, 10, "events")
            assert bridge.firmware.store.current_version() is None
            assert not marker.exists()
    assert firmware_statuses(csms, 4) == ["Downloading", "Downloaded", "InvalidSignature"]
    assert wrong["status"] == "InvalidCertificate" and firmware_statuses(csms, 5) == []
    assert firmware_statuses(csms, 6) == ["Downloading", "DownloadFailed"]
    assert [r for r in files.requests if r[1] == "/fw/cut.tar"] == [("GET", "/fw/cut.tar")] * 2


async def test_switch_waits_for_the_running_transaction_to_end(tmp_path, bus_broker, csms,
                                                               maker):
    data = package(tmp_path, "0.5.0")
    async with FileServer() as files:
        async with station(tmp_path, bus_broker, csms, files, maker) as (bridge, marker):
            async with SeccBusClient(secc_config(tmp_path, bus_broker, 1)) as secc:
                await secc.send_transaction_event("Started", "fw1", "CablePluggedIn",
                                                  charging_state="EVConnected")
                await wait_until(lambda: bridge.queue.running_transaction_starts(), 5, "transaction")
                await csms.call(STATION, "UpdateFirmware",
                                update_request(files, data, maker[1], request_id=7))
                await wait_until(lambda: "InstallScheduled" in firmware_statuses(csms, 7), 10,
                                 "waiting for idle")
                assert bridge.firmware.store.current_version() is None   # not while charging
                await secc.send_transaction_event("Ended", "fw1", "EVDeparted",
                                                  stopped_reason="EVDisconnected")
                await wait_until(lambda: "InstallRebooting" in firmware_statuses(csms, 7), 10,
                                 "switch after the transaction")
    assert bridge.firmware.store.current_version() == "0.5.0"


def test_build_script_writes_a_package_and_a_valid_request(tmp_path, maker, capsys):
    import json

    from ocpp_bridge.firmware import main

    root, signer, _ = maker
    (tmp_path / "key.pem").write_bytes(signer.key_pem)
    (tmp_path / "cert.pem").write_bytes(signer.cert_pem)
    wheel = tmp_path / "pysecc-0.9.0-py3-none-any.whl"
    wheel.write_bytes(b"payload")
    out = tmp_path / "pysecc-0.9.0.tar"
    assert main(["build", "--version", "0.9.0", "--key", str(tmp_path / "key.pem"),
                 "--cert", str(tmp_path / "cert.pem"), "--out", str(out), str(wheel)]) == 0
    printed = json.loads(capsys.readouterr().out)
    firmware = printed["updateFirmware"]["firmware"]
    data = out.read_bytes()
    assert read_manifest(data)["version"] == "0.9.0"
    cert = check_signing_certificate(firmware["signingCertificate"], [root.cert])
    verify_signature(data, cert, firmware["signature"])
