"""OCPP 2.0.1 Local Authorization List (functional block D) and ClearCache (C11).

The CSMS keeps a versioned list of id tokens on the station (SendLocalList Full/Differential,
GetLocalListVersion). The bridge stores it in SQLite next to the queue and consults it when
the CSMS cannot be reached (C13: ``AuthCtrlr.LocalAuthorizeOffline``), before the
authorization cache: a token on the list is decided by the list (Accepted, Blocked, Expired,
Invalid...), whatever the cache remembers.

``LocalListHandlers`` holds the ``@on`` handlers; ``BridgeChargePoint`` inherits them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from ocpp_bridge.offline_auth import cache_expiry
from secc.common.logs import layer_logger

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")


class LocalAuthList:
    """The list and its version, atomically replaced or patched."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS local_list (id_token TEXT, type TEXT, info TEXT,"
            " PRIMARY KEY (id_token, type));"
            "CREATE TABLE IF NOT EXISTS local_list_version (version INTEGER NOT NULL);")

    def version(self) -> int:
        row = self._db.execute("SELECT version FROM local_list_version").fetchone()
        return row[0] if row else 0

    def entries(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0]

    def update(self, version: int, full: bool, items: list[dict[str, Any]]) -> str:
        """SendLocalList: Accepted, VersionMismatch (Differential not newer) or Failed."""
        if not full and version <= self.version():
            return "VersionMismatch"
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if full:
                self._db.execute("DELETE FROM local_list")
            for item in items:
                token = item["idToken"]
                key = (token["idToken"], token["type"])
                if "idTokenInfo" in item:
                    self._db.execute("INSERT OR REPLACE INTO local_list VALUES (?, ?, ?)",
                                     (*key, json.dumps(item["idTokenInfo"])))
                else:   # Differential without idTokenInfo: remove the token
                    self._db.execute("DELETE FROM local_list WHERE id_token = ? AND type = ?",
                                     key)
            self._db.execute("DELETE FROM local_list_version")
            self._db.execute("INSERT INTO local_list_version VALUES (?)", (version,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return "Accepted"

    def lookup(self, id_token: str, token_type: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT info FROM local_list WHERE id_token = ? AND type = ?",
                               (id_token, token_type)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


def authorize_from_list(bridge: Bridge, id_token: str, token_type: str, now: float
                        ) -> dict[str, Any] | None:
    """C13/C14 offline: the list's verdict as a bus authorize_response, or None (not listed,
    or the list is switched off)."""
    if not bridge.device_model.get("LocalAuthListCtrlr", "Enabled"):
        return None
    info = bridge.local_list.lookup(id_token, token_type)
    if info is None:
        return None
    status = info.get("status", "Invalid")
    if status == "Accepted" and "cacheExpiryDateTime" in info and \
            cache_expiry(info, 0, now) < now:
        status = "Expired"
    return {"status": status, "reason": f"offline: local authorization list v"
                                        f"{bridge.local_list.version()} says {status}"}


class LocalListHandlers:
    bridge: Bridge

    @on(Action.send_local_list)
    def on_send_local_list(self, version_number: int, update_type: str,
                           local_authorization_list: list[dict] | None = None, **_: Any):
        model = self.bridge.device_model
        if not model.get("LocalAuthListCtrlr", "Enabled"):
            return call_result.SendLocalList(status="Failed", status_info={
                "reason_code": "NotEnabled",
                "additional_info": "LocalAuthListCtrlr.Enabled is false"})
        items = [snake_to_camel_case(i) for i in local_authorization_list or []]
        if len(items) > model.get("LocalAuthListCtrlr", "ItemsPerMessage"):
            return call_result.SendLocalList(status="Failed", status_info={
                "reason_code": "TooManyElements"})
        status = self.bridge.local_list.update(version_number, update_type == "Full", items)
        log.info("SendLocalList", extra={"version": version_number, "update": update_type,
                                         "items": len(items), "status": status,
                                         "entries": self.bridge.local_list.entries()})
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any):
        enabled = self.bridge.device_model.get("LocalAuthListCtrlr", "Enabled")
        return call_result.GetLocalListVersion(
            version_number=self.bridge.local_list.version() if enabled else 0)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any):
        """C11: Rejected when the cache is switched off (AuthCacheCtrlr.Enabled false)."""
        if not self.bridge.device_model.get("AuthCacheCtrlr", "Enabled"):
            return call_result.ClearCache(status="Rejected")
        removed = self.bridge.auth_cache.clear()
        log.info("authorization cache cleared", extra={"entries": removed})
        return call_result.ClearCache(status="Accepted")
