"""ISO 15118-20 Plug & Charge authorization through the real codec, in-process: the -20 SECC
core against the -20 EV simulator holding a P-521 contract (TestPKI.iso20), and hand-made
requests for what the simulator does not send. Every refusal gets its -20 code."""

from __future__ import annotations

import time

import pytest

from exi_schemas.generated import iso20 as cm
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso20 import Iso20Config
from sim.iso20_loopback import LoopbackCharger, run_loopback
from secc.iso20.table import S
from secc.pnc.iso20 import GEN_CHALLENGE_BYTES, sign_authorization
from sim.testing.pki import Defect, TestPKI
from secc.v2g.evse import EnterSafeState, RequestAuthorization, SetContactors
from sim.evcc import Misbehaviour
from sim.evcc.core import PncContract
from sim.evcc.failures import ResponseCodeFailed

from .conftest import Pump, make_evcc, make_secc


def pnc_run(pki20, contract, *, tls=True, mo_roots=True, charger=None, misbehaviour=None,
            energy="dc", **core_kwargs):
    """A whole session; certificate validity is checked against the real clock (the PKI and
    the EV's expired copy are made relative to it)."""
    core_kwargs.setdefault("wall_clock", time.time)
    adapter, core = make_secc(energy, tls=tls,
                              mo_roots=[pki20.mo_root.cert] if mo_roots else [], **core_kwargs)
    evcc = make_evcc(energy, loops=3, misbehaviour=misbehaviour)
    evcc.config.contract = PncContract.from_credential(contract)
    charger = charger or LoopbackCharger()
    result = run_loopback(core, adapter, evcc, charger)
    return core, evcc, charger, result


def authorization_requests(charger):
    return [a.request for a in charger.actions if isinstance(a, RequestAuthorization)]


def authorization_codes(result):
    return [c for r, c in result.codes if r == "AuthorizationReq"]


# --- offered or not ---------------------------------------------------------------------------
def test_pnc_is_not_offered_without_tls_and_the_car_falls_back_to_eim(pki20, contract):
    core, evcc, charger, result = pnc_run(pki20, contract, tls=False)
    assert result.ev_result.record.ok
    assert evcc.use_contract is False
    requests = authorization_requests(charger)
    assert [(r.id_token, r.id_token_type) for r in requests] == [("EXTERNAL", "Central")]
    assert core.gen_challenge is None


def test_pnc_is_not_offered_when_the_board_turns_it_off(pki20, contract):
    core, evcc, charger, result = pnc_run(pki20, contract, offer_contract=False)
    assert result.ev_result.record.ok and evcc.use_contract is False
    assert authorization_requests(charger)[0].id_token_type == "Central"


def test_over_tls_authorization_setup_offers_pnc_with_a_fresh_16_byte_challenge(pump_for):
    challenges = []
    for _ in range(2):
        pump = pump_for("dc", core_kwargs={"tls": True})
        pump.until("Authorization")
        setup = pump.steps[-1].response
        assert setup.authorization_services == ["EIM", "PnC"]
        # CertificateInstallation is forwarded to the CSMS when PnC is offered (issue 11)
        assert setup.certificate_installation_service is True
        assert setup.eim_as_res_authorization_mode is None
        challenge = setup.pn_c_as_res_authorization_mode.gen_challenge
        assert len(challenge) == GEN_CHALLENGE_BYTES
        challenges.append(challenge)
    assert challenges[0] != challenges[1]


def test_supported_providers_are_announced_when_configured(pump_for):
    pump = pump_for("dc", core_kwargs={"tls": True, "config": Iso20Config(
        supported_providers=("DEPYS", "DEXYZ"))})
    pump.until("Authorization")
    pnc_mode = pump.steps[-1].response.pn_c_as_res_authorization_mode
    assert pnc_mode.supported_providers.provider_id == ["DEPYS", "DEXYZ"]
    plain = pump_for("dc", core_kwargs={"tls": True})
    plain.until("Authorization")
    assert plain.steps[-1].response.pn_c_as_res_authorization_mode.supported_providers is None


def test_without_tls_authorization_setup_offers_eim_only(pump_for):
    pump = pump_for("dc", core_kwargs={"tls": False})
    pump.until("Authorization")
    setup = pump.steps[-1].response
    assert setup.authorization_services == ["EIM"]
    assert setup.pn_c_as_res_authorization_mode is None


