"""Battery model, protocol registry, progress lines, and robustness of the EVCC against
arbitrary response bytes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from secc.v2gtp import PayloadType
from sim.evcc import Battery, DinEvcc, EvccConfig, Finished, Iso2Evcc, Send
from sim.evcc import protocols
from sim.evcc.protocols import EvProtocol
from sim.evcc.runner import app_protocol_request, negotiate
from tests.evcc.harness import run_virtual
from tests.evcc.scripted_secc import Script, ScriptedSecc


# --- battery ------------------------------------------------------------------------------------
def test_battery_voltage_rises_monotonically_with_soc_within_its_limits():
    battery = Battery(empty_voltage=300, full_voltage=400, max_voltage=395)
    voltages = []
    for soc in range(0, 101, 5):
        battery.soc = soc
        voltages.append(battery.voltage())
    assert voltages == sorted(voltages)
    assert voltages[0] == 300 and max(voltages) == 395


def test_battery_current_is_limited_by_power_and_tapers_above_bulk_soc():
    battery = Battery(max_current=300, max_power=50_000, soc=50, bulk_soc=80, target_soc=90)
    assert battery.target_current() == pytest.approx(50_000 / battery.voltage(), abs=0.1)
    battery.soc = 85
    assert battery.target_current() < 50_000 / battery.voltage() * 0.6
    battery.soc = 90
    assert battery.target_current() == 0.0


def test_battery_charge_integrates_energy_and_never_overfills_or_drains():
    battery = Battery(capacity_wh=10_000, soc=50)
    assert battery.charge(36_000, 100) == pytest.approx(1000)
    assert battery.soc == pytest.approx(60)
    assert battery.charge(-5000, 100) == 0 and battery.soc == pytest.approx(60)
    battery.charge(1e9, 3600)
    assert battery.soc == 100 and battery.energy_delivered_wh == pytest.approx(5000)


def test_battery_ends_at_target_soc_or_iteration_limit():
    battery = Battery(soc=50, target_soc=80, max_iterations=4)
    assert not battery.charging_complete(3) and battery.charging_complete(4)
    battery.soc = 80
    assert battery.charging_complete(0)
    with pytest.raises(ValueError):
        Battery(soc=120)


# --- registry -----------------------------------------------------------------------------------
def test_registry_offers_the_preferred_protocol_first_and_skips_those_without_the_mode():
    offers = protocols.default_offers(["din", "iso2"], "ac")
    assert [o.namespace for o in offers] == ["urn:iso:15118:2:2013:MsgDef"]
    offers = protocols.default_offers(["iso2", "din"], "dc", vendor_first=True)
    assert offers[0] == protocols.TESLA_OFFER
    assert [o.major for o in offers[1:]] == [2, 2]
    with pytest.raises(ValueError):
        protocols.get("chademo")


def test_a_registered_protocol_module_is_negotiated_without_touching_the_runner():
    """A new protocol = one register() call: the runner's negotiate() finds it by namespace."""
    fake = EvProtocol("fake", {"dc": "urn:example:fake:MsgDef"}, 1, 0, DinEvcc,
                      frozenset({PayloadType.EXI}))
    protocols.register(fake)
    try:
        offers = protocols.default_offers(["fake", "din"], "dc")
        chosen = asyncio.run(_negotiate_against(offers, schema_id=1))
        assert chosen[0] is fake and chosen[1] == "OK_SuccessfulNegotiation"
    finally:
        del protocols.PROTOCOLS["fake"]


class _LoopbackConnection:
    """Just enough of V2GTPConnection for negotiate(): hands back one canned response."""

    def __init__(self, reply: bytes) -> None:
        self.sent: list[bytes] = []
        self._reply = reply

    async def send(self, payload_type: int, payload: bytes) -> None:
        self.sent.append(payload)

    async def receive(self, timeout=None):
        from secc.v2gtp import V2GTPMessage

        return V2GTPMessage(PayloadType.EXI, self._reply)


