"""The hooks a tester (or an energy manager) uses to keep a step at Ongoing: the EVSE's
``schedule_pending`` input holds ChargeParameterDiscovery (ISO-2 and DIN) until the Ongoing
limit, then the request fails and the session ends; ``HoldableAuthorizer`` holds, grants or
refuses authorization; the simulated board's control socket carries both commands."""

from __future__ import annotations

import asyncio

import pytest

from exi_schemas.generated import din as D
from secc.authorization import (
    AllowListAuthorizer,
    AuthorizationRequest,
    AuthorizationStatus,
    HoldableAuthorizer,
)
from secc.din import DinSession
from tests.din.conftest import Driver as DinDriver
from tests.din.test_din_session import authorize, setup_to_charge_parameters
from tests.din.conftest import ev_status as din_ev_status
from tests.din.conftest import pv as din_pv
from tests.iso2.test_iso2_session import dc_parameters, make, setup


def test_iso2_schedule_pending_answers_ongoing_then_fails_after_the_ongoing_limit():
    d = make()
    setup(d)
    d.session.evse.schedule_pending = True
    res = dc_parameters(d, now=1.0)
    assert res.response_code == "OK" and res.evse_processing == "Ongoing"
    assert res.sa_schedule_list is None
    res = dc_parameters(d, now=50.0)
    assert res.evse_processing == "Ongoing"
    res = dc_parameters(d, now=56.5)          # 55.5 s after the first Ongoing
    assert res.response_code == "FAILED"
    assert d.replies[-1].close


def test_iso2_schedule_released_offers_the_schedule():
    d = make()
    setup(d)
    d.session.evse.schedule_pending = True
    assert dc_parameters(d, now=1.0).evse_processing == "Ongoing"
    d.session.evse.schedule_pending = False
    res = dc_parameters(d, now=30.0)
    assert res.response_code == "OK" and res.evse_processing == "Finished"
    assert res.sa_schedule_list.sa_schedule_tuple


def din_cpd(d, now):
    return d.send("ChargeParameterDiscoveryReq", D.ChargeParameterDiscoveryReqType(
        ev_requested_energy_transfer_type="DC_extended",
        dc_ev_charge_parameter=D.DC_EVChargeParameterType(
            dc_ev_status=din_ev_status(), ev_maximum_current_limit=din_pv(125, "A"),
            ev_maximum_voltage_limit=din_pv(450, "V"))), now)[1]


def test_din_schedule_pending_answers_ongoing_then_fails():
    d = DinDriver(DinSession(evse_id="00"))
    setup_to_charge_parameters(d)
    authorize(d)
    d.session.evse.schedule_pending = True
    res = din_cpd(d, 2.0)
    assert res.response_code == "OK" and res.evse_processing == "Ongoing"
    assert din_cpd(d, 40.0).evse_processing == "Ongoing"
    res = din_cpd(d, 58.0)
    assert res.response_code == "FAILED" and d.replies[-1].close


REQUEST = AuthorizationRequest(evse_id="E", session_id="s", id_token="T")


def test_holdable_authorizer_holds_until_released():
    async def run():
        hook = HoldableAuthorizer(AllowListAuthorizer(accept_all=True))
        assert (await hook.authorize(REQUEST)).accepted          # pass: the board decides
        hook.set_mode("hold")
        pending = asyncio.ensure_future(hook.authorize(REQUEST))
        await asyncio.sleep(0.05)
        assert not pending.done()
        hook.set_mode("reject")
        decision = await asyncio.wait_for(pending, 1.0)
        assert decision.status is AuthorizationStatus.INVALID
        hook.set_mode("accept")
        assert (await hook.authorize(REQUEST)).accepted
        with pytest.raises(ValueError, match="pass, hold, accept, reject"):
            hook.set_mode("maybe")
    asyncio.run(run())


def test_sim_control_routes_registered_commands():
    from hal.sim_control import handle_command

    seen = []
    commands = {"schedule": lambda r: seen.append(r) or {"ok": True}}
    assert handle_command(None, {"cmd": "schedule", "held": True}, commands) == {"ok": True}
    assert seen == [{"cmd": "schedule", "held": True}]
    answer = handle_command(None, {"cmd": "nope"}, commands)
    assert answer["ok"] is False and "schedule" in answer["error"]
