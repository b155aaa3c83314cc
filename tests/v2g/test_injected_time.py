"""Clock and randomness are inputs of every core (DIN, ISO-2, -20): timers and Ongoing limits
run in virtual time, time stamps come from the injected wall clock, SessionIDs and
GenChallenges from the injected random source; one paused-session store serves -2 and -20."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from exi_schemas.generated import din as MD
from exi_schemas.generated import iso2 as M2
from secc.din import DinSession
from secc.v2g.paused import PausedSession, PausedSessions
from tests.din.conftest import Driver as DinDriver
from tests.iso2.test_iso2_session import EVCCID, ac_charge_then_stop, ac_parameters, make, setup
from tests.iso20.conftest import make_secc

REPO = Path(__file__).resolve().parents[2]
WALL = 1_900_000_000.0   # 2030-03-17, not the real today


def seeded(seed: int):
    rng = random.Random(seed)
    return rng.randbytes


def test_the_cores_read_no_clock_and_no_entropy_themselves():
    calls = re.compile(r"time\.time\(\)|time\.monotonic\(\)|datetime\.now\(|"
                       r"secrets\.token_bytes\(|os\.urandom\(|random\.")
    found = []
    for package in ("din", "iso2", "iso20", "v2g"):   # the session cores and their base
        for path in (REPO / "secc" / package).glob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if calls.search(line.split("#")[0]):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "read the injected wall_clock/random_bytes instead:\n" + "\n".join(found)


def test_din_time_stamp_and_session_id_come_from_the_injected_sources():
    first = DinDriver(DinSession(evse_id="00", wall_clock=lambda: WALL, random_bytes=seeded(7)))
    _, res = first.send("SessionSetupReq", MD.SessionSetupReqType(evccid=EVCCID), 0.0,
                        session_id=bytes(8))
    assert res.date_time_now == int(WALL)
    again = DinDriver(DinSession(evse_id="00", wall_clock=lambda: WALL, random_bytes=seeded(7)))
    again.send("SessionSetupReq", MD.SessionSetupReqType(evccid=EVCCID), 0.0, session_id=bytes(8))
    assert first.session.session_id == again.session.session_id == seeded(7)(8)


def test_iso2_time_stamps_and_session_id_come_from_the_injected_sources():
    d = make(("AC_three_phase_core",), wall_clock=lambda: WALL, random_bytes=seeded(3))
    res = setup(d)
    assert res.evse_time_stamp == int(WALL) and d.session.session_id == seeded(3)(8)
    ac_parameters(d)
    assert d.session.meter_info().t_meter == int(WALL)


def test_iso20_session_id_comes_from_the_injected_source():
    _, core = make_secc("dc", random_bytes=seeded(5))
    assert core.new_session_id() == seeded(5)(8)


def test_one_paused_store_for_iso2_and_iso20_bounded_and_expiring_in_virtual_time():
    store = PausedSessions(lifetime=60.0, capacity=2)
    d = make(("AC_three_phase_core",), paused_sessions=store)
    ac_charge_then_stop(d)
    d.send("SessionStopReq", M2.SessionStopReqType(charging_session="Pause"), 4.0)
    old = d.session.session_id
    assert len(store) == 1
    # the -20 core of the same EVSE uses the very same store
    _, core20 = make_secc("dc", paused_sessions=store)
    assert core20.paused_sessions is store
    # a car coming back after the lifetime (virtual time, no sleeping) gets a new session
    late = make(("AC_three_phase_core",), paused_sessions=store)
    _, res = late.send("SessionSetupReq", M2.SessionSetupReqType(evccid=EVCCID), 64.1,
                       session_id=old)
    assert res.response_code == "OK_NewSessionEstablished" and len(store) == 0
    # bounded: the oldest pause gives way
    for n in range(3):
        store.put(PausedSession(bytes([n]) * 8, EVCCID, paused_at=float(n)))
    assert len(store) == 2
    assert store.take(bytes(8), EVCCID, 3.0) is None
    assert store.take(bytes([2]) * 8, EVCCID, 3.0) is not None


def test_within_the_lifetime_the_iso2_car_resumes():
    store = PausedSessions(lifetime=60.0)
    old = bytes.fromhex("1122334455667788")
    store.put(PausedSession(old, EVCCID, paused_at=4.0))
    back = make(("AC_three_phase_core",), paused_sessions=store)
    _, res = back.send("SessionSetupReq", M2.SessionSetupReqType(evccid=EVCCID), 63.9,
                       session_id=old)
    assert res.response_code == "OK_OldSessionJoined" and back.session.session_id == old


@pytest.mark.parametrize("limit", [20.0, 55.0])
def test_the_ongoing_limit_is_the_same_rule_in_din_in_virtual_time(limit):
    from secc.v2g.timers import V2GTimerConfig
    d = DinDriver(DinSession(evse_id="00", timers=V2GTimerConfig(ongoing_timeout=limit)))
    d.send("SessionSetupReq", MD.SessionSetupReqType(evccid=EVCCID), 0.0, session_id=bytes(8))
    d.send("ServiceDiscoveryReq", MD.ServiceDiscoveryReqType(service_category="EVCharging"), 0.0)
    d.send("ServicePaymentSelectionReq", MD.ServicePaymentSelectionReqType(
        selected_payment_option="ExternalPayment", selected_service_list=MD.SelectedServiceListType(
            selected_service=[MD.SelectedServiceType(service_id=1)])), 0.0)
    _, res = d.send("ContractAuthenticationReq", MD.ContractAuthenticationReqType(), 1.0)
    assert res.evse_processing == "Ongoing"
    _, res = d.send("ContractAuthenticationReq", MD.ContractAuthenticationReqType(), 1.0 + limit)
    assert res.evse_processing == "Ongoing"
    _, res = d.send("ContractAuthenticationReq", MD.ContractAuthenticationReqType(),
                    1.1 + limit)
    assert res.response_code == "FAILED" and d.session.terminated
