"""Catalogue §1.14 rows that need the SECC to keep a step at Ongoing (R4 Authorization_014,
ChargeParameterDiscovery_014): the tester holds the step through the simulated board's
control socket (``{"cmd": "authorization", "mode": "hold"}``, ``{"cmd": "schedule",
"held": true}``; hal/sim_control.py), polls every second as R4 does, and checks the SECC
answers OK + Ongoing (never Finished) and then ends the session on its own inside R4's window:
not before 54.75 s after its first Ongoing, not after 60 s. Power stays off throughout.

Long cases (``long=True``): each runs on its own daemon in test_timers.py; the hook is put
back (``pass`` / not held) when the case ends either way.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.conformance import tester
from tests.conformance.runner import Target, drive_to
from tests.conformance.tester import Closed, Ev, Silence

#: R4: a 54.75 s timer from the first Ongoing, then 5 s allowed for the SECC to close
WINDOW = (54.75, 60.0)
POLL = 1.0


async def ongoing_until_closed(ev: Ev, name: str, target: Target) -> float:
    """Send ``name`` every second while the SECC answers Ongoing; return the seconds from the
    first Ongoing answer until the SECC closed the connection."""
    first: float | None = None
    while True:
        try:
            _, res = await ev.request(name)
        except (Closed, Silence, ConnectionError, asyncio.IncompleteReadError):
            break                                   # closed without a last answer
        code = str(res.response_code)
        if code.startswith("OK"):
            assert res.evse_processing != "Finished", \
                "Finished although the step is held (inconclusive: the hook did not hold)"
            assert res.evse_processing.startswith("Ongoing"), res.evse_processing
            if first is None:
                first = time.monotonic()
            status = await target.pilot.status()
            assert not status["contactors_closed"], f"contactors closed while held: {status}"
            assert time.monotonic() - first < WINDOW[1] + tester.SLACK, \
                "still answering Ongoing after the window"
            await asyncio.sleep(POLL)
            continue
        assert code.startswith("FAILED"), code    # the SECC ends the step itself
        await ev.conn.expect_close(5.0)
        break
    assert first is not None, "never answered Ongoing"
    return time.monotonic() - first


def held(command: dict[str, Any], release: dict[str, Any], step: str, request: str):
    async def run(target: Target, p: Any, case: Any) -> None:
        await target.pilot.ask(command)
        try:
            ev = await drive_to(target, p, step)
            try:
                elapsed = await ongoing_until_closed(ev, p.authorization if request == "{auth}"
                                                     else request, target)
            finally:
                ev.conn.close()
            low, high = WINDOW
            assert low <= elapsed <= high + tester.SLACK, \
                f"closed {elapsed:.2f} s after the first Ongoing (window {low}..{high} s)"
            status = await target.pilot.status()
            assert not status["contactors_closed"] and status["output_current_a"] < 1.0, status
        finally:
            await target.pilot.ask(release)
    return run


#: EIM authorization never confirmed (R4 Authorization_014)
authorization_held = held({"cmd": "authorization", "mode": "hold"},
                          {"cmd": "authorization", "mode": "pass"},
                          "PaymentServiceSelection", "{auth}")
#: no schedule for the car (R4 ChargeParameterDiscovery_014)
schedule_held = held({"cmd": "schedule", "held": True}, {"cmd": "schedule", "held": False},
                     "Authorization", "ChargeParameterDiscoveryReq")
