"""Quirk iso20_price_schedule: ScheduleExchangeRes carries a (free) AbsolutePriceSchedule."""

import exi_schemas
from exi_schemas.generated import iso20 as cm
from sim.iso20_loopback import run_loopback

from .conftest import make_evcc, make_secc


def test_price_schedule_only_with_the_quirk():
    for quirks, expect in ((frozenset(), False), (frozenset({"iso20_price_schedule"}), True)):
        adapter, core = make_secc("dc", quirks=quirks)
        tuple_ = core._schedule_tuple(1, 0.0)
        has = tuple_.charging_schedule.absolute_price_schedule is not None
        assert has is expect
        if has:  # schema-valid: it encodes and decodes inside a ScheduleExchangeRes
            res = cm.ScheduleExchangeResType(
                header=cm.MessageHeaderType(session_id=bytes(8), time_stamp=0),
                response_code="OK", evse_processing="Finished",
                scheduled_se_res_control_mode=cm.Scheduled_SEResControlModeType(
                    schedule_tuple=[tuple_]))
            back = exi_schemas.decode(exi_schemas.encode(res), "iso20")
            rule = back.scheduled_se_res_control_mode.schedule_tuple[0].charging_schedule \
                .absolute_price_schedule.price_rule_stacks.price_rule_stack[0].price_rule[0]
            assert rule.energy_fee.value == 0


def test_whole_session_with_the_quirk_still_completes():
    adapter, core = make_secc("dc", quirks=frozenset({"iso20_price_schedule"}))
    result = run_loopback(core, adapter, make_evcc("dc", loops=3))
    assert result.codes[-1] == ("SessionStopReq", "OK")
