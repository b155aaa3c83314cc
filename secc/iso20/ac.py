"""-20 AC and AC_BPT handlers: ChargeParameterDiscovery and the AC charge loop (scheduled/
dynamic; the active-power target goes out as an ``AcPowerTarget`` event, negative discharges).

Sequence rules are in ``secc.iso20.table`` (AC table); common messages in ``session``.
"""

from __future__ import annotations

from typing import Any

from exi_schemas.generated import iso20_ac as ac
from secc.iso20 import messages as msg
from secc.iso20.messages import rational, to_float
from secc.iso20.power import EvLimits, ac_target_power
from secc.iso20.services import ControlMode, Energy, EnergyService
from secc.iso20.session import OK, Iso20Session
from secc.iso20.table import TRANSITIONS
from secc.v2g.core import Outcome
from secc.v2g.evse import Action, PublishEvent, SetContactors
from secc.v2g.failures import Failure, SessionFailure


class Iso20AcSession(Iso20Session):
    """-20 AC and AC_BPT (namespace urn:iso:std:iso:15118:-20:AC)."""

    ENERGY = Energy.AC
    TRANSITIONS = TRANSITIONS[Energy.AC]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_power: float | None = None

    def _start_power(self) -> list[Action]:
        return [SetContactors(True)]

    def _stop_power(self) -> list[Action]:
        self.target_power = None
        return [SetContactors(False)]

    def _standby_power(self) -> list[Action]:
        return self._publish_target(0.0)

    def _publish_target(self, watts: float) -> list[Action]:
        if watts == self.target_power:
            return []
        self.target_power = watts
        return [PublishEvent("AcPowerTarget", {"watts": watts})]

    def on_AC_ChargeParameterDiscoveryReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        bpt_req = body.bpt_ac_cpd_req_energy_transfer_mode
        req = bpt_req if self.selected_service is EnergyService.AC_BPT else \
            body.ac_cpd_req_energy_transfer_mode
        if req is None:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 f"parameters do not match the selected {self.selected_service}")
        self.ev = EvLimits(
            max_charge_power=to_float(req.ev_maximum_charge_power),
            max_discharge_power=abs(to_float(req.ev_maximum_discharge_power))
            if req is bpt_req else None)
        base = msg.ac_cpd_res(self.limits)
        if req is bpt_req:
            mode = ac.BPT_AC_CPDResEnergyTransferModeType(
                **{f: getattr(base, f) for f in base.__slots__},
                **self.discharge_fields(ac, "max_discharge_power", "min_discharge_power"))
            res = ac.AC_ChargeParameterDiscoveryResType(
                header=None, response_code=OK, bpt_ac_cpd_res_energy_transfer_mode=mode)
        else:
            res = ac.AC_ChargeParameterDiscoveryResType(
                header=None, response_code=OK, ac_cpd_res_energy_transfer_mode=base)
        return Outcome(res)

    def on_AC_ChargeLoopReq(self, body: Any, now: float) -> Outcome:
        req = self.loop_request(body, "ac")
        bpt = self.bpt
        dynamic = self.control_mode is ControlMode.DYNAMIC
        max_p = to_float(req.ev_maximum_charge_power)
        max_dp = to_float(getattr(req, "ev_maximum_discharge_power", None))
        self.ev = EvLimits(
            max_charge_power=max_p if max_p is not None else self.ev.max_charge_power,
            max_discharge_power=abs(max_dp) if max_dp is not None else self.ev.max_discharge_power)
        limit = self._max_charge_power()
        if self._ramp_down:
            target = 0.0
        elif dynamic:
            target = ac_target_power(limit, bpt, self.ev, self.power_request)
        else:
            target = min(limit, self.ev.max_charge_power or limit)
        actions = self._publish_target(target)
        res = ac.AC_ChargeLoopResType(header=None, response_code=OK,
                                      evse_status=self._status(ac, now),
                                      meter_info=self._meter_info(ac, body.meter_info_requested))
        power = rational(target, ac)
        if dynamic and bpt:
            res.bpt_dynamic_ac_cl_res_control_mode = ac.BPT_Dynamic_AC_CLResControlModeType(
                evse_target_active_power=power)
        elif dynamic:
            res.dynamic_ac_cl_res_control_mode = ac.Dynamic_AC_CLResControlModeType(
                evse_target_active_power=power)
        elif bpt:
            res.bpt_scheduled_ac_cl_res_control_mode = ac.BPT_Scheduled_AC_CLResControlModeType(
                evse_target_active_power=power)
        else:
            res.scheduled_ac_cl_res_control_mode = ac.Scheduled_AC_CLResControlModeType(
                evse_target_active_power=power)
        return Outcome(res, actions=actions)
