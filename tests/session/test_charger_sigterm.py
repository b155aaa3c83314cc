"""SIGTERM in the middle of charging, with the whole charger (SECC daemon, bus, OCPP bridge
process, test CSMS) and a simulated car: the car is told to stop, the current falls to 0
before the contactors open, the session ends, and TransactionEvent(Ended) with stopped reason
Local (a stop commanded at the charger) reaches the CSMS before the daemon exits."""

from __future__ import annotations

import re

from sim.charger import run_charger_session, wait_until
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig, Misbehaviour
from sim.evcc.runner import EvSessionConfig, sim_board_signals


def sigterm_while_charging(grace: float):
    async def during(stack, extra):
        from secc.service import status_source

        status = status_source(extra["daemon"])   # what systemctl status shows

        def charging():
            return any(e.get("transactionInfo", {}).get("chargingState") == "Charging"
                       for e in stack.csms.messages("TransactionEvent"))
        assert await wait_until(charging, 30), stack.transaction_summary()
        daemon = extra["daemon"]
        board = daemon.board
        assert board.contactors_closed
        # energy really flows (the module ramps up after the contactors closed)
        assert await wait_until(lambda: board.plant.output_current_a > 5, 20)
        extra["current_before"] = (await board.read_dc_output()).current_a
        extra["status_charging"] = await status()
        opened_at: list[float] = []
        open_contactors = board.open_contactors

        async def recording_open():   # what flows at the moment the contactors are opened
            opened_at.append((await board.read_dc_output()).current_a)
            await open_contactors()

        board.open_contactors = recording_open
        # what `secc run` does on SIGTERM: SeccDaemon.run() -> shutdown() -> stop()
        await daemon.shutdown(grace=grace)
        extra["status_after"] = await status()
        extra["opened_at_current"] = opened_at
        extra["contactors_closed_after"] = board.contactors_closed
        extra["outbox_after"] = daemon.bus.outbox_pending
    return during


def car_config(link, misbehaviour=None):
    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=link.ifnames["ev"],
            protocol="iso2", mode="dc", battery=Battery(soc=30, target_soc=95),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05),
            misbehaviour=misbehaviour or Misbehaviour())
    return car


def test_sigterm_mid_charge_stops_safely_and_ends_the_transaction(veth_link, tmp_path,
                                                                   test_pki):
    test_pki.write_secc_files(tmp_path)
    run, ev = run_charger_session(veth_link, tmp_path, car_config(veth_link),
                                  during=sigterm_while_charging(6.0), timeout=120)
    box = run.extra
    assert box["current_before"] > 5                      # it was really charging
    assert re.fullmatch(r"charging EVSE 1 ISO-2 DC \d+ kW", box["status_charging"]), \
        box["status_charging"]
    assert box["status_after"].startswith("stopping: ending the session safely, ")
    assert "CSMS connected" in box["status_after"]
    assert box["opened_at_current"] and max(abs(c) for c in box["opened_at_current"]) <= 1.0
    assert box["contactors_closed_after"] is False
    assert box["outbox_after"] == 0                        # everything reached the bridge
    assert ev.sessions[-1].stop_reason is not None         # the car was told to stop
    events = run.messages["TransactionEvent"]
    ended = events[-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert ended["triggerReason"] == "StopAuthorized"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert run.summaries[-1].end_reason


def test_sigterm_with_a_car_that_keeps_charging_cuts_safely_after_the_grace_time(
        veth_link, tmp_path, test_pki):
    """The unsafe path: a car ignoring StopCharging. The session is cut after the grace time;
    the board's safe state still brings the current to 0 before it opens the contactors, and
    the transaction still ends as a local stop at the CSMS."""
    test_pki.write_secc_files(tmp_path)
    run, ev = run_charger_session(
        veth_link, tmp_path, car_config(veth_link, Misbehaviour(ignore_evse_stop=True)),
        during=sigterm_while_charging(1.0), timeout=120)
    box = run.extra
    assert box["current_before"] > 5
    assert box["opened_at_current"] and max(abs(c) for c in box["opened_at_current"]) <= 1.0
    assert box["contactors_closed_after"] is False
    assert not ev.sessions[-1].stop_reason               # the car never stopped by itself:
    assert "CurrentDemand" in str(ev.sessions[-1].failure)   # it was cut while charging
    ended = run.messages["TransactionEvent"][-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
