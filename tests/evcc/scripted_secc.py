"""A tiny scripted SECC for testing the EV simulator (not the real SECC: that is secc/din,
secc/iso2). It answers every DIN / ISO-2 request with a plausible OK response built with the
real codec, and a script bends that: Ongoing for n answers, a FAILED code, another message,
a wrong SessionID, no answer, a stop notification, ReceiptRequired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import exi_schemas as exi
from exi_schemas.generated import appprotocol, din, iso2
from secc.appprotocol.negotiation import AppProtocol, negotiate

SESSION_ID = bytes.fromhex("8A9B0C1D2E3F4051")


def _snake(step: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", step).lower()


def _camel(field_name: str) -> str:
    stem = field_name.rsplit("_", 1)[0]
    return "".join(part.capitalize() for part in stem.split("_"))


@dataclass
class Script:
    """How the scripted SECC deviates from always answering OK/Finished."""

    ongoing: dict[str, int] = field(default_factory=dict)        # step -> Ongoing answers
    failed: dict[str, str] = field(default_factory=dict)         # step -> FAILED_* code
    answer_with: dict[str, str] = field(default_factory=dict)    # step -> other step's Res
    wrong_session_id: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)                # never answer this step
    precharge_steps: int = 2          # PreCharge answers until the voltage is reached
    stop_after_loops: int | None = None  # EVSE notification StopCharging after n loops
    renegotiate_after_loops: int | None = None  # EVSE notification ReNegotiation (once)
    receipt_required_at: set[int] = field(default_factory=set)   # loop numbers
    old_session_id: bytes | None = None   # accept this ID in SessionSetupReq: OldSessionJoined
    energy_transfer: str | None = None    # offered mode(s); None: DC_extended / AC 3-phase


class ScriptedSecc:
    """``respond(request_bytes) -> response bytes | None``; ``log`` lists the request steps."""

    def __init__(self, schema: str, mode: str = "dc", script: Script | None = None) -> None:
        self.schema = schema
        self.mode = mode
        self.m = din if schema == "din" else iso2
        self.script = script or Script()
        self.log: list[str] = []
        self.requests: list[Any] = []
        self.session_ids: list[bytes] = []
        self.loops = 0
        self._count: dict[str, int] = {}
        self._renegotiation_sent = False
        self.session_id = SESSION_ID

    # --- the protocol negotiation ---------------------------------------------------------------
    @staticmethod
    def app_protocol_response(request: bytes, supported: list) -> bytes:
        """supportedAppProtocolRes chosen by the real negotiation code among ``supported``
        (``secc.appprotocol.negotiation.SupportedVersion`` entries)."""
        req = exi.decode(request, "appprotocol")
        result = negotiate([AppProtocol(e.protocol_namespace, e.version_number_major,
                                        e.version_number_minor, e.schema_id, e.priority)
                            for e in req.app_protocol], supported)
        return exi.encode(appprotocol.supportedAppProtocolRes(
            response_code=result.response_code.value, schema_id=result.schema_id))

    # --- requests -------------------------------------------------------------------------------
    def respond(self, payload: bytes) -> bytes | None:
        message = exi.decode(payload, self.schema)
        name = next(n for n in message.body.__slots__ if getattr(message.body, n) is not None)
        step = _camel(name)
        request = getattr(message.body, name)
        self.log.append(step)
        self.requests.append(request)
        self.session_ids.append(message.header.session_id)
        n = self._count[step] = self._count.get(step, 0) + 1
        s = self.script
        if step in s.silent:
            return None
        answer_step = s.answer_with.get(step, step)
        body = getattr(self, f"res_{answer_step}")(request, n)
        if hasattr(body, "evse_processing") and n <= s.ongoing.get(step, 0):
            body.evse_processing = "Ongoing"
        if step in s.failed:
            body.response_code = s.failed[step]
        session_id = self.session_id
        if step in s.wrong_session_id:
            session_id = bytes(8)
        if step == "SessionSetup" and s.old_session_id is not None \
                and message.header.session_id == s.old_session_id:
            body.response_code = "OK_OldSessionJoined"
        return exi.encode(self.m.V2G_Message(
            header=self.m.MessageHeaderType(session_id=session_id),
            body=self.m.BodyType(**{f"{_snake(answer_step)}_res": body})))

    # --- building blocks ------------------------------------------------------------------------
    def pv(self, value: float, unit: str, multiplier: int = 0) -> Any:
        return self.m.PhysicalValueType(multiplier=multiplier, unit=unit,
                                        value=int(round(value / 10 ** multiplier)))

    def notification(self) -> str:
        """The EVSENotification the script asks for at this loop (a renegotiation once)."""
        notification = "None"
        if self.script.stop_after_loops is not None and self.loops >= self.script.stop_after_loops:
            notification = "StopCharging"
        if (self.script.renegotiate_after_loops is not None and not self._renegotiation_sent
                and self.loops >= self.script.renegotiate_after_loops):
            notification = "ReNegotiation"
            self._renegotiation_sent = True
        return notification

    def dc_status(self) -> Any:
        return self.m.DC_EVSEStatusType(evse_isolation_status="Valid",
                                        evse_status_code="EVSE_Ready", notification_max_delay=0,
                                        evse_notification=self.notification())

    def ac_status(self) -> Any:
        return iso2.AC_EVSEStatusType(notification_max_delay=0,
                                      evse_notification=self.notification(), rcd=False)

    def meter(self) -> Any:
        return self.m.MeterInfoType(meter_id="METER1", meter_reading=1000 + self.loops * 10,
                                    t_meter=1_700_000_000 + self.loops)

    # --- responses, both schemas --------------------------------------------------------------
    def res_SessionSetup(self, req: Any, n: int) -> Any:
        if self.schema == "din":
            return din.SessionSetupResType(response_code="OK_NewSessionEstablished",
                                           evseid=bytes.fromhex("49A0"), date_time_now=1)
        return iso2.SessionSetupResType(response_code="OK_NewSessionEstablished",
                                        evseid="DE*PNX*E12345*1", evse_time_stamp=1)

    def res_ServiceDiscovery(self, req: Any, n: int) -> Any:
        if self.schema == "din":
            return din.ServiceDiscoveryResType(
                response_code="OK",
                payment_options=din.PaymentOptionsType(payment_option=["ExternalPayment"]),
                charge_service=din.ServiceChargeType(
                    service_tag=din.ServiceTagType(service_id=1, service_category="EVCharging"),
                    free_service=False,
                    energy_transfer_type=self.script.energy_transfer or "DC_extended"))
        modes = [self.script.energy_transfer] if self.script.energy_transfer else (
            ["DC_extended", "DC_core"] if self.mode == "dc" else ["AC_three_phase_core"])
        return iso2.ServiceDiscoveryResType(
            response_code="OK",
            payment_option_list=iso2.PaymentOptionListType(
                payment_option=["ExternalPayment", "Contract"]),
            charge_service=iso2.ChargeServiceType(
                service_id=1, service_category="EVCharging", free_service=False,
                supported_energy_transfer_mode=iso2.SupportedEnergyTransferModeType(
                    energy_transfer_mode=modes)))

    def res_ServicePaymentSelection(self, req: Any, n: int) -> Any:
        return din.ServicePaymentSelectionResType(response_code="OK")

    def res_PaymentServiceSelection(self, req: Any, n: int) -> Any:
        return iso2.PaymentServiceSelectionResType(response_code="OK")

    def res_ContractAuthentication(self, req: Any, n: int) -> Any:
        return din.ContractAuthenticationResType(response_code="OK", evse_processing="Finished")

    def res_Authorization(self, req: Any, n: int) -> Any:
        return iso2.AuthorizationResType(response_code="OK", evse_processing="Finished")

    def res_ChargeParameterDiscovery(self, req: Any, n: int) -> Any:
        m = self.m
        if self.schema == "din":
            schedule = din.SAScheduleTupleType(sa_schedule_tuple_id=1, p_max_schedule=(
                din.PMaxScheduleType(p_max_schedule_id=1, p_max_schedule_entry=[
                    din.PMaxScheduleEntryType(relative_time_interval=din.RelativeTimeIntervalType(
                        start=0, duration=86400), p_max=20000)])))
        else:
            schedule = iso2.SAScheduleTupleType(sa_schedule_tuple_id=7, p_max_schedule=(
                iso2.PMaxScheduleType(p_max_schedule_entry=[
                    iso2.PMaxScheduleEntryType(relative_time_interval=iso2.RelativeTimeIntervalType(
                        start=0), p_max=self.pv(50000, "W", 1)),
                    iso2.PMaxScheduleEntryType(relative_time_interval=iso2.RelativeTimeIntervalType(
                        start=3600, duration=82800), p_max=self.pv(11000, "W", 1))])))
        res = m.ChargeParameterDiscoveryResType(
            response_code="OK", evse_processing="Finished",
            sa_schedule_list=m.SAScheduleListType(sa_schedule_tuple=[schedule]))
        if self.mode == "ac":
            res.ac_evse_charge_parameter = iso2.AC_EVSEChargeParameterType(
                ac_evse_status=self.ac_status(), evse_nominal_voltage=self.pv(230, "V"),
                evse_max_current=self.pv(16, "A"))
        else:
            res.dc_evse_charge_parameter = m.DC_EVSEChargeParameterType(
                dc_evse_status=self.dc_status(),
                evse_maximum_current_limit=self.pv(200, "A"),
                evse_maximum_power_limit=self.pv(150000, "W", 1),
                evse_maximum_voltage_limit=self.pv(500, "V"),
                evse_minimum_current_limit=self.pv(0, "A"),
                evse_minimum_voltage_limit=self.pv(150, "V"),
                evse_peak_current_ripple=self.pv(5, "A"))
        return res

    def res_CableCheck(self, req: Any, n: int) -> Any:
        return self.m.CableCheckResType(response_code="OK", dc_evse_status=self.dc_status(),
                                        evse_processing="Finished")

    def res_PreCharge(self, req: Any, n: int) -> Any:
        target = req.ev_target_voltage.value * 10 ** req.ev_target_voltage.multiplier
        steps = max(1, self.script.precharge_steps)
        voltage = target * min(1.0, n / steps)
        return self.m.PreChargeResType(response_code="OK", dc_evse_status=self.dc_status(),
                                       evse_present_voltage=self.pv(voltage, "V", -1))

    def res_PowerDelivery(self, req: Any, n: int) -> Any:
        if self.mode == "ac":
            return iso2.PowerDeliveryResType(response_code="OK", ac_evse_status=self.ac_status())
        return self.m.PowerDeliveryResType(response_code="OK", dc_evse_status=self.dc_status())

    def res_CurrentDemand(self, req: Any, n: int) -> Any:
        self.loops += 1
        extra = {"evseid": "DE*PNX*E12345*1", "sa_schedule_tuple_id": 7} \
            if self.schema == "iso2" else {}
        res = self.m.CurrentDemandResType(
            response_code="OK", dc_evse_status=self.dc_status(),
            evse_present_voltage=req.ev_target_voltage,
            evse_present_current=req.ev_target_current,
            evse_current_limit_achieved=False, evse_voltage_limit_achieved=False,
            evse_power_limit_achieved=False, **extra)
        if self.schema == "iso2":
            if self.loops in self.script.receipt_required_at:
                res.receipt_required = True
                res.meter_info = self.meter()
        return res

    def res_ChargingStatus(self, req: Any, n: int) -> Any:
        self.loops += 1
        receipt = self.loops in self.script.receipt_required_at
        return iso2.ChargingStatusResType(
            response_code="OK", evseid="DE*PNX*E12345*1", sa_schedule_tuple_id=7,
            evse_max_current=self.pv(16, "A"), meter_info=self.meter(),
            receipt_required=receipt, ac_evse_status=self.ac_status())

    def res_MeteringReceipt(self, req: Any, n: int) -> Any:
        if self.mode == "ac":
            return iso2.MeteringReceiptResType(response_code="OK", ac_evse_status=self.ac_status())
        return iso2.MeteringReceiptResType(response_code="OK", dc_evse_status=self.dc_status())

    def res_WeldingDetection(self, req: Any, n: int) -> Any:
        return self.m.WeldingDetectionResType(response_code="OK", dc_evse_status=self.dc_status(),
                                              evse_present_voltage=self.pv(0, "V"))

    def res_SessionStop(self, req: Any, n: int) -> Any:
        return self.m.SessionStopResType(response_code="OK")
