"""Smart charging through the whole charger: the test CSMS sets a charging profile in the
middle of a session; the OCPP bridge (own process) computes the composite limit and publishes
it on the bus; the SECC daemon lowers what it offers; the simulated car sees the new limit in
its next charge-loop response and, for ISO-2, renegotiates to a new SAScheduleList."""

from __future__ import annotations

import time

from sim.charger import STATION_ID, run_charger_session, wait_until
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig
from sim.evcc.runner import EvSessionConfig, sim_board_signals

LIMIT_W = 20_000.0


def tx_profile(transaction_id: str, watts: float) -> dict:
    return {"id": 11, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative", "transactionId": transaction_id,
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                                  "chargingSchedulePeriod": [{"startPeriod": 0,
                                                              "limit": watts}]}]}


def set_profile_while_charging(watts: float):
    async def during(stack, extra):
        def charging():
            return any(e.get("transactionInfo", {}).get("chargingState") == "Charging"
                       for e in stack.csms.messages("TransactionEvent"))
        assert await wait_until(charging, 60), stack.transaction_summary()
        tid = stack.csms.messages("TransactionEvent")[0]["transactionInfo"]["transactionId"]
        extra["set_at"] = time.time()
        extra["answer"] = await stack.csms.call(STATION_ID, "SetChargingProfile",
                                                {"evseId": 1,
                                                 "chargingProfile": tx_profile(tid, watts)})
        extra["composite"] = await stack.csms.call(STATION_ID, "GetCompositeSchedule", {
            "duration": 300, "evseId": 1, "chargingRateUnit": "W"})
    return during


def test_profile_set_mid_session_reaches_the_iso2_dc_car(veth_link, tmp_path):
    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="dc",
            battery=Battery(soc=30, target_soc=95, max_iterations=250),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))

    run, ev = run_charger_session(veth_link, tmp_path, car,
                                  during=set_profile_while_charging(LIMIT_W), timeout=120)
    box = run.extra
    record = ev.sessions[-1]
    assert ev.ok, record.failure
    assert box["answer"] == {"status": "Accepted"}
    assert box["composite"]["schedule"]["chargingSchedulePeriod"][0]["limit"] == LIMIT_W
    before = [(n, v) for t, n, v in record.evse_limits if t < box["set_at"]]
    after = [(t, n, v) for t, n, v in record.evse_limits if t >= box["set_at"]]
    # before: the rating; after: the CSMS's limit in the charge loop, then a renegotiated PMax
    assert ("EVSEMaximumPowerLimit", LIMIT_W) not in before
    assert any(n == "PMax" and v > LIMIT_W for n, v in before)
    assert any(n == "EVSEMaximumPowerLimit" and v == LIMIT_W for _, n, v in after), after
    assert any(n == "PMax" and v == LIMIT_W for _, n, v in after), after
    assert record.renegotiations >= 1
    seen = min(t for t, n, v in after if n == "EVSEMaximumPowerLimit" and v == LIMIT_W)
    latency = seen - box["set_at"]
    print(f"SetChargingProfile -> car sees {LIMIT_W:.0f} W: {latency * 1000:.0f} ms")
    assert latency < 2.0
    # the car's needs went to the CSMS before the schedule was offered; its choice after
    needs = run.messages["NotifyEVChargingNeeds"][0]
    assert needs["evseId"] == 1 and needs["chargingNeeds"]["requestedEnergyTransfer"] == "DC"
    assert needs["chargingNeeds"]["dcChargingParameters"]["evMaxVoltage"] > 0
    schedules = run.messages["NotifyEVChargingSchedule"]
    assert schedules and schedules[-1]["chargingSchedule"]["chargingRateUnit"] == "W"
    assert schedules[-1]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] <= LIMIT_W


def test_profile_set_mid_session_lowers_the_iso2_ac_current(veth_link, tmp_path):
    amps = 10.0

    async def during(stack, extra):
        await set_profile_while_charging(amps * 230 * 3)(stack, extra)

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="ac",
            battery=Battery(soc=30, target_soc=95, max_iterations=250),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))

    run, ev = run_charger_session(veth_link, tmp_path, car, output="ac", during=during,
                                  timeout=120)
    record = ev.sessions[-1]
    assert ev.ok, record.failure
    after = [(n, round(v, 1)) for t, n, v in record.evse_limits if t >= run.extra["set_at"]]
    assert ("EVSEMaxCurrent", amps) in after, record.evse_limits
    assert record.renegotiations >= 1


def test_profile_set_mid_session_reaches_the_iso20_dc_car(veth_link, tmp_path, test_pki):
    """-20 scheduled mode over TLS 1.3: the loop limit drops at once, the car is asked to
    renegotiate (ScheduleRenegotiation) and gets a power schedule with the new limit."""
    test_pki.write_secc_files(tmp_path)
    vehicle = test_pki.write_vehicle_files(tmp_path / "vehicle")

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso20", mode="dc", tls=True, v2g_root=tmp_path / "v2g_root.pem",
            vehicle_tls=(vehicle["chain"], vehicle["key"]),
            battery=Battery(soc=30, target_soc=95, max_iterations=250),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))

    run, ev = run_charger_session(veth_link, tmp_path, car,
                                  during=set_profile_while_charging(LIMIT_W), timeout=120)
    record = ev.sessions[-1]
    assert ev.ok, record.failure
    assert ev.protocol == "iso20"
    after = [(n, v) for t, n, v in record.evse_limits if t >= run.extra["set_at"]]
    assert ("EVSEMaximumChargePower", LIMIT_W) in after, record.evse_limits
    assert ("PowerSchedule", LIMIT_W) in after, record.evse_limits
    assert record.renegotiations >= 1
    assert run.messages["NotifyEVChargingNeeds"][0]["chargingNeeds"][
        "requestedEnergyTransfer"] == "DC"


def test_csms_answer_to_the_charging_needs_shapes_the_first_schedule(veth_link, tmp_path):
    """NotifyEVChargingNeeds reaches the CSMS while ChargeParameterDiscovery answers Ongoing;
    the profile the CSMS sets in reply is in the first SAScheduleList: no renegotiation."""
    async def profile_for_the_needs(stack, extra):
        assert await wait_until(lambda: stack.csms.messages("NotifyEVChargingNeeds"), 60)
        tid = stack.csms.messages("TransactionEvent")[0]["transactionInfo"]["transactionId"]
        extra["answer"] = await stack.csms.call(STATION_ID, "SetChargingProfile", {
            "evseId": 1, "chargingProfile": tx_profile(tid, LIMIT_W)})

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="dc", battery=Battery(soc=30, target_soc=95, max_iterations=20),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))

    run, ev = run_charger_session(veth_link, tmp_path, car, during=profile_for_the_needs,
                                  timeout=120)
    record = ev.sessions[-1]
    assert ev.ok, record.failure
    assert run.extra["answer"] == {"status": "Accepted"}
    pmax = [v for _, n, v in record.evse_limits if n == "PMax"]
    assert pmax == [LIMIT_W] and record.renegotiations == 0
    assert ("EVSEMaximumPowerLimit", LIMIT_W) in [(n, v) for _, n, v in record.evse_limits]
    # the car asked again while the CSMS decided
    steps = record.steps_sent
    assert steps.count("ChargeParameterDiscovery") >= 2
