"""Plug & Charge authorization as ISO 15118-20 does it (§8.3.4.3 Authorization, PnC mode).

-20 folds -2's PaymentDetails into AuthorizationReq: the SECC sends a fresh GenChallenge in
AuthorizationSetupRes; the EV answers with ``PnC_AReqAuthorizationMode`` (``Id``, the echoed
GenChallenge, the contract certificate chain) and a header ``Signature`` whose one Reference
is that element's Id, made with the contract key. -20 contract keys are secp521r1, so the
signature is ECDSA-SHA512 with a SHA-512 digest and a 132-byte ``r || s`` SignatureValue
(the shared vectors use exactly ``xmldsig-more#ecdsa-sha512`` and ``xmlenc#sha512``).

This module holds the checks, each a ``SessionFailure`` the -20 session turns into its code:
a GenChallenge that is not ours (WARNING_ChallengeInvalid), a chain that does not parse or
verify (WARNING_CertificateValidationError, ...Expired, ...NotYetValid), a signature that does
not hold (FAILED_SignatureError). The X.509 and XMLDSig work is ``secc.pnc.contract`` and
``secc.pnc.xmldsig``, shared with ISO-2; nothing here is specific to one session class.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.common.lazy import lazy_module
from secc.pnc import xmldsig
from secc.pnc.contract import (
    ContractChain,
    check_contract,
    parse_contract_chain,
    read_every_field,
)
from secc.v2g.failures import Failure, SessionFailure

ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
x509 = lazy_module("cryptography.x509")

#: GenChallengeType: 16 bytes, from ``secrets`` (FIELD_NOTES).
GEN_CHALLENGE_BYTES = 16

#: OCPP certificateStatus named in a CERTIFICATE_REJECTED decision -> why PnC failed.
CERTIFICATE_STATUS_FAILURES: dict[str, Failure] = {
    "CertificateRevoked": Failure.CERTIFICATE_REVOKED,
    "CertificateExpired": Failure.CERTIFICATE_EXPIRED,
    "ContractCancelled": Failure.CONTRACT_CANCELED,
    "NoCertificateAvailable": Failure.NO_CERTIFICATE_AVAILABLE,
    "CertChainError": Failure.CERT_CHAIN_ERROR,
}

#: Signature algorithms by the signer's curve: -20 contract keys are P-521 (SHA-512);
#: a P-256 key (a -2 contract reused) signs with SHA-256.
ALGORITHMS_OF_CURVE: dict[str, tuple[str, str]] = {
    "secp521r1": (xmldsig.SHA512, xmldsig.ECDSA_SHA512),
    "secp384r1": (xmldsig.SHA512, xmldsig.ECDSA_SHA512),
    "secp256r1": (xmldsig.SHA256, xmldsig.ECDSA_SHA256),
}


def check_challenge(received: bytes | None, sent: bytes | None) -> None:
    """[V2G20-2228]: the GenChallenge must be the one of our AuthorizationSetupRes."""
    if sent is None:
        raise SessionFailure(Failure.CHALLENGE_INVALID, "no GenChallenge was sent")
    if received is None or not secrets.compare_digest(bytes(received), sent):
        raise SessionFailure(Failure.CHALLENGE_INVALID, "GenChallenge is not ours")


def contract_of(mode: Any) -> ContractChain:
    """The ``ContractCertificateChain`` of a ``PnC_AReqAuthorizationMode`` as a parsed chain.

    Garbage, a non-EC key or more sub-CAs than ISO 15118 PKIs have are a
    ``SessionFailure(CERT_CHAIN_ERROR)``, never an exception from the X.509 parser."""
    chain = mode.contract_certificate_chain
    if chain is None:
        raise SessionFailure(Failure.CERT_CHAIN_ERROR, "no ContractCertificateChain")
    subs = list(chain.sub_certificates.certificate) if chain.sub_certificates else []
    contract = parse_contract_chain(chain.certificate, subs)
    for index, cert in enumerate(contract.certificates):
        _parse_lazy_fields(cert, "contract certificate" if index == 0 else f"sub-CA {index}")
    return contract


def _parse_lazy_fields(cert: x509.Certificate, what: str) -> None:
    try:
        read_every_field(cert)
    except Exception as exc:  # noqa: BLE001 - any parse error of EV data is one failure
        raise SessionFailure(Failure.CERT_CHAIN_ERROR,
                             f"{what} is not a valid X.509 certificate: "
                             f"{type(exc).__name__}: {exc}") from None


def check_validity(contract: ContractChain, now: dt.datetime) -> None:
    """Validity periods first, because -20 has a code for each (Expired, NotYetValid)."""
    for cert in contract.certificates:
        if now > cert.not_valid_after_utc:
            raise SessionFailure(Failure.CERTIFICATE_EXPIRED,
                                 f"{cert.subject.rfc4514_string()} expired "
                                 f"{cert.not_valid_after_utc:%Y-%m-%d}")
        if now < cert.not_valid_before_utc:
            raise SessionFailure(Failure.CERTIFICATE_NOT_YET_VALID,
                                 f"{cert.subject.rfc4514_string()} valid from "
                                 f"{cert.not_valid_before_utc:%Y-%m-%d}")


def check_contract_chain(contract: ContractChain, *, now: dt.datetime,
                         mo_roots: Sequence[x509.Certificate] = ()) -> None:
    """What the SECC checks itself: validity, issuer signatures and CA constraints, and the
    anchor when that MO root is installed (else the CSMS validates; OCPP C07). -20 has no
    eMAID element in AuthorizationReq: the certificate's CN is the eMAID."""
    check_validity(contract, now)
    try:
        check_contract(contract, contract.emaid, now=now, mo_roots=mo_roots)
    except SessionFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - EV-made certificate content: never a crash
        raise SessionFailure(Failure.CERT_CHAIN_ERROR,
                             f"chain check failed: {type(exc).__name__}: {exc}") from None


