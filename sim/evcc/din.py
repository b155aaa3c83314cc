"""DIN SPEC 70121 EVCC (DC, external payment): the message sequence real cars send.

Message contents follow the real-car captures (Ioniq, Polestar 2, Tesla, Audi Q4 in
../shared/realcar): EVCCID = the car's MAC, ServiceCategory EVCharging, ExternalPayment with
ServiceID 1, DC_extended, limits with multiplier -1, PreCharge with a small target current,
CurrentDemand with the max limits and remaining times, WeldingDetection with EVReady=false.
"""

from __future__ import annotations

from typing import Any, ClassVar

from exi_schemas.generated import din
from sim.evcc.core import DONE, value_of
from sim.evcc.dc_shared import DcSharedEvcc, evse_stop_reason
from sim.evcc.failures import InvalidResponse

#: V2G_EVCC_Msg_Timeout per message (DIN 70121 Table 75); everything else 2 s.
DIN_MESSAGE_TIMEOUTS: dict[str, float] = {"CurrentDemand": 0.25}

DIN_DC_FLOW: dict[str, str] = {
    "SessionSetup": "ServiceDiscovery",
    "ServiceDiscovery": "ServicePaymentSelection",
    "ServicePaymentSelection": "ContractAuthentication",
    "ContractAuthentication": "ChargeParameterDiscovery",
    "ChargeParameterDiscovery": "CableCheck",
    "CableCheck": "PreCharge",
    "PreCharge": "PowerDelivery",
    "PowerDelivery": "CurrentDemand",      # Start; the Stop branch is in on_PowerDelivery
    "CurrentDemand": "CurrentDemand",
    "WeldingDetection": "SessionStop",
    "SessionStop": DONE,
}


