"""Authorization decisions the bridge makes itself when the CSMS cannot be reached.

OCPP 2.0.1 C10-C15 and, for contracts, C07: offline, a charging station may

* validate a contract certificate chain against its installed MO/V2G roots when
  ``ISO15118Ctrlr.ContractValidationOffline`` is true;
* accept an id token it saw accepted before (authorization cache, ``AuthCacheCtrlr``)
  when ``AuthCtrlr.LocalAuthorizeOffline`` is true.

Anything else stays undecided (the SECC gets ``CsmsOffline`` and answers the car with a
timeout). Cache entries live in SQLite next to the queue so they survive restarts.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from ocpp_bridge.certificates import CertificateError, CertificateStore, load_pem_chain
from secc.common.pki.chain import CertificateRejected, RejectReason, verify_chain

# chain rejection -> OCPP AuthorizeCertificateStatusEnumType
CERTIFICATE_STATUS: dict[RejectReason, str] = {
    RejectReason.EXPIRED: "CertificateExpired",
    RejectReason.NOT_YET_VALID: "CertChainError",
    RejectReason.UNKNOWN_ISSUER: "CertChainError",
    RejectReason.BAD_SIGNATURE: "SignatureError",
    RejectReason.NOT_A_CA: "CertChainError",
    RejectReason.KEY_USAGE: "CertChainError",
    RejectReason.PATH_LENGTH: "CertChainError",
    RejectReason.CHAIN_TOO_LONG: "CertChainError",
    RejectReason.MALFORMED: "CertChainError",
}


class AuthCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS auth_cache (id_token TEXT, type TEXT,"
                         " status TEXT, expires REAL, PRIMARY KEY (id_token, type))")

    def remember(self, id_token: str, token_type: str, status: str, expires: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO auth_cache VALUES (?, ?, ?, ?)",
                         (id_token, token_type, status, expires))

    def lookup(self, id_token: str, token_type: str, now: float) -> str | None:
        row = self._db.execute("SELECT status, expires FROM auth_cache WHERE id_token = ?"
                               " AND type = ?", (id_token, token_type)).fetchone()
        if row is None or row[1] < now:
            return None
        return row[0]

    def clear(self) -> int:
        """ClearCache: forget every entry; returns how many there were."""
        return self._db.execute("DELETE FROM auth_cache").rowcount

    def close(self) -> None:
        self._db.close()


def cache_expiry(id_token_info: dict[str, Any], lifetime: int, now: float) -> float:
    """The CSMS's cacheExpiryDateTime when given, else now + AuthCacheCtrlr.LifeTime."""
    text = id_token_info.get("cacheExpiryDateTime")
    if text:
        try:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now + lifetime


def validate_contract_offline(chain_pem: str, store: CertificateStore) -> tuple[str, str | None,
                                                                               str]:
    """(status, certificate_status, reason) from local chain validation."""
    try:
        chain = load_pem_chain(chain_pem)
    except CertificateError as exc:
        return "Invalid", "CertChainError", f"offline: contract chain unparseable: {exc}"
    anchors = store.roots("MORootCertificate") + store.roots("V2GRootCertificate")
    try:
        anchor = verify_chain(chain[0], chain[1:], anchors)
    except CertificateRejected as exc:
        return "Invalid", CERTIFICATE_STATUS[exc.reason], f"offline: contract rejected: {exc}"
    return "Accepted", "Accepted", \
        f"offline: contract validated locally against {anchor.subject.rfc4514_string()}"
