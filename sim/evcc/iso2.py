"""ISO 15118-2 EVCC, AC and DC, external identification (EIM).

Sequence (ISO 15118-2 §8.8 / Figures 106-107): SessionSetup, ServiceDiscovery,
PaymentServiceSelection, Authorization (repeated while Ongoing), ChargeParameterDiscovery
(repeated while Ongoing; the EV picks the first SAScheduleTuple and derives its
ChargingProfile from its PMaxSchedule), then for DC CableCheck, PreCharge; PowerDelivery(Start),
the charge loop (CurrentDemand for DC, ChargingStatus for AC, with MeteringReceipt when the
SECC sets ReceiptRequired), PowerDelivery(Stop) or (Renegotiate -> ChargeParameterDiscovery),
WeldingDetection for DC, SessionStop(Terminate or Pause). A paused session is resumed by a new
session whose SessionSetupReq carries the old SessionID (``EvccConfig.resume_session_id``).

Plug & Charge: with ``EvccConfig.contract`` and the SECC offering ``Contract`` (over TLS), the
car selects Contract, sends PaymentDetailsReq (eMAID + contract chain), and answers the
GenChallenge with an AuthorizationReq (Id, GenChallenge) signed with the contract key in the
message header. Without the offer it falls back to ExternalPayment, as cars do. Misbehaviour
knobs ``pnc_*`` break the challenge, the signature or the certificate on purpose.

Contract installation: a car with an OEM provisioning credential (``EvccConfig.provisioning``)
but no contract selects Contract, sends CertificateInstallationReq (OEM certificate, trusted
V2G roots, signed with the OEM key), checks the CPS signature when the response carries one,
decrypts the contract key (``secc.pnc.key_transport``), checks it belongs to the new contract
certificate, and goes on with PaymentDetails/Authorization using the installed contract.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exi_schemas.generated import iso2
from secc.pnc import key_transport, xmldsig
from secc.common.pki.chain import CertificateRejected, verify_chain
from secc.pnc.installation import verify_response_signature
from sim.evcc.core import DONE, PncContract, value_of
from sim.evcc.dc_shared import DcSharedEvcc, evse_stop_reason
from sim.evcc.failures import InvalidResponse

#: V2G_EVCC_Msg_Timeout (ISO 15118-2 Table 109); everything else 2 s.
ISO2_MESSAGE_TIMEOUTS: dict[str, float] = {
    "ServiceDetail": 5.0,
    "PaymentDetails": 5.0,
    "CertificateInstallation": 5.0,
    "CertificateUpdate": 5.0,
    "PowerDelivery": 5.0,
    "CurrentDemand": 0.25,
}

_COMMON_FLOW: dict[str, str] = {
    "SessionSetup": "ServiceDiscovery",
    "ServiceDiscovery": "PaymentServiceSelection",
    "PaymentServiceSelection": "Authorization",   # Contract: PaymentDetails (handler)
    "CertificateInstallation": "PaymentDetails",
    "PaymentDetails": "Authorization",
    "Authorization": "ChargeParameterDiscovery",
    "MeteringReceipt": "PowerDelivery",   # the handler goes back to the loop
    "SessionStop": DONE,
}
ISO2_DC_FLOW: dict[str, str] = {
    **_COMMON_FLOW,
    "ChargeParameterDiscovery": "CableCheck",
    "CableCheck": "PreCharge",
    "PreCharge": "PowerDelivery",
    "PowerDelivery": "CurrentDemand",     # Start; Stop/Renegotiate branch in the handler
    "CurrentDemand": "CurrentDemand",
    "WeldingDetection": "SessionStop",
}
ISO2_AC_FLOW: dict[str, str] = {
    **_COMMON_FLOW,
    "ChargeParameterDiscovery": "PowerDelivery",
    "PowerDelivery": "ChargingStatus",
    "ChargingStatus": "ChargingStatus",
}

def expired_copy(leaf_der: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The contract certificate with its validity moved into the past (same subject, key and
    issuer name; the car has no CA key, so the issuer signature no longer holds either — the
    SECC checks validity first and must answer FAILED_CertificateExpired)."""
    leaf = x509.load_der_x509_certificate(leaf_der)
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer)
               .public_key(leaf.public_key()).serial_number(leaf.serial_number)
               .not_valid_before(now - dt.timedelta(days=400))
               .not_valid_after(now - dt.timedelta(days=1)))
    for extension in leaf.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