def test_car_without_contract_uses_eim_when_pnc_is_offered(pki20):
    adapter, core = make_secc("dc", tls=True)
    charger = LoopbackCharger()
    result = run_loopback(core, adapter, make_evcc("dc", loops=2), charger)
    assert result.ev_result.record.ok
    assert core.gen_challenge is not None   # PnC was offered ...
    assert authorization_requests(charger)[0].id_token_type == "Central"   # ... EIM chosen
    assert core.contract is None


# --- accepted -----------------------------------------------------------------------------------
@pytest.mark.parametrize("energy", ["dc", "ac"])
def test_pnc_accepted_charges_with_the_emaid_chain_and_ocsp_data_sent_for_decision(
        pki20, contract, energy):
    core, evcc, charger, result = pnc_run(pki20, contract, energy=energy)
    assert result.ev_result.record.ok, result.ev_result.record.failure
    assert evcc.use_contract is True
    codes = authorization_codes(result)
    assert set(codes) == {"OK"} and len(codes) >= 2   # Ongoing until the decision, then Finished
    (request,) = authorization_requests(charger)
    assert (request.id_token, request.id_token_type) == (contract.emaid, "eMAID")
    assert request.contract_chain_pem.count("BEGIN CERTIFICATE") == 3
    assert len(request.ocsp_request_data) == 3   # leaf, sub-CA 2, sub-CA 1 (MO root installed)
    assert {e["hashAlgorithm"] for e in request.ocsp_request_data} == {"SHA256"}
    assert request.ocsp_request_data[0]["serialNumber"] == format(
        contract.leaf.cert.serial_number, "x")
    assert "ContractCertificateAccepted" in charger.event_kinds()
    assert "Authorized" in charger.event_kinds()
    assert result.ev_result.record.loop_iterations == 3
    assert core.terminated and core.emaid == contract.emaid


def test_pnc_without_installed_mo_root_sends_the_chain_and_no_partial_ocsp_data(pki20, contract):
    core, evcc, charger, result = pnc_run(pki20, contract, mo_roots=False)
    assert result.ev_result.record.ok
    (request,) = authorization_requests(charger)
    assert request.ocsp_request_data == []   # the top sub-CA's issuer key is unknown
    assert request.contract_chain_pem.count("BEGIN CERTIFICATE") == 3


def test_authorization_answers_ongoing_until_the_emsp_decides(pki20, contract):
    charger = LoopbackCharger(authorization_delay=1.0)
    core, evcc, charger, result = pnc_run(pki20, contract, charger=charger)
    processing = [e.evse_processing for e in result.ev_result.record.exchanges
                  if e.step == "Authorization"]
    assert processing[0] == "Ongoing_WaitingForCustomerInteraction"
    assert processing[-1] == "Finished" and processing.count("Finished") == 1
    assert len(authorization_requests(charger)) == 1   # asked once, however often repeated


# --- refused -------------------------------------------------------------------------------------
def assert_refused_without_power(core, charger, result, code):
    assert authorization_codes(result)[-1] == code
    assert result.ev_result.record.stop_reason == code   # the car read it and stopped
    assert result.requests[-1] == "SessionStopReq"
    assert not any(isinstance(a, SetContactors) and a.closed for a in charger.actions)
    assert "Authorized" not in charger.event_kinds()
    assert core.terminated


@pytest.mark.parametrize(("status", "code"), [
    (AuthorizationStatus.INVALID, "WARNING_GeneralPnCAuthorizationError"),
    (AuthorizationStatus.BLOCKED, "WARNING_GeneralPnCAuthorizationError"),
])
def test_emsp_rejection_is_a_pnc_warning_and_the_car_stops(pki20, contract, status, code):
    charger = LoopbackCharger(decision=AuthorizationDecision(status, "csms says no"))
    core, _, charger, result = pnc_run(pki20, contract, charger=charger)
    assert_refused_without_power(core, charger, result, code)
    rejected = [e for e in charger.events if e.kind == "AuthorizationRejected"]
    assert rejected and rejected[0].data["status"] == status.value


