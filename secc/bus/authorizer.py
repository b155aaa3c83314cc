"""``BusAuthorizer``: the session layer's ``Authorizer`` that asks the CSMS via the bridge.

It never raises: every failure (bus down, bridge silent, CSMS offline, CSMS lacking the
capability, an invalid reply) becomes an ``AuthorizationDecision`` whose ``reason`` tells the
field engineer what happened, so the session can answer the car with a proper response code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secc.authorization import AuthorizationDecision, AuthorizationRequest, AuthorizationStatus
from secc import contract
from secc.bus.client import BusRequestError, SeccBusClient
from secc.common.mqtt import BusTimeout, BusUnavailable
from secc.common.logs import layer_logger

log = layer_logger("bus")

# bus error code -> decision status (one table)
ERROR_STATUS: dict[str, AuthorizationStatus] = {
    "Timeout": AuthorizationStatus.TIMEOUT,
    "CsmsOffline": AuthorizationStatus.TIMEOUT,
    "CsmsPending": AuthorizationStatus.TIMEOUT,
    "InvalidCsmsAnswer": AuthorizationStatus.UNKNOWN,
    "NotSupportedByCsms": AuthorizationStatus.UNKNOWN,
    "CsmsRejected": AuthorizationStatus.INVALID,
    "InvalidPayload": AuthorizationStatus.INVALID,
    "Internal": AuthorizationStatus.UNKNOWN,
}


OCSP_KEYS = {"hashAlgorithm": "hash_algorithm", "issuerNameHash": "issuer_name_hash",
             "issuerKeyHash": "issuer_key_hash", "serialNumber": "serial_number",
             "responderURL": "responder_url"}


def _ocsp_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Accept OCPP's camelCase OCSPRequestDataType or the bus's snake_case."""
    return {OCSP_KEYS.get(k, k): v for k, v in entry.items()}


@dataclass
class BusAuthorizer:
    client: SeccBusClient
    timeout: float = 10.0

    async def authorize(self, request: AuthorizationRequest) -> AuthorizationDecision:
        payload: dict[str, Any] = {"session_id": request.session_id,
                                   "id_token": request.id_token.replace("-", "")
                                   if request.id_token_type == "eMAID" else request.id_token,
                                   "id_token_type": request.id_token_type}
        if request.contract_chain_pem:
            payload["contract_chain_pem"] = request.contract_chain_pem
        if request.ocsp_request_data:
            payload["ocsp_request_data"] = [_ocsp_entry(e) for e in request.ocsp_request_data]
        try:
            reply = await self.client.request("authorize", payload, self.timeout)
        except contract.BusPayloadError as exc:
            return AuthorizationDecision(AuthorizationStatus.INVALID,
                                         f"invalid authorize data: {exc}")
        except (BusTimeout, BusUnavailable) as exc:
            return AuthorizationDecision(AuthorizationStatus.TIMEOUT,
                                         f"bridge did not answer: {exc}")
        except BusRequestError as exc:
            status = ERROR_STATUS.get(exc.code, AuthorizationStatus.UNKNOWN)
            return AuthorizationDecision(status, str(exc))
        status = AuthorizationStatus(reply["status"])
        reason = reply.get("reason", "")
        cert_status = reply.get("certificate_status")
        if cert_status and cert_status != "Accepted":
            status = AuthorizationStatus.CERTIFICATE_REJECTED
            reason = f"contract certificate {cert_status}. {reason}".strip()
        log.info("authorization decided", extra={"session": request.session_id,
                                                  "status": status.value})
        return AuthorizationDecision(status, reason or f"CSMS said {reply['status']}")
