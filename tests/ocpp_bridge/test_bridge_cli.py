"""``secc bus authorize`` through a real bridge and CSMS."""

from __future__ import annotations

import asyncio
import sys

from bridge_harness import BUS_PASSWORD, BUS_USER, bridge_config, online_bridge, running_bridge


async def run_cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "secc", "bus", "authorize", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, (out + err).decode()


async def test_secc_bus_authorize_cli_goes_through_bridge_and_csms(tmp_path, bus_broker, csms):
    async with running_bridge(bridge_config(tmp_path, bus_broker, csms)) as bridge:
        await online_bridge(bridge, csms)
        common = ["--port", str(bus_broker.port), "--username", BUS_USER, "--password",
                  BUS_PASSWORD, "--timeout", "5"]
        ok_code, ok_out = await run_cli(*common, "--token", "04CAFE")
        csms.behave("Authorize", "reject")
        bad_code, bad_out = await run_cli(*common, "--token", "04BAD")
    assert ok_code == 0 and ok_out.startswith("Accepted")
    assert bad_code == 1 and bad_out.startswith("Invalid")
    assert csms.messages("Authorize")[0]["idToken"]["idToken"] == "04CAFE"


def test_bus_demo_runs_a_session_end_to_end(capsys):
    from sim.bridge_demo import run_bus_demo

    assert run_bus_demo() == 0
    out = capsys.readouterr().out
    assert "Authorize over the bus: Accepted" in out
    assert "Started#0, Updated#1, Updated#2, Updated#3, Ended#4" in out
