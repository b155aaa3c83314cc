"""ISO 15118-2 SECC session (AC and DC, External Identification Means), sans-I/O.

``TRANSITIONS`` owns the sequence rules. Events are request names, refined where the content
decides the path: ChargeParameterDiscoveryReq.AC/.DC (energy transfer mode) and
PowerDeliveryReq.Start/.Stop/.Renegotiate (ChargeProgress). After a renegotiation a DC
session skips cable check and pre-charge: the ChargeParameterDiscovery handler then leads to
``PowerDeliveryDC`` (the one place a handler picks among the table's targets). CableCheck,
PreCharge and WeldingDetection are handled by the ``secc.v2g.dc_session.DcHandlers`` mixin
(shared with DIN 70121).

Pause and resume: SessionStopReq(Pause) keeps the session's identity in
``secc.v2g.paused.PausedSessions`` (the one store of -2 and -20, one per EVSE, made by the
daemon); a later SessionSetupReq carrying that SessionID from the same EVCCID, within the
store's lifetime, is answered OK_OldSessionJoined. The resumed session runs the whole message
sequence again, held to what was agreed before the pause ([V2G2-741]): ServiceDiscoveryRes
offers only the payment option the car selected then (another one is
FAILED_PaymentSelectionInvalid), and the first SAScheduleList offers the tuple the car selected
(same SAScheduleTupleID) for what is left of its period, reduced by the time elapsed since it was
offered. The pilot side of a pause (oscillator off while the car sleeps, the wake-up) is the
daemon's: ``secc.v2g.sleep``.

Plug & Charge (contract authorization, §8.4.3.8-9): offered as PaymentOption ``Contract`` only
over TLS (``tls=True``). PaymentServiceSelectionReq.Contract leads to PaymentDetails, whose
request brings the contract chain and eMAID (checked by ``secc.pnc.contract``) and gets a fresh
GenChallenge; AuthorizationReq must echo the challenge and carry a header signature made with
the contract key (``secc.pnc.xmldsig``); then the eMSP decides via ``authorization_step`` with
eMAID, PEM chain and OCSP request data. In a PnC session MeteringReceiptReq must be signed
with the contract key too (FAILED_MeteringSignatureNotValid otherwise).

CertificateInstallation/Update (§8.4.3.11-12, OCPP use cases M01/M02), in state PaymentDetails:
the SECC checks the signer's certificate and the header signature itself
(``check_certificate_request``), then carries the request to the CSMS. The handler's first
pass returns no response
but a ``RequestCertificate`` action (the EV's whole V2G_Message as base64 EXI); the driver
awaits the CSMS's answer (there is no Ongoing for these requests in -2 and the EV waits 5 s)
and hands it over with ``certificate_answered``, which runs the same request again: the
second pass checks the exiResponse decodes to the right response and answers with it. A
missing capability, a refusal or a timeout is FAILED_NoCertificateAvailable; an undecodable
answer is FAILED. The CPS's header signature of the answer is kept in
``certificate_signature`` (the adapter's envelope has no place for it yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from exi_schemas.generated import iso2 as M
from secc.authorization import AuthorizationStatus
from secc.common.lazy import lazy_module
from secc.pnc import xmldsig
from secc.pnc.contract import (
    ContractChain,
    check_contract,
    normalize_emaid,
    ocsp_request_data,
    parse_contract_chain,
    read_every_field,
    same_emaid,
)
from secc.pnc.installation import (
    ACTIONS as CERTIFICATE_ACTIONS,
)
from secc.pnc.installation import (
    CERTIFICATE_TIMEOUT,
    ISO2_SCHEMA_VERSION,
    CertificateForwarding,
    InstallationResponseError,
    parse_response_exi,
    request_exi,
)
from secc.pnc.signed import SignedRequest, SignedResponse
from secc.v2g import failed
from secc.v2g.charging_limit import rated_power
from secc.v2g.core import TERMINATED, Outcome, Reply, SessionCore
from secc.v2g.dc_session import STOP_STATUS, DcHandlers, check_ev_limits_physical
from secc.v2g.eim import (
    CHARGE_SERVICE_ID,
    check_payment_selection,
    check_selected_services,
    check_service_category,
)
from secc.v2g.evse import (
    EnterSafeState,
    PublishEvent,
    RequestCertificate,
    SetContactors,
    StopReason,
)
from secc.v2g.failures import Failure, SessionFailure
from secc.v2g.paused import PausedSession, PausedSessions
from secc.v2g.physical import to_float
from secc.v2g.tariff import SalesTariffConfig, tariff_entries

x509 = lazy_module("cryptography.x509")
ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")

SA_SCHEDULE_TUPLE_ID = 1
AC_MODES = frozenset({"AC_single_phase_core", "AC_three_phase_core"})
DC_MODES = frozenset({"DC_core", "DC_extended", "DC_combo_core", "DC_unique"})
CONTRACT = "Contract"
GEN_CHALLENGE_BYTES = 16
#: The one curve of ISO 15118-2 certificates and signatures (a -20 P-521 contract is refused).
CONTRACT_CURVE = "secp256r1"
#: OCPP certificateStatus (in the decision's reason) -> why a PnC authorization failed.
CERTIFICATE_STATUS_FAILURES = {
    "CertificateRevoked": Failure.CERTIFICATE_REVOKED,
    "CertificateExpired": Failure.CERTIFICATE_EXPIRED,
    "ContractCancelled": Failure.CONTRACT_CANCELED,
    "NoCertificateAvailable": Failure.NO_CERTIFICATE_AVAILABLE,
    "CertChainError": Failure.CERT_CHAIN_ERROR,
}


class Iso2Session(DcHandlers, CertificateForwarding, SessionCore):
    PROTOCOL = "iso2"
    M = M
    INITIAL_STATE = "SessionSetup"
    TRANSITIONS: ClassVar[dict[str, dict[str, str]]] = {
        "SessionSetup": {"SessionSetupReq": "ServiceDiscovery"},
        "ServiceDiscovery": {"ServiceDiscoveryReq": "PaymentServiceSelection"},
        "PaymentServiceSelection": {"ServiceDetailReq": "PaymentServiceSelection",
                                    "PaymentServiceSelectionReq": "Authorization",
                                    "PaymentServiceSelectionReq.Contract": "PaymentDetails"},
        # Plug & Charge
        "PaymentDetails": {"PaymentDetailsReq": "Authorization",
                           "CertificateInstallationReq": "PaymentDetails",
                           "CertificateUpdateReq": "PaymentDetails"},
        "Authorization": {"AuthorizationReq": "ChargeParameterDiscovery"},
        "ChargeParameterDiscovery": {"ChargeParameterDiscoveryReq.AC": "PowerDeliveryAC",
                                     "ChargeParameterDiscoveryReq.DC": "CableCheck"},
        # AC
        "PowerDeliveryAC": {"PowerDeliveryReq.Start": "ChargingStatus",
                            "ChargeParameterDiscoveryReq.AC": "PowerDeliveryAC"},
        "ChargingStatus": {"ChargingStatusReq": "ChargingStatus",
                           "MeteringReceiptReq": "ChargingStatus",
                           "PowerDeliveryReq.Renegotiate": "ChargeParameterDiscovery",
                           "PowerDeliveryReq.Stop": "SessionStop"},
        # DC
        "CableCheck": {"CableCheckReq": "PreCharge"},
        "PreCharge": {"PreChargeReq": "PreCharge", "PowerDeliveryReq.Start": "CurrentDemand"},
        "PowerDeliveryDC": {"PowerDeliveryReq.Start": "CurrentDemand",
                            "ChargeParameterDiscoveryReq.DC": "PowerDeliveryDC"},
        "CurrentDemand": {"CurrentDemandReq": "CurrentDemand",
                          "MeteringReceiptReq": "CurrentDemand",
                          "PowerDeliveryReq.Renegotiate": "ChargeParameterDiscovery",
                          "PowerDeliveryReq.Stop": "WeldingDetection"},
        "WeldingDetection": {"WeldingDetectionReq": "WeldingDetection",
                             "SessionStopReq": TERMINATED},
        "SessionStop": {"SessionStopReq": TERMINATED},
    }
    QUIRK_TRANSITIONS: ClassVar[dict[str, dict[str, dict[str, str]]]] = {
        "cable_check_after_renegotiation": {"PowerDeliveryDC": {"CableCheckReq": "PreCharge"}},
    }

    def __init__(self, *, energy_transfer_modes: tuple[str, ...] = ("DC_extended",),
                 receipt_required: bool = False, meter_id: str = "PYSECC-METER",
                 paused_sessions: PausedSessions | None = None, tls: bool = False,
                 offer_contract: bool = True, mo_roots: Sequence[x509.Certificate] = (),
                 charging_needs_wait: float = 0.0, contract_receipts: bool = False,
                 payment_options: Sequence[str] = (CONTRACT, "ExternalPayment"),
                 sales_tariff: SalesTariffConfig | None = None,
                 meter_info_always: bool = True, **kwargs: Any) -> None:
        """``tls``: the connection is TLS, so Plug & Charge (Contract) is offered, unless the
        board turns it off (``offer_contract=False``: EVs that prefer PnC then use EIM).
        ``contract_receipts``: in a Contract session the loop responses ask for a signed
        MeteringReceipt (ReceiptRequired, with MeterInfo; an EIM session is never asked, the
        car has no key to sign with); ``receipt_required`` asks in every session.
        ``mo_roots``: installed MO root certificates, for the local contract chain check and
        the top sub-CA's OCSP data (optional; the CSMS validates otherwise).
        ``sales_tariff``: the board's optional SalesTariff (``secc.v2g.tariff``; EIM only).
        ``meter_info_always``: MeterInfo in every loop response, not only with receipts."""
        super().__init__(**kwargs)
        self.tls = tls
        self.contract_offered = tls and offer_contract and CONTRACT in payment_options
        # the board's [v2g].payment_options: without ExternalPayment a Contract-only charger
        self.eim_offered = "ExternalPayment" in payment_options
        self.mo_roots = tuple(mo_roots)
        self.payment_option = "ExternalPayment"
        self.contract: ContractChain | None = None
        self.emaid = ""
        self.gen_challenge: bytes | None = None
        self.contract_proven = False   # AuthorizationReq's challenge + signature checked
        self.contract_pem = ""
        self.contract_ocsp: list[dict[str, str]] = []
        self.header_signature: Any = None
        self.certificate_signature: Any = None
        self.energy_transfer_modes = tuple(energy_transfer_modes)
        self.receipt_required = receipt_required
        self.contract_receipts = contract_receipts
        self.receipt_meter_info: M.MeterInfoType | None = None   # what the receipt must sign
        self.meter_id = meter_id
        self.paused = paused_sessions if paused_sessions is not None else PausedSessions()
        # the paused session this one resumed (OK_OldSessionJoined), for [V2G2-741]
        self.resumed: PausedSession | None = None
        self.evcc_id = b""
        self.mode: str | None = None
        self.renegotiating = False
        self.ev_max_current_ac: float | None = None
        # smart charging: what we offered (revision of the CSMS limit, its highest PMax)
        self.offered_revision: int | None = None
        self.offered_pmax: float | None = None
        self.ev_departure_time: int | None = None
        # the offered schedule's end (``now`` clock) and the tuple the car selected (Start)
        self.schedule_ends_at: float | None = None
        self.schedule_started_at: float | None = None   # 0 s of the offered tuple's time axis
        self.selected_tuple_id: int | None = None
        self.needs_published = False
        # s ChargeParameterDiscovery answers Ongoing after NotifyEVChargingNeeds went out, so
        # the CSMS's charging profile can shape the first SAScheduleList (0: offer at once)
        self.charging_needs_wait = charging_needs_wait
        self.sales_tariff = sales_tariff or SalesTariffConfig()
        self.meter_info_always = meter_info_always

    # --- protocol hooks -----------------------------------------------------------------------
    def receive(self, name: str, body: Any, now: float, session_id: bytes | None = None) -> Reply:
        """Unwrap a signed request: the header signature is kept for the handler."""
        self.header_signature = None
        if name in CERTIFICATE_ACTIONS and self.certificate_answer is None:
            self.pending_certificate = (name, body, session_id)
        if isinstance(body, SignedRequest):
            self.header_signature = body.signature
            body = body.body
        return super().receive(name, body, now, session_id)

    def event_of(self, name: str, body: Any) -> str:
        if name == "PaymentServiceSelectionReq" and body.selected_payment_option == CONTRACT:
            return "PaymentServiceSelectionReq.Contract"
        if name == "ChargeParameterDiscoveryReq":
            return name + (".AC" if body.requested_energy_transfer_mode in AC_MODES else ".DC")
        if name == "PowerDeliveryReq":
            return {"Start": "PowerDeliveryReq.Start", "Stop": "PowerDeliveryReq.Stop"}.get(
                body.charge_progress, "PowerDeliveryReq.Renegotiate")
        return name

    def failed_response(self, request_name: str, code: str) -> tuple[str, Any]:
        build = FAILED_RESPONSES.get(request_name)
        if build is None:   # any other -2 request: the generic schema-valid FAILED response
            return failed.failed_response(M, request_name, code, _status(self))
        return request_name[:-3] + "Res", build(self, code)

    @property
    def is_ac(self) -> bool:
        return self.mode in AC_MODES

    @property
    def delivers_ac(self) -> bool:
        return self.is_ac

    # --- common handlers ------------------------------------------------------------------------
    def on_SessionSetupReq(self, req: M.SessionSetupReqType, now: float) -> Outcome:
        self.evcc_id = req.evccid
        old = self.request_session_id
        paused = (self.paused.take(old, req.evccid, now) if old and old != bytes(8)
                  else None)
        if paused is not None:
            self.session_id = old
            self.resumed = paused
            code = "OK_OldSessionJoined"
        else:
            self.session_id = self.new_session_id()
            code = "OK_NewSessionEstablished"
        self.log.info("ISO 15118-2 session set up", extra={
            "evcc_id": req.evccid.hex(), "session_id": self.session_id.hex(), "code": code})
        return Outcome(M.SessionSetupResType(response_code=code, evseid=self.evse_id,
                                             evse_time_stamp=int(self.wall_clock())),
                       actions=[PublishEvent(
                           "SessionResumed" if code == "OK_OldSessionJoined" else "SessionStarted",
                           {"protocol": "iso2", "evcc_id": req.evccid.hex()})])

    def on_ServiceDiscoveryReq(self, req: M.ServiceDiscoveryReqType, now: float) -> Outcome:
        check_service_category(req.service_category)
        return Outcome(self.service_discovery_res("OK"))

    def on_ServiceDetailReq(self, req: M.ServiceDetailReqType, now: float) -> Outcome:
        if req.service_id != CHARGE_SERVICE_ID:
            raise SessionFailure(Failure.SERVICE_ID_INVALID, f"service {req.service_id}")
        return Outcome(M.ServiceDetailResType(response_code="OK", service_id=req.service_id))

    def on_PaymentServiceSelectionReq(self, req: M.PaymentServiceSelectionReqType,
                                      now: float) -> Outcome:
        agreed = self.resumed_payment_option()
        if agreed is not None and req.selected_payment_option != agreed:
            raise SessionFailure(Failure.PAYMENT_SELECTION_INVALID,
                                 f"{req.selected_payment_option} selected; the resumed session "
                                 f"agreed on {agreed} ([V2G2-741])")
        if req.selected_payment_option == CONTRACT:
            if not self.contract_offered:
                raise SessionFailure(Failure.PAYMENT_SELECTION_INVALID,
                                     "Contract not offered (TLS only, when enabled)")
            check_selected_services(req.selected_service_list, Failure.NO_CHARGE_SERVICE_SELECTED)
        else:
            if req.selected_payment_option not in self.offered_payment_options():
                raise SessionFailure(Failure.PAYMENT_SELECTION_INVALID,
                                     f"{req.selected_payment_option} not offered (Contract "
                                     "only: [v2g].payment_options)")
            check_payment_selection(req.selected_payment_option, req.selected_service_list,
                                    Failure.NO_CHARGE_SERVICE_SELECTED)
        self.payment_option = req.selected_payment_option
        return Outcome(M.PaymentServiceSelectionResType(response_code="OK"))

    # --- Plug & Charge --------------------------------------------------------------------------
    def on_PaymentDetailsReq(self, req: M.PaymentDetailsReqType, now: float) -> Outcome:
        chain = req.contract_signature_cert_chain
        subs = chain.sub_certificates.certificate if chain.sub_certificates else []
        contract = parse_contract_chain(chain.certificate, subs)
        curve = contract.public_key.curve.name
        if curve != CONTRACT_CURVE:  # ISO 15118-2 signs with ECDSA on secp256r1 only
            raise SessionFailure(Failure.CERT_CHAIN_ERROR,
                                 f"contract key on {curve}; ISO 15118-2 needs {CONTRACT_CURVE}")
        check_contract(contract, req.e_maid, now=self.wall_datetime(), mo_roots=self.mo_roots)
        # the certificate names the contract for the eMSP (the request's may add a check digit)
        self.contract, self.emaid = contract, normalize_emaid(contract.emaid)
        self.contract_pem = contract.pem
        self.contract_ocsp = ocsp_request_data(contract, self.mo_roots)
        self.gen_challenge = self.random_bytes(GEN_CHALLENGE_BYTES)
        self.contract_proven = False
        self.log.info("contract certificate accepted for authorization", extra={
            "emaid": self.emaid, "sub_cas": len(subs)})
        return Outcome(M.PaymentDetailsResType(response_code="OK",
                                               gen_challenge=self.gen_challenge,
                                               evse_time_stamp=int(self.wall_clock())))

    def on_CertificateInstallationReq(self, req: M.CertificateInstallationReqType,
                                      now: float) -> Outcome:
        return self.certificate_step("CertificateInstallationReq", req)

    def on_CertificateUpdateReq(self, req: M.CertificateUpdateReqType, now: float) -> Outcome:
        return self.certificate_step("CertificateUpdateReq", req)

    def certificate_step(self, name: str, req: Any) -> Outcome:
        """First pass: ask the CSMS (no response yet). Second pass (``certificate_answered``):
        the CSMS's response for the EV, or the failure."""
        answer, self.certificate_answer = self.certificate_answer, None
        action, _ = CERTIFICATE_ACTIONS[name]
        if answer is None:
            self.check_certificate_request(name, req)
            try:
                exi_request = request_exi(name, req, self.header_signature, self.session_id)
            except Exception as exc:  # noqa: BLE001 - re-encoding what we decoded; never crash
                raise SessionFailure(Failure.GENERAL, f"cannot re-encode {name}: {exc!r}") \
                    from None
            self.log.info("forwarding certificate request to the CSMS", extra={
                "request": name, "action": action, "exi_chars": len(exi_request)})
            return Outcome(None, stay=True, actions=[RequestCertificate(
                self.session_id.hex(), action, exi_request, ISO2_SCHEMA_VERSION,
                CERTIFICATE_TIMEOUT)])
        if not answer.accepted:
            # the reason names what is missing (capability, timeout): say it in the message
            self.log.warning(f"no contract certificate from the CSMS ({answer.status}): "
                             f"{answer.reason}", extra={"request": name})
            raise SessionFailure(Failure.NO_CERTIFICATE_AVAILABLE,
                                 f"Get15118EVCertificate({action}) {answer.status}: "
                                 f"{answer.reason}")
        try:
            body, self.certificate_signature = parse_response_exi(answer.exi_response, name)
        except InstallationResponseError as exc:
            self.log.error(f"CSMS sent an unusable certificate response: {exc}",
                           extra={"request": name})
            raise SessionFailure(Failure.GENERAL, f"exiResponse: {exc}") from None
        self.log.info("contract certificate response forwarded to the EV", extra={
            "request": name, "response_code": body.response_code,
            "emaid": body.e_maid.value, "signed": self.certificate_signature is not None})
        if self.certificate_signature is not None:  # the CPS's signature travels to the EV
            return Outcome(SignedResponse(body, self.certificate_signature))
        return Outcome(body)


    def check_certificate_request(self, name: str, req: Any) -> None:
        """What the SECC checks itself before a certificate request goes to the CSMS: the
        signer's certificate (the OEM provisioning certificate of an installation, the
        contract chain of an update, against the installed MO root as in PaymentDetails) and
        the header signature made with its key; an update's eMAID must be its certificate's.
        A request that fails here never reaches the CPS (docs/conformance.md, Plug & Charge
        rows; Josev's SECC checks the installation signature the same way)."""
        now = self.wall_datetime()
        if name == "CertificateInstallationReq":
            try:
                signer = x509.load_der_x509_certificate(bytes(req.oem_provisioning_cert))
                read_every_field(signer)
                key = signer.public_key()
            except Exception as exc:  # noqa: BLE001 - any parse error of EV data is one failure
                raise SessionFailure(Failure.CERT_CHAIN_ERROR, "OEM provisioning certificate "
                                     f"unreadable: {type(exc).__name__}: {exc}") from None
            if now > signer.not_valid_after_utc:
                raise SessionFailure(Failure.CERTIFICATE_EXPIRED, "OEM provisioning certificate "
                                     f"expired {signer.not_valid_after_utc:%Y-%m-%d}")
            if now < signer.not_valid_before_utc:
                raise SessionFailure(Failure.CERT_CHAIN_ERROR, "OEM provisioning certificate "
                                     f"valid from {signer.not_valid_before_utc:%Y-%m-%d}")
        else:
            chain = req.contract_signature_cert_chain
            subs = chain.sub_certificates.certificate if chain.sub_certificates else []
            contract = parse_contract_chain(chain.certificate, subs)
            check_contract(contract, contract.emaid, now=now, mo_roots=self.mo_roots)
            if not same_emaid(contract.emaid, req.e_maid):
                raise SessionFailure(Failure.GENERAL, f"eMAID {req.e_maid!r} is not the "
                                     f"contract certificate's {contract.emaid!r}")
            key = contract.public_key
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SessionFailure(Failure.CERT_CHAIN_ERROR, "signer key is not ECDSA")
        if not req.id:
            raise SessionFailure(Failure.SIGNATURE_ERROR, f"{name} has no Id to sign")
        try:
            xmldsig.verify(self.header_signature, {req.id: req}, key)
        except xmldsig.XmlDsigError as exc:
            raise SessionFailure(Failure.SIGNATURE_ERROR,
                                 f"{type(exc).__name__}: {exc}") from None

    def check_receipt_signature(self, req: M.MeteringReceiptReqType) -> None:
        """PnC: the EV signs the receipt with its contract key (§8.4.3.13)."""
        if self.contract is None or not req.id:
            raise SessionFailure(Failure.METERING_SIGNATURE_NOT_VALID, "receipt has no Id")
        try:
            xmldsig.verify(self.header_signature, {req.id: req}, self.contract.public_key)
        except xmldsig.XmlDsigError as exc:
            raise SessionFailure(Failure.METERING_SIGNATURE_NOT_VALID,
                                 f"{type(exc).__name__}: {exc}") from None

    def check_receipt_meter_info(self, meter_info: M.MeterInfoType) -> None:
        """The receipt must sign the MeterInfo we sent with ReceiptRequired: a signature over
        another meter or reading confirms nothing (R4 MeteringReceipt_004; docs/conformance.md,
        Plug & Charge rows: FAILED_MeteringSignatureNotValid)."""
        sent = self.receipt_meter_info
        if sent is None:
            return
        if (meter_info.meter_id, meter_info.meter_reading) != (sent.meter_id, sent.meter_reading):
            raise SessionFailure(Failure.METERING_SIGNATURE_NOT_VALID,
                                 f"receipt signs meter {meter_info.meter_id!r} reading "
                                 f"{meter_info.meter_reading}, we sent {sent.meter_id!r} "
                                 f"reading {sent.meter_reading}")

    def check_contract_authorization(self, req: M.AuthorizationReqType) -> None:
        """The EV proves it holds the contract key: it signed our challenge (§8.4.3.9).

        Checked once. After AuthorizationRes(Ongoing) the EV repeats AuthorizationReq without
        Id, GenChallenge and Signature ([V2G2-684]: only the first carries them): a bare
        repeat is accepted once the proof is in; a repeat that does carry a challenge must
        carry ours (and its signature is checked again), anything else is ChallengeInvalid."""
        if self.contract is None or self.gen_challenge is None:
            raise SessionFailure(Failure.SEQUENCE_ERROR, "no PaymentDetails before")
        bare = req.gen_challenge is None and not req.id and self.header_signature is None
        if bare and self.contract_proven:
            return
        if req.gen_challenge is None:
            raise SessionFailure(Failure.CHALLENGE_INVALID,
                                 "AuthorizationReq without GenChallenge before the challenge "
                                 "was answered")
        # the signature first: a body changed after signing is a SignatureError whatever it
        # now says; only a body the contract key did sign can carry a wrong challenge
        # (R4 Authorization_007 vs _011; docs/conformance.md, Plug & Charge rows)
        if not req.id:
            raise SessionFailure(Failure.SIGNATURE_ERROR, "AuthorizationReq has no Id to sign")
        try:
            xmldsig.verify(self.header_signature, {req.id: req}, self.contract.public_key)
        except xmldsig.XmlDsigError as exc:
            raise SessionFailure(Failure.SIGNATURE_ERROR,
                                 f"{type(exc).__name__}: {exc}") from None
        if req.gen_challenge != self.gen_challenge:
            raise SessionFailure(Failure.CHALLENGE_INVALID, "GenChallenge is not ours")
        if not self.contract_proven:
            self.log.info("contract key proven: AuthorizationReq signature verified",
                          extra={"emaid": self.emaid})
        self.contract_proven = True

    def on_AuthorizationReq(self, req: M.AuthorizationReqType, now: float) -> Outcome:
        if self.payment_option == CONTRACT:
            self.check_contract_authorization(req)
            self.check_certificate_decision()
            finished, actions = self.authorization_step(
                now, self.emaid, "eMAID", contract_chain_pem=self.contract_pem,
                ocsp_request_data=self.contract_ocsp)
        else:
            finished, actions = self.authorization_step(now, self.evcc_id.hex().upper(),
                                                        "MacAddress")
        return Outcome(M.AuthorizationResType(
            response_code="OK", evse_processing="Finished" if finished else "Ongoing"),
            stay=not finished, actions=actions)

    def check_certificate_decision(self) -> None:
        """A CSMS verdict on the contract certificate gets its own code (revoked, ...)."""
        decision = self.authorization
        if decision is None or decision.status is not AuthorizationStatus.CERTIFICATE_REJECTED:
            return
        failure = next((f for status, f in CERTIFICATE_STATUS_FAILURES.items()
                        if status in decision.reason), Failure.CERT_CHAIN_ERROR)
        raise SessionFailure(failure, decision.reason)

    def on_ChargeParameterDiscoveryReq(self, req: M.ChargeParameterDiscoveryReqType,
                                       now: float) -> Outcome:
        mode = req.requested_energy_transfer_mode
        if mode not in self.energy_transfer_modes:
            raise SessionFailure(Failure.WRONG_ENERGY_TRANSFER_MODE,
                                 f"{mode} not among {self.energy_transfer_modes}")
        self.mode = mode
        self.cable_check = None   # a (re)negotiated charge gets its own insulation test
        ev_parameter = req.ac_ev_charge_parameter if mode in AC_MODES else \
            req.dc_ev_charge_parameter
        if ev_parameter is None:
            raise SessionFailure(Failure.WRONG_CHARGE_PARAMETER,
                                 f"{'AC' if mode in AC_MODES else 'DC'} parameters missing")
        # the EV's limits are checked before anything of them leaves (EVChargingNeeds)
        if mode in AC_MODES:
            self.ev_max_current_ac = to_float(ev_parameter.ev_max_current)
            check_ev_limits_physical(("EVMaxCurrent", self.ev_max_current_ac),
                                     ("EVMaxVoltage", to_float(ev_parameter.ev_max_voltage)),
                                     ("EVMinCurrent", to_float(ev_parameter.ev_min_current)))
        else:
            self.remember_ev_dc_limits(ev_parameter)
        self.ev_departure_time = ev_parameter.departure_time
        actions = []
        if not self.needs_published:  # OCPP NotifyEVChargingNeeds (the bridge asks the CSMS)
            self.needs_published = True
            self.charging_needs_revision = self.limit_revision
            actions.append(PublishEvent("EVChargingNeeds", ev_charging_needs(mode, ev_parameter)))
        waiting = not self.renegotiating and (self.schedule_pending(now)
                                              or self.waiting_for_charging_needs(
                                                  now, self.charging_needs_wait))
        res = M.ChargeParameterDiscoveryResType(
            response_code="OK", evse_processing="Ongoing" if waiting else "Finished",
            sa_schedule_list=None if waiting
            else self.sa_schedule_list(req.max_entries_sa_schedule_tuple, now))
        if mode in AC_MODES:
            res.ac_evse_charge_parameter = self.ac_evse_charge_parameter()
        else:
            res.dc_evse_charge_parameter = self.dc_evse_charge_parameter()
        if waiting:
            return Outcome(res, stay=True, actions=actions)
        next_state = None
        if self.renegotiating:
            next_state = "PowerDeliveryAC" if mode in AC_MODES else "PowerDeliveryDC"
        return Outcome(res, next_state=next_state, actions=actions)

    def on_PowerDeliveryReq(self, req: M.PowerDeliveryReqType, now: float) -> Outcome:
        progress = req.charge_progress
        if progress == "Start":
            if req.sa_schedule_tuple_id != SA_SCHEDULE_TUPLE_ID:
                raise SessionFailure(Failure.TARIFF_SELECTION_INVALID,
                                     f"SAScheduleTupleID {req.sa_schedule_tuple_id}")
            self.check_charging_profile(req.charging_profile)
            self.selected_tuple_id = req.sa_schedule_tuple_id
            self.renegotiating = False
            actions = self.power_delivery_actions(True, now)
            if req.charging_profile is not None:  # OCPP NotifyEVChargingSchedule
                actions.append(PublishEvent("EVChargingSchedule",
                                            ev_charging_schedule(req.charging_profile)))
        elif progress == "Stop":
            actions = self.power_delivery_actions(False, now)
            if self.is_ac:
                actions.insert(0, SetContactors(False))
        else:  # Renegotiate
            self.renegotiating = True
            actions = [PublishEvent("Renegotiation", {})]
        status = ({"ac_evse_status": self.ac_evse_status()} if self.is_ac
                  else {"dc_evse_status": self.dc_evse_status()})
        return Outcome(M.PowerDeliveryResType(response_code="OK", **status), actions=actions)

    def check_charging_profile(self, profile: M.ChargingProfileType | None) -> None:
        if profile is None:
            return
        starts = [e.charging_profile_entry_start for e in profile.profile_entry]
        if starts != sorted(starts):
            raise SessionFailure(Failure.CHARGING_PROFILE_INVALID, "entries not in time order")
        offered = self.offered_pmax if self.offered_pmax is not None else self.max_power()
        for entry in profile.profile_entry:  # against the PMax we offered (cars copy it)
            if to_float(entry.charging_profile_entry_max_power, 0.0) > offered + 0.5:
                raise SessionFailure(Failure.CHARGING_PROFILE_INVALID,
                                     "profile exceeds the offered PMax")

    def on_SessionStopReq(self, req: M.SessionStopReqType, now: float) -> Outcome:
        pause = req.charging_session == "Pause"
        if pause:
            self.paused.put(PausedSession(
                self.session_id, self.evcc_id, paused_at=now, payment_option=self.payment_option,
                sa_schedule_tuple_id=self.selected_tuple_id or SA_SCHEDULE_TUPLE_ID,
                schedule_ends_at=self.schedule_ends_at,
                schedule_started_at=self.schedule_started_at))
        self.log.info("session stopped by the EV", extra={"charging_session":
                                                         req.charging_session})
        # a pause keeps the transaction open (the car may come back); a stop ends it
        event = (PublishEvent("SessionPaused", {}) if pause
                 else self.session_stopped("EV SessionStop", self.ev_stop_end()))
        return Outcome(M.SessionStopResType(response_code="OK"), next_state=TERMINATED,
                       actions=[SetContactors(False),
                                EnterSafeState("session paused by EV" if pause
                                               else "session stopped by EV"),
                                event])

    def on_MeteringReceiptReq(self, req: M.MeteringReceiptReqType, now: float) -> Outcome:
        if req.session_id != self.session_id:
            raise SessionFailure(Failure.UNKNOWN_SESSION, "receipt for another session")
        if self.payment_option == CONTRACT:
            self.check_receipt_signature(req)
        self.check_receipt_meter_info(req.meter_info)
        status = ({"ac_evse_status": self.ac_evse_status()} if self.is_ac
                  else {"dc_evse_status": self.dc_evse_status()})
        return Outcome(M.MeteringReceiptResType(response_code="OK", **status),
                       actions=[PublishEvent("MeteringReceipt", {
                           "meter_reading": req.meter_info.meter_reading})])

    # --- AC -----------------------------------------------------------------------------------
    def on_ChargingStatusReq(self, req: M.ChargingStatusReqType, now: float) -> Outcome:
        self.check_no_shutdown()
        current = self.limits.ac_max_current
        if self.ev_max_current_ac is not None:
            current = min(current, self.ev_max_current_ac)
        if self.stop_reason.value == "remote_stop":
            current = 0.0
        receipt = self.receipt_wanted()
        meter_info = self.meter_info() if receipt or self.meter_info_always else None
        if receipt:
            self.receipt_meter_info = meter_info
        return Outcome(M.ChargingStatusResType(
            response_code="OK", evseid=self.evse_id, sa_schedule_tuple_id=SA_SCHEDULE_TUPLE_ID,
            evse_max_current=self.pv(current, "A"), meter_info=meter_info,
            receipt_required=receipt, ac_evse_status=self.ac_evse_status()))

    # --- DC -----------------------------------------------------------------------------------
    def on_CurrentDemandReq(self, req: M.CurrentDemandReqType, now: float) -> Outcome:
        setpoint, actions = self.current_demand_step(req)
        receipt = self.receipt_wanted()
        meter_info = self.meter_info() if receipt or self.meter_info_always else None
        if receipt:
            self.receipt_meter_info = meter_info
        return Outcome(M.CurrentDemandResType(
            **self.current_demand_fields(setpoint),
            evseid=self.evse_id, sa_schedule_tuple_id=SA_SCHEDULE_TUPLE_ID,
            meter_info=meter_info, receipt_required=receipt), actions=actions)

    def receipt_wanted(self) -> bool:
        """ReceiptRequired of the next loop response (§8.4.3.13: receipts are signed with
        the contract key, so a Contract session is the one a board's receipts apply to)."""
        return self.receipt_required or (self.contract_receipts
                                         and self.payment_option == CONTRACT)

    # --- response parts ---------------------------------------------------------------------------
    def offered_payment_options(self) -> list[str]:
        offered = [CONTRACT] if self.contract_offered else []
        if self.eim_offered or not offered:   # never none: EIM when Contract cannot be
            offered.append("ExternalPayment")
        return offered

    def resumed_payment_option(self) -> str | None:
        """The payment option a resumed session is held to ([V2G2-741]), when we offer it on
        this connection (a Contract session resumed over plain TCP gets the usual offer)."""
        agreed = self.resumed.payment_option if self.resumed is not None else None
        return agreed if agreed in self.offered_payment_options() else None

    def service_discovery_res(self, code: str) -> M.ServiceDiscoveryResType:
        agreed = self.resumed_payment_option()
        return M.ServiceDiscoveryResType(
            response_code=code,
            payment_option_list=M.PaymentOptionListType(
                payment_option=[agreed] if agreed is not None
                else self.offered_payment_options()),
            charge_service=M.ChargeServiceType(
                service_id=CHARGE_SERVICE_ID, service_category="EVCharging", free_service=False,
                supported_energy_transfer_mode=M.SupportedEnergyTransferModeType(
                    energy_transfer_mode=list(self.energy_transfer_modes))))

    def sa_schedule_list(self, max_entries: int | None = None,
                         now: float | None = None) -> M.SAScheduleListType:
        """One SAScheduleTuple: the CSMS's composite limit (``pmax_schedule``, capped by our
        rating) from now until the car's departure time or 24 h, whichever is later; at most
        ``max_entries`` (the car's MaxEntriesSAScheduleTuple) entries. The first offer of a
        resumed session ends where the tuple agreed before the pause ends ([V2G2-741])."""
        rating = rated_power(self.rated_limits, self.is_ac)
        entries = [(start, min(rating, watts)) for start, watts in self.pmax_schedule] or \
            [(0, rating)]
        if max_entries:
            entries = entries[:max_entries]
        # cover the departure time (at most a week); one duration is at most 86400 s
        horizon = min(max(86400, self.ev_departure_time or 0), 7 * 86400)
        remaining = self.resumed_schedule_left(now)
        tariff_elapsed = 0
        if remaining is not None:
            horizon = remaining
        if now is not None:
            self.schedule_ends_at = now + horizon
            self.schedule_started_at = now
            started = self.resumed.schedule_started_at if self.resumed is not None else None
            if remaining is not None and started is not None:   # the paused tuple continued
                self.schedule_started_at = started
                tariff_elapsed = max(0, int(now - started))
        entries = [(start, watts) for start, watts in entries if start < horizon]
        if horizon - entries[-1][0] > 86400 and (not max_entries or len(entries) < max_entries):
            entries.append((horizon - 86400, entries[-1][1]))
        self.offered_revision = self.limit_revision
        self.offered_pmax = max(watts for _, watts in entries)
        last = len(entries) - 1
        return M.SAScheduleListType(sa_schedule_tuple=[M.SAScheduleTupleType(
            sa_schedule_tuple_id=SA_SCHEDULE_TUPLE_ID,
            p_max_schedule=M.PMaxScheduleType(p_max_schedule_entry=[M.PMaxScheduleEntryType(
                relative_time_interval=M.RelativeTimeIntervalType(
                    start=start, duration=min(horizon - start, 86400) if i == last else None),
                p_max=self.pv(watts, "W")) for i, (start, watts) in enumerate(entries)]),
            sales_tariff=self.sales_tariff_element(
                horizon, max_entries - len(entries) if max_entries else None,
                tariff_elapsed))])

    def sales_tariff_element(self, horizon: int, budget: int | None,
                             elapsed: int = 0) -> M.SalesTariffType | None:
        """The board's SalesTariff over the PMaxSchedule's period, within the car's entry
        budget, ``elapsed`` s into its own time axis (a resumed session's tuple); unsigned, so
        only for ExternalPayment (a Contract session's tariff would have to carry the mobility
        operator's signature, which this SECC does not hold)."""
        config = self.sales_tariff
        if not config.enabled:
            return None
        if self.payment_option == CONTRACT:
            self.log.info("SalesTariff not offered: Contract payment needs a tariff signed by "
                          "the mobility operator", extra={"setting": "[v2g.tariff]"})
            return None
        entries = tariff_entries(config, horizon, budget, elapsed)
        if not entries:
            self.log.info("SalesTariff left out: no room under the car's "
                          "MaxEntriesSAScheduleTuple", extra={"budget": budget})
            return None
        return M.SalesTariffType(
            sales_tariff_id=config.sales_tariff_id,
            sales_tariff_description=config.description or None,
            num_e_price_levels=config.price_levels,
            sales_tariff_entry=[M.SalesTariffEntryType(
                relative_time_interval=M.RelativeTimeIntervalType(start=e.start,
                                                                  duration=e.duration),
                e_price_level=e.price_level,
                consumption_cost=[] if e.relative_price_percent is None else [
                    M.ConsumptionCostType(start_value=self.pv(0, "W"), cost=[M.CostType(
                        cost_kind="relativePricePercentage",
                        amount=e.relative_price_percent)])])
                for e in entries])

    def resumed_schedule_left(self, now: float | None) -> int | None:
        """Whole seconds left of the tuple agreed before the pause, for the first schedule of a
        resumed session (None otherwise, or when its period is over: a fresh offer then)."""
        paused = self.resumed
        if (paused is None or paused.schedule_ends_at is None or now is None
                or self.schedule_ends_at is not None):   # offered once already
            return None
        left = int(paused.schedule_ends_at - now)
        if left < 1:
            self.log.info("the paused session's schedule is over: a fresh offer",
                          extra={"ended_s_ago": round(now - paused.schedule_ends_at)})
            return None
        return left

    def renegotiation_pending(self) -> bool:
        """A new CSMS limit arrived after we offered the schedule: ISO-2 lets the EVSE ask
        for renegotiation (EVSENotification=ReNegotiation) in the charge loop."""
        return (self.state in ("ChargingStatus", "CurrentDemand") and not self.renegotiating
                and self.offered_revision is not None
                and self.limit_revision != self.offered_revision)

    def max_power(self) -> float:
        lim = self.limits
        if self.mode in AC_MODES:
            return min(lim.ac_nominal_voltage * lim.ac_max_current * lim.ac_phases, lim.max_power)
        return lim.max_power

    def ac_evse_status(self) -> M.AC_EVSEStatusType:
        _, notification = STOP_STATUS[self.stop_reason]
        if self.stop_reason is StopReason.NONE and self.renegotiation_pending():
            notification = "ReNegotiation"
        return M.AC_EVSEStatusType(notification_max_delay=0, evse_notification=notification,
                                   rcd=False)

    def ac_evse_charge_parameter(self) -> M.AC_EVSEChargeParameterType:
        return M.AC_EVSEChargeParameterType(
            ac_evse_status=self.ac_evse_status(),
            evse_nominal_voltage=self.pv(self.limits.ac_nominal_voltage, "V"),
            evse_max_current=self.pv(self.limits.ac_max_current, "A"))

    def meter_info(self) -> M.MeterInfoType:
        return M.MeterInfoType(meter_id=self.meter_id, meter_reading=int(self.evse.meter_wh),
                               t_meter=int(self.wall_clock()))