#: ChargingProfile may hold at most 24 entries.
MAX_PROFILE_ENTRIES = 24


class Iso2Evcc(DcSharedEvcc):
    """ISO 15118-2 with EIM, DC or AC (``EvccConfig.mode``)."""

    PROTOCOL = "iso2"
    SCHEMA = "iso2"
    MESSAGES = iso2
    FLOWS: ClassVar[dict[str, dict[str, str]]] = {"dc": ISO2_DC_FLOW, "ac": ISO2_AC_FLOW}
    MESSAGE_TIMEOUTS = ISO2_MESSAGE_TIMEOUTS
    STEP_LIMITS: ClassVar[dict[str, str]] = {
        "Authorization": "ongoing_timeout",
        "ChargeParameterDiscovery": "ongoing_timeout",
        "CableCheck": "cable_check_timeout",
        "PreCharge": "precharge_timeout",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default_mode = "DC_extended" if self.config.mode == "dc" else (
            "AC_three_phase_core" if self.battery.ac_phases == 3 else "AC_single_phase_core")
        self.energy_transfer_mode = self.config.energy_transfer_mode or default_mode
        self.charge_progress = "Start"
        self.schedule: iso2.SAScheduleTupleType | None = None
        self.evse_max_current: float | None = None
        self._pending_meter: iso2.MeterInfoType | None = None
        self.service_id = 1            # the charge service the EVSE offered
        self._welding_requests = 0
        self._renegotiated = False
        self.use_contract = False      # Plug & Charge chosen (contract held and offered)
        self.contract: PncContract | None = self.config.contract   # held or installed
        self.gen_challenge: bytes | None = None

    @property
    def loop_step(self) -> str:
        return "CurrentDemand" if self.config.mode == "dc" else "ChargingStatus"

    # --- common pieces --------------------------------------------------------------------------
    def _status(self, ready: bool = True) -> iso2.DC_EVStatusType:
        return iso2.DC_EVStatusType(ev_ready=ready, ev_error_code="NO_ERROR",
                                    evresssoc=int(self.battery.soc))

    def _ac_power(self) -> float:
        b = self.battery
        current = b.ac_max_current if self.evse_max_current is None else min(
            b.ac_max_current, self.evse_max_current)
        return current * b.ac_nominal_voltage * b.ac_phases

    # --- requests -------------------------------------------------------------------------------
    def build_SessionSetup(self) -> iso2.SessionSetupReqType:
        return iso2.SessionSetupReqType(evccid=self.config.evcc_id[:6])

    def build_ServiceDiscovery(self) -> iso2.ServiceDiscoveryReqType:
        return iso2.ServiceDiscoveryReqType(service_category="EVCharging")

    def build_PaymentServiceSelection(self) -> iso2.PaymentServiceSelectionReqType:
        return iso2.PaymentServiceSelectionReqType(
            selected_payment_option="Contract" if self.use_contract else "ExternalPayment",
            selected_service_list=iso2.SelectedServiceListType(
                selected_service=[iso2.SelectedServiceType(service_id=self.service_id)]))

    def build_CertificateInstallation(self) -> iso2.CertificateInstallationReqType:
        credential = self.config.provisioning
        assert credential is not None  # only sent by a car with a provisioning credential
        return iso2.CertificateInstallationReqType(
            id="ID1", oem_provisioning_cert=credential.certificate,
            list_of_root_certificate_i_ds=iso2.ListOfRootCertificateIDsType(root_certificate_id=[
                iso2.X509IssuerSerialType(x509_issuer_name=name, x509_serial_number=serial)
                for name, serial in credential.root_ids or (("CN=unknown", 0),)]))

    def build_PaymentDetails(self) -> iso2.PaymentDetailsReqType:
        contract = self.contract
        assert contract is not None  # only sent when use_contract
        leaf = contract.certificate
        if self.misbehaviour.pnc_expired_certificate:
            leaf = expired_copy(leaf, contract.key)
        if self.misbehaviour.pnc_garbage_certificate:
            leaf = b"\x30\x82\x01\x00" + bytes(range(64))
        subs = iso2.SubCertificatesType(certificate=list(contract.sub_certificates)) \
            if contract.sub_certificates else None
        return iso2.PaymentDetailsReqType(
            e_maid=contract.emaid, contract_signature_cert_chain=iso2.CertificateChainType(
                id="ContractChain", certificate=leaf, sub_certificates=subs))

    def build_Authorization(self) -> iso2.AuthorizationReqType:
        if not self.use_contract or self._repeating:
            # EIM, and PnC's repeats while Ongoing ([V2G2-684]): no Id, no GenChallenge
            return iso2.AuthorizationReqType()
        challenge = self.gen_challenge or bytes(16)
        if self.misbehaviour.pnc_wrong_challenge:
            challenge = bytes(b ^ 0x5A for b in challenge)
        return iso2.AuthorizationReqType(id="ID1", gen_challenge=challenge)

    def header_signature(self, step: str, body: Any) -> Any:
        """PnC: AuthorizationReq and MeteringReceiptReq are signed with the contract key,
        CertificateInstallationReq with the OEM provisioning key."""
        if step == "CertificateInstallation" and self.config.provisioning is not None:
            return xmldsig.sign([body], self.config.provisioning.key)
        if step not in ("Authorization", "MeteringReceipt") or not self.use_contract \
                or self.contract is None:
            return None
        if step == "Authorization" and self._repeating:
            return None  # only the first AuthorizationReq is signed ([V2G2-684])
        key = self.contract.key
        if self.misbehaviour.pnc_bad_signature:
            key = ec.generate_private_key(ec.SECP256R1())
        return xmldsig.sign([body], key)

    def build_ChargeParameterDiscovery(self) -> iso2.ChargeParameterDiscoveryReqType:
        b = self.battery
        if self.config.mode == "ac":
            return iso2.ChargeParameterDiscoveryReqType(
                max_entries_sa_schedule_tuple=3,
                requested_energy_transfer_mode=self.energy_transfer_mode,
                ac_ev_charge_parameter=iso2.AC_EVChargeParameterType(
                    departure_time=8 * 3600,
                    e_amount=self._pv(b.energy_request_wh(), "Wh"),
                    ev_max_voltage=self._pv(b.ac_nominal_voltage * 1.1, "V"),
                    ev_max_current=self._pv(b.ac_max_current, "A"),
                    ev_min_current=self._pv(b.ac_min_current, "A")))
        return iso2.ChargeParameterDiscoveryReqType(
            max_entries_sa_schedule_tuple=3,
            requested_energy_transfer_mode=self.energy_transfer_mode,
            dc_ev_charge_parameter=self.dc_ev_charge_parameter(self._status(),
                                                               departure_time=3600))

    def build_PowerDelivery(self) -> iso2.PowerDeliveryReqType:
        tuple_id = self.schedule.sa_schedule_tuple_id if self.schedule else 1
        if self.charge_progress == "Start":
            self.signals.pilot = "C"
        dc = None
        if self.config.mode == "dc":
            dc = iso2.DC_EVPowerDeliveryParameterType(
                dc_ev_status=self._status(), bulk_charging_complete=self.battery.bulk_complete(),
                charging_complete=self.charge_progress == "Stop")
        return iso2.PowerDeliveryReqType(
            charge_progress=self.charge_progress, sa_schedule_tuple_id=tuple_id,
            charging_profile=self.charging_profile() if self.charge_progress == "Start" else None,
            dc_ev_power_delivery_parameter=dc)

    def charging_profile(self) -> iso2.ChargingProfileType | None:
        """The EV's plan within the chosen PMaxSchedule: each interval at the lower of the
        EVSE's PMax and what the car can take."""
        if self.schedule is None:
            return None
        ev_max = (self.battery.max_power if self.config.mode == "dc"
                  else self.battery.ac_max_current * self.battery.ac_nominal_voltage
                  * self.battery.ac_phases)
        entries = []
        for entry in self.schedule.p_max_schedule.p_max_schedule_entry[:MAX_PROFILE_ENTRIES]:
            start = entry.relative_time_interval.start if entry.relative_time_interval else 0
            power = min(value_of(entry.p_max), ev_max)
            entries.append(iso2.ProfileEntryType(
                charging_profile_entry_start=start,
                charging_profile_entry_max_power=self._pv(power, "W"),
                charging_profile_entry_max_number_of_phases_in_use=(
                    self.battery.ac_phases if self.config.mode == "ac" else None)))
        return iso2.ChargingProfileType(profile_entry=entries)

    def build_ChargingStatus(self) -> iso2.ChargingStatusReqType:
        return iso2.ChargingStatusReqType()

    def build_MeteringReceipt(self) -> iso2.MeteringReceiptReqType:
        meter = self._pending_meter or iso2.MeterInfoType(meter_id="unknown")
        return iso2.MeteringReceiptReqType(  # EIM: unsigned, so no Id; PnC: signed
            id="MR1" if self.use_contract else None, session_id=self.session_id,
            sa_schedule_tuple_id=self.schedule.sa_schedule_tuple_id if self.schedule else None,
            meter_info=meter)

    def build_SessionStop(self) -> iso2.SessionStopReqType:
        pause = self.misbehaviour.pause_instead_of_terminate
        return iso2.SessionStopReqType(charging_session="Pause" if pause else "Terminate")

    # --- responses ------------------------------------------------------------------------------
    def on_SessionSetup(self, res: iso2.SessionSetupResType, now: float) -> str | None:
        self.session_setup_done(res.response_code, res.evseid)
        return None

    def on_ServiceDiscovery(self, res: iso2.ServiceDiscoveryResType, now: float) -> str | None:
        options = res.payment_option_list.payment_option
        can_pnc = self.contract is not None or self.config.provisioning is not None
        self.use_contract = can_pnc and "Contract" in options
        if can_pnc and not self.use_contract:
            self.say("the EVSE offers no Contract payment: falling back to ExternalPayment")
        if not self.use_contract and "ExternalPayment" not in options:
            raise InvalidResponse("ServiceDiscovery", "the EVSE offers no ExternalPayment")
        offered = res.charge_service.supported_energy_transfer_mode.energy_transfer_mode
        if self.energy_transfer_mode not in offered:
            same_kind = [m for m in offered if m.startswith(self.config.mode.upper())]
            if not same_kind:
                raise InvalidResponse("ServiceDiscovery",
                                      f"the EVSE offers {offered}, no {self.config.mode.upper()}")
            self.energy_transfer_mode = same_kind[0]
        self.service_id = res.charge_service.service_id
        payment = "Contract" if self.use_contract else "ExternalPayment"
        self.say(f"ServiceDiscovery OK ({self.energy_transfer_mode}, {payment})")
        return None

    def on_PaymentServiceSelection(self, res: iso2.PaymentServiceSelectionResType,
                                   now: float) -> str | None:
        if not self.use_contract:
            return None
        return "PaymentDetails" if self.contract is not None else "CertificateInstallation"

    def on_CertificateInstallation(self, res: iso2.CertificateInstallationResType,
                                   now: float) -> str | None:
        credential = self.config.provisioning
        assert credential is not None
        signature = self.response_signature
        if signature is None:  # a real car trusts only what the CPS signed
            raise InvalidResponse("CertificateInstallation", "no CPS signature in the header")
        self.check_cps(res.sa_provisioning_certificate_chain, signature, res)
        chain = res.contract_signature_cert_chain
        try:
            key = key_transport.decrypt_contract_key(
                res.d_hpublickey.value, res.contract_signature_encrypted_private_key.value,
                credential.key)
            leaf = x509.load_der_x509_certificate(chain.certificate)
        except (key_transport.KeyTransportError, ValueError) as exc:
            raise InvalidResponse("CertificateInstallation", str(exc)) from None
        if not key_transport.matches(key, leaf.public_key()):
            raise InvalidResponse("CertificateInstallation",
                                  "decrypted key does not belong to the contract certificate")
        subs = tuple(chain.sub_certificates.certificate) if chain.sub_certificates else ()
        self.contract = PncContract(chain.certificate, subs, key, res.e_maid.value)
        self.record.installed_emaid = res.e_maid.value
        self.say(f"CertificateInstallation OK: contract {res.e_maid.value} installed")
        return None

    def check_cps(self, chain: iso2.CertificateChainType, signature: Any, res: Any) -> None:
        """The CPS chain leads to the car's V2G root and the CPS signed the four elements."""
        credential = self.config.provisioning
        try:
            cps = x509.load_der_x509_certificate(chain.certificate)
            subs = [x509.load_der_x509_certificate(c) for c in
                    (chain.sub_certificates.certificate if chain.sub_certificates else [])]
            if credential is not None and credential.v2g_root is not None:
                verify_chain(cps, subs, [x509.load_der_x509_certificate(credential.v2g_root)])
            verify_response_signature(res, signature, cps.public_key())
        except (ValueError, CertificateRejected, xmldsig.XmlDsigError) as exc:
            raise InvalidResponse("CertificateInstallation",
                                  f"CPS: {type(exc).__name__}: {exc}") from None

    def on_PaymentDetails(self, res: iso2.PaymentDetailsResType, now: float) -> str | None:
        if len(res.gen_challenge) != 16:
            raise InvalidResponse("PaymentDetails",
                                  f"GenChallenge of {len(res.gen_challenge)} bytes, not 16")
        self.gen_challenge = res.gen_challenge
        self.say(f"PaymentDetails OK (eMAID {self.contract.emaid})")
        return None

    def on_Authorization(self, res: iso2.AuthorizationResType, now: float) -> str | None:
        return self.ongoing("Authorization", res.evse_processing, now)

    def on_ChargeParameterDiscovery(self, res: iso2.ChargeParameterDiscoveryResType,
                                    now: float) -> str | None:
        again = self.ongoing("ChargeParameterDiscovery", res.evse_processing, now)
        if again:
            return again
        tuples = res.sa_schedule_list.sa_schedule_tuple if res.sa_schedule_list else []
        if not tuples:
            raise InvalidResponse("ChargeParameterDiscovery", "no SAScheduleTuple to choose")
        self.schedule = tuples[0]
        self.record.sa_schedule_tuple_id = self.schedule.sa_schedule_tuple_id
        entries = self.schedule.p_max_schedule.p_max_schedule_entry
        if entries:
            self.record.saw_limit("PMax", value_of(entries[0].p_max))
        if self.config.mode == "ac":
            if res.ac_evse_charge_parameter is None:
                raise InvalidResponse("ChargeParameterDiscovery", "no AC_EVSEChargeParameter")
            self.evse_max_current = value_of(res.ac_evse_charge_parameter.evse_max_current)
        elif res.dc_evse_charge_parameter is None:
            raise InvalidResponse("ChargeParameterDiscovery", "no DC_EVSEChargeParameter")
        self.charge_progress = "Start"
        if self.config.mode == "dc":
            self.signals.pilot = "C"  # S2 closed: ready for the isolation check
        if self._renegotiated:
            return "PowerDelivery"  # renegotiation: no new cable check / pre-charge
        return None

    def on_PowerDelivery(self, res: iso2.PowerDeliveryResType, now: float) -> str | None:
        progress = self.charge_progress
        self.say(f"PowerDelivery({progress}) OK"
                 + (f" ({self.record.stop_reason})" if progress == "Stop" else ""))
        if progress == "Start":
            self.signals.contactors_closed = self.config.mode == "dc"
            return self.loop_step
        if progress == "Renegotiate":
            self.record.renegotiations += 1
            self._renegotiated = True
            return "ChargeParameterDiscovery"
        self.signals.contactors_closed = False
        self.signals.pilot = "B"
        return "WeldingDetection" if self.config.mode == "dc" else "SessionStop"

    def _after_loop_response(self, res: Any, evse_status: Any) -> str:
        """What follows a charge-loop response: a receipt, a stop, a renegotiation, or more."""
        if res.receipt_required and res.meter_info is not None:
            self._pending_meter = res.meter_info
            return "MeteringReceipt"
        return self._loop_decision(evse_status)

    def _loop_decision(self, evse_status: Any) -> str:
        knobs = self.misbehaviour
        notification = getattr(evse_status, "evse_notification", None)
        if (knobs.renegotiate_after is not None and not self._renegotiated
                and self.record.loop_iterations >= knobs.renegotiate_after) or (
                notification == "ReNegotiation"):
            self.charge_progress = "Renegotiate"
            return "PowerDelivery"
        reason = self.stop_reason() or (None if knobs.ignore_evse_stop
                                        else evse_stop_reason(evse_status))
        if reason:
            self.record.stop_reason = reason
            self.charge_progress = "Stop"
            return "PowerDelivery"
        return self.repeat(self.loop_step)

    def on_CurrentDemand(self, res: iso2.CurrentDemandResType, now: float) -> str | None:
        voltage = value_of(res.evse_present_voltage)
        current = value_of(res.evse_present_current)
        if res.evse_maximum_power_limit is not None:
            self.record.saw_limit("EVSEMaximumPowerLimit", value_of(res.evse_maximum_power_limit))
        self.loop_tick(voltage * current, now, voltage, current)
        self.signals.battery_voltage = self.battery.voltage()
        return self._after_loop_response(res, res.dc_evse_status)

    def on_ChargingStatus(self, res: iso2.ChargingStatusResType, now: float) -> str | None:
        if res.evse_max_current is not None:
            self.evse_max_current = value_of(res.evse_max_current)
            self.record.saw_limit("EVSEMaxCurrent", self.evse_max_current)
        power = self._ac_power()
        b = self.battery
        self.loop_tick(power, now, b.ac_nominal_voltage, power / b.ac_nominal_voltage)
        return self._after_loop_response(res, res.ac_evse_status)

    def on_MeteringReceipt(self, res: iso2.MeteringReceiptResType, now: float) -> str | None:
        self.record.metering_receipts += 1
        self._pending_meter = None
        self.say("MeteringReceipt OK")
        return self._loop_decision(res.dc_evse_status or res.ac_evse_status)

    def on_SessionStop(self, res: iso2.SessionStopResType, now: float) -> str | None:
        self.record.paused = self.misbehaviour.pause_instead_of_terminate
        verb = "paused" if self.record.paused else "terminated"
        self.say(f"SessionStop OK ({verb}): {self.battery.energy_delivered_wh / 1000:.2f} kWh "
                 f"in {self.record.loop_iterations} loops, SoC {self.battery.soc:.0f}%")
        return DONE
