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
import copy
import functools
import json
import uuid
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from ocpp.exceptions import FormatViolationError, OCPPError, TypeConstraintViolationError
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator, unpack
from ocpp.v201 import ChargePoint

from secc.common.logs import layer_logger

log = layer_logger("ocpp")

OCPP_VERSION = "2.0.1"

# (action, message type, property) -> maxLength we accept instead of the bundled schema's
RELAXED_MAX_LENGTH: dict[tuple[str, int, str], int] = {
    ("Get15118EVCertificate", MessageType.CallResult, "exiResponse"): 17000,
}


class CsmsCallError(Exception):
    """The CSMS answered our CALL with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any = None) -> None:
        self.action = action
        self.code = code
        self.description = description
        self.details = details
        super().__init__(f"{action}: CALLERROR {code}: {description}")


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
        if exc.validator in ("type", "maxLength"):
            raise TypeConstraintViolationError(details={"cause": exc.message}) from None
        raise FormatViolationError(details={"cause": f"{action}: {exc.message}"}) from None


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
            log.warning("CSMS sent an invalid CALLRESULT", extra={"action": action,
                                                                  "error": str(exc.details)})
            raise CsmsCallError(action, exc.code, f"invalid CALLRESULT: {exc.details}") from None
        return response.payload

    async def start(self) -> None:
        while True:
            raw = await self._connection.recv()
            log.debug("received", extra={"frame": raw[:2000]})
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

    async def _handle_call_safely(self, message: Call) -> None:
        try:
            await self._handle_call(message)
        except OCPPError as error:
            log.warning("CSMS request refused", extra={"action": message.action,
                                                       "error": error.code})
            await self._send(message.create_call_error(error).to_json())
        except Exception:  # noqa: BLE001 - answer, never die on one request
            log.exception("CSMS request handler failed", extra={"action": message.action})
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
