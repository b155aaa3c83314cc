"""Advanced Security at the bridge: the rotating security log and GetLog uploads over HTTP to
the test CSMS's file server (real sockets), with LogStatusNotification."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socket

from bridge_harness import STATION, bridge_config, online_bridge, running_bridge, wait_until

from ocpp_bridge import security
from ocpp_bridge.security import SecurityLog, log_lines, upload_target
from sim.file_server import FileServer


@contextlib.asynccontextmanager
async def bridge_with_files(tmp_path, bus_broker, csms):
    async with FileServer() as files:
        async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
            await online_bridge(bridge, csms)
            yield bridge, files


def statuses(csms, request_id):
    return [m["status"] for m in csms.messages("LogStatusNotification")
            if m.get("requestId") == request_id]


def test_security_log_rotates_and_filters_by_time(tmp_path, monkeypatch):
    monkeypatch.setattr(security, "MAX_BYTES", 400)
    path = tmp_path / "security.log"
    log = SecurityLog(path)
    for i in range(30):
        log.record("SettingSystemTime", f"event {i}", when=1_700_000_000 + i)
    log.close()
    assert path.with_name("security.log.1").exists()          # rotated
    assert not path.with_name(f"security.log.{security.BACKUPS + 1}").exists()
    lines = [json.loads(x) for x in log_lines(path, None, None)]
    assert [x["techInfo"] for x in lines] == sorted((x["techInfo"] for x in lines),
                                                    key=lambda t: int(t.split()[1]))
    assert lines[-1]["techInfo"] == "event 29"                 # newest kept, oldest dropped
    window = log_lines(path, 1_700_000_025, 1_700_000_027)
    assert [json.loads(x)["techInfo"] for x in window] == ["event 25", "event 26", "event 27"]


def test_upload_target_accepts_only_http_urls():
    assert upload_target("http://h/logs/", "f.gz") == "http://h/logs/f.gz"
    assert upload_target("https://h/put/here", "f.gz") == "https://h/put/here"
    for bad in ("ftp://h/x", "file:///etc/passwd", "not a url"):
        try:
            upload_target(bad, "f")
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_get_log_uploads_the_security_log(tmp_path, bus_broker, csms):
    async with bridge_with_files(tmp_path, bus_broker, csms) as (bridge, files):
        # a security event the CSMS caused: a security setting changed
        await csms.call(STATION, "SetVariables", {"setVariableData": [{
            "component": {"name": "SecurityCtrlr"}, "variable": {"name": "OrganizationName"},
            "attributeValue": "ACME"}]})
        answer = await csms.call(STATION, "GetLog", {
            "logType": "SecurityLog", "requestId": 7, "log": {"remoteLocation":
                                                              files.url("/logs/")}})
        await wait_until(lambda: "Uploaded" in statuses(csms, 7), 10, "upload")
    assert answer == {"status": "Accepted", "filename": "CS1-SecurityLog-7.jsonl.gz"}
    assert statuses(csms, 7) == ["Uploading", "Uploaded"]
    lines = [json.loads(x) for x in gzip.decompress(
        files.uploads["/logs/CS1-SecurityLog-7.jsonl.gz"]).decode().splitlines()]
    kinds = [x["type"] for x in lines]
    assert "StartupOfTheDevice" in kinds and "ReconfigurationOfSecurityParameters" in kinds
    # and each of them went to the CSMS as SecurityEventNotification too
    sent = [m["type"] for m in csms.messages("SecurityEventNotification")]
    assert "ReconfigurationOfSecurityParameters" in sent


async def test_get_log_diagnostics(tmp_path, bus_broker, csms, caplog):
    caplog.set_level(logging.INFO, logger="pysecc")   # what --log-level info does
    async with bridge_with_files(tmp_path, bus_broker, csms) as (bridge, files):
        answer = await csms.call(STATION, "GetLog", {
            "logType": "DiagnosticsLog", "requestId": 8,
            "log": {"remoteLocation": files.url("/up/diag.gz")}})
        await wait_until(lambda: "Uploaded" in statuses(csms, 8), 10, "upload")
    assert answer["status"] == "Accepted"
    text = gzip.decompress(files.uploads["/up/diag.gz"]).decode()
    assert "connected to the CSMS" in text


async def test_unreachable_log_url_ends_in_upload_failure(tmp_path, bus_broker, csms):
    with socket.socket() as sock:          # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    async with bridge_with_files(tmp_path, bus_broker, csms) as (bridge, files):
        answer = await csms.call(STATION, "GetLog", {
            "logType": "SecurityLog", "requestId": 9, "retries": 2, "retryInterval": 0,
            "log": {"remoteLocation": f"http://127.0.0.1:{dead}/logs/"}})
        await wait_until(lambda: "UploadFailure" in statuses(csms, 9), 15, "failure")
        files.fail_uploads = True
        await csms.call(STATION, "GetLog", {
            "logType": "SecurityLog", "requestId": 10, "retries": 0,
            "log": {"remoteLocation": files.url("/logs/")}})
        await wait_until(lambda: "UploadFailure" in statuses(csms, 10), 15, "HTTP 500")
        bad = await csms.call(STATION, "GetLog", {
            "logType": "SecurityLog", "requestId": 11,
            "log": {"remoteLocation": "ftp://127.0.0.1/logs/"}})
    assert answer["status"] == "Accepted"
    assert statuses(csms, 9) == ["Uploading", "UploadFailure"]
    assert statuses(csms, 10) == ["Uploading", "UploadFailure"]
    assert bad["status"] == "Rejected" and bad["statusInfo"]["reasonCode"] == "InvalidURL"


async def test_new_get_log_cancels_the_running_upload(tmp_path, bus_broker, csms):
    with socket.socket() as listener:      # accepts, never answers: an upload that hangs
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        async with bridge_with_files(tmp_path, bus_broker, csms) as (bridge, files):
            await csms.call(STATION, "GetLog", {
                "logType": "SecurityLog", "requestId": 20,
                "log": {"remoteLocation": f"http://127.0.0.1:{port}/"}})
            await wait_until(lambda: "Uploading" in statuses(csms, 20), 10, "first upload")
            second = await csms.call(STATION, "GetLog", {
                "logType": "SecurityLog", "requestId": 21,
                "log": {"remoteLocation": files.url("/logs/")}})
            await wait_until(lambda: "Uploaded" in statuses(csms, 21), 10, "second upload")
    assert second["status"] == "AcceptedCanceled"
    assert statuses(csms, 20) == ["Uploading"]


async def test_triggered_log_status_reports_the_running_upload_then_idle(tmp_path, bus_broker,
                                                                         csms):
    """F06.FR.17: a triggered LogStatusNotification says Uploading (with the requestId) while
    an upload runs, Idle otherwise."""
    with socket.socket() as listener:      # accepts, never answers: an upload that hangs
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        async with bridge_with_files(tmp_path, bus_broker, csms) as (bridge, files):
            await csms.call(STATION, "GetLog", {
                "logType": "SecurityLog", "requestId": 30,
                "log": {"remoteLocation": f"http://127.0.0.1:{port}/"}})
            await wait_until(lambda: "Uploading" in statuses(csms, 30), 10, "upload started")
            answer = await csms.call(STATION, "TriggerMessage",
                                     {"requestedMessage": "LogStatusNotification"})
            assert answer["status"] == "Accepted"
            await wait_until(lambda: statuses(csms, 30) == ["Uploading", "Uploading"], 10,
                             "triggered status")
            bridge.security.upload.cancel()
            await wait_until(lambda: bridge.security.upload.done(), 5, "upload cancelled")
            await csms.call(STATION, "TriggerMessage",
                            {"requestedMessage": "LogStatusNotification"})
            await wait_until(lambda: {"status": "Idle"} in csms.messages("LogStatusNotification"),
                             10, "triggered Idle")


async def test_failed_login_is_a_security_event_raised_once(tmp_path, bus_broker, csms):
    config = bridge_config(tmp_path, bus_broker, csms, password="not-the-password")
    async with running_bridge(config) as bridge:
        await wait_until(lambda: sum(e[0] == "refused" for e in csms.events) >= 3, 10,
                         "three refused attempts")
        await wait_until(lambda: any("FailedToAuthenticateAtCsms" in x for x in log_lines(
            bridge.security.paths["SecurityLog"], None, None)), 5, "security log line")
        lines = log_lines(bridge.security.paths["SecurityLog"], None, None)
        queued = bridge.queue.pending()
    assert sum("FailedToAuthenticateAtCsms" in x for x in lines) == 1   # not once per retry
    assert queued >= 2          # StartupOfTheDevice + the failed login, for when it gets in
