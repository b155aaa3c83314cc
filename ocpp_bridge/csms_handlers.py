"""Requests the CSMS sends to the station: one small ``@on`` handler per OCPP action.

Handlers that need the SECC (remote start/stop) forward a command over the bus and answer
Rejected when the SECC does not reply in ``station.command_timeout``.
The Core and Local Auth List handlers live in ``core_profile`` and ``local_auth``; smart
charging (K01/K08/K09/K10) in ``smart_charging_handlers``; security events and GetLog in
``security``; SignedUpdateFirmware in ``firmware``. An OCPP 2.0.1 action without a handler is
answered NotSupported, an unknown one NotImplemented (``ocpp_io.unhandled_action_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from ocpp_bridge.certificates import CertificateError
from ocpp_bridge.core_profile import CoreHandlers, send_report
from ocpp_bridge.device_model import report_data
from ocpp_bridge.diagnostics import bus_error_for
from ocpp_bridge.local_auth import LocalListHandlers
from ocpp_bridge.ocpp_io import CsmsCallError, RawChargePoint
from ocpp_bridge.firmware import FirmwareHandlers
from ocpp_bridge.security import SecurityHandlers
from ocpp_bridge.smart_charging_handlers import SmartChargingHandlers
from secc.common.logs import layer_logger

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")

def _ids(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["component"]["name"], item["variable"]["name"],
            item.get("attribute_type", "Actual"))


class BridgeChargePoint(CoreHandlers, LocalListHandlers, SmartChargingHandlers,
                        SecurityHandlers, FirmwareHandlers, RawChargePoint):
    def __init__(self, station_id: str, connection: Any, bridge: Bridge,
                 response_timeout: float) -> None:
        super().__init__(station_id, connection, response_timeout)
        self.bridge = bridge

    # --- device model ----------------------------------------------------------------------------
    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict], **_: Any):
        results = []
        for item in get_variable_data:
            component, variable, attribute = _ids(item)
            status, value = self.bridge.device_model.get_variable(component, variable, attribute)
            result = {"attribute_status": status, "attribute_type": attribute,
                      "component": item["component"], "variable": item["variable"]}
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict], **_: Any):
        results = []
        for item in set_variable_data:
            component, variable, attribute = _ids(item)
            status = self.bridge.device_model.set_variable(component, variable,
                                                           item["attribute_value"], attribute)
            if status == "Accepted" and component == "SecurityCtrlr":
                self.bridge.enqueue_security_event("ReconfigurationOfSecurityParameters",
                                                   f"{variable} changed")
            results.append({"attribute_status": status, "attribute_type": attribute,
                            "component": item["component"], "variable": item["variable"]})
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any):
        if report_base == "SummaryInventory":   # optional in B07; we have no summary view
            return call_result.GetBaseReport(status="NotSupported")
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    async def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        """B07: send the device model in NotifyReport messages of ItemsPerMessage each."""
        if report_base == "SummaryInventory":
            return
        items = report_data(self.bridge.device_model, report_base == "ConfigurationInventory")
        await send_report(self, request_id, items)

    async def _sign_certificate(self, certificate_type: str) -> None:
        model = self.bridge.device_model
        country = model.get("ISO15118Ctrlr", "CountryName")
        if certificate_type == "V2GCertificate":
            # the SECC holds the TLS key: each SECC makes its own key and CSR (bus create_csr)
            common_name = model.get("ISO15118Ctrlr", "SeccId") or self.id
            organization = model.get("ISO15118Ctrlr", "OrganizationName")
            csrs = []
            for evse_id in self.bridge.config.station.evse_ids:
                reply = await self.bridge.command(evse_id, "create_csr", {
                    "certificate_type": "V2GCertificate", "common_name": common_name,
                    "organization": organization, "country": country})
                if reply and reply.get("csr"):
                    csrs.append(reply["csr"])
                else:
                    log.error("SignCertificate(V2GCertificate) not sent: the SECC made no CSR",
                              extra={"evse": evse_id, "reply": reply})
        else:
            csrs = [self.bridge.certificates.make_csr(
                certificate_type, self.id, model.get("SecurityCtrlr", "OrganizationName"),
                country)]
        for csr in csrs:
            try:
                reply = await self.call_raw("SignCertificate", {
                    "csr": csr, "certificateType": certificate_type})
            except CsmsCallError as exc:
                code, message, capability = bus_error_for(exc, "SignCertificate")
                log.error(message, extra={"capability": capability})
                return
            log.info("SignCertificate answered", extra={"status": reply["status"],
                                                        "type": certificate_type})

    async def _to_seccs(self, certificate_type: str, pem: str) -> list[dict]:
        """install_certificate to every EVSE's SECC; their answers (None: no answer)."""
        return [await self.bridge.command(evse_id, "install_certificate", {
                    "certificate_type": certificate_type, "certificate": pem})
                for evse_id in self.bridge.config.station.evse_ids]

    # --- certificates -----------------------------------------------------------------------------
    @on(Action.certificate_signed)
    async def on_certificate_signed(self, certificate_chain: str,
                                    certificate_type: str = "ChargingStationCertificate",
                                    **_: Any):
        if certificate_type == "V2GCertificate":  # for the SECC's pending key
            replies = await self._to_seccs("V2GCertificateChain", certificate_chain)
            if any(r and r["status"] == "Accepted" for r in replies):
                self.bridge.certificates.record_chain("V2GCertificate", certificate_chain)
                return call_result.CertificateSigned(status="Accepted")
            reasons = "; ".join((r or {}).get("reason", "no answer") for r in replies)
            log.warning("CertificateSigned(V2GCertificate) rejected by the SECC",
                        extra={"error": reasons})
            self.bridge.enqueue_security_event("InvalidChargingStationCertificate", reasons)
            return call_result.CertificateSigned(status="Rejected")
        try:
            self.bridge.certificates.install_signed(certificate_type, certificate_chain)
        except CertificateError as exc:
            log.warning("CertificateSigned rejected", extra={"error": str(exc)})
            self.bridge.enqueue_security_event("InvalidChargingStationCertificate", str(exc))
            return call_result.CertificateSigned(status="Rejected")
        return call_result.CertificateSigned(status="Accepted")

    @on(Action.install_certificate)
    async def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any):
        status = self.bridge.certificates.install_root(certificate_type, certificate)
        if status == "Accepted" and certificate_type in ("V2GRootCertificate",
                                                         "MORootCertificate"):
            replies = await self._to_seccs(certificate_type, certificate)  # used at once
            answered = [r for r in replies if r]
            if len(answered) < len(replies):
                log.warning("InstallCertificate: a SECC did not answer; it lacks the root until "
                            "it is installed again", extra={"type": certificate_type})
            if not answered or any(r["status"] != "Accepted" for r in answered):
                log.warning("InstallCertificate: a SECC refused the root, or none answered",
                            extra={"type": certificate_type, "replies": replies})
                status = "Failed"
        return call_result.InstallCertificate(status=status)

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict, **_: Any):
        wanted = snake_to_camel_case(certificate_hash_data)
        return call_result.DeleteCertificate(status=self.bridge.certificates.delete(wanted))

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(self, certificate_type: list[str] | None = None,
                                         **_: Any):
        chains = self.bridge.certificates.installed_ids(certificate_type)
        if not chains:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(status="Accepted",
                                                      certificate_hash_data_chain=chains)

    # --- smart charging and remote control --------------------------------------------------------
    @on(Action.request_start_transaction)
    async def on_request_start_transaction(self, id_token: dict, remote_start_id: int,
                                           evse_id: int | None = None,
                                           charging_profile: dict | None = None, **_: Any):
        target = evse_id or self.bridge.config.station.evse_ids[0]
        if target not in self.bridge.config.station.evse_ids:
            return call_result.RequestStartTransaction(status="Rejected")
        command: dict[str, Any] = {"remote_start_id": remote_start_id,
                                   "id_token": {"id_token": id_token["id_token"],
                                                "type": id_token["type"]}}
        if charging_profile:
            command["charging_profile"] = snake_to_camel_case(charging_profile)
        reply = await self.bridge.command(target, "request_start_transaction", command)
        status = reply["status"] if reply else "Rejected"
        transaction_id = None
        if reply and reply.get("session_id"):
            transaction_id = self.bridge.queue.transaction_of(target, reply["session_id"])
        return call_result.RequestStartTransaction(status=status, transaction_id=transaction_id)

    @on(Action.request_stop_transaction)
    async def on_request_stop_transaction(self, transaction_id: str, **_: Any):
        found = self.bridge.queue.session_of(transaction_id)
        if found is None:
            log.info("RequestStopTransaction for an unknown transaction",
                     extra={"transaction_id": transaction_id})
            return call_result.RequestStopTransaction(status="Rejected")
        evse_id, session_id = found
        reply = await self.bridge.command(evse_id, "request_stop_transaction",
                                          {"session_id": session_id,
                                           "transaction_id": transaction_id})
        return call_result.RequestStopTransaction(status=reply["status"] if reply else "Rejected")
