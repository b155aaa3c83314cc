"""The bridge process: one CSMS websocket connection, one bus connection, one queue.

``Bridge.run()`` runs two loops that each survive their peer going away:

* the bus loop (``BusEndpoint``) receives SECC messages and dispatches them to
  ``ocpp_bridge.bus_handlers``;
* the CSMS loop connects with the configured security profile, boots, then runs the heartbeat
  and the queue sender until the connection drops, and reconnects with backoff.

Everything the bridge knows across restarts lives in SQLite (queue, transaction ids, seqNo),
the device-model JSON file and the certificate store directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import random
import ssl
import time
import uuid
from typing import Any

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_bridge import tls, tls_trace
from ocpp_bridge.certificates import CertificateStore
from ocpp_bridge.config import BridgeConfig
from ocpp_bridge.device_model import DeviceModel
from ocpp_bridge.diagnostics import CsmsOffline, CsmsPending
from ocpp_bridge.ocpp_io import CsmsCallError
from ocpp_bridge.local_auth import LocalAuthList
from ocpp_bridge.offline_auth import AuthCache
from ocpp_bridge.queue import TransactionQueue
from ocpp_bridge.status import StatusReporter
from secc import contract
from secc.common.lazy import lazy_module
from secc.common.mqtt import BrokerConfig, BusEndpoint, BusTimeout, BusUnavailable, Will
from secc.common.logs import layer_logger

serialization = lazy_module("cryptography.hazmat.primitives.serialization")

log = layer_logger("ocpp")

SUBPROTOCOL = "ocpp2.0.1"

# bus session_state.state -> OCPP ConnectorStatusEnumType
CONNECTOR_STATUS = {"Available": "Available", "Occupied": "Occupied", "Charging": "Occupied",
                    "Reserved": "Reserved", "Unavailable": "Unavailable", "Faulted": "Faulted"}


def describe_failure(exc: BaseException, timeout: float | None = None) -> str:
    """A log-ready text for a failed CSMS call (a bare TimeoutError has an empty str())."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    return str(exc) or type(exc).__name__


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class Bridge:
    def __init__(self, config: BridgeConfig) -> None:
        from ocpp_bridge import bus_handlers  # late: bus_handlers imports this module's types

        self.config = config
        csms = config.csms
        self.queue = TransactionQueue(config.storage.queue, backoff_initial=csms.retry_initial,
                                      backoff_max=csms.retry_max,
                                      message_attempts=csms.message_attempts)
        self.certificates = CertificateStore(config.storage.certificates)
        self.auth_cache = AuthCache(config.storage.queue.parent / "auth_cache.db")
        self.local_list = LocalAuthList(config.storage.queue.parent / "local_auth_list.db")
        self.device_model = DeviceModel(config.storage.queue.parent / "device_model.json")
        self.device_model.set_local("SecurityCtrlr", "SecurityProfile", csms.security_profile)
        self.device_model.set_local("SecurityCtrlr", "Identity", csms.station_id)
        self.device_model.live[("LocalAuthListCtrlr", "Entries")] = self.local_list.entries
        self.device_model.live[("SecurityCtrlr", "CertificateEntries")] = \
            lambda: len(self.certificates.installed_ids(None))
        self.cp: Any = None
        self.registration: str | None = None
        self.booted = False
        self.boot_reason = "PowerUp"        # RemoteReset after a Reset of the whole station
        self.reconnect_now = False          # set when we drop the connection on purpose
        self.connector_status: dict[int, str] = {}   # latest per EVSE, from the SECC
        self.status = StatusReporter(self)
        self.csms_connections = 0
        # field diagnostics published so far, latest per (code, capability): kept in the
        # retained csms_connection state so `secc doctor` sees them after the fact
        self.problems: dict[tuple[str, str], dict[str, Any]] = {}
        self._queue_wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._ws_opened = False
        self._invalid_csms_certificate: str | None = None   # queued, in this failure streak
        client_id = config.bus.client_id
        self.bus = BusEndpoint(
            BrokerConfig(config.bus.host, config.bus.port, config.bus.username,
                         config.bus.password),
            client_id,
            will=Will(contract.BY_NAME["bridge_online"].topic,
                      contract.encode("online", {"online": False})))
        self.bus.set_reply_topic(contract.bridge_reply_topic(client_id))
        self.bus.on_connect.append(self._announce)
        bus_handlers.register(self)
        from ocpp_bridge.smart_charging_handlers import SmartChargingService

        self.smart_charging = SmartChargingService(self)
        from ocpp_bridge.security import SecurityService

        self.security = SecurityService(self)
        from ocpp_bridge.firmware import FirmwareUpdater

        self.firmware = FirmwareUpdater(self)

    def close(self) -> None:
        """Close the databases (after run() was cancelled)."""
        self.queue.close()
        self.auth_cache.close()
        self.local_list.close()
        self.security.close()

    # --- state ---------------------------------------------------------------------------------
    @property
    def online(self) -> bool:
        """Connected and accepted by the CSMS: messages generated now are not 'offline'."""
        return self.cp is not None and self.registration == "Accepted"

    def connector_status_for(self, state: str) -> str:
        return CONNECTOR_STATUS[state]

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def wake_queue(self) -> None:
        self._queue_wake.set()
        self.status.queue_progress()

    def evse_ok(self, evse_id: str | None) -> int | None:
        if evse_id is None or not evse_id.isdigit():
            return None
        number = int(evse_id)
        return number if number in self.config.station.evse_ids else None

    # --- bus -----------------------------------------------------------------------------------
    async def _announce(self) -> None:
        await self.bus.publish(contract.BY_NAME["bridge_online"].topic, contract.encode(
            "online", {"online": True, "since": utc_now(), "client_id": self.config.bus.client_id}),
            retain=True)
        await self.publish_csms_state()

    async def publish_csms_state(self) -> None:
        payload = {"connected": self.cp is not None, "registration": self.registration,
                   "security_profile": self.config.csms.security_profile,
                   "queued_messages": self.queue.pending(), "timestamp": utc_now()}
        if self.problems:
            payload["problems"] = list(self.problems.values())[-32:]
        with contextlib.suppress(BusUnavailable):
            await self.bus.publish(contract.BY_NAME["csms_connection"].topic,
                                   contract.encode("csms_connection", payload), retain=True)

    async def publish_error(self, evse_id: int | None, code: str, message: str,
                            capability: str | None = None, session_id: str | None = None) -> None:
        """Field diagnostic on the bus (events/error of one EVSE, or of all); also kept in
        ``problems``, which the next retained CSMS state carries."""
        payload: dict[str, Any] = {"code": code, "message": message[:512], "timestamp": utc_now()}
        if capability:
            payload["capability"] = capability
        if session_id:
            payload["session_id"] = session_id
        data = contract.encode("bridge_error", payload)
        key = (code, capability or "")
        self.problems.pop(key, None)
        self.problems[key] = {k: payload[k] for k in ("code", "message", "capability",
                                                       "timestamp") if k in payload}
        targets = [evse_id] if evse_id is not None else list(self.config.station.evse_ids)
        for target in targets:
            with contextlib.suppress(BusUnavailable):
                await self.bus.publish(contract.BY_NAME["bridge_error"].topic_for(target), data)

    async def command(self, evse_id: int, name: str, payload: dict[str, Any]
                      ) -> dict[str, Any] | None:
        """Send a command to the SECC of one EVSE; None when it does not answer."""
        channel = contract.BY_NAME[name]
        try:
            raw = await self.bus.request(channel.topic_for(evse_id),
                                         contract.encode(channel.schema, payload),
                                         self.config.station.command_timeout)
            reply = contract.decode_reply(channel.reply_schema or "command_response", raw)
        except (BusTimeout, BusUnavailable, contract.BusPayloadError) as exc:
            log.warning("SECC did not answer a command", extra={"evse": evse_id,
                                                                "command": name, "error": str(exc)})
            return None
        return None if "error" in reply else reply

    # --- CSMS ----------------------------------------------------------------------------------
    async def call_csms(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A direct (not queued) CSMS call; raises CsmsOffline, CsmsCallError, TimeoutError."""
        cp = self.cp
        if cp is None:
            raise CsmsOffline("not connected to the CSMS")
        if self.registration != "Accepted":
            raise CsmsPending(f"BootNotification {self.registration or 'not answered yet'}")
        return await cp.call_raw(action, payload)

    def enqueue_security_event(self, event_type: str, tech_info: str = "") -> None:
        """Security events go through the persistent queue: they must reach the CSMS."""
        payload: dict[str, Any] = {"type": event_type, "timestamp": utc_now()}
        if tech_info:
            payload["techInfo"] = tech_info[:255]
        self.security.security_log.record(event_type, tech_info)
        self.queue.enqueue_plain(uuid.uuid4().hex, "SecurityEventNotification", payload,
                                 now=time.time())
        self.wake_queue()

    def _password(self) -> str:
        return self.device_model.get("SecurityCtrlr", "BasicAuthPassword") or \
            (self.config.csms.password or "")

    def _ssl_context(self) -> ssl.SSLContext | None:
        csms = self.config.csms
        if csms.security_profile == 1:
            return None
        cert, key = csms.client_cert, csms.client_key
        signed = self.config.storage.certificates / "ChargingStationCertificate"
        if csms.security_profile == 3 and (signed / "chain.pem").exists():
            cert, key = signed / "chain.pem", signed / "key.pem"  # renewed via CertificateSigned
        installed = [root.public_bytes(serialization.Encoding.PEM).decode()
                     for root in self.certificates.roots("CSMSRootCertificate")]
        return tls.client_context(csms.ca_file, cert if csms.security_profile == 3 else None,
                                  key if csms.security_profile == 3 else None, installed)

    async def run(self) -> None:
        self.enqueue_security_event("StartupOfTheDevice")
        await asyncio.gather(self.bus.run(), self._csms_loop(),
                             self.smart_charging.refresh_loop(), self.firmware.watch_pending())

    async def _csms_loop(self) -> None:
        csms = self.config.csms
        backoff = csms.retry_initial
        url = f"{csms.url.rstrip('/')}/{csms.station_id}"
        while True:
            ctx = self._ssl_context()
            trace = tls_trace.attach(ctx) if ctx else None
            self._ws_opened = False
            try:
                await self._csms_session(url, ctx)
                backoff = csms.retry_initial
            except ssl.SSLError as exc:
                text = tls.explain_failure(exc, ctx, url, trace) if ctx else str(exc)
                await self.publish_error(None, "TlsHandshakeFailed", text)
                if isinstance(exc, ssl.SSLCertVerificationError) and \
                        self._invalid_csms_certificate is None:
                    # once per failure streak (reset after a successful connection); the
                    # event goes to the security log and the persistent queue
                    self._invalid_csms_certificate = text
                    self.enqueue_security_event("InvalidCsmsCertificate", text)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 401:
                    log.error("CSMS refused our credentials (HTTP 401): check csms.password / "
                              "SecurityCtrlr.BasicAuthPassword and the station id",
                              extra={"url": url, "station": csms.station_id})
                    if self.security.due("FailedToAuthenticateAtCsms"):
                        self.enqueue_security_event("FailedToAuthenticateAtCsms",
                                                    f"HTTP 401 from {url}")
                else:
                    log.error("CSMS refused the websocket upgrade",
                              extra={"url": url, "http_status": status})
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError,
                    TimeoutError) as exc:
                if self._ws_opened:   # it was up: a fresh failure, start the backoff over
                    backoff = csms.retry_initial
                if self.reconnect_now:
                    log.info("reconnecting to the CSMS (station reset)", extra={"url": url})
                else:
                    log.warning("CSMS connection failed or lost", extra={
                        "url": url, "error": f"{type(exc).__name__}: {exc}",
                        "retry_in": round(backoff, 2)})
                if trace is not None and trace.server_version and not self._ws_opened:
                    # TLS 1.3: a refused client certificate surfaces only after the handshake,
                    # as an alert (when asyncio lets us read it) or a bare close.
                    text = (f"TLS session with {url} refused by the CSMS before the websocket "
                            f"upgrade ({type(exc).__name__}); with security profile "
                            f"{csms.security_profile} this usually means it rejected our client "
                            f"certificate. TLS: {trace.summary()}")
                    log.error(text)
                    await self.publish_error(None, "TlsHandshakeFailed", text)
            except CsmsCallError as exc:
                log.error("CSMS refused a message the connection needs, reconnecting",
                          extra={"url": url, "error": str(exc)})
            except Exception:  # noqa: BLE001 - the CSMS loop must never die
                log.exception("unexpected error in the CSMS connection, reconnecting",
                              extra={"url": url})
            finally:
                if self.cp is not None:
                    self.cp.cancel_requests()
                self.cp = None
                await self.publish_csms_state()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # websockets/asyncio (3.11 wait_for) can turn a cancel that lands while a
                # connection opens or closes into an error caught above; without this the
                # loop reconnected and the owner's shutdown waited forever
                raise asyncio.CancelledError
            if self.reconnect_now:   # our own disconnect (Reset): no backoff
                self.reconnect_now = False
                continue
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, csms.retry_max)

    async def _csms_session(self, url: str, ctx: ssl.SSLContext | None) -> None:
        from ocpp_bridge.csms_handlers import BridgeChargePoint

        csms = self.config.csms
        headers = {}
        if csms.security_profile in (1, 2):
            token = base64.b64encode(f"{csms.station_id}:{self._password()}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with connect(url, subprotocols=[SUBPROTOCOL], additional_headers=headers, ssl=ctx,
                           open_timeout=10, ping_interval=20, ping_timeout=20,
                           max_size=2 ** 20) as ws:
            if ws.subprotocol != SUBPROTOCOL:
                log.warning("CSMS did not confirm the ocpp2.0.1 subprotocol",
                            extra={"subprotocol": ws.subprotocol})
            self._ws_opened = True
            self._invalid_csms_certificate = None   # a later rejection is a new event
            cp = BridgeChargePoint(csms.station_id, ws, self, csms.response_timeout)
            self.csms_connections += 1
            self.cp = cp
            log.info("connected to the CSMS", extra={"url": url,
                                                     "security_profile": csms.security_profile})
            reader = asyncio.create_task(cp.start(), name="csms-reader")
            work = asyncio.create_task(self._online_work(cp), name="csms-work")
            try:
                done, _ = await asyncio.wait({reader, work}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in (reader, work):
                    task.cancel()
                for task in (reader, work):
                    with contextlib.suppress(BaseException):
                        await task

    async def _online_work(self, cp: Any) -> None:
        if not self.booted or self.registration != "Accepted":
            await self.boot(cp, self.boot_reason)
            self.boot_reason = "PowerUp"
        await self.publish_csms_state()
        self.queue.prune(time.time())
        self.queue.reset_backoff()
        self.wake_queue()
        self.status.connection_up(cp)
        try:
            await asyncio.gather(self._heartbeat_loop(cp), self._send_queue(cp))
        finally:
            self.status.connection_down()

    async def boot(self, cp: Any, reason: str) -> None:
        """BootNotification until Accepted (Pending/Rejected: wait the interval, retry)."""
        station = self.config.station
        info: dict[str, Any] = {"model": station.model[:20], "vendorName": station.vendor[:50]}
        if station.serial_number:
            info["serialNumber"] = station.serial_number
        running = self.firmware.running_version() or station.firmware_version
        if running:
            info["firmwareVersion"] = running[:50]
        while True:
            reply = await cp.call_raw("BootNotification",
                                      {"chargingStation": info, "reason": reason})
            self.registration = reply["status"]
            interval = int(reply.get("interval") or 0)
            if self.registration == "Accepted":
                if interval > 0:
                    self.device_model.set_local("OCPPCommCtrlr", "HeartbeatInterval", interval)
                self.booted = True
                log.info("CSMS accepted BootNotification", extra={"interval": interval})
                return
            log.warning("CSMS did not accept BootNotification yet",
                        extra={"status": self.registration, "retry_in": interval or 10})
            await self.publish_csms_state()
            await asyncio.sleep(interval or 10)

    async def send_status(self, cp: Any, evse_id: int, status: str) -> None:
        await cp.call_raw("StatusNotification", {
            "timestamp": utc_now(), "connectorStatus": status, "evseId": evse_id,
            "connectorId": 1})

    async def _heartbeat_loop(self, cp: Any) -> None:
        while True:
            await asyncio.sleep(self.device_model.get("OCPPCommCtrlr", "HeartbeatInterval"))
            try:
                await cp.call_raw("Heartbeat", {})
            except (CsmsCallError, asyncio.TimeoutError, TimeoutError) as exc:
                log.warning("Heartbeat failed", extra={"error": describe_failure(
                    exc, self.config.csms.response_timeout)})

    async def _send_queue(self, cp: Any) -> None:
        """Send the head of the persistent queue, in order, until the connection drops."""
        while True:
            head = self.queue.head()
            now = time.time()
            if head is None or head.next_attempt > now:
                self._queue_wake.clear()
                wait = 1.0 if head is None else min(head.next_attempt - now, 1.0)
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that coincides with the event, and this loop would never end
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._queue_wake.wait()
                continue
            try:
                answer = await cp.call_raw(head.action, head.payload)
            except CsmsCallError as exc:
                self.queue.mark_failed(head.row_id, str(exc), time.time(), refused=True)
                if head.attempts + 1 >= self.queue.message_attempts:
                    text = (f"CSMS refused {head.action} {head.attempts + 1} times ({exc.code}); "
                            "parked in the queue database, not deleted")
                    log.error(text, extra={"message_id": head.message_id})
                    await self.publish_error(None, "QueueDeadLetter", text)
                    await self.publish_csms_state()
                continue
            except (asyncio.TimeoutError, TimeoutError):
                retry = self.queue.mark_failed(head.row_id, "timeout", time.time(), refused=False)
                log.warning("CSMS did not answer a queued message, will retry",
                            extra={"action": head.action, "retry_at": round(retry, 1)})
                continue
            self.queue.mark_sent(head.row_id)
            self.status.queue_progress()
            if head.action == "TransactionEvent" and "idTokenInfo" in answer:
                await self._authorization_update(head.payload, answer["idTokenInfo"]["status"])

    async def _authorization_update(self, event: dict[str, Any], status: str) -> None:
        """E05: tell the SECC what the CSMS thinks of the transaction's id token."""
        transaction_id = event["transactionInfo"]["transactionId"]
        found = self.queue.session_of(transaction_id)
        if found is None:
            return
        evse_id, session_id = found
        if status != "Accepted":
            log.warning("CSMS did not accept the id token of a running transaction",
                        extra={"evse": evse_id, "session": session_id, "status": status})
        payload = {"session_id": session_id, "transaction_id": transaction_id,
                   "status": status, "timestamp": utc_now()}
        with contextlib.suppress(BusUnavailable):
            await self.bus.publish(contract.BY_NAME["authorization_update"].topic_for(evse_id),
                                   contract.encode("authorization_update", payload))
