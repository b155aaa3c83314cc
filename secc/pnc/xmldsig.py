"""XML signatures over EXI, as ISO 15118-2 §7.9.2.4 (and -20) use them.

The signed body elements (e.g. ``AuthorizationReq`` with an ``Id`` attribute) are never
serialised as XML: each Reference's digest is SHA-256 of the element's *EXI fragment*
(canonical EXI, schema-informed fragment grammar — ``exi_schemas.encode_fragment``), and the
signature is ECDSA over SHA-256 of the EXI fragment of ``SignedInfo``. On the wire the
SignatureValue is the raw ``r || s`` pair (2 x 32 bytes for P-256), not the DER
``Ecdsa-Sig-Value`` that ``cryptography`` produces and expects — converting between the two is
the part stacks most often get wrong, so it lives here and only here.

``sign`` builds the header ``Signature``; ``verify`` checks one against the elements of the
message and raises a typed ``XmlDsigError`` subclass naming what was wrong.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import exi_schemas as exi
from secc.common.lazy import lazy_module

asym_utils = lazy_module("cryptography.hazmat.primitives.asymmetric.utils")
crypto_exceptions = lazy_module("cryptography.exceptions")
ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
hashes = lazy_module("cryptography.hazmat.primitives.hashes")

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

#: SignatureMethod algorithm -> the hash ECDSA signs with (-2: SHA-256; -20 also SHA-512), by
#: its name in ``cryptography.hazmat.primitives.hashes`` (loaded on first use: secc.common.lazy)
SIGNATURE_METHODS: dict[str, str] = {ECDSA_SHA256: "SHA256", ECDSA_SHA512: "SHA512"}
#: DigestMethod algorithm -> hashlib constructor name.
DIGEST_METHODS: dict[str, str] = {SHA256: "sha256", SHA512: "sha512"}


class XmlDsigError(Exception):
    """A signature that does not verify; subclasses say why."""


class UnsupportedAlgorithm(XmlDsigError):
    """Canonicalization, transform, digest or signature method we do not implement."""


class MissingReference(XmlDsigError):
    """A Reference to an element the message lacks, or a signed element nobody referenced."""


class BadDigest(XmlDsigError):
    """A referenced element's EXI fragment does not hash to its DigestValue."""


class BadSignature(XmlDsigError):
    """SignatureValue malformed or not made with the key's private half over SignedInfo."""


def _module_of(obj: Any) -> ModuleType:
    return sys.modules[type(obj).__module__]


def fragment_digest(element: Any, digest_method: str = SHA256) -> bytes:
    """Digest of one signed element: hash of its EXI fragment (raises for unknown methods)."""
    name = DIGEST_METHODS.get(digest_method)
    if name is None:
        raise UnsupportedAlgorithm(f"DigestMethod {digest_method}")
    try:
        data = exi.encode_fragment(element)
    except exi.ExiEncodeError as exc:
        raise BadDigest(f"element {getattr(element, 'id', '?')!r} cannot be encoded: {exc}") \
            from None
    return hashlib.new(name, data).digest()


