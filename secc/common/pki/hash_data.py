"""OCPP CertificateHashDataType of a certificate (SHA-256), as the SECC's OCSP request data
and the bridge's certificate management both need it."""

from __future__ import annotations

import hashlib
from secc.common.lazy import lazy_module

ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")
x509 = lazy_module("cryptography.x509")



def public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING content: what OCSP's issuerKeyHash hashes (RFC 6960)."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def certificate_hash_data(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber of ``cert`` (by ``issuer``)."""
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": hashlib.sha256(public_key_bits(issuer)).hexdigest(),
        "serialNumber": format(cert.serial_number, "x"),
    }