async def _negotiate_against(offers, schema_id: int):
    import exi_schemas as exi
    from exi_schemas.generated import appprotocol

    reply = exi.encode(appprotocol.supportedAppProtocolRes(
        response_code="OK_SuccessfulNegotiation", schema_id=schema_id))
    connection = _LoopbackConnection(reply)
    result = await negotiate(connection, offers, "dc")
    assert connection.sent == [app_protocol_request(offers)]
    return result


# --- progress lines -----------------------------------------------------------------------------
def test_progress_lines_tell_a_demo_what_happens(caplog):
    caplog.set_level(logging.INFO, logger="pysecc.sim")
    secc = ScriptedSecc("din", script=Script(ongoing={"CableCheck": 2}))
    run_virtual(DinEvcc(Battery(soc=42.2, max_iterations=1), EvccConfig()), secc)
    lines = [r.getMessage() for r in caplog.records if r.name == "pysecc.sim"]
    assert "SessionSetup OK (new session 8a9b0c1d2e3f4051) with EVSE 49A0" in lines
    assert lines.count("CableCheck ongoing...") == 1 and "CableCheck OK" in lines
    assert any(line.startswith("CurrentDemand 200 A ") and line.endswith("SoC 42%")
               for line in lines)


# --- robustness ---------------------------------------------------------------------------------
def _responses(schema: str, mode: str) -> list[tuple[str, str, int, bytes]]:
    """Every (schema, mode, index, SECC response) of a nominal session, to mutate."""
    secc = ScriptedSecc(schema, mode)
    replies = []
    evcc = _evcc(schema, mode)
    action = evcc.start(0.0)
    while isinstance(action, Send):
        reply = secc.respond(action.payload)
        replies.append((schema, mode, len(replies), reply))
        action = evcc.receive(PayloadType.EXI, reply, action.not_before + 0.01)
    return replies


def _evcc(schema: str, mode: str):
    cls = DinEvcc if schema == "din" else Iso2Evcc
    return cls(Battery(max_iterations=2), EvccConfig(mode=mode))


SAMPLES = _responses("din", "dc") + _responses("iso2", "ac") + _responses("iso2", "dc")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(SAMPLES), data=st.data())
def test_any_mutated_response_yields_a_request_or_a_typed_failure(sample, data):
    schema, mode, index, reply = sample
    evcc = _evcc(schema, mode)
    secc = ScriptedSecc(schema, mode)
    action = evcc.start(0.0)
    for _ in range(index):  # replay the session up to the response we mutate
        action = evcc.receive(PayloadType.EXI, secc.respond(action.payload), 0.0)
    assert isinstance(action, Send)
    position = data.draw(st.integers(0, len(reply) - 1))
    flipped = bytearray(reply)
    flipped[position] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(1, len(reply)))
    outcome = evcc.receive(PayloadType.EXI, bytes(flipped[:cut]), 0.0)
    assert isinstance(outcome, (Send, Finished))
    if isinstance(outcome, Finished) and outcome.failure is not None:
        assert outcome.failure.step
        assert "cannot act on the response" not in outcome.failure.detail  # no handler bug


# --- vehicle signals (CP state, contactors) for a simulated charger board ---------------------
def _signals_per_request(evcc, secc) -> list[tuple[str, str, bool]]:
    seen = []
    action = evcc.start(0.0)
    while isinstance(action, Send):
        seen.append((action.step, evcc.signals.pilot, evcc.signals.contactors_closed))
        action = evcc.receive(PayloadType.EXI, secc.respond(action.payload), action.not_before)
    seen.append(("end", evcc.signals.pilot, evcc.signals.contactors_closed))
    return seen


