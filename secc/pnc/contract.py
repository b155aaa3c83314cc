"""The contract certificate chain of PaymentDetailsReq: parse, check, and what OCPP needs.

The EV sends its contract certificate (leaf, CN = eMAID) and up to two MO sub-CAs as DER.
This module turns those bytes into a ``ContractChain`` and checks what the SECC can check on
its own; the eMSP's verdict (revocation, contract validity) comes from the CSMS through OCPP
``Authorize`` with the OCSP request data built here, or with the PEM chain when the data cannot
be built (a certificate without an OCSP responder URL exists in the field; FIELD_NOTES).

Every problem is a ``SessionFailure``: an unparseable certificate is FAILED_CertChainError,
never an exception escaping into the session (another stack crashes here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from secc.common.lazy import lazy_module
from secc.common.pki.chain import MAX_SUB_CAS, CertificateRejected, RejectReason, verify_chain
from secc.common.pki.hash_data import certificate_hash_data
from secc.v2g.failures import Failure, SessionFailure

ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")
x509 = lazy_module("cryptography.x509")

#: RejectReason of the chain check -> why the request fails (one table).
REJECT_FAILURES: dict[RejectReason, Failure] = {
    RejectReason.EXPIRED: Failure.CERTIFICATE_EXPIRED,
    RejectReason.NOT_YET_VALID: Failure.CERT_CHAIN_ERROR,
    RejectReason.UNKNOWN_ISSUER: Failure.CERT_CHAIN_ERROR,
    RejectReason.BAD_SIGNATURE: Failure.CERT_CHAIN_ERROR,
    RejectReason.NOT_A_CA: Failure.CERT_CHAIN_ERROR,
    RejectReason.KEY_USAGE: Failure.CERT_CHAIN_ERROR,
    RejectReason.PATH_LENGTH: Failure.CERT_CHAIN_ERROR,
    RejectReason.CHAIN_TOO_LONG: Failure.CERT_CHAIN_ERROR,
    RejectReason.MALFORMED: Failure.CERT_CHAIN_ERROR,
}

#: OCPP 2.0.1 OCSPRequestDataType.responderURL maxLength.
MAX_RESPONDER_URL = 512


def normalize_emaid(emaid: str) -> str:
    """eMAIDs are compared without hyphens and case (``DE-PYS-C12345678-X`` = ``DEPYSC...X``);
    OCPP carries them without hyphens (FIELD_NOTES)."""
    return emaid.replace("-", "").strip().upper()


#: eMAID length without its optional check digit (ISO 15118-2 Annex H / DIN SPEC 91286).
EMAID_LENGTH = 14


def same_emaid(one: str, other: str) -> bool:
    """The same contract: equal without hyphens and case, or equal but for the optional
    check digit one side carries (a PaymentDetailsReq eMAID of 15 characters against a
    certificate CN of 14 is seen in test vectors and the field)."""
    a, b = sorted((normalize_emaid(one), normalize_emaid(other)), key=len)
    return a == b or (len(a) == EMAID_LENGTH and len(b) == EMAID_LENGTH + 1
                      and b.startswith(a))


@dataclass(frozen=True)
class ContractChain:
    """A parsed contract chain: leaf first, then sub-CAs as the EV sent them (issuer order)."""

    leaf: x509.Certificate
    sub_cas: tuple[x509.Certificate, ...]

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return (self.leaf, *self.sub_cas)

    @property
    def emaid(self) -> str:
        """The eMAID the certificate names: the leaf subject's CN."""
        names = self.leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        value = names[0].value if names else ""
        return value if isinstance(value, str) else value.decode(errors="replace")

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.leaf.public_key()  # type: ignore[return-value]  # checked when parsed

    @property
    def pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode()
                       for c in self.certificates)


def read_every_field(cert: x509.Certificate) -> None:
    """``cryptography`` parses names, validity, keys and extensions only when first read: a
    certificate that loads can still raise later (ValueError, even KeyError for an unknown
    string tag in the subject) deep inside a check. Read all of it once, at the door."""
    cert.public_key()
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    _ = (cert.not_valid_before_utc, cert.not_valid_after_utc, cert.serial_number,
         cert.signature_hash_algorithm, cert.tbs_certificate_bytes, cert.signature)
    for extension in cert.extensions:
        _ = extension.value


