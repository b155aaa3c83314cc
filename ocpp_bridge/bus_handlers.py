"""What the bridge does with each bus channel the SECC publishes: one small handler each.

``register(bridge)`` subscribes every SECC channel. A common wrapper validates the EVSE id and
the payload (invalid -> ``bus_error`` InvalidPayload reply, or a log line for fire-and-forget
channels), so handlers only see valid, decoded payloads. Persisted channels are handled in
arrival order (inline); requests run as tasks so a slow CSMS never blocks the bus.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ocpp_bridge.certificates import CertificateError, contract_ocsp_data
from ocpp_bridge.diagnostics import CsmsOffline, bus_error_for
from ocpp_bridge.local_auth import authorize_from_list
from ocpp_bridge.offline_auth import cache_expiry, validate_contract_offline
from secc import contract
from secc.common.mqtt import BusUnavailable, Incoming
from secc.common.logs import layer_logger

if TYPE_CHECKING:
    from ocpp_bridge.app import Bridge

log = layer_logger("bus")

Reply = Callable[[dict[str, Any]], Awaitable[None]]
HandlerFn = Callable[["Bridge", int, dict[str, Any], Reply], Awaitable[None]]

OCSP_KEYS = {"hash_algorithm": "hashAlgorithm", "issuer_name_hash": "issuerNameHash",
             "issuer_key_hash": "issuerKeyHash", "serial_number": "serialNumber",
             "responder_url": "responderURL"}


def _ocsp(entry: dict[str, str]) -> dict[str, str]:
    return {OCSP_KEYS[k]: v for k, v in entry.items()}


async def _csms_failure(bridge: Bridge, evse_id: int, exc: BaseException, capability_key: str,
                        reply: Reply, session_id: str | None) -> None:
    """Map a failed CSMS call to the bus error reply (and a diagnostic when a capability is
    missing)."""
    code, message, capability = bus_error_for(exc, capability_key)
    if code == "NotSupportedByCsms":
        log.error(f"CSMS capability missing: {capability}", extra={
            "evse": evse_id, "capability": capability, "csms_answer": getattr(exc, "code", "")})
        await bridge.publish_error(evse_id, code, message, capability, session_id)
        await bridge.publish_csms_state()   # the retained state keeps it (secc doctor)
    else:
        log.warning("CSMS call failed", extra={"evse": evse_id, "code": code, "error": message})
    await reply(contract.error_payload(code, message, capability))


# --- persisted channels ---------------------------------------------------------------------------
async def on_transaction_event(bridge: Bridge, evse_id: int, event: dict[str, Any],
                               reply: Reply) -> None:
    offline = event.get("generated_offline", False) or not bridge.online
    queued = bridge.queue.enqueue_transaction_event(evse_id, event, offline=offline,
                                                    now=time.time())
    bridge.wake_queue()
    await reply({"message_id": queued.message_id, "queued": True})
    if not queued.duplicate:
        await bridge.smart_charging.transaction_event(evse_id, event)


async def on_meter_values(bridge: Bridge, evse_id: int, message: dict[str, Any],
                          reply: Reply) -> None:
    offline = message.get("generated_offline", False) or not bridge.online
    queued = bridge.queue.enqueue_meter_values(evse_id, message, offline=offline,
                                               now=time.time())
    bridge.wake_queue()
    await reply({"message_id": queued.message_id, "queued": True})


# --- state and events -----------------------------------------------------------------------------
async def on_session_state(bridge: Bridge, evse_id: int, state: dict[str, Any],
                           reply: Reply) -> None:
    status = bridge.connector_status_for(state["state"])
    bridge.status.after_message(evse_id, state.get("after_message_id"))
    if bridge.connector_status.get(evse_id) == status:
        return
    bridge.connector_status[evse_id] = status
    # sent when online, after this EVSE's queued TransactionEvents (ocpp_bridge/status.py)
    bridge.status.changed(evse_id)


async def on_session_event(bridge: Bridge, evse_id: int, event: dict[str, Any],
                           reply: Reply) -> None:
    log.info("SECC session event", extra={"evse": evse_id, "event": event["event"],
                                          "session": event["session_id"]})


async def on_secc_online(bridge: Bridge, evse_id: int, online: dict[str, Any],
                         reply: Reply) -> None:
    log.info("SECC liveness", extra={"evse": evse_id, "online": online["online"]})
    bridge.firmware.secc_online[evse_id] = online["online"]
    if bridge.status.secc_online.get(evse_id) != online["online"]:
        bridge.status.secc_online[evse_id] = online["online"]
        bridge.status.changed(evse_id)   # a SECC that is gone: its EVSE is Unavailable


# --- requests -------------------------------------------------------------------------------------
async def on_authorize(bridge: Bridge, evse_id: int, request: dict[str, Any],
                       reply: Reply) -> None:
    session_id = request["session_id"]
    payload: dict[str, Any] = {"idToken": {"idToken": request["id_token"],
                                           "type": request["id_token_type"]}}
    capability = "Authorize"
    if request.get("ocsp_request_data"):
        capability = "AuthorizeWithCertificate"
        payload["iso15118CertificateHashData"] = [_ocsp(e) for e in request["ocsp_request_data"]]
    elif request.get("contract_chain_pem"):
        capability = "AuthorizeWithCertificate"
        try:
            hashes = contract_ocsp_data(request["contract_chain_pem"], bridge.certificates)
        except CertificateError as exc:
            await reply({"status": "CertificateRejected",
                         "reason": f"contract chain unparseable: {exc}"})
            return
        if hashes.missing_root:
            text = (f"MO root certificate for issuer '{hashes.missing_root}' is not installed; "
                    "fix: the CSMS sends InstallCertificate(certificateType=MORootCertificate)")
            log.error(text, extra={"evse": evse_id, "session": session_id})
            await bridge.publish_error(evse_id, "MissingRootCertificate", text,
                                       "MORootCertificate", session_id)
            await bridge.publish_csms_state()
        if hashes.entries and not hashes.missing_ocsp_url and not hashes.missing_root:
            payload["iso15118CertificateHashData"] = hashes.entries
        elif bridge.device_model.get("ISO15118Ctrlr", "CentralContractValidationAllowed"):
            payload["certificate"] = request["contract_chain_pem"]
        else:
            await reply({"status": "Invalid", "reason": "no OCSP data for the contract and "
                         "CentralContractValidationAllowed is false"})
            return
    try:
        answer = await bridge.call_csms("Authorize", payload)
    except (CsmsOffline, TimeoutError) as exc:
        decided = _authorize_offline(bridge, request)
        if decided is not None:
            log.info("authorized offline", extra={"evse": evse_id, "session": session_id,
                                                  "status": decided["status"],
                                                  "reason": decided["reason"]})
            await reply(decided)
            return
        await _csms_failure(bridge, evse_id, exc, capability, reply, session_id)
        return
    except Exception as exc:  # noqa: BLE001 - every failure becomes a bus error reply
        await _csms_failure(bridge, evse_id, exc, capability, reply, session_id)
        return
    info = answer["idTokenInfo"]
    out: dict[str, Any] = {"status": info["status"]}
    if "certificateStatus" in answer:
        out["certificate_status"] = answer["certificateStatus"]
    model = bridge.device_model
    if info["status"] == "Accepted" and model.get("AuthCacheCtrlr", "Enabled"):
        now = time.time()
        bridge.auth_cache.remember(request["id_token"], request["id_token_type"], "Accepted",
                                   cache_expiry(info, model.get("AuthCacheCtrlr", "LifeTime"),
                                                now))
    await reply(out)


def _authorize_offline(bridge: Bridge, request: dict[str, Any]) -> dict[str, Any] | None:
    """C07/C15: local decisions while the CSMS is unreachable (None: cannot decide)."""
    model = bridge.device_model
    chain = request.get("contract_chain_pem")
    if chain and model.get("ISO15118Ctrlr", "ContractValidationOffline"):
        status, certificate_status, reason = validate_contract_offline(chain,
                                                                       bridge.certificates)
        return {"status": status, "certificate_status": certificate_status, "reason": reason}
    if not model.get("AuthCtrlr", "LocalAuthorizeOffline"):
        return None
    listed = authorize_from_list(bridge, request["id_token"], request["id_token_type"],
                                 time.time())
    if listed is not None:   # C14: the local list decides before the cache
        return listed
    if model.get("AuthCacheCtrlr", "Enabled"):
        cached = bridge.auth_cache.lookup(request["id_token"], request["id_token_type"],
                                          time.time())
        if cached == "Accepted":
            return {"status": "Accepted", "reason": "offline: id token in authorization cache"}
    return None


async def on_get_15118_ev_certificate(bridge: Bridge, evse_id: int, request: dict[str, Any],
                                      reply: Reply) -> None:
    if not bridge.device_model.get("ISO15118Ctrlr", "ContractCertificateInstallationEnabled"):
        await reply({"status": "Failed", "exi_response": "",
                     "reason": "ISO15118Ctrlr.ContractCertificateInstallationEnabled is false"})
        return
    payload = {"iso15118SchemaVersion": request["iso15118_schema_version"],
               "action": request["action"], "exiRequest": request["exi_request"]}
    try:
        answer = await bridge.call_csms("Get15118EVCertificate", payload)
    except Exception as exc:  # noqa: BLE001
        await _csms_failure(bridge, evse_id, exc, "Get15118EVCertificate", reply,
                            request["session_id"])
        return
    out = {"status": answer["status"], "exi_response": answer["exiResponse"]}
    if answer.get("statusInfo"):
        out["reason"] = answer["statusInfo"].get("reasonCode", "")
    await reply(out)


async def on_get_certificate_status(bridge: Bridge, evse_id: int, request: dict[str, Any],
                                    reply: Reply) -> None:
    try:
        answer = await bridge.call_csms("GetCertificateStatus",
                                        {"ocspRequestData": _ocsp(request["ocsp_request_data"])})
    except Exception as exc:  # noqa: BLE001
        await _csms_failure(bridge, evse_id, exc, "GetCertificateStatus", reply,
                            request.get("session_id"))
        return
    out = {"status": answer["status"]}
    if "ocspResult" in answer:
        out["ocsp_result"] = answer["ocspResult"]
    await reply(out)


async def on_notify_ev_charging_needs(bridge: Bridge, evse_id: int, request: dict[str, Any],
                                      reply: Reply) -> None:
    payload: dict[str, Any] = {"evseId": evse_id, "chargingNeeds": request["charging_needs"]}
    if "max_schedule_tuples" in request:
        payload["maxScheduleTuples"] = request["max_schedule_tuples"]
    try:
        answer = await bridge.call_csms("NotifyEVChargingNeeds", payload)
    except Exception as exc:  # noqa: BLE001
        await _csms_failure(bridge, evse_id, exc, "NotifyEVChargingNeeds", reply,
                            request["session_id"])
        return
    await reply({"status": answer["status"]})


async def on_notify_ev_charging_schedule(bridge: Bridge, evse_id: int, request: dict[str, Any],
                                         reply: Reply) -> None:
    payload = {"timeBase": request["time_base"], "evseId": evse_id,
               "chargingSchedule": request["charging_schedule"]}
    try:
        answer = await bridge.call_csms("NotifyEVChargingSchedule", payload)
    except Exception as exc:  # noqa: BLE001
        await _csms_failure(bridge, evse_id, exc, "NotifyEVChargingSchedule", reply,
                            request["session_id"])
        return
    await reply({"status": answer["status"]})


HANDLERS: dict[str, HandlerFn] = {
    "transaction_event": on_transaction_event,
    "meter_values": on_meter_values,
    "session_state": on_session_state,
    "session_event": on_session_event,
    "secc_online": on_secc_online,
    "authorize": on_authorize,
    "get_15118_ev_certificate": on_get_15118_ev_certificate,
    "get_certificate_status": on_get_certificate_status,
    "notify_ev_charging_needs": on_notify_ev_charging_needs,
    "notify_ev_charging_schedule": on_notify_ev_charging_schedule,
}


def _wrap(bridge: Bridge, channel: contract.Channel, handler: HandlerFn
          ) -> Callable[[Incoming], Awaitable[None]]:
    async def dispatch(message: Incoming) -> None:
        match = contract.match_topic(message.topic)
        evse_id = bridge.evse_ok(match[1] if match else None)

        async def reply(payload: dict[str, Any]) -> None:
            if channel.reply_schema is None or not message.response_topic:
                return
            schema = "bus_error" if "error" in payload else channel.reply_schema
            try:
                await bridge.bus.reply(message, contract.encode(schema, payload))
            except BusUnavailable:
                log.warning("reply lost: bus down (the SECC will retry)",
                            extra={"topic": message.topic})

        if message.retain and not message.payload:
            return  # a cleared retained topic
        if evse_id is None:
            log.warning("message for an unknown EVSE ignored", extra={"topic": message.topic})
            await reply(contract.error_payload("InvalidPayload", "unknown EVSE id in topic"))
            return
        try:
            payload = contract.decode(channel.schema, message.payload)
        except contract.BusPayloadError as exc:
            log.warning("invalid bus payload rejected", extra={"topic": message.topic,
                                                               "error": str(exc)})
            await reply(contract.error_payload("InvalidPayload", str(exc)))
            return
        try:
            await handler(bridge, evse_id, payload, reply)
        except BusUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - our bug: still answer, never leave it hanging
            log.exception("bus handler failed", extra={"topic": message.topic})
            await reply(contract.error_payload("Internal", f"{type(exc).__name__}: {exc}"))

    return dispatch


def register(bridge: Bridge) -> None:
    for name, handler in HANDLERS.items():
        channel = contract.BY_NAME[name]
        bridge.bus.subscribe(channel.topic_filter, _wrap(bridge, channel, handler),
                             inline=channel.kind is not contract.Kind.REQUEST)


__all__ = ["HANDLERS", "register", "CsmsOffline"]
