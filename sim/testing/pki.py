"""A test PKI built with ``cryptography``, shaped like ISO 15118's:

* V2G root -> CPO sub-CA 1 -> CPO sub-CA 2 -> SECC leaf (P-256, CN = SECC ID)
* MO root -> MO sub-CA 1 -> MO sub-CA 2 -> contract leaf (CN = eMAID)
* OEM root -> OEM sub-CA -> vehicle (OEM provisioning) leaf
* V2G root -> CPS sub-CA 1 -> CPS sub-CA 2 -> CPS leaf (certificate provisioning service,
  signs CertificateInstallationRes), made on first use by ``cps_chain()``

``issue_leaf(..., defect=...)`` makes bad certificates on purpose (expired, wrong issuer,
wrong key usage, not yet valid) for negative tests; ``issue_contract`` makes Plug & Charge
contracts with OCSP responder URLs (AIA).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID


class Defect(enum.Enum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_ISSUER = "wrong_issuer"  # names the right issuer, signed by a stranger's key
    WRONG_KEY_USAGE = "wrong_key_usage"


#: OCSP responder URL of the test MO PKI's contract certificates.
MO_OCSP_URL = "http://ocsp.mo.pysecc.test/"


@dataclass
class Credential:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


@dataclass
class ContractCredential:
    """A contract certificate with its key and its sub-CAs (leaf's issuer first), as the EV
    holds it for Plug & Charge."""

    leaf: Credential
    sub_cas: list[Credential]

    @property
    def emaid(self) -> str:
        return self.leaf.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    @property
    def chain_pem(self) -> bytes:
        return self.leaf.cert_pem + b"".join(c.cert_pem for c in self.sub_cas)

    @property
    def sub_ca_ders(self) -> list[bytes]:
        return [c.cert_der for c in self.sub_cas]

    def write(self, directory: Path) -> tuple[Path, Path]:
        """PEM files for the EV simulator: (chain leaf-first, key)."""
        directory.mkdir(parents=True, exist_ok=True)
        chain, key = directory / "contract_chain.pem", directory / "contract_key.pem"
        chain.write_bytes(self.chain_pem)
        key.write_bytes(self.leaf.key_pem)
        key.chmod(0o600)
        return chain, key


def _name(common_name: str, org: str, domain: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
             x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]
    if domain:
        attrs.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, domain))
    return x509.Name(attrs)


def _build(subject: x509.Name, public_key, issuer_name: x509.Name, signing_key, *, ca: bool,
           path_length: int | None, now: dt.datetime, days: int, defect: Defect | None,
           leaf_usage: dict[str, bool] | None = None,
           ocsp_url: str | None = None,
           signature_hash: hashes.HashAlgorithm | None = None) -> x509.Certificate:
    not_before = now - dt.timedelta(days=1)
    not_after = now + dt.timedelta(days=days)
    if defect is Defect.EXPIRED:
        not_before, not_after = now - dt.timedelta(days=400), now - dt.timedelta(days=1)
    elif defect is Defect.NOT_YET_VALID:
        not_before, not_after = now + dt.timedelta(days=10), now + dt.timedelta(days=400)
    usage = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=False,
                 crl_sign=False, encipher_only=False, decipher_only=False)
    if ca:
        usage.update(key_cert_sign=True, crl_sign=True)
    else:
        usage.update(leaf_usage or {"digital_signature": True, "key_agreement": True})
    if defect is Defect.WRONG_KEY_USAGE:
        usage.update(digital_signature=False, key_cert_sign=not ca, key_agreement=False,
                     crl_sign=False, data_encipherment=True)
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer_name).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
               .add_extension(x509.KeyUsage(**usage), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if ocsp_url is not None:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]),
            critical=False)
    return builder.sign(signing_key, signature_hash or hashes.SHA256())


@dataclass
class TestPKI:
    """Builds the three hierarchies on construction; each credential is an attribute."""

    __test__ = False  # not a pytest test class

    secc_id: str = "DEPYSE00001"
    emaid: str = "DEPYSC1234567X"
    vin: str = "WPYSECC0000000001"
    curve: ec.EllipticCurve = field(default_factory=ec.SECP256R1)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    #: hash of the certificates' signatures: SHA-256 (-2); ISO 15118-20 uses SHA-512 on P-521
    signature_hash: type[hashes.HashAlgorithm] = hashes.SHA256

    @classmethod
    def iso20(cls, **kwargs: Any) -> TestPKI:
        """The ISO 15118-20 flavour: every key on secp521r1, certificates signed with
        ECDSA-SHA512 (-20's contract and SECC certificates; the -2 defaults stay P-256)."""
        return cls(curve=ec.SECP521R1(), signature_hash=hashes.SHA512, **kwargs)

    def __post_init__(self) -> None:
        self.v2g_root = self.make_root("V2G Root CA", "pysecc V2G", "V2G")
        self.cpo_sub1 = self.issue_ca(self.v2g_root, "CPO Sub-CA 1", "pysecc CPO", path_length=1)
        self.cpo_sub2 = self.issue_ca(self.cpo_sub1, "CPO Sub-CA 2", "pysecc CPO", path_length=0)
        self.secc_leaf = self.issue_leaf(self.cpo_sub2, self.secc_id, "pysecc CPO", domain="CPO")
        self.mo_root = self.make_root("MO Root CA", "pysecc eMSP", "V2G")
        self.mo_sub1 = self.issue_ca(self.mo_root, "MO Sub-CA 1", "pysecc eMSP", path_length=1)
        self.mo_sub2 = self.issue_ca(self.mo_sub1, "MO Sub-CA 2", "pysecc eMSP", path_length=0)
        self.contract_leaf = self.issue_leaf(
            self.mo_sub2, self.emaid, "pysecc eMSP", domain="MO",
            usage={"digital_signature": True, "content_commitment": True, "key_agreement": True})
        self.oem_root = self.make_root("OEM Root CA", "pysecc OEM", None)
        self.oem_sub = self.issue_ca(self.oem_root, "OEM Sub-CA", "pysecc OEM", path_length=0)
        self.vehicle_leaf = self.issue_leaf(self.oem_sub, self.vin, "pysecc OEM", domain="OEM")

    # --- building blocks ------------------------------------------------------------------
    def _key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(self.curve)

    def make_root(self, cn: str, org: str, domain: str | None, *,
                  defect: Defect | None = None, days: int = 3650) -> Credential:
        key = self._key()
        name = _name(cn, org, domain)
        cert = _build(name, key.public_key(), name, key, ca=True, path_length=2, now=self.now,
                      days=days, defect=defect, signature_hash=self.signature_hash())
        return Credential(cert, key)

    def issue_ca(self, issuer: Credential, cn: str, org: str, *, path_length: int | None,
                 defect: Defect | None = None, days: int = 1460,
                 ocsp_url: str | None = None) -> Credential:
        key = self._key()
        signer = self._key() if defect is Defect.WRONG_ISSUER else issuer.key
        cert = _build(_name(cn, org, None), key.public_key(), issuer.cert.subject, signer,
                      ca=True, path_length=path_length, now=self.now, days=days, defect=defect,
                      ocsp_url=ocsp_url, signature_hash=self.signature_hash())
        return Credential(cert, key)

    def issue_leaf(self, issuer: Credential, cn: str, org: str, *, domain: str | None = None,
                   defect: Defect | None = None, days: int = 365,
                   usage: dict[str, bool] | None = None,
                   ocsp_url: str | None = None) -> Credential:
        key = self._key()
        signer = self._key() if defect is Defect.WRONG_ISSUER else issuer.key
        cert = _build(_name(cn, org, domain), key.public_key(), issuer.cert.subject, signer,
                      ca=False, path_length=None, now=self.now, days=days, defect=defect,
                      leaf_usage=usage, ocsp_url=ocsp_url,
                      signature_hash=self.signature_hash())
        return Credential(cert, key)

    def issue_contract(self, emaid: str | None = None, *, defect: Defect | None = None,
                       ocsp_url: str | None = MO_OCSP_URL) -> ContractCredential:
        """A Plug & Charge contract: leaf (CN = eMAID) under two fresh MO sub-CAs below
        ``mo_root``, each certificate with an OCSP responder URL in its AIA extension (None:
        without, as some field certificates are). ``defect`` applies to the leaf."""
        sub1 = self.issue_ca(self.mo_root, "MO Sub-CA 1", "pysecc eMSP", path_length=1,
                             ocsp_url=ocsp_url)
        sub2 = self.issue_ca(sub1, "MO Sub-CA 2", "pysecc eMSP", path_length=0,
                             ocsp_url=ocsp_url)
        leaf = self.issue_leaf(sub2, emaid or self.emaid, "pysecc eMSP", domain="MO",
                               defect=defect, ocsp_url=ocsp_url, usage={
                                   "digital_signature": True, "content_commitment": True,
                                   "key_agreement": True})
        return ContractCredential(leaf, [sub2, sub1])

    def cps_chain(self) -> tuple[Credential, list[Credential]]:
        """The certificate provisioning service's signing credential under the V2G root and
        its sub-CAs (leaf's issuer first); made once, on first use."""
        cached = getattr(self, "_cps", None)
        if cached is None:
            sub1 = self.issue_ca(self.v2g_root, "CPS Sub-CA 1", "pysecc CPS", path_length=1)
            sub2 = self.issue_ca(sub1, "CPS Sub-CA 2", "pysecc CPS", path_length=0)
            leaf = self.issue_leaf(sub2, "CPS Leaf", "pysecc CPS", domain="CPS")
            cached = self._cps = (leaf, [sub2, sub1])
        return cached

    def sign_secc_csr(self, csr_pem: str, days: int = 60) -> str:
        """What the CPO's CA does with a SignCertificate(V2GCertificate) CSR: a SECC leaf under
        CPO sub-CA 2; returns the PEM chain leaf, sub-CA 2, sub-CA 1."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        leaf = _build(csr.subject, csr.public_key(), self.cpo_sub2.cert.subject,
                      self.cpo_sub2.key, ca=False, path_length=None, now=self.now, days=days,
                      defect=None, signature_hash=self.signature_hash())
        return b"".join(c.public_bytes(serialization.Encoding.PEM)
                        for c in (leaf, self.cpo_sub2.cert, self.cpo_sub1.cert)).decode()

    # --- chains as the stack consumes them --------------------------------------------------
    def secc_chain(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        return self.secc_leaf.cert, [self.cpo_sub2.cert, self.cpo_sub1.cert]

    def contract_chain(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        return self.contract_leaf.cert, [self.mo_sub2.cert, self.mo_sub1.cert]

    def write_secc_files(self, directory: Path) -> dict[str, Path]:
        """PEM files for a TLS server: leaf+sub-CA chain, key, and the V2G root."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "chain": directory / "secc_chain.pem",
            "key": directory / "secc_key.pem",
            "v2g_root": directory / "v2g_root.pem",
            "mo_root": directory / "mo_root.pem",
            "oem_root": directory / "oem_root.pem",
        }
        files["chain"].write_bytes(self.secc_leaf.cert_pem + self.cpo_sub2.cert_pem
                                   + self.cpo_sub1.cert_pem)
        files["key"].write_bytes(self.secc_leaf.key_pem)
        files["key"].chmod(0o600)
        files["v2g_root"].write_bytes(self.v2g_root.cert_pem)
        files["mo_root"].write_bytes(self.mo_root.cert_pem)
        files["oem_root"].write_bytes(self.oem_root.cert_pem)
        return files

    def write_vehicle_files(self, directory: Path) -> dict[str, Path]:
        """PEM files for the EV's TLS client certificate (-20 mutual auth): the vehicle
        leaf + OEM sub-CA chain and its key."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {"chain": directory / "chain.pem", "key": directory / "key.pem"}
        files["chain"].write_bytes(self.vehicle_leaf.cert_pem + self.oem_sub.cert_pem)
        files["key"].write_bytes(self.vehicle_leaf.key_pem)
        files["key"].chmod(0o600)
        return files
