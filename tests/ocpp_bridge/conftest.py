from __future__ import annotations

import pytest
from bridge_harness import BUS_PASSWORD, BUS_USER, PASSWORD, STATION

from sim.testing.broker import MosquittoBroker, find_mosquitto
from sim.csms import TestCsms


@pytest.fixture(scope="module")
def bus_broker():
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; `make install` installs it")
    with MosquittoBroker(username=BUS_USER, password=BUS_PASSWORD) as broker:
        yield broker


@pytest.fixture
async def csms():
    server = TestCsms(passwords={STATION: PASSWORD}, response_timeout=3.0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def pysecc_logs(caplog):
    """caplog that also sees pysecc loggers after setup_logging() turned propagation off."""
    import logging

    logger = logging.getLogger("pysecc")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="pysecc")
    yield caplog
    logger.removeHandler(caplog.handler)
