"""The versioned MQTT bus contract between the SECC and the OCPP bridge.

Everything either side may publish is one row of ``CHANNELS``: its topic, who publishes it,
QoS, whether it is retained, and the JSON Schema of its payload (and of the reply, for
requests). Both ends validate with :func:`validate`, so a malformed payload is refused at the
edge with an error that names the field, never half-processed. ``docs/bus.md`` explains the
rules; ``python -m secc.contract --asyncapi`` prints the same table as AsyncAPI 2.6 JSON
(checked in as ``secc/contract/asyncapi.json``; a test keeps it up to date).

Request/response uses MQTT v5: the requester sets *response topic* and *correlation data*;
the responder publishes the reply (the ``reply_schema`` payload, or a ``bus_error``) there.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACT_VERSION = "v1"
PREFIX = f"pysecc/{CONTRACT_VERSION}"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
ASYNCAPI_FILE = Path(__file__).resolve().parent / "asyncapi.json"
VALIDATORS_FILE = Path(__file__).resolve().parent / "validators.py"
MAX_PAYLOAD_BYTES = 64 * 1024  # largest legal message (17000-char EXI) is far below this


class Publisher(enum.Enum):
    SECC = "secc"
    BRIDGE = "bridge"


class Kind(enum.Enum):
    STATE = "state"          # retained, the latest value is what counts
    EVENT = "event"          # fire and forget at QoS 1
    PERSISTED = "persisted"  # must never be lost: kept in the sender's outbox until acked
    REQUEST = "request"      # has a reply on the MQTT v5 response topic


@dataclass(frozen=True)
class Channel:
    name: str
    topic: str               # may contain {evse_id}
    publisher: Publisher
    kind: Kind
    schema: str              # payload schema, file stem under schemas/
    description: str
    reply_schema: str | None = None
    qos: int = 1
    retained: bool = False

    def topic_for(self, evse_id: str | int | None = None) -> str:
        if "{evse_id}" in self.topic:
            if evse_id is None:
                raise ValueError(f"channel {self.name} needs an evse_id")
            return self.topic.format(evse_id=evse_id)
        return self.topic

    @property
    def topic_filter(self) -> str:
        """The subscription filter that matches this channel for every EVSE."""
        return self.topic.replace("{evse_id}", "+")


EVSE = f"{PREFIX}/evse/{{evse_id}}"

CHANNELS: tuple[Channel, ...] = (
    # --- SECC -> bridge -----------------------------------------------------------------
    Channel("secc_online", f"{EVSE}/online", Publisher.SECC, Kind.STATE, "online",
            "SECC liveness; last will publishes {online:false}.", retained=True),
    Channel("session_state", f"{EVSE}/state", Publisher.SECC, Kind.STATE, "session_state",
            "Retained EVSE state; the bridge maps it to StatusNotification.", retained=True),
    Channel("session_event", f"{EVSE}/events/session", Publisher.SECC, Kind.EVENT,
            "session_event", "Session progress (SessionStarted, Authorized, PowerDelivery...)."),
    Channel("meter_values", f"{EVSE}/meter_values", Publisher.SECC, Kind.PERSISTED,
            "meter_values", "Meter readings, persisted by the bridge before it acks.",
            reply_schema="ack"),
    Channel("transaction_event", f"{EVSE}/transaction_event", Publisher.SECC, Kind.PERSISTED,
            "transaction_event", "Transaction Started/Updated/Ended, persisted before ack.",
            reply_schema="ack"),
    Channel("authorize", f"{EVSE}/request/authorize", Publisher.SECC, Kind.REQUEST,
            "authorize_request", "OCPP Authorize (EIM token or eMAID with contract data).",
            reply_schema="authorize_response"),
    Channel("get_15118_ev_certificate", f"{EVSE}/request/get_15118_ev_certificate",
            Publisher.SECC, Kind.REQUEST, "get_15118_ev_certificate_request",
            "OCPP Get15118EVCertificate (certificate installation/update for the EV).",
            reply_schema="get_15118_ev_certificate_response"),
    Channel("get_certificate_status", f"{EVSE}/request/get_certificate_status",
            Publisher.SECC, Kind.REQUEST, "get_certificate_status_request",
            "OCPP GetCertificateStatus (OCSP via the CSMS).",
            reply_schema="get_certificate_status_response"),
    Channel("notify_ev_charging_needs", f"{EVSE}/request/notify_ev_charging_needs",
            Publisher.SECC, Kind.REQUEST, "notify_ev_charging_needs_request",
            "OCPP NotifyEVChargingNeeds.", reply_schema="notify_ev_charging_needs_response"),
    Channel("notify_ev_charging_schedule", f"{EVSE}/request/notify_ev_charging_schedule",
            Publisher.SECC, Kind.REQUEST, "notify_ev_charging_schedule_request",
            "OCPP NotifyEVChargingSchedule.",
            reply_schema="notify_ev_charging_schedule_response"),
    # --- bridge -> SECC -----------------------------------------------------------------
    Channel("bridge_online", f"{PREFIX}/bridge/online", Publisher.BRIDGE, Kind.STATE, "online",
            "Bridge liveness; last will publishes {online:false}.", retained=True),
    Channel("csms_connection", f"{PREFIX}/bridge/csms", Publisher.BRIDGE, Kind.STATE,
            "csms_connection", "Bridge connected/registered at the CSMS.", retained=True),
    Channel("bridge_error", f"{EVSE}/events/error", Publisher.BRIDGE, Kind.EVENT, "bridge_error",
            "Field diagnostics: what failed and which CSMS capability is missing."),
    Channel("authorization_update", f"{EVSE}/events/authorization", Publisher.BRIDGE,
            Kind.EVENT, "authorization_update",
            "CSMS verdict on the id token of a running transaction (stop if not Accepted)."),
    Channel("set_charging_profile", f"{EVSE}/command/set_charging_profile", Publisher.BRIDGE,
            Kind.REQUEST, "set_charging_profile_command", "OCPP SetChargingProfile for this EVSE.",
            reply_schema="command_response"),
    Channel("charging_limit", f"{EVSE}/charging_limit", Publisher.BRIDGE, Kind.STATE,
            "charging_limit", "Composite charging schedule (OCPP smart charging) for this "
            "EVSE: what the car may be offered.", retained=True),
    Channel("request_start_transaction", f"{EVSE}/command/request_start_transaction",
            Publisher.BRIDGE, Kind.REQUEST, "request_start_transaction_command",
            "OCPP RequestStartTransaction for this EVSE.", reply_schema="command_response"),
    Channel("request_stop_transaction", f"{EVSE}/command/request_stop_transaction",
            Publisher.BRIDGE, Kind.REQUEST, "request_stop_transaction_command",
            "OCPP RequestStopTransaction for the session on this EVSE.",
            reply_schema="command_response"),
    Channel("create_csr", f"{EVSE}/command/create_csr", Publisher.BRIDGE, Kind.REQUEST,
            "create_csr_command", "SignCertificate(V2GCertificate): the SECC makes the key and "
            "returns the CSR.", reply_schema="command_response"),
    Channel("install_certificate", f"{EVSE}/command/install_certificate", Publisher.BRIDGE,
            Kind.REQUEST, "install_certificate_command",
            "InstallCertificate(V2G/MO root) or CertificateSigned(V2GCertificate) for the "
            "SECC's store, used at once.", reply_schema="command_response"),
    Channel("reset", f"{EVSE}/command/reset", Publisher.BRIDGE, Kind.REQUEST, "reset_command",
            "OCPP Reset: Immediate or OnIdle (Scheduled while a session runs).",
            reply_schema="command_response"),
    Channel("change_availability", f"{EVSE}/command/change_availability", Publisher.BRIDGE,
            Kind.REQUEST, "change_availability_command",
            "OCPP ChangeAvailability: operative or inoperative (Scheduled while a session runs).",
            reply_schema="command_response"),
    Channel("unlock_connector", f"{EVSE}/command/unlock_connector", Publisher.BRIDGE,
            Kind.REQUEST, "unlock_connector_command",
            "OCPP UnlockConnector: release the lock when no session runs and the board says safe.",
            reply_schema="unlock_connector_response"),
    Channel("trigger_message", f"{EVSE}/command/trigger_message", Publisher.BRIDGE,
            Kind.REQUEST, "trigger_message_command",
            "OCPP TriggerMessage for what only the SECC knows (MeterValues, TransactionEvent).",
            reply_schema="command_response"),
)

BY_NAME: dict[str, Channel] = {c.name: c for c in CHANNELS}


def mosquitto_acl(secc_user: str, bridge_user: str, monitor_user: str | None = None) -> str:
    """A mosquitto ``acl_file`` that lets each side publish only its own channels (the
    contract's publisher column) and read the other's; replies go to the requester's own
    reply topic. ``monitor_user`` (``secc bus monitor``) may read everything, write nothing."""
    def topics(publisher: Publisher) -> list[str]:
        return sorted({c.topic_filter for c in CHANNELS if c.publisher is publisher})

    evse_replies = f"{PREFIX}/evse/+/reply/#"
    bridge_replies = f"{PREFIX}/bridge/reply/#"
    lines = [f"# generated from secc/bus/contract.py (bus contract {CONTRACT_VERSION})",
             f"user {secc_user}"]
    lines += [f"topic write {t}" for t in topics(Publisher.SECC)]
    lines += [f"topic read {t}" for t in topics(Publisher.BRIDGE)]
    lines += [f"topic read {evse_replies}", f"topic write {bridge_replies}", "",
              f"user {bridge_user}"]
    lines += [f"topic write {t}" for t in topics(Publisher.BRIDGE)]
    lines += [f"topic read {t}" for t in topics(Publisher.SECC)]
    lines += [f"topic write {evse_replies}", f"topic read {bridge_replies}"]
    if monitor_user:
        lines += ["", f"user {monitor_user}", f"topic read {PREFIX}/#"]
    return "\n".join(lines) + "\n"


def reply_topic(evse_id: str | int, client_id: str) -> str:
    """Where a requester asks its replies to go (its own, so replies never cross)."""
    return f"{PREFIX}/evse/{evse_id}/reply/{client_id}"


def bridge_reply_topic(client_id: str) -> str:
    return f"{PREFIX}/bridge/reply/{client_id}"


def match_topic(topic: str) -> tuple[Channel, str | None] | None:
    """Which channel a concrete topic belongs to, and its EVSE id (None for bridge topics)."""
    parts = topic.split("/")
    for channel in CHANNELS:
        pattern = channel.topic.split("/")
        if len(pattern) != len(parts):
            continue
        evse_id = None
        for want, got in zip(pattern, parts):
            if want == "{evse_id}":
                evse_id = got
            elif want != got:
                break
        else:
            return channel, evse_id
    return None


class BusPayloadError(ValueError):
    """A payload is not valid for its channel. ``str()`` names the schema and the field."""

    def __init__(self, schema: str, message: str, path: str = "") -> None:
        self.schema = schema
        self.path = path
        super().__init__(f"{schema}: {path or '<root>'}: {message}")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


def _schema_names() -> list[str]:
    return sorted({"bus_error"} | {c.schema for c in CHANNELS} | {
        c.reply_schema for c in CHANNELS if c.reply_schema})


_VALIDATORS_PRELUDE = [
    "class JsonSchemaValueException(ValueError):",
    '    """What a validator raises (the interface of fastjsonschema\'s exception of that name:',
    '    ``message``, ``value``, ``name`` such as "data.readings[0]", ``path``, ``rule``)."""',
    "",
    "    def __init__(self, message, value=None, name=None, definition=None, rule=None):",
    "        super().__init__(message)",
    "        self.message, self.value, self.name = message, value, name",
    "        self.definition, self.rule = definition, rule",
    "",
    "    @property",
    "    def path(self):",
    "        return [item for item in re.split(r'[.\\[\\]]+', self.name or '') if item]",
    "",
    "",
    "class JsonSchemaValuesException(ValueError):",
    '    """Several errors at once (fastjsonschema\'s fast_fail=False; named by oneOf)."""',
    "",
    "    def __init__(self, errors):",
    "        super().__init__(errors)",
    "        self.errors = errors",
]


_DEFINITION_ARGUMENT = re.compile(r", definition=.*, rule=")


def validators_text() -> str:
    """``validators.py``: every schema compiled to a Python function by ``fastjsonschema``
    (draft 7 with formats; the contract tests check its verdicts against ``jsonschema``), one
    module, checked in and byte-compiled at install like the EXI codec. Compiling the
    schemas at run time instead costs the SECC ~6 MB of RSS (and ``jsonschema`` ~5 MB).
    The module does not import ``fastjsonschema``: it carries the one exception class the
    validators raise, so the daemon loads no schema library at all."""
    import fastjsonschema  # to generate only (tests, `--write`)

    header = ["# Generated by `python -m secc.contract --write` from secc/contract/schemas;",
              "# do not edit.", "# ruff: noqa", "import re", "", *_VALIDATORS_PRELUDE, ""]
    bodies, patterns, functions = [], {}, {}
    for name in _schema_names():
        code = fastjsonschema.compile_to_code(load_schema(name))
        head, _, body = code.partition("\ndef ")
        inside = False
        for line in head.splitlines():
            if line.startswith("REGEX_PATTERNS = {"):
                inside = True
            elif inside and line == "}":
                inside = False
            elif inside:
                patterns[line.split(":", 1)[0].strip()] = line.rstrip(",")
            elif line and not line.startswith(("import re", "REGEX_PATTERNS",
                                                "from fastjsonschema import",
                                                "from decimal import")):
                if line not in header:
                    header.append(line)
        functions[name] = body.split("(", 1)[0]
        # each raise carried the schema fragment it checks (``definition=``: a dict literal,
        # ~1 MB of constants in every process that validates); the message, value, name and
        # rule say what failed
        body = _DEFINITION_ARGUMENT.sub(", rule=", body)
        # payloads come from json.loads: numbers are int or float, never Decimal (whose
        # module is ~0.5 MB of RSS)
        body = body.replace("(int, float, Decimal)", "(int, float)")
        bodies.append("def " + body.rstrip() + "\n")
    header += ["", "REGEX_PATTERNS = {", *[f"{p}," for _, p in sorted(patterns.items())], "}"]
    table = ["VALIDATORS = {", *[f"    {n!r}: {f}," for n, f in functions.items()], "}"]
    return "\n".join(header) + "\n\n\n" + "\n\n".join(bodies) + "\n\n" + "\n".join(table) + "\n"


@functools.cache
def _validators() -> Any:
    """``secc.contract.validators``, loaded on first use (the daemon's warm-up does it)."""
    from secc.contract import validators

    return validators


def compile_validators() -> int:
    """Load every schema's validator now (the daemon's warm-up: not in the first session);
    returns how many."""
    return len(_validators().VALIDATORS)


def validate(schema: str, payload: Any) -> dict[str, Any]:
    """Raise ``BusPayloadError`` unless ``payload`` (a decoded object) matches ``schema``."""
    validators = _validators()
    try:
        validators.VALIDATORS[schema](payload)
    except validators.JsonSchemaValueException as error:
        # error.path: ["data", "field", 0, ...]; the message names it as "data.field[0]"
        path = "/".join(str(p) for p in error.path[1:])
        raise BusPayloadError(schema, error.message[:300], path) from None
    return payload


def decode(schema: str, raw: bytes | str | None) -> dict[str, Any]:
    """Parse JSON bytes from the wire and validate them; every failure is a BusPayloadError."""
    if raw is None:
        raise BusPayloadError(schema, "empty payload")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise BusPayloadError(schema, f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BusPayloadError(schema, f"not JSON: {exc}") from None
    return validate(schema, payload)


def decode_reply(schema: str, raw: bytes | str | None) -> dict[str, Any]:
    """A reply is either the channel's reply schema or a ``bus_error``."""
    payload = decode("bus_error", raw) if _looks_like_error(raw) else decode(schema, raw)
    return payload


def _looks_like_error(raw: bytes | str | None) -> bool:
    try:
        doc = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "error" in doc


def encode(schema: str, payload: dict[str, Any]) -> bytes:
    """Validate before sending: our own bugs are caught at the sender, not at the peer."""
    validate(schema, payload)
    return json.dumps(payload, separators=(",", ":")).encode()


def error_payload(code: str, message: str, capability: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message[:512]}
    if capability:
        error["capability"] = capability
    return {"error": error}


# --- AsyncAPI ---------------------------------------------------------------------------------
def asyncapi() -> dict[str, Any]:
    """The contract as an AsyncAPI 2.6 document (from the SECC's point of view)."""
    channels: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for channel in CHANNELS:
        message = {"name": channel.schema, "contentType": "application/json",
                   "payload": {"$ref": f"#/components/schemas/{channel.schema}"}}
        schemas[channel.schema] = load_schema(channel.schema)
        if channel.reply_schema:
            schemas[channel.reply_schema] = load_schema(channel.reply_schema)
            schemas["bus_error"] = load_schema("bus_error")
            message["correlationId"] = {"location": "$message.header#/correlationData"}
            message["x-reply"] = {
                "responseTopic": "MQTT v5 response topic chosen by the requester "
                                 f"({PREFIX}/evse/{{evse_id}}/reply/{{client_id}})",
                "payload": {"oneOf": [{"$ref": f"#/components/schemas/{channel.reply_schema}"},
                                      {"$ref": "#/components/schemas/bus_error"}]}}
        operation = {"operationId": channel.name, "summary": channel.description,
                     "bindings": {"mqtt": {"qos": channel.qos, "retain": channel.retained,
                                           "bindingVersion": "0.1.0"}},
                     "message": message, "x-kind": channel.kind.value,
                     "x-publisher": channel.publisher.value}
        item: dict[str, Any] = {"description": channel.description}
        # AsyncAPI 2.x: 'publish' = the application sends; the document is the SECC's view.
        item["publish" if channel.publisher is Publisher.SECC else "subscribe"] = operation
        if "{evse_id}" in channel.topic:
            item["parameters"] = {"evse_id": {"description": "OCPP EVSE id (1-based)",
                                              "schema": {"type": "string"}}}
        channels[channel.topic] = item
    return {
        "asyncapi": "2.6.0",
        "id": "urn:pysecc:bus",
        "info": {"title": "pysecc SECC <-> OCPP bridge bus", "version": CONTRACT_VERSION,
                 "description": "Generated by `python -m secc.contract --asyncapi`; "
                                "do not edit. Rules: docs/bus.md."},
        "defaultContentType": "application/json",
        "servers": {"local": {"url": "127.0.0.1:1883", "protocol": "mqtt",
                              "protocolVersion": "5",
                              "description": "mosquitto on localhost, username/password"}},
        "channels": channels,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def asyncapi_text() -> str:
    return json.dumps(asyncapi(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse  # the command line only: not in the daemon's or the bridge's RSS

    parser = argparse.ArgumentParser(prog="python -m secc.contract")
    parser.add_argument("--asyncapi", action="store_true", help="print the AsyncAPI 2.6 JSON")
    parser.add_argument("--write", action="store_true",
                        help=f"write it to {ASYNCAPI_FILE} and the validators to "
                             f"{VALIDATORS_FILE.name}")
    parser.add_argument("--acl", nargs=2, metavar=("SECC_USER", "BRIDGE_USER"),
                        help="print the mosquitto acl_file for these two accounts")
    args = parser.parse_args(argv)
    if args.acl:
        sys.stdout.write(mosquitto_acl(*args.acl, monitor_user="monitor"))
        return 0
    if args.write:
        ASYNCAPI_FILE.write_text(asyncapi_text())
        VALIDATORS_FILE.write_text(validators_text())
        return 0
    if args.asyncapi:
        sys.stdout.write(asyncapi_text())
        return 0
    for channel in CHANNELS:
        print(f"{channel.topic:64} {channel.publisher.value:6} {channel.kind.value:9} "
              f"qos{channel.qos}{' retained' if channel.retained else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