def _key_bytes(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> int:
    return (key.curve.key_size + 7) // 8


def der_to_raw(der: bytes, size: int) -> bytes:
    """DER Ecdsa-Sig-Value -> ``r || s``, each left-padded to ``size`` bytes."""
    r, s = asym_utils.decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(raw: bytes, size: int) -> bytes:
    """``r || s`` (exactly 2 x ``size`` bytes) -> DER; ``BadSignature`` for any other length."""
    if len(raw) != 2 * size:
        raise BadSignature(f"SignatureValue is {len(raw)} bytes, expected {2 * size} (r||s)")
    return asym_utils.encode_dss_signature(int.from_bytes(raw[:size], "big"),
                                           int.from_bytes(raw[size:], "big"))


def _elements_by_id(elements: Mapping[str, Any] | Iterable[Any]) -> dict[str, Any]:
    if isinstance(elements, Mapping):
        return dict(elements)
    by_id: dict[str, Any] = {}
    for element in elements:
        element_id = getattr(element, "id", None)
        if not element_id:
            raise MissingReference(f"{type(element).__name__} has no Id to reference")
        by_id[element_id] = element
    return by_id


def signed_info(elements: Mapping[str, Any] | Iterable[Any], *,
                digest_method: str = SHA256, signature_method: str = ECDSA_SHA256) -> Any:
    """``SignedInfo`` with one Reference ``#<Id>`` per element (the elements' schema)."""
    by_id = _elements_by_id(elements)
    if not by_id:
        raise MissingReference("nothing to sign")
    M = _module_of(next(iter(by_id.values())))
    references = [M.ReferenceType(
        uri=f"#{element_id}",
        transforms=M.TransformsType(transform=[M.TransformType(algorithm=CANONICAL_EXI)]),
        digest_method=M.DigestMethodType(algorithm=digest_method),
        digest_value=fragment_digest(element, digest_method))
        for element_id, element in by_id.items()]
    return M.SignedInfoType(
        canonicalization_method=M.CanonicalizationMethodType(algorithm=CANONICAL_EXI),
        signature_method=M.SignatureMethodType(algorithm=signature_method),
        reference=references)


def sign(elements: Mapping[str, Any] | Iterable[Any], private_key: ec.EllipticCurvePrivateKey,
         *, digest_method: str = SHA256, signature_method: str = ECDSA_SHA256) -> Any:
    """The header ``Signature`` over ``elements`` (objects with an ``id``, or {id: element})."""
    if signature_method not in SIGNATURE_METHODS:
        raise UnsupportedAlgorithm(f"SignatureMethod {signature_method}")
    info = signed_info(elements, digest_method=digest_method, signature_method=signature_method)
    der = private_key.sign(exi.encode_fragment(info),
                           ec.ECDSA(getattr(hashes, SIGNATURE_METHODS[signature_method])()))
    M = _module_of(info)
    return M.SignatureType(signed_info=info, signature_value=M.SignatureValueType(
        value=der_to_raw(der, _key_bytes(private_key))))


def verify(signature: Any, elements_by_id: Mapping[str, Any],
           public_key: ec.EllipticCurvePublicKey) -> None:
    """Check ``signature`` (a header ``SignatureType``) over ``elements_by_id``.

    Every element given must be referenced and every Reference must name one of them (a
    signature over something else proves nothing about the request). Raises an
    ``XmlDsigError`` subclass; returns None when the signature holds."""
    if signature is None:
        raise MissingReference("the message carries no Signature")
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise UnsupportedAlgorithm(f"{type(public_key).__name__} keys (ECDSA only)")
    info = signature.signed_info
    if info.canonicalization_method.algorithm != CANONICAL_EXI:
        raise UnsupportedAlgorithm(
            f"CanonicalizationMethod {info.canonicalization_method.algorithm}")
    hash_name = SIGNATURE_METHODS.get(info.signature_method.algorithm)
    if hash_name is None:
        raise UnsupportedAlgorithm(f"SignatureMethod {info.signature_method.algorithm}")
    hash_type = getattr(hashes, hash_name)
    referenced: set[str] = set()
    for reference in info.reference:
        uri = reference.uri or ""
        if not uri.startswith("#") or uri[1:] not in elements_by_id:
            raise MissingReference(f"Reference {uri!r} names no signed element of the message")
        transforms = reference.transforms.transform if reference.transforms else []
        for transform in transforms:
            if transform.algorithm != CANONICAL_EXI:
                raise UnsupportedAlgorithm(f"Transform {transform.algorithm}")
        digest = fragment_digest(elements_by_id[uri[1:]], reference.digest_method.algorithm)
        if digest != reference.digest_value:
            raise BadDigest(f"digest of {uri} does not match")
        referenced.add(uri[1:])
    unreferenced = set(elements_by_id) - referenced
    if unreferenced:
        raise MissingReference(f"element(s) {sorted(unreferenced)} not covered by the signature")
    der = raw_to_der(signature.signature_value.value, _key_bytes(public_key))
    try:
        data = exi.encode_fragment(info)
    except exi.ExiEncodeError as exc:
        raise BadSignature(f"SignedInfo cannot be encoded: {exc}") from None
    try:
        public_key.verify(der, data, ec.ECDSA(hash_type()))
    except crypto_exceptions.InvalidSignature:
        raise BadSignature("SignatureValue does not verify with the signer's key") from None