def verify_signature(signature: Any, mode: Any, public_key: ec.EllipticCurvePublicKey) -> None:
    """The header ``Signature`` must cover exactly the PnC_AReqAuthorizationMode element (by
    its Id) and verify with the contract leaf's key: FAILED_SignatureError otherwise."""
    if signature is None:
        raise SessionFailure(Failure.SIGNATURE_ERROR, "AuthorizationReq(PnC) is not signed")
    if not mode.id:
        raise SessionFailure(Failure.SIGNATURE_ERROR, "PnC_AReqAuthorizationMode has no Id")
    try:
        xmldsig.verify(signature, {mode.id: mode}, public_key)
    except xmldsig.XmlDsigError as exc:
        raise SessionFailure(Failure.SIGNATURE_ERROR, f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - EV-made signature content: one failure, no crash
        raise SessionFailure(Failure.SIGNATURE_ERROR,
                             f"unverifiable signature: {type(exc).__name__}: {exc}") from None


def sign_authorization(mode: Any, key: ec.EllipticCurvePrivateKey) -> Any:
    """The EV side: the header ``Signature`` over ``mode`` with the contract key, algorithms
    by the key's curve (P-521: ECDSA-SHA512 + SHA-512 digest)."""
    digest, method = ALGORITHMS_OF_CURVE.get(key.curve.name,
                                             (xmldsig.SHA512, xmldsig.ECDSA_SHA512))
    return xmldsig.sign([mode], key, digest_method=digest, signature_method=method)


def certificate_decision_failure(decision: AuthorizationDecision | None) -> Failure | None:
    """A CSMS verdict on the contract certificate (revoked, expired ...) gets its own code;
    None for every other decision (or none yet)."""
    if decision is None or decision.status is not AuthorizationStatus.CERTIFICATE_REJECTED:
        return None
    return next((failure for status, failure in CERTIFICATE_STATUS_FAILURES.items()
                 if status in decision.reason), Failure.CERT_CHAIN_ERROR)
