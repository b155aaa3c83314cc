"""A peer without a pilot (an EV stack, a test tool) against `secc run` with
``[sim].ev_follows_session``: the simulated car moves the pilot by itself and the whole session
runs; the tester never touches the control pilot (it only reads the board's state)."""

from __future__ import annotations

import pytest

from tests.conformance.daemon import start_daemon
from tests.conformance.runner import Target, drive_to
from tests.conformance.tester import PROTOCOLS, Pilot

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("protocol", ["din", "iso2-ac"])
def test_a_session_without_a_pilot_runs_to_session_stop(protocol):
    from sim.testing.netns import VethLink, netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    link = VethLink().create()
    daemon = None
    try:
        daemon = start_daemon(link, protocol, follows=True)
        target = Target(link.ifnames["ev"], Pilot(daemon.socket_path), moves_pilot=False)

        async def session():
            ev = await drive_to(target, PROTOCOLS[protocol], "ChargeLoop")
            charging = await target.pilot.status()
            for step in ("PowerDeliveryStop", "SessionStop") if protocol != "din" else (
                    "PowerDeliveryStop", "WeldingDetection", "SessionStop"):
                from tests.conformance.runner import run_step
                await run_step(ev, target, step)
            await ev.conn.expect_close(5.0)
            ev.conn.close()
            return charging, await target.pilot.wait_for(lambda s: s["cp"] == "B")

        charging, after = link.run_coroutine("ev", session).result(90)
        assert charging["cp"] == "C" and charging["contactors_closed"], charging
        assert after["cp"] == "B", after
    finally:
        if daemon is not None:
            daemon.stop()
        link.destroy()
