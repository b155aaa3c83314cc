"""Fixtures every test module can use: real components, never mocks.

* ``mqtt_broker``  a mosquitto process on a free 127.0.0.1 port for the test session
* ``veth_link``    two network namespaces joined by a veth pair (the simulated PLC link)
* ``test_pki``     the ISO 15118-shaped test PKI (V2G/CPO, MO/contract, OEM/vehicle)
* ``shared_dir``   ../shared reference data (schemas, vectors, real-car captures), or skip
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sim.testing.broker import MosquittoBroker, find_mosquitto
from sim.testing.netns import VethLink, netns_supported
from sim.testing.pki import TestPKI

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _pysecc_logger_restored():
    """A test that runs a CLI in-process installs our log handler (on a stream pytest closes
    afterwards) and stops propagation; put the ``pysecc`` logger back so later tests' caplog
    sees every line."""
    logger = logging.getLogger("pysecc")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference data {SHARED} is absent (fresh clone without ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def mqtt_broker():
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed; `make install` installs it")
    with MosquittoBroker() as broker:
        yield broker


@pytest.fixture
def veth_link():
    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    link = VethLink().create()
    try:
        yield link
    finally:
        link.destroy()


@pytest.fixture(scope="session")
def test_pki() -> TestPKI:
    return TestPKI()
