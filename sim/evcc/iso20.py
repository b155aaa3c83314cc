"""ISO 15118-20 EVCC: DC, DC_BPT, AC, AC_BPT with EIM or Plug & Charge, scheduled or dynamic
control mode.

Plugs into ``sim.evcc`` (registers itself as ``"iso20"``): same sans-I/O interface as the DIN
and ISO-2 EVCCs (``start``/``receive``/``next_deadline``/``handle_timer``/``fail``/``record``),
same ``Battery``, ``EvccConfig`` and ``Misbehaviour`` knobs. What -20 adds lives in
``Iso20Options``: the service (BPT or not), the control mode, per-loop scripts of targets and
limits (to exercise dynamic mode and discharge), standby, and a few -20 specific knobs.

Sequence (ISO 15118-20 §8.x): SessionSetup, AuthorizationSetup, Authorization (repeats while
Ongoing), ServiceDiscovery, ServiceDetail, ServiceSelection, {DC|AC}_ChargeParameterDiscovery,
ScheduleExchange (repeats while Ongoing); DC: DC_CableCheck (repeats), DC_PreCharge (repeats
until the voltage matches); PowerDelivery(Start), the charge loop ({DC|AC}_ChargeLoop);
PowerDelivery(Stop|Standby|ScheduleRenegotiation); DC_WeldingDetection; SessionStop(Terminate
or Pause). Unlike DIN/-2 every message is its own EXI root with its own Header, and the payload
type says which schema: 0x8002 common, 0x8003 AC, 0x8004 DC.

Plug & Charge: with ``EvccConfig.contract`` (a P-521 contract for -20; ``TestPKI.iso20``) and
the SECC offering PnC in AuthorizationSetupRes (over TLS), the car answers with
AuthorizationReq(PnC): the echoed GenChallenge and its contract chain in
PnC_AReqAuthorizationMode (Id "ID1"), signed in the header with the contract key (ECDSA-SHA512).
Otherwise it uses EIM. The ``Misbehaviour`` knobs ``pnc_wrong_challenge``,
``pnc_bad_signature``, ``pnc_expired_certificate`` and ``pnc_garbage_certificate`` break it on
purpose; a WARNING_* AuthorizationRes makes the car stop with SessionStop.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import exi_schemas as exi
from exi_schemas.generated import iso20 as cm
from exi_schemas.generated import iso20_ac as ac
from exi_schemas.generated import iso20_dc as dc
from cryptography.hazmat.primitives.asymmetric import ec

from secc.appprotocol.negotiation import Protocol
from secc.pnc.iso20 import sign_authorization
from secc.v2g.physical import split
from secc.v2gtp.header import PayloadType
from sim.evcc import protocols
from sim.evcc.battery import Battery
from sim.evcc.core import (
    DONE,
    EvccConfig,
    EvccSession,
    Misbehaviour,
)
from sim.evcc.failures import (
    InvalidResponse,
    UndecodableResponse,
    UnexpectedMessage,
)
from sim.evcc.iso2 import expired_copy

SCHEMA_OF_PAYLOAD_TYPE = {PayloadType.ISO20_MAIN: "iso20", PayloadType.ISO20_DC: "iso20-dc",
                          PayloadType.ISO20_AC: "iso20-ac"}
PAYLOAD_TYPE_OF_MODULE = {cm.__name__: PayloadType.ISO20_MAIN, dc.__name__: PayloadType.ISO20_DC,
                          ac.__name__: PayloadType.ISO20_AC}

#: Id of the signed PnC_AReqAuthorizationMode (the header Signature's Reference is "#ID1").
PNC_MODE_ID = "ID1"

#: -20 service IDs (Table 204) and ControlMode values.
SERVICE_IDS = {"AC": 1, "DC": 2, "AC_BPT": 5, "DC_BPT": 6}
SCHEDULED, DYNAMIC = 1, 2

#: V2G_EVCC_Msg_Timeout: 2 s in general, 0.5 s in the charge loop (-20), 5 s for the slow ones.
ISO20_MESSAGE_TIMEOUTS: dict[str, float] = {
    "ServiceDetail": 5.0, "ScheduleExchange": 5.0, "PowerDelivery": 5.0,
    "DC_ChargeLoop": 0.5, "AC_ChargeLoop": 0.5,
}

_COMMON_FLOW = {
    "SessionSetup": "AuthorizationSetup",
    "AuthorizationSetup": "Authorization",
    "Authorization": "ServiceDiscovery",
    "ServiceDiscovery": "ServiceDetail",
    "ServiceDetail": "ServiceSelection",
    "SessionStop": DONE,
}
ISO20_DC_FLOW = {**_COMMON_FLOW,
                 "ServiceSelection": "DC_ChargeParameterDiscovery",
                 "DC_ChargeParameterDiscovery": "ScheduleExchange",
                 "ScheduleExchange": "DC_CableCheck",
                 "DC_CableCheck": "DC_PreCharge",
                 "DC_PreCharge": "PowerDelivery",
                 "PowerDelivery": "DC_ChargeLoop",
                 "DC_ChargeLoop": "DC_ChargeLoop",
                 "DC_WeldingDetection": "SessionStop"}
ISO20_AC_FLOW = {**_COMMON_FLOW,
                 "ServiceSelection": "AC_ChargeParameterDiscovery",
                 "AC_ChargeParameterDiscovery": "ScheduleExchange",
                 "ScheduleExchange": "PowerDelivery",
                 "PowerDelivery": "AC_ChargeLoop",
                 "AC_ChargeLoop": "AC_ChargeLoop"}


@dataclass
class Iso20Options:
    """-20 behaviour of the simulated car (defaults: plain charging, scheduled mode)."""

    service: str | None = None               # "DC", "DC_BPT", "AC", "AC_BPT"; None: by mode
    control_mode: int = SCHEDULED            # 1 scheduled, 2 dynamic
    # per charge-loop iteration scripts (index = iteration, the last value holds):
    target_current: Sequence[float] | None = None    # DC scheduled, A (negative discharges)
    max_charge_power: Sequence[float] | None = None  # DC/AC dynamic, W (changing limits)
    ac_present_power: Sequence[float] | None = None  # AC, W the car reports drawing
    max_discharge_current: float = 100.0
    max_discharge_power: float = 50_000.0
    discharge_limits_negative: bool = False  # write our discharge limits as negative numbers
    departure_time: int = 3600
    standby_after: int | None = None         # PowerDelivery(Standby) after N loops ...
    standby_loops: int = 2                   # ... for this many loops, then Start again
    welding_detection: bool = True
    meter_info_requested: bool = False
    stop_after_setup: bool = False           # SessionStop right after SessionSetup (Audi Q4)
    stay_in_state_b: bool = False            # never close S2 after PowerDelivery(Start)
    service_id_override: int | None = None   # select a service the SECC did not offer
    parameter_set_override: int | None = None
    wrong_control_mode_in_loop: bool = False  # send the other control mode in the loop
    service_renegotiation_after_stop: bool = False  # SessionStop(ServiceRenegotiation) once
    wall_clock: Callable[[], float] = time.time


def rational(module: Any, x: float) -> Any:
    value, exponent = split(x)
    return module.RationalNumberType(exponent=exponent, value=value)


def value_of(rn: Any, default: float = 0.0) -> float:
    return default if rn is None else rn.value * 10.0 ** rn.exponent


def _script(values: Sequence[float] | None, index: int, default: float) -> float:
    if not values:
        return default
    return values[min(index, len(values) - 1)]


class Iso20Evcc(EvccSession):
    """-20 EVCC; ``EvccConfig.mode`` picks DC or AC, ``Iso20Options.service`` BPT."""

    PROTOCOL = "iso20"
    SCHEMA = "iso20"
    MESSAGES = cm
    FLOWS: ClassVar[dict[str, dict[str, str]]] = {"dc": ISO20_DC_FLOW, "ac": ISO20_AC_FLOW}
    MESSAGE_TIMEOUTS = ISO20_MESSAGE_TIMEOUTS
    STEP_LIMITS: ClassVar[dict[str, str]] = {
        "Authorization": "ongoing_timeout",
        "ScheduleExchange": "ongoing_timeout",
        "DC_CableCheck": "cable_check_timeout",
        "DC_PreCharge": "precharge_timeout",
    }
    LOOP_STEPS = frozenset({"DC_ChargeLoop", "AC_ChargeLoop"})

    def __init__(self, battery: Battery | None = None, config: EvccConfig | None = None,
                 misbehaviour: Misbehaviour | None = None,
                 options: Iso20Options | None = None) -> None:
        super().__init__(battery, config, misbehaviour)
        self.options = options or Iso20Options()
        self.service = self.options.service or self.config.mode.upper()
        if self.service not in SERVICE_IDS or self.service[:2].lower() != self.config.mode:
            raise ValueError(f"service {self.service} does not fit mode {self.config.mode}")
        self.bpt = self.service.endswith("_BPT")
        self.charge_progress = "Start"
        self.parameter_set_id: int | None = None
        self.schedule_tuple_id: int | None = None
        self.schedule_power: float | None = None
        self.discharged_wh = 0.0
        self.notifications: list[str] = []
        self._standby_since: int | None = None
        self._standby_done = False
        self._renegotiating = False
        self._welding_requests = 0
        self._stopping_for_service_renegotiation = False
        self.use_contract = False      # Plug & Charge chosen (contract held and PnC offered)
        self.gen_challenge: bytes | None = None

    @property
    def cp_state(self) -> str:
        """The control-pilot state the car shows (B, or C while it wants power)."""
        return self.signals.pilot

    def _pilot(self, state: str) -> None:
        if state == "C" and self.options.stay_in_state_b:
            return
        self.signals.pilot = state

    @property
    def loop_step(self) -> str:
        return "DC_ChargeLoop" if self.config.mode == "dc" else "AC_ChargeLoop"

    @property
    def evccid(self) -> str:
        return self.config.evcc_id.hex().upper()

    # --- the -20 envelope (each message its own root, payload type per schema) --------------
    def pack_request(self, step: str, session_id: bytes) -> tuple[Any, bytes, int]:
        message = getattr(self, f"build_{step}")()
        module = {"DC_": dc, "AC_": ac}.get(step[:3], cm)
        message.header = module.MessageHeaderType(session_id=session_id,
                                                  time_stamp=int(self.options.wall_clock()))
        message.header.signature = self.header_signature(step, message)
        payload = exi.encode(message, element=f"{step}Req")
        return message, payload, PAYLOAD_TYPE_OF_MODULE[type(message).__module__]

    def unpack_response(self, step: str, payload_type: int, payload: bytes) -> tuple[Any, Any]:
        schema = SCHEMA_OF_PAYLOAD_TYPE.get(payload_type)
        if schema is None:
            raise UndecodableResponse(step, f"payload type 0x{payload_type:04x}")
        try:
            name, response = exi.decode_element(payload, schema)
        except exi.ExiDecodeError as exc:
            raise UndecodableResponse(step, f"EXI decode failed: {exc}") from None
        if name != f"{step}Res":
            raise UnexpectedMessage(step, f"{step}Res", name)
        return response, response.header

    def mangled_session_id(self, session_id: bytes) -> bytes:
        # -20 SessionSetupReq carries an all-zero SessionID: a random one, not 0xA5..A5
        return bytes(b ^ 0xA5 for b in session_id) if any(session_id) \
            else secrets.token_bytes(8)

    # --- requests ---------------------------------------------------------------------------
    def build_SessionSetup(self) -> Any:
        return cm.SessionSetupReqType(header=None, evccid=self.evccid)

    def build_AuthorizationSetup(self) -> Any:
        return cm.AuthorizationSetupReqType(header=None)

    def build_Authorization(self) -> Any:
        if not self.use_contract:
            return cm.AuthorizationReqType(
                header=None, selected_authorization_service="EIM",
                eim_a_req_authorization_mode=cm.EIM_AReqAuthorizationModeType())
        contract = self.config.contract
        assert contract is not None  # use_contract implies a contract
        knobs = self.misbehaviour
        leaf = contract.certificate
        if knobs.pnc_expired_certificate:
            leaf = expired_copy(leaf, contract.key)
        if knobs.pnc_garbage_certificate:
            leaf = b"\x30\x82\x01\x00" + bytes(range(64))
        challenge = self.gen_challenge or bytes(16)
        if knobs.pnc_wrong_challenge:
            challenge = bytes(b ^ 0x5A for b in challenge)
        return cm.AuthorizationReqType(
            header=None, selected_authorization_service="PnC",
            pn_c_a_req_authorization_mode=cm.PnC_AReqAuthorizationModeType(
                id=PNC_MODE_ID, gen_challenge=challenge,
                contract_certificate_chain=cm.ContractCertificateChainType(
                    certificate=leaf, sub_certificates=cm.SubCertificatesType(
                        certificate=list(contract.sub_certificates)))))

    def header_signature(self, step: str, body: Any) -> Any:
        """PnC: AuthorizationReq is signed over PnC_AReqAuthorizationMode with the contract key
        (P-521: ECDSA-SHA512); ``pnc_bad_signature`` signs with a stranger's key."""
        if step != "Authorization" or not self.use_contract or self.config.contract is None:
            return None
        key = self.config.contract.key
        if self.misbehaviour.pnc_bad_signature:
            key = ec.generate_private_key(key.curve)
        return sign_authorization(body.pn_c_a_req_authorization_mode, key)

    def build_ServiceDiscovery(self) -> Any:
        return cm.ServiceDiscoveryReqType(header=None)

    def _service_id(self) -> int:
        if self.options.service_id_override is not None:
            return self.options.service_id_override
        return SERVICE_IDS[self.service]

    def build_ServiceDetail(self) -> Any:
        return cm.ServiceDetailReqType(header=None, service_id=SERVICE_IDS[self.service])

    def build_ServiceSelection(self) -> Any:
        set_id = self.options.parameter_set_override or self.parameter_set_id or 1
        return cm.ServiceSelectionReqType(
            header=None, selected_energy_transfer_service=cm.SelectedServiceType(
                service_id=self._service_id(), parameter_set_id=set_id))

    def _discharge(self, module: Any, magnitude: float) -> Any:
        return rational(module, -magnitude if self.options.discharge_limits_negative
                        else magnitude)

    def build_DC_ChargeParameterDiscovery(self) -> Any:
        b, o = self.battery, self.options
        common = dict(ev_maximum_charge_power=rational(dc, b.max_power),
                      ev_minimum_charge_power=rational(dc, 100),
                      ev_maximum_charge_current=rational(dc, b.max_current),
                      ev_minimum_charge_current=rational(dc, 1),
                      ev_maximum_voltage=rational(dc, b.max_voltage),
                      ev_minimum_voltage=rational(dc, b.empty_voltage - 30),
                      target_soc=int(b.target_soc))
        if self.bpt:
            mode = dc.BPT_DC_CPDReqEnergyTransferModeType(
                **common, ev_maximum_discharge_power=self._discharge(dc, o.max_discharge_power),
                ev_minimum_discharge_power=self._discharge(dc, 100),
                ev_maximum_discharge_current=self._discharge(dc, o.max_discharge_current),
                ev_minimum_discharge_current=self._discharge(dc, 1))
            return dc.DC_ChargeParameterDiscoveryReqType(
                header=None, bpt_dc_cpd_req_energy_transfer_mode=mode)
        return dc.DC_ChargeParameterDiscoveryReqType(
            header=None, dc_cpd_req_energy_transfer_mode=dc.DC_CPDReqEnergyTransferModeType(
                **common))

    def _ac_max_power(self) -> float:
        b = self.battery
        return b.ac_max_current * b.ac_nominal_voltage * b.ac_phases

    def build_AC_ChargeParameterDiscovery(self) -> Any:
        b = self.battery
        common = dict(ev_maximum_charge_power=rational(ac, self._ac_max_power()),
                      ev_minimum_charge_power=rational(
                          ac, b.ac_min_current * b.ac_nominal_voltage * b.ac_phases))
        if self.bpt:
            mode = ac.BPT_AC_CPDReqEnergyTransferModeType(
                **common,
                ev_maximum_discharge_power=self._discharge(ac, self.options.max_discharge_power),
                ev_minimum_discharge_power=self._discharge(ac, 100))
            return ac.AC_ChargeParameterDiscoveryReqType(
                header=None, bpt_ac_cpd_req_energy_transfer_mode=mode)
        return ac.AC_ChargeParameterDiscoveryReqType(
            header=None, ac_cpd_req_energy_transfer_mode=ac.AC_CPDReqEnergyTransferModeType(
                **common))

    def build_ScheduleExchange(self) -> Any:
        b = self.battery
        energy = b.energy_request_wh()
        if self.options.control_mode == DYNAMIC:
            return cm.ScheduleExchangeReqType(
                header=None, maximum_supporting_points=1024,
                dynamic_se_req_control_mode=cm.Dynamic_SEReqControlModeType(
                    departure_time=self.options.departure_time, minimum_soc=20,
                    target_soc=int(b.target_soc),
                    ev_target_energy_request=rational(cm, energy),
                    ev_maximum_energy_request=rational(cm, energy),
                    ev_minimum_energy_request=rational(cm, 0)))
        return cm.ScheduleExchangeReqType(
            header=None, maximum_supporting_points=1024,
            scheduled_se_req_control_mode=cm.Scheduled_SEReqControlModeType(
                departure_time=self.options.departure_time,
                ev_target_energy_request=rational(cm, energy),
                ev_maximum_energy_request=rational(cm, energy),
                ev_minimum_energy_request=rational(cm, 0)))

    def build_DC_CableCheck(self) -> Any:
        return dc.DC_CableCheckReqType(header=None)

    def build_DC_PreCharge(self) -> Any:
        return dc.DC_PreChargeReqType(header=None, ev_processing="Ongoing",
                                      ev_present_voltage=rational(dc, self.battery.voltage()),
                                      ev_target_voltage=rational(dc, self.battery.voltage()))

    def build_PowerDelivery(self) -> Any:
        if self.charge_progress == "Start":
            self._pilot("C")
        profile = None
        if self.charge_progress == "Start" and not self._standby_done_once():
            max_p = self.battery.max_power if self.config.mode == "dc" else self._ac_max_power()
            power = min(max_p, self.schedule_power or max_p)
            entries = cm.EVPowerProfileEntryListType(ev_power_profile_entry=[
                cm.PowerScheduleEntryType(duration=self.options.departure_time,
                                          power=rational(cm, power))])
            if self.options.control_mode == SCHEDULED:
                profile = cm.EVPowerProfileType(
                    time_anchor=int(self.options.wall_clock()),
                    scheduled_evppt_control_mode=cm.Scheduled_EVPPTControlModeType(
                        selected_schedule_tuple_id=self.schedule_tuple_id or 1),
                    ev_power_profile_entries=entries)
            else:
                profile = cm.EVPowerProfileType(
                    time_anchor=int(self.options.wall_clock()),
                    dynamic_evppt_control_mode=cm.Dynamic_EVPPTControlModeType(),
                    ev_power_profile_entries=entries)
        return cm.PowerDeliveryReqType(header=None, ev_processing="Finished",
                                       charge_progress=self.charge_progress,
                                       ev_power_profile=profile)

    def _standby_done_once(self) -> bool:
        return self._standby_since is not None

    def _loop_index(self) -> int:
        return self.record.loop_iterations

    def _dynamic(self) -> bool:
        mode = self.options.control_mode == DYNAMIC
        return not mode if self.options.wrong_control_mode_in_loop else mode

    def build_DC_ChargeLoop(self) -> Any:
        b, o = self.battery, self.options
        i = self._loop_index()
        energy = b.energy_request_wh()
        max_p = _script(o.max_charge_power, i, b.max_power)
        req = dc.DC_ChargeLoopReqType(
            header=None, meter_info_requested=o.meter_info_requested,
            display_parameters=dc.DisplayParametersType(present_soc=int(b.soc),
                                                        target_soc=int(b.target_soc)),
            ev_present_voltage=rational(dc, b.voltage()))
        energy_fields = dict(ev_target_energy_request=rational(dc, energy),
                             ev_maximum_energy_request=rational(dc, energy),
                             ev_minimum_energy_request=rational(dc, 0))
        if self._dynamic():
            fields = dict(**energy_fields, departure_time=o.departure_time,
                          ev_maximum_charge_power=rational(dc, max_p),
                          ev_minimum_charge_power=rational(dc, 0),
                          ev_maximum_charge_current=rational(dc, b.max_current),
                          ev_maximum_voltage=rational(dc, b.max_voltage),
                          ev_minimum_voltage=rational(dc, b.empty_voltage - 30))
            if self.bpt:
                req.bpt_dynamic_dc_cl_req_control_mode = dc.BPT_Dynamic_DC_CLReqControlModeType(
                    **fields,
                    ev_maximum_discharge_power=self._discharge(dc, o.max_discharge_power),
                    ev_minimum_discharge_power=self._discharge(dc, 0),
                    ev_maximum_discharge_current=self._discharge(dc, o.max_discharge_current))
            else:
                req.dynamic_dc_cl_req_control_mode = dc.Dynamic_DC_CLReqControlModeType(**fields)
            return req
        current = _script(o.target_current, i, b.target_current())
        fields = dict(**energy_fields, ev_target_current=rational(dc, current),
                      ev_target_voltage=rational(dc, b.max_voltage),
                      ev_maximum_charge_power=rational(dc, max_p),
                      ev_maximum_charge_current=rational(dc, b.max_current),
                      ev_maximum_voltage=rational(dc, b.max_voltage))
        if self.bpt:
            req.bpt_scheduled_dc_cl_req_control_mode = dc.BPT_Scheduled_DC_CLReqControlModeType(
                **fields,
                ev_maximum_discharge_power=self._discharge(dc, o.max_discharge_power),
                ev_maximum_discharge_current=self._discharge(dc, o.max_discharge_current))
        else:
            req.scheduled_dc_cl_req_control_mode = dc.Scheduled_DC_CLReqControlModeType(**fields)
        return req

    def build_AC_ChargeLoop(self) -> Any:
        b, o = self.battery, self.options
        i = self._loop_index()
        max_p = _script(o.max_charge_power, i, self._ac_max_power())
        present = rational(ac, _script(o.ac_present_power, i, 0.0))
        energy = b.energy_request_wh()
        req = ac.AC_ChargeLoopReqType(header=None, meter_info_requested=o.meter_info_requested)
        if self._dynamic():
            fields = dict(departure_time=o.departure_time,
                          ev_target_energy_request=rational(ac, energy),
                          ev_maximum_energy_request=rational(ac, energy),
                          ev_minimum_energy_request=rational(ac, 0),
                          ev_maximum_charge_power=rational(ac, max_p),
                          ev_minimum_charge_power=rational(ac, 0),
                          ev_present_active_power=present,
                          ev_present_reactive_power=rational(ac, 0))
            if self.bpt:
                req.bpt_dynamic_ac_cl_req_control_mode = ac.BPT_Dynamic_AC_CLReqControlModeType(
                    **fields,
                    ev_maximum_discharge_power=self._discharge(ac, o.max_discharge_power),
                    ev_minimum_discharge_power=self._discharge(ac, 0))
            else:
                req.dynamic_ac_cl_req_control_mode = ac.Dynamic_AC_CLReqControlModeType(**fields)
            return req
        fields = dict(ev_maximum_charge_power=rational(ac, max_p), ev_present_active_power=present)
        if self.bpt:
            req.bpt_scheduled_ac_cl_req_control_mode = ac.BPT_Scheduled_AC_CLReqControlModeType(
                **fields,
                ev_maximum_discharge_power=self._discharge(ac, o.max_discharge_power))
        else:
            req.scheduled_ac_cl_req_control_mode = ac.Scheduled_AC_CLReqControlModeType(**fields)
        return req

    def build_DC_WeldingDetection(self) -> Any:
        return dc.DC_WeldingDetectionReqType(header=None, ev_processing="Finished")

    def build_SessionStop(self) -> Any:
        if self._stopping_for_service_renegotiation:
            kind = "ServiceRenegotiation"
        elif self.options.stop_after_setup and self.record.loop_iterations == 0 and \
                self.parameter_set_id is None:
            kind = "Terminate"
        else:
            kind = "Pause" if self.misbehaviour.pause_instead_of_terminate else "Terminate"
        return cm.SessionStopReqType(header=None, charging_session=kind,
                                     ev_termination_code="EVCC" if kind == "Terminate" else None)

    # --- responses --------------------------------------------------------------------------
    def on_SessionSetup(self, res: Any, now: float) -> str | None:
        self.session_setup_done(res.response_code, res.evseid)
        if self.options.stop_after_setup:
            return "SessionStop"
        return None

    def on_AuthorizationSetup(self, res: Any, now: float) -> str | None:
        offered = res.authorization_services
        pnc_mode = res.pn_c_as_res_authorization_mode
        self.use_contract = (self.config.contract is not None and "PnC" in offered
                             and pnc_mode is not None)
        if self.use_contract:
            self.gen_challenge = pnc_mode.gen_challenge
        elif self.config.contract is not None:
            self.say("the EVSE offers no PnC: falling back to EIM")
        if not self.use_contract and "EIM" not in offered:
            raise InvalidResponse("AuthorizationSetup", "the EVSE offers no EIM")
        return None

    def on_Authorization(self, res: Any, now: float) -> str | None:
        if res.response_code.startswith("WARNING"):
            self.record.stop_reason = res.response_code
            return "SessionStop"
        return self.ongoing("Authorization", res.evse_processing, now)

    def on_ServiceDiscovery(self, res: Any, now: float) -> str | None:
        offered = [s.service_id for s in res.energy_transfer_service_list.service]
        if SERVICE_IDS[self.service] not in offered:
            raise InvalidResponse("ServiceDiscovery", f"the EVSE offers {offered}, "
                                                      f"not {self.service}")
        return None

    def on_ServiceDetail(self, res: Any, now: float) -> str | None:
        for parameter_set in res.service_parameter_list.parameter_set:
            params = {p.name: p.int_value for p in parameter_set.parameter}
            if params.get("ControlMode") == self.options.control_mode:
                self.parameter_set_id = parameter_set.parameter_set_id
                return None
        raise InvalidResponse("ServiceDetail", f"no parameter set with control mode "
                                               f"{self.options.control_mode}")

    def on_ScheduleExchange(self, res: Any, now: float) -> str | None:
        again = self.ongoing("ScheduleExchange", res.evse_processing, now)
        if again:
            return again
        if self.options.control_mode == SCHEDULED:
            mode = res.scheduled_se_res_control_mode
            if mode is None or not mode.schedule_tuple:
                raise InvalidResponse("ScheduleExchange", "no schedule tuple")
            chosen = mode.schedule_tuple[0]
            self.schedule_tuple_id = chosen.schedule_tuple_id
            self.record.sa_schedule_tuple_id = chosen.schedule_tuple_id
            entries = chosen.charging_schedule.power_schedule.power_schedule_entries
            self.schedule_power = value_of(entries.power_schedule_entry[0].power)
            self.record.saw_limit("PowerSchedule", self.schedule_power)
        if self._renegotiating:
            self._renegotiating = False
            self.record.renegotiations += 1
            self.charge_progress = "Start"
            return "PowerDelivery"
        self.charge_progress = "Start"
        if self.config.mode == "dc":
            self._pilot("C")  # S2 closed: ready for the isolation check
        return None

    def on_DC_CableCheck(self, res: Any, now: float) -> str | None:
        return self.ongoing("DC_CableCheck", res.evse_processing, now)

    def on_DC_PreCharge(self, res: Any, now: float) -> str | None:
        present = value_of(res.evse_present_voltage)
        if abs(present - self.battery.voltage()) > self.config.precharge_tolerance:
            return self.repeat("DC_PreCharge")
        self.say(f"PreCharge OK ({present:.0f} V)")
        return None

    def on_PowerDelivery(self, res: Any, now: float) -> str | None:
        progress = self.charge_progress
        self.say(f"PowerDelivery({progress}) OK")
        if progress == "Start":
            self.signals.contactors_closed = self.config.mode == "dc"
            return self.loop_step
        if progress == "Standby":
            return self.loop_step
        if progress == "ScheduleRenegotiation":
            self._renegotiating = True
            return "ScheduleExchange"
        self.signals.contactors_closed = False
        self.signals.pilot = "B"
        if self.config.mode == "dc" and self.options.welding_detection:
            return "DC_WeldingDetection"
        if self.options.service_renegotiation_after_stop and \
                not self._stopping_for_service_renegotiation:
            self._stopping_for_service_renegotiation = True
        return "SessionStop"

    def _loop_decision(self, status: Any) -> str:
        notification = getattr(status, "evse_notification", None)
        if notification:
            self.notifications.append(notification)
        n = self.record.loop_iterations
        if self._standby_since is not None and not self._standby_done:
            if n - self._standby_since >= self.options.standby_loops:
                self._standby_done = True
                self.charge_progress = "Start"
                return "PowerDelivery"
            return self.repeat(self.loop_step)
        reason = self.stop_reason() or ("evse_stop" if notification == "Terminate" else None)
        if reason:
            self.record.stop_reason = reason
            self.charge_progress = "Stop"
            return "PowerDelivery"
        knobs = self.misbehaviour
        if notification == "ScheduleRenegotiation" or (
                knobs.renegotiate_after is not None and self.record.renegotiations == 0
                and not self._renegotiating and n == knobs.renegotiate_after):
            self.charge_progress = "ScheduleRenegotiation"
            return "PowerDelivery"
        if self.options.standby_after is not None and self._standby_since is None and \
                n >= self.options.standby_after:
            self._standby_since = n
            self.charge_progress = "Standby"
            return "PowerDelivery"
        return self.repeat(self.loop_step)

    def on_DC_ChargeLoop(self, res: Any, now: float) -> str | None:
        voltage = value_of(res.evse_present_voltage)
        current = value_of(res.evse_present_current)
        for mode in (res.scheduled_dc_cl_res_control_mode, res.dynamic_dc_cl_res_control_mode,
                     res.bpt_scheduled_dc_cl_res_control_mode,
                     res.bpt_dynamic_dc_cl_res_control_mode):
            limit = getattr(mode, "evse_maximum_charge_power", None)
            if limit is not None:
                self.record.saw_limit("EVSEMaximumChargePower", value_of(limit))
        if current < 0 and self.config.seconds_per_iteration:
            self.discharged_wh += -voltage * current * self.config.seconds_per_iteration / 3600
        self.loop_tick(voltage * current, now, voltage, current)
        self.signals.battery_voltage = self.battery.voltage()
        return self._loop_decision(res.evse_status)

    def on_AC_ChargeLoop(self, res: Any, now: float) -> str | None:
        target = None
        for mode in (res.dynamic_ac_cl_res_control_mode, res.bpt_dynamic_ac_cl_res_control_mode,
                     res.scheduled_ac_cl_res_control_mode,
                     res.bpt_scheduled_ac_cl_res_control_mode):
            if mode is not None and mode.evse_target_active_power is not None:
                target = value_of(mode.evse_target_active_power)
        power = self._ac_max_power() if target is None else target
        b = self.battery
        self.loop_tick(power, now, b.ac_nominal_voltage, power / b.ac_nominal_voltage)
        return self._loop_decision(res.evse_status)

    def on_DC_WeldingDetection(self, res: Any, now: float) -> str | None:
        self._welding_requests += 1
        if (value_of(res.evse_present_voltage) > 60.0
                and self._welding_requests < self.config.welding_detection_max):
            return self.repeat("DC_WeldingDetection")
        if self.options.service_renegotiation_after_stop and \
                not self._stopping_for_service_renegotiation:
            self._stopping_for_service_renegotiation = True
        return None

    def on_SessionStop(self, res: Any, now: float) -> str | None:
        if self._stopping_for_service_renegotiation:
            # back to ServiceDiscovery, this time ending normally
            self.options.service_renegotiation_after_stop = False
            self._stopping_for_service_renegotiation = False
            self._standby_since = None
            return "ServiceDiscovery"
        self.record.paused = self.misbehaviour.pause_instead_of_terminate and \
            not self.options.stop_after_setup
        self.say(f"SessionStop OK ({'paused' if self.record.paused else 'terminated'}), "
                 f"{self.record.loop_iterations} loops, SoC {self.battery.soc:.0f}%")
        return DONE


def iso20_factory(options: Iso20Options | None = None) -> Callable[..., Iso20Evcc]:
    """A registry factory that builds EVCCs with these -20 options."""
    def factory(battery: Battery, config: EvccConfig, misbehaviour: Misbehaviour) -> Iso20Evcc:
        return Iso20Evcc(battery, config, misbehaviour,
                         options=Iso20Options(**vars(options)) if options else None)
    factory.FLOWS = Iso20Evcc.FLOWS  # type: ignore[attr-defined]  # sim.ev validates knobs
    return factory


protocols.register(protocols.EvProtocol(
    "iso20", {"dc": Protocol.ISO15118_20_DC.namespace, "ac": Protocol.ISO15118_20_AC.namespace},
    1, 0, iso20_factory(),
    Protocol.ISO15118_20_DC.payload_types | Protocol.ISO15118_20_AC.payload_types))
