"""-20 DC and DC_BPT handlers: ChargeParameterDiscovery, CableCheck, PreCharge, the DC charge
loop (scheduled/dynamic, BPT discharge as negative ``SetDcOutput`` current), WeldingDetection.

Sequence rules are in ``secc.iso20.table`` (DC table); common messages in ``session``.
"""

from __future__ import annotations

from typing import Any

from exi_schemas.generated import iso20_dc as dc
from secc.iso20 import messages as msg
from secc.iso20.messages import rational, to_float
from secc.iso20.power import BptLimits, EvLimits, dc_dynamic_setpoint, dc_scheduled_setpoint
from secc.iso20.services import ControlMode, Energy, EnergyService
from secc.iso20.session import OK, Iso20Session
from secc.iso20.table import TRANSITIONS
from secc.v2g.core import Outcome
from secc.v2g.dc import CableCheck, Setpoint, precharge_setpoint
from secc.v2g.evse import Action, SetContactors, SetDcOutput
from secc.v2g.failures import Failure, SessionFailure


class Iso20DcSession(Iso20Session):
    """-20 DC and DC_BPT (namespace urn:iso:std:iso:15118:-20:DC)."""

    ENERGY = Energy.DC
    TRANSITIONS = TRANSITIONS[Energy.DC]

    def _start_power(self) -> list[Action]:
        if not self.evse.contactors_closed:
            raise SessionFailure(Failure.CONTACTOR_ERROR, "contactors not closed after precharge")
        return []

    def _stop_power(self) -> list[Action]:
        self.setpoint = None
        return [SetDcOutput(0.0, 0.0, enabled=False), SetContactors(False)]

    def _standby_power(self) -> list[Action]:
        self.setpoint = Setpoint(self.evse.present_voltage, 0.0)
        return [SetDcOutput(self.evse.present_voltage, 0.0, enabled=False)]

    def on_DC_ChargeParameterDiscoveryReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        bpt_req = body.bpt_dc_cpd_req_energy_transfer_mode
        req = bpt_req if self.selected_service is EnergyService.DC_BPT else \
            body.dc_cpd_req_energy_transfer_mode
        if req is None:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 f"parameters do not match the selected {self.selected_service}")
        ev = EvLimits(
            max_voltage=to_float(req.ev_maximum_voltage),
            min_voltage=to_float(req.ev_minimum_voltage),
            max_charge_current=to_float(req.ev_maximum_charge_current),
            max_charge_power=to_float(req.ev_maximum_charge_power),
            max_discharge_current=abs(to_float(req.ev_maximum_discharge_current))
            if req is bpt_req else None,
            max_discharge_power=abs(to_float(req.ev_maximum_discharge_power))
            if req is bpt_req else None)
        if ev.max_voltage < self.limits.min_voltage or ev.min_voltage > self.limits.max_voltage:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 f"car voltage range {ev.min_voltage}-{ev.max_voltage} V outside "
                                 f"{self.limits.min_voltage}-{self.limits.max_voltage} V")
        self.ev = ev
        base = msg.dc_cpd_res(self.limits)
        if req is bpt_req:
            res_mode = dc.BPT_DC_CPDResEnergyTransferModeType(
                **{f: getattr(base, f) for f in base.__slots__},
                **self.discharge_fields(dc, "max_discharge_power", "min_discharge_power",
                                        "max_discharge_current", "min_discharge_current"))
            res = dc.DC_ChargeParameterDiscoveryResType(
                header=None, response_code=OK, bpt_dc_cpd_res_energy_transfer_mode=res_mode)
        else:
            res = dc.DC_ChargeParameterDiscoveryResType(
                header=None, response_code=OK, dc_cpd_res_energy_transfer_mode=base)
        return Outcome(res)

    def on_DC_CableCheckReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        actions: list[Action] = []
        if self.cable_check is None:
            self.cable_check = CableCheck()
            actions = self.cable_check.start(self.ev.max_voltage, self.limits)
        passed = self.cable_check.verdict(self.evse)   # only the test started here counts
        if passed is None:
            if self.ongoing_expired("cable_check", now, self.timer_config.cable_check_timeout):
                raise SessionFailure(Failure.GENERAL, "cable check did not finish within "
                                     f"{self.timer_config.cable_check_timeout} s")
            return Outcome(dc.DC_CableCheckResType(header=None, response_code=OK,
                                                   evse_processing="Ongoing"),
                           stay=True, actions=actions)
        self.ongoing_done("cable_check")
        if not passed:
            raise SessionFailure(Failure.GENERAL, "isolation fault in cable check")
        return Outcome(dc.DC_CableCheckResType(header=None, response_code=OK,
                                               evse_processing="Finished"))

    def on_DC_PreChargeReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        if self.ongoing_expired("pre_charge", now, self.timer_config.precharge_timeout):
            raise SessionFailure(Failure.GENERAL, "pre-charge not done within "
                                 f"{self.timer_config.precharge_timeout} s")
        target = to_float(body.ev_target_voltage, 0.0)
        sp = precharge_setpoint(target, 2.0, self.limits)
        actions: list[Action] = []
        if sp != self.setpoint:
            actions.append(SetDcOutput(sp.voltage, sp.current))
            self.setpoint = sp
        return Outcome(dc.DC_PreChargeResType(
            header=None, response_code=OK,
            evse_present_voltage=rational(self.evse.present_voltage, dc)), actions=actions)

    def on_DC_ChargeLoopReq(self, body: Any, now: float) -> Outcome:
        req = self.loop_request(body, "dc")
        bpt = self.bpt
        dynamic = self.control_mode is ControlMode.DYNAMIC
        ev = self._update_ev_limits(req, bpt is not None)
        present_v = to_float(body.ev_present_voltage, 0.0)
        if self._ramp_down:
            sp = Setpoint(self.evse.present_voltage or present_v, 0.0)
        elif dynamic:
            needed = to_float(req.ev_maximum_energy_request, 1.0) > 0
            sp = dc_dynamic_setpoint(self.evse.present_voltage or present_v, self._loop_limits,
                                     bpt, ev, self.power_request, needed)
        else:
            sp = dc_scheduled_setpoint(to_float(req.ev_target_voltage, 0.0),
                                       to_float(req.ev_target_current, 0.0), self._loop_limits,
                                       bpt, ev)
        actions: list[Action] = []
        if sp != self.setpoint:
            actions.append(SetDcOutput(sp.voltage, sp.current))
            self.setpoint = sp
        res = dc.DC_ChargeLoopResType(
            header=None, response_code=OK, evse_status=self._status(dc, now),
            meter_info=self._meter_info(dc, body.meter_info_requested),
            evse_present_current=rational(self.evse.present_current, dc),
            evse_present_voltage=rational(self.evse.present_voltage, dc),
            evse_power_limit_achieved=sp.power_limited,
            evse_current_limit_achieved=sp.current_limited,
            evse_voltage_limit_achieved=sp.voltage_limited)
        self._loop_control_mode(res, dynamic, bpt)
        return Outcome(res, actions=actions)

    def _update_ev_limits(self, req: Any, bpt: bool) -> EvLimits:
        """Charge-loop requests may carry fresher car limits (dynamic mode: always)."""
        ev = self.ev

        def pick(field: str, old: float | None, magnitude: bool = False) -> float | None:
            value = to_float(getattr(req, field, None))
            if value is None:
                return old
            return abs(value) if magnitude else value

        self.ev = EvLimits(
            max_voltage=pick("ev_maximum_voltage", ev.max_voltage),
            min_voltage=pick("ev_minimum_voltage", ev.min_voltage),
            max_charge_current=pick("ev_maximum_charge_current", ev.max_charge_current),
            max_charge_power=pick("ev_maximum_charge_power", ev.max_charge_power),
            max_discharge_current=pick("ev_maximum_discharge_current",
                                       ev.max_discharge_current, True) if bpt else None,
            max_discharge_power=pick("ev_maximum_discharge_power", ev.max_discharge_power,
                                     True) if bpt else None)
        return self.ev

    def _loop_control_mode(self, res: Any, dynamic: bool, bpt: BptLimits | None) -> None:
        limits = self._loop_limits
        if not dynamic:
            present = dict(evse_maximum_charge_power=rational(limits.max_power, dc),
                           evse_maximum_charge_current=rational(limits.max_current, dc),
                           evse_maximum_voltage=rational(limits.max_voltage, dc))
            if bpt:
                res.bpt_scheduled_dc_cl_res_control_mode = \
                    dc.BPT_Scheduled_DC_CLResControlModeType(
                        **present, **self.discharge_fields(dc, "max_discharge_current"))
            else:
                res.scheduled_dc_cl_res_control_mode = dc.Scheduled_DC_CLResControlModeType(
                    **present)
            return
        common = dict(evse_maximum_charge_power=rational(limits.max_power, dc),
                      evse_minimum_charge_power=rational(0, dc),
                      evse_maximum_charge_current=rational(limits.max_current, dc),
                      evse_maximum_voltage=rational(limits.max_voltage, dc))
        if bpt:
            res.bpt_dynamic_dc_cl_res_control_mode = dc.BPT_Dynamic_DC_CLResControlModeType(
                **common,
                **self.discharge_fields(dc, "max_discharge_power", "min_discharge_power",
                                        "max_discharge_current"),
                evse_minimum_voltage=rational(limits.min_voltage, dc))
        else:
            res.dynamic_dc_cl_res_control_mode = dc.Dynamic_DC_CLResControlModeType(**common)

    def on_DC_WeldingDetectionReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(True)
        return Outcome(dc.DC_WeldingDetectionResType(
            header=None, response_code=OK,
            evse_present_voltage=rational(self.evse.present_voltage, dc)))
