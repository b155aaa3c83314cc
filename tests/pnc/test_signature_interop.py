"""XML signatures over EXI against an independent encoder: Josev's (PyPI ``iso15118``, whose
EXI codec is the EXIficient jar) — ISO 15118-2 and -20, AuthorizationReq, MeteringReceiptReq /
MeteringConfirmationReq and CertificateInstallationRes.

Theirs, verified by us: ``josev_signature_vectors.json`` was made by Josev's own code
(``interop/josev_signatures.py make``, run with Josev's venv and Java; how to remake it is in
``docs/pnc.md``): per case the signed elements' EXI fragments, the SignedInfo fragment, the
SignatureValue and the whole message, all from Josev's codec and ``create_signature``. Our codec
must reproduce every fragment byte for byte and our checks must accept every signature.

Ours, verified by them: the same six messages built, encoded and signed by us, handed to
``josev_signatures.py verify``, which decodes them with Josev's codec, re-encodes the signed
elements and runs Josev's ``verify_signature``. Runs where ``interop/.venv-josev`` (``make
interop``) and ``java`` exist; skips with the reason elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import exi_schemas as exi
from exi_schemas.generated import iso2 as M2
from exi_schemas.generated import iso20 as M20
from secc.pnc import installation, xmldsig

HERE = Path(__file__).parent
REPO = HERE.parent.parent
VECTORS = json.loads((HERE / "josev_signature_vectors.json").read_text())["vectors"]
JOSEV_PY = REPO / "interop" / ".venv-josev" / "bin" / "python"
JOSEV_TOOL = REPO / "interop" / "josev_signatures.py"
SESSION = bytes.fromhex("0102030405060708")


def decode_message(vector):
    """(signature, {Id: signed element}, the body/message) of a vector's whole message."""
    data = bytes.fromhex(vector["message_exi"])
    if vector["protocol"] == "iso2":
        message = exi.decode(data, "iso2")
        _, body = exi.body_element(message)
        signature = message.header.signature
        if isinstance(body, M2.CertificateInstallationResType):
            signed = {f.id: f for f in (body.contract_signature_cert_chain,
                                        body.contract_signature_encrypted_private_key,
                                        body.d_hpublickey, body.e_maid)}
        else:
            signed = {body.id: body}
        return signature, signed, body
    _, message = exi.decode_element(data, "iso20")
    element = (getattr(message, "pn_c_a_req_authorization_mode", None)
               or getattr(message, "signed_metering_data", None)
               or message.signed_installation_data)
    return message.header.signature, {element.id: element}, message


#: Josev's codec hashes -20 SignedMeteringData and SignedInstallationData (global elements) as
#: EXI *documents* (its jar encodes a non-global element such as PnC_AReqAuthorizationMode as
#: a fragment, a global one as a document), where we, like libcbv2g, hash the element fragment:
#: the signature over SignedInfo holds, the digest differs (docs/pnc.md).
JOSEV_DIGESTS_A_DOCUMENT = {"iso20-MeteringConfirmationReq", "iso20-CertificateInstallationRes"}


def signer_key(vector):
    return x509.load_der_x509_certificate(bytes.fromhex(vector["signer_cert_der"])).public_key()


def test_vectors_cover_both_standards_and_all_three_signed_messages():
    cases = {v["case"] for v in VECTORS}
    assert cases == {f"{p}-{m}" for p, m in (
        ("iso2", "AuthorizationReq"), ("iso2", "MeteringReceiptReq"),
        ("iso2", "CertificateInstallationRes"), ("iso20", "AuthorizationReq"),
        ("iso20", "MeteringConfirmationReq"), ("iso20", "CertificateInstallationRes"))}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["case"] for v in VECTORS])
def test_our_codec_reproduces_josevs_fragments_and_verifies_its_signature(vector):
    signature, signed, body = decode_message(vector)
    # the SignedInfo we hash is the one Josev signed: xmldsig fragment grammar (808112b4...)
    assert exi.encode_fragment(signature.signed_info).hex() == vector["signed_info_exi"]
    assert vector["signed_info_exi"].startswith("808112b4")
    assert signature.signature_value.value.hex() == vector["signature_value"]
    key = signer_key(vector)
    if vector["case"] in JOSEV_DIGESTS_A_DOCUMENT:
        (element,) = vector["elements"]
        assert exi.encode(signed[element["id"]]).hex() == element["exi"]
        assert exi.encode_fragment(signed[element["id"]]).hex() != element["exi"]
        with pytest.raises(xmldsig.BadDigest):
            xmldsig.verify(signature, signed, key)
        key.verify(xmldsig.raw_to_der(signature.signature_value.value, 32),
                   bytes.fromhex(vector["signed_info_exi"]), ec.ECDSA(hashes.SHA256()))
        return
    for element in vector["elements"]:
        ours = exi.encode_fragment(signed[element["id"]], element=element["element"])
        assert ours.hex() == element["exi"], element["element"]
    if vector["case"] == "iso2-CertificateInstallationRes":
        installation.verify_response_signature(body, signature, key)  # the car's check
    else:
        xmldsig.verify(signature, signed, key)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["case"] for v in VECTORS])