def parse_contract_chain(leaf_der: bytes, sub_ca_ders: Sequence[bytes] = ()) -> ContractChain:
    """DER bytes from ContractSignatureCertChain -> ``ContractChain``.

    Garbage, a non-EC key or too many sub-CAs are FAILED_CertChainError."""
    if len(sub_ca_ders) > MAX_SUB_CAS:
        raise SessionFailure(Failure.CERT_CHAIN_ERROR,
                             f"{len(sub_ca_ders)} sub-CAs, at most {MAX_SUB_CAS}")
    certificates = []
    for index, der in enumerate((leaf_der, *sub_ca_ders)):
        what = "contract certificate" if index == 0 else f"sub-CA {index}"
        try:
            cert = x509.load_der_x509_certificate(bytes(der))
            read_every_field(cert)
        except Exception as exc:  # noqa: BLE001 - any parse error of EV data is one failure
            raise SessionFailure(Failure.CERT_CHAIN_ERROR,
                                 f"{what} is not a valid X.509 certificate: "
                                 f"{type(exc).__name__}: {exc}") from None
        certificates.append(cert)
    if not isinstance(certificates[0].public_key(), ec.EllipticCurvePublicKey):
        raise SessionFailure(Failure.CERT_CHAIN_ERROR, "contract certificate key is not ECDSA")
    return ContractChain(certificates[0], tuple(certificates[1:]))


def check_contract(chain: ContractChain, emaid: str, *, now: dt.datetime,
                   mo_roots: Sequence[x509.Certificate] = ()) -> None:
    """What the SECC checks itself before asking the eMSP.

    * the eMAID of PaymentDetailsReq is the one the certificate names;
    * validity periods, issuer signatures and CA constraints along the chain;
    * the anchor, when an MO root of that name is installed (``mo_roots``). Without one the
      chain is not rejected here: the CSMS validates it (OCPP C07 central validation).
    """
    named = chain.emaid
    if not same_emaid(named, emaid):
        raise SessionFailure(Failure.CERT_CHAIN_ERROR,
                             f"eMAID {emaid!r} is not the certificate's {named!r}")
    try:
        anchors = [root for root in mo_roots
                   if root.subject == chain.certificates[-1].issuer]
        if anchors:
            verify_chain(chain.leaf, chain.sub_cas, anchors, now)
        elif chain.sub_cas:  # check up to the top sub-CA, which stands in as the anchor
            verify_chain(chain.leaf, chain.sub_cas[:-1], chain.sub_cas[-1:], now)
        else:
            _check_leaf_alone(chain, now)
    except CertificateRejected as rejected:
        raise SessionFailure(REJECT_FAILURES[rejected.reason], str(rejected)) from None


def _check_leaf_alone(chain: ContractChain, now: dt.datetime) -> None:
    leaf = chain.leaf
    if now > leaf.not_valid_after_utc:
        raise CertificateRejected(RejectReason.EXPIRED,
                                  f"expired {leaf.not_valid_after_utc:%Y-%m-%d}")
    if now < leaf.not_valid_before_utc:
        raise CertificateRejected(RejectReason.NOT_YET_VALID,
                                  f"valid from {leaf.not_valid_before_utc:%Y-%m-%d}")


def load_mo_roots(path: Path) -> list[x509.Certificate]:
    """Installed MO roots from a PEM file (e.g. ``[v2g].certificate_dir/mo_root.pem``);
    none when the file is absent: the CSMS then validates contract chains."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        return []


def ocsp_responder_url(cert: x509.Certificate) -> str | None:
    """The OCSP access location of the Authority Information Access extension, if any."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for description in aia:
        if (description.access_method == x509.AuthorityInformationAccessOID.OCSP
                and isinstance(description.access_location, x509.UniformResourceIdentifier)):
            return description.access_location.value
    return None


def ocsp_entry(cert: x509.Certificate, issuer: x509.Certificate, url: str) -> dict[str, str]:
    """OCPP 2.0.1 OCSPRequestDataType of ``cert`` issued by ``issuer`` (SHA256)."""
    return {**certificate_hash_data(cert, issuer), "responderURL": url}


def ocsp_request_data(chain: ContractChain,
                      mo_roots: Sequence[x509.Certificate] = ()) -> list[dict[str, str]]:
    """OCSP request data for the leaf and every sub-CA — or ``[]`` when it cannot be complete.

    Complete means: each certificate has an OCSP URL (<= 512 chars) and each issuer's key is
    known (the top sub-CA's issuer is the MO root, so that root must be installed). An
    incomplete list would let the CSMS check only part of the chain, so the caller then sends
    the PEM chain instead (OCPP C07 fallback)."""
    certificates = chain.certificates
    top_issuer = next((root for root in mo_roots if root.subject == certificates[-1].issuer),
                      None)
    entries = []
    for index, cert in enumerate(certificates):
        issuer = certificates[index + 1] if index + 1 < len(certificates) else top_issuer
        url = ocsp_responder_url(cert)
        if issuer is None or url is None or len(url) > MAX_RESPONDER_URL:
            return []
        entries.append(ocsp_entry(cert, issuer, url))
    return entries
