"""OCPP-J plumbing on top of the ``ocpp`` package: raw calls, relaxed schemas, robust framing.

Three things the package does not do the way a charger needs:

* **exiResponse length.** Its bundled 2.0.1 schema caps Get15118EVCertificateResponse.exiResponse
  at 7500 characters; real CertificateInstallationRes messages need more, and OCPP 2.1 allows
  17000. ``RELAXED_MAX_LENGTH`` lists the fields we relax; ``validate_ocpp`` uses a copy of the
  bundled schema with only those limits raised and the package's validator for the rest.
* **Raw calls.** ``call_raw(action, payload)`` sends a camelCase dict and returns the camelCase
  reply, raising ``CsmsCallError`` with the CALLERROR code, so callers can map errors
  (NotImplemented -> "CSMS lacks this capability") in one table.
* **Concurrency and bad frames.** The package's ``start()`` awaits each CSMS request inside the
  receive loop; a handler waiting for the SECC would then stall replies to our own calls. We
  run each incoming CALL as its own task and answer malformed frames with a CALLERROR when
  they carry a usable message id (logged and ignored otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import uuid
from typing import Any

from jsonschema import Draft4Validator
from websockets.exceptions import ConnectionClosed
from jsonschema.exceptions import ValidationError as SchemaValidationError
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError as OcppNotImplemented,
    NotSupportedError as OcppNotSupported,
    OCPPError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator, unpack
from ocpp.v201 import ChargePoint
from ocpp.v201.enums import Action

from secc.common.logs import layer_logger

log = layer_logger("ocpp")

OCPP_VERSION = "2.0.1"

# (action, message type, property) -> maxLength we accept instead of the bundled schema's
RELAXED_MAX_LENGTH: dict[tuple[str, int, str], int] = {
    ("Get15118EVCertificate", MessageType.CallResult, "exiResponse"): 17000,
}


LOGGED_FRAME_CHARS = 2000    # frames are logged (debug) cut to this length

OCPP_201_ACTIONS = frozenset(a.value for a in Action)


class CsmsCallError(Exception):
    """The CSMS answered our CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any = None) -> None:
        self.action = action
        self.code = code
        self.description = description
        self.details = details
        super().__init__(f"{action}: CALLERROR {code}: {description}")


class CsmsAnswerInvalid(CsmsCallError):
    """The CSMS answered with a CALLRESULT that breaks the OCPP schema, and *we* refused it
    (e.g. an exiResponse over 17000 characters); the CSMS itself accepted the request."""

    def __init__(self, action: str, code: str, description: str) -> None:
        super().__init__(action, code, description)
        self.args = (f"{action}: the bridge rejected the CSMS's answer: {description}",)


def unhandled_action_error(action: str) -> OCPPError:
    """OCPP-J 2.0.1 section 4.3: NotImplemented = "Requested Action is not known by receiver",
    NotSupported = "Requested Action is recognized but not supported by the receiver". (The
    ``ocpp`` package answers the other way round.)"""
    if action in OCPP_201_ACTIONS:
        return OcppNotSupported(details={"cause": f"{action} is not supported by this station"})
    return OcppNotImplemented(details={"cause": f"{action} is not an OCPP 2.0.1 action"})


def schema_error_text(exc: SchemaValidationError) -> str:
    """A short, loggable description of a schema violation (never the offending value:
    an over-long exiResponse would make a 17 kB log line)."""
    path = "/".join(str(p) for p in exc.absolute_path) or "<root>"
    if exc.validator == "maxLength" and isinstance(exc.instance, str):
        return f"{path}: {len(exc.instance)} characters, more than the {exc.validator_value} allowed"
    if exc.validator in ("maxLength", "minLength", "maximum", "minimum", "enum", "type",
                         "pattern", "maxItems", "minItems"):
        return f"{path}: violates {exc.validator} {str(exc.validator_value)[:100]}"
    return f"{path}: {exc.message[:200]}"


@functools.cache
def _relaxed_validator(action: str, message_type: int) -> Draft4Validator | None:
    relaxed = {prop: n for (a, t, prop), n in RELAXED_MAX_LENGTH.items()
               if a == action and t == message_type}
    if not relaxed:
        return None
    bundled = get_validator(message_type, action, OCPP_VERSION)
    schema = copy.deepcopy(bundled.schema)
    for prop, max_length in relaxed.items():
        schema["properties"][prop]["maxLength"] = max_length
    return Draft4Validator(schema)