def test_a_changed_josev_signature_is_refused(vector):
    signature, signed, body = decode_message(vector)
    value = bytearray(signature.signature_value.value)
    value[5] ^= 0x01
    signature.signature_value.value = bytes(value)
    with pytest.raises(xmldsig.BadDigest if vector["case"] in JOSEV_DIGESTS_A_DOCUMENT
                       else xmldsig.BadSignature):
        if vector["case"] == "iso2-CertificateInstallationRes":
            installation.verify_response_signature(body, signature, signer_key(vector))
        else:
            xmldsig.verify(signature, signed, signer_key(vector))


def test_iso2_signed_info_with_the_message_grammar_does_not_verify():
    """The bug of issue 11, kept visible: hashing SignedInfo with the iso2 message grammar
    (80 d0 44 ...) does not give what Josev signed."""
    vector = next(v for v in VECTORS if v["case"] == "iso2-AuthorizationReq")
    signature, _, _ = decode_message(vector)
    wrong = exi.encode_fragment(signature.signed_info, xmldsig=False)
    assert wrong.hex().startswith("80d044") and wrong.hex() != vector["signed_info_exi"]
    der = xmldsig.raw_to_der(signature.signature_value.value, 32)
    with pytest.raises(InvalidSignature):
        signer_key(vector).verify(der, wrong, ec.ECDSA(hashes.SHA256()))


def test_emaid_fragment_uses_the_relaxed_grammar_both_ways():
    """eMAID is declared with two types in ISO 15118-2, so its element fragment is encoded
    with EXI's relaxed element fragment grammar (what Josev hashes for the CPS signature)."""
    vector = next(v for v in VECTORS if v["case"] == "iso2-CertificateInstallationRes")
    theirs = bytes.fromhex(next(e["exi"] for e in vector["elements"] if e["element"] == "eMAID"))
    name, emaid = exi.decode_fragment(theirs, "iso2")
    assert name == "eMAID" and emaid.id == "id4"
    assert exi.encode_fragment(emaid) == theirs
    with pytest.raises(exi.ExiDecodeError):
        exi.decode_fragment(theirs[:-3], "iso2")


# --- ours, checked by Josev ---------------------------------------------------------------------


