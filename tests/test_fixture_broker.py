import asyncio

import aiomqtt
import pytest

from sim.testing.broker import MosquittoBroker


async def test_publish_subscribe_through_real_broker(mqtt_broker):
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier="sub") as sub:
        await sub.subscribe("pysecc/test/#", qos=1)
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier="pub") as pub:
            await pub.publish("pysecc/test/hello", b'{"n": 1}', qos=1)

        async def first():
            async for message in sub.messages:
                return message

        message = await asyncio.wait_for(first(), 5)
    assert str(message.topic) == "pysecc/test/hello"
    assert message.payload == b'{"n": 1}'


async def test_broker_with_credentials_rejects_wrong_password():
    with MosquittoBroker(username="secc", password="s3cret") as broker:
        async with aiomqtt.Client(broker.host, broker.port, username="secc", password="s3cret"):
            pass
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(broker.host, broker.port, username="secc", password="bad"):
                pass


def test_broker_listens_on_loopback_only(mqtt_broker):
    assert mqtt_broker.host == "127.0.0.1"
    assert mqtt_broker.process is not None and mqtt_broker.process.poll() is None
