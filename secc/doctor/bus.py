"""The bus, the OCPP bridge and the CSMS, as the SECC sees them over the broker.

Connects with the SECC's own ``[bus]`` credentials (so an ACL or password problem shows up
exactly as the daemon would meet it) and reads the retained state topics: ``bridge/online``
(the bridge's liveness and last will), ``bridge/csms`` (CSMS connection, registration,
security profile, and the field diagnostics the bridge recorded: capabilities the CSMS
answered NotImplemented/NotSupported, TLS failures, missing roots), ``evse/N/online`` and
``evse/N/state`` (is our daemon running, is a session in progress).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from secc import contract
from secc.config import BoardConfig
from secc.doctor import Finding, Status

# bridge diagnostic code -> (check name, fix)
PROBLEM_FIXES: dict[str, tuple[str, str]] = {
    "NotSupportedByCsms": (
        "csms.iso15118", "the CSMS lacks this ISO 15118 message: ask the operator to enable "
        "ISO 15118 / Plug & Charge support in the CSMS; until then set "
        "[v2g].plug_and_charge = false so cars use EIM"),
    "MissingRootCertificate": (
        "csms.roots", "the CSMS must install the root: InstallCertificate with the "
        "certificateType the message names (MORootCertificate / V2GRootCertificate)"),
    "TlsHandshakeFailed": (
        "csms.tls", "TLS to the CSMS failed: compare the TLS versions/cipher suites and the "
        "CA in the message with the CSMS's (ocpp-bridge.toml [csms] ca_file, "
        "security_profile; OCPP 2.0.1 SP2/SP3 require TLS 1.2+ and its A00.FR suites)"),
    "QueueDeadLetter": (
        "csms.queue", "the CSMS refused a transaction message repeatedly; it is kept in the "
        "bridge's queue database (state dead): check the CSMS's CALLERROR in the bridge log"),
    "CsmsRejected": ("csms.rejected", "see the message for what the CSMS refused"),
}


@dataclass
class BusSnapshot:
    """The retained state topics the doctor read (topic name -> payload)."""

    connected: bool = False
    error: str = ""
    refused_credentials: bool = False
    retained: dict[str, dict[str, Any]] = field(default_factory=dict)


async def read_bus(config: BoardConfig, wait: float = 1.5) -> BusSnapshot:
    import aiomqtt

    b = config.bus
    topics = {"bridge_online": contract.BY_NAME["bridge_online"].topic,
              "csms_connection": contract.BY_NAME["csms_connection"].topic,
              "secc_online": contract.BY_NAME["secc_online"].topic_for(b.evse),
              "session_state": contract.BY_NAME["session_state"].topic_for(b.evse)}
    by_topic = {topic: name for name, topic in topics.items()}
    snapshot = BusSnapshot()
    try:
        async with aiomqtt.Client(b.mqtt_host, b.mqtt_port, username=b.username,
                                  password=b.password, identifier=f"secc-doctor-{uuid.uuid4().hex[:8]}",
                                  protocol=aiomqtt.ProtocolVersion.V5, timeout=wait + 2) as client:
            snapshot.connected = True
            for topic in topics.values():
                await client.subscribe(topic, qos=1)

            async def collect() -> None:
                async for message in client.messages:
                    name = by_topic.get(str(message.topic))
                    if name is None:
                        continue
                    try:
                        snapshot.retained[name] = json.loads(message.payload)
                    except (ValueError, TypeError):
                        snapshot.retained[name] = {"unreadable": True}
                    if len(snapshot.retained) == len(topics):
                        return

            try:
                await asyncio.wait_for(collect(), wait)
            except (TimeoutError, asyncio.TimeoutError):
                pass  # retained topics never published are simply absent
    except aiomqtt.MqttCodeError as exc:
        snapshot.error = str(exc)
        rc = getattr(exc.rc, "value", exc.rc)
        snapshot.refused_credentials = rc in (4, 5, 134, 135)
    except aiomqtt.MqttError as exc:
        snapshot.error = str(exc)
    return snapshot


def bus_findings(config: BoardConfig, snapshot: BusSnapshot) -> list[Finding]:
    b = config.bus
    where = f"{b.mqtt_host}:{b.mqtt_port}"
    if not snapshot.connected:
        if snapshot.refused_credentials:
            return [Finding("bus.broker", Status.FAIL, f"the broker at {where} refused our "
                            f"credentials (user {b.username!r}): {snapshot.error}",
                            "make [bus].username/password match the broker's password file "
                            "(/etc/mosquitto/pysecc/passwd; mosquitto_passwd -b FILE USER PW, "
                            "then systemctl reload mosquitto)")]
        return [Finding("bus.broker", Status.FAIL, f"no broker reachable at {where}: "
                        f"{snapshot.error}", "start mosquitto (systemctl status mosquitto; "
                        "the pysecc drop-in listens on 127.0.0.1:1883) or correct "
                        "[bus].mqtt_host/mqtt_port")]
    findings = [Finding("bus.broker", Status.OK, f"broker at {where} accepted user "
                        f"{b.username!r}")]
    secc = snapshot.retained.get("secc_online")
    if not (secc or {}).get("online"):
        findings.append(Finding("secc.daemon", Status.WARN, f"the SECC daemon of EVSE {b.evse} "
                                "is not on the bus" + (" (it stopped or lost the broker)" if secc
                                                       else " (never connected)"),
                                "systemctl status pysecc-secc@<board>; journalctl -u "
                                "pysecc-secc@<board>"))
    else:
        findings.append(Finding("secc.daemon", Status.OK, f"SECC daemon of EVSE {b.evse} on the "
                                f"bus since {secc.get('since', '?')}"))
    bridge = snapshot.retained.get("bridge_online")
    if bridge is None:
        findings.append(Finding("bridge.alive", Status.FAIL, "the OCPP bridge never connected "
                                "to this broker (no retained bridge/online)",
                                "systemctl status pysecc-ocpp-bridge; journalctl -u "
                                "pysecc-ocpp-bridge"))
        return findings
    if not bridge.get("online"):
        findings.append(Finding("bridge.alive", Status.FAIL, "the OCPP bridge is down (its "
                                "last will says online=false)", "systemctl restart "
                                "pysecc-ocpp-bridge; journalctl -u pysecc-ocpp-bridge"))
        return findings
    findings.append(Finding("bridge.alive", Status.OK, f"OCPP bridge online since "
                            f"{bridge.get('since', '?')}"))
    findings += csms_findings(snapshot.retained.get("csms_connection"))
    return findings


def csms_findings(state: dict[str, Any] | None) -> list[Finding]:
    if state is None:
        return [Finding("csms.connection", Status.FAIL, "the bridge published no CSMS state",
                        "journalctl -u pysecc-ocpp-bridge")]
    profile = state.get("security_profile")
    details = {"security_profile": profile, "registration": state.get("registration"),
               "queued_messages": state.get("queued_messages")}
    findings: list[Finding] = []
    if not state.get("connected"):
        findings.append(Finding("csms.connection", Status.FAIL, "the bridge is not connected "
                                f"to the CSMS (security profile {profile}, "
                                f"{state.get('queued_messages', 0)} messages queued)",
                                "check ocpp-bridge.toml [csms] url, credentials and network; "
                                "the csms.* findings below say what failed", details))
    elif state.get("registration") != "Accepted":
        findings.append(Finding("csms.connection", Status.FAIL, "connected, but the CSMS "
                                f"answered BootNotification {state.get('registration')}",
                                "the operator must accept this station id in the CSMS",
                                details))
    else:
        findings.append(Finding("csms.connection", Status.OK, "CSMS connected and accepted, "
                                f"security profile {profile}", details=details))
        if profile == 1:
            findings.append(Finding("csms.security_profile", Status.WARN, "security profile "
                                    "1: basic auth over unencrypted ws://",
                                    "use profile 2 or 3 (wss://) in the field"))
    problems = state.get("problems") or []
    refused = [p for p in problems if p.get("code") == "NotSupportedByCsms"]
    for problem in problems:
        check, fix = PROBLEM_FIXES.get(problem.get("code", ""), ("csms.problem", ""))
        what = problem.get("capability") or problem.get("code")
        findings.append(Finding(check, Status.FAIL, f"{what}: {problem.get('message', '')}",
                                fix, {"code": problem.get("code"), "at": problem.get("timestamp")}))
    if not refused:
        findings.append(Finding("csms.iso15118", Status.OK, "the CSMS has answered no ISO "
                                "15118 message with NotImplemented/NotSupported since the "
                                "bridge started"))
    return findings


def session_in_progress(snapshot: BusSnapshot) -> bool:
    state = (snapshot.retained.get("session_state") or {}).get("state")
    return state in ("Occupied", "Charging")