def our_messages(test_pki) -> list[dict]:
    """The six cases, built, encoded and signed by us (P-256 / ECDSA-SHA256: what Josev's
    ``verify_signature`` implements, also for -20)."""
    contract = test_pki.issue_contract()
    key, cert_der = contract.leaf.key, contract.leaf.cert_der
    subs = list(contract.sub_ca_ders)
    cps_key = ec.generate_private_key(ec.SECP256R1())
    cps = test_pki.issue_leaf(test_pki.v2g_root, "CPS leaf", "pysecc CPS", domain="CPS")
    cps_key, cps_der = cps.key, cps.cert_der
    out = []

    def iso2(case, body_field, body, signature, signer_der):
        message = M2.V2G_Message(header=M2.MessageHeaderType(session_id=SESSION,
                                                             signature=signature),
                                 body=M2.BodyType(**{body_field: body}))
        out.append({"case": case, "protocol": "iso2", "message_exi": exi.encode(message).hex(),
                    "signer_cert_der": signer_der.hex()})

    auth = M2.AuthorizationReqType(id="ID1", gen_challenge=bytes(range(16)))
    iso2("iso2-AuthorizationReq", "authorization_req", auth, xmldsig.sign([auth], key), cert_der)
    receipt = M2.MeteringReceiptReqType(id="MR1", session_id=SESSION, sa_schedule_tuple_id=1,
                                        meter_info=M2.MeterInfoType(meter_id="PYSECC-METER",
                                                                    meter_reading=777))
    iso2("iso2-MeteringReceiptReq", "metering_receipt_req", receipt,
         xmldsig.sign([receipt], key), cert_der)
    body, signature = installation.build_installation_response(
        contract_der=cert_der, contract_sub_ders=subs, contract_key=key,
        emaid=test_pki.emaid, cps_der=cps_der, cps_sub_ders=[], cps_key=cps_key,
        recipient=test_pki.vehicle_leaf.cert.public_key())
    iso2("iso2-CertificateInstallationRes", "certificate_installation_res", body, signature,
         cps_der)

    header = M20.MessageHeaderType(session_id=SESSION, time_stamp=1767225600)
    chain20 = M20.ContractCertificateChainType(
        certificate=cert_der, sub_certificates=M20.SubCertificatesType(certificate=subs))
    mode = M20.PnC_AReqAuthorizationModeType(id="id1", gen_challenge=bytes(range(16)),
                                             contract_certificate_chain=chain20)
    smd = M20.SignedMeteringDataType(
        id="id1", session_id=SESSION,
        meter_info=M20.MeterInfoType(meter_id="PYSECC-METER", charged_energy_reading_wh=4321),
        scheduled_smdt_control_mode=M20.Scheduled_SMDTControlModeType(
            selected_schedule_tuple_id=1))
    sid = M20.SignedInstallationDataType(
        id="id1", contract_certificate_chain=chain20, ecdh_curve="SECP521",
        dh_public_key=b"\x04" + bytes(range(132)), secp521_encrypted_private_key=bytes(94))
    messages20 = [
        ("iso20-AuthorizationReq", M20.AuthorizationReqType(
            header=dataclasses.replace(header, signature=xmldsig.sign([mode], key)),
            selected_authorization_service="PnC", pn_c_a_req_authorization_mode=mode),
         cert_der),
        ("iso20-MeteringConfirmationReq", M20.MeteringConfirmationReqType(
            header=dataclasses.replace(header, signature=xmldsig.sign([smd], key)),
            signed_metering_data=smd), cert_der),
        ("iso20-CertificateInstallationRes", M20.CertificateInstallationResType(
            header=dataclasses.replace(header, signature=xmldsig.sign([sid], cps_key)),
            response_code="OK", evse_processing="Finished",
            cps_certificate_chain=M20.CertificateChainType(certificate=cps_der),
            signed_installation_data=sid, remaining_contract_certificate_chains=0), cps_der),
    ]
    for case, message, signer_der in messages20:
        out.append({"case": case, "protocol": "iso20",
                    "message_exi": exi.encode(message).hex(),
                    "signer_cert_der": signer_der.hex()})
    return out


def josev_verify(cases: list[dict], tmp_path: Path) -> dict[str, dict]:
    if not JOSEV_PY.exists():
        pytest.skip(f"Josev's venv {JOSEV_PY.parent.parent} is absent (`make interop` builds it)")
    if shutil.which("java") is None:
        pytest.skip("Josev's EXI codec is a Java jar and no `java` is on PATH")
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(cases))
    proc = subprocess.run([str(JOSEV_PY), str(JOSEV_TOOL), "verify", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {r["case"]: r for r in map(json.loads, proc.stdout.splitlines())}


def test_josev_verifies_our_signatures(test_pki, tmp_path):
    cases = our_messages(test_pki)
    results = josev_verify(cases, tmp_path)
    assert set(results) == {c["case"] for c in cases}
    for case, result in results.items():
        if case in JOSEV_DIGESTS_A_DOCUMENT:  # Josev's digest is not over the fragment
            assert result["verified"] is False and not result["error"], (case, result)
            continue
        assert result["verified"] and not result["error"], (case, result)
        # Josev re-encodes our SignedInfo to the bytes we signed
        signature, _, _ = decode_message(next(c for c in cases if c["case"] == case))
        assert result["signed_info_exi"] == exi.encode_fragment(signature.signed_info).hex()


def test_josev_refuses_our_signature_over_the_wrong_element(test_pki, tmp_path):
    """The negative control of the test above: Josev's check can fail (a signature made over
    another challenge than the message carries)."""
    contract = test_pki.issue_contract()
    auth = M2.AuthorizationReqType(id="ID1", gen_challenge=bytes(range(16)))
    other = M2.AuthorizationReqType(id="ID1", gen_challenge=bytes(16))
    message = M2.V2G_Message(header=M2.MessageHeaderType(
        session_id=SESSION, signature=xmldsig.sign([other], contract.leaf.key)),
        body=M2.BodyType(authorization_req=auth))
    results = josev_verify([{"case": "iso2-AuthorizationReq", "protocol": "iso2",
                             "message_exi": exi.encode(message).hex(),
                             "signer_cert_der": contract.leaf.cert_der.hex()}], tmp_path)
    assert results["iso2-AuthorizationReq"]["verified"] is False
