"""ISO 15118-2: a resumed session's first schedule continues the SAScheduleTuple agreed before
the pause ([V2G2-741]), SalesTariff included: the tariff keeps its own time axis (entries
already over are left out, the running one starts at 0, later ones move back by the time
elapsed since the first offer). Over the wire: tests/conformance/joint.py (CPD _011 ... _035)."""

from __future__ import annotations

from exi_schemas.generated import iso2 as M
from secc.iso2 import PausedSessions
from secc.v2g.tariff import tariff_entries
from tests.iso2.test_iso2_resume import AC, authorize, select
from tests.iso2.test_iso2_session import EVCCID, ac_parameters, make
from tests.iso2.test_iso2_tariff_meter import TARIFF   # starts 0/3600/7200, levels 2/0/1


def starts_levels(cpd):
    (tup,) = cpd.sa_schedule_list.sa_schedule_tuple
    entries = tup.sales_tariff.sales_tariff_entry
    pmax_last = tup.p_max_schedule.p_max_schedule_entry[-1].relative_time_interval
    last = entries[-1].relative_time_interval
    assert last.start + last.duration == pmax_last.start + pmax_last.duration
    return [(e.relative_time_interval.start, e.e_price_level) for e in entries]


def paused_with_tariff(paused):
    """Tariff offered at t=1 (starts 0/3600/7200 on that clock), charged, paused at t=3.1."""
    d = make(AC, paused_sessions=paused, sales_tariff=TARIFF)
    d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), 0.0, session_id=bytes(8))
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0.0)
    select(d, "ExternalPayment", 0.0)
    authorize(d, 0.5)
    assert starts_levels(ac_parameters(d, 1.0)) == [(0, 2), (3600, 0), (7200, 1)]
    for progress, now in (("Start", 2.0), ("Stop", 3.0)):
        d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress=progress,
                                                          sa_schedule_tuple_id=1), now)
    _, res = d.send("SessionStopReq", M.SessionStopReqType(charging_session="Pause"), 3.1)
    assert res.response_code == "OK"
    return d.session.session_id


def resumed_cpd(paused, old, now):
    d = make(AC, paused_sessions=paused, sales_tariff=TARIFF)
    _, res = d.send("SessionSetupReq", M.SessionSetupReqType(evccid=EVCCID), now,
                    session_id=old)
    assert res.response_code == "OK_OldSessionJoined"
    d.send("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), now)
    select(d, "ExternalPayment", now)
    authorize(d, now + 0.5)
    return d, ac_parameters(d, now + 1.0)


def test_tariff_entries_continue_on_their_own_clock():
    assert [(e.start, e.price_level) for e in tariff_entries(TARIFF, 85400, None, 1000)] == \
        [(0, 2), (2600, 0), (6200, 1)]
    # the first entry is over: left out; the running one starts now
    entries = tariff_entries(TARIFF, 82400, None, 4000)
    assert [(e.start, e.price_level) for e in entries] == [(0, 0), (3200, 1)]
    assert entries[-1].duration == 82400 - 3200
    assert [e.start for e in tariff_entries(TARIFF, 86400, None)] == [0, 3600, 7200]


def test_resumed_session_continues_the_tariff_offered_before_the_pause():
    paused = PausedSessions()
    old = paused_with_tariff(paused)
    d, cpd = resumed_cpd(paused, old, 1001.0)     # CPD at 1002: 1001 s after the first
    assert starts_levels(cpd) == [(0, 2), (2599, 0), (6199, 1)]
    # a renegotiation in the resumed session is a fresh offer: the tariff from its start
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Start",
                                                      sa_schedule_tuple_id=1), 1003.0)
    d.send("PowerDeliveryReq", M.PowerDeliveryReqType(charge_progress="Renegotiate",
                                                      sa_schedule_tuple_id=1), 1004.0)
    assert starts_levels(ac_parameters(d, 1005.0)) == [(0, 2), (3600, 0), (7200, 1)]


def test_resumed_later_the_entries_already_over_are_left_out():
    paused = PausedSessions()
    old = paused_with_tariff(paused)
    _, cpd = resumed_cpd(paused, old, 3999.0)     # CPD at 4000: 3999 s after the first
    assert starts_levels(cpd) == [(0, 0), (3201, 1)]
