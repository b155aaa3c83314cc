"""A car pauses and resumes on the whole charger (SECC daemon, simulated board, bus, bridge,
test CSMS), playing its pilot on the in-process board (sim.evcc.wake.BoardLine, across the
namespaces' threads): one OCPP transaction through the pause, the charger asleep until the
car's BCB toggle."""

from __future__ import annotations

import pytest

from sim.charger import run_charger_session
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig, Misbehaviour
from sim.evcc.runner import EvSessionConfig, sim_board_signals
from sim.evcc.wake import BoardLine, bcb_wake_up

pytestmark = pytest.mark.netns


def test_paused_and_resumed_session_is_one_transaction_woken_by_the_cars_toggle(
        veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    seen: dict = {}

    def car(board, loop):
        line = BoardLine(board, loop)
        toggle = bcb_wake_up(line, sleep_s=0.3)

        async def wake_up() -> None:
            seen["duty_asleep"] = await line.duty_percent()
            await toggle()

        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="ac", battery=Battery(soc=30, target_soc=90, max_iterations=2),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05,
                            seconds_per_iteration=30.0),
            misbehaviour=Misbehaviour(pause_instead_of_terminate=True), resume_after_pause=True,
            wake_up=wake_up)

    run, ev = run_charger_session(veth_link, tmp_path, car, output="ac")
    assert ev.ok, ev.failure
    first, second = ev.sessions
    assert first.paused and second.resumed and second.session_id == first.session_id
    assert second.loop_iterations == 2
    assert seen["duty_asleep"] is None      # the charger slept with its oscillator off
    started = [t for t in run.transactions if t.startswith("Started")]
    ended = [t for t in run.transactions if t.startswith("Ended")]
    assert len(started) == 1 and len(ended) == 1, run.transactions
    states = [e.get("transactionInfo", {}).get("chargingState")
              for e in run.messages.get("TransactionEvent", [])]
    assert "SuspendedEV" in states
    assert states.index("SuspendedEV") < len(states) - 1 - states[::-1].index("Charging"), \
        states   # charging again after the pause
    assert len(run.summaries) == 2     # two V2G connections, one session
