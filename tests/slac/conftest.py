"""Fixtures of the SLAC tests; the virtual-time medium lives in ``slac_medium``."""

from __future__ import annotations

import pytest
from slac_medium import EVSE_MAC, Medium

from secc.slac.config import SlacConfig
from secc.slac.evse import EvseSlac
from sim.ev_slac import EvSlac
from sim.modem import SimModem


@pytest.fixture
def make_medium():
    def make(config: SlacConfig | None = None, modem: SimModem | None = None,
             evs: list[EvSlac] | None = None) -> Medium:
        evse = EvseSlac(config or SlacConfig(), EVSE_MAC)
        return Medium(evse=evse, modem=modem or SimModem(), evs=evs or [])
    return make
