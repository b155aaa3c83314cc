"""The DC messages DIN SPEC 70121 and ISO 15118-2 share, written once for both EVCCs.

ISO 15118-2 took its DC messages over from DIN 70121: CableCheck, PreCharge, CurrentDemand,
WeldingDetection and DC_EVChargeParameter have the same names and fields in both schemas, and
the car treats their responses the same way. What differs is the generated module the types
come from (``MESSAGES``) and DC_EVStatus (DIN carries two more fields), which each protocol
builds in its own ``_status``. ``DinEvcc`` and ``Iso2Evcc`` subclass :class:`DcSharedEvcc`;
ISO 15118-20 has its own DC messages and does not.
"""

from __future__ import annotations

import abc
from typing import Any

from sim.evcc.core import EvccSession, physical, value_of


class DcSharedEvcc(EvccSession, abc.ABC):
    """Requests and response handlers of the DC steps common to DIN 70121 and ISO 15118-2,
    built from ``self.MESSAGES`` (``exi_schemas.generated.din`` or ``.iso2``)."""

    @abc.abstractmethod
    def _status(self, ready: bool = True) -> Any:
        """DC_EVStatus of the protocol (its fields differ between DIN and ISO-2)."""

    def _pv(self, value: float, unit: str) -> Any:
        return physical(self.MESSAGES, value, unit)

    # --- requests -------------------------------------------------------------------------------
    def dc_ev_charge_parameter(self, status: Any, **extra: Any) -> Any:
        """DC_EVChargeParameter with the battery's limits; ``extra``: the protocol's own
        fields (ISO-2: DepartureTime)."""
        b = self.battery
        return self.MESSAGES.DC_EVChargeParameterType(
            **extra,
            dc_ev_status=status,
            ev_maximum_current_limit=self._pv(b.max_current, "A"),
            ev_maximum_power_limit=self._pv(b.max_power, "W"),
            ev_maximum_voltage_limit=self._pv(b.max_voltage, "V"),
            ev_energy_capacity=self._pv(b.capacity_wh, "Wh"),
            ev_energy_request=self._pv(b.energy_request_wh(), "Wh"),
            full_soc=int(b.target_soc), bulk_soc=int(b.bulk_soc))

    def build_CableCheck(self) -> Any:
        return self.MESSAGES.CableCheckReqType(dc_ev_status=self._status())

    def build_PreCharge(self) -> Any:
        return self.MESSAGES.PreChargeReqType(
            dc_ev_status=self._status(), ev_target_voltage=self._pv(self.battery.voltage(), "V"),
            ev_target_current=self._pv(1.0, "A"))

    def build_CurrentDemand(self) -> Any:
        b = self.battery
        return self.MESSAGES.CurrentDemandReqType(
            dc_ev_status=self._status(),
            ev_target_current=self._pv(b.target_current(), "A"),
            ev_maximum_voltage_limit=self._pv(b.max_voltage, "V"),
            ev_maximum_current_limit=self._pv(b.max_current, "A"),
            ev_maximum_power_limit=self._pv(b.max_power, "W"),
            bulk_charging_complete=b.bulk_complete(),
            charging_complete=False,
            remaining_time_to_full_soc=self._pv(b.remaining_seconds(b.target_soc), "s"),
            remaining_time_to_bulk_soc=self._pv(b.remaining_seconds(b.bulk_soc), "s"),
            # in constant-current charging cars ask for their maximum voltage and let the
            # current limit act (the Ioniq capture: 412.8 V target at 27 % SoC)
            ev_target_voltage=self._pv(b.max_voltage, "V"))

    def build_WeldingDetection(self) -> Any:
        return self.MESSAGES.WeldingDetectionReqType(dc_ev_status=self._status(ready=False))

    # --- responses ------------------------------------------------------------------------------
    def on_CableCheck(self, res: Any, now: float) -> str | None:
        return self.ongoing("CableCheck", res.evse_processing, now)

    def on_PreCharge(self, res: Any, now: float) -> str | None:
        present = value_of(res.evse_present_voltage)
        target = self.battery.voltage()
        if abs(present - target) > self.config.precharge_tolerance:
            if self._ongoing_logged != "PreCharge":
                self.say(f"PreCharge {present:.0f} V -> {target:.0f} V ...")
                self._ongoing_logged = "PreCharge"
            return self.repeat("PreCharge")
        self.say(f"PreCharge OK ({present:.0f} V)")
        return None

    def on_WeldingDetection(self, res: Any, now: float) -> str | None:
        self._welding_requests += 1
        if (value_of(res.evse_present_voltage) > 60.0
                and self._welding_requests < self.config.welding_detection_max):
            return self.repeat("WeldingDetection")
        self.say("WeldingDetection OK")
        return None


def evse_stop_reason(status: Any) -> str | None:
    """The EVSE asks to stop: notification StopCharging or a shutdown status code."""
    if status is None:
        return None
    if getattr(status, "evse_notification", None) == "StopCharging":
        return "evse_stop"
    code = getattr(status, "evse_status_code", "")
    if code in ("EVSE_Shutdown", "EVSE_EmergencyShutdown", "EVSE_Malfunction"):
        return f"evse_{code.removeprefix('EVSE_').lower()}"
    return None
