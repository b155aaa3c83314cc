"""A slow disk never costs a car its response (issue 13).

The lost CurrentDemandReq of ``make demo`` ("no response within 0.25 s"): PowerDeliveryRes
went out, then the session committed the TransactionEvent of ChargingStarted (jsonschema
validation + SQLite INSERT with synchronous=FULL, i.e. an fsync) on the session's own task
before it read the car's next request. On eMMC/SD an fsync takes 10-200 ms, more when another
process writes, and the car's 250 ms CurrentDemand timer ran out. Now events go to the bus
from their own task and the outbox commits on its own thread.

Here every outbox commit takes 0.4 s (longer than the car's CurrentDemand and PowerDelivery
timers allow): the session must still complete, and every event must still reach the CSMS,
in order, committed before it was acknowledged.
"""

from __future__ import annotations

import threading
import time

from secc.bus.outbox import Outbox
from sim.charger import run_charger_session
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig
from sim.evcc.runner import EvSessionConfig, sim_board_signals

SLOW_COMMIT_S = 0.4


def test_a_slow_outbox_commit_delays_no_response(veth_link, tmp_path, test_pki, monkeypatch):
    test_pki.write_secc_files(tmp_path)
    original = Outbox.add
    committing_threads: set[str] = set()

    def slow_add(self, channel, evse_id, payload):
        committing_threads.add(threading.current_thread().name)
        time.sleep(SLOW_COMMIT_S)  # the fsync of a busy SD card
        return original(self, channel, evse_id, payload)

    monkeypatch.setattr(Outbox, "add", slow_add)

    def car(board, loop):
        return EvSessionConfig(
            on_signals=sim_board_signals(board, loop), interface=veth_link.ifnames["ev"],
            protocol="iso2", mode="dc", battery=Battery(soc=30, target_soc=80, max_iterations=8),
            evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05))

    run, ev = run_charger_session(veth_link, tmp_path, car, timeout=120)
    assert ev.ok, ev.failure  # no "no response within 0.25 s"
    worst = max(seconds for _step, seconds in ev.timings)
    assert worst < SLOW_COMMIT_S, f"a response waited for the disk ({worst * 1000:.0f} ms)"
    assert committing_threads and all(t.startswith("secc-outbox") for t in committing_threads)
    events = run.messages["TransactionEvent"]
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    assert run.summaries[0].final_state == "Terminated"