@pytest.mark.parametrize("cls", [DinEvcc, Iso2Evcc])
def test_dc_car_closes_s2_before_cable_check_and_contactors_only_while_charging(cls):
    schema = "din" if cls is DinEvcc else "iso2"
    seen = dict((step, (pilot, closed)) for step, pilot, closed in _signals_per_request(
        cls(Battery(max_iterations=1), EvccConfig()), ScriptedSecc(schema, "dc")))
    assert seen["ChargeParameterDiscovery"] == ("B", False)
    assert seen["CableCheck"] == seen["PreCharge"] == ("C", False)
    assert seen["CurrentDemand"] == ("C", True)
    assert seen["WeldingDetection"] == seen["end"] == ("B", False)


def test_ac_car_switches_to_state_c_with_power_delivery_start():
    seen = _signals_per_request(Iso2Evcc(Battery(max_iterations=1), EvccConfig(mode="ac")),
                                ScriptedSecc("iso2", "ac"))
    pilots = [(step, pilot) for step, pilot, closed in seen]
    assert pilots[:6] == [("SessionSetup", "B"), ("ServiceDiscovery", "B"),
                          ("PaymentServiceSelection", "B"), ("Authorization", "B"),
                          ("ChargeParameterDiscovery", "B"), ("PowerDelivery", "C")]
    assert pilots[-2:] == [("SessionStop", "B"), ("end", "B")]
    assert not any(closed for _, _, closed in seen)  # AC: no DC contactors


def test_a_failure_opens_the_contactors_and_returns_to_state_b():
    evcc = DinEvcc(Battery(max_iterations=5), EvccConfig())
    record = run_virtual(evcc, ScriptedSecc("din", script=Script(silent={"CurrentDemand"})))
    assert record.failure is not None
    assert (evcc.signals.pilot, evcc.signals.contactors_closed) == ("B", False)


@pytest.mark.parametrize(("value", "expected"), [
    (0.0, 0.0), (412.8, 412.8), (-1.5, -1.5), (150_000, 150_000), (28_000, 28_000),
    (5e9, 32767e3), (-5e9, -32768e3)])
def test_physical_values_fit_the_schema_and_saturate_instead_of_failing(value, expected):
    from exi_schemas.generated import din, iso2
    from sim.evcc.core import physical, value_of

    for module in (din, iso2):
        pv = physical(module, value, "Wh")
        assert -3 <= pv.multiplier <= 3 and -32768 <= pv.value <= 32767
        assert value_of(pv) == pytest.approx(expected, rel=1e-3)


def test_an_absurd_battery_still_produces_encodable_requests():
    battery = Battery(capacity_wh=1e12, max_power=1e10, max_current=1e6, max_voltage=1e5,
                      max_iterations=2)
    record = run_virtual(DinEvcc(battery, EvccConfig()), ScriptedSecc("din"))
    assert record.ok, record.failure


async def test_sim_board_signals_drive_the_simulated_board_like_a_car():
    from hal.sim import SimBoard
    from sim.evcc import VehicleSignals
    from sim.evcc.runner import sim_board_signals

    board = SimBoard()
    await board.start()
    try:
        hook = sim_board_signals(board)
        hook(VehicleSignals(pilot="C", contactors_closed=True, battery_voltage=377.0))
        assert board.plant.pilot_raw.value == "C" and board.plant.ev_contactors_closed
        assert board.plant.ev_battery_voltage_v == 377.0
        threaded = sim_board_signals(board, asyncio.get_running_loop())
        await asyncio.to_thread(threaded, VehicleSignals(pilot="B"))
        await asyncio.sleep(0)
        assert board.plant.pilot_raw.value == "B" and not board.plant.ev_contactors_closed
    finally:
        await board.close()


@pytest.mark.parametrize("slac", [False, True])
def test_missing_interface_is_a_setup_failure_not_an_exception(slac):
    from sim.evcc import SetupFailed
    from sim.evcc.runner import EvSessionConfig, run_ev_session

    result = asyncio.run(run_ev_session(EvSessionConfig(interface="nosuchif0", slac=slac,
                                                        sdp_retries=0)))
    assert isinstance(result.failure, SetupFailed)
    assert result.failure.step == ("SLAC" if slac else "SDP") and "nosuchif0" in str(result.failure)
