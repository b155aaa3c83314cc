"""The conformance suite's test PKI: one per test session, made with ``cryptography`` by the
project's certificate maker (``sim.testing.pki``; certificates only, no session logic).

* V2G root -> CPO sub-CA 1 -> CPO sub-CA 2 -> SECC leaf: the daemon's TLS chain
* MO root -> MO sub-CA 1 -> MO sub-CA 2 -> contract leaf (CN = eMAID): the tester's contract
* OEM root -> OEM sub-CA -> OEM provisioning leaf

``certificate_dir()`` writes the daemon's ``[v2g].certificate_dir`` (SECC chain and key, V2G,
MO and OEM roots) once; ``contract(...)`` makes contracts with a defect where a case needs one.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

from sim.testing.pki import ContractCredential, Credential, Defect, TestPKI

_LOCK = threading.RLock()
_STATE: dict[str, object] = {}


def session_pki() -> TestPKI:
    """The suite's PKI (made on first use, kept for the test session)."""
    with _LOCK:
        pki = _STATE.get("pki")
        if pki is None:
            pki = _STATE["pki"] = TestPKI()
        return pki  # type: ignore[return-value]


def certificate_dir() -> str:
    """A directory with the daemon's certificates (removed at exit)."""
    pki = session_pki()
    with _LOCK:
        path = _STATE.get("dir")
        if path is None:
            path = tempfile.mkdtemp(prefix="pysecc-conformance-pki-")
            atexit.register(shutil.rmtree, path, True)
            pki.write_secc_files(Path(path))
            _STATE["dir"] = path
        return path  # type: ignore[return-value]


def good_contract() -> ContractCredential:
    """The tester's contract (leaf + two MO sub-CAs under the installed MO root)."""
    with _LOCK:
        contract = _STATE.get("contract")
        if contract is None:
            contract = _STATE["contract"] = session_pki().issue_contract()
        return contract  # type: ignore[return-value]


def contract(*, leaf: Defect | None = None, sub1: Defect | None = None,
             sub2: Defect | None = None, emaid: str | None = None) -> ContractCredential:
    """A contract under the installed MO root with a defect in the leaf or a sub-CA, or
    another eMAID (CN) in the leaf."""
    pki = session_pki()
    ca1 = pki.issue_ca(pki.mo_root, "MO Sub-CA 1", "pysecc eMSP", path_length=1, defect=sub1)
    ca2 = pki.issue_ca(ca1, "MO Sub-CA 2", "pysecc eMSP", path_length=0, defect=sub2)
    cert = pki.issue_leaf(ca2, emaid or pki.emaid, "pysecc eMSP", domain="MO", defect=leaf,
                          usage={"digital_signature": True, "content_commitment": True,
                                 "key_agreement": True})
    return ContractCredential(cert, [ca2, ca1])


def foreign_contract() -> ContractCredential:
    """A contract of another PKI whose names are ours (same eMAID, same CA names), keys not."""
    with _LOCK:
        foreign = _STATE.get("foreign")
        if foreign is None:
            foreign = _STATE["foreign"] = TestPKI().issue_contract()
        return foreign  # type: ignore[return-value]


def expired_oem_leaf() -> Credential:
    pki = session_pki()
    return pki.issue_leaf(pki.oem_sub, pki.vin, "pysecc OEM", domain="OEM",
                          defect=Defect.EXPIRED)


def stranger_key() -> Credential:
    """A key (and certificate) of no contract: signatures made with it must fail."""
    pki = session_pki()
    return pki.vehicle_leaf
