"""XML signatures over EXI made and checked by Josev's own code (PyPI ``iso15118``).

Run by Josev's interpreter (``interop/.venv-josev``), never by ours: it imports Josev's message
models, its EXI codec (the EXIficient jar, through py4j; needs ``java``) and its
``create_signature`` / ``verify_signature`` (``iso15118.shared.security``).

``make OUT.json``   Josev builds, EXI-encodes and signs one message per case (ISO 15118-2
                    AuthorizationReq, MeteringReceiptReq, CertificateInstallationRes; ISO 15118-20
                    AuthorizationReq (PnC), MeteringConfirmationReq, CertificateInstallationRes)
                    with a fresh P-256 key and writes, per case, the signed elements' EXI
                    fragments, the SignedInfo fragment, the SignatureValue, the whole message's
                    EXI and the signer's certificate (DER). ``tests/pnc/josev_signature_vectors
                    .json`` was made this way; ``tests/pnc/test_signature_interop.py`` checks
                    that our codec verifies every one of them.
``verify IN.json``  the other direction: for each case (a message EXI-encoded and signed by us,
                    and the signer's certificate), Josev decodes the message, EXI-encodes the
                    signed elements with its codec and runs its ``verify_signature``; prints one
                    JSON object per case: ``{"case", "verified", "signed_info_exi", "error"}``.

Josev's ``EXI.to_exi`` names the fragment's element by ``str(model)``; two -20 models lack that
``__str__`` (``SignedMeteringData``, ``SignedInstallationData``), so this script gives them one
(the bytes still come from Josev's jar).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

logging.disable(logging.CRITICAL)  # Josev logs every message it encodes

from iso15118.shared import settings as josev_settings  # noqa: E402

josev_settings.shared_settings.update({
    josev_settings.SettingKey.MESSAGE_LOG_JSON: False,
    josev_settings.SettingKey.MESSAGE_LOG_EXI: False,
    josev_settings.SettingKey.PKI_PATH: os.getcwd()})

from iso15118.shared.exi_codec import EXI  # noqa: E402
from iso15118.shared.messages.enums import Namespace  # noqa: E402
from iso15118.shared.messages.iso15118_2 import body as b2  # noqa: E402
from iso15118.shared.messages.iso15118_2 import datatypes as d2  # noqa: E402
from iso15118.shared.messages.iso15118_2.header import MessageHeader as Header2  # noqa: E402
from iso15118.shared.messages.iso15118_2.msgdef import V2GMessage as Message2  # noqa: E402
from iso15118.shared.messages.iso15118_20 import common_messages as c20  # noqa: E402
from iso15118.shared.messages.iso15118_20 import common_types as t20  # noqa: E402
from iso15118.shared.security import create_signature, verify_signature  # noqa: E402

ISO2 = Namespace.ISO_V2_MSG_DEF
ISO20 = Namespace.ISO_V20_COMMON_MSG
SESSION = "0102030405060708"


class SignedMeteringData(c20.SignedMeteringData):
    def __str__(self) -> str:
        return "SignedMeteringData"


class SignedInstallationData(c20.SignedInstallationData):
    def __str__(self) -> str:
        return "SignedInstallationData"


def self_signed(key: ec.EllipticCurvePrivateKey, cn: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def case(name: str, protocol: str, elements: list[tuple[str, Any, str]], build: Any,
         key: ec.EllipticCurvePrivateKey, cert: bytes) -> dict[str, Any]:
    """Sign ``elements`` [(Id, model, element name)] with Josev's code; ``build(signature)``
    returns (model, namespace) of the whole message."""
    ns = ISO2 if protocol == "iso2" else ISO20
    fragments = [(element_id, EXI().to_exi(model, ns)) for element_id, model, _ in elements]
    signature = create_signature(fragments, key)
    message, message_ns = build(signature)
    return {
        "case": name, "protocol": protocol,
        "elements": [{"id": i, "element": e, "exi": f.hex()}
                     for (i, _, e), (_, f) in zip(elements, fragments)],
        "signed_info_exi": EXI().to_exi(signature.signed_info, Namespace.XML_DSIG).hex(),
        "signature_value": bytes(signature.signature_value.value).hex(),
        "message_exi": EXI().to_exi(message, message_ns).hex(),
        "signer_cert_der": cert.hex(),
    }


def make_cases() -> list[dict[str, Any]]:
    out = []
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "josev-vector-contract")
    sub = self_signed(ec.generate_private_key(ec.SECP256R1()), "josev-vector-sub")

    # ISO 15118-2 AuthorizationReq (§8.4.3.7, signed with the contract key)
    auth = b2.AuthorizationReq(id="ID1", gen_challenge=bytes(range(16, 32)))
    out.append(case("iso2-AuthorizationReq", "iso2", [("ID1", auth, "AuthorizationReq")],
                    lambda sig: (Message2(header=Header2(session_id=SESSION, signature=sig),
                                          body=b2.Body(authorization_req=auth)), ISO2),
                    key, cert))
    # ISO 15118-2 MeteringReceiptReq (§8.4.3.13)
    receipt = b2.MeteringReceiptReq(id="MR1", session_id=SESSION, sa_schedule_tuple_id=1,
                                    meter_info=d2.MeterInfo(meter_id="JOSEV-METER",
                                                            meter_reading=12345,
                                                            t_meter=1767225600))
    out.append(case("iso2-MeteringReceiptReq", "iso2", [("MR1", receipt, "MeteringReceiptReq")],
                    lambda sig: (Message2(header=Header2(session_id=SESSION, signature=sig),
                                          body=b2.Body(metering_receipt_req=receipt)), ISO2),
                    key, cert))
    # ISO 15118-2 CertificateInstallationRes (§8.4.3.11.3, the CPS signs four elements)
    cps_key = ec.generate_private_key(ec.SECP256R1())
    cps_cert = self_signed(cps_key, "josev-vector-cps")
    chain = d2.CertificateChain(id="id1", certificate=cert,
                                sub_certificates=d2.SubCertificates(certificates=[sub]))
    epk = d2.EncryptedPrivateKey(id="id2", value=bytes(range(48)))
    dhp = d2.DHPublicKey(id="id3", value=b"\x04" + bytes(range(64)))
    emaid = d2.EMAID(id="id4", value="DEPYS1234567890")
    install = b2.CertificateInstallationRes(
        response_code="OK", cps_cert_chain=d2.CertificateChain(certificate=cps_cert),
        contract_cert_chain=chain, encrypted_private_key=epk, dh_public_key=dhp, emaid=emaid)
    out.append(case("iso2-CertificateInstallationRes", "iso2",
                    [("id1", chain, "ContractSignatureCertChain"),
                     ("id2", epk, "ContractSignatureEncryptedPrivateKey"),
                     ("id3", dhp, "DHpublickey"), ("id4", emaid, "eMAID")],
                    lambda sig: (Message2(header=Header2(session_id=SESSION, signature=sig),
                                          body=b2.Body(certificate_installation_res=install)),
                                 ISO2),
                    cps_key, cps_cert))

    # ISO 15118-20 AuthorizationReq, PnC (§8.3.4.3.3; Josev signs with ECDSA-SHA256)
    header = t20.MessageHeader(session_id=SESSION, timestamp=1767225600)
    pnc = c20.PnCAuthReqParams(id="id1", gen_challenge=bytes(range(32, 48)),
                               contract_cert_chain=c20.ContractCertificateChain(
                                   certificate=cert,
                                   sub_certificates=c20.SubCertificates(certificates=[sub])))

    def auth20(sig: Any) -> tuple[Any, str]:
        return c20.AuthorizationReq(header=header.copy(update={"signature": sig}),
                                    selected_auth_service="PnC", pnc_params=pnc), ISO20
    out.append(case("iso20-AuthorizationReq", "iso20",
                    [("id1", pnc, "PnC_AReqAuthorizationMode")], auth20, key, cert))
    # ISO 15118-20 MeteringConfirmationReq (§8.3.4.3.11.2)
    smd = SignedMeteringData(id="id1", session_id=SESSION, meter_info=t20.MeterInfo(
        meter_id="JOSEV-METER", charged_energy_reading_wh=4321),
        scheduled_smart_meter_data=c20.ScheduledSignedMeterData(selected_schedule_tuple_id=1))

    def confirm20(sig: Any) -> tuple[Any, str]:
        return c20.MeteringConfirmationReq(header=header.copy(update={"signature": sig}),
                                           signed_metering_data=smd), ISO20
    out.append(case("iso20-MeteringConfirmationReq", "iso20",
                    [("id1", smd, "SignedMeteringData")], confirm20, key, cert))
    # ISO 15118-20 CertificateInstallationRes (§8.3.4.3.9.3, the CPS signs SignedInstallationData)
    sid = SignedInstallationData(
        id="id1", contract_cert_chain=c20.ContractCertificateChain(
            certificate=cert, sub_certificates=c20.SubCertificates(certificates=[sub])),
        ecdh_curve="SECP521", dh_public_key=b"\x04" + bytes(range(132)),
        secp521_encrypted_private_key=bytes(range(94)))

    def install20(sig: Any) -> tuple[Any, str]:
        return c20.CertificateInstallationRes(
            header=header.copy(update={"signature": sig}), response_code="OK",
            evse_processing="Finished",
            cps_certificate_chain=c20.CertificateChain(certificate=cps_cert),
            signed_installation_data=sid, remaining_contract_cert_chains=0), ISO20
    out.append(case("iso20-CertificateInstallationRes", "iso20",
                    [("id1", sid, "SignedInstallationData")], install20, cps_key, cps_cert))
    return out


# --- the other direction: our signatures, Josev's check ----------------------------------------

#: (case prefix) -> how to find the signed elements in Josev's decoded message dict:
#: [(path of keys to the element, Josev model, element name)]
SIGNED_PATHS: dict[str, list[tuple[tuple[str, ...], Any]]] = {
    "iso2-AuthorizationReq": [(("V2G_Message", "Body", "AuthorizationReq"), b2.AuthorizationReq)],
    "iso2-MeteringReceiptReq": [(("V2G_Message", "Body", "MeteringReceiptReq"),
                                 b2.MeteringReceiptReq)],
    "iso2-CertificateInstallationRes": [
        (("V2G_Message", "Body", "CertificateInstallationRes", "ContractSignatureCertChain"),
         d2.CertificateChain),
        (("V2G_Message", "Body", "CertificateInstallationRes",
          "ContractSignatureEncryptedPrivateKey"), d2.EncryptedPrivateKey),
        (("V2G_Message", "Body", "CertificateInstallationRes", "DHpublickey"), d2.DHPublicKey),
        (("V2G_Message", "Body", "CertificateInstallationRes", "eMAID"), d2.EMAID)],
    "iso20-AuthorizationReq": [(("AuthorizationReq", "PnC_AReqAuthorizationMode"),
                                c20.PnCAuthReqParams)],
    "iso20-MeteringConfirmationReq": [(("MeteringConfirmationReq", "SignedMeteringData"),
                                       SignedMeteringData)],
    "iso20-CertificateInstallationRes": [(("CertificateInstallationRes",
                                           "SignedInstallationData"), SignedInstallationData)],
}


def verify_case(vector: dict[str, Any]) -> dict[str, Any]:
    from iso15118.shared.exi_codec import CustomJSONDecoder
    from iso15118.shared.messages.xmldsig import Signature

    name = vector["case"]
    ns = ISO2 if vector["protocol"] == "iso2" else ISO20
    result: dict[str, Any] = {"case": name, "verified": False, "signed_info_exi": "",
                              "error": ""}
    try:
        codec = EXI().get_exi_codec()
        decoded = json.loads(codec.decode(bytes.fromhex(vector["message_exi"]), ns),
                             cls=CustomJSONDecoder)
        root = decoded["V2G_Message"] if "V2G_Message" in decoded else next(iter(
            decoded.values()))
        signature = Signature.parse_obj(root["Header"]["Signature"])
        elements = []
        for path, model in SIGNED_PATHS[name]:
            node: Any = decoded
            for key in path:
                node = node[key]
            element = model.parse_obj(node)
            elements.append((element.id, EXI().to_exi(element, ns)))
        result["signed_info_exi"] = EXI().to_exi(signature.signed_info,
                                                 Namespace.XML_DSIG).hex()
        result["verified"] = bool(verify_signature(
            signature, elements, bytes.fromhex(vector["signer_cert_der"])))
    except Exception as exc:  # reported to the test, which fails on it
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def main() -> int:
    command, path = sys.argv[1], sys.argv[2]
    EXI().get_exi_codec()  # starts Josev's default codec (the EXIficient jar in a JVM)
    if command == "make":
        vectors = make_cases()
        with open(path, "w") as f:
            json.dump({"made_by": "interop/josev_signatures.py make (Josev iso15118 "
                                  f"{__import__('importlib.metadata').metadata.version('iso15118')}"
                                  f", {time.strftime('%Y-%m-%d')})",
                       "vectors": vectors}, f, indent=1)
            f.write("\n")
        print(f"{len(vectors)} vectors written to {path}")
        return 0
    if command == "verify":
        with open(path) as f:
            vectors = json.load(f)
        for vector in vectors:
            print(json.dumps(verify_case(vector)), flush=True)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