def _status(s: Iso2Session) -> dict[str, Any]:
    return ({"ac_evse_status": s.ac_evse_status()} if s.is_ac
            else {"dc_evse_status": s.dc_evse_status()})


# Schema-valid responses carrying a FAILED code, per request (mandatory fields minimal).
FAILED_RESPONSES: dict[str, Any] = {
    "SessionSetupReq": lambda s, c: M.SessionSetupResType(response_code=c, evseid=s.evse_id),
    "ServiceDiscoveryReq": lambda s, c: s.service_discovery_res(c),
    "ServiceDetailReq": lambda s, c: M.ServiceDetailResType(response_code=c,
                                                            service_id=CHARGE_SERVICE_ID),
    "PaymentServiceSelectionReq": lambda s, c: M.PaymentServiceSelectionResType(response_code=c),
    "AuthorizationReq": lambda s, c: M.AuthorizationResType(response_code=c,
                                                            evse_processing="Finished"),
    "ChargeParameterDiscoveryReq": lambda s, c: M.ChargeParameterDiscoveryResType(
        response_code=c, evse_processing="Finished",
        **({"ac_evse_charge_parameter": s.ac_evse_charge_parameter()} if s.is_ac
           else {"dc_evse_charge_parameter": s.dc_evse_charge_parameter()})),
    "PowerDeliveryReq": lambda s, c: M.PowerDeliveryResType(response_code=c, **_status(s)),
    "ChargingStatusReq": lambda s, c: M.ChargingStatusResType(
        response_code=c, evseid=s.evse_id, sa_schedule_tuple_id=SA_SCHEDULE_TUPLE_ID,
        ac_evse_status=s.ac_evse_status()),
    "MeteringReceiptReq": lambda s, c: M.MeteringReceiptResType(response_code=c, **_status(s)),
    "CableCheckReq": lambda s, c: M.CableCheckResType(
        response_code=c, dc_evse_status=s.dc_evse_status(), evse_processing="Finished"),
    "PreChargeReq": lambda s, c: M.PreChargeResType(
        response_code=c, dc_evse_status=s.dc_evse_status(),
        evse_present_voltage=s.pv(s.evse.present_voltage, "V")),
    "CurrentDemandReq": lambda s, c: M.CurrentDemandResType(
        response_code=c, dc_evse_status=s.dc_evse_status(),
        evse_present_voltage=s.pv(s.evse.present_voltage, "V"),
        evse_present_current=s.pv(s.evse.present_current, "A"),
        evse_current_limit_achieved=False, evse_voltage_limit_achieved=False,
        evse_power_limit_achieved=False, evseid=s.evse_id,
        sa_schedule_tuple_id=SA_SCHEDULE_TUPLE_ID),
    "WeldingDetectionReq": lambda s, c: M.WeldingDetectionResType(
        response_code=c, dc_evse_status=s.dc_evse_status(),
        evse_present_voltage=s.pv(s.evse.present_voltage, "V")),
    "SessionStopReq": lambda s, c: M.SessionStopResType(response_code=c),
    "PaymentDetailsReq": lambda s, c: M.PaymentDetailsResType(
        response_code=c, gen_challenge=bytes(16), evse_time_stamp=int(s.wall_clock())),
    "CertificateInstallationReq": lambda s, c: M.CertificateInstallationResType(
        response_code=c, **_no_contract_fields()),
    "CertificateUpdateReq": lambda s, c: M.CertificateUpdateResType(
        response_code=c, **_no_contract_fields()),
}


