"""Turn the case table into pytest tests: one test per case id and protocol, against one
daemon per module (started once: the cases leave it idle between them, CP A -> B)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from tests.conformance.cases import CASES, Case
from tests.conformance.conftest import record  # noqa: F401 - plugin shares RESULTS
from tests.conformance.daemon import start_daemon
from tests.conformance.runner import Target, drive_to
from tests.conformance.tester import PROTOCOLS, Pilot, foreign_session_id

CASE_TIMEOUT = 120.0


def resolve(name: str, p: Any) -> str:
    return {"{payment}": p.payment_selection, "{auth}": p.authorization}.get(name, name)


async def run_case(case: Case, protocol: str, target: Target) -> None:
    p = PROTOCOLS[protocol]
    if case.custom is not None:
        await case.custom(target, p, case)
        return
    ev = await drive_to(target, p, case.after)
    try:
        if case.cp and not case.cp.endswith("+"):
            await target.pilot.set(case.cp)
        name = resolve(case.send, p)
        sid = {"own": None, "foreign": foreign_session_id(ev.session_id), "zero8": bytes(8),
               "zero1": b"\x00"}[case.sid]
        timeout = 5.0 if name == "PowerDeliveryReq" else 2.0
        element, res = await ev.request(name, session_id=sid, timeout=timeout, **case.over)
        assert element == name[:-3] + "Res", f"answered {element} to {name}"
        expected = case.expect[protocol] if isinstance(case.expect, dict) else case.expect
        code = str(res.response_code)
        if expected.endswith("*"):
            assert code.startswith(expected[:-1]), f"{name}: {code}, expected {expected}"
        else:
            assert code == expected, f"{name}: {code}, expected {expected}"
        if case.cp and case.cp.endswith("+"):
            await target.pilot.set(case.cp[:-1])
        if case.check is not None:
            result = case.check(ev, res, target)
            if inspect.isawaitable(result):
                await result
        close = case.close if case.close is not None else code.startswith("FAILED")
        if close:
            await ev.conn.expect_close(5.0)
    finally:
        ev.conn.close()


def start_sut(daemon: str, link: Any, protocol: str) -> Any:
    """The daemon a case names: ``eim`` (TCP, EIM), ``pnc`` / ``cps`` (TLS + Plug & Charge)
    or a board variant of daemon.py (``tariff``, ...)."""
    if daemon in ("pnc", "cps"):
        from tests.conformance.pnc import start_pnc_daemon
        return start_pnc_daemon(link, protocol, with_csms=daemon == "cps")
    if daemon == "contract_only":
        from tests.conformance.joint import start_contract_only_daemon
        return start_contract_only_daemon(link, protocol)
    return start_daemon(link, protocol, variant="" if daemon == "eim" else daemon)


def cases_for(protocol: str, long: bool | None = None, daemon: str = "eim") -> list[Any]:
    params = []
    for case in CASES:
        if protocol not in case.protocols or (long is not None and case.long != long):
            continue
        if case.daemon != daemon and not (daemon == "eim" and protocol in case.na_for):
            continue   # (a row n/a for one protocol is reported by that protocol's EIM module)
        if case.side_by_side and not case.na:   # reported by test_resume.py
            continue
        marks = [pytest.mark.conformance_long] if case.long else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def module_tests(protocol: str, daemon: str = "eim"):
    """(sut fixture, test function) for a test module serving ``protocol`` with the cases
    of ``daemon`` (Case.daemon)."""

    @pytest.fixture(scope="module")
    def sut():
        from sim.testing.netns import VethLink, netns_supported

        ok, why = netns_supported()
        if not ok:
            pytest.skip(why)
        link = VethLink().create()
        state = {"daemon": None}
        try:
            state["daemon"] = start_sut(daemon, link, protocol)
            yield link, state
        finally:
            if state["daemon"] is not None:
                state["daemon"].stop()
            link.destroy()

    @pytest.mark.netns
    @pytest.mark.parametrize("case", cases_for(protocol, long=False, daemon=daemon))
    def test_case(case: Case, sut, request) -> None:
        request.node.conformance_case = case
        request.node.conformance_protocol = protocol
        if case.na or protocol in case.na_for:
            pytest.skip(case.na or case.na_for[protocol])
        link, state = sut
        daemon = state["daemon"]
        if not daemon.alive():       # a previous case killed it: that case failed; go on
            state["daemon"] = daemon = start_sut(case.daemon, link, protocol)
        target = Target(link.ifnames["ev"], Pilot(daemon.socket_path))
        try:
            link.run_coroutine("ev", lambda: run_case(case, protocol, target)).result(
                CASE_TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- secc log ---\n{daemon.log_tail(25)}") from None
        assert daemon.alive(), f"the daemon died:\n{daemon.log_tail()}"

    return sut, test_case
