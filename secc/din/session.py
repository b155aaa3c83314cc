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
from secc.v2g import failed
from secc.v2g.core import TERMINATED, Outcome, SessionCore
from secc.v2g.dc_session import DcHandlers
from secc.v2g.eim import CHARGE_SERVICE_ID, check_payment_selection, check_service_category
from secc.v2g.evse import EnterSafeState, PublishEvent, SetContactors
from secc.v2g.failures import Failure, SessionFailure

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
        # DIN allows PowerDeliveryReq after PreChargeRes whatever its ReadyToChargeState; a
        # car that aborts there (false) goes on to WeldingDetection/SessionStop (real cars)
        "PreCharge": {"PreChargeReq": "PreCharge", "PowerDeliveryReq.Start": "CurrentDemand",
                      "PowerDeliveryReq.Stop": "WeldingDetection"},
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
        """Every DIN request's response type with ``code``, built by the one generic
        mechanism (``secc.v2g.failed``) from what the session knows right now; requests this
        EVSE never serves (AC ChargingStatus, PnC MeteringReceipt, CertificateInstallation)
        included. Not a DIN request at all: no response (None), the driver closes."""
        return failed.failed_response(M, request_name, code, self.failure_fields())

    def failure_fields(self) -> dict[str, Any]:
        """Values a FAILED response carries where its type has such a field."""
        present_v = self.pv(self.evse.present_voltage, "V")
        return {
            "dc_evse_status": self.dc_evse_status(), "evse_processing": "Finished",
            "evse_present_voltage": present_v,
            "evse_present_current": self.pv(self.evse.present_current, "A"),
            "evseid": self.din_evse_id(), "sa_schedule_tuple_id": SA_SCHEDULE_TUPLE_ID,
            "sa_schedule_list": self.sa_schedule_list(),
            "dc_evse_charge_parameter": self.dc_evse_charge_parameter(),
            "payment_options": M.PaymentOptionsType(payment_option=["ExternalPayment"]),
            "charge_service": M.ServiceChargeType(
                service_tag=M.ServiceTagType(service_id=CHARGE_SERVICE_ID,
                                             service_category="EVCharging"),
                free_service=False, energy_transfer_type=self.energy_transfer_type),
            "date_time_now": int(self.wall_clock()),
        }

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
        requested = req.ev_requested_energy_transfer_type
        if requested != self.energy_transfer_type or req.dc_ev_charge_parameter is None:
            raise SessionFailure(Failure.WRONG_ENERGY_TRANSFER_MODE,
                                 f"{requested} not offered (offered: {self.energy_transfer_type})")
        self.remember_ev_dc_limits(req.dc_ev_charge_parameter)
        if self.schedule_pending(now):
            # DIN's schema makes SASchedules mandatory even with Ongoing (the car reads it
            # only with Finished): the present one goes along
            return Outcome(M.ChargeParameterDiscoveryResType(
                response_code="OK", evse_processing="Ongoing",
                sa_schedule_list=self.sa_schedule_list(),
                dc_evse_charge_parameter=self.dc_evse_charge_parameter()), stay=True)
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
