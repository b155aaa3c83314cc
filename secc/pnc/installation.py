"""ISO 15118-2 CertificateInstallation/Update through OCPP 2.0.1 Get15118EVCertificate.

The SECC is a messenger here (use cases M01/M02): it forwards the car's request, EXI-encoded
as a whole ``V2G_Message`` (header signature included: the eMSP checks it with the OEM
provisioning certificate), base64 in ``exiRequest``, and gets back the eMSP/CPS's
``CertificateInstallationRes`` the same way in ``exiResponse``. The SECC checks only that the
answer is a decodable response of the right kind before handing it to the car.

* ``request_exi`` / ``parse_response_exi``: the two conversions the SECC does.
* ``fetch_certificate``: the bus round trip (bridge -> CSMS) within the car's patience; it
  never raises, every problem is a ``CertificateAnswer`` whose ``reason`` names it.
* ``build_installation_response``: the eMSP/CPS side (test CSMS, tests): contract chain,
  contract key encrypted for the car (``secc.pnc.key_transport``), eMAID, CPS chain, and the
  CPS's header signature over the four signed elements.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import exi_schemas
from exi_schemas.generated import iso2 as M
from secc.common.lazy import lazy_module
from secc.pnc import key_transport, xmldsig
from secc.v2g.core import Reply

crypto_exceptions = lazy_module("cryptography.exceptions")
ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
hashes = lazy_module("cryptography.hazmat.primitives.hashes")


#: OCPP Get15118EVCertificate.iso15118SchemaVersion for ISO 15118-2.
ISO2_SCHEMA_VERSION = "urn:iso:15118:2:2013:MsgDef"
#: OCPP iso15118SchemaVersion of ISO 15118-20 CertificateInstallation (the -20 message set)
ISO20_SCHEMA_VERSION = "urn:iso:std:iso:15118:-20:CommonMessages"
#: V2G_EVCC_Msg_Timeout for CertificateInstallation/Update is 5 s (Table 109); the SECC
#: must answer before it, so the CSMS gets a little less.
CERTIFICATE_TIMEOUT = 4.5
#: bus get_15118_ev_certificate_request.exi_request maxLength (OCPP's exiRequest).
MAX_EXI_REQUEST_CHARS = 5600
#: request element -> (OCPP action, response body field)
ACTIONS = {"CertificateInstallationReq": ("Install", "certificate_installation_res"),
           "CertificateUpdateReq": ("Update", "certificate_update_res")}
#: the four elements the CPS signs in a CertificateInstallation/UpdateRes (§8.4.3.11.3):
#: body field -> element name (CertificateChainType is the type of two elements, so the EXI
#: fragment must be told which one it is)
SIGNED_FIELDS = {"contract_signature_cert_chain": "ContractSignatureCertChain",
                 "contract_signature_encrypted_private_key":
                     "ContractSignatureEncryptedPrivateKey",
                 "d_hpublickey": "DHpublickey",
                 "e_maid": "eMAID"}


class InstallationResponseError(ValueError):
    """An exiResponse that is not a usable Certificate{Installation,Update}Res."""


@dataclass(frozen=True)
class CertificateAnswer:
    """What came back for a RequestCertificate: ``accepted`` with the base64 EXI, or why not.

    ``unavailable`` means the service is missing (no bus, CSMS without the capability,
    timeout) as opposed to the eMSP refusing (``Failed``)."""

    status: str                  # "Accepted" | "Failed" | "Unavailable"
    exi_response: str = ""
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted" and bool(self.exi_response)


# --- the SECC's conversions ---------------------------------------------------------------------
def request_exi(request_name: str, body: Any, signature: Any, session_id: bytes) -> str:
    """base64 of the EXI ``V2G_Message`` carrying the car's request and its header signature:
    the eMSP needs the signature to check the request against the OEM provisioning key."""
    field_name = {"CertificateInstallationReq": "certificate_installation_req",
                  "CertificateUpdateReq": "certificate_update_req"}[request_name]
    message = M.V2G_Message(
        header=M.MessageHeaderType(session_id=session_id, signature=signature),
        body=M.BodyType(**{field_name: body}))
    return base64.b64encode(exi_schemas.encode(message)).decode("ascii")


def _exi_bytes(exi_response: str) -> bytes:
    """The EXI bytes of the CSMS's base64 exiResponse (either schema), or
    ``InstallationResponseError``."""
    try:
        data = base64.b64decode(exi_response, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InstallationResponseError(f"exiResponse is not base64: {exc}") from None
    if not data:
        raise InstallationResponseError("exiResponse is empty")
    return data


def parse_response_exi(exi_response: str, request_name: str) -> tuple[Any, Any]:
    """(response body, header signature) of the CSMS's exiResponse; raises
    ``InstallationResponseError`` naming what is wrong (never anything else)."""
    _, field_name = ACTIONS[request_name]
    data = _exi_bytes(exi_response)
    try:
        message = exi_schemas.decode(data, "iso2")
    except exi_schemas.ExiDecodeError as exc:
        raise InstallationResponseError(f"exiResponse is not ISO 15118-2 EXI: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a codec bug must not crash the session
        raise InstallationResponseError(f"exiResponse cannot be decoded: {exc!r}") from None
    body = getattr(getattr(message, "body", None), field_name, None)
    if body is None:
        raise InstallationResponseError(
            f"exiResponse holds no {request_name[:-3]}Res")
    if str(body.response_code).startswith("OK"):
        if not body.contract_signature_cert_chain.certificate or not body.e_maid.value:
            raise InstallationResponseError("OK response without contract certificate or eMAID")
    return body, message.header.signature


def request_exi_iso20(message: Any) -> str:
    """base64 EXI of the car's -20 CertificateInstallationReq, header signature included (a
    -20 message is its own root; the signature over OEMProvisioningCertificateChain is in it)."""
    return base64.b64encode(exi_schemas.encode(
        message, element="CertificateInstallationReq")).decode("ascii")


def parse_response_exi_iso20(exi_response: str) -> Any:
    """The -20 CertificateInstallationRes of the CSMS's exiResponse, its header (the CPS's
    signature over SignedInstallationData) kept; ``InstallationResponseError`` otherwise."""
    data = _exi_bytes(exi_response)
    try:
        name, message = exi_schemas.decode_element(data, "iso20")
    except exi_schemas.ExiDecodeError as exc:
        raise InstallationResponseError(f"exiResponse is not ISO 15118-20 EXI: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a codec bug must not crash the session
        raise InstallationResponseError(f"exiResponse cannot be decoded: {exc!r}") from None
    if name != "CertificateInstallationRes":
        raise InstallationResponseError(f"exiResponse holds {name}, not "
                                        "CertificateInstallationRes")
    if str(message.response_code).startswith("OK"):
        signed = message.signed_installation_data
        if not signed.contract_certificate_chain.certificate:
            raise InstallationResponseError("OK response without contract certificate")
        if message.header is None or message.header.signature is None:
            raise InstallationResponseError("OK response without the CPS signature")
    return message


# --- the bus round trip -------------------------------------------------------------------------
async def fetch_certificate(client: Any, *, session_id: str, action: str, exi_request: str,
                            schema_version: str = ISO2_SCHEMA_VERSION,
                            timeout: float = CERTIFICATE_TIMEOUT) -> CertificateAnswer:
    """Ask the CSMS through the bridge (``client``: a ``SeccBusClient`` or None)."""
    from secc import contract
    from secc.bus.client import BusRequestError
    from secc.common.mqtt import BusTimeout, BusUnavailable

    if client is None:
        return CertificateAnswer("Unavailable", reason="no bus to an OCPP bridge: contract "
                                 "certificate installation needs a CSMS (Get15118EVCertificate)")
    if len(exi_request) > MAX_EXI_REQUEST_CHARS:
        return CertificateAnswer("Failed", reason=f"exiRequest of {len(exi_request)} chars "
                                 f"exceeds OCPP's {MAX_EXI_REQUEST_CHARS}")
    payload = {"session_id": session_id, "iso15118_schema_version": schema_version,
               "action": action, "exi_request": exi_request}
    try:
        reply = await asyncio.wait_for(
            client.request("get_15118_ev_certificate", payload, timeout), timeout)
    except BusRequestError as exc:
        capability = f" (missing capability: {exc.capability})" if exc.capability else ""
        return CertificateAnswer("Unavailable", reason=f"Get15118EVCertificate: {exc}"
                                 f"{capability}")
    except (BusTimeout, BusUnavailable, asyncio.TimeoutError) as exc:
        return CertificateAnswer("Unavailable", reason=f"Get15118EVCertificate: no answer "
                                 f"within {timeout:.1f} s ({type(exc).__name__})")
    except contract.BusPayloadError as exc:
        return CertificateAnswer("Failed", reason=f"invalid get_15118_ev_certificate data: {exc}")
    except Exception as exc:  # noqa: BLE001 - the car must get an answer, not a dead session
        return CertificateAnswer("Unavailable", reason=f"Get15118EVCertificate: bus error "
                                 f"{exc!r}")
    return CertificateAnswer(reply["status"], reply.get("exi_response", ""),
                             reply.get("reason", ""))


# --- the eMSP / CPS side (test CSMS and tests) ---------------------------------------------------
def _chain(leaf_der: bytes, sub_ders: list[bytes] | tuple[bytes, ...], chain_id: str | None
           ) -> M.CertificateChainType:
    subs = M.SubCertificatesType(certificate=list(sub_ders)) if sub_ders else None
    return M.CertificateChainType(id=chain_id, certificate=leaf_der, sub_certificates=subs)


def build_installation_response(*, contract_der: bytes, contract_sub_ders: list[bytes],
                                contract_key: ec.EllipticCurvePrivateKey, emaid: str,
                                recipient: ec.EllipticCurvePublicKey, cps_der: bytes,
                                cps_sub_ders: list[bytes], cps_key: ec.EllipticCurvePrivateKey,
                                update: bool = False) -> tuple[Any, Any]:
    """(CertificateInstallationRes or UpdateRes, CPS header signature): the contract key is
    encrypted for ``recipient`` (the OEM provisioning certificate's public key)."""
    dh_public, encrypted = key_transport.encrypt_contract_key(contract_key, recipient)
    fields = dict(
        response_code="OK",
        sa_provisioning_certificate_chain=_chain(cps_der, cps_sub_ders, None),
        contract_signature_cert_chain=_chain(contract_der, contract_sub_ders, "id1"),
        contract_signature_encrypted_private_key=M.ContractSignatureEncryptedPrivateKeyType(
            id="id2", value=encrypted),
        d_hpublickey=M.DiffieHellmanPublickeyType(id="id3", value=dh_public),
        e_maid=M.EMAIDType(id="id4", value=emaid))
    body = M.CertificateUpdateResType(**fields) if update \
        else M.CertificateInstallationResType(**fields)
    return body, sign_response(body, cps_key)


def _digest(body: Any, field_name: str) -> bytes:
    try:
        data = exi_schemas.encode_fragment(getattr(body, field_name),
                                           element=SIGNED_FIELDS[field_name])
    except exi_schemas.ExiEncodeError as exc:
        raise xmldsig.BadDigest(f"{SIGNED_FIELDS[field_name]} cannot be encoded: {exc}") \
            from None
    return hashlib.sha256(data).digest()


def sign_response(body: Any, cps_key: ec.EllipticCurvePrivateKey) -> Any:
    """The CPS's header signature over the four signed elements (ECDSA-SHA256 over the EXI
    fragment of SignedInfo, SHA-256 digests of the elements' EXI fragments, as
    ``secc.pnc.xmldsig`` but with the element names given)."""
    references = [M.ReferenceType(
        uri=f"#{getattr(body, f).id}",
        transforms=M.TransformsType(transform=[M.TransformType(
            algorithm=xmldsig.CANONICAL_EXI)]),
        digest_method=M.DigestMethodType(algorithm=xmldsig.SHA256),
        digest_value=_digest(body, f)) for f in SIGNED_FIELDS]
    info = M.SignedInfoType(
        canonicalization_method=M.CanonicalizationMethodType(algorithm=xmldsig.CANONICAL_EXI),
        signature_method=M.SignatureMethodType(algorithm=xmldsig.ECDSA_SHA256),
        reference=references)
    der = cps_key.sign(exi_schemas.encode_fragment(info), ec.ECDSA(hashes.SHA256()))
    return M.SignatureType(signed_info=info, signature_value=M.SignatureValueType(
        value=xmldsig.der_to_raw(der, 32)))


def response_exi(body: Any, signature: Any, session_id: bytes = bytes(8)) -> str:
    """base64 EXI ``V2G_Message`` of a response, as the CSMS puts it in exiResponse."""
    field_name = "certificate_update_res" if isinstance(body, M.CertificateUpdateResType) \
        else "certificate_installation_res"
    message = M.V2G_Message(header=M.MessageHeaderType(session_id=session_id, signature=signature),
                            body=M.BodyType(**{field_name: body}))
    return base64.b64encode(exi_schemas.encode(message)).decode("ascii")


def verify_response_signature(body: Any, signature: Any, cps_public_key: ec.EllipticCurvePublicKey
                              ) -> None:
    """The car's check of the CPS signature: every signed element referenced with the right
    digest, SignatureValue by the CPS key (raises an ``xmldsig.XmlDsigError`` subclass)."""
    if signature is None:
        raise xmldsig.MissingReference("the response carries no Signature")
    info = signature.signed_info
    if info.signature_method.algorithm != xmldsig.ECDSA_SHA256:
        raise xmldsig.UnsupportedAlgorithm(f"SignatureMethod {info.signature_method.algorithm}")
    by_uri = {f"#{getattr(body, f).id}": f for f in SIGNED_FIELDS}
    seen = set()
    for reference in info.reference:
        field_name = by_uri.get(reference.uri or "")
        if field_name is None:
            raise xmldsig.MissingReference(f"Reference {reference.uri!r} names no signed element")
        if reference.digest_method.algorithm != xmldsig.SHA256:
            raise xmldsig.UnsupportedAlgorithm(f"DigestMethod {reference.digest_method.algorithm}")
        if _digest(body, field_name) != reference.digest_value:
            raise xmldsig.BadDigest(f"digest of {reference.uri} does not match")
        seen.add(field_name)
    if seen != set(SIGNED_FIELDS):
        raise xmldsig.MissingReference(f"not signed: {sorted(set(SIGNED_FIELDS) - seen)}")
    der = xmldsig.raw_to_der(signature.signature_value.value, 32)
    try:
        cps_public_key.verify(der, exi_schemas.encode_fragment(info), ec.ECDSA(hashes.SHA256()))
    except crypto_exceptions.InvalidSignature:
        raise xmldsig.BadSignature("SignatureValue does not verify with the CPS key") from None


class CertificateForwarding:
    """The ISO-2 and -20 cores' CertificateInstallation/Update: the request waits for the
    CSMS (the core returns ``RequestCertificate``), then runs again with its answer."""

    pending_certificate: tuple[str, Any, bytes | None] | None = None
    certificate_answer: CertificateAnswer | None = None

    def certificate_answered(self, answer: CertificateAnswer | None, now: float) -> Any:
        """The CSMS's answer (None: the charger cannot ask one): the waiting request runs
        again and its reply is returned (an empty ``Reply`` when nothing waits)."""
        pending, self.pending_certificate = self.pending_certificate, None
        if pending is None or self.terminated:  # type: ignore[attr-defined]
            return Reply()
        self.certificate_answer = answer or CertificateAnswer(
            "Unavailable", reason="this charger cannot reach a CSMS for certificates")
        name, body, session_id = pending
        try:
            return self.receive(name, body, now, session_id)  # type: ignore[attr-defined]
        finally:
            self.certificate_answer = None
