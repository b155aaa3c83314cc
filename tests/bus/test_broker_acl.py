"""The broker's ACL (generated from the bus contract): each side may publish only its own
channels; a SECC account cannot impersonate the bridge, and vice versa."""

from __future__ import annotations

import asyncio

import aiomqtt

from sim.testing.broker import MosquittoBroker
from secc.contract import BY_NAME, mosquitto_acl


async def _received(broker, user, password, subscribe, publish_as, topic, payload=b"{}"):
    async with aiomqtt.Client(broker.host, broker.port, username=user, password=password,
                              identifier=f"sub-{user}") as sub:
        await sub.subscribe(subscribe, qos=1)
        async with aiomqtt.Client(broker.host, broker.port, username=publish_as[0],
                                  password=publish_as[1], identifier="pub") as pub:
            await pub.publish(topic, payload, qos=1)

        async def first():
            async for message in sub.messages:
                return message
        try:
            return await asyncio.wait_for(first(), 1.0)
        except asyncio.TimeoutError:
            return None


async def test_each_side_publishes_only_its_own_channels():
    secc, bridge = ("secc", "secc-pw"), ("bridge", "bridge-pw")
    with MosquittoBroker(username=secc[0], password=secc[1], bridge_user=bridge) as broker:
        stop = BY_NAME["request_stop_transaction"].topic_for(1)   # a bridge command
        event = BY_NAME["session_event"].topic_for(1)             # a SECC event
        # the bridge may command the SECC ...
        assert await _received(broker, *secc, stop, bridge, stop) is not None
        # ... but the SECC account cannot forge a bridge command
        assert await _received(broker, *secc, stop, secc, stop) is None
        # the SECC's events reach the bridge; the bridge cannot forge them
        assert await _received(broker, *bridge, event, secc, event) is not None
        assert await _received(broker, *bridge, event, bridge, event) is None


def test_acl_covers_every_channel_once_per_side():
    acl = mosquitto_acl("secc", "bridge")
    secc_part, bridge_part = acl.split("user bridge")
    for channel in BY_NAME.values():
        own, other = ((secc_part, bridge_part) if channel.publisher.value == "secc"
                      else (bridge_part, secc_part))
        assert f"topic write {channel.topic_filter}\n" in own
        assert f"topic read {channel.topic_filter}\n" in other