class DinEvcc(DcSharedEvcc):
    """DIN 70121 DC charging with external identification (EIM)."""

    PROTOCOL = "din"
    SCHEMA = "din"
    MESSAGES = din
    FLOWS: ClassVar[dict[str, dict[str, str]]] = {"dc": DIN_DC_FLOW}
    MESSAGE_TIMEOUTS = DIN_MESSAGE_TIMEOUTS
    STEP_LIMITS: ClassVar[dict[str, str]] = {
        "ContractAuthentication": "ongoing_timeout",
        "ChargeParameterDiscovery": "ongoing_timeout",
        "CableCheck": "cable_check_timeout",
        "PreCharge": "precharge_timeout",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.config.mode != "dc":
            raise ValueError("DIN 70121 is DC only")
        self.energy_transfer_type = self.config.energy_transfer_mode or "DC_extended"
        self.charging = False          # PowerDelivery(Start) done, not yet stopped
        self.charging_wanted = True    # what the next PowerDeliveryReq asks for
        self.service_id = 1            # the charge service the EVSE offered
        self.evse_max_current: float | None = None
        self.evse_max_voltage: float | None = None
        self._welding_requests = 0

    # --- common pieces --------------------------------------------------------------------------
    def _status(self, ready: bool = True) -> din.DC_EVStatusType:
        return din.DC_EVStatusType(ev_ready=ready, ev_cabin_conditioning=False,
                                   evress_conditioning=False, ev_error_code="NO_ERROR",
                                   evresssoc=int(self.battery.soc))

    # --- requests -------------------------------------------------------------------------------
    def build_SessionSetup(self) -> din.SessionSetupReqType:
        return din.SessionSetupReqType(evccid=self.config.evcc_id)

    def build_ServiceDiscovery(self) -> din.ServiceDiscoveryReqType:
        return din.ServiceDiscoveryReqType(service_category="EVCharging")

    def build_ServicePaymentSelection(self) -> din.ServicePaymentSelectionReqType:
        return din.ServicePaymentSelectionReqType(
            selected_payment_option="ExternalPayment",
            selected_service_list=din.SelectedServiceListType(
                selected_service=[din.SelectedServiceType(service_id=self.service_id)]))

    def build_ContractAuthentication(self) -> din.ContractAuthenticationReqType:
        return din.ContractAuthenticationReqType()

    def build_ChargeParameterDiscovery(self) -> din.ChargeParameterDiscoveryReqType:
        return din.ChargeParameterDiscoveryReqType(
            ev_requested_energy_transfer_type=self.energy_transfer_type,
            dc_ev_charge_parameter=self.dc_ev_charge_parameter(self._status(ready=False)))

    def build_PowerDelivery(self) -> din.PowerDeliveryReqType:
        complete = not self.charging_wanted
        return din.PowerDeliveryReqType(
            ready_to_charge_state=self.charging_wanted,
            dc_ev_power_delivery_parameter=din.DC_EVPowerDeliveryParameterType(
                dc_ev_status=self._status(), bulk_charging_complete=self.battery.bulk_complete(),
                charging_complete=complete))

    def build_SessionStop(self) -> din.SessionStopType:
        return din.SessionStopType()

    # --- responses ------------------------------------------------------------------------------
    def on_SessionSetup(self, res: din.SessionSetupResType, now: float) -> str | None:
        self.session_setup_done(res.response_code, res.evseid.hex().upper())
        return None

    def on_ServiceDiscovery(self, res: din.ServiceDiscoveryResType, now: float) -> str | None:
        if "ExternalPayment" not in res.payment_options.payment_option:
            raise InvalidResponse("ServiceDiscovery", "the EVSE offers no ExternalPayment")
        offered = res.charge_service.energy_transfer_type
        if not offered.startswith("DC"):
            raise InvalidResponse("ServiceDiscovery", f"the EVSE offers {offered}, not DC")
        self.energy_transfer_type = offered
        self.service_id = res.charge_service.service_tag.service_id
        self.say(f"ServiceDiscovery OK ({offered}, ExternalPayment)")
        return None

    def on_ContractAuthentication(self, res: din.ContractAuthenticationResType,
                                  now: float) -> str | None:
        return self.ongoing("ContractAuthentication", res.evse_processing, now)

    def on_ChargeParameterDiscovery(self, res: din.ChargeParameterDiscoveryResType,
                                    now: float) -> str | None:
        again = self.ongoing("ChargeParameterDiscovery", res.evse_processing, now)
        if again:
            return again
        if res.dc_evse_charge_parameter is None:
            raise InvalidResponse("ChargeParameterDiscovery", "no DC_EVSEChargeParameter")
        if res.sa_schedule_list is not None and res.sa_schedule_list.sa_schedule_tuple:
            self.record.sa_schedule_tuple_id = \
                res.sa_schedule_list.sa_schedule_tuple[0].sa_schedule_tuple_id
        limits = res.dc_evse_charge_parameter
        self.evse_max_current = value_of(limits.evse_maximum_current_limit)
        self.evse_max_voltage = value_of(limits.evse_maximum_voltage_limit)
        self.signals.pilot = "C"  # S2 closed: ready for the isolation check
        return None

    def on_PowerDelivery(self, res: din.PowerDeliveryResType, now: float) -> str | None:
        if self.charging_wanted:
            self.charging = True
            self.signals.contactors_closed = True
            self.say("PowerDelivery(Start) OK: charging")
            return "CurrentDemand"
        self.charging = False
        self.signals.contactors_closed = False
        self.signals.pilot = "B"
        self.say(f"PowerDelivery(Stop) OK ({self.record.stop_reason})")
        return "WeldingDetection"

    def on_CurrentDemand(self, res: din.CurrentDemandResType, now: float) -> str | None:
        voltage = value_of(res.evse_present_voltage)
        current = value_of(res.evse_present_current)
        self.loop_tick(voltage * current, now, voltage, current)
        self.signals.battery_voltage = self.battery.voltage()
        reason = self.stop_reason() or evse_stop_reason(res.dc_evse_status)
        if reason:
            self.record.stop_reason = reason
            self.charging_wanted = False
            return "PowerDelivery"
        return self.repeat("CurrentDemand")

    def on_SessionStop(self, res: din.SessionStopResType, now: float) -> str | None:
        self.say(f"SessionStop OK: {self.battery.energy_delivered_wh / 1000:.2f} kWh in "
                 f"{self.record.loop_iterations} loops, SoC {self.battery.soc:.0f}%")
        return DONE

