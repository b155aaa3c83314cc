"""The SECC side of the bus: what the SECC daemon calls to talk to the OCPP bridge.

Usage (one client per EVSE)::

    client = SeccBusClient(SeccBusConfig(
        broker=BrokerConfig(port=1883, username=..., password=...),
        evse_id=1, outbox_path=Path("/var/lib/pysecc/outbox-1.db")))
    async with client:
        await client.publish_state("Occupied", session_id=sid, protocol="ISO15118-2")
        await client.publish_session_event("SessionStarted", sid)
        await client.send_transaction_event("Started", sid, "CablePluggedIn",
                                            charging_state="EVConnected")
        await client.send_meter_values([reading(now, [sample("Energy.Active.Import.Register",
                                                             1234.0, unit="Wh")])], session_id=sid)
        reply = await client.request("get_15118_ev_certificate", {...})

Events and state are fire-and-forget (QoS 1; state is retained and republished after every
reconnect). Transaction events and meter values go through the persistent ``Outbox`` and are
resent until the bridge acks that they are in *its* persistent queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secc import contract
from secc.common.mqtt import (
    BrokerConfig,
    BusEndpoint,
    BusTimeout,
    BusUnavailable,
    Incoming,
    Will,
    stop_tasks,
)
from secc.bus.outbox import Outbox
from secc.common.logs import layer_logger

log = layer_logger("bus")

CommandHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
EventHandler = Callable[[dict[str, Any]], Awaitable[None]]


class BusRequestError(RuntimeError):
    """The bridge answered a request with a ``bus_error`` (code, message, capability)."""

    def __init__(self, code: str, message: str, capability: str | None = None) -> None:
        self.code = code
        self.capability = capability
        super().__init__(f"{code}: {message}")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def sample(measurand: str, value: float, *, unit: str | None = None, phase: str | None = None,
           context: str | None = None, signed: dict[str, str] | None = None) -> dict[str, Any]:
    """One sampled value as the contract spells it (``signed``: OCMF data from the meter)."""
    out: dict[str, Any] = {"measurand": measurand, "value": value}
    for key, val in (("unit", unit), ("phase", phase), ("context", context), ("signed", signed)):
        if val is not None:
            out[key] = val
    return out


def reading(timestamp: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"timestamp": timestamp, "samples": samples}


@dataclass(frozen=True)
class SeccBusConfig:
    broker: BrokerConfig
    evse_id: str | int
    outbox_path: Path
    client_id: str | None = None
    ack_timeout: float = 3.0
    request_timeout: float = 10.0
    retry_initial: float = 0.2
    retry_max: float = 5.0


@dataclass
class SeccBusClient:
    config: SeccBusConfig
    _state: bytes | None = field(default=None, init=False)
    _commands: dict[str, CommandHandler] = field(default_factory=dict, init=False)
    _events: dict[str, EventHandler] = field(default_factory=dict, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tasks: list[asyncio.Task] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        evse = str(self.config.evse_id)
        self.evse_id = evse
        self.client_id = self.config.client_id or f"secc-{evse}-{uuid.uuid4().hex[:8]}"
        online = contract.BY_NAME["secc_online"]
        self.outbox = Outbox(self.config.outbox_path)
        # every outbox call (validation, SQLite commit with fsync) runs on this one thread,
        # in order: the event loop the sessions share never waits for the disk
        self._disk = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="secc-outbox")
        self.endpoint = BusEndpoint(
            self.config.broker, self.client_id,
            will=Will(online.topic_for(evse), contract.encode("online", {"online": False})))
        self.endpoint.set_reply_topic(contract.reply_topic(evse, self.client_id))
        self.endpoint.on_connect.append(self._announce)
        self._bridge_online = False
        self._csms_accepted = False
        self._last_persisted: str | None = None
        self.endpoint.subscribe(contract.BY_NAME["bridge_online"].topic, self._on_bridge_state,
                                inline=True)
        self.endpoint.subscribe(contract.BY_NAME["csms_connection"].topic,
                                self._on_bridge_state, inline=True)
        for channel in contract.CHANNELS:
            if (channel.publisher is contract.Publisher.BRIDGE
                    and channel.kind is contract.Kind.REQUEST):
                self.endpoint.subscribe(channel.topic_for(evse), self._on_command)
            elif (channel.publisher is contract.Publisher.BRIDGE
                    and channel.kind in (contract.Kind.EVENT, contract.Kind.STATE)
                    and "{evse_id}" in channel.topic):
                self.endpoint.subscribe(channel.topic_for(evse), self._on_event)

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.endpoint.run(), name="bus-connection"),
                       asyncio.create_task(self._drain_outbox(), name="bus-outbox")]

    async def stop(self) -> None:
        if self.endpoint.connected:
            with contextlib.suppress(BusUnavailable):
                await self.endpoint.publish(
                    contract.BY_NAME["secc_online"].topic_for(self.evse_id),
                    contract.encode("online", {"online": False, "since": utc_now(),
                                               "client_id": self.client_id}), retain=True)
        await stop_tasks(self._tasks, "SECC bus")
        await self.endpoint.close()
        with contextlib.suppress(RuntimeError):  # stopped twice: the thread is gone already
            await self._on_disk(self.outbox.close)
        self._disk.shutdown(wait=True)

    async def __aenter__(self) -> SeccBusClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await self.endpoint.wait_connected(timeout)

    async def _announce(self) -> None:
        online = contract.BY_NAME["secc_online"]
        await self.endpoint.publish(online.topic_for(self.evse_id), contract.encode(
            "online", {"online": True, "since": utc_now(), "client_id": self.client_id}),
            retain=True)
        if self._state is not None:
            await self.endpoint.publish(contract.BY_NAME["session_state"].topic_for(self.evse_id),
                                        self._state, retain=True)
        self._wake.set()

    @property
    def bridge_online(self) -> bool:
        """The bridge's retained ``online`` state as last seen (False before any)."""
        return self._bridge_online

    @property
    def csms_available(self) -> bool:
        """Bus up, bridge online and registered at the CSMS (from their retained topics)."""
        return self.endpoint.connected and self._bridge_online and self._csms_accepted

    async def _on_bridge_state(self, message: Incoming) -> None:
        try:
            if message.topic == contract.BY_NAME["bridge_online"].topic:
                self._bridge_online = contract.decode("online", message.payload)["online"]
            else:
                state = contract.decode("csms_connection", message.payload)
                self._csms_accepted = state["connected"] and state.get("registration") == \
                    "Accepted"
        except contract.BusPayloadError as exc:
            log.warning("invalid bridge state on the bus", extra={"error": str(exc)})

    # --- fire-and-forget ------------------------------------------------------------------------
    async def publish_state(self, state: str, *, session_id: str | None = None,
                            protocol: str | None = None) -> None:
        """Retained EVSE state. Kept locally and republished after a reconnect."""
        payload: dict[str, Any] = {"state": state, "session_id": session_id,
                                   "timestamp": utc_now()}
        if protocol:
            payload["protocol"] = protocol
        if self._last_persisted:   # the bridge holds the state until that message is through
            payload["after_message_id"] = self._last_persisted
        self._state = contract.encode("session_state", payload)
        with contextlib.suppress(BusUnavailable):
            await self.endpoint.publish(contract.BY_NAME["session_state"].topic_for(self.evse_id),
                                        self._state, retain=True)

    async def publish_session_event(self, event: str, session_id: str, *,
                                    protocol: str | None = None, **detail: Any) -> bool:
        """Informational; returns False when the bus is down (the event is not kept)."""
        payload: dict[str, Any] = {"event": event, "session_id": session_id,
                                   "timestamp": utc_now()}
        if protocol:
            payload["protocol"] = protocol
        if detail:
            payload["detail"] = detail
        data = contract.encode("session_event", payload)
        try:
            await self.endpoint.publish(
                contract.BY_NAME["session_event"].topic_for(self.evse_id), data)
            return True
        except BusUnavailable:
            return False

    # --- persisted ------------------------------------------------------------------------------
    async def send_transaction_event(
            self, event_type: str, session_id: str, trigger_reason: str, *,
            timestamp: str | None = None, charging_state: str | None = None,
            stopped_reason: str | None = None, end_reason: str | None = None,
            id_token: dict[str, str] | None = None,
            remote_start_id: int | None = None, number_of_phases_used: int | None = None,
            readings: list[dict[str, Any]] | None = None) -> str:
        """Commit a transaction event to the outbox; returns its message_id at once.
        ``end_reason`` (an ``EndReason`` value) says why the session ended; the bridge makes
        the OCPP trigger and stopped reasons of it."""
        payload: dict[str, Any] = {"message_id": uuid.uuid4().hex, "event_type": event_type,
                                   "session_id": session_id, "timestamp": timestamp or utc_now(),
                                   "trigger_reason": trigger_reason}
        for key, val in (("charging_state", charging_state), ("stopped_reason", stopped_reason),
                         ("end_reason", end_reason),
                         ("id_token", id_token), ("remote_start_id", remote_start_id),
                         ("number_of_phases_used", number_of_phases_used),
                         ("readings", readings)):
            if val is not None:
                payload[key] = val
        return await self._persist("transaction_event", payload)

    async def send_meter_values(self, readings: list[dict[str, Any]], *,
                                session_id: str | None = None) -> str:
        payload: dict[str, Any] = {"message_id": uuid.uuid4().hex, "readings": readings}
        if session_id:
            payload["session_id"] = session_id
        return await self._persist("meter_values", payload)

    async def _on_disk(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._disk, fn, *args)

    async def _persist(self, channel: str, payload: dict[str, Any]) -> str:
        """Validate and commit (fsync) on the outbox thread; returns once committed, so
        "accepted" still means "on disk"."""
        if not self.csms_available:
            payload["generated_offline"] = True

        def commit() -> str:
            contract.validate(contract.BY_NAME[channel].schema, payload)
            return self.outbox.add(channel, self.evse_id, payload)

        message_id = await self._on_disk(commit)
        self._last_persisted = message_id
        self._wake.set()
        return message_id

    @property
    def outbox_pending(self) -> int:
        return self.outbox.pending()

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until the bridge has acked everything in the outbox."""
        async def empty() -> None:
            while await self._on_disk(self.outbox.pending):
                await asyncio.sleep(0.02)
        await asyncio.wait_for(empty(), timeout)

    async def _drain_outbox(self) -> None:
        delay = self.config.retry_initial
        while True:
            row = await self._on_disk(self.outbox.oldest)
            if row is None or not self.endpoint.connected:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            channel = contract.BY_NAME[row.channel]
            try:
                raw = await self.endpoint.request(channel.topic_for(row.evse_id),
                                                  json.dumps(row.payload).encode(),
                                                  self.config.ack_timeout)
                reply = contract.decode_reply("ack", raw)
            except (BusTimeout, BusUnavailable) as exc:
                log.info("outbox message not acked yet, will resend",
                         extra={"message_id": row.message_id, "reason": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_max)
                continue
            except contract.BusPayloadError as exc:
                log.error("bridge sent an invalid ack", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                continue
            delay = self.config.retry_initial
            if "error" in reply:
                log.error("bridge refused an outbox message for good; parked (kept on disk)",
                          extra={"message_id": row.message_id, "error": reply["error"]})
                await self._on_disk(self.outbox.park, row.message_id,
                                    json.dumps(reply["error"]))
            elif reply["message_id"] == row.message_id:
                await self._on_disk(self.outbox.remove, row.message_id)

    # --- requests and commands ---------------------------------------------------------------
    async def request(self, name: str, payload: dict[str, Any],
                      timeout: float | None = None) -> dict[str, Any]:
        """Send a request channel's payload; return the validated reply.

        Raises ``BusRequestError`` for an error reply, ``BusTimeout``/``BusUnavailable`` when
        the bridge does not answer, ``BusPayloadError`` for an invalid payload (ours or its)."""
        channel = contract.BY_NAME[name]
        if (channel.kind is not contract.Kind.REQUEST
                or channel.publisher is not contract.Publisher.SECC):
            raise ValueError(f"{name} is not a SECC request channel")
        data = contract.encode(channel.schema, payload)
        raw = await self.endpoint.request(channel.topic_for(self.evse_id), data,
                                          timeout or self.config.request_timeout)
        reply = contract.decode_reply(channel.reply_schema or "", raw)
        if "error" in reply:
            err = reply["error"]
            raise BusRequestError(err["code"], err["message"], err.get("capability"))
        return reply

    def on_command(self, name: str, handler: CommandHandler) -> None:
        """Handle a bridge command (set_charging_profile, request_start/stop_transaction)."""
        channel = contract.BY_NAME[name]
        if channel.publisher is not contract.Publisher.BRIDGE:
            raise ValueError(f"{name} is not a bridge command")
        self._commands[name] = handler

    def on_event(self, name: str, handler: EventHandler) -> None:
        """Handle a bridge event (``bridge_error``, ``authorization_update``) or a bridge
        state of this EVSE (``charging_limit``, retained: the latest arrives on connect)."""
        channel = contract.BY_NAME[name]
        if channel.publisher is not contract.Publisher.BRIDGE or \
                channel.kind not in (contract.Kind.EVENT, contract.Kind.STATE):
            raise ValueError(f"{name} is not a bridge event")
        self._events[name] = handler

    @staticmethod
    def _incoming(message: Incoming) -> tuple[contract.Channel, dict[str, Any]] | None:
        """The channel and the validated payload of a bridge message (None: not a contract
        topic); raises ``BusPayloadError`` for a payload the contract refuses."""
        match = contract.match_topic(message.topic)
        if match is None:
            return None
        channel, _ = match
        return channel, contract.decode(channel.schema, message.payload)

    async def _on_event(self, message: Incoming) -> None:
        try:
            incoming = self._incoming(message)
        except contract.BusPayloadError as exc:
            log.warning("invalid bridge event ignored", extra={"error": str(exc)})
            return
        if incoming is None:
            return
        channel, payload = incoming
        if channel.name == "bridge_error":
            log.warning("bridge reports a problem", extra={
                "code": payload["code"], "capability": payload.get("capability", ""),
                "detail": payload["message"]})
        handler = self._events.get(channel.name)
        if handler is not None:
            await handler(payload)

    async def _on_command(self, message: Incoming) -> None:
        try:
            incoming = self._incoming(message)
        except contract.BusPayloadError as exc:
            await self.endpoint.reply_error(message, "InvalidPayload", str(exc))
            return
        if incoming is None:
            return
        channel, payload = incoming
        handler = self._commands.get(channel.name)
        if handler is None:
            reply = {"status": "Rejected", "reason": f"SECC has no handler for {channel.name}"}
        else:
            reply = await handler(payload)
        await self.endpoint.reply(message, contract.encode(channel.reply_schema or
                                                           "command_response", reply))
