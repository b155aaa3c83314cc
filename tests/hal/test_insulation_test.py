"""The cable check's insulation test, end to end from the session core through the board
controller to the simulated board (virtual time): the result must come from a test started by
this cable check, at the test voltage, held for the board's test time (IEC 61851-23)."""

from __future__ import annotations

import pytest

from exi_schemas.generated import din as M
from hal.board import IsolationState, SafetyLimits
from hal.sim import SimBoard
from secc.authorization import AuthorizationDecision, AuthorizationStatus
from secc.din import DinAdapter, DinSession
from secc.session.controller import BoardController
from secc.v2g.evse import EvseSnapshot
from tests.din.conftest import ev_status, pv
from tests.v2g_harness import Driver

HOLD = 1.0


class Bench:
    """A DIN session on the simulated board: every request refreshes the snapshot from the
    board first and performs the actions after, as the session driver does."""

    def __init__(self) -> None:
        self.board = SimBoard(limits=SafetyLimits(insulation_test_hold_s=HOLD))
        self.board.ev_set_pilot("B")
        self.board.advance(0.1)
        self.board.ev_set_pilot("C")
        self.board.advance(0.1)
        self.controller = BoardController(self.board)
        self.session = DinSession(evse=EvseSnapshot(), evse_id="00")
        self.driver = Driver(self.session, DinAdapter())
        self.now = 0.0

    async def send(self, name, body):
        await self.controller.refresh(self.session.evse)
        for action in self.session.evse_stop(self.session.evse.stop_reason) \
                if self.session.evse.stop_reason.value != "none" else []:
            await self.controller.perform(action)
        reply, res = self.driver.send(name, body, self.now)
        for action in reply.actions:
            await self.controller.perform(action)
        return res

    async def to_cable_check(self):
        s = self.session
        await self.send("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x02" * 6))
        await self.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
        await self.send("ServicePaymentSelectionReq", M.ServicePaymentSelectionReqType(
            selected_payment_option="ExternalPayment",
            selected_service_list=M.SelectedServiceListType(
                selected_service=[M.SelectedServiceType(service_id=1)])))
        s.authorization_decided(AuthorizationDecision(AuthorizationStatus.ACCEPTED))
        await self.send("ContractAuthenticationReq", M.ContractAuthenticationReqType())
        res = await self.send("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
            ev_requested_energy_transfer_type="DC_extended",
            dc_ev_charge_parameter=M.DC_EVChargeParameterType(
                dc_ev_status=ev_status(), ev_maximum_current_limit=pv(100, "A"),
                ev_maximum_voltage_limit=pv(450, "V"))))
        assert res.response_code == "OK"

    async def cable_check(self):
        return await self.send("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()))

    def wait(self, seconds):
        self.board.advance(seconds)
        self.now += seconds


async def run_until_finished(bench, step=0.25, limit=10.0):
    answers = []
    while bench.now < limit:
        res = await bench.cable_check()
        answers.append((round(bench.now, 2), res.response_code, res.evse_processing))
        if res.evse_processing == "Finished" or res.response_code != "OK":
            return answers
        bench.wait(step)
    return answers


async def test_a_valid_reading_from_before_never_finishes_the_cable_check():
    bench = Bench()
    # the monitor already reads "valid" (idle measurement, before any test)
    assert (await bench.board.read_isolation()).state is IsolationState.VALID
    await bench.to_cable_check()
    res = await bench.cable_check()
    assert res.response_code == "OK" and res.evse_processing == "Ongoing"
    test = bench.board.insulation_test()
    assert test is not None and test.voltage_v == 500.0 and not test.complete
    answers = await run_until_finished(bench)
    finished_at = answers[-1][0]
    assert answers[-1][1:] == ("OK", "Finished")
    # finished only after the output reached 500 V and stayed there for the hold time
    assert finished_at >= HOLD
    test = bench.board.insulation_test()
    assert test.complete and test.held_since is not None
    assert finished_at - test.held_since >= HOLD - 1e-9


async def test_unsafe_path_is_impossible_even_if_the_board_reports_valid_throughout():
    """The old behaviour (Finished on the request that starts the test) cannot happen: on
    every board reading of VALID the first answer is Ongoing, and the session state stays in
    CableCheck until this test's own result arrives."""
    bench = Bench()
    await bench.to_cable_check()
    bench.board.inject_isolation_resistance(50e6)       # as valid as it gets
    res = await bench.cable_check()
    assert res.evse_processing == "Ongoing" and bench.session.state == "CableCheck"
    bench.wait(0.05)
    res = await bench.cable_check()                      # not held long enough yet
    assert res.evse_processing == "Ongoing" and bench.session.state == "CableCheck"


async def test_an_output_that_never_reaches_the_test_voltage_never_passes():
    bench = Bench()
    bench.board.inject_output_voltage_cap(300.0)         # power module fault
    await bench.to_cable_check()
    answers = await run_until_finished(bench, step=0.5, limit=6.0)
    assert all(p == "Ongoing" for _, _, p in answers)
    assert not bench.board.insulation_test().complete


async def test_insulation_fault_during_the_test_fails_the_cable_check():
    bench = Bench()
    await bench.to_cable_check()
    await bench.cable_check()
    bench.wait(0.5)                                      # voltage reached, hold running
    bench.board.inject_isolation_resistance(30_000)      # 30 ohm/V at 1000 V rating: fault
    bench.wait(0.05)
    res = await bench.cable_check()
    assert res.response_code == "FAILED"
    assert bench.board.insulation_test().state is IsolationState.FAULT


async def test_a_new_cable_check_needs_a_new_test():
    """The board's completed test belongs to its token: a later cable check (another session,
    or after a renegotiation) starts its own and does not inherit the verdict."""
    bench = Bench()
    await bench.to_cable_check()
    answers = await run_until_finished(bench)
    assert answers[-1][2] == "Finished"
    first = bench.board.insulation_test()
    second = Bench()
    second.board = bench.board                           # same hardware, next car
    second.controller = BoardController(bench.board)
    second.now = bench.now
    await second.to_cable_check()
    res = await second.cable_check()
    assert res.evse_processing == "Ongoing"
    assert bench.board.insulation_test().token != first.token


@pytest.mark.parametrize("hold", [0.5, 2.0])
async def test_the_hold_time_is_the_board_setting(hold):
    board = SimBoard(limits=SafetyLimits(insulation_test_hold_s=hold))
    board.ev_set_pilot("C")
    board.advance(0.1)
    await board.close_contactors()
    await board.start_insulation_test(500.0, token=7)
    board.advance(1.0)               # 1 A into the 2 mF inlet: 500 V after 1 s
    held_since = board.insulation_test().held_since
    assert held_since is not None
    board.advance(hold - 0.1)
    assert not board.insulation_test().complete
    board.advance(0.1 + board.plant.imd_period_s)
    test = board.insulation_test()
    assert test.complete and test.token == 7 and test.state is IsolationState.VALID
