"""DC charging handlers shared by DIN 70121 and ISO 15118-2.

Both standards carry the same DC messages (CableCheck, PreCharge, CurrentDemand,
WeldingDetection) with the same field names; only the generated module differs. A protocol
session mixes this in and sets ``M`` to its generated module (exi_schemas.generated.din or
.iso2). Protocol-specific responses (CurrentDemandRes of ISO-2 carries EVSEID and
SAScheduleTupleID) are built by the protocol from ``current_demand_step``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from secc.v2g import dc
from secc.v2g.core import Outcome
from secc.v2g.evse import (
    Action,
    Isolation,
    PublishEvent,
    SetContactors,
    SetDcOutput,
    StopReason,
)
from secc.v2g.failures import Failure, SessionFailure
from secc.v2g.physical import physical, to_float

# EVSEStatusCode and EVSENotification for each EVSE-side stop reason
STOP_STATUS: dict[StopReason, tuple[str, str]] = {
    StopReason.NONE: ("EVSE_Ready", "None"),
    StopReason.REMOTE_STOP: ("EVSE_Ready", "StopCharging"),
    StopReason.EMERGENCY: ("EVSE_EmergencyShutdown", "StopCharging"),
    StopReason.ISOLATION_FAULT: ("EVSE_Malfunction", "StopCharging"),
    StopReason.MALFUNCTION: ("EVSE_Malfunction", "StopCharging"),
    StopReason.UTILITY: ("EVSE_UtilityInterruptEvent", "StopCharging"),
}
EV_READY_CP_STATES = ("C", "D")   # S2 closed: the EV is ready for energy transfer
SHUTDOWN_STOPS = frozenset(STOP_STATUS) - {StopReason.NONE, StopReason.REMOTE_STOP}


def check_ev_limits_physical(*limits: tuple[str, float | None]) -> None:
    """An EV maximum below zero is physically meaningless (ISO 15118-4 style cases
    ChargeParameterDiscovery AC_005 / DC_004 send -100 A): FAILED_WrongChargeParameter."""
    for name, value in limits:
        if value is not None and value < 0:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER, f"{name} {value:g} is negative")


class DcHandlers:
    """Mixin for SessionCore subclasses; needs ``M`` (generated module) and ``evse``."""

    M: ClassVar[ModuleType]
    ISOLATION_NAMES: ClassVar[dict[Isolation, str]] = {
        Isolation.INVALID: "Invalid", Isolation.VALID: "Valid", Isolation.WARNING: "Warning",
        Isolation.FAULT: "Fault", Isolation.NO_IMD: "Invalid",
    }

    ev_max_voltage: float | None = None
    ev_max_current: float | None = None
    ev_max_power: float | None = None
    ev_soc: int | None = None
    cable_check: dc.CableCheck | None = None   # this charge's insulation test (None: none yet)

    # --- building blocks -----------------------------------------------------------------------
    def pv(self, x: float, unit: str) -> Any:
        return physical(self.M.PhysicalValueType, x, unit)

    def renegotiation_pending(self) -> bool:
        """ISO-2 overrides: a new CSMS limit the car has not renegotiated yet."""
        return False

    def dc_evse_status(self, status_code: str | None = None) -> Any:
        code, notification = STOP_STATUS[self.stop_reason]
        if self.stop_reason is StopReason.NONE and self.renegotiation_pending():
            notification = "ReNegotiation"
        return self.M.DC_EVSEStatusType(
            evse_isolation_status=self.ISOLATION_NAMES[self.evse.isolation],
            evse_status_code=status_code if status_code and self.stop_reason is StopReason.NONE
            else code,
            notification_max_delay=0, evse_notification=notification)

    def check_no_shutdown(self) -> None:
        """During power transfer an EVSE-side shutdown answers FAILED (then safe state)."""
        if self.stop_reason in SHUTDOWN_STOPS:
            raise SessionFailure(Failure.GENERAL, f"EVSE shutdown: {self.stop_reason.value}")

    def remember_ev_status(self, dc_ev_status: Any) -> None:
        self.ev_soc = dc_ev_status.evresssoc
        if dc_ev_status.ev_error_code not in ("NO_ERROR", None):
            self.log.warning("EV reports an error", extra={"ev_error": dc_ev_status.ev_error_code})

    def remember_ev_dc_limits(self, p: Any) -> None:
        """DC_EVChargeParameter (DIN and ISO-2 share the field names)."""
        self.remember_ev_status(p.dc_ev_status)
        self.ev_max_voltage = to_float(p.ev_maximum_voltage_limit)
        self.ev_max_current = to_float(p.ev_maximum_current_limit)
        self.ev_max_power = to_float(p.ev_maximum_power_limit)
        check_ev_limits_physical(("EVMaximumVoltageLimit", self.ev_max_voltage),
                                 ("EVMaximumCurrentLimit", self.ev_max_current),
                                 ("EVMaximumPowerLimit", self.ev_max_power))
        if self.ev_max_voltage is not None and self.ev_max_voltage < self.limits.min_voltage:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 f"EV max {self.ev_max_voltage} V below EVSE min "
                                 f"{self.limits.min_voltage} V")

    def dc_evse_charge_parameter(self) -> Any:
        lim = self.limits
        min_current = lim.min_current
        if "no_zero_limits" in self.quirks and min_current <= 0:
            min_current = 1.0
        return self.M.DC_EVSEChargeParameterType(
            dc_evse_status=self.dc_evse_status(),
            evse_maximum_current_limit=self.pv(lim.max_current, "A"),
            evse_maximum_power_limit=self.pv(lim.max_power, "W"),
            evse_maximum_voltage_limit=self.pv(lim.max_voltage, "V"),
            evse_minimum_current_limit=self.pv(min_current, "A"),
            evse_minimum_voltage_limit=self.pv(lim.min_voltage, "V"),
            evse_current_regulation_tolerance=self.pv(lim.current_regulation_tolerance, "A"),
            evse_peak_current_ripple=self.pv(lim.peak_current_ripple, "A"),
            evse_energy_to_be_delivered=(self.pv(lim.energy_to_be_delivered, "Wh")
                                         if lim.energy_to_be_delivered else None))


    def current_demand_fields(self, setpoint: dc.Setpoint) -> dict[str, Any]:
        """The CurrentDemandRes fields DIN and ISO-2 share."""
        lim = self.limits
        return {"response_code": "OK", "dc_evse_status": self.dc_evse_status(),
                "evse_present_voltage": self.pv(self.evse.present_voltage, "V"),
                "evse_present_current": self.pv(self.evse.present_current, "A"),
                "evse_current_limit_achieved": setpoint.current_limited,
                "evse_voltage_limit_achieved": setpoint.voltage_limited,
                "evse_power_limit_achieved": setpoint.power_limited,
                "evse_maximum_voltage_limit": self.pv(lim.max_voltage, "V"),
                "evse_maximum_current_limit": self.pv(lim.max_current, "A"),
                "evse_maximum_power_limit": self.pv(lim.max_power, "W")}

    # --- handlers -----------------------------------------------------------------------------
    def on_CableCheckReq(self, req: Any, now: float) -> Outcome:
        self.remember_ev_status(req.dc_ev_status)
        self.check_no_shutdown()
        actions: list[Action] = []
        if self.evse.cp_state not in EV_READY_CP_STATES and (
                self.cable_check is None or not self.cable_check.started):
            # The EV closes S2 (CP C/D) before the cable check (IEC 61851-23, DIN 70121): no
            # test voltage on the cable of a car that is not ready. Its pilot is debounced,
            # so it gets the CP state detection time before the answer is FAILED
            # (ISO 15118-4 style CableCheck_008; docs/conformance.md).
            if self.ongoing_expired("cable_check_cp", now,
                                    self.timer_config.cp_state_detection_timeout):
                raise SessionFailure(Failure.GENERAL, f"CableCheckReq with CP state "
                                     f"{self.evse.cp_state}: the EV is not ready (S2 open)")
            return Outcome(self.M.CableCheckResType(
                response_code="OK", dc_evse_status=self.dc_evse_status("EVSE_NotReady"),
                evse_processing="Ongoing"), stay=True)
        self.ongoing_done("cable_check_cp")
        if self.cable_check is None or not self.cable_check.started:
            self.cable_check = dc.CableCheck()
            actions += self.cable_check.start(self.ev_max_voltage, self.limits)
            self.ongoing_expired("cable_check", now, self.timer_config.cable_check_timeout)
            self.log.info("cable check started", extra={"test_voltage": self.cable_check.voltage})
        result = self.cable_check.verdict(self.evse)
        if result is False:
            raise SessionFailure(Failure.GENERAL, "isolation fault during cable check")
        if result is None:
            if self.ongoing_expired("cable_check", now, self.timer_config.cable_check_timeout):
                raise SessionFailure(Failure.GENERAL, "cable check did not finish within "
                                     f"{self.timer_config.cable_check_timeout} s")
            return Outcome(self.M.CableCheckResType(
                response_code="OK", dc_evse_status=self.dc_evse_status(
                    "EVSE_IsolationMonitoringActive"), evse_processing="Ongoing"),
                stay=True, actions=actions)
        self.ongoing_done("cable_check")
        self.log.info("cable check passed", extra={"isolation": self.evse.isolation.value})
        actions.append(SetDcOutput(0.0, 0.0, enabled=False))
        return Outcome(self.M.CableCheckResType(
            response_code="OK", dc_evse_status=self.dc_evse_status(), evse_processing="Finished"),
            actions=actions)

    def on_PreChargeReq(self, req: Any, now: float) -> Outcome:
        self.remember_ev_status(req.dc_ev_status)
        self.check_no_shutdown()
        if self.ongoing_expired("precharge", now, self.timer_config.precharge_timeout):
            raise SessionFailure(Failure.GENERAL, "pre-charge did not finish in time")
        target_v = to_float(req.ev_target_voltage, 0.0)
        target_a = to_float(req.ev_target_current, 0.0)
        if target_v > self.limits.max_voltage:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 f"pre-charge target {target_v} V above EVSE max")
        setpoint = dc.precharge_setpoint(target_v, target_a, self.limits)
        return Outcome(self.M.PreChargeResType(
            response_code="OK", dc_evse_status=self.dc_evse_status(),
            evse_present_voltage=self.pv(self.evse.present_voltage, "V")),
            actions=[SetDcOutput(setpoint.voltage, setpoint.current)])

    def current_demand_step(self, req: Any) -> tuple[dc.Setpoint, list[Action]]:
        """Set-point for a CurrentDemandReq, within the EV's and our limits."""
        self.remember_ev_status(req.dc_ev_status)
        self.ev_full = bool(req.charging_complete)   # the car's own "I am full"
        self.check_no_shutdown()
        self.ongoing_done("precharge")
        ev_max_v = to_float(req.ev_maximum_voltage_limit, self.ev_max_voltage)
        ev_max_a = to_float(req.ev_maximum_current_limit, self.ev_max_current)
        ev_max_w = to_float(req.ev_maximum_power_limit, self.ev_max_power)
        setpoint = dc.clamp_setpoint(to_float(req.ev_target_voltage, 0.0),
                                     to_float(req.ev_target_current, 0.0), self.limits,
                                     ev_max_v, ev_max_a, ev_max_w)
        if self.stop_reason is StopReason.REMOTE_STOP:
            setpoint = dc.Setpoint(setpoint.voltage, 0.0, current_limited=True)
        return setpoint, [SetDcOutput(setpoint.voltage, setpoint.current)]

    # When PowerDeliveryRes(Stop) was sent (monotonic s): the EV must then open S2 (CP B)
    # within the CP state detection time; None once it did or while charging.
    power_stopped_at: float | None = None
    CP_B_AFTER_STOP: ClassVar[frozenset[str]] = frozenset({"WeldingDetectionReq",
                                                          "SessionStopReq"})

    def hold_for(self, name: str, now: float) -> float | None:
        """After PowerDeliveryRes(Stop) the EV opens S2 and the pilot changes to B (DIN 70121,
        ISO 15118-2 DC sequence) before WeldingDetection/SessionStop. A car sends the request right after
        opening S2, before the debounced pilot shows B, so the answer is held until the
        pilot shows B or V2G_SECC_CPState_Detection_Timeout after PowerDeliveryRes(Stop);
        then a pilot still in C/D fails the request (FAILED; ISO 15118-4 style
        WeldingDetection_005 / SessionStop_006; docs/conformance.md)."""
        stopped = self.power_stopped_at
        if stopped is None or name not in self.CP_B_AFTER_STOP or getattr(self, "is_ac", False):
            return None
        if self.evse.cp_state not in EV_READY_CP_STATES:
            self.power_stopped_at = None  # S2 opened: answer this and what follows normally
            return None
        timeout = self.timer_config.cp_state_detection_timeout
        if now < stopped + timeout:
            return stopped + timeout
        raise SessionFailure(Failure.GENERAL, f"{name} with CP state {self.evse.cp_state} "
                             f"{now - stopped:.2f} s after PowerDeliveryRes(Stop): the EV did "
                             f"not open S2 (CP B) within {timeout:g} s "
                             "([v2g.timers].cp_state_detection_timeout)")

    def on_WeldingDetectionReq(self, req: Any, now: float) -> Outcome:
        self.remember_ev_status(req.dc_ev_status)
        return Outcome(self.M.WeldingDetectionResType(
            response_code="OK", dc_evse_status=self.dc_evse_status(),
            evse_present_voltage=self.pv(self.evse.present_voltage, "V")))

    def power_delivery_actions(self, start: bool, now: float) -> list[Action]:
        if start:
            self.check_no_shutdown()
            self.arm_cp_state_check(now)
            self.power_stopped_at = None
            return [SetContactors(True), PublishEvent("ChargingStarted", {})]
        self.timers.disarm("cp_state")
        self.power_stopped_at = now
        return [SetDcOutput(0.0, 0.0, enabled=False),
                PublishEvent("ChargingStopped", {"soc": self.ev_soc})]