@pytest.mark.parametrize(("reason", "code"), [
    ("certificateStatus=CertificateRevoked", "WARNING_CertificateRevoked"),
    ("certificateStatus=CertificateExpired", "WARNING_CertificateExpired"),
    ("certificateStatus=ContractCancelled", "WARNING_GeneralPnCAuthorizationError"),
    ("certificateStatus=SomethingNew", "WARNING_CertificateValidationError"),
])
def test_csms_verdict_on_the_certificate_gets_its_own_code(pki20, contract, reason, code):
    charger = LoopbackCharger(decision=AuthorizationDecision(
        AuthorizationStatus.CERTIFICATE_REJECTED, reason))
    core, _, charger, result = pnc_run(pki20, contract, charger=charger)
    assert_refused_without_power(core, charger, result, code)


def test_wrong_challenge_is_warning_challenge_invalid_finished_and_nothing_asked(pki20, contract):
    core, _, charger, result = pnc_run(pki20, contract,
                                       misbehaviour=Misbehaviour(pnc_wrong_challenge=True))
    assert_refused_without_power(core, charger, result, "WARNING_ChallengeInvalid")
    auth = [e for e in result.ev_result.record.exchanges if e.step == "Authorization"]
    assert [e.evse_processing for e in auth] == ["Finished"]
    assert authorization_requests(charger) == []


def test_expired_contract_is_warning_certificate_expired(pki20, contract):
    core, _, charger, result = pnc_run(pki20, contract,
                                       misbehaviour=Misbehaviour(pnc_expired_certificate=True))
    assert_refused_without_power(core, charger, result, "WARNING_CertificateExpired")
    assert authorization_requests(charger) == []


def test_garbage_certificate_is_a_validation_warning_not_a_crash(pki20, contract):
    core, _, charger, result = pnc_run(pki20, contract,
                                       misbehaviour=Misbehaviour(pnc_garbage_certificate=True))
    assert_refused_without_power(core, charger, result, "WARNING_CertificateValidationError")


def test_not_yet_valid_contract_is_warning_not_yet_valid(pki20):
    future = pki20.issue_contract(defect=Defect.NOT_YET_VALID)
    core, _, charger, result = pnc_run(pki20, future)
    assert_refused_without_power(core, charger, result, "WARNING_CertificateNotYetValid")


def test_contract_from_an_unknown_mo_is_a_validation_warning(pki20):
    stranger = TestPKI.iso20(emaid="DEXYZC0000001X").issue_contract()
    core, _, charger, result = pnc_run(pki20, stranger)
    assert_refused_without_power(core, charger, result, "WARNING_CertificateValidationError")


def test_bad_signature_is_failed_signature_error_and_ends_the_session_safe(pki20, contract):
    core, _, charger, result = pnc_run(pki20, contract,
                                       misbehaviour=Misbehaviour(pnc_bad_signature=True))
    assert result.codes[-1] == ("AuthorizationReq", "FAILED_SignatureError")
    assert isinstance(result.ev_result.record.failure, ResponseCodeFailed)
    assert any(isinstance(a, EnterSafeState) for a in charger.actions)
    assert authorization_requests(charger) == []
    assert core.terminated


# --- hand-made requests --------------------------------------------------------------------------
def pnc_pump(pki20, **core_kwargs) -> Pump:
    adapter, core = make_secc("dc", **{"tls": True, "mo_roots": [pki20.mo_root.cert],
                                       "wall_clock": time.time, **core_kwargs})
    pump = Pump(core, adapter, make_evcc("dc"))
    pump.until("Authorization")
    return pump


def pnc_request(contract, challenge, *, sign_with=None, signed=True, subs=None,
                leaf=None) -> cm.AuthorizationReqType:
    mode = cm.PnC_AReqAuthorizationModeType(
        id="ID1", gen_challenge=challenge,
        contract_certificate_chain=cm.ContractCertificateChainType(
            certificate=leaf if leaf is not None else contract.leaf.cert_der,
            sub_certificates=cm.SubCertificatesType(
                certificate=subs if subs is not None else contract.sub_ca_ders)))
    req = cm.AuthorizationReqType(header=None, selected_authorization_service="PnC",
                                  pn_c_a_req_authorization_mode=mode)
    signature = sign_authorization(mode, sign_with or contract.leaf.key) if signed else None
    return req, signature


def send_signed(pump, req, signature):
    req.header = cm.MessageHeaderType(session_id=pump.core.session_id, time_stamp=1,
                                      signature=signature)
    return pump.send(req, "AuthorizationReq")


def test_unsigned_pnc_request_is_failed_signature_error(pki20, contract):
    pump = pnc_pump(pki20)
    req, _ = pnc_request(contract, pump.core.gen_challenge, signed=False)
    step = send_signed(pump, req, None)
    assert step.response.response_code == "FAILED_SignatureError"
    assert step.reply.close and pump.core.terminated


