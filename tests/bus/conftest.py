from __future__ import annotations

import pytest
from bus_test_credentials import BUS_PASSWORD, BUS_USER

from sim.testing.broker import MosquittoBroker, find_mosquitto


@pytest.fixture(scope="module")
def auth_broker():
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; `make install` installs it")
    with MosquittoBroker(username=BUS_USER, password=BUS_PASSWORD) as broker:
        yield broker
