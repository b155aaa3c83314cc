"""OCPP 2.0.1 Core requests from the CSMS beyond the ISO 15118 ones: one ``@on`` handler each.

What only the SECC can do (reset, availability, the connector lock, a meter reading, an
update of the running transaction) goes over the bus as a command (docs/bus.md) and the SECC's
answer decides ours; a SECC that does not answer in ``station.command_timeout`` makes it
Rejected (UnlockFailed for UnlockConnector). The rest is answered here.

``CoreHandlers`` holds the handlers; ``BridgeChargePoint`` inherits them.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from ocpp_bridge.device_model import report_data
from ocpp_bridge.ocpp_io import CsmsCallError
from secc.common.logs import layer_logger

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")

# TriggerMessage: who produces each requested message
BRIDGE_TRIGGERS = frozenset({"BootNotification", "Heartbeat", "StatusNotification",
                             "SignChargingStationCertificate", "SignV2GCertificate",
                             "LogStatusNotification", "FirmwareStatusNotification"})
SECC_TRIGGERS = frozenset({"MeterValues", "TransactionEvent"})
# not offered: SignCombinedCertificate (we keep separate CSMS and V2G certificates),
# PublishFirmwareStatusNotification (only for a local controller) -> NotImplemented

IDLE_BEFORE_RESET_MAX_S = 120.0    # Reset: how long to wait for transactions to end


def combine(statuses: list[str | None], *, failed: str = "Rejected") -> str:
    """One OCPP status for a command sent to several EVSEs (None: the SECC did not answer)."""
    if not statuses or any(s in (None, "Rejected") for s in statuses):
        return failed
    return "Scheduled" if "Scheduled" in statuses else "Accepted"


def select_report(items: list[dict[str, Any]], model: Any,
                  component_variable: list[dict] | None,
                  component_criteria: list[str] | None) -> list[dict[str, Any]]:
    """GetReport (B08): the report items matching the requested components/variables and,
    for criteria, components whose variable of that name (Active, Available, Enabled,
    Problem) is true in our device model."""
    out = items
    if component_variable:
        wanted = [(cv["component"]["name"], (cv.get("variable") or {}).get("name"))
                  for cv in component_variable]
        out = [i for i in out if any(
            i["component"]["name"] == c and v in (None, i["variable"]["name"])
            for c, v in wanted)]
    if component_criteria:
        def meets(component: str) -> bool:
            for criterion in component_criteria:
                try:
                    if model.get(component, criterion) is True:
                        return True
                except KeyError:
                    continue
            return False
        out = [i for i in out if meets(i["component"]["name"])]
    return out


async def send_report(cp: Any, request_id: int, items: list[dict[str, Any]]) -> None:
    """NotifyReport messages of DeviceDataCtrlr.ItemsPerMessage items each (B07/B08)."""
    from ocpp_bridge.app import utc_now

    size = cp.bridge.device_model.get("DeviceDataCtrlr", "ItemsPerMessage")
    chunks = [items[i:i + size] for i in range(0, len(items), size)] or [[]]
    try:
        for seq_no, chunk in enumerate(chunks):
            payload: dict[str, Any] = {"requestId": request_id, "generatedAt": utc_now(),
                                       "seqNo": seq_no, "tbc": seq_no < len(chunks) - 1}
            if chunk:
                payload["reportData"] = chunk
            await cp.call_raw("NotifyReport", payload)
    except (CsmsCallError, TimeoutError) as exc:
        log.warning("NotifyReport failed", extra={"error": str(exc) or "no answer in time"})


async def restart_when_idle(bridge: Bridge, cp: Any) -> None:
    """B11/B12 for the whole station: once no transaction runs and its messages are through,
    drop the CSMS connection; the next one boots with reason RemoteReset."""
    deadline = time.monotonic() + IDLE_BEFORE_RESET_MAX_S
    while time.monotonic() < deadline and (
            any(bridge.queue.has_open_transaction(e) or bridge.queue.queued_transaction_events(e)
                for e in bridge.config.station.evse_ids)):
        await asyncio.sleep(0.05)
    log.info("station reset: reconnecting to the CSMS with BootNotification(RemoteReset)")
    bridge.enqueue_security_event("ResetOrReboot", "Reset requested by the CSMS")
    bridge.booted = False
    bridge.boot_reason = "RemoteReset"
    bridge.reconnect_now = True
    await cp._connection.close()


def _log_status(bridge: Bridge) -> dict[str, Any]:
    """F06.FR.17 / N01: Uploading (with its requestId) while a GetLog upload runs, else Idle."""
    upload = bridge.security.upload
    if upload is not None and not upload.done() and bridge.security.upload_request is not None:
        return {"status": "Uploading", "requestId": bridge.security.upload_request}
    return {"status": "Idle"}


def _firmware_status(bridge: Bridge) -> dict[str, Any]:
    """F06.FR.16 / L01: the last status of a running firmware update, else Idle."""
    firmware = bridge.firmware
    if firmware.task is not None and not firmware.task.done() and firmware.statuses:
        request_id, status = firmware.statuses[-1]
        payload: dict[str, Any] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        return payload
    return {"status": "Idle"}


class CoreHandlers:
    bridge: Bridge

    # --- Reset, availability, connector ----------------------------------------------------------
    def _targets(self, evse_id: int | None) -> list[int] | None:
        evse_ids = list(self.bridge.config.station.evse_ids)
        if not evse_id:
            return evse_ids
        return [evse_id] if evse_id in evse_ids else None

    @on(Action.reset)
    async def on_reset(self, type: str, evse_id: int | None = None, **_: Any):  # noqa: A002
        targets = self._targets(evse_id)
        if targets is None:
            return call_result.Reset(status="Rejected")
        replies = await asyncio.gather(*(self.bridge.command(t, "reset", {"type": type})
                                         for t in targets))
        status = combine([r["status"] if r else None for r in replies])
        log.info("Reset", extra={"type": type, "evse": evse_id or "station", "status": status})
        self.station_reset_accepted = status != "Rejected" and not evse_id
        return call_result.Reset(status=status)

    @after(Action.reset)
    async def after_reset(self, **_: Any) -> None:
        """After our answer went out: a station reset ends with a fresh boot."""
        if getattr(self, "station_reset_accepted", False):
            self.station_reset_accepted = False
            self.bridge.spawn(restart_when_idle(self.bridge, self))

    @on(Action.change_availability)
    async def on_change_availability(self, operational_status: str, evse: dict | None = None,
                                     **_: Any):
        evse = evse or {}
        targets = self._targets(evse.get("id"))
        if targets is None or evse.get("connector_id", 1) != 1:
            return call_result.ChangeAvailability(status="Rejected")
        command = {"operational": operational_status == "Operative"}
        replies = await asyncio.gather(*(self.bridge.command(t, "change_availability", command)
                                         for t in targets))
        status = combine([r["status"] if r else None for r in replies])
        log.info("ChangeAvailability", extra={"to": operational_status, "status": status,
                                              "evse": evse.get("id") or "station"})
        return call_result.ChangeAvailability(status=status)

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any):
        if evse_id not in self.bridge.config.station.evse_ids or connector_id != 1:
            return call_result.UnlockConnector(status="UnknownConnector")
        reply = await self.bridge.command(evse_id, "unlock_connector", {})
        status = reply["status"] if reply else "UnlockFailed"
        log.info("UnlockConnector", extra={"evse": evse_id, "status": status,
                                           "reason": (reply or {}).get("reason", "no answer")})
        return call_result.UnlockConnector(status=status)

    # --- reports and queries ------------------------------------------------------------------------
    @on(Action.get_report)
    def on_get_report(self, request_id: int, component_variable: list[dict] | None = None,
                      component_criteria: list[str] | None = None, **_: Any):
        items = select_report(report_data(self.bridge.device_model, False),
                              self.bridge.device_model, component_variable, component_criteria)
        return call_result.GetReport(status="Accepted" if items else "EmptyResultSet")

    @after(Action.get_report)
    async def after_get_report(self, request_id: int, component_variable: list[dict] | None = None,
                               component_criteria: list[str] | None = None, **_: Any) -> None:
        items = select_report(report_data(self.bridge.device_model, False),
                              self.bridge.device_model, component_variable, component_criteria)
        if items:
            await send_report(self, request_id, items)

    @on(Action.get_transaction_status)
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any):
        """E14: queued messages (of that transaction, or any) and whether it still runs."""
        queue = self.bridge.queue
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=queue.pending() > 0)
        return call_result.GetTransactionStatus(
            messages_in_queue=queue.queued_for_transaction(transaction_id) > 0,
            ongoing_indicator=queue.transaction_running(transaction_id))

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, **_: Any):
        """P01: no vendor extensions here."""
        log.info("DataTransfer from an unknown vendor", extra={"vendor": vendor_id,
                                                               "message_id": message_id or ""})
        return call_result.DataTransfer(status="UnknownVendorId")

    # --- TriggerMessage (F06) ------------------------------------------------------------------------
    @on(Action.trigger_message)
    async def on_trigger_message(self, requested_message: str, evse: dict | None = None,
                                 **_: Any):
        evse_id = (evse or {}).get("id")
        if evse_id is not None and evse_id not in self.bridge.config.station.evse_ids:
            return call_result.TriggerMessage(status="Rejected")
        if requested_message in SECC_TRIGGERS:
            targets = [evse_id] if evse_id else list(self.bridge.config.station.evse_ids)
            if requested_message == "TransactionEvent":
                targets = [t for t in targets if self.bridge.queue.has_open_transaction(t)]
                if not targets:
                    return call_result.TriggerMessage(status="Rejected")
            replies = await asyncio.gather(*(self.bridge.command(
                t, "trigger_message", {"requested_message": requested_message})
                for t in targets))
            accepted = any(r and r["status"] == "Accepted" for r in replies)
            return call_result.TriggerMessage(status="Accepted" if accepted else "Rejected")
        if requested_message not in BRIDGE_TRIGGERS:
            return call_result.TriggerMessage(status="NotImplemented")
        if requested_message == "BootNotification" and self.bridge.registration == "Accepted":
            return call_result.TriggerMessage(status="Rejected")   # F06: already accepted
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    async def after_trigger_message(self, requested_message: str, evse: dict | None = None,
                                    **_: Any) -> None:
        if requested_message not in BRIDGE_TRIGGERS:
            return
        evse_id = (evse or {}).get("id")
        bridge = self.bridge
        try:
            if requested_message == "BootNotification":
                if bridge.registration != "Accepted":
                    await bridge.boot(self, "Triggered")
            elif requested_message == "Heartbeat":
                await self.call_raw("Heartbeat", {})
            elif requested_message == "StatusNotification":
                for target in bridge.config.station.evse_ids:
                    if evse_id in (None, target):
                        await bridge.send_status(self, target, bridge.status.wanted(target))
            elif requested_message == "LogStatusNotification":
                await self.call_raw("LogStatusNotification", _log_status(bridge))
            elif requested_message == "FirmwareStatusNotification":
                await self.call_raw("FirmwareStatusNotification", _firmware_status(bridge))
            elif requested_message == "SignChargingStationCertificate":
                await self._sign_certificate("ChargingStationCertificate")
            elif requested_message == "SignV2GCertificate":
                await self._sign_certificate("V2GCertificate")
        except (CsmsCallError, TimeoutError) as exc:
            log.warning("triggered message failed", extra={"message": requested_message,
                                                           "error": str(exc) or "timeout"})
