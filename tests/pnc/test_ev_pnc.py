"""The simulated car's Plug & Charge (sim.evcc.iso2) against the real SECC session, in
process and in virtual time: both sides' codecs, the signature made by the car with its
contract key and verified by the SECC, and each misbehaviour knob's FAILED code."""

from __future__ import annotations

import pytest

import exi_schemas
from exi_schemas.generated import iso2 as M
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.iso2 import Iso2Adapter, Iso2Session
from secc.pnc import xmldsig
from sim.testing.pki import Defect
from secc.v2g.evse import RequestAuthorization
from secc.v2gtp import PayloadType
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig, Finished, Misbehaviour, PncContract
from sim.evcc.failures import ResponseCodeFailed
from sim.evcc.iso2 import Iso2Evcc


def run_until(evcc, session, *, stop_at="ChargeParameterDiscovery", decision=None):
    """Exchange messages until the car is about to send ``stop_at`` or the session ends;
    every authorization request is answered with ``decision`` (accepted by default)."""
    adapter = Iso2Adapter()
    asked = []
    now = 0.0
    action = evcc.start(now)
    for _ in range(100):
        if isinstance(action, Finished) or action.step == stop_at:
            return action, asked
        request = adapter.decode(PayloadType.EXI, action.payload)
        reply = session.receive(request.name, request.body, now, request.session_id)
        for act in reply.actions:
            if isinstance(act, RequestAuthorization):
                asked.append(act.request)
                session.authorization_decided(
                    decision or AuthorizationDecision(AuthorizationStatus.ACCEPTED))
        _, data = adapter.encode(reply.response_name, reply.response, session.session_id)
        now += 0.01
        action = evcc.receive(PayloadType.EXI, data, now)
    raise AssertionError("no end")


def car(contract, misbehaviour=None, mode="dc"):
    return Iso2Evcc(battery=Battery(max_iterations=2),
                    config=EvccConfig(mode=mode, contract=PncContract.from_credential(contract)),
                    misbehaviour=misbehaviour)


def ac_session(**kw):
    return Iso2Session(tls=True, energy_transfer_modes=("AC_three_phase_core",),
                       receipt_required=True, **kw)


@pytest.fixture(scope="module")
def contract(test_pki):
    return test_pki.issue_contract()


def test_car_with_contract_authorizes_by_plug_and_charge(contract, test_pki):
    session = Iso2Session(tls=True, mo_roots=[test_pki.mo_root.cert])
    evcc = car(contract)
    action, asked = run_until(evcc, session)
    assert not isinstance(action, Finished), action.record.failure
    assert evcc.record.steps_sent[:6] == ["SessionSetup", "ServiceDiscovery",
                                          "PaymentServiceSelection", "PaymentDetails",
                                          "Authorization", "Authorization"]
    (request,) = asked
    assert request.id_token == test_pki.emaid and request.id_token_type == "eMAID"
    assert len(request.ocsp_request_data) == 3
    assert session.state == "ChargeParameterDiscovery"


def test_car_falls_back_to_eim_when_contract_is_not_offered(contract):
    session = Iso2Session(tls=False)
    evcc = car(contract)
    action, asked = run_until(evcc, session)
    assert "PaymentDetails" not in evcc.record.steps_sent
    assert asked[0].id_token_type == "MacAddress"


@pytest.mark.parametrize("knob, step, code", [
    ("pnc_wrong_challenge", "Authorization", "FAILED_ChallengeInvalid"),
    ("pnc_bad_signature", "Authorization", "FAILED_SignatureError"),
    ("pnc_garbage_certificate", "PaymentDetails", "FAILED_CertChainError"),
    ("pnc_expired_certificate", "PaymentDetails", "FAILED_CertificateExpired"),
])
def test_misbehaving_car_gets_the_right_failed_code(contract, knob, step, code):
    session = Iso2Session(tls=True)
    action, asked = run_until(car(contract, Misbehaviour(**{knob: True})), session)
    assert isinstance(action, Finished)
    failure = action.record.failure
    assert isinstance(failure, ResponseCodeFailed) and failure.step == step
    assert action.record.response_codes[-1] == (step, code)
    assert asked == []  # nothing reached the eMSP


