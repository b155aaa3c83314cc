"""Contract private key transport of ISO 15118-2 CertificateInstallation/Update (§7.9.2.4.2).

The eMSP/CPS never sends the contract key in clear: it makes an ephemeral P-256 key pair,
derives a shared secret with ECDH against the public key of the car's OEM provisioning
certificate (Installation) or its current contract certificate (Update), turns it into a
128-bit session key with the NIST SP 800-56A concatenation KDF (SHA-256, OtherInfo =
AlgorithmID 0x01 || PartyUInfo "U" || PartyVInfo "V"), and encrypts the 32-byte private value
with AES-128-CBC. The response carries the ephemeral public key (``DHpublickey``, 65-byte
uncompressed point) and ``ContractSignatureEncryptedPrivateKey`` = IV (16) || ciphertext (32):
the private value is exactly two AES blocks, so there is no padding.

``encrypt_contract_key`` is the sender's half (the test CSMS), ``decrypt_contract_key`` the
car's (the EV simulator). Every bad input raises ``KeyTransportError``.
"""

from __future__ import annotations

import os
from secc.common.lazy import lazy_module

ciphers = lazy_module("cryptography.hazmat.primitives.ciphers")
concatkdf = lazy_module("cryptography.hazmat.primitives.kdf.concatkdf")
ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
hashes = lazy_module("cryptography.hazmat.primitives.hashes")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")


#: OtherInfo of the KDF: AlgorithmID 0x01, PartyUInfo "U", PartyVInfo "V" (§7.9.2.4.2).
KDF_OTHER_INFO = b"\x01" + b"U" + b"V"
SESSION_KEY_BYTES = 16          # AES-128
IV_BYTES = 16
PRIVATE_VALUE_BYTES = 32        # P-256 private scalar
ENCRYPTED_KEY_BYTES = IV_BYTES + PRIVATE_VALUE_BYTES
POINT_BYTES = 65                # uncompressed SEC1 point: 0x04 || X || Y


class KeyTransportError(ValueError):
    """An encrypted contract key or DH public key that cannot be used."""


def session_key(own_key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    """The 128-bit AES key both sides derive: ConcatKDF(SHA-256) over the ECDH secret."""
    if not isinstance(peer.curve, ec.SECP256R1) or not isinstance(own_key.curve, ec.SECP256R1):
        raise KeyTransportError("key transport is defined for P-256 (secp256r1) keys only")
    shared = own_key.exchange(ec.ECDH(), peer)
    return concatkdf.ConcatKDFHash(algorithm=hashes.SHA256(), length=SESSION_KEY_BYTES,
                                   otherinfo=KDF_OTHER_INFO).derive(shared)


def encrypt_contract_key(contract_key: ec.EllipticCurvePrivateKey,
                         recipient: ec.EllipticCurvePublicKey, *,
                         ephemeral: ec.EllipticCurvePrivateKey | None = None,
                         iv: bytes | None = None) -> tuple[bytes, bytes]:
    """(DHpublickey, ContractSignatureEncryptedPrivateKey) for ``recipient``'s public key
    (the OEM provisioning certificate's). ``ephemeral``/``iv`` only for reproducible tests."""
    ephemeral = ephemeral or ec.generate_private_key(ec.SECP256R1())
    iv = iv if iv is not None else os.urandom(IV_BYTES)
    if len(iv) != IV_BYTES:
        raise KeyTransportError(f"IV of {len(iv)} bytes, expected {IV_BYTES}")
    key = session_key(ephemeral, recipient)
    plain = contract_key.private_numbers().private_value.to_bytes(PRIVATE_VALUE_BYTES, "big")
    encryptor = ciphers.Cipher(ciphers.algorithms.AES(key), ciphers.modes.CBC(iv)).encryptor()
    encrypted = iv + encryptor.update(plain) + encryptor.finalize()
    point = ephemeral.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
    return point, encrypted


def decrypt_contract_key(dh_public_key: bytes, encrypted: bytes,
                         own_key: ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePrivateKey:
    """The car's half: the contract private key from the response, with the key of the
    certificate the request was signed with (OEM provisioning or old contract)."""
    if len(dh_public_key) != POINT_BYTES or dh_public_key[:1] != b"\x04":
        raise KeyTransportError(f"DHpublickey of {len(dh_public_key)} bytes is not an "
                                "uncompressed P-256 point")
    if len(encrypted) != ENCRYPTED_KEY_BYTES:
        raise KeyTransportError(f"encrypted private key of {len(encrypted)} bytes, expected "
                                f"{ENCRYPTED_KEY_BYTES} (IV || 2 AES blocks)")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh_public_key)
    except ValueError as exc:
        raise KeyTransportError(f"DHpublickey is not on P-256: {exc}") from None
    key = session_key(own_key, peer)
    decryptor = ciphers.Cipher(ciphers.algorithms.AES(key),
                               ciphers.modes.CBC(encrypted[:IV_BYTES])).decryptor()
    plain = decryptor.update(encrypted[IV_BYTES:]) + decryptor.finalize()
    value = int.from_bytes(plain, "big")
    try:
        return ec.derive_private_key(value, ec.SECP256R1())
    except ValueError as exc:  # 0 or >= n: wrong key or tampered data
        raise KeyTransportError(f"decrypted value is not a P-256 private key: {exc}") from None


def matches(private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
            ) -> bool:
    """Does the decrypted key belong to the contract certificate? (the car must check)."""
    return private_key.public_key().public_numbers() == public_key.public_numbers()

