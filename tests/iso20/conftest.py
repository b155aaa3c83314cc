"""Helpers for the -20 tests: a SECC core + adapter, the -20 EVCC, and a step-wise pump that
moves real EXI bytes between them in virtual time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

import exi_schemas
from secc.iso20 import Energy, Iso20Adapter
from sim.iso20_loopback import LoopbackCharger
from secc.iso20.session import Iso20Session
from secc.v2g.core import Reply
from sim.evcc import Battery, EvccConfig, Misbehaviour
from sim.evcc.iso20 import Iso20Evcc, Iso20Options
from sim.testing.pki import TestPKI

WALL = 1_764_000_000.0


def make_secc(energy: str = "dc", adapter: Iso20Adapter | None = None,
              **core_kwargs: Any) -> tuple[Iso20Adapter, Iso20Session]:
    adapter = adapter or Iso20Adapter(Energy(energy), wall_clock=lambda: WALL)
    return adapter, adapter.new_core(**core_kwargs)


def make_evcc(mode: str = "dc", *, loops: int = 5, misbehaviour: Misbehaviour | None = None,
              resume: bytes | None = None, battery: Battery | None = None,
              seconds_per_iteration: float | None = 0.25, **options: Any) -> Iso20Evcc:
    return Iso20Evcc(battery or Battery(max_iterations=loops),
                     EvccConfig(mode=mode, resume_session_id=resume,
                                seconds_per_iteration=seconds_per_iteration),
                     misbehaviour, Iso20Options(wall_clock=lambda: WALL, **options))


@dataclass
class Step:
    request: str
    reply: Reply
    response: Any   # the response as the EV decoded it from the bytes (None if none)


class Pump:
    """Moves one request at a time from the EVCC through bytes to the core and back."""

    def __init__(self, core: Iso20Session, adapter: Iso20Adapter, evcc: Iso20Evcc,
                 charger: LoopbackCharger | None = None, step: float = 0.05) -> None:
        self.core, self.adapter, self.evcc = core, adapter, evcc
        self.charger = charger or LoopbackCharger()
        self.now = 0.0
        self.step_time = step
        self.out = evcc.start(self.now)
        self.steps: list[Step] = []

    @property
    def next_request(self) -> str | None:
        return getattr(self.out, "step", None)

    def step(self) -> Step:
        out = self.out
        self.now = max(self.now, out.not_before)
        self.core.evse.cp_state = self.evcc.cp_state
        self.charger.tick(self.core, self.now)
        request = self.adapter.decode(out.payload_type, out.payload)
        reply = self.core.receive(request.name, request.body, self.now, request.session_id)
        self.charger.apply(self.core, reply.actions, self.now)
        response = None
        if reply.response is not None:
            payload_type, payload = self.adapter.encode(reply.response_name, reply.response,
                                                        self.core.session_id)
            schema = {0x8002: "iso20", 0x8003: "iso20-ac", 0x8004: "iso20-dc"}[payload_type]
            response = exi_schemas.decode(payload, schema)
            self.now += self.step_time
            self.out = self.evcc.receive(payload_type, payload, self.now)
        step = Step(request.name, reply, response)
        self.steps.append(step)
        return step

    def until(self, request: str, limit: int = 500) -> None:
        """Step until the EVCC is about to send ``request`` (not sent yet)."""
        for _ in range(limit):
            if self.next_request == request:
                return
            self.step()
        raise AssertionError(f"{request} never came; last: {[s.request for s in self.steps][-5:]}")

    def run(self, limit: int = 2000) -> None:
        for _ in range(limit):
            if not hasattr(self.out, "payload"):
                return
            step = self.step()
            if step.reply.close:
                return

    def send(self, request_obj: Any, name: str) -> Step:
        """Send a hand-made request (header filled here) instead of the EVCC's next one."""
        module = type(request_obj).__module__
        mod = exi_schemas.schema_module({"exi_schemas.generated.iso20": "iso20",
                                         "exi_schemas.generated.iso20_dc": "iso20-dc",
                                         "exi_schemas.generated.iso20_ac": "iso20-ac"}[module])
        if request_obj.header is None:
            request_obj.header = mod.MessageHeaderType(session_id=self.core.session_id,
                                                       time_stamp=int(WALL))
        payload = exi_schemas.encode(request_obj, element=name)
        payload_type = {"iso20": 0x8002, "iso20_dc": 0x8004, "iso20_ac": 0x8003}[
            module.rsplit(".", 1)[1]]
        self.charger.tick(self.core, self.now)
        request = self.adapter.decode(payload_type, payload)
        reply = self.core.receive(request.name, request.body, self.now, request.session_id)
        self.charger.apply(self.core, reply.actions, self.now)
        response = None
        if reply.response is not None:
            pt, data = self.adapter.encode(reply.response_name, reply.response,
                                           self.core.session_id)
            response = exi_schemas.decode(data, {0x8002: "iso20", 0x8003: "iso20-ac",
                                                 0x8004: "iso20-dc"}[pt])
        step = Step(request.name, reply, response)
        self.steps.append(step)
        return step

    def codes(self) -> list[tuple[str, str]]:
        return [(s.request, getattr(s.response, "response_code", None)) for s in self.steps]


@pytest.fixture
def pump_for():
    def factory(energy: str = "dc", core_kwargs: dict | None = None,
                charger: LoopbackCharger | None = None, **evcc_kwargs: Any) -> Pump:
        adapter, core = make_secc(energy, **(core_kwargs or {}))
        return Pump(core, adapter, make_evcc(energy, **evcc_kwargs), charger)
    return factory


# -20 Plug & Charge: a P-521 PKI and a contract from it (one per test module)
@pytest.fixture(scope="module")
def pki20() -> TestPKI:
    return TestPKI.iso20()


@pytest.fixture(scope="module")
def contract(pki20):
    return pki20.issue_contract()
