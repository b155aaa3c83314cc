"""OCPP Core commands against the whole charger with a real car: test CSMS -> bridge process ->
bus -> SECC daemon -> simulated board, the car in its own network namespace."""

from __future__ import annotations

from hal.pilot import PilotSignalKind
from sim.charger import STATION_ID, run_charger_session, wait_until
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig
from sim.evcc.runner import EvSessionConfig, sim_board_signals


def dc_car(link):
    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=link.ifnames["ev"],
            protocol="iso2", mode="dc", battery=Battery(soc=30, target_soc=95),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))
    return car


def charging(csms) -> bool:
    return any(e.get("transactionInfo", {}).get("chargingState") == "Charging"
               for e in csms.messages("TransactionEvent"))


def order_of(csms) -> list[tuple[str, str]]:
    """(action, event type / connector status / boot reason) as the CSMS received them."""
    return [(r.action, r.payload.get("eventType") or r.payload.get("connectorStatus")
             or r.payload.get("reason", "")) for r in csms.received]


def statuses(csms) -> list[str]:
    return [s["connectorStatus"] for s in csms.messages("StatusNotification")]


def test_immediate_reset_ends_the_transaction_and_the_charger_is_ready_again(
        veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)

    async def reset_while_charging(stack, extra):
        assert await wait_until(lambda: charging(stack.csms), 30), stack.transaction_summary()
        extra["answer"] = await stack.csms.call(STATION_ID, "Reset", {"type": "Immediate"})
        assert await wait_until(lambda: [b["reason"] for b in stack.csms.messages(
            "BootNotification")][-1:] == ["RemoteReset"], 30), stack.received()
        boot_at = next(i for i, r in enumerate(stack.csms.received)
                       if r.action == "BootNotification" and r.payload["reason"] == "RemoteReset")
        assert await wait_until(lambda: any(
            r.action == "StatusNotification" for r in stack.csms.received[boot_at:]), 10), \
            order_of(stack.csms)
        extra["after_reset"] = [r.payload["connectorStatus"] for r in
                                stack.csms.received[boot_at:]
                                if r.action == "StatusNotification"]
        extra["resets"] = extra["daemon"].commands.resets
        extra["order"] = order_of(stack.csms)

    run, ev = run_charger_session(veth_link, tmp_path, dc_car(veth_link),
                                  during=reset_while_charging, timeout=120)
    box = run.extra
    assert box["answer"]["status"] == "Accepted"
    ended = run.messages["TransactionEvent"][-1]
    assert ended["eventType"] == "Ended" and ended["triggerReason"] == "ResetCommand"
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert ev.sessions[-1].stop_reason is not None            # the car was told to stop
    assert box["resets"] == 1
    # READY again: the car is still plugged in, the EVSE reports itself Occupied (not Faulted)
    assert box["after_reset"] == ["Occupied"]
    # the transaction ended before the station rebooted
    assert box["order"].index(("BootNotification", "RemoteReset")) > \
        box["order"].index(("TransactionEvent", "Ended"))


def test_inoperative_during_a_session_is_scheduled_then_no_pwm_until_operative(
        veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)

    async def inoperative_while_charging(stack, extra):
        csms, daemon = stack.csms, extra["daemon"]
        assert await wait_until(lambda: charging(csms), 30), stack.transaction_summary()
        extra["scheduled"] = await csms.call(STATION_ID, "ChangeAvailability",
                                             {"operationalStatus": "Inoperative"})
        extra["pilot_while_charging"] = daemon.board.plant.pilot_signal.kind
        tid = csms.messages("TransactionEvent")[0]["transactionInfo"]["transactionId"]
        await csms.call(STATION_ID, "RequestStopTransaction", {"transactionId": tid})
        assert await wait_until(lambda: statuses(csms)[-1:] == ["Unavailable"], 30), \
            statuses(csms)
        extra["pilot_inoperative"] = daemon.board.plant.pilot_signal.kind
        board = daemon.board   # the car is unplugged and plugged in again: still no PWM
        board.ev_set_pilot("A")
        assert await wait_until(lambda: board.pilot_state.value == "A", 5)
        board.ev_set_pilot("B")
        assert await wait_until(lambda: board.pilot_state.value == "B", 5)
        try:
            await wait_until(lambda: board.plant.pilot_signal.kind is PilotSignalKind.PWM, 1.0)
            extra["pwm_after_replug"] = True
        except TimeoutError:
            extra["pwm_after_replug"] = False
        extra["order"] = order_of(csms)
        extra["operative"] = await csms.call(STATION_ID, "ChangeAvailability",
                                             {"operationalStatus": "Operative"})
        assert await wait_until(lambda: statuses(csms)[-1:] == ["Occupied"], 10)
        extra["pilot_operative"] = daemon.board.plant.pilot_signal

    run, ev = run_charger_session(veth_link, tmp_path, dc_car(veth_link),
                                  during=inoperative_while_charging, timeout=120)
    box = run.extra
    assert box["scheduled"]["status"] == "Scheduled"
    assert box["pilot_while_charging"] is PilotSignalKind.PWM   # the session was not cut
    assert run.transactions[-1].startswith("Ended")
    # Unavailable only after the transaction's Ended reached the CSMS
    last_unavailable = max(i for i, item in enumerate(box["order"])
                           if item == ("StatusNotification", "Unavailable"))
    assert last_unavailable > box["order"].index(("TransactionEvent", "Ended"))
    assert box["pilot_inoperative"] is PilotSignalKind.X1       # no PWM: no new session
    assert box["pwm_after_replug"] is False
    assert box["operative"]["status"] == "Accepted"
    assert box["pilot_operative"].kind is PilotSignalKind.PWM
    assert box["pilot_operative"].duty_percent == 5.0
