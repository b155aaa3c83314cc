"""The bridge's persistent queue of transaction-related messages (SQLite, WAL).

Rules it enforces (OCPP 2.0.1 E/ offline behaviour, and ours):

* A TransactionEvent or meter reading from the bus is turned into its final OCPP payload
  (transactionId, consecutive seqNo per transaction, ``offline=true`` when the CSMS link was
  down at that moment) and committed in ONE SQLite transaction *before* the bus ack.
* ``message_id`` is unique: a message resent by the SECC after a lost ack is recognised and
  acked again, never queued twice.
* Messages leave strictly in commit order: only the head is ever sent. A timeout or a lost
  connection retries the head with exponential backoff, forever. A CALLERROR answer counts an
  attempt; after ``message_attempts`` the message is *parked* (state ``dead``), not deleted,
  so nothing is dropped and one message the CSMS refuses cannot block the others.

The class is sans-I/O with respect to time: callers pass ``now``; ``head(now)`` tells what to
send or when to look again.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocpp_bridge.stop_reasons import ocpp_end

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS messages_state ON messages(state, id);
CREATE TABLE IF NOT EXISTS transactions (
    evse_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0,
    ended INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (evse_id, session_id)
);
"""


@dataclass(frozen=True)
class QueuedMessage:
    row_id: int
    message_id: str
    action: str
    payload: dict[str, Any]
    attempts: int
    next_attempt: float


@dataclass(frozen=True)
class Enqueued:
    message_id: str
    duplicate: bool
    action: str
    transaction_id: str | None = None
    seq_no: int | None = None


