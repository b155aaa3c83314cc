"""Catalogue §1.7 rows with a SalesTariff (PIXIT: the SECC is configured with one): the
ChargeParameterDiscovery _008/_010/_013/_015 (first CPD) and _009/_024/_026/_027 (after
PowerDelivery(Renegotiate)) of ISO-2 AC and DC, against the daemon's ``tariff`` board variant.

The tester checks the offer from the decoded response alone (never our session code): an
SAScheduleTuple whose SalesTariff has an ID in 1..255, entries from 0 in time order whose
price levels are below NumEPriceLevels, ending where the PMaxSchedule ends; with the car's
MaxEntriesSAScheduleTuple the PMaxSchedule and SalesTariff entries together stay within it;
EIM: the response carries no header signature (the tariff is sent unsigned).
"""

from __future__ import annotations

import time
from typing import Any

import exi_schemas
from tests.conformance.runner import Target, drive_to
from tests.conformance import tester
from tests.conformance.tester import EXI, Ev, v2gtp

#: the board variant: 16 hourly entries on 3 price levels (more than a car with
#: MaxEntriesSAScheduleTuple = 12 can take, so the cut is visible)
TARIFF_STARTS = [h * 3600 for h in range(16)]
TARIFF_LEVELS = [(0, 1, 2, 1)[h % 4] for h in range(16)]
TARIFF_BOARD = f"""
[v2g.tariff]
enabled = true
sales_tariff_id = 5
description = "conformance tariff"
price_levels = 3
entry_starts_s = {TARIFF_STARTS}
entry_price_levels = {TARIFF_LEVELS}
entry_relative_prices_percent = {[80 + 20 * lv for lv in TARIFF_LEVELS]}
"""


async def cpd_with_header(ev: Ev, **over: Any) -> tuple[Any, Any]:
    """ChargeParameterDiscoveryReq until Finished; (response body, message header)."""
    from tests.conformance.tester import default_request

    deadline = time.monotonic() + 60.0
    while True:
        body = default_request(ev.p, "ChargeParameterDiscoveryReq", **dict(over))
        await ev.conn.send_raw(v2gtp(EXI, ev.encode("ChargeParameterDiscoveryReq", body)))
        _, payload = await ev.conn.receive(2.0 + tester.SLACK)
        msg = exi_schemas.decode(payload, ev.p.schema)
        element, res = exi_schemas.body_element(msg)
        assert element == "ChargeParameterDiscoveryRes", element
        assert res.response_code == "OK", res.response_code
        if res.evse_processing != "Ongoing":
            return res, msg.header
        assert time.monotonic() < deadline, "Ongoing for 60 s"


def _end(interval: Any) -> int:
    assert interval.duration is not None, f"last entry without duration: {interval}"
    return interval.start + interval.duration


def check_tariff_offer(res: Any, header: Any, max_entries: int | None) -> None:
    assert res.evse_processing == "Finished"
    tuples = res.sa_schedule_list.sa_schedule_tuple
    assert tuples, "no SAScheduleTuple"
    if max_entries:
        assert len(tuples) <= max_entries
    for tup in tuples:
        tariff = tup.sales_tariff
        assert tariff is not None, f"tuple {tup.sa_schedule_tuple_id} without SalesTariff"
        assert 1 <= tariff.sales_tariff_id <= 255, tariff.sales_tariff_id
        entries = tariff.sales_tariff_entry
        assert entries, "SalesTariff without entries"
        starts = [e.relative_time_interval.start for e in entries]
        assert starts[0] == 0 and starts == sorted(set(starts)), starts
        if tariff.num_e_price_levels is not None:
            assert all(e.e_price_level is None or e.e_price_level < tariff.num_e_price_levels
                       for e in entries), [e.e_price_level for e in entries]
        pmax = tup.p_max_schedule.p_max_schedule_entry
        assert _end(entries[-1].relative_time_interval) == \
            _end(pmax[-1].relative_time_interval), "SalesTariff and PMaxSchedule end apart"
        if max_entries:
            assert len(pmax) + len(entries) <= max_entries, (len(pmax), len(entries))
        else:   # nothing cut: the configured tariff whole (16 hourly entries)
            assert starts == TARIFF_STARTS, starts
    assert header.signature is None, "EIM: the SalesTariff must travel unsigned"


async def tariff_first_cpd(target: Target, p: Any, case: Any) -> None:
    """First CPD after authorization with the case's Dep/Max inputs."""
    ev = await drive_to(target, p, "Authorization")
    try:
        res, header = await cpd_with_header(ev, **case.over)
        check_tariff_offer(res, header, case.over.get("max_entries_sa_schedule_tuple"))
    finally:
        ev.conn.close()


async def tariff_after_renegotiation(target: Target, p: Any, case: Any) -> None:
    """From the charge loop: PowerDelivery(Renegotiate) OK, CPD with the case's Dep/Max
    inputs offers the tariff again, then PowerDelivery(Start) OK."""
    ev = await drive_to(target, p, "ChargeLoop")
    try:
        _, res = await ev.request("PowerDeliveryReq", progress="Renegotiate", start=True,
                                  timeout=5.0)
        assert res.response_code == "OK", res
        res, header = await cpd_with_header(ev, **case.over)
        check_tariff_offer(res, header, case.over.get("max_entries_sa_schedule_tuple"))
        _, res = await ev.request("PowerDeliveryReq", start=True, timeout=5.0)
        assert res.response_code == "OK", res
    finally:
        ev.conn.close()


NO_DEP = {"departure_time": None}   # the GoodCase AC request carries one: left out here
DEP = {"departure_time": 50}
MAX = {"max_entries_sa_schedule_tuple": 12}
#: case number -> the optional inputs (catalogue §1.7 matrix)
FIRST = {8: NO_DEP, 10: DEP, 13: {**NO_DEP, **MAX}, 15: {**DEP, **MAX}}
RENEGOTIATED = {9: NO_DEP, 24: DEP, 26: {**NO_DEP, **MAX}, 27: {**DEP, **MAX}}
