"""Catalogue §1.1 (SLAC / data link, ISO 15118-3 tested ISO 15118-5 style) against `secc run`
with SLAC on the veth link: the SLAC tester plays the EV and the SECC's local modem
(slac_tester.py), the board's control socket plays the pilot.

Short cases share one daemon (each starts with CP A -> B: a new SLAC session, a new NMK on the
modem). Long-timer cases (TT_EVSE_SLAC_init 50 s, TT_EVSE_match_session 10 s) each get their
own link and daemon and run side by side (``conformance_long``: ``make conformance`` only).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest

from tests.conformance import slac_tester
from tests.conformance.daemon import start_daemon
from tests.conformance.slac_cases import CASES, PROTOCOL, SlacCase, five_percent, unplug
from tests.conformance.slac_tester import SlacTester
from tests.conformance.tester import Pilot

CASE_TIMEOUT = 60.0
LONG_TIMEOUT = 150.0


async def run_slac_case(case: SlacCase, iface: str, pilot: Pilot) -> None:
    async with SlacTester(iface, set_key_delay=case.set_key_delay) as t:
        await unplug(pilot)
        t.clear()
        t.set_keys.clear()
        t.plugged_at = time.monotonic()
        await pilot.set("B")
        await t.wait_set_key()
        if case.cp != "B":   # the car plugs in (B), then closes S2 before matching starts
            await pilot.wait_for(lambda s: s["cp"] == "B", within=2.0)
            await pilot.set(case.cp)
        if case.set_key_delay == 0.0:
            await five_percent(pilot)
        assert case.flow is not None
        try:
            await case.flow(t, pilot, case)
        finally:
            await unplug(pilot)


def _params(long: bool) -> list:
    marks = [pytest.mark.conformance_long] if long else []
    return [pytest.param(c, id=c.id, marks=marks) for c in CASES
            if c.long == long and not (long and c.na)]


@pytest.fixture(scope="module")
def slac_sut():
    from sim.testing.netns import VethLink, netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    link = VethLink().create()
    state = {"daemon": None}
    try:
        state["daemon"] = start_daemon(link, "din", slac=True)
        yield link, state
    finally:
        if state["daemon"] is not None:
            state["daemon"].stop()
        link.destroy()


def _run(link, daemon, case: SlacCase, timeout: float) -> None:
    pilot = Pilot(daemon.socket_path)
    try:
        link.run_coroutine("ev", lambda: run_slac_case(case, link.ifnames["ev"], pilot)).result(
            timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- secc log ---\n{daemon.log_tail(25)}") from None
    assert daemon.alive(), f"the daemon died:\n{daemon.log_tail()}"


@pytest.mark.netns
@pytest.mark.parametrize("case", _params(long=False))
def test_slac_case(case: SlacCase, request) -> None:
    request.node.conformance_case = case
    request.node.conformance_protocol = PROTOCOL
    if case.na:
        pytest.skip(case.na)
    link, state = request.getfixturevalue("slac_sut")
    if case.daemon:   # a configured SECC (PIXIT): its own daemon on the shared link
        _run_on_variant(link, state, case)
        return
    if not state["daemon"].alive():
        state["daemon"] = start_daemon(link, "din", slac=True)
    _run(link, state["daemon"], case, CASE_TIMEOUT)


def _run_on_variant(link, state, case: SlacCase) -> None:
    state["daemon"].stop()
    state["daemon"] = None
    daemon = start_daemon(link, "din", slac=True, variant=case.daemon)
    try:
        _run(link, daemon, case, CASE_TIMEOUT)
    finally:
        daemon.stop()
        state["daemon"] = start_daemon(link, "din", slac=True)


# --------------------------------------------------------------------------- long timers
LONG = [c for c in CASES if c.long and not c.na]
_STARTING = threading.Semaphore(2)


def _run_long(case: SlacCase) -> None:
    from sim.testing.netns import VethLink

    link = VethLink().create()
    daemon = None
    try:
        with _STARTING:
            daemon = start_daemon(link, "din", slac=True)
        _run(link, daemon, case, LONG_TIMEOUT)
    finally:
        if daemon is not None:
            daemon.stop()
        link.destroy()


@pytest.fixture(scope="module")
def slac_long_running():
    from sim.testing.netns import netns_supported

    ok, why = netns_supported()
    if not ok:
        pytest.skip(why)
    slac_tester.SLACK = 0.1
    pool = concurrent.futures.ThreadPoolExecutor(len(LONG))
    futures = {case.id: pool.submit(_run_long, case) for case in LONG}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    slac_tester.SLACK = 0.0


@pytest.mark.netns
@pytest.mark.parametrize("case", _params(long=True))
def test_slac_long_case(case: SlacCase, request) -> None:
    request.node.conformance_case = case
    request.node.conformance_protocol = PROTOCOL
    running = request.getfixturevalue("slac_long_running")
    running[case.id].result(LONG_TIMEOUT + 60)