def test_car_with_expired_contract_gets_FAILED_CertificateExpired(test_pki):
    session = Iso2Session(tls=True)
    action, _ = run_until(car(test_pki.issue_contract(defect=Defect.EXPIRED)), session)
    assert action.record.response_codes[-1] == ("PaymentDetails", "FAILED_CertificateExpired")


def test_emsp_rejection_ends_the_car_session_with_FAILED(contract):
    session = Iso2Session(tls=True)
    action, asked = run_until(car(contract), session, decision=AuthorizationDecision(
        AuthorizationStatus.INVALID, "unknown contract"))
    assert len(asked) == 1
    assert action.record.response_codes[-1] == ("Authorization", "FAILED")


def test_contract_from_pem_files(contract, tmp_path):
    chain, key = contract.write(tmp_path)
    loaded = PncContract.from_pem(chain.read_bytes(), key.read_bytes())
    assert loaded.emaid == contract.emaid
    assert loaded.certificate == contract.leaf.cert_der
    assert list(loaded.sub_certificates) == contract.sub_ca_ders


def test_ev_cli_loads_the_contract_credential(contract, tmp_path):
    from sim.ev import build_parser, config_from_args

    chain, key = contract.write(tmp_path)
    args = build_parser().parse_args(["--iface", "veth0", "--protocol", "iso2", "--tls",
                                      "--v2g-root", str(chain), "--contract-chain", str(chain),
                                      "--contract-key", str(key)])
    config = config_from_args(args)
    assert config.contract.emaid == contract.emaid
    knobs = config_from_args(build_parser().parse_args([
        "--iface", "v", "--pnc-misbehave", "bad-signature", "expired-certificate"])).misbehaviour
    assert knobs.pnc_bad_signature and knobs.pnc_expired_certificate
    assert not knobs.pnc_wrong_challenge
    with pytest.raises(ValueError, match="go together"):
        config_from_args(build_parser().parse_args(["--iface", "v", "--contract-chain",
                                                    str(chain)]))
    with pytest.raises(ValueError, match="contract credential"):
        config_from_args(build_parser().parse_args(["--iface", "v", "--contract-chain",
                                                    str(chain), "--contract-key", str(chain)]))


def test_ac_pnc_session_with_signed_metering_receipts_runs_to_the_end(contract):
    session = ac_session()
    evcc = car(contract, mode="ac")
    action, _ = run_until(evcc, session, stop_at=None)
    assert isinstance(action, Finished) and action.record.ok, action.record.failure
    assert action.record.metering_receipts >= 1
    assert session.state == "Terminated"


@pytest.mark.parametrize("signer", ["vehicle key", "unsigned"])
def test_receipt_not_signed_by_the_contract_gets_FAILED_MeteringSignatureNotValid(
        contract, test_pki, signer):
    session = ac_session()
    run_until(car(contract, mode="ac"), session, stop_at="MeteringReceipt")
    assert session.state == "ChargingStatus"
    receipt = M.MeteringReceiptReqType(id="MR1", session_id=session.session_id,
                                       meter_info=M.MeterInfoType(meter_id="M", meter_reading=5))
    signature = xmldsig.sign([receipt], test_pki.vehicle_leaf.key) \
        if signer == "vehicle key" else None
    msg = M.V2G_Message(header=M.MessageHeaderType(session_id=session.session_id,
                                                   signature=signature),
                        body=M.BodyType(metering_receipt_req=receipt))
    request = Iso2Adapter().decode(PayloadType.EXI, exi_schemas.encode(msg))
    reply = session.receive(request.name, request.body, 9.0, request.session_id)
    assert reply.response.response_code == "FAILED_MeteringSignatureNotValid"
