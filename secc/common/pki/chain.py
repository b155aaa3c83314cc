"""Verify an ISO 15118 certificate chain (leaf -> sub-CAs -> trust anchor).

ISO 15118 chains are short (leaf + at most two sub-CAs under a root) and use ECDSA. Checks
are the ones the standard's FAILED_* codes distinguish: validity period, issuer/signature,
CA basic constraints and path length, key usage. Every failure is a ``CertificateRejected``
carrying a ``RejectReason``; the session layer maps reasons to response codes in one table.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from secc.common.lazy import lazy_module

crypto_exceptions = lazy_module("cryptography.exceptions")
x509 = lazy_module("cryptography.x509")


MAX_SUB_CAS = 2  # ISO 15118-2 §7.9.2.2: leaf + up to two sub-CAs + root


class RejectReason(enum.Enum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNKNOWN_ISSUER = "unknown_issuer"  # no trust anchor for the chain: install the root
    BAD_SIGNATURE = "bad_signature"
    NOT_A_CA = "not_a_ca"
    KEY_USAGE = "key_usage"
    PATH_LENGTH = "path_length"
    CHAIN_TOO_LONG = "chain_too_long"
    MALFORMED = "malformed"


class CertificateRejected(Exception):
    def __init__(self, reason: RejectReason, detail: str, subject: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" + (f" ({subject})" if subject else ""))
        self.reason = reason
        self.detail = detail
        self.subject = subject


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _check_validity(cert: x509.Certificate, now: dt.datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateRejected(RejectReason.NOT_YET_VALID,
                                  f"valid from {cert.not_valid_before_utc:%Y-%m-%d}", _subject(cert))
    if now > cert.not_valid_after_utc:
        raise CertificateRejected(RejectReason.EXPIRED,
                                  f"expired {cert.not_valid_after_utc:%Y-%m-%d}", _subject(cert))


def _check_ca(cert: x509.Certificate, sub_cas_below: int) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise CertificateRejected(RejectReason.NOT_A_CA, "issuer has no basicConstraints",
                                  _subject(cert)) from None
    if not bc.ca:
        raise CertificateRejected(RejectReason.NOT_A_CA, "issuer is not a CA", _subject(cert))
    if bc.path_length is not None and sub_cas_below > bc.path_length:
        raise CertificateRejected(RejectReason.PATH_LENGTH,
                                  f"pathLen {bc.path_length} < {sub_cas_below} sub-CAs below",
                                  _subject(cert))
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not ku.key_cert_sign:
        raise CertificateRejected(RejectReason.KEY_USAGE, "CA lacks keyCertSign", _subject(cert))


def _check_leaf_usage(cert: x509.Certificate) -> None:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateRejected(RejectReason.KEY_USAGE, "leaf has no keyUsage",
                                  _subject(cert)) from None
    if not ku.digital_signature:
        raise CertificateRejected(RejectReason.KEY_USAGE, "leaf lacks digitalSignature",
                                  _subject(cert))
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if bc.ca:
            raise CertificateRejected(RejectReason.KEY_USAGE, "leaf is a CA", _subject(cert))
    except x509.ExtensionNotFound:
        pass


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (crypto_exceptions.InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify_chain(leaf: x509.Certificate, sub_cas: Sequence[x509.Certificate],
                 trust_anchors: Sequence[x509.Certificate],
                 now: dt.datetime | None = None) -> x509.Certificate:
    """Verify ``leaf`` through ``sub_cas`` (leaf's issuer first) to one of ``trust_anchors``.

    Returns the trust anchor the chain ends at; raises ``CertificateRejected`` otherwise.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    if len(sub_cas) > MAX_SUB_CAS:
        raise CertificateRejected(RejectReason.CHAIN_TOO_LONG,
                                  f"{len(sub_cas)} sub-CAs, at most {MAX_SUB_CAS}")
    _check_validity(leaf, now)
    _check_leaf_usage(leaf)
    chain = [leaf, *sub_cas]
    for index, (cert, issuer) in enumerate(zip(chain, chain[1:])):
        _check_validity(issuer, now)
        _check_ca(issuer, sub_cas_below=index)
        if cert.issuer != issuer.subject:
            raise CertificateRejected(RejectReason.UNKNOWN_ISSUER,
                                      f"issued by {cert.issuer.rfc4514_string()}, next in chain is "
                                      f"{_subject(issuer)}", _subject(cert))
        if not _signed_by(cert, issuer):
            raise CertificateRejected(RejectReason.BAD_SIGNATURE,
                                      f"signature does not verify with {_subject(issuer)}",
                                      _subject(cert))
    top = chain[-1]
    named = [anchor for anchor in trust_anchors if anchor.subject == top.issuer]
    if not named:
        raise CertificateRejected(RejectReason.UNKNOWN_ISSUER,
                                  f"no trusted root {top.issuer.rfc4514_string()} installed",
                                  _subject(top))
    for anchor in named:
        if _signed_by(top, anchor):
            _check_validity(anchor, now)
            _check_ca(anchor, sub_cas_below=len(sub_cas))
            return anchor
    raise CertificateRejected(RejectReason.BAD_SIGNATURE,
                              f"signature does not verify with root {top.issuer.rfc4514_string()}",
                              _subject(top))
