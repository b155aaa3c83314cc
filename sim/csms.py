"""A test CSMS: a real OCPP 2.0.1 server over ws/wss on localhost, with scenario controls.

* ``TestCsms(passwords={"CS1": "secret"}, tls=CsmsPki(...).server_tls(...))`` serves
  ``ws(s)://127.0.0.1:<port>/ocpp/<station id>``; SP1/SP2 check HTTP basic auth, SP3 requires a
  client certificate whose CN is the station id.
* ``behave(action, mode, payload=None)``: ``accept`` (default answers), ``reject``,
  ``timeout`` (never answers), ``not_implemented`` / ``not_supported`` (CALLERROR), ``pending``
  (BootNotification only), or ``payload`` to answer with exactly that camelCase payload.
* ``received`` records every CALL the station sent (action, camelCase payload) in order;
  ``events`` records connects/disconnects. ``call(station, action, payload)`` sends a
  CSMS-initiated request. ``disconnect()``, ``stop()``/``start()`` (same port) simulate
  network loss and a CSMS restart.
* Get15118EVCertificate (accept mode) is answered by ``ContractProvisioning``, standing in for
  the eMSP and the certificate provisioning service: it checks the car's signature on the
  forwarded CertificateInstallation/UpdateReq, issues a contract (fresh eMAID) from a
  ``TestPKI`` (``TestCsms.provisioning``; a PKI of its own when none is given) and answers a
  real, CPS-signed CertificateInstallationRes with the contract key encrypted for the car.
* ``CsmsPki`` makes the CSMS's own PKI: root, server certificate (SAN localhost/127.0.0.1),
  a station CA and station client certificates, and a stranger root for negative tests.

Run standalone for the demo: ``python -m sim.csms --port 9000 --station CS1 --password secret``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import ssl
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, \
    snake_to_camel_case
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError as OcppNotSupported
from ocpp.messages import MessageType
from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import ServerConnection, serve

from ocpp_bridge.ocpp_io import RawChargePoint, validate_ocpp
from ocpp_bridge.tls_trace import HandshakeTrace
from ocpp_bridge.tls_trace import attach as attach_tls_trace
from secc.common.logs import layer_logger
from secc.pnc import xmldsig
from secc.pnc.installation import build_installation_response, response_exi

log = layer_logger("sim")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- PKI ------------------------------------------------------------------------------------------
def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key, issuer_name: x509.Name | None, issuer_key, *, ca: bool,
          eku: list | None = None, san: list | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pysecc test CSMS")])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_name or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=not ca, key_cert_sign=ca,
                                            crl_sign=ca, encipher_only=False,
                                            decipher_only=False), critical=True))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class CsmsPki:
    """The CSMS's TLS PKI (not ISO 15118's): root, server cert, station CA, client certs."""

    directory: Path
    root_name: str = "CSMS Root CA"   # a CSMS moving to a new root: give it its own name

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert(self.root_name, self.root_key, None, self.root_key, ca=True)
        self.server_key = ec.generate_private_key(ec.SECP256R1())
        self.server = _cert("localhost", self.server_key, self.root.subject, self.root_key,
                            ca=False, eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                            san=[x509.DNSName("localhost"),
                                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.station_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.station_ca = _cert("Station CA", self.station_ca_key, None, self.station_ca_key,
                                ca=True)
        stranger_key = ec.generate_private_key(ec.SECP256R1())
        self.stranger_root = _cert("Stranger Root CA", stranger_key, None, stranger_key, ca=True)
        self.files = {"root": self.directory / "csms_root.pem",
                      "stranger_root": self.directory / "stranger_root.pem",
                      "server_chain": self.directory / "csms_server.pem",
                      "server_key": self.directory / "csms_server.key",
                      "station_ca": self.directory / "station_ca.pem"}
        self.files["root"].write_bytes(_pem(self.root))
        self.files["stranger_root"].write_bytes(_pem(self.stranger_root))
        self.files["server_chain"].write_bytes(_pem(self.server))
        self.files["server_key"].write_bytes(_key_pem(self.server_key))
        self.files["station_ca"].write_bytes(_pem(self.station_ca))

    def station_credentials(self, station_id: str) -> tuple[Path, Path]:
        """Client certificate (CN = station id) for security profile 3: (chain, key)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(station_id, key, self.station_ca.subject, self.station_ca_key, ca=False,
                     eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        chain, key_path = (self.directory / f"{station_id}.pem",
                           self.directory / f"{station_id}.key")
        chain.write_bytes(_pem(cert))
        key_path.write_bytes(_key_pem(key))
        return chain, key_path

    def sign_csr(self, csr_pem: str) -> str:
        """What a CSMS does with SignCertificate: issue a certificate for the CSR."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(csr.subject)
                .issuer_name(self.station_ca.subject).public_key(csr.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.station_ca_key, hashes.SHA256()))
        return (_pem(cert) + _pem(self.station_ca)).decode()

    def server_tls(self, *, require_client_cert: bool = False,
                   minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = minimum_version
        ctx.load_cert_chain(self.files["server_chain"], self.files["server_key"])
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.files["station_ca"])
        return ctx


# --- behaviour ------------------------------------------------------------------------------------
PNC_ACTIONS = ("Get15118EVCertificate", "GetCertificateStatus", "NotifyEVChargingNeeds",
               "NotifyEVChargingSchedule")


@dataclass
class Received:
    station_id: str
    action: str
    payload: dict[str, Any]
    at: float


@dataclass
class Behaviour:
    mode: str = "accept"
    payload: dict[str, Any] | None = None


def _default_answer(action: str, request: dict[str, Any], mode: str) -> dict[str, Any]:
    """What the test CSMS answers per action (``mode`` is accept or reject)."""
    ok = mode == "accept"
    if action == "BootNotification":
        status = {"accept": "Accepted", "reject": "Rejected", "pending": "Pending"}[mode]
        return {"currentTime": _now(), "interval": 300 if ok else 1, "status": status}
    if action == "Heartbeat":
        return {"currentTime": _now()}
    if action == "Authorize":
        answer: dict[str, Any] = {"idTokenInfo": {"status": "Accepted" if ok else "Invalid"}}
        if "certificate" in request or "iso15118CertificateHashData" in request:
            answer["certificateStatus"] = "Accepted" if ok else "CertificateRevoked"
        return answer
    if action == "TransactionEvent":
        if "idToken" in request:
            return {"idTokenInfo": {"status": "Accepted" if ok else "Invalid"}}
        return {}
    if action == "Get15118EVCertificate":
        return {"status": "Accepted" if ok else "Failed",
                "exiResponse": base64.b64encode(b"\x80\x98" * 64).decode() if ok else ""}
    if action == "GetCertificateStatus":
        return {"status": "Accepted", "ocspResult": base64.b64encode(b"ocsp").decode()} if ok \
            else {"status": "Failed"}
    if action in ("SignCertificate",):
        return {"status": "Accepted" if ok else "Rejected"}
    if action == "NotifyEVChargingNeeds":
        return {"status": "Accepted" if ok else "Rejected"}
    if action == "NotifyEVChargingSchedule":
        return {"status": "Accepted" if ok else "Rejected"}
    return {}  # StatusNotification, MeterValues, SecurityEventNotification


class ContractProvisioning:
    """The eMSP + CPS behind the test CSMS for Get15118EVCertificate (use cases M01/M02)."""

    def __init__(self, pki: Any = None, emaid_prefix: str = "DEPYSC") -> None:
        if pki is None:
            from sim.testing.pki import TestPKI
            pki = TestPKI()
        self.pki = pki
        self.emaid_prefix = emaid_prefix
        self.issued: list[Any] = []        # ContractCredential, in order

    def next_emaid(self) -> str:
        """14 characters: prefix, a serial, a fixed check character."""
        return f"{self.emaid_prefix}{len(self.issued) + 1:07d}X"

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The camelCase Get15118EVCertificate response for ``request``; Failed (with the
        reason in statusInfo) for anything it cannot honour."""
        try:
            return {"status": "Accepted", "exiResponse": self._issue(request)}
        except Exception as exc:  # noqa: BLE001 - a test CSMS answers, it does not crash
            log.warning("test CSMS: certificate request refused", extra={"error": repr(exc)})
            return {"status": "Failed", "exiResponse": "",
                    "statusInfo": {"reasonCode": "InvalidRequest",
                                   "additionalInfo": str(exc)[:512]}}

    def _issue(self, request: dict[str, Any]) -> str:
        import exi_schemas

        message = exi_schemas.decode(base64.b64decode(request["exiRequest"]), "iso2")
        update = request["action"] == "Update"
        body = message.body.certificate_update_req if update \
            else message.body.certificate_installation_req
        if body is None:
            raise ValueError(f"exiRequest holds no Certificate{request['action']}Req")
        signer_der = body.contract_signature_cert_chain.certificate if update \
            else body.oem_provisioning_cert
        signer = x509.load_der_x509_certificate(signer_der).public_key()
        xmldsig.verify(message.header.signature, {body.id: body}, signer)
        contract = self.pki.issue_contract(self.next_emaid())
        cps, cps_subs = self.pki.cps_chain()
        res, signature = build_installation_response(
            contract_der=contract.leaf.cert_der, contract_sub_ders=contract.sub_ca_ders,
            contract_key=contract.leaf.key, emaid=contract.emaid, recipient=signer,
            cps_der=cps.cert_der, cps_sub_ders=[c.cert_der for c in cps_subs], cps_key=cps.key,
            update=update)
        self.issued.append(contract)
        log.info("test CSMS: contract issued", extra={"emaid": contract.emaid,
                                                      "action": request["action"]})
        return response_exi(res, signature, message.header.session_id)


class CsmsStation(RawChargePoint):
    """The CSMS's view of one connected station: records, then answers per behaviour."""

    def __init__(self, station_id: str, connection: ServerConnection, csms: TestCsms) -> None:
        super().__init__(station_id, connection, response_timeout=csms.response_timeout)
        self.csms = csms

    async def _route(self, raw: str | bytes) -> None:
        with contextlib.suppress(Exception):
            doc = json.loads(raw)
            if isinstance(doc, list) and len(doc) == 4 and doc[0] == MessageType.Call:
                self.csms.received.append(Received(self.id, doc[2], doc[3], time.time()))
        await super()._route(raw)

    async def _answer(self, action: str, request: dict[str, Any]) -> Any:
        behaviour = self.csms.behaviours.get(action, Behaviour())
        if behaviour.mode == "timeout":
            await asyncio.sleep(3600)
        if behaviour.mode == "not_implemented":
            raise OcppNotImplemented(details={"cause": f"test CSMS: {action} not implemented"})
        if behaviour.mode == "not_supported":
            raise OcppNotSupported(details={"cause": f"test CSMS: {action} not supported"})
        payload = behaviour.payload if behaviour.payload is not None else \
            _default_answer(action, request, behaviour.mode)
        return getattr(call_result, action)(**camel_to_snake_case(payload))

    def handles(self, action: str) -> bool:
        return super().handles(action) or hasattr(call_result, action)

    async def _handle_call(self, msg: Any) -> Any:
        """A station message without its own handler below (LogStatusNotification, ...) is
        still schema-checked and answered per behaviour, so the CSMS learns new messages
        without code."""
        if msg.action not in self.route_map and hasattr(call_result, msg.action):
            validate_ocpp(msg.action, MessageType.Call, msg.payload)
            answer = await self._answer(msg.action, msg.payload)
            payload = snake_to_camel_case(remove_nones(serialize_as_dict(answer)))
            await self._send(msg.create_call_result(payload).to_json())
            return None
        return await super()._handle_call(msg)

    def _last(self, action: str) -> dict[str, Any]:
        for item in reversed(self.csms.received):
            if item.action == action and item.station_id == self.id:
                return item.payload
        return {}

    @on(Action.boot_notification)
    async def on_boot(self, **_: Any):
        return await self._answer("BootNotification", self._last("BootNotification"))

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any):
        return await self._answer("Heartbeat", {})

    @on(Action.status_notification)
    async def on_status(self, **_: Any):
        return await self._answer("StatusNotification", {})

    @on(Action.authorize)
    async def on_authorize(self, **_: Any):
        request = self._last("Authorize")
        if not self.csms.pnc_authorize and (
                "certificate" in request or "iso15118CertificateHashData" in request):
            raise OcppNotImplemented(details={"cause": "test CSMS: no Plug&Charge"})
        return await self._answer("Authorize", request)

    @on(Action.transaction_event)
    async def on_transaction_event(self, **_: Any):
        return await self._answer("TransactionEvent", self._last("TransactionEvent"))

    @on(Action.meter_values)
    async def on_meter_values(self, **_: Any):
        return await self._answer("MeterValues", {})

    @on(Action.notify_report)
    async def on_notify_report(self, **_: Any):
        return await self._answer("NotifyReport", {})

    @on(Action.security_event_notification)
    async def on_security_event(self, **_: Any):
        return await self._answer("SecurityEventNotification", {})

    # exiResponse may exceed the package's 7500-char schema: validate with our relaxed one
    @on(Action.get_15118_ev_certificate, skip_schema_validation=True)
    async def on_get_15118_ev_certificate(self, **_: Any):
        request = self._last("Get15118EVCertificate")
        validate_ocpp("Get15118EVCertificate", MessageType.Call, request)
        behaviour = self.csms.behaviours.get("Get15118EVCertificate", Behaviour())
        if behaviour.mode == "accept" and behaviour.payload is None:
            if self.csms.provisioning is None:
                self.csms.provisioning = await asyncio.to_thread(ContractProvisioning)
            answer = await asyncio.to_thread(self.csms.provisioning.answer, request)
            return call_result.Get15118EVCertificate(**camel_to_snake_case(answer))
        return await self._answer("Get15118EVCertificate", request)

    @on(Action.get_certificate_status)
    async def on_get_certificate_status(self, **_: Any):
        return await self._answer("GetCertificateStatus", {})

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, certificate_type: str = "", **_: Any):
        answer = await self._answer("SignCertificate", {})
        signer = self.csms.v2g_signer if certificate_type == "V2GCertificate" and \
            self.csms.v2g_signer is not None else (self.csms.pki.sign_csr if self.csms.pki
                                                   else None)
        if signer is not None and answer.status == "Accepted" and self.csms.auto_sign:
            chain = signer(csr)
            self.csms.spawn(self.call_raw("CertificateSigned", {
                "certificateChain": chain,
                "certificateType": certificate_type or "ChargingStationCertificate"}))
        return answer

    @on(Action.notify_ev_charging_needs)
    async def on_notify_ev_charging_needs(self, **_: Any):
        return await self._answer("NotifyEVChargingNeeds", {})

    @on(Action.notify_ev_charging_schedule)
    async def on_notify_ev_charging_schedule(self, **_: Any):
        return await self._answer("NotifyEVChargingSchedule", {})

    @on(Action.report_charging_profiles)
    async def on_report_charging_profiles(self, **_: Any):
        return await self._answer("ReportChargingProfiles", {})

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, **_: Any):
        return await self._answer("LogStatusNotification", {})

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, **_: Any):
        return await self._answer("FirmwareStatusNotification", {})


