"""The ISO 15118-20 SECC session: one handler per request, on the shared ``SessionCore``.
This module has the common messages; ``secc.iso20.dc`` and ``secc.iso20.ac`` the energy ones.

Sequence rules live in ``secc.iso20.table`` (one table per namespace); failures map to response
codes through ``secc.v2g.failures`` (its "iso20" column). Handlers are small and named after
the request (``on_DC_ChargeLoopReq``). The core is sans-I/O: ``now`` comes in, actions and
deadlines go out; the wall clock is only read (through ``wall_clock``) for schedule
TimeAnchors.

Plug & Charge (over TLS only): AuthorizationSetupRes offers PnC with a fresh 16-byte
GenChallenge; AuthorizationReq(PnC) must echo it (else WARNING_ChallengeInvalid), carry a
contract chain that parses and verifies (WARNING_Certificate*), and a header Signature over
PnC_AReqAuthorizationMode made with the contract key (else FAILED_SignatureError); then the
eMSP decides (eMAID, PEM chain, OCSP data) while we answer Ongoing. WARNING verdicts are
answered with EVSEProcessing Finished and stick: the car ends the session with SessionStop.

Timers: sequence timeout 60 s, but 0.5 s in the charge loop and standby (-20 Tables 216/217);
Ongoing limits for Authorization (``ongoing_timeout``), CableCheck (``cable_check_timeout``) and
PreCharge (``precharge_timeout``); the CP-state check after PowerDelivery(Start); and the
EVSE-notification deadline after we asked the car to stop (``notification_max_delay``).

EVSE-side stops (``evse_stop``): dangerous ones (e-stop, isolation fault, malfunction) make power
safe at once and the next request gets FAILED with EVSEStatus Terminate, ending the session.
A remote stop is graceful: charge-loop responses carry EVSENotification=Terminate with
NotificationMaxDelay, the output goes to 0 A, and the car must stop within that delay.

Quirks (``quirks`` frozenset on the core, names from ``secc.v2g.quirks``):
``bpt_discharge_positive`` sends our BPT discharge limits as positive numbers; by default they
go out negative (power leaving the car). The standard is unclear and cars differ (EVerest PR
#1473 added the same switch; EDF eVDriveFlow#7 chose positive). Incoming car discharge limits
are read by magnitude, so either sign works without the quirk.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from exi_schemas.generated import iso20 as cm
from secc.common.lazy import lazy_module
from secc.contract.reasons import EndReason
from secc.iso20 import messages as msg
from secc.iso20.messages import evse_status, rational, to_float
from secc.v2g.paused import PausedSession, PausedSessions
from secc.iso20.power import (
    BptLimits,
    EvLimits,
)
from secc.iso20.services import ControlMode, Energy, EnergyService, ParameterSet, parameter_sets
from secc.pnc import installation
from secc.pnc import iso20 as pnc
from secc.pnc.installation import CertificateForwarding
from secc.pnc.contract import ContractChain, normalize_emaid, ocsp_request_data
from secc.iso20.table import (
    LOOP_STATES,
    POWER_STATES,
    STOP_SERVICE_RENEGOTIATION,
    S,
)
from secc.v2g.charging_limit import Offer
from secc.v2g.core import DANGEROUS_STOPS, TERMINATED, Outcome, SessionCore
from secc.v2g.dc import CableCheck, Setpoint
from secc.v2g.evse import (
    Action,
    CloseConnection,
    EnterSafeState,
    Isolation,
    PublishEvent,
    RequestCertificate,
    StopReason,
)
from secc.v2g.failures import Failure, SessionFailure, response_code

x509 = lazy_module("cryptography.x509")

QUIRK_BPT_DISCHARGE_POSITIVE = "bpt_discharge_positive"
KNOWN_QUIRKS = frozenset({QUIRK_BPT_DISCHARGE_POSITIVE})

OK = "OK"
EIM, PNC = "EIM", "PnC"


@dataclass(frozen=True)
class Iso20Config:
    """-20 specific settings of one connector (the rest is in ``EvseLimits``/timers)."""

    services: tuple[EnergyService, ...] | None = None  # None: both of the namespace
    bpt: BptLimits = BptLimits()
    service_renegotiation_supported: bool = True
    notification_max_delay: int = 60      # s the car gets to stop after EVSENotification
    meter_id: str = "PYSECC-METER-1"
    schedule_duration: int = 86400        # s covered by the one schedule tuple we offer
    free_service: bool = False
    # Answer ScheduleExchange with Ongoing until ``provide_schedule_limit`` was called (e.g. the
    # CSMS's SetChargingProfile after the EVChargingNeeds event); bounded by ongoing_timeout.
    wait_for_schedule: bool = False
    # s ScheduleExchange answers Ongoing after EVChargingNeeds (OCPP NotifyEVChargingNeeds) so
    # the CSMS's answer and profile can shape the first schedule; then the present limit
    charging_needs_wait: float = 0.0
    # PnC: eMSP provider IDs accepted here (AuthorizationSetupRes SupportedProviders, <= 128);
    # empty: the element is left out (every provider)
    supported_providers: tuple[str, ...] = ()


class Iso20Session(CertificateForwarding, SessionCore):
    """Common -20 messages; ``Iso20DcSession``/``Iso20AcSession`` add the energy messages."""

    PROTOCOL = "iso20"
    INITIAL_STATE = S.WAIT_SESSION_SETUP
    ENERGY: ClassVar[Energy]

    def __init__(self, *, config: Iso20Config | None = None,
                 paused_sessions: PausedSessions | None = None, tls: bool = False,
                 offer_contract: bool = True, mo_roots: Sequence[x509.Certificate] = (),
                 charging_needs_wait: float | None = None,
                 payment_options: Sequence[str] = ("Contract", "ExternalPayment"),
                 **kwargs: Any) -> None:
        """``tls``: the connection is TLS, so Plug & Charge is offered (never over plain TCP),
        unless the board turns it off (``offer_contract=False``). ``payment_options``: the
        board's [v2g].payment_options in ISO-2 names (Contract = PnC, ExternalPayment = EIM;
        without ExternalPayment a PnC-only charger). ``mo_roots``: installed MO
        roots for the local contract chain check and complete OCSP data (optional; the CSMS
        validates otherwise). Same option names as the ISO-2 core, so one wiring serves both."""
        super().__init__(**kwargs)
        self.tls = tls
        self.pnc_offered = tls and offer_contract and "Contract" in payment_options
        # EIM unless the board is PnC-only (and PnC can be offered: never none)
        self.eim_offered = "ExternalPayment" in payment_options or not self.pnc_offered
        self.mo_roots = tuple(mo_roots)
        self.gen_challenge: bytes | None = None
        self.contract: ContractChain | None = None
        self.emaid = ""
        self.contract_pem = ""
        self.contract_ocsp: list[dict[str, str]] = []
        self._pnc_warning: SessionFailure | None = None
        self.config = config or Iso20Config()
        if charging_needs_wait is not None:   # the ISO-2 core's option name, same wiring
            self.config = dataclasses.replace(self.config,
                                              charging_needs_wait=charging_needs_wait)
        foreign = [s.name for s in self.config.services or () if s not in self.ENERGY.services]
        if foreign:
            raise ValueError(f"{', '.join(foreign)} cannot be offered in a "
                             f"{self.ENERGY.value.upper()} session")
        self.paused_sessions = paused_sessions if paused_sessions is not None else \
            PausedSessions()
        self.evccid = ""
        self.resumed = False
        self.selected_service: EnergyService | None = None
        self.parameter_set: ParameterSet | None = None
        self.ev = EvLimits()
        self.schedule_tuple_ids: frozenset[int] = frozenset()
        self.power_request: float | None = None   # dynamic mode: EVSE-side target, W
        self.setpoint: Setpoint | None = None
        self.loop_count = 0
        self._renegotiation_requested = False
        self.cable_check: CableCheck | None = None   # this charge's insulation test
        self.schedule_limit: float | None = None   # W, from the grid/CSMS
        self._schedule_decided = False
        self._needs_published = False
        self._loop_limits = self.limits

    # --- what SessionCore asks of a protocol --------------------------------------------------
    def event_of(self, name: str, body: Any) -> str:
        if name == "PowerDeliveryReq":
            return f"{name}.{body.charge_progress}"
        if name == "SessionStopReq":
            return f"{name}.{body.charging_session}"
        return name

    def failed_response(self, request_name: str, code: str) -> tuple[str, Any]:
        return msg.failed_response(request_name, code, evse_id=self.evse_id, limits=self.limits,
                                   present_voltage=self.evse.present_voltage)

    def sequence_timeout_for(self, state: str) -> float:
        if state in LOOP_STATES:
            return self.timer_config.charge_loop_sequence_timeout_iso20
        return self.timer_config.sequence_timeout

    # --- outside events ---------------------------------------------------------------------
    def request_schedule_renegotiation(self) -> None:
        """EVSE side (e.g. a new CSMS profile): ask the car to renegotiate its schedule."""
        self._renegotiation_requested = True

    def provide_schedule_limit(self, watts: float | None) -> None:
        """The grid/CSMS power limit for this session (W; None: no limit beyond our rating).
        Ends a ScheduleExchange wait; lowers the schedule and the loop set-points."""
        self.schedule_limit = watts
        self._schedule_decided = True
        max_power = self.limits.max_power if watts is None else min(self.limits.max_power, watts)
        self._loop_limits = dataclasses.replace(self.limits, max_power=max_power)

    @property
    def delivers_ac(self) -> bool:
        return self.ENERGY is Energy.AC

    def set_charging_limit(self, offer: Offer) -> None:
        """The CSMS's limit (every request). A new revision mid-session ends a ScheduleExchange
        wait and, in the scheduled charge loop, asks the car to renegotiate
        (EVSENotification=ScheduleRenegotiation); dynamic mode just follows the lower
        ``_loop_limits`` in its next targets."""
        previous = self.limit_revision
        super().set_charging_limit(offer)
        if previous is not None and offer.revision != previous:
            self._schedule_decided = True
            if self.state in LOOP_STATES and self.control_mode is ControlMode.SCHEDULED:
                self.request_schedule_renegotiation()
        watts = self.schedule_limit
        self._loop_limits = self.limits if watts is None else dataclasses.replace(
            self.limits, max_power=min(self.limits.max_power, watts))

    def set_power_request(self, watts: float | None) -> None:
        """Dynamic mode target (W; negative discharges a BPT car; None: as much as allowed)."""
        self.power_request = watts

    # --- helpers ----------------------------------------------------------------------------
    @property
    def bpt(self) -> BptLimits | None:
        return self.config.bpt if self.selected_service and self.selected_service.is_bpt \
            else None

    @property
    def control_mode(self) -> ControlMode:
        return self.parameter_set.control_mode if self.parameter_set else ControlMode.SCHEDULED

    @property
    def effective_stop(self) -> StopReason:
        if self.stop_reason is not StopReason.NONE:
            return self.stop_reason
        return self.evse.stop_reason

    def offered_services(self) -> tuple[EnergyService, ...]:
        return self.config.services or self.ENERGY.services

    def discharge_on_wire(self, magnitude: float) -> float:
        """Our discharge limits as the car expects them (negative; quirk: positive)."""
        return magnitude if QUIRK_BPT_DISCHARGE_POSITIVE in self.quirks else -magnitude

    def discharge_fields(self, module: Any, *limits: str) -> dict[str, Any]:
        """BPT limits of the config (``max_discharge_power`` ...) as response fields
        (``evse_maximum_discharge_power`` ...): RationalNumbers of ``module``, signed for
        the wire."""
        bpt = self.config.bpt
        return {"evse_" + name.replace("max_", "maximum_").replace("min_", "minimum_"):
                rational(self.discharge_on_wire(getattr(bpt, name)), module) for name in limits}

    def _check_stop(self, graceful_ok: bool) -> None:
        """Refuse a request after an EVSE-side stop; graceful stops pass where the response
        can tell the car (EVSEStatus) and power is ramped down instead."""
        reason = self.effective_stop
        if self.stop_reason is StopReason.NONE and reason is not StopReason.NONE:
            self.stop_reason = reason   # seen in the snapshot: the safe-state cause follows it
        if reason in DANGEROUS_STOPS:
            raise SessionFailure(Failure.GENERAL, f"EVSE stop: {reason.value}")
        if reason is not StopReason.NONE and not graceful_ok:
            raise SessionFailure(Failure.GENERAL, f"EVSE stop: {reason.value}")

    def _status(self, module: Any, now: float) -> Any | None:
        """EVSEStatus for PowerDelivery/ChargeLoop responses (None: nothing to say)."""
        if self.effective_stop is not StopReason.NONE:
            delay = self.config.notification_max_delay
            self.timers.arm_once("evse_notification", now, delay)
            return evse_status(module, "Terminate", delay)
        if self._renegotiation_requested:
            return evse_status(module, "ScheduleRenegotiation", self.config.notification_max_delay)
        return None

    # --- common handlers --------------------------------------------------------------------
    def on_SessionSetupReq(self, body: Any, now: float) -> Outcome:
        self.evccid = body.evccid
        old_id = body.header.session_id
        paused = None
        if old_id != bytes(8):
            paused = self.paused_sessions.take(old_id, body.evccid, now)
        if paused is not None:
            self.session_id = paused.session_id
            self.authorization = paused.authorization
            self.resumed = True
            code = "OK_OldSessionJoined"
            event = PublishEvent("SessionResumed", {"session_id": self.session_id.hex(),
                                                    "evccid": self.evccid})
        else:
            self.session_id = self.new_session_id()
            code = "OK_NewSessionEstablished"
            event = PublishEvent("SessionStarted", {"session_id": self.session_id.hex(),
                                                    "evccid": self.evccid,
                                                    "protocol": f"iso20-{self.ENERGY.value}"})
        return Outcome(cm.SessionSetupResType(header=None, response_code=code,
                                              evseid=self.evse_id), actions=[event])

    def on_AuthorizationSetupReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        if not self.pnc_offered:
            return Outcome(cm.AuthorizationSetupResType(
                header=None, response_code=OK, authorization_services=[EIM],
                certificate_installation_service=False,
                eim_as_res_authorization_mode=cm.EIM_ASResAuthorizationModeType()))
        self.gen_challenge = self.random_bytes(pnc.GEN_CHALLENGE_BYTES)
        return Outcome(cm.AuthorizationSetupResType(
            header=None, response_code=OK,
            authorization_services=[EIM, PNC] if self.eim_offered else [PNC],
            certificate_installation_service=True,  # forwarded to the CSMS (Get15118EVCert.)
            pn_c_as_res_authorization_mode=cm.PnC_ASResAuthorizationModeType(
                gen_challenge=self.gen_challenge, supported_providers=cm.SupportedProvidersListType(
                    provider_id=list(self.config.supported_providers[:128]))
                if self.config.supported_providers else None)))

    # --- CertificateInstallation (§8.3.4.3.9; OCPP Get15118EVCertificate, -20 schema) -------
    def receive(self, name: str, body: Any, now: float, session_id: bytes | None = None) -> Any:
        if name == "CertificateInstallationReq" and self.certificate_answer is None:
            self.pending_certificate = (name, body, session_id)
        return super().receive(name, body, now, session_id)

    def on_CertificateInstallationReq(self, body: Any, now: float) -> Outcome:
        """First pass: the whole request (its header signature by the OEM provisioning key
        included) goes to the CSMS, no response yet. Second pass (``certificate_answered``):
        the CPS's CertificateInstallationRes, its signature kept, or the failure. The car
        waits for it (V2G_EVCC_Msg_Timeout); the CSMS gets a little less."""
        self._check_stop(False)
        if not self.pnc_offered:
            raise SessionFailure(Failure.NO_CERTIFICATE_AVAILABLE,
                                 "CertificateInstallation is offered with Plug & Charge only")
        answer, self.certificate_answer = self.certificate_answer, None
        if answer is None:
            try:
                exi_request = installation.request_exi_iso20(body)
            except Exception as exc:  # noqa: BLE001 - re-encoding what we decoded; never crash
                raise SessionFailure(Failure.GENERAL, f"cannot re-encode the request: {exc!r}") \
                    from None
            self.log.info("forwarding certificate request to the CSMS", extra={
                "request": "CertificateInstallationReq", "action": "Install",
                "exi_chars": len(exi_request)})
            return Outcome(None, stay=True, actions=[RequestCertificate(
                self.session_id.hex(), "Install", exi_request,
                installation.ISO20_SCHEMA_VERSION, installation.CERTIFICATE_TIMEOUT)])
        if not answer.accepted:
            self.log.warning(f"no contract certificate from the CSMS ({answer.status}): "
                             f"{answer.reason}", extra={"request": "CertificateInstallationReq"})
            raise SessionFailure(Failure.NO_CERTIFICATE_AVAILABLE,
                                 f"Get15118EVCertificate(Install) {answer.status}: "
                                 f"{answer.reason}")
        try:
            res = installation.parse_response_exi_iso20(answer.exi_response)
        except installation.InstallationResponseError as exc:
            self.log.error(f"CSMS sent an unusable certificate response: {exc}",
                           extra={"request": "CertificateInstallationReq"})
            raise SessionFailure(Failure.GENERAL, f"exiResponse: {exc}") from None
        self.log.info("contract certificate response forwarded to the EV", extra={
            "request": "CertificateInstallationReq", "response_code": res.response_code,
            "remaining": res.remaining_contract_certificate_chains})
        return Outcome(res)


    def on_AuthorizationReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        service = body.selected_authorization_service
        if service == PNC and self.pnc_offered:
            return self._pnc_authorization(body, now)
        if service != EIM or not self.eim_offered:
            return self._authorization_warning(Failure.PAYMENT_SELECTION_INVALID,
                                               f"{service} not offered")
        try:
            finished, actions = self.authorization_step(now, "EXTERNAL", "Central")
        except SessionFailure:
            if self.authorization is None:   # no decision within the Ongoing limit
                raise
            # rejected: say so and let the car end the session with SessionStopReq
            status = self.authorization.status.value
            return self._authorization_warning(Failure.AUTHORIZATION_REJECTED, status, status)
        return self._authorization_result(finished, actions)

    def _authorization_result(self, finished: bool, actions: list[Action]) -> Outcome:
        if not finished:
            return Outcome(cm.AuthorizationResType(
                header=None, response_code=OK,
                evse_processing="Ongoing_WaitingForCustomerInteraction"),
                stay=True, actions=actions)
        return Outcome(cm.AuthorizationResType(header=None, response_code=OK,
                                               evse_processing="Finished"), actions=actions)

    def _authorization_warning(self, failure: Failure, detail: str,
                               status: str | None = None) -> Outcome:
        """A WARNING_* AuthorizationRes with EVSEProcessing Finished: authorization failed, the
        session stays where it is and the car ends it with SessionStopReq (-20 §8.3.4.3)."""
        code = response_code(self.PROTOCOL, failure)
        self.log.warning("authorization refused", extra={"response_code": code,
                                                         "detail": detail})
        return Outcome(cm.AuthorizationResType(header=None, response_code=code,
                                               evse_processing="Finished"), stay=True,
                       actions=[PublishEvent("AuthorizationRejected", {
                           "status": status or code, "response_code": code, "reason": detail})])

    # --- Plug & Charge ----------------------------------------------------------------------
    def _pnc_authorization(self, body: Any, now: float) -> Outcome:
        """AuthorizationReq(PnC): challenge, chain, signature, then the eMSP via the CSMS.

        Checks repeat on every (Ongoing) request, so a car cannot swap the contract after the
        first; a WARNING verdict sticks for the rest of the session (the car ends it with
        SessionStopReq). FAILED_SignatureError, and no eMSP decision within the Ongoing limit,
        end the session (the core ends it for a raised failure)."""
        if self._pnc_warning is not None:
            return self._authorization_warning(self._pnc_warning.failure,
                                               self._pnc_warning.detail)
        try:
            actions = self._check_pnc_request(body)
            failure = pnc.certificate_decision_failure(self.authorization)
            if failure is not None:
                raise SessionFailure(failure, getattr(self.authorization, "reason", ""))
        except SessionFailure as failure:
            if failure.failure is Failure.SIGNATURE_ERROR:
                raise
            self._pnc_warning = failure
            return self._authorization_warning(failure.failure, failure.detail)
        try:
            finished, step_actions = self.authorization_step(
                now, self.emaid, "eMAID", contract_chain_pem=self.contract_pem,
                ocsp_request_data=self.contract_ocsp)
        except SessionFailure:
            decision = self.authorization
            if decision is None:   # no decision within the Ongoing limit
                raise SessionFailure(Failure.PNC_AUTHORIZATION_REJECTED,
                                     "no eMSP decision in time") from None
            self._pnc_warning = SessionFailure(Failure.PNC_AUTHORIZATION_REJECTED,
                                               f"{decision.status.value}: {decision.reason}")
            return self._authorization_warning(Failure.PNC_AUTHORIZATION_REJECTED,
                                               decision.reason, decision.status.value)
        return self._authorization_result(finished, actions + step_actions)

    def _check_pnc_request(self, body: Any) -> list[Action]:
        """What the SECC checks itself; the first success remembers the contract."""
        mode = body.pn_c_a_req_authorization_mode
        if mode is None:
            raise SessionFailure(Failure.PAYMENT_SELECTION_INVALID,
                                 "PnC selected without PnC_AReqAuthorizationMode")
        pnc.check_challenge(mode.gen_challenge, self.gen_challenge)
        contract = pnc.contract_of(mode)
        if self.contract is not None and contract.leaf != self.contract.leaf:
            raise SessionFailure(Failure.CERT_CHAIN_ERROR, "contract changed while Ongoing")
        pnc.verify_signature(body.header.signature, mode, contract.public_key)
        # certificate validity is wall-clock time (read through ``wall_clock``, like TimeAnchors)
        wall_now = self.wall_datetime()
        pnc.check_contract_chain(contract, now=wall_now, mo_roots=self.mo_roots)
        if self.contract is not None:
            return []
        self.contract, self.emaid = contract, normalize_emaid(contract.emaid)
        self.contract_pem = contract.pem
        # complete OCSP data, or [] and the CSMS gets the PEM chain (OCPP C07 fallback)
        self.contract_ocsp = ocsp_request_data(contract, self.mo_roots)
        self.log.info("contract certificate accepted for authorization", extra={
            "emaid": self.emaid, "sub_cas": len(contract.sub_cas)})
        return [PublishEvent("ContractCertificateAccepted", {"emaid": self.emaid})]

    def on_ServiceDiscoveryReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        services = list(self.offered_services())
        if body.supported_service_i_ds is not None and body.supported_service_i_ds.service_id:
            wanted = set(body.supported_service_i_ds.service_id)
            services = [s for s in services if int(s) in wanted]
        if not services:
            raise SessionFailure(Failure.NO_CHARGE_SERVICE_SELECTED,
                                 "none of the car's services is offered here")
        return Outcome(cm.ServiceDiscoveryResType(
            header=None, response_code=OK,
            service_renegotiation_supported=self.config.service_renegotiation_supported,
            energy_transfer_service_list=cm.ServiceListType(service=[
                cm.ServiceType(service_id=int(s), free_service=self.config.free_service)
                for s in services])))

    def _parameter_sets(self, service: EnergyService) -> tuple[ParameterSet, ...]:
        return parameter_sets(service, ac_nominal_voltage=self.limits.ac_nominal_voltage,
                              ac_phases=self.limits.ac_phases)

    def _offered(self, service_id: int) -> EnergyService | None:
        for service in self.offered_services():
            if int(service) == service_id:
                return service
        return None

    def on_ServiceDetailReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        service = self._offered(body.service_id)
        if service is None:
            raise SessionFailure(Failure.SERVICE_ID_INVALID, f"service {body.service_id}")
        sets = [cm.ParameterSetType(parameter_set_id=p.parameter_set_id, parameter=[
            cm.ParameterType(name=name, int_value=value) for name, value in p.parameters])
            for p in self._parameter_sets(service)]
        return Outcome(cm.ServiceDetailResType(
            header=None, response_code=OK, service_id=body.service_id,
            service_parameter_list=cm.ServiceParameterListType(parameter_set=sets)))

    def on_ServiceSelectionReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(False)
        chosen = body.selected_energy_transfer_service
        service = self._offered(chosen.service_id)
        if service is None:
            raise SessionFailure(Failure.SERVICE_SELECTION_INVALID,
                                 f"service {chosen.service_id} not offered")
        sets = {p.parameter_set_id: p for p in self._parameter_sets(service)}
        if chosen.parameter_set_id not in sets:
            raise SessionFailure(Failure.SERVICE_SELECTION_INVALID,
                                 f"parameter set {chosen.parameter_set_id} of {service.name}")
        if body.selected_vas_list is not None and body.selected_vas_list.selected_service:
            raise SessionFailure(Failure.SERVICE_SELECTION_INVALID, "no VAS offered")
        self.selected_service = service
        self.parameter_set = sets[chosen.parameter_set_id]
        return Outcome(cm.ServiceSelectionResType(header=None, response_code=OK),
                       actions=[PublishEvent("ServiceSelected", {
                           "service": service.name, "control_mode": self.control_mode.name})])

    def on_VehicleCheckInReq(self, body: Any, now: float) -> Outcome:
        return Outcome(cm.VehicleCheckInResType(header=None, response_code=OK))

    def on_VehicleCheckOutReq(self, body: Any, now: float) -> Outcome:
        return Outcome(cm.VehicleCheckOutResType(header=None, response_code=OK,
                                                 evse_check_out_status="Completed"))

    def _power_schedule(self) -> list[tuple[int, float]]:
        """(duration s, W) entries from now: the CSMS's composite limit (``pmax_schedule``)
        under our rating and the session's schedule limit; one entry without a CSMS limit."""
        total = self.config.schedule_duration
        rated = self.rated_limits.max_power if self.ENERGY is Energy.DC else \
            msg.ac_max_power(self.rated_limits)
        if self.schedule_limit is not None:
            rated = min(rated, self.schedule_limit)
        points = [(start, min(rated, watts)) for start, watts in self.pmax_schedule
                  if start < total][:1024] or [(0, rated)]
        points[0] = (0, self._max_charge_power())
        ends = [start for start, _ in points[1:]] + [total]
        return [(end - start, watts) for (start, watts), end in zip(points, ends)]

    def _max_charge_power(self) -> float:
        rating = self.limits.max_power if self.ENERGY is Energy.DC else msg.ac_max_power(
            self.limits)
        return rating if self.schedule_limit is None else min(rating, self.schedule_limit)

    def _charging_needs(self, body: Any) -> dict[str, Any]:
        """What the car wants, for the CSMS (OCPP NotifyEVChargingNeeds)."""
        req = body.scheduled_se_req_control_mode or body.dynamic_se_req_control_mode
        needs: dict[str, Any] = {
            "service": self.selected_service.name if self.selected_service else None,
            "control_mode": self.control_mode.name,
            "departure_time": getattr(req, "departure_time", None),
            "ev_max_charge_power": self.ev.max_charge_power,
            "ev_max_charge_current": self.ev.max_charge_current,
            "ev_max_voltage": self.ev.max_voltage,
            "ev_max_discharge_power": self.ev.max_discharge_power}
        for name in ("ev_target_energy_request", "ev_maximum_energy_request",
                     "ev_minimum_energy_request"):
            needs[name] = to_float(getattr(req, name, None))
        return needs

    def on_ScheduleExchangeReq(self, body: Any, now: float) -> Outcome:
        self._check_stop(self.state == S.RENEGOTIATING)
        renegotiating = self.state == S.RENEGOTIATING
        actions: list[Action] = []
        if not self._needs_published:
            self._needs_published = True
            self.charging_needs_revision = self.limit_revision
            actions.append(PublishEvent("EVChargingNeeds", self._charging_needs(body)))
        processing = "Finished"
        if not renegotiating and self.waiting_for_charging_needs(
                now, self.config.charging_needs_wait):
            processing = "Ongoing"
        if self.config.wait_for_schedule and not self._schedule_decided:
            if self.ongoing_expired("schedule_exchange", now, self.timer_config.ongoing_timeout):
                raise SessionFailure(Failure.GENERAL, "no schedule from the grid within "
                                     f"{self.timer_config.ongoing_timeout} s")
            processing = "Ongoing"
        if self.control_mode is ControlMode.SCHEDULED:
            if body.scheduled_se_req_control_mode is None:
                raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                     "scheduled mode selected, dynamic ScheduleExchangeReq")
            res = cm.ScheduleExchangeResType(
                header=None, response_code=OK, evse_processing=processing,
                scheduled_se_res_control_mode=cm.Scheduled_SEResControlModeType(
                    schedule_tuple=[self._schedule_tuple(1, now)]))
            self.schedule_tuple_ids = frozenset({1})
        else:
            req = body.dynamic_se_req_control_mode
            if req is None:
                raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                     "dynamic mode selected, scheduled ScheduleExchangeReq")
            res = cm.ScheduleExchangeResType(
                header=None, response_code=OK, evse_processing=processing,
                dynamic_se_res_control_mode=cm.Dynamic_SEResControlModeType(
                    departure_time=req.departure_time, minimum_soc=req.minimum_soc,
                    target_soc=req.target_soc))
        if processing == "Ongoing":
            return Outcome(res, stay=True, actions=actions)
        self.ongoing_done("schedule_exchange")
        self._renegotiation_requested = False
        actions.append(PublishEvent("ScheduleRenegotiated" if renegotiating else "ScheduleAgreed",
                                    {"control_mode": self.control_mode.name,
                                     "max_power": self._max_charge_power()}))
        return Outcome(res, actions=actions)

    def _schedule_tuple(self, tuple_id: int, now: float) -> Any:
        anchor = int(self.wall_clock())
        entries = [cm.PowerScheduleEntryType(duration=duration, power=rational(watts))
                   for duration, watts in self._power_schedule()]
        charging = cm.ChargingScheduleType(power_schedule=cm.PowerScheduleType(
            time_anchor=anchor,
            power_schedule_entries=cm.PowerScheduleEntryListType(power_schedule_entry=entries)))
        discharging = None
        if self.bpt is not None:
            # Discharge power in a schedule is negative by definition (power flows to the grid).
            discharging = cm.ChargingScheduleType(power_schedule=cm.PowerScheduleType(
                time_anchor=anchor, power_schedule_entries=cm.PowerScheduleEntryListType(
                    power_schedule_entry=[cm.PowerScheduleEntryType(
                        duration=self.config.schedule_duration,
                        power=rational(-self.bpt.max_discharge_power))])))
        if "iso20_price_schedule" in self.quirks:
            for schedule in (charging, discharging):
                if schedule is not None:
                    schedule.absolute_price_schedule = self._free_price_schedule(anchor)
        return cm.ScheduleTupleType(schedule_tuple_id=tuple_id, charging_schedule=charging,
                                    discharging_schedule=discharging)

    def _free_price_schedule(self, anchor: int) -> Any:
        """Quirk iso20_price_schedule: one price rule, energy at 0 from 0 W, for ever."""
        return cm.AbsolutePriceScheduleType(
            time_anchor=anchor, price_schedule_id=1, currency="EUR", language="ENG",
            price_algorithm="urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power",
            price_rule_stacks=cm.PriceRuleStackListType(price_rule_stack=[
                cm.PriceRuleStackType(duration=0, price_rule=[cm.PriceRuleType(
                    energy_fee=rational(0), power_range_start=rational(0))])]))

    def loop_request(self, body: Any, energy: str) -> Any:
        """A charge-loop request's control-mode element for the selected service
        (``[bpt_]{scheduled|dynamic}_{ac|dc}_cl_req_control_mode``), after the loop checks."""
        self._loop_checks()
        self.loop_count += 1
        mode = "dynamic" if self.control_mode is ControlMode.DYNAMIC else "scheduled"
        req = getattr(body, f"{'bpt_' if self.bpt else ''}{mode}_{energy}_cl_req_control_mode")
        if req is None:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 "charge-loop control mode does not match the selected service")
        return req

    def _check_power_profile(self, body: Any) -> None:
        profile = body.ev_power_profile
        if profile is None:
            return
        if profile.scheduled_evppt_control_mode is not None:
            chosen = profile.scheduled_evppt_control_mode.selected_schedule_tuple_id
            if chosen not in self.schedule_tuple_ids:
                raise SessionFailure(Failure.TARIFF_SELECTION_INVALID,
                                     f"schedule tuple {chosen} was not offered")
        limit = self._max_charge_power()
        floor = -(self.bpt.max_discharge_power if self.bpt else 0.0)
        for entry in profile.ev_power_profile_entries.ev_power_profile_entry:
            power = to_float(entry.power, 0.0)
            if power > limit * 1.001 or power < floor * 1.001:
                raise SessionFailure(Failure.CHARGING_PROFILE_INVALID,
                                     f"profile entry {power} W outside [{floor}, {limit}]")

    def on_PowerDeliveryReq(self, body: Any, now: float) -> Outcome:
        progress = body.charge_progress
        module = cm
        if body.ev_processing != "Finished" and progress == "Start":
            # the car is not ready yet; it repeats the request
            self._check_stop(False)
            return Outcome(cm.PowerDeliveryResType(header=None, response_code=OK), stay=True)
        actions: list[Action] = []
        if progress == "Start":
            reason = self.effective_stop
            if reason in DANGEROUS_STOPS:
                raise SessionFailure(Failure.GENERAL, f"EVSE stop: {reason.value}")
            if reason is not StopReason.NONE:
                raise SessionFailure(Failure.POWER_DELIVERY_NOT_APPLIED,
                                     f"EVSE stop pending: {reason.value}")
            self._check_power_profile(body)
            actions += self._start_power()
            self.ongoing_done("pre_charge")
            self.arm_cp_state_check(now)
            actions.append(PublishEvent("ChargingStarted" if self.state != S.STANDBY
                                        else "StandbyExited", {}))
        elif progress == "Stop":
            self._check_stop(True)
            self.timers.disarm("evse_notification", "cp_state")
            actions += self._stop_power()
            actions.append(PublishEvent("ChargingStopped", {"by": "EV"}))
        elif progress == "Standby":
            self._check_stop(True)
            actions += self._standby_power()
            actions.append(PublishEvent("Standby", {}))
        else:  # ScheduleRenegotiation: power keeps flowing at the last set-point
            self._check_stop(False)
            actions.append(PublishEvent("ScheduleRenegotiation", {}))
        return Outcome(cm.PowerDeliveryResType(header=None, response_code=OK,
                                               evse_status=self._status(module, now)),
                       actions=actions)

    def on_SessionStopReq(self, body: Any, now: float) -> Outcome:
        kind = body.charging_session
        if kind == "Pause" and self.state in POWER_STATES:
            raise SessionFailure(Failure.PAUSE_NOT_ALLOWED,
                                 f"pause in {self.state}: stop power with PowerDelivery first")
        if kind == "ServiceRenegotiation" and not self.config.service_renegotiation_supported:
            raise SessionFailure(Failure.SERVICE_RENEGOTIATION_NOT_SUPPORTED,
                                 "this EVSE does not offer service renegotiation")
        if kind == "ServiceRenegotiation" and (
                STOP_SERVICE_RENEGOTIATION not in self.TRANSITIONS.get(self.state, {})):
            raise SessionFailure(Failure.SEQUENCE_ERROR, f"service renegotiation in {self.state}")
        actions: list[Action] = []
        # Terminate and Pause end the session even where only the session_stop_anytime quirk
        # let the request in (the table has no row entry to follow there).
        next_state = TERMINATED if kind in ("Terminate", "Pause") else None
        if kind == "Terminate":
            reason = f"SessionStop Terminate ({body.ev_termination_code or 'no code'})"
            actions += [EnterSafeState(reason),
                        self.session_stopped(reason, EndReason.EV_STOPPED, by="EV"),
                        CloseConnection(reason)]
        elif kind == "Pause":
            self.paused_sessions.put(PausedSession(
                session_id=self.session_id, evccid=self.evccid, paused_at=now,
                authorization=self.authorization,
                selected_service=int(self.selected_service) if self.selected_service else None,
                parameter_set_id=self.parameter_set.parameter_set_id if self.parameter_set
                else None))
            # the car sleeps: power off and the oscillator off (X1) as after ISO-2's pause, so
            # that its BCB toggle or our wake-up time brings the 5 % PWM back (secc.v2g.sleep)
            actions += self._stop_power()
            actions += [EnterSafeState("SessionStop Pause"),
                        PublishEvent("SessionPaused", {"session_id": self.session_id.hex()}),
                        CloseConnection("SessionStop Pause")]
        else:
            self.selected_service = None
            self.parameter_set = None
            self.cable_check = None
            actions.append(PublishEvent("ServiceRenegotiation", {}))
        return Outcome(cm.SessionStopResType(header=None, response_code=OK), actions=actions,
                       next_state=next_state)

    # --- energy specific hooks ------------------------------------------------------------------
    @abc.abstractmethod
    def _start_power(self) -> list[Action]:
        """Actions that start energy transfer (DC: set-point; AC: contactors)."""

    @abc.abstractmethod
    def _stop_power(self) -> list[Action]:
        """Actions that stop energy transfer."""

    @abc.abstractmethod
    def _standby_power(self) -> list[Action]:
        """Actions for Standby (no power, session kept)."""

    def _meter_info(self, module: Any, requested: bool) -> Any | None:
        if not requested:
            return None
        return module.MeterInfoType(meter_id=self.config.meter_id,
                                    charged_energy_reading_wh=max(0, int(self.evse.meter_wh)))

    def _loop_checks(self) -> None:
        self._check_stop(True)
        if self.evse.isolation is Isolation.FAULT:
            raise SessionFailure(Failure.GENERAL, "isolation fault while charging")

    @property
    def _ramp_down(self) -> bool:
        """No power now: standby, or stopping gracefully after an EVSE-side stop."""
        return self.state == S.STANDBY or self.effective_stop is not StopReason.NONE
