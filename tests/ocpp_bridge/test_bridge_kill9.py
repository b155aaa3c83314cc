"""kill -9 the bridge process mid-session, twice, restart it, and compare what the CSMS got
with what the SECC sent: nothing lost, no SECC message queued twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from bridge_harness import bridge_config, secc_config, wait_until

from ocpp_bridge.config import to_toml
from secc.bus.client import SeccBusClient, reading, sample, utc_now

REPO = Path(__file__).resolve().parents[2]


def start_bridge(config_file: Path, log_file: Path) -> subprocess.Popen:
    log = log_file.open("ab")
    return subprocess.Popen([sys.executable, "-m", "ocpp_bridge", "--config", str(config_file),
                             "--log-level", "INFO"], cwd=REPO, stdout=log, stderr=log)


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


async def test_kill_9_bridge_mid_session_loses_and_duplicates_nothing(tmp_path, bus_broker,
                                                                       csms):
    config_file = tmp_path / "bridge.toml"
    config_file.write_text(to_toml(bridge_config(tmp_path, bus_broker, csms)))
    log_file = tmp_path / "bridge.log"
    total = 40
    proc = start_bridge(config_file, log_file)
    kills = 0
    try:
        async with SeccBusClient(secc_config(tmp_path, bus_broker)) as secc:
            await csms.wait_for("BootNotification", timeout=15)
            await wait_until(lambda: secc.csms_available, 10, "SECC sees the CSMS online")
            generated_offline = []
            for i in range(total):
                generated_offline.append(not secc.csms_available)
                kind = "Started" if i == 0 else "Ended" if i == total - 1 else "Updated"
                await secc.send_transaction_event(
                    kind, "kill1", "MeterValuePeriodic" if kind == "Updated" else "Authorized",
                    readings=[reading(utc_now(), [sample("Energy.Active.Import.Register",
                                                         float(i), unit="Wh")])])
                await asyncio.sleep(0.02)  # the charger's event pace, so kills land mid-stream
                if i in (12, 27):          # mid-stream: some events acked, some in flight
                    kill9(proc)
                    kills += 1
                if i in (18, 30):
                    proc = start_bridge(config_file, log_file)
            await secc.flush(30)
            await wait_until(lambda: len({(e["transactionInfo"]["transactionId"], e["seqNo"])
                                          for e in csms.messages("TransactionEvent")}) >= total,
                             30, "all events at the CSMS")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
    raw = csms.messages("TransactionEvent")
    unique = {}
    for event in raw:
        unique.setdefault((event["transactionInfo"]["transactionId"], event["seqNo"]), event)
    events = sorted(unique.values(), key=lambda e: e["seqNo"])
    values = [e["meterValue"][0]["sampledValue"][0]["value"] for e in events]
    assert kills == 2
    assert values == [float(i) for i in range(total)], "lost or reordered"
    assert len(values) == len(set(values)), "a SECC message got two seqNos"
    assert [e["seqNo"] for e in events] == list(range(total))
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    # OCPP is at-least-once: a message in flight at the kill may reach the CSMS twice with the
    # same (transactionId, seqNo), which the CSMS recognises; never more than once per kill.
    assert len(raw) - len(unique) <= kills
    # events made while the bridge was dead are flagged offline (the SECC saw its last will)
    offline = [bool(e.get("offline")) for e in events]
    assert sum(generated_offline) >= 4
    assert all(offline[i] for i, gen in enumerate(generated_offline) if gen)
