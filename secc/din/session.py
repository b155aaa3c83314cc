"""DIN SPEC 70121 SECC session, sans-I/O.

``TRANSITIONS`` is the whole sequence rule: which request is allowed in which state and where
it leads (states are named after the request they wait for). Handlers build responses from
the EVSE snapshot and return actions; failures are raised and mapped to response codes by the
core through the one table in ``secc.v2g.failures``. CableCheck, PreCharge and
WeldingDetection are handled by the ``secc.v2g.dc_session.DcHandlers`` mixin (shared with
ISO-2).
"""

from __future__ import annotations

from typing import Any, ClassVar

from exi_schemas.generated import din as M
from secc.v2g.core import TERMINATED, Outcome, SessionCore
from secc.v2g.dc_session import DcHandlers
from secc.v2g.eim import CHARGE_SERVICE_ID, check_payment_selection, check_service_category
from secc.v2g.evse import EnterSafeState, PublishEvent, SetContactors
from secc.v2g.failures import Failure, SessionFailure

DC_TRANSFER_TYPES = frozenset({"DC_core", "DC_extended", "DC_combo_core", "DC_unique"})
SA_SCHEDULE_TUPLE_ID = 1
PMAX_UNLIMITED = 32767


class DinSession(DcHandlers, SessionCore):
    PROTOCOL = "din"
    M = M
    INITIAL_STATE = "SessionSetup"
    TRANSITIONS: ClassVar[dict[str, dict[str, str]]] = {
        "SessionSetup": {"SessionSetupReq": "ServiceDiscovery"},
        "ServiceDiscovery": {"ServiceDiscoveryReq": "ServicePaymentSelection"},
        "ServicePaymentSelection": {"ServicePaymentSelectionReq": "ContractAuthentication"},
        "ContractAuthentication": {"ContractAuthenticationReq": "ChargeParameterDiscovery"},
        "ChargeParameterDiscovery": {"ChargeParameterDiscoveryReq": "CableCheck"},
        "CableCheck": {"CableCheckReq": "PreCharge"},
        "PreCharge": {"PreChargeReq": "PreCharge", "PowerDeliveryReq.Start": "CurrentDemand"},
        "CurrentDemand": {"CurrentDemandReq": "CurrentDemand",
                          "PowerDeliveryReq.Stop": "WeldingDetection"},
        "WeldingDetection": {"WeldingDetectionReq": "WeldingDetection",
                             "SessionStopReq": TERMINATED},
    }

    def __init__(self, *, energy_transfer_type: str = "DC_extended", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.energy_transfer_type = energy_transfer_type
        self.evcc_id = b""

    # --- protocol hooks -----------------------------------------------------------------------
    def event_of(self, name: str, body: Any) -> str:
        if name == "PowerDeliveryReq":
            return "PowerDeliveryReq.Start" if body.ready_to_charge_state else "PowerDeliveryReq.Stop"
        return name

    def sequence_timeout_for(self, state: str) -> float:
        return self.timer_config.sequence_timeout

    def failed_response(self, request_name: str, code: str) -> tuple[str, Any]:
        build = FAILED_RESPONSES.get(request_name)
        name = request_name[:-3] + "Res"
        if build is None:  # not a DIN request at all: answer nothing, close
            return name, None
        return name, build(self, code)

    # --- handlers ----------------------------------------------------------------------------
    def on_SessionSetupReq(self, req: M.SessionSetupReqType, now: float) -> Outcome:
        self.evcc_id = req.evccid
        self.session_id = self.new_session_id()
        self.log.info("DIN session established", extra={"evcc_id": req.evccid.hex(),
                                                        "session_id": self.session_id.hex()})
        return Outcome(M.SessionSetupResType(
            response_code="OK_NewSessionEstablished", evseid=self.din_evse_id(),
            date_time_now=int(self.wall_clock())),
            actions=[PublishEvent("SessionStarted", {"protocol": "din",
                                                     "evcc_id": req.evccid.hex()})])

    def on_ServiceDiscoveryReq(self, req: M.ServiceDiscoveryReqType, now: float) -> Outcome:
        check_service_category(req.service_category)
        return Outcome(M.ServiceDiscoveryResType(
            response_code="OK",
            payment_options=M.PaymentOptionsType(payment_option=["ExternalPayment"]),
            charge_service=M.ServiceChargeType(
                service_tag=M.ServiceTagType(service_id=CHARGE_SERVICE_ID,
                                             service_category="EVCharging"),
                free_service=False, energy_transfer_type=self.energy_transfer_type)))

    def on_ServicePaymentSelectionReq(self, req: M.ServicePaymentSelectionReqType,
                                      now: float) -> Outcome:
        check_payment_selection(req.selected_payment_option, req.selected_service_list,
                                Failure.SERVICE_SELECTION_INVALID)
        return Outcome(M.ServicePaymentSelectionResType(response_code="OK"))

    def on_ContractAuthenticationReq(self, req: M.ContractAuthenticationReqType,
                                     now: float) -> Outcome:
        # DIN EIM: the car identifies by its EVCCID (MAC); OCPP IdToken type MacAddress
        finished, actions = self.authorization_step(now, self.evcc_id.hex().upper(),
                                                    "MacAddress")
        return Outcome(M.ContractAuthenticationResType(
            response_code="OK", evse_processing="Finished" if finished else "Ongoing"),
            stay=not finished, actions=actions)

    def on_ChargeParameterDiscoveryReq(self, req: M.ChargeParameterDiscoveryReqType,
                                       now: float) -> Outcome:
        if (req.ev_requested_energy_transfer_type not in DC_TRANSFER_TYPES
                or req.dc_ev_charge_parameter is None):
            raise SessionFailure(Failure.WRONG_ENERGY_TRANSFER_MODE,
                                 f"{req.ev_requested_energy_transfer_type} not offered")
        self.remember_ev_dc_limits(req.dc_ev_charge_parameter)
        return Outcome(M.ChargeParameterDiscoveryResType(
            response_code="OK", evse_processing="Finished",
            sa_schedule_list=self.sa_schedule_list(),
            dc_evse_charge_parameter=self.dc_evse_charge_parameter()))

    def on_PowerDeliveryReq(self, req: M.PowerDeliveryReqType, now: float) -> Outcome:
        start = req.ready_to_charge_state
        return Outcome(M.PowerDeliveryResType(response_code="OK",
                                              dc_evse_status=self.dc_evse_status()),
                       actions=self.power_delivery_actions(start, now))

    def on_CurrentDemandReq(self, req: M.CurrentDemandReqType, now: float) -> Outcome:
        setpoint, actions = self.current_demand_step(req)
        return Outcome(M.CurrentDemandResType(
            **self.current_demand_fields(setpoint)), actions=actions)

    def on_SessionStopReq(self, req: M.SessionStopType, now: float) -> Outcome:
        self.log.info("session stopped by the EV")
        return Outcome(M.SessionStopResType(response_code="OK"), next_state=TERMINATED,
                       actions=[SetContactors(False), EnterSafeState("session stopped by EV"),
                                self.session_stopped("EV SessionStop", self.ev_stop_end())])

    # --- response parts ----------------------------------------------------------------------
    def din_evse_id(self) -> bytes:
        """DIN's EVSEID is hexBinary; 0x00 when the operator assigns none (real chargers)."""
        try:
            raw = bytes.fromhex(self.evse_id)
        except ValueError:
            raw = b"\x00"
        return raw[:32] or b"\x00"

    def sa_schedule_list(self) -> M.SAScheduleListType:
        return M.SAScheduleListType(sa_schedule_tuple=[M.SAScheduleTupleType(
            sa_schedule_tuple_id=SA_SCHEDULE_TUPLE_ID,
            p_max_schedule=M.PMaxScheduleType(p_max_schedule_id=1, p_max_schedule_entry=[
                M.PMaxScheduleEntryType(
                    relative_time_interval=M.RelativeTimeIntervalType(start=0, duration=86400),
                    p_max=PMAX_UNLIMITED)]))])


def _zero_v(s: DinSession) -> M.PhysicalValueType:
    return s.pv(s.evse.present_voltage, "V")


# Schema-valid responses carrying a FAILED code, per request (mandatory fields minimal).
FAILED_RESPONSES: dict[str, Any] = {
    "SessionSetupReq": lambda s, c: M.SessionSetupResType(response_code=c, evseid=b"\x00"),
    "ServiceDiscoveryReq": lambda s, c: M.ServiceDiscoveryResType(
        response_code=c, payment_options=M.PaymentOptionsType(payment_option=["ExternalPayment"]),
        charge_service=M.ServiceChargeType(
            service_tag=M.ServiceTagType(service_id=CHARGE_SERVICE_ID,
                                         service_category="EVCharging"),
            free_service=False, energy_transfer_type=s.energy_transfer_type)),
    "ServiceDetailReq": lambda s, c: M.ServiceDetailResType(response_code=c,
                                                            service_id=CHARGE_SERVICE_ID),
    "ServicePaymentSelectionReq": lambda s, c: M.ServicePaymentSelectionResType(response_code=c),
    "ContractAuthenticationReq": lambda s, c: M.ContractAuthenticationResType(
        response_code=c, evse_processing="Finished"),
    "ChargeParameterDiscoveryReq": lambda s, c: M.ChargeParameterDiscoveryResType(
        response_code=c, evse_processing="Finished", sa_schedule_list=s.sa_schedule_list(),
        dc_evse_charge_parameter=s.dc_evse_charge_parameter()),
    "CableCheckReq": lambda s, c: M.CableCheckResType(
        response_code=c, dc_evse_status=s.dc_evse_status(), evse_processing="Finished"),
    "PreChargeReq": lambda s, c: M.PreChargeResType(
        response_code=c, dc_evse_status=s.dc_evse_status(), evse_present_voltage=_zero_v(s)),
    "PowerDeliveryReq": lambda s, c: M.PowerDeliveryResType(
        response_code=c, dc_evse_status=s.dc_evse_status()),
    "CurrentDemandReq": lambda s, c: M.CurrentDemandResType(
        response_code=c, dc_evse_status=s.dc_evse_status(), evse_present_voltage=_zero_v(s),
        evse_present_current=s.pv(s.evse.present_current, "A"),
        evse_current_limit_achieved=False, evse_voltage_limit_achieved=False,
        evse_power_limit_achieved=False),
    "WeldingDetectionReq": lambda s, c: M.WeldingDetectionResType(
        response_code=c, dc_evse_status=s.dc_evse_status(), evse_present_voltage=_zero_v(s)),
    "SessionStopReq": lambda s, c: M.SessionStopResType(response_code=c),
    # requests DIN defines but this EVSE does not serve (PnC, AC) get FAILED_SequenceError
    "PaymentDetailsReq": lambda s, c: M.PaymentDetailsResType(
        response_code=c, gen_challenge="", date_time_now=int(s.wall_clock())),
    "ChargingStatusReq": None,
    "MeteringReceiptReq": None,
    "CertificateInstallationReq": None,
    "CertificateUpdateReq": None,
}
FAILED_RESPONSES = {k: v for k, v in FAILED_RESPONSES.items() if v is not None}
