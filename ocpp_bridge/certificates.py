"""Certificates the CSMS manages on the station (OCPP 2.0.1 M- and A- use cases).

Layout under the store directory (one PEM per certificate, named by SHA-256 fingerprint)::

    roots/<type>/<fingerprint>.pem      InstallCertificate (V2G, MO, CSMS, Manufacturer roots)
    V2GCertificate/chain.pem, key.pem   the SECC TLS chain installed by CertificateSigned
    ChargingStationCertificate/...      the SP3 client chain installed by CertificateSigned
    pending/<type>.key                  key generated for a SignCertificate CSR

The SECC daemon reads its TLS chain and the V2G/MO roots from here, so certificate updates
from the CSMS need no bus message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from secc.common.lazy import lazy_module
from secc.common.logs import layer_logger
from secc.common.pki.hash_data import certificate_hash_data

ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
hashes = lazy_module("cryptography.hazmat.primitives.hashes")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")
x509 = lazy_module("cryptography.x509")

log = layer_logger("ocpp")

ROOT_TYPES = ("V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate",
              "ManufacturerRootCertificate")
SIGNED_TYPES = ("ChargingStationCertificate", "V2GCertificate")


class CertificateError(ValueError):
    """A certificate from the CSMS is unusable (unparseable, not a CA, key mismatch...)."""


def load_pem_chain(pem: str | bytes) -> list[x509.Certificate]:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    if not certs:
        raise CertificateError("no certificate in PEM data")
    return certs


def hash_data(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """OCPP CertificateHashDataType (SHA256) of ``cert`` issued by ``issuer``."""
    return certificate_hash_data(cert, issuer)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@dataclass
class CertificateStore:
    directory: Path

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    # --- roots --------------------------------------------------------------------------------
    def install_root(self, certificate_type: str, pem: str) -> str:
        """InstallCertificate; returns the OCPP status (Accepted, Rejected)."""
        if certificate_type not in ROOT_TYPES:
            return "Rejected"
        try:
            cert = load_pem_chain(pem)[0]
        except CertificateError as exc:
            log.warning("InstallCertificate rejected", extra={"type": certificate_type,
                                                              "error": str(exc)})
            return "Rejected"
        if not _is_ca(cert) or cert.issuer != cert.subject:
            log.warning("InstallCertificate rejected: not a self-signed CA certificate",
                        extra={"type": certificate_type, "subject": cert.subject.rfc4514_string()})
            return "Rejected"
        folder = self.directory / "roots" / certificate_type
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{fingerprint(cert)}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM))
        log.info("root certificate installed", extra={
            "type": certificate_type, "subject": cert.subject.rfc4514_string()})
        return "Accepted"

    def roots(self, certificate_type: str) -> list[x509.Certificate]:
        folder = self.directory / "roots" / certificate_type
        if not folder.is_dir():
            return []
        return [load_pem_chain(p.read_bytes())[0] for p in sorted(folder.glob("*.pem"))]

    def find_root_for(self, certificate_type: str, issuer: x509.Name) -> x509.Certificate | None:
        for root in self.roots(certificate_type):
            if root.subject == issuer:
                return root
        return None

    def installed_ids(self, types: list[str] | None) -> list[dict]:
        """GetInstalledCertificateIds: CertificateHashDataChainType entries."""
        out = []
        for certificate_type in types or [*ROOT_TYPES, "V2GCertificateChain"]:
            if certificate_type == "V2GCertificateChain":
                chain = self.signed_chain("V2GCertificate")
                if chain:
                    out.append(self._chain_entry(chain))
                continue
            for root in self.roots(certificate_type):
                out.append({"certificateType": certificate_type,
                            "certificateHashData": hash_data(root, root)})
        return out

    def _chain_entry(self, chain: list[x509.Certificate]) -> dict:
        issuers = chain[1:] + [None]
        leaf_issuer = issuers[0] or chain[0]
        entry = {"certificateType": "V2GCertificateChain",
                 "certificateHashData": hash_data(chain[0], leaf_issuer)}
        children = [hash_data(c, i or c) for c, i in zip(chain[1:], issuers[1:])]
        if children:
            entry["childCertificateHashData"] = children
        return entry

    def delete(self, wanted: dict[str, str]) -> str:
        """DeleteCertificate by hash data; returns Accepted, NotFound or Failed."""
        for certificate_type in ROOT_TYPES:
            for path in sorted((self.directory / "roots" / certificate_type).glob("*.pem")):
                cert = load_pem_chain(path.read_bytes())[0]
                have = hash_data(cert, cert)
                if all(have[k].lower().lstrip("0") == str(wanted.get(k, "")).lower().lstrip("0")
                       for k in ("issuerNameHash", "issuerKeyHash", "serialNumber")):
                    if certificate_type == "CSMSRootCertificate" and \
                            len(self.roots(certificate_type)) == 1:
                        log.warning("refusing to delete the last CSMS root (would brick TLS)")
                        return "Failed"
                    path.unlink()
                    log.info("certificate deleted", extra={"type": certificate_type})
                    return "Accepted"
        return "NotFound"

    # --- SignCertificate / CertificateSigned ----------------------------------------------------
    def make_csr(self, certificate_type: str, common_name: str, organization: str,
                 country: str) -> str:
        """Generate a P-256 key (kept in pending/) and return a PEM CSR for it."""
        key = ec.generate_private_key(ec.SECP256R1())
        pending = self.directory / "pending"
        pending.mkdir(parents=True, exist_ok=True)
        key_path = pending / f"{certificate_type}.key"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        attrs = [x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name),
                 x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization),
                 x509.NameAttribute(x509.NameOID.COUNTRY_NAME, country)]
        if certificate_type == "V2GCertificate":
            attrs.append(x509.NameAttribute(x509.NameOID.DOMAIN_COMPONENT, "CPO"))
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(
            key, hashes.SHA256())
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def install_signed(self, certificate_type: str, chain_pem: str) -> None:
        """CertificateSigned: the leaf must match the pending key. Raises CertificateError."""
        if certificate_type not in SIGNED_TYPES:
            raise CertificateError(f"unknown certificate type {certificate_type}")
        chain = load_pem_chain(chain_pem)
        key_path = self.directory / "pending" / f"{certificate_type}.key"
        if not key_path.exists():
            raise CertificateError("no pending SignCertificate request for this type")
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if chain[0].public_key().public_bytes(serialization.Encoding.DER, spki) != \
                key.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise CertificateError("certificate does not match the key of our CSR")
        folder = self.directory / certificate_type
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chain.pem").write_text(chain_pem)
        key_path.replace(folder / "key.pem")
        log.info("signed certificate installed", extra={
            "type": certificate_type, "subject": chain[0].subject.rfc4514_string()})

    def record_chain(self, certificate_type: str, chain_pem: str) -> None:
        """Keep a copy of a chain whose key another process holds (the SECC's V2G chain), for
        GetInstalledCertificateIds."""
        load_pem_chain(chain_pem)
        folder = self.directory / certificate_type
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chain.pem").write_text(chain_pem)

    def signed_chain(self, certificate_type: str) -> list[x509.Certificate]:
        path = self.directory / certificate_type / "chain.pem"
        return load_pem_chain(path.read_bytes()) if path.exists() else []


@dataclass(frozen=True)
class ContractHashes:
    """OCSP request data for a contract chain, and what stopped us from building it."""

    entries: list[dict[str, str]]
    missing_root: str | None = None       # issuer DN of the MO root we do not have
    missing_ocsp_url: bool = False


def _ocsp_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for desc in aia:
        if desc.access_method == x509.oid.AuthorityInformationAccessOID.OCSP:
            return desc.access_location.value
    return None


def contract_ocsp_data(chain_pem: str, store: CertificateStore) -> ContractHashes:
    """OCPP OCSPRequestDataType for each certificate of a contract chain (leaf first).

    The top sub-CA's issuerKeyHash needs the MO root, which only the store has; a missing root
    is reported (the fix is InstallCertificate(MORootCertificate)). Certificates without an
    OCSP responder URL exist in the field; then the caller falls back to sending the chain.
    """
    chain = load_pem_chain(chain_pem)
    root = store.find_root_for("MORootCertificate", chain[-1].issuer) or \
        store.find_root_for("V2GRootCertificate", chain[-1].issuer)
    entries: list[dict[str, str]] = []
    missing_url = False
    for index, cert in enumerate(chain):
        issuer = chain[index + 1] if index + 1 < len(chain) else root
        if issuer is None:
            return ContractHashes(entries, missing_root=chain[-1].issuer.rfc4514_string(),
                                  missing_ocsp_url=missing_url)
        url = _ocsp_url(cert)
        if url is None:
            missing_url = True
            continue
        entries.append({**hash_data(cert, issuer), "responderURL": url[:512]})
    return ContractHashes(entries, missing_ocsp_url=missing_url)
