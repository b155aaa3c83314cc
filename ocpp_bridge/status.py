"""StatusNotification per EVSE, in step with that EVSE's transaction messages.

The SECC publishes its state at once, while the TransactionEvents of the same moment travel
through two persistent queues (its outbox, then ours). Sent naively, the CSMS would see
``Available`` before the ``Ended`` of the transaction that just finished. So an EVSE's status
is *held* while

* the SECC's state names (``after_message_id``) a transaction_event/meter_values message
  that has not been delivered yet (it may still sit in the SECC's outbox), or
* a TransactionEvent of that EVSE is still queued here, or
* the new status is ``Available`` and that EVSE still has a transaction without ``Ended``
  (the event is still in the SECC's outbox),

and sent as soon as that clears, or after ``HOLD_MAX_S`` with a warning (a SECC that died
mid-transaction must not leave the CSMS with a stale status forever).

After every (re)connection every configured EVSE is reported; one the SECC never told us
about is ``Unavailable`` (no SECC, no charging). Tasks live per connection: a disconnect
cancels them and the next connection reports everything again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from secc.common.logs import layer_logger

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("ocpp")

HOLD_MAX_S = 30.0
UNKNOWN_STATUS = "Unavailable"   # the SECC of this EVSE has not published its state


class StatusReporter:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self._sent: dict[int, str] = {}
        self._after: dict[int, str] = {}       # EVSE -> message the state must wait for
        self._tasks: dict[int, asyncio.Task] = {}
        self._wakeup = asyncio.Event()
        self._cp: Any = None
        self.held_ms: list[float] = []     # how long each held status waited (diagnostics)

    # --- inputs ---------------------------------------------------------------------------------
    def queue_progress(self) -> None:
        """A queued message was sent (or a new one queued): re-check the held statuses."""
        self._wakeup.set()

    def after_message(self, evse_id: int, message_id: str | None) -> None:
        if message_id:
            self._after[evse_id] = message_id
        else:
            self._after.pop(evse_id, None)

    def changed(self, evse_id: int) -> None:
        """The SECC reported a new state for ``evse_id``."""
        if self._cp is not None:
            self._schedule(evse_id)

    def connection_up(self, cp: Any) -> None:
        """Registered at the CSMS: report every EVSE (statuses known or not)."""
        self.connection_down()
        self._cp = cp
        for evse_id in self.bridge.config.station.evse_ids:
            self._schedule(evse_id)

    def connection_down(self) -> None:
        self._cp = None
        self._sent.clear()
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def wanted(self, evse_id: int) -> str:
        return self.bridge.connector_status.get(evse_id, UNKNOWN_STATUS)

    # --- the per-EVSE sender ----------------------------------------------------------------------
    def _schedule(self, evse_id: int) -> None:
        task = self._tasks.get(evse_id)
        if task is not None and not task.done():
            self._wakeup.set()   # the running sender re-reads the wanted status
            return
        self._tasks[evse_id] = asyncio.ensure_future(self._deliver(self._cp, evse_id))

    def held(self, evse_id: int) -> bool:
        queue = self.bridge.queue
        after = self._after.get(evse_id)
        if after is not None and queue.message_state(after) in (None, "queued"):
            return True
        if queue.queued_transaction_events(evse_id):
            return True
        return self.wanted(evse_id) == "Available" and queue.has_open_transaction(evse_id)

    async def _deliver(self, cp: Any, evse_id: int) -> None:
        while self.wanted(evse_id) != self._sent.get(evse_id):
            started = time.monotonic()
            while self.held(evse_id) and time.monotonic() - started < HOLD_MAX_S:
                wakeup = self._wakeup
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), 0.5)
                if wakeup.is_set():
                    self._wakeup = asyncio.Event()
            status = self.wanted(evse_id)
            if self.held(evse_id):
                log.warning("StatusNotification held for its transaction's events too long, "
                            "sent anyway", extra={"evse": evse_id, "status": status,
                                                  "held_s": HOLD_MAX_S})
            waited = (time.monotonic() - started) * 1000
            try:
                await self.bridge.send_status(cp, evse_id, status)
            except Exception as exc:  # noqa: BLE001 - resent after the next (re)connect anyway
                from ocpp_bridge.app import describe_failure

                log.warning("StatusNotification failed", extra={
                    "evse": evse_id, "error": describe_failure(
                        exc, self.bridge.config.csms.response_timeout)})
                return
            self._sent[evse_id] = status
            if waited > 1:
                self.held_ms.append(waited)
