"""Certificates: chain verification (ISO 15118 profiles) and the certificate store."""

from secc.common.pki.chain import CertificateRejected, RejectReason, verify_chain

__all__ = ["CertificateRejected", "RejectReason", "verify_chain"]
