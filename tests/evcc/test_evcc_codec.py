"""Every request the EV simulator produces goes through the real codec both ways, and looks
like what real cars send (field set of the real-car DIN captures)."""

from __future__ import annotations

import json

import exi_schemas as exi
import pytest
from sim.evcc import Battery, DinEvcc, EvccConfig, Iso2Evcc, Misbehaviour, Send
from sim.evcc.core import body_element
from tests.evcc.harness import run_virtual
from tests.evcc.scripted_secc import Script, ScriptedSecc

SCENARIOS = {
    "din-dc": (DinEvcc, "din", "dc", Misbehaviour(), Script(ongoing={"CableCheck": 1})),
    "iso2-dc": (Iso2Evcc, "iso2", "dc", Misbehaviour(renegotiate_after=1, wrong_session_id=
                                                      frozenset({"PreCharge"})),
                Script(receipt_required_at={2})),
    "iso2-ac": (Iso2Evcc, "iso2", "ac", Misbehaviour(pause_instead_of_terminate=True),
                Script(receipt_required_at={1}, ongoing={"Authorization": 1})),
}


def produced(name: str) -> list[Send]:
    cls, schema, mode, knobs, script = SCENARIOS[name]
    sent: list[Send] = []
    record = run_virtual(cls(Battery(max_iterations=3), EvccConfig(mode=mode,
                                                                   seconds_per_iteration=5),
                             knobs), ScriptedSecc(schema, mode, script), sent=sent)
    assert record.ok, record.failure
    return sent


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_request_round_trips_through_the_codec(name):
    schema = SCENARIOS[name][1]
    sent = produced(name)
    steps = set()
    for send in sent:
        decoded = exi.decode(send.payload, schema)
        assert decoded == send.message
        assert exi.encode(decoded) == send.payload
        field, _ = body_element(decoded)
        assert field.endswith("_req")
        steps.add(send.step)
    expected = {"SessionSetup", "ServiceDiscovery", "ChargeParameterDiscovery", "PowerDelivery",
                "SessionStop"}
    assert expected <= steps
    if name != "iso2-ac":
        assert {"CableCheck", "PreCharge", "CurrentDemand", "WeldingDetection"} <= steps
    if name.startswith("iso2"):
        assert "MeteringReceipt" in steps


def _real_car_din_requests(shared_dir, producer: str) -> dict[str, object]:
    found: dict[str, object] = {}
    with open(shared_dir / "realcar" / "messages.jsonl") as lines:
        for line in lines:
            row = json.loads(line)
            if row["dir"] != "ev2secc" or row["protocol"] == "appprotocol" \
                    or producer not in row.get("producers", []):
                continue
            message = exi.decode(bytes.fromhex(row["exi_hex"]), "din")
            name, body = body_element(message)
            found.setdefault(name, body)
    return found


def _fields(value: object) -> set[str]:
    names = set()
    for name in getattr(value, "__slots__", ()):
        inner = getattr(value, name)
        if inner is not None:
            names.add(name)
            if hasattr(inner, "__slots__") and not hasattr(inner, "multiplier"):
                names |= {f"{name}.{n}" for n in _fields(inner)}
    return names


def test_din_requests_have_the_fields_a_real_ioniq_sends(shared_dir):
    real = _real_car_din_requests(shared_dir, "Hyundai Ioniq (real)")
    ours = {}
    for send in produced("din-dc"):
        name, body = body_element(send.message)
        ours.setdefault(name, body)
    compared = 0
    for name, real_body in real.items():
        if name not in ours:
            continue
        assert _fields(real_body) <= _fields(ours[name]), name
        compared += 1
    assert compared >= 8
