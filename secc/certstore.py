"""The SECC's certificate store: one directory, ``[v2g].certificate_dir``.

Layout (the files older releases used stay where they were)::

    secc_chain.pem, secc_key.pem       the default SECC chain (leaf, sub-CAs) and its key
    chains/<root-id>/secc_chain.pem    SECC chain + key per V2G root, for TLS chain selection
    chains/<root-id>/secc_key.pem      (root-id: SHA-1 of the root's public key, hex, RFC 6066)
    v2g_root.pem, mo_root.pem, oem_root.pem   trust anchors, each file a bundle of roots
    contracts/<eMAID>.pem, .json       cached contract chains (at most 5) with OCSP status
    pending_key.pem                    the key of an outstanding CSR (renewal)

Every write is atomic (temporary file in the same directory, fsync, rename, fsync of the
directory) and private keys are 0600, the directory 0700. Nothing here is on a session's real-
time path: the daemon reads the store at start and when the store tells it something changed.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from secc.common.lazy import lazy_module
from secc.common.pki import CertificateRejected, verify_chain

ec = lazy_module("cryptography.hazmat.primitives.asymmetric.ec")
hashes = lazy_module("cryptography.hazmat.primitives.hashes")
serialization = lazy_module("cryptography.hazmat.primitives.serialization")
x509 = lazy_module("cryptography.x509")

MAX_CONTRACTS = 5
DEFAULT_WARN_DAYS = 30
DIR_MODE, CERT_MODE, KEY_MODE = 0o700, 0o644, 0o600


class RootKind(enum.Enum):
    V2G = "v2g"
    MO = "mo"
    OEM = "oem"

    @property
    def file_name(self) -> str:
        return f"{self.value}_root.pem"


class StoreError(Exception):
    """A certificate or key the store refuses, with the reason for the operator."""


def cert_id(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint (hex), what ``secc certs`` shows and accepts (any unique prefix)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def key_sha1(cert: x509.Certificate) -> str:
    """RFC 6066 ``key_sha1_hash``: SHA-1 of the subjectPublicKey bits (what an EV names its
    trusted CAs by in the ClientHello's trusted_ca_keys)."""
    from secc.common.pki.hash_data import public_key_bits

    return hashlib.sha1(public_key_bits(cert)).hexdigest()


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    import tempfile  # here: with shutil, bz2 and lzma ~0.9 MB that a daemon rarely needs

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def load_certs(data: bytes) -> list[x509.Certificate]:
    """PEM (one or more) or one DER certificate; StoreError for anything else."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise StoreError(f"not an X.509 certificate (PEM or DER): {exc}") from None


def load_key(data: bytes, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"not a usable PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise StoreError(f"{type(key).__name__}: ISO 15118 keys are ECDSA")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _same_key(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*fmt) == cert.public_key().public_bytes(*fmt)


@dataclass(frozen=True)
class Entry:
    """One certificate of the store, as ``secc certs list`` shows it."""

    role: str                 # "v2g root", "secc leaf", "secc sub-CA", "contract", ...
    cert: x509.Certificate
    where: Path
    detail: str = ""          # e.g. the eMAID and OCSP status of a cached contract

    @property
    def id(self) -> str:
        return cert_id(self.cert)

    def days_left(self, now: dt.datetime) -> float:
        return (self.cert.not_valid_after_utc - now).total_seconds() / 86400

    def state(self, now: dt.datetime, warn_days: float = DEFAULT_WARN_DAYS) -> str:
        if now > self.cert.not_valid_after_utc:
            return "EXPIRED"
        if now < self.cert.not_valid_before_utc:
            return "NOT YET VALID"
        left = self.days_left(now)
        return f"expires in {left:.0f} d" if left <= warn_days else "ok"


@dataclass(frozen=True)
class SeccChain:
    """The SECC's TLS identity: chain file, key file, the certificates (leaf first)."""

    chain_path: Path
    key_path: Path
    certs: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        return self.certs[0]


@dataclass
class CertificateStore:
    path: Path

    # --- reading ------------------------------------------------------------------------------
    def roots(self, kind: RootKind) -> list[x509.Certificate]:
        try:
            data = (self.path / kind.file_name).read_bytes()
        except FileNotFoundError:
            return []
        return x509.load_pem_x509_certificates(data) if data.strip() else []

    def secc_chains(self) -> list[SeccChain]:
        """The default chain first, then one per V2G root under ``chains/``."""
        found = []
        for chain_path in [self.path / "secc_chain.pem",
                           *sorted((self.path / "chains").glob("*/secc_chain.pem"))]:
            key_path = chain_path.with_name("secc_key.pem")
            if chain_path.is_file():
                found.append(SeccChain(chain_path, key_path,
                                       tuple(load_certs(chain_path.read_bytes()))))
        return found

    def contracts(self) -> list[tuple[str, list[x509.Certificate], dict]]:
        """Cached contract chains: (eMAID, chain leaf first, metadata), newest first."""
        out = []
        for chain_path in (self.path / "contracts").glob("*.pem"):
            meta_path = chain_path.with_suffix(".json")
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            out.append((chain_path.stem, load_certs(chain_path.read_bytes()), meta))
        return sorted(out, key=lambda c: c[2].get("stored_at", ""), reverse=True)

    def entries(self) -> list[Entry]:
        out = [Entry(f"{kind.value} root", cert, self.path / kind.file_name)
               for kind in RootKind for cert in self.roots(kind)]
        for chain in self.secc_chains():
            out.append(Entry("secc leaf", chain.leaf, chain.chain_path))
            out += [Entry("secc sub-CA", c, chain.chain_path) for c in chain.certs[1:]]
        for emaid, certs, meta in self.contracts():
            status = meta.get("ocsp", {}).get("status", "unchecked")
            out.append(Entry("contract", certs[0], self.path / "contracts" / f"{emaid}.pem",
                             f"eMAID {emaid}, OCSP {status}"))
            out += [Entry("contract sub-CA", c, self.path / "contracts" / f"{emaid}.pem",
                          f"eMAID {emaid}") for c in certs[1:]]
        return out

    def find(self, ref: str) -> Entry:
        """The entry whose fingerprint starts with ``ref`` (at least 6 hex digits)."""
        ref = ref.lower().replace(":", "")
        if len(ref) < 6:
            raise StoreError("give at least 6 hex digits of the fingerprint (secc certs list)")
        hits = {e.id: e for e in self.entries() if e.id.startswith(ref)}
        if len(hits) != 1:
            raise StoreError(f"{len(hits)} certificates match {ref!r}")
        return next(iter(hits.values()))

    def expiring(self, now: dt.datetime | None = None,
                 warn_days: float = DEFAULT_WARN_DAYS) -> list[tuple[Entry, str]]:
        now = now or dt.datetime.now(dt.timezone.utc)
        return [(e, s) for e in self.entries() if (s := e.state(now, warn_days)) != "ok"]

    def verify(self, now: dt.datetime | None = None) -> list[str]:
        """Every problem that would break TLS or Plug & Charge, one line each (empty: fine)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        problems = []
        v2g = self.roots(RootKind.V2G)
        chains = self.secc_chains()
        if not chains:
            problems.append(f"no SECC chain ({self.path / 'secc_chain.pem'}): no TLS, no PnC")
        for chain in chains:
            try:
                key = load_key(chain.key_path.read_bytes())
                if not _same_key(key, chain.leaf):
                    problems.append(f"{chain.key_path}: key does not belong to the leaf "
                                    f"{common_name(chain.leaf.subject)}")
            except (OSError, StoreError) as exc:
                problems.append(f"{chain.key_path}: {exc}")
            try:
                anchor = verify_chain(chain.leaf, list(chain.certs[1:]), v2g, now)
                expected = chain.chain_path.parent.name
                if chain.chain_path.parent != self.path and expected != key_sha1(anchor):
                    problems.append(f"{chain.chain_path}: filed under {expected} but chains "
                                    f"to {common_name(anchor.subject)} ({key_sha1(anchor)})")
            except CertificateRejected as exc:
                problems.append(f"{chain.chain_path}: {exc}")
        mo = self.roots(RootKind.MO)
        for emaid, certs, _ in self.contracts():
            try:
                verify_chain(certs[0], certs[1:], mo, now)
            except CertificateRejected as exc:
                problems.append(f"contract {emaid}: {exc}")
        for entry in self.entries():
            if entry.role.endswith("root") and now > entry.cert.not_valid_after_utc:
                problems.append(f"{entry.where}: {entry.role} "
                                f"{common_name(entry.cert.subject)} expired")
        return problems

    # --- writing ------------------------------------------------------------------------------
    def _ensure_dir(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(self.path, DIR_MODE)

    def import_root(self, kind: RootKind, data: bytes) -> list[x509.Certificate]:
        """Add root certificate(s) to the bundle of ``kind`` (a CSMS InstallCertificate or
        ``secc certs import``); self-signed CA certificates only; duplicates ignored."""
        new = load_certs(data)
        for cert in new:
            try:
                constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
            except x509.ExtensionNotFound:
                raise StoreError(f"{common_name(cert.subject)} is not a CA (no "
                                 "basicConstraints)") from None
            if not constraints.value.ca or cert.issuer != cert.subject:
                raise StoreError(f"{common_name(cert.subject)} is not a self-signed root CA")
        have = self.roots(kind)
        known = {cert_id(c) for c in have}
        added = [c for c in new if cert_id(c) not in known]
        if added:
            self._ensure_dir()
            atomic_write(self.path / kind.file_name, pem(have + added), CERT_MODE)
        return added

    def install_secc_chain(self, chain_data: bytes, key: ec.EllipticCurvePrivateKey | None = None,
                           *, default: bool | None = None,
                           now: dt.datetime | None = None) -> SeccChain:
        """Install a SECC chain (leaf first) with its key (None: the pending CSR key). It must
        chain to an installed V2G root; it is filed under that root, and becomes the default
        chain when there is none yet, when it replaces the default's root, or when asked."""
        certs = load_certs(chain_data)
        pending = self.path / "pending_key.pem"
        if key is None:
            if not pending.is_file():
                raise StoreError("no key given and no pending CSR key (secc certs csr)")
            key = load_key(pending.read_bytes())
        if not _same_key(key, certs[0]):
            raise StoreError("the key does not belong to the chain's leaf certificate")
        try:
            anchor = verify_chain(certs[0], certs[1:], self.roots(RootKind.V2G), now)
        except CertificateRejected as exc:
            raise StoreError(f"SECC chain refused: {exc}") from None
        self._ensure_dir()
        folder = self.path / "chains" / key_sha1(anchor)
        folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        atomic_write(folder / "secc_key.pem", _key_pem(key), KEY_MODE)
        atomic_write(folder / "secc_chain.pem", pem(certs), CERT_MODE)
        current = self._default_anchor()
        if default or current is None or (default is None and current == key_sha1(anchor)):
            atomic_write(self.path / "secc_key.pem", _key_pem(key), KEY_MODE)
            atomic_write(self.path / "secc_chain.pem", pem(certs), CERT_MODE)
        if pending.is_file() and _same_key(load_key(pending.read_bytes()), certs[0]):
            pending.unlink()
        return SeccChain(folder / "secc_chain.pem", folder / "secc_key.pem", tuple(certs))

    def _default_anchor(self) -> str | None:
        path = self.path / "secc_chain.pem"
        if not path.is_file():
            return None
        certs = load_certs(path.read_bytes())
        for root in self.roots(RootKind.V2G):
            if root.subject == certs[-1].issuer:
                return key_sha1(root)
        return ""

    def new_csr(self, common_name_: str, organization: str, *, country: str = "DE",
                domain: str = "CPO") -> bytes:
        """A fresh P-256 key (kept as ``pending_key.pem``, 0600) and its CSR (PEM) for
        OCPP SignCertificate(V2GCertificate): CN = the SECC's id, DC=CPO (ISO 15118-2 naming)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name_),
                          x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, organization),
                          x509.NameAttribute(x509.NameOID.COUNTRY_NAME, country),
                          x509.NameAttribute(x509.NameOID.DOMAIN_COMPONENT, domain)])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key,
                                                                              hashes.SHA256())
        self._ensure_dir()
        atomic_write(self.path / "pending_key.pem", _key_pem(key), KEY_MODE)
        return csr.public_bytes(serialization.Encoding.PEM)

    def cache_contract(self, emaid: str, chain: Sequence[x509.Certificate],
                       ocsp_status: str = "unchecked", now: dt.datetime | None = None) -> None:
        """Keep a contract chain the SECC saw (newest 5) with its OCSP status."""
        now = now or dt.datetime.now(dt.timezone.utc)
        safe = "".join(ch for ch in emaid if ch.isalnum())
        if not safe:
            raise StoreError(f"eMAID {emaid!r} has no usable characters")
        folder = self.path / "contracts"
        folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        atomic_write(folder / f"{safe}.pem", pem(chain), CERT_MODE)
        meta = {"emaid": emaid, "stored_at": now.isoformat(),
                "ocsp": {"status": ocsp_status, "checked_at": now.isoformat()}}
        atomic_write(folder / f"{safe}.json", json.dumps(meta).encode(), CERT_MODE)
        for old_emaid, _, _ in self.contracts()[MAX_CONTRACTS:]:
            self.delete_contract(old_emaid)

    def delete_contract(self, emaid: str) -> bool:
        folder = self.path / "contracts"
        found = False
        for suffix in (".pem", ".json"):
            path = folder / f"{emaid}{suffix}"
            if path.is_file():
                path.unlink()
                found = True
        return found

    def delete(self, ref: str) -> Entry:
        """Remove one root (from its bundle) or one cached contract, by fingerprint prefix. The
        SECC's own chain is replaced, never deleted here (that would end TLS)."""
        entry = self.find(ref)
        if entry.role.endswith("root"):
            kind = RootKind(entry.role.split()[0])
            rest = [c for c in self.roots(kind) if cert_id(c) != entry.id]
            if rest:
                atomic_write(self.path / kind.file_name, pem(rest), CERT_MODE)
            else:  # no empty bundle: readers take a missing file as "none installed"
                (self.path / kind.file_name).unlink()
            return entry
        if entry.role == "contract":
            self.delete_contract(entry.where.stem)
            return entry
        raise StoreError(f"{entry.role} {common_name(entry.cert.subject)} is part of a chain: "
                         "install a new SECC chain instead of deleting it")


def expiry_warnings(directory: Path, now: dt.datetime | None = None) -> list[dict[str, str]]:
    """The store's certificates that expired or expire within ``DEFAULT_WARN_DAYS``, one
    dict each (what the daemon logs at start)."""
    return [{"role": entry.role, "cn": common_name(entry.cert.subject), "state": state,
             "file": str(entry.where), "fingerprint": entry.id[:12]}
            for entry, state in CertificateStore(directory).expiring(now)]


if __name__ == "__main__":
    # ``python -m secc.certstore DIR``: the expiry warnings as JSON lines. The daemon runs
    # this as a short child process when it has no other use for ``cryptography`` (~12 MB),
    # beside the charger's real work: at low priority.
    os.nice(10)
    for warning in expiry_warnings(Path(sys.argv[1])):
        print(json.dumps(warning))