@dataclass
class TestCsms:
    __test__ = False

    host: str = "127.0.0.1"
    port: int = 0
    passwords: dict[str, str] = field(default_factory=dict)   # SP1/SP2 basic auth
    tls: ssl.SSLContext | None = None
    require_client_cert: bool = False                         # SP3: CN must be the station id
    pki: CsmsPki | None = None
    auto_sign: bool = True
    response_timeout: float = 10.0
    received: list[Received] = field(default_factory=list)
    events: list[tuple[str, str, float]] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    stations: dict[str, CsmsStation] = field(default_factory=dict)
    tls_failures: list[str] = field(default_factory=list)   # what the client offered
    client_serials: list[str] = field(default_factory=list)  # SP3: serial of each client cert
    pnc_authorize: bool = True     # False: Authorize with certificate data -> NotImplemented
    provisioning: ContractProvisioning | None = None   # eMSP/CPS for Get15118EVCertificate
    v2g_signer: Any = None   # CSR PEM -> chain PEM under a V2G root, for SignCertificate(V2G...)
    _server: Any = None
    _tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{'localhost' if self.tls else self.host}:" \
               f"{self.port}/ocpp"

    def without_pnc(self) -> None:
        """Act like a CSMS without ISO 15118 support: NotImplemented for its messages and for
        Authorize requests that carry contract certificate data."""
        for action in PNC_ACTIONS:
            self.behave(action, "not_implemented")
        self.pnc_authorize = False

    def behave(self, action: str, mode: str = "accept",
               payload: dict[str, Any] | None = None) -> None:
        self.behaviours[action] = Behaviour(mode, payload)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def actions(self, station_id: str | None = None) -> list[str]:
        return [r.action for r in self.received if station_id in (None, r.station_id)]

    def messages(self, action: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.received if r.action == action]

    async def wait_for(self, action: str, count: int = 1, timeout: float = 10.0
                       ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(action)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise TimeoutError(f"CSMS got {len(self.messages(action))} {action}, wanted {count}; "
                           f"received so far: {self.actions()}")

    async def wait_connected(self, station_id: str, timeout: float = 10.0) -> CsmsStation:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if station_id in self.stations:
                return self.stations[station_id]
            await asyncio.sleep(0.02)
        raise TimeoutError(f"station {station_id} did not connect; events: {self.events}")

    async def call(self, station_id: str, action: str, payload: dict[str, Any]
                   ) -> dict[str, Any]:
        return await self.stations[station_id].call_raw(action, payload)

    # --- server ---------------------------------------------------------------------------------
    def _check_request(self, connection: ServerConnection, request: Any) -> Any:
        station_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        if not request.path.startswith("/ocpp/") or not station_id:
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown path\n")
        if self.require_client_cert:
            peer = connection.transport.get_extra_info("ssl_object").getpeercert()
            cn = dict(x[0] for x in peer.get("subject", ())).get("commonName") if peer else None
            self.client_serials.append(peer.get("serialNumber", "") if peer else "")
            if cn != station_id:
                self.events.append(("refused", station_id, time.time()))
                return connection.respond(HTTPStatus.UNAUTHORIZED, "certificate CN mismatch\n")
            return None
        header = request.headers.get("Authorization", "")
        expected = self.passwords.get(station_id)
        if expected is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown station\n")
        token = base64.b64encode(f"{station_id}:{expected}".encode()).decode()
        if header != f"Basic {token}":
            self.events.append(("refused", station_id, time.time()))
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad credentials\n")
        return None

    async def _serve_station(self, connection: ServerConnection) -> None:
        station_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        station = CsmsStation(station_id, connection, self)
        self.stations[station_id] = station
        self.events.append(("connected", station_id, time.time()))
        try:
            await station.start()
        except Exception:  # noqa: BLE001 - ConnectionClosed and friends end the session
            pass
        finally:
            station.cancel_requests()
            if self.stations.get(station_id) is station:
                del self.stations[station_id]
            self.events.append(("disconnected", station_id, time.time()))

    def _tls_failed(self, trace: HandshakeTrace) -> None:
        text = f"TLS handshake with a station failed: {trace.summary()}"
        self.tls_failures.append(text)
        log.error(text)

    async def start(self) -> TestCsms:
        if self.tls is not None:
            attach_tls_trace(self.tls, on_fatal_alert=self._tls_failed)
        self._server = await serve(self._serve_station, self.host, self.port,
                                   subprotocols=["ocpp2.0.1"], ssl=self.tls,
                                   process_request=self._check_request, max_size=2 ** 20,
                                   ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("test CSMS listening", extra={"url": self.url})
        return self

    async def disconnect(self) -> None:
        """Drop every station connection (the server keeps listening)."""
        for station in list(self.stations.values()):
            with contextlib.suppress(Exception):
                await station._connection.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> TestCsms:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _main(args: argparse.Namespace) -> None:
    csms = TestCsms(port=args.port, passwords={args.station: args.password})
    await csms.start()
    print(f"test CSMS at {csms.url}/{args.station}", flush=True)
    await asyncio.Future()


def main() -> None:
    from secc.common.logs import setup_logging

    parser = argparse.ArgumentParser(prog="python -m sim.csms")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--station", default="CS1")
    parser.add_argument("--password", default="pysecc-test-password")
    setup_logging("kv", "INFO")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