def test_pnc_selected_when_not_offered_is_authorization_selection_invalid(pki20, contract):
    pump = pnc_pump(pki20, tls=False)
    req, signature = pnc_request(contract, bytes(16))
    step = send_signed(pump, req, signature)
    assert step.response.response_code == "WARNING_AuthorizationSelectionInvalid"
    assert step.response.evse_processing == "Finished"
    assert pump.core.state == S.WAIT_AUTHORIZATION   # the car may now SessionStop


def test_a_refused_contract_stays_refused_for_the_session(pki20, contract):
    pump = pnc_pump(pki20)
    req, signature = pnc_request(contract, bytes(16))
    assert send_signed(pump, req, signature).response.response_code == \
        "WARNING_ChallengeInvalid"
    req, signature = pnc_request(contract, pump.core.gen_challenge)   # now the right one
    step = send_signed(pump, req, signature)
    assert step.response.response_code == "WARNING_ChallengeInvalid"
    assert authorization_requests(pump.charger) == []


def test_swapping_the_contract_while_ongoing_is_refused(pki20, contract):
    pump = pnc_pump(pki20)
    req, signature = pnc_request(contract, pump.core.gen_challenge)
    assert send_signed(pump, req, signature).response.evse_processing.startswith("Ongoing")
    other = pki20.issue_contract(emaid="DEPYSC7654321X")
    req, signature = pnc_request(other, pump.core.gen_challenge)
    step = send_signed(pump, req, signature)
    assert step.response.response_code == "WARNING_CertificateValidationError"
    assert [r.id_token for r in authorization_requests(pump.charger)] == [contract.emaid]


def test_too_many_sub_certificates_is_a_validation_warning(pki20, contract):
    pump = pnc_pump(pki20)
    subs = contract.sub_ca_ders + [contract.sub_ca_ders[-1]]   # 3: the schema allows, PKI not
    req, signature = pnc_request(contract, pump.core.gen_challenge, subs=subs)
    step = send_signed(pump, req, signature)
    assert step.response.response_code == "WARNING_CertificateValidationError"


def test_no_emsp_decision_within_the_ongoing_limit_ends_the_session(pki20, contract):
    pump = pnc_pump(pki20)
    pump.charger.decision = None
    req, signature = pnc_request(contract, pump.core.gen_challenge)
    assert send_signed(pump, req, signature).response.evse_processing.startswith("Ongoing")
    pump.now += pump.core.timer_config.ongoing_timeout + 1
    req, signature = pnc_request(contract, pump.core.gen_challenge)
    step = send_signed(pump, req, signature)
    assert step.response.response_code == "WARNING_GeneralPnCAuthorizationError"
    assert step.reply.close and pump.core.terminated


def test_p256_contract_signature_is_also_verified():
    """A -2 (P-256, ECDSA-SHA256) contract: the SECC follows the SignatureMethod it names."""
    pki2 = TestPKI()
    adapter, core = make_secc("dc", tls=True, mo_roots=[pki2.mo_root.cert],
                              wall_clock=time.time)
    pump = Pump(core, adapter, make_evcc("dc"))
    pump.until("Authorization")
    p256 = pki2.issue_contract()
    req, signature = pnc_request(p256, core.gen_challenge)
    assert signature.signed_info.signature_method.algorithm.endswith("ecdsa-sha256")
    step = send_signed(pump, req, signature)
    assert step.response.response_code == "OK"
    assert authorization_requests(pump.charger)[0].id_token == p256.emaid


def test_certificate_validity_is_judged_by_the_cores_wall_clock(pki20, contract):
    """Sans-I/O: the contract's validity is compared with ``wall_clock``, not read from the
    OS — the same contract is fine today and expired a day after its notAfter."""
    expiry = contract.leaf.cert.not_valid_after_utc.timestamp()
    pump = pnc_pump(pki20, wall_clock=lambda: expiry + 86400)
    req, signature = pnc_request(contract, pump.core.gen_challenge)
    assert send_signed(pump, req, signature).response.response_code == \
        "WARNING_CertificateExpired"
    pump = pnc_pump(pki20)
    req, signature = pnc_request(contract, pump.core.gen_challenge)
    assert send_signed(pump, req, signature).response.response_code == "OK"