def _no_contract_fields() -> dict[str, Any]:
    """The mandatory parts of a FAILED Certificate{Installation,Update}Res: empty values."""
    return {"sa_provisioning_certificate_chain": M.CertificateChainType(certificate=b""),
            "contract_signature_cert_chain": M.CertificateChainType(certificate=b""),
            "contract_signature_encrypted_private_key":
                M.ContractSignatureEncryptedPrivateKeyType(id="id1", value=b""),
            "d_hpublickey": M.DiffieHellmanPublickeyType(id="id2", value=b""),
            "e_maid": M.EMAIDType(id="id3", value="")}


# --- OCPP smart charging: what the car tells us, in OCPP's words (camelCase) -----------------------
OCPP_TRANSFER = {"AC_single_phase_core": "AC_single_phase", "AC_three_phase_core": "AC_three_phase"}


def ev_charging_needs(mode: str, p: Any) -> dict[str, Any]:
    """OCPP ChargingNeedsType from the EV's ChargeParameterDiscoveryReq (NotifyEVChargingNeeds;
    the daemon adds nothing but the bus envelope)."""
    needs: dict[str, Any] = {"requestedEnergyTransfer": OCPP_TRANSFER.get(mode, "DC")}
    if p.departure_time is not None:
        needs["departure_in_s"] = int(p.departure_time)
    if mode in AC_MODES:
        needs["acChargingParameters"] = {
            "energyAmount": round(to_float(p.e_amount, 0.0)),
            "evMinCurrent": round(to_float(p.ev_min_current, 0.0)),
            "evMaxCurrent": round(to_float(p.ev_max_current, 0.0)),
            "evMaxVoltage": round(to_float(p.ev_max_voltage, 0.0))}
    else:
        dc: dict[str, Any] = {"evMaxCurrent": round(to_float(p.ev_maximum_current_limit, 0.0)),
                              "evMaxVoltage": round(to_float(p.ev_maximum_voltage_limit, 0.0))}
        for key, value in (("evMaxPower", p.ev_maximum_power_limit),
                           ("energyAmount", p.ev_energy_request),
                           ("evEnergyCapacity", p.ev_energy_capacity)):
            if value is not None:
                dc[key] = round(to_float(value, 0.0))
        for key, value in (("stateOfCharge", p.dc_ev_status.evresssoc), ("fullSoC", p.full_soc),
                           ("bulkSoC", p.bulk_soc)):
            if value is not None:
                dc[key] = int(value)
        needs["dcChargingParameters"] = dc
    return needs


def ev_charging_schedule(profile: M.ChargingProfileType) -> dict[str, Any]:
    """OCPP ChargingScheduleType (W) from the EV's ChargingProfile in PowerDeliveryReq.Start;
    ``startPeriod`` is seconds from the PowerDeliveryReq (the time base)."""
    periods = []
    for entry in profile.profile_entry:
        period: dict[str, Any] = {"startPeriod": int(entry.charging_profile_entry_start),
                                  "limit": round(to_float(entry.charging_profile_entry_max_power,
                                                          0.0), 1)}
        phases = entry.charging_profile_entry_max_number_of_phases_in_use
        if phases is not None:
            period["numberPhases"] = int(phases)
        periods.append(period)
    return {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": periods}