def _meter_values(readings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bus readings -> OCPP MeterValueType list."""
    out = []
    for item in readings:
        sampled = []
        for s in item["samples"]:
            value: dict[str, Any] = {"value": s["value"], "measurand": s["measurand"]}
            for key in ("phase", "context", "location"):
                if key in s:
                    value[key] = s[key]
            if "unit" in s or "multiplier" in s:
                unit: dict[str, Any] = {}
                if "unit" in s:
                    unit["unit"] = s["unit"]
                if "multiplier" in s:
                    unit["multiplier"] = s["multiplier"]
                value["unitOfMeasure"] = unit
            if "signed" in s:
                sig = s["signed"]
                value["signedMeterValue"] = {
                    "signedMeterData": sig["signed_meter_data"],
                    "signingMethod": sig["signing_method"],
                    "encodingMethod": sig["encoding_method"],
                    "publicKey": sig["public_key"]}
            sampled.append(value)
        out.append({"timestamp": item["timestamp"], "sampledValue": sampled})
    return out


class TransactionQueue:
    def __init__(self, path: Path | str, *, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, message_attempts: int = 5) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.message_attempts = message_attempts
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # survive power loss, not only kill -9
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- enqueue ------------------------------------------------------------------------------
    def _duplicate(self, message_id: str) -> Enqueued | None:
        row = self._db.execute("SELECT action FROM messages WHERE message_id = ?",
                               (message_id,)).fetchone()
        return Enqueued(message_id, True, row[0]) if row else None

    def _transaction(self, evse_id: int, session_id: str, now: float) -> tuple[str, int]:
        row = self._db.execute(
            "SELECT transaction_id, next_seq FROM transactions"
            " WHERE evse_id = ? AND session_id = ?",
            (evse_id, session_id)).fetchone()
        if row is None:
            transaction_id = str(uuid.uuid4())
            self._db.execute(
                "INSERT INTO transactions (evse_id, session_id, transaction_id, next_seq, created)"
                " VALUES (?, ?, ?, 0, ?)", (evse_id, session_id, transaction_id, now))
            return transaction_id, 0
        return row[0], row[1]

    def _insert(self, message_id: str, action: str, payload: dict[str, Any], now: float) -> None:
        self._db.execute(
            "INSERT INTO messages (message_id, action, payload, created) VALUES (?, ?, ?, ?)",
            (message_id, action, json.dumps(payload, separators=(",", ":")), now))

    def enqueue_transaction_event(self, evse_id: int, event: dict[str, Any], *, offline: bool,
                                  now: float) -> Enqueued:
        """Bus ``transaction_event`` -> committed OCPP TransactionEventRequest."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            duplicate = self._duplicate(event["message_id"])
            if duplicate:
                self._db.execute("ROLLBACK")
                return duplicate
            transaction_id, seq = self._transaction(evse_id, event["session_id"], now)
            info: dict[str, Any] = {"transactionId": transaction_id}
            if "charging_state" in event:
                info["chargingState"] = event["charging_state"]
            trigger = event["trigger_reason"]
            if "stopped_reason" in event:
                info["stoppedReason"] = event["stopped_reason"]
            if event["event_type"] == "Ended" and "end_reason" in event:
                trigger, info["stoppedReason"] = ocpp_end(event["end_reason"])
            if "remote_start_id" in event:
                info["remoteStartId"] = event["remote_start_id"]
            payload: dict[str, Any] = {
                "eventType": event["event_type"], "timestamp": event["timestamp"],
                "triggerReason": trigger, "seqNo": seq,
                "transactionInfo": info, "evse": {"id": evse_id, "connectorId": 1}}
            if offline:
                payload["offline"] = True
            if "id_token" in event:
                payload["idToken"] = {"idToken": event["id_token"]["id_token"],
                                      "type": event["id_token"]["type"]}
            if "number_of_phases_used" in event:
                payload["numberOfPhasesUsed"] = event["number_of_phases_used"]
            if event.get("readings"):
                payload["meterValue"] = _meter_values(event["readings"])
            self._insert(event["message_id"], "TransactionEvent", payload, now)
            self._db.execute(
                "UPDATE transactions SET next_seq = ?, ended = ?"
                " WHERE evse_id = ? AND session_id = ?",
                (seq + 1, int(event["event_type"] == "Ended"), evse_id, event["session_id"]))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return Enqueued(event["message_id"], False, "TransactionEvent", transaction_id, seq)

    def enqueue_meter_values(self, evse_id: int, message: dict[str, Any], *, offline: bool,
                             now: float) -> Enqueued:
        """Inside a running transaction: TransactionEvent(Updated, MeterValuePeriodic);
        otherwise a MeterValues request."""
        session_id = message.get("session_id")
        running = None
        triggered = all(s.get("context") == "Trigger"
                        for r in message["readings"] for s in r["samples"])
        if session_id and not triggered:   # TriggerMessage(MeterValues) -> MeterValues
            running = self._db.execute(
                "SELECT 1 FROM transactions WHERE evse_id = ? AND session_id = ? AND ended = 0",
                (evse_id, session_id)).fetchone()
        if running:
            event = {"message_id": message["message_id"], "event_type": "Updated",
                     "session_id": session_id, "timestamp": message["readings"][-1]["timestamp"],
                     "trigger_reason": "MeterValuePeriodic", "readings": message["readings"]}
            return self.enqueue_transaction_event(evse_id, event, offline=offline, now=now)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            duplicate = self._duplicate(message["message_id"])
            if duplicate:
                self._db.execute("ROLLBACK")
                return duplicate
            payload = {"evseId": evse_id, "meterValue": _meter_values(message["readings"])}
            self._insert(message["message_id"], "MeterValues", payload, now)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return Enqueued(message["message_id"], False, "MeterValues")

    def enqueue_plain(self, message_id: str, action: str, payload: dict[str, Any], *,
                      now: float) -> Enqueued:
        """Any other message that must reach the CSMS in order (SecurityEventNotification)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            duplicate = self._duplicate(message_id)
            if duplicate:
                self._db.execute("ROLLBACK")
                return duplicate
            self._insert(message_id, action, payload, now)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return Enqueued(message_id, False, action)

    # --- lookups ------------------------------------------------------------------------------
    def transaction_of(self, evse_id: int, session_id: str) -> str | None:
        row = self._db.execute(
            "SELECT transaction_id FROM transactions WHERE evse_id = ? AND session_id = ?",
            (evse_id, session_id)).fetchone()
        return row[0] if row else None

    def session_of(self, transaction_id: str) -> tuple[int, str] | None:
        row = self._db.execute(
            "SELECT evse_id, session_id FROM transactions WHERE transaction_id = ?",
            (transaction_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def running_transaction_starts(self) -> list[tuple[int, str, float]]:
        """(evse_id, transaction_id, created epoch s) of every transaction not yet ended."""
        return self._db.execute(
            "SELECT evse_id, transaction_id, created FROM transactions WHERE ended = 0"
            " ORDER BY created").fetchall()

    def message_state(self, message_id: str) -> str | None:
        """queued, sent or dead; None when the message has not arrived (or was pruned)."""
        row = self._db.execute("SELECT state FROM messages WHERE message_id = ?",
                               (message_id,)).fetchone()
        return row[0] if row else None

    def queued_for_transaction(self, transaction_id: str) -> int:
        return self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE state = 'queued' AND action = 'TransactionEvent'"
            " AND json_extract(payload, '$.transactionInfo.transactionId') = ?",
            (transaction_id,)).fetchone()[0]

    def transaction_running(self, transaction_id: str) -> bool:
        row = self._db.execute("SELECT ended FROM transactions WHERE transaction_id = ?",
                               (transaction_id,)).fetchone()
        return bool(row) and not row[0]

    def has_open_transaction(self, evse_id: int) -> bool:
        """A transaction of this EVSE whose Ended event has not arrived yet."""
        return self._db.execute("SELECT 1 FROM transactions WHERE evse_id = ? AND ended = 0"
                                " LIMIT 1", (evse_id,)).fetchone() is not None

    def queued_transaction_events(self, evse_id: int) -> int:
        """TransactionEvents of this EVSE not yet delivered to the CSMS."""
        return self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE state = 'queued' AND action = 'TransactionEvent'"
            " AND json_extract(payload, '$.evse.id') = ?", (evse_id,)).fetchone()[0]

    # --- sending ------------------------------------------------------------------------------
    def head(self) -> QueuedMessage | None:
        """The oldest unsent message: the only one that may be sent now (strict order)."""
        row = self._db.execute(
            "SELECT id, message_id, action, payload, attempts, next_attempt FROM messages"
            " WHERE state = 'queued' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return QueuedMessage(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])

    def mark_sent(self, row_id: int) -> None:
        self._db.execute("UPDATE messages SET state = 'sent' WHERE id = ?", (row_id,))

    def mark_failed(self, row_id: int, error: str, now: float, *, refused: bool) -> float:
        """Count a failed attempt; returns when to try again. ``refused``: the CSMS answered
        with a CALLERROR (after ``message_attempts`` of those the message is parked)."""
        row = self._db.execute("SELECT attempts FROM messages WHERE id = ?", (row_id,)).fetchone()
        attempts = (row[0] if row else 0) + 1
        delay = min(self.backoff_initial * 2 ** (attempts - 1), self.backoff_max)
        state = "dead" if refused and attempts >= self.message_attempts else "queued"
        self._db.execute(
            "UPDATE messages SET attempts = ?, next_attempt = ?, last_error = ?, state = ?"
            " WHERE id = ?", (attempts, now + delay, error[:500], state, row_id))
        return now + delay

    def prune(self, now: float, keep_seconds: float = 7 * 86400) -> int:
        """Forget delivered messages and ended transactions older than ``keep_seconds``.

        They are kept that long so a SECC resending an old message (after restoring a backup
        of its outbox, say) is still recognised as a duplicate. Parked messages stay."""
        cutoff = now - keep_seconds
        deleted = self._db.execute("DELETE FROM messages WHERE state = 'sent' AND created < ?",
                                   (cutoff,)).rowcount
        self._db.execute("DELETE FROM transactions WHERE ended = 1 AND created < ?", (cutoff,))
        return deleted

    def reset_backoff(self) -> None:
        """A fresh CSMS connection: retry the head at once."""
        self._db.execute("UPDATE messages SET next_attempt = 0 WHERE state = 'queued'")

    def pending(self) -> int:
        return self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE state = 'queued'").fetchone()[0]

    def dead(self) -> list[tuple[str, str, str]]:
        return self._db.execute(
            "SELECT message_id, action, last_error FROM messages WHERE state = 'dead'"
            " ORDER BY id").fetchall()