def validate_ocpp(action: str, message_type: int, payload: dict[str, Any]) -> None:
    """Validate a payload against the OCPP 2.0.1 schema (with our relaxations).

    Raises the ``ocpp`` package's errors (FormatViolation, TypeConstraintViolation...)."""
    validator = _relaxed_validator(action, message_type) or get_validator(
        message_type, action, OCPP_VERSION)
    try:
        validator.validate(payload)
    except SchemaValidationError as exc:
        text = f"{action}: {schema_error_text(exc)}"
        if exc.validator in ("type", "maxLength"):
            raise TypeConstraintViolationError(details={"cause": text}) from None
        raise FormatViolationError(details={"cause": text}) from None


class RawChargePoint(ChargePoint):
    """``ocpp.v201.ChargePoint`` with raw calls and per-request tasks."""

    def __init__(self, station_id: str, connection: Any, response_timeout: float = 10.0) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout, logger=log)
        self._request_tasks: set[asyncio.Task] = set()

    async def call_raw(self, action: str, payload: dict[str, Any],
                       timeout: float | None = None) -> dict[str, Any]:
        validate_ocpp(action, MessageType.Call, payload)
        call = Call(unique_id=str(uuid.uuid4()), action=action, payload=payload)
        async with self._call_lock:
            await self._send(call.to_json())
            response = await self._get_specific_response(call.unique_id,
                                                         timeout or self._response_timeout)
        if response.message_type_id == MessageType.CallError:
            raise CsmsCallError(action, response.error_code, response.error_description,
                                response.error_details)
        try:
            validate_ocpp(action, MessageType.CallResult, response.payload)
        except OCPPError as exc:
            cause = str((exc.details or {}).get("cause", exc.description))[:300]
            log.warning("CSMS sent an invalid CALLRESULT; the bridge rejects it",
                        extra={"action": action, "error": cause})
            raise CsmsAnswerInvalid(action, exc.code, cause) from None
        return response.payload

    async def _send(self, message: str) -> None:
        log.debug("send", extra={"frame": message[:LOGGED_FRAME_CHARS]})
        await self._connection.send(message)

    async def start(self) -> None:
        while True:
            raw = await self._connection.recv()
            log.debug("received", extra={"frame": raw[:LOGGED_FRAME_CHARS]})
            await self._route(raw)

    async def _route(self, raw: str | bytes) -> None:
        try:
            message = unpack(raw)
        except OCPPError as exc:
            await self._reject_frame(raw, exc)
            return
        if isinstance(message, (CallResult, CallError)):
            self._response_queue.put_nowait(message)
            return
        task = asyncio.ensure_future(self._handle_call_safely(message))
        self._request_tasks.add(task)
        task.add_done_callback(self._request_tasks.discard)

    def handles(self, action: str) -> bool:
        return "_on_action" in self.route_map.get(action, {})

    async def _handle_call_safely(self, message: Call) -> None:
        try:
            if not self.handles(message.action):
                raise unhandled_action_error(message.action)
            await self._handle_call(message)
        except OCPPError as error:
            log.warning("CSMS request refused", extra={"action": message.action,
                                                       "error": error.code})
            with contextlib.suppress(ConnectionClosed):
                await self._send(message.create_call_error(error).to_json())
        except ConnectionClosed:
            log.info("connection closed before the answer went out",
                     extra={"action": message.action})
        except Exception:  # noqa: BLE001 - answer, never die on one request
            log.exception("CSMS request handler failed", extra={"action": message.action})
            with contextlib.suppress(ConnectionClosed):
                await self._send(message.create_call_error(RuntimeError()).to_json())

    async def _reject_frame(self, raw: str | bytes, exc: OCPPError) -> None:
        """Answer a malformed frame with CALLERROR when it has a message id, else just log."""
        unique_id, code = None, exc.code
        try:
            doc = json.loads(raw)
            if isinstance(doc, list) and len(doc) > 1 and isinstance(doc[1], str):
                unique_id = doc[1][:36]
                if doc[0] in (MessageType.CallResult, MessageType.CallError):
                    unique_id = None  # never answer a (broken) response with an error
                elif doc[0] != MessageType.Call:
                    code = "MessageTypeNotSupported"  # OCPP-J 2.0.1 RPC framework error
        except (ValueError, TypeError):
            pass
        log.warning("malformed OCPP frame", extra={"error": code, "frame": str(raw)[:200]})
        if unique_id is not None:
            error = CallError(unique_id, code, exc.description, exc.details)
            await self._send(error.to_json())

    def cancel_requests(self) -> None:
        for task in list(self._request_tasks):
            task.cancel()
