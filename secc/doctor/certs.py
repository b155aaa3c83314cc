"""Certificate store checks: the SECC's TLS chain and key, and the trust anchors.

Reads ``[v2g].certificate_dir`` through the certificate store (``secc.certstore``: the same
files the daemon and ``secc certs`` use) and adds what a field engineer needs: which check
failed, what needs it now, and the fix (the OCPP InstallCertificate type or the ``secc certs``
command). The store's own ``verify`` (chains to the V2G root, per-root SECC chains, cached
contracts) is reported as ``certs.store``. Pure functions of the files and ``now``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from secc.certstore import CertificateStore, RootKind
from secc.config import BoardConfig
from secc.doctor import Finding, Status

#: warn this long before the SECC leaf expires (renewal via the CSMS takes days)
EXPIRY_WARNING = dt.timedelta(days=30)

# root kind -> (what needs it, the OCPP 2.0.1 InstallCertificate type that provides it)
ROOTS: dict[RootKind, tuple[str, str | None]] = {
    RootKind.V2G: ("ISO 15118 Plug & Charge: contract and CPS chains, -20 vehicle TLS",
                   "V2GRootCertificate"),
    RootKind.MO: ("Plug & Charge: verifying the car's contract certificate (eMAID)",
                  "MORootCertificate"),
    RootKind.OEM: ("ISO 15118-20 mutual TLS and certificate installation: the car's OEM "
                   "provisioning certificate", None),
}


def _load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _days(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def check_certificates(config: BoardConfig, now: dt.datetime | None = None) -> list[Finding]:
    now = now or dt.datetime.now(dt.timezone.utc)
    directory = Path(config.v2g.certificate_dir)
    setting = f'[v2g].certificate_dir = "{directory}"'
    if not directory.is_dir():
        status = Status.FAIL if config.v2g.tls == "required" or config.v2g.plug_and_charge \
            else Status.WARN
        return [Finding("certs.directory", status, f"certificate directory {directory} does "
                        "not exist: no TLS, no Plug & Charge",
                        f"create it with secc_chain.pem and secc_key.pem, or correct {setting}")]
    store = CertificateStore(directory)
    findings = [_check_leaf(directory, now)]
    for kind, (purpose, install_type) in ROOTS.items():
        findings.append(_check_root(config, store, kind, purpose, install_type, now))
    findings += _store_problems(store, findings, now)
    return findings


def _store_problems(store: CertificateStore, found: list[Finding],
                    now: dt.datetime) -> list[Finding]:
    """``CertificateStore.verify`` lines (e.g. a SECC chain that does not lead to the V2G
    root, a per-root chain or a cached contract gone bad) not already said above."""
    chain, key = str(store.path / "secc_chain.pem"), str(store.path / "secc_key.pem")
    leaf_failed = any(f.check == "certs.secc_leaf" and f.status is Status.FAIL for f in found)

    def said(line: str) -> bool:
        return (line.startswith("no SECC chain")                        # certs.secc_leaf
                or (leaf_failed and line.startswith((chain, key)))     # certs.secc_leaf
                or (line.startswith(key) and "does not belong" in line)
                or (" root " in line and line.endswith(" expired")))   # certs.*_root

    try:
        problems = store.verify(now)
    except (OSError, ValueError) as exc:
        problems = [f"{store.path}: the store cannot be read: {exc}"]
    return [Finding("certs.store", Status.FAIL, line, "secc certs verify --board FILE lists "
                    "these; install a matching chain with secc certs import secc-chain FILE "
                    "--key KEY, or the missing root")
            for line in problems if not said(line)]


def _check_leaf(directory: Path, now: dt.datetime) -> Finding:
    chain_file, key_file = directory / "secc_chain.pem", directory / "secc_key.pem"
    if not chain_file.is_file():
        return Finding("certs.secc_leaf", Status.FAIL, f"{chain_file} is missing: the SECC "
                       "cannot offer TLS (ISO 15118-2 TLS, all of -20, Plug & Charge)",
                       "install the SECC certificate chain (leaf first, then the CPO "
                       "sub-CAs) as secc_chain.pem; from the CSMS: SignCertificate "
                       "(V2GCertificate), then CertificateSigned")
    try:
        chain = _load_chain(chain_file)
    except ValueError as exc:
        return Finding("certs.secc_leaf", Status.FAIL, f"{chain_file} is not a PEM "
                       f"certificate chain: {exc}", "replace it with the PEM chain, leaf first")
    leaf = chain[0]
    subject = leaf.subject.rfc4514_string()
    left = leaf.not_valid_after_utc - now
    details = {"subject": subject, "not_after": leaf.not_valid_after_utc.isoformat(),
               "days_left": _days(left), "chain_length": len(chain)}
    renew = ("renew the SECC certificate: the CSMS's SignCertificate (V2GCertificate) / "
             "CertificateSigned flow, or install a new secc_chain.pem + secc_key.pem")
    if not key_file.is_file():
        return Finding("certs.secc_leaf", Status.FAIL, f"{key_file} is missing", renew,
                       details)
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    except (ValueError, TypeError) as exc:
        return Finding("certs.secc_leaf", Status.FAIL, f"{key_file} is unreadable: {exc}",
                       "install the unencrypted PEM key of the SECC leaf", details)
    if key.public_key().public_numbers() != leaf.public_key().public_numbers():
        return Finding("certs.secc_leaf", Status.FAIL, "secc_key.pem does not belong to the "
                       "leaf in secc_chain.pem (TLS handshakes will fail)",
                       "install the key and chain from the same CertificateSigned", details)
    if leaf.not_valid_before_utc > now:
        return Finding("certs.secc_leaf", Status.FAIL, f"SECC leaf {subject} is not valid "
                       f"before {leaf.not_valid_before_utc.isoformat()} (clock wrong?)",
                       "set the system clock (timedatectl, NTP) or install a current "
                       "certificate", details)
    if left <= dt.timedelta(0):
        return Finding("certs.secc_leaf", Status.FAIL, f"SECC leaf {subject} expired "
                       f"{leaf.not_valid_after_utc.date()} ({-_days(left)} days ago): cars "
                       "refuse the TLS handshake", renew, details)
    if left < EXPIRY_WARNING:
        return Finding("certs.secc_leaf", Status.WARN, f"SECC leaf {subject} expires in "
                       f"{_days(left)} days ({leaf.not_valid_after_utc.date()})", renew, details)
    curve = getattr(leaf.public_key(), "curve", None)
    if not isinstance(curve, (ec.SECP256R1, ec.SECP521R1)):
        return Finding("certs.secc_leaf", Status.WARN, f"SECC leaf key is "
                       f"{getattr(curve, 'name', type(leaf.public_key()).__name__)}; ISO "
                       "15118-2 needs secp256r1, -20 secp521r1", "issue the leaf on the "
                       "standard curve", details)
    return Finding("certs.secc_leaf", Status.OK, f"SECC leaf {subject} valid for "
                   f"{_days(left)} more days", details=details)


def _check_root(config: BoardConfig, store: CertificateStore, kind: RootKind, purpose: str,
                install_type: str | None, now: dt.datetime) -> Finding:
    name = kind.file_name
    check = "certs." + name.removesuffix(".pem")
    path = store.path / name
    needed = _root_needed(config, name)
    local = f"secc certs import {kind.value}-root FILE"
    if install_type:
        fix = (f"from the CSMS: InstallCertificate(certificateType={install_type}) with the "
               f"root; on the charger: {local}")
    else:
        fix = (f"{local} with the OEM root from the vehicle makers / the PKI operator; "
               "OCPP 2.0.1 has no InstallCertificate type for OEM roots")
    if not path.is_file():
        status = Status.FAIL if needed else Status.WARN
        why = "needed now" if needed else "needed once Plug & Charge / -20 TLS is switched on"
        return Finding(check, status, f"{name} missing ({purpose}); {why}", fix,
                       {"install_certificate_type": install_type})
    try:
        roots = store.roots(kind)
    except ValueError as exc:
        return Finding(check, Status.FAIL, f"{path} is not PEM: {exc}", fix)
    expired = [r for r in roots if r.not_valid_after_utc <= now]
    if expired:
        return Finding(check, Status.FAIL, f"{name}: root "
                       f"{expired[0].subject.rfc4514_string()} expired "
                       f"{expired[0].not_valid_after_utc.date()}", fix)
    return Finding(check, Status.OK, f"{name}: {len(roots)} root(s), "
                   + ", ".join(r.subject.rfc4514_string() for r in roots))


def _root_needed(config: BoardConfig, name: str) -> bool:
    pnc = config.v2g.plug_and_charge
    if name == "mo_root.pem":
        return pnc
    if name == "v2g_root.pem":
        return pnc
    return pnc and "iso20" in config.v2g.protocols   # oem_root
