"""``secc bus``: look at the SECC <-> OCPP bridge bus in the field.

* ``secc bus contract``  the topic table (who publishes, QoS, retained)
* ``secc bus asyncapi``  the AsyncAPI 2.6 document
* ``secc bus monitor``   subscribe to ``pysecc/v1/#`` and print every message, each checked
  against its schema (``INVALID`` marks payloads the other side will refuse)
* ``secc bus authorize --token T``  ask the CSMS through the running bridge, as the SECC would
  (exit 0 when Accepted): proves broker credentials, bridge and CSMS in one step
"""

from __future__ import annotations

import asyncio
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("bus", help="inspect the local MQTT bus (contract, traffic)")
    sub = parser.add_subparsers(dest="bus_command", metavar="BUS_COMMAND")
    sub.add_parser("contract", help="print the topic table").set_defaults(handler=run_contract)
    sub.add_parser("asyncapi", help="print the AsyncAPI 2.6 JSON").set_defaults(
        handler=run_asyncapi)
    monitor = sub.add_parser("monitor", help="print bus traffic with schema checks")
    monitor.add_argument("--host", default="127.0.0.1")
    monitor.add_argument("--port", type=int, default=1883)
    monitor.add_argument("--username")
    monitor.add_argument("--password")
    monitor.add_argument("--count", type=int, default=0, help="stop after N messages")
    monitor.add_argument("--timeout", type=float, default=0, help="stop after T seconds")
    monitor.set_defaults(handler=run_monitor)
    authorize = sub.add_parser("authorize", help="Authorize a token via bridge and CSMS")
    authorize.add_argument("--host", default="127.0.0.1")
    authorize.add_argument("--port", type=int, default=1883)
    authorize.add_argument("--username")
    authorize.add_argument("--password")
    authorize.add_argument("--evse", default="1")
    authorize.add_argument("--token", required=True)
    authorize.add_argument("--type", default="ISO14443", help="OCPP IdTokenEnumType")
    authorize.add_argument("--timeout", type=float, default=10.0)
    authorize.set_defaults(handler=run_authorize)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def run_contract(args) -> int:
    from secc.contract import main

    return main([])


def run_asyncapi(args) -> int:
    from secc.contract import main

    return main(["--asyncapi"])


def describe(topic: str, payload: bytes) -> str:
    """One line per message: topic, channel, schema verdict, payload."""
    from secc import contract

    match = contract.match_topic(topic)
    if match is None:
        kind, verdict = "reply" if "/reply/" in topic else "unknown", ""
    else:
        channel = match[0]
        kind = channel.name
        try:
            contract.decode(channel.schema, payload)
            verdict = "ok"
        except contract.BusPayloadError as exc:
            verdict = f"INVALID ({exc})"
    text = payload.decode(errors="replace")
    if len(text) > 300:
        text = text[:300] + f"... ({len(payload)} bytes)"
    return f"{topic} [{kind}] {verdict} {text}".replace("  ", " ")


async def _monitor(args) -> int:
    import aiomqtt

    seen = 0
    async with aiomqtt.Client(args.host, args.port, username=args.username,
                              password=args.password,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("pysecc/v1/#", qos=1)
        print("# subscribed to pysecc/v1/#", file=sys.stderr, flush=True)
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else \
                json.dumps(message.payload).encode()
            print(describe(message.topic.value, payload), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return 0
    return 0


def run_monitor(args) -> int:
    try:
        if args.timeout:
            asyncio.run(asyncio.wait_for(_monitor(args), args.timeout))
        else:
            asyncio.run(_monitor(args))
    except (asyncio.TimeoutError, TimeoutError):
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # noqa: BLE001 - a CLI prints one line, not a traceback
        print(f"secc bus monitor: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _authorize(args) -> int:
    import tempfile
    from pathlib import Path

    from secc.authorization import AuthorizationRequest
    from secc.bus.authorizer import BusAuthorizer
    from secc.bus.client import SeccBusClient, SeccBusConfig
    from secc.common.mqtt import BrokerConfig

    with tempfile.TemporaryDirectory(prefix="secc-bus-cli-") as tmp:
        client = SeccBusClient(SeccBusConfig(
            BrokerConfig(args.host, args.port, args.username, args.password), evse_id=args.evse,
            outbox_path=Path(tmp) / "outbox.db", client_id=f"secc-cli-{args.evse}"))
        async with client:
            try:
                await client.wait_connected(args.timeout)
            except (asyncio.TimeoutError, TimeoutError):
                print(f"not connected to the broker at {args.host}:{args.port} "
                      "(credentials?)", file=sys.stderr)
                return 1
            decision = await BusAuthorizer(client, args.timeout).authorize(
                AuthorizationRequest(str(args.evse), "cli", args.token, args.type))
    print(f"{decision.status.value}: {decision.reason}")
    return 0 if decision.accepted else 1


def run_authorize(args) -> int:
    return asyncio.run(_authorize(args))
