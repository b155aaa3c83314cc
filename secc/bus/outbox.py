"""The SECC's persistent outbox: messages that must not be lost wait here until acked.

A transaction event or meter reading is committed to SQLite (WAL, synchronous=FULL so a
power cut after the commit keeps it) *before* the session layer is told it was sent. The
client then sends rows oldest first, one at a time, and deletes a row only when the bridge
replies that it has committed the message to its own queue. Resending after a lost ack is
harmless: the bridge deduplicates on ``message_id``.

An fsync takes 10-200 ms on eMMC or SD cards: the client calls these methods from one worker
thread (``SeccBusClient``), never from the event loop the sessions run on. The connection is
shared under a lock, so the few synchronous readers (``pending``) stay safe.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OutboxRow:
    row_id: int
    channel: str
    evse_id: str
    message_id: str
    payload: dict[str, Any]


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " channel TEXT NOT NULL, evse_id TEXT NOT NULL, message_id TEXT NOT NULL UNIQUE,"
            " payload TEXT NOT NULL, created REAL NOT NULL, dead_reason TEXT)")

    def add(self, channel: str, evse_id: str, payload: dict[str, Any]) -> str:
        """Commit one message; fills in ``message_id`` when absent and returns it."""
        payload.setdefault("message_id", uuid.uuid4().hex)
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (channel, evse_id, message_id, payload, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (channel, str(evse_id), payload["message_id"], json.dumps(payload), time.time()))
        return payload["message_id"]

    def oldest(self) -> OutboxRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, channel, evse_id, message_id, payload FROM outbox"
                " WHERE dead_reason IS NULL ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return OutboxRow(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def remove(self, message_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE message_id = ?", (message_id,))

    def park(self, message_id: str, reason: str) -> None:
        """Keep a message the bridge refuses for good (contract mismatch) but stop sending it."""
        with self._lock:
            self._db.execute("UPDATE outbox SET dead_reason = ? WHERE message_id = ?",
                             (reason, message_id))

    def pending(self) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE dead_reason IS NULL").fetchone()[0]

    def parked(self) -> list[tuple[str, str]]:
        with self._lock:
            return self._db.execute("SELECT message_id, dead_reason FROM outbox"
                                    " WHERE dead_reason IS NOT NULL").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
