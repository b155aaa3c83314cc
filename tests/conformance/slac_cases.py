"""The catalogue's SLAC / data-link cases (§1.1, ISO 15118-3 tested ISO 15118-5 style, source
N3) as data: one row per case id.

A row names its flow (a coroutine run by the SLAC tester after plug-in, with the stimulus and
the expectation), the field mutation it applies (``over``), the CP state the car shows when
matching starts, and whether it waits on a long timer (``long``: ``make conformance`` only).
``na`` gives the reason a case cannot apply (shown in the table). Timers are the standard's
(slac_tester.py: TT_match_response 0.2 s, TT_match_sequence 0.4 s, TT_EVSE_match_MNBC 0.6 s,
TT_EV_atten_results 1.2 s, TT_EVSE_match_session 10 s, TT_EVSE_SLAC_init 20-50 s,
T_conn_max_comm 8 s, C_EV_match_retry 2).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from secc.slac import messages as m
from tests.conformance import slac_tester as st
from tests.conformance.slac_tester import SlacTester, run_id
from tests.conformance.tester import Pilot

AREA = "1.1 SLAC / data link"
PROTOCOL = "slac"
ZERO_MAC = bytes(6)
NOT_ZERO_ID = m.station_id("EV0001")
# a missing answer is judged after the answer time plus this margin (scheduling on a busy box)
MARGIN = 0.3

Flow = Callable[[SlacTester, Pilot, "SlacCase"], Awaitable[None]]


@dataclass(frozen=True)
class SlacCase:
    id: str
    flow: Flow | None = None
    over: dict[str, Any] = field(default_factory=dict)
    cp: str = "B"                 # CP state the car shows when matching starts
    validate: bool = False        # CmSlacMatch even ids: CM_VALIDATE step before the match
    set_key_delay: float = 0.0    # the local modem's time to program the key
    long: bool = False
    na: str = ""
    area: str = AREA
    daemon: str = ""              # a board variant of daemon.py ("": the shared SLAC daemon)


# --------------------------------------------------------------------------- helpers
async def five_percent(pilot: Pilot, within: float = 3.0) -> float:
    """Wait until the SECC drives the 5 % PWM; returns when it was seen."""
    await pilot.wait_for(lambda s: s["pwm"] == "pwm" and abs(s["duty_percent"] - 5.0) < 0.5,
                         within=within)
    return time.monotonic()


async def unplug(pilot: Pilot) -> None:
    await pilot.set("A")
    await pilot.wait_for(lambda s: s["cp"] == "A", within=2.0)


def check_parm_cnf(t: SlacTester, cnf: m.Mme, rid: bytes) -> None:
    assert cnf.dst == t.ev_mac, f"CNF to {m.mac_str(cnf.dst)}, not the EV"
    assert bytes(cnf.run_id) == rid, "RunID not echoed"
    assert cnf.num_sounds > 0 and cnf.time_out > 0, (cnf.num_sounds, cnf.time_out)
    assert cnf.resp_type == m.RESP_TYPE_OTHER_GP_STATION
    assert cnf.forwarding_sta == t.ev_mac and cnf.msound_target == m.BROADCAST_MAC
    assert (cnf.application_type, cnf.security_type) == (0, 0)


async def parm_once(t: SlacTester, rid: bytes) -> st.Received:
    """One CM_SLAC_PARM.REQ; the CNF must come within TT_match_response."""
    sent = t.send(t.parm_req(rid))
    got = await t.expect(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE, since=sent,
                         where=lambda x: bytes(x.run_id) == rid)
    assert got.at - sent <= st.TT_MATCH_RESPONSE + st.SLACK, \
        f"CM_SLAC_PARM.CNF after {got.at - sent:.3f} s"
    check_parm_cnf(t, got.mme, rid)
    return got


async def no_match_cnf(t: SlacTester, rid: bytes, **over: Any) -> None:
    sent = t.send(t.match_req(rid, **over))
    await t.expect_none(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)


# --------------------------------------------------------------------------- CM_SLAC_PARM
async def parm_answered(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    await parm_once(t, run_id())


async def parm_never_sent(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """_004 (nothing sent) / _005, _006 (an invalid request): no CNF; after TT_EVSE_SLAC_init
    (max 50 s) the oscillator is off and a late valid request is not answered."""
    rid = run_id()
    start = time.monotonic()
    if case.over:
        sent = t.send(t.parm_req(rid, **case.over))
        await t.expect_none(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)
    await asyncio.sleep(max(0.0, st.TT_EVSE_SLAC_INIT_MAX - (time.monotonic() - start)))
    status = await pilot.status()
    assert status["pwm"] == "x1", f"after TT_EVSE_SLAC_init the pilot is {status['pwm']} " \
                                  f"{status['duty_percent']} %, expected the oscillator off"
    sent = t.send(t.parm_req(rid))
    await t.expect_none(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)
    unsolicited = [g.mme.name for g in t.inbox if g.mme.mmtype != m.CM_SLAC_PARM_CNF]
    assert not unsolicited, f"unsolicited MMEs to the EV: {unsolicited}"


async def parm_after_unplug(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    await asyncio.sleep(1.0)
    await unplug(pilot)
    sent = t.send(t.parm_req(run_id()))
    await t.expect_none(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)


async def parm_after_wakeup(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """The EV repeats CM_SLAC_PARM.REQ from plug-in on; a CNF within T_conn_max_comm."""
    plugged = t.plugged_at
    rid = run_id()
    while time.monotonic() - plugged < st.T_CONN_MAX_COMM:
        sent = t.send(t.parm_req(rid))
        try:
            got = await t.expect(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE, since=sent)
        except AssertionError:
            continue
        check_parm_cnf(t, got.mme, rid)
        return
    raise AssertionError(f"no CM_SLAC_PARM.CNF within T_conn_max_comm ({st.T_CONN_MAX_COMM} s)")


async def parm_at_five_percent(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """The modem takes its time to program the key: the 5 % PWM may only appear once the
    SECC can serve SLAC; a request sent as soon as it is seen is answered."""
    await five_percent(pilot, within=5.0)
    await parm_once(t, run_id())


# --------------------------------------------------------------------------- attenuation
async def atten_reported(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.parm(rid)
    last = await t.sound(rid)
    got = await t.expect(m.CM_ATTEN_CHAR_IND, st.TT_EV_ATTEN_RESULTS, since=last - 1.0)
    ind = got.mme
    assert got.at - last <= st.TT_EV_ATTEN_RESULTS + st.SLACK
    assert ind.dst == t.ev_mac and bytes(ind.run_id) == rid
    assert ind.source_address == t.ev_mac
    assert ind.num_sounds == st.C_EV_MATCH_MNBC, ind.num_sounds
    assert ind.num_groups == m.NUM_GROUPS and list(ind.aag) == [20] * m.NUM_GROUPS
    sent = t.send(t.atten_char_rsp(rid))
    await t.expect_none(m.CM_ATTEN_CHAR_IND, st.TT_MATCH_RESPONSE + MARGIN, since=sent)


async def restart_after_atten(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.parm(rid)
    await t.atten_char(rid)
    await parm_once(t, run_id())


async def fewer_sounds(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.parm(rid)
    started = time.monotonic()
    last = await t.sound(rid, sounds=4, announced=st.C_EV_MATCH_MNBC)
    got = await t.expect(m.CM_ATTEN_CHAR_IND, st.TT_EV_ATTEN_RESULTS, since=last)
    assert got.at - started >= st.TT_EVSE_MATCH_MNBC - 0.05, "IND before TT_EVSE_match_MNBC"
    assert got.mme.num_sounds == 4 and bytes(got.mme.run_id) == rid


async def atten_unacknowledged(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """No (or a bad) CM_ATTEN_CHAR.RSP: the IND is repeated every TT_match_response, at most
    C_EV_match_retry times, then the matching failed (no MATCH.CNF)."""
    rid = run_id()
    await t.parm(rid)
    first = await t.atten_char(rid)
    if case.over:
        over = dict(case.over)
        if over.get("run_id") == "other":
            over["run_id"] = run_id()
        t.send(t.atten_char_rsp(rid, **over))
    await asyncio.sleep((1 + st.C_EV_MATCH_RETRY) * st.TT_MATCH_RESPONSE + MARGIN + st.SLACK)
    sends = t.count(m.CM_ATTEN_CHAR_IND, since=first.at)
    assert sends == 1 + st.C_EV_MATCH_RETRY, \
        f"CM_ATTEN_CHAR.IND sent {sends} times, expected 1 + C_EV_match_retry repetitions"
    await no_match_cnf(t, rid)


async def sounding_too_late(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.parm(rid)
    await asyncio.sleep(st.TT_MATCH_SEQUENCE + 0.1)
    last = await t.sound(rid)
    await t.expect_none(m.CM_ATTEN_CHAR_IND, st.TT_EV_ATTEN_RESULTS, since=last - 1.0)


async def bad_start_atten(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.parm(rid)
    over = dict(case.over)
    sound_rid = rid
    if over.get("run_id") == "other":
        over["run_id"] = sound_rid = run_id()
    start = t.start_atten_char(rid, **over)
    last = await t.sound(rid, start=start, sound_run_id=sound_rid)
    await t.expect_none(m.CM_ATTEN_CHAR_IND, st.TT_EV_ATTEN_RESULTS, since=last - 1.0)


async def unplug_while_sounding(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.parm(rid)
    for _ in range(3):
        t.send(t.start_atten_char(rid))
    for i in range(4):
        await asyncio.sleep(st.TP_EV_BATCH_MSG_INTERVAL)
        t.send(t.mnbc_sound(rid, st.C_EV_MATCH_MNBC - 1 - i))
        t.send(t.atten_profile())
    since = time.monotonic()
    await unplug(pilot)
    for i in range(4, st.C_EV_MATCH_MNBC):
        t.send(t.mnbc_sound(rid, st.C_EV_MATCH_MNBC - 1 - i))
        t.send(t.atten_profile())
    await t.expect_none(m.CM_ATTEN_CHAR_IND, st.TT_EV_ATTEN_RESULTS, since=since)


async def two_rounds(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    for _ in range(2):
        rid = run_id()
        await t.parm(rid)
        ind = await t.atten_char(rid)
        assert ind.mme.num_sounds == st.C_EV_MATCH_MNBC
        t.send(t.atten_char_rsp(rid))
    sent = t.send(t.match_req(rid))
    await t.expect(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE, since=sent,
                   where=lambda x: bytes(x.run_id) == rid)


# --------------------------------------------------------------------------- CM_VALIDATE
async def validate_bad_signal(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid)
    sent = t.send(t.validate_req(signal_type=0xFF))
    await t.expect_none(m.CM_VALIDATE_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)


async def validate_not_required(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid)
    sent = t.send(t.validate_req())
    got = await t.expect(m.CM_VALIDATE_CNF, st.TT_MATCH_RESPONSE, since=sent)
    assert got.mme.dst == t.ev_mac and got.mme.result == m.VALIDATE_NOT_REQUIRED, got.mme.result
    sent = t.send(t.match_req(rid))
    await t.expect(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE, since=sent)


async def validate_failure(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """SECC configured to answer CM_VALIDATE step 1 with failure (``[slac] validate_mode =
    "failure"``): validation impossible, the EV falls back to matching, which is confirmed."""
    rid = run_id()
    await t.to_match(rid)
    sent = t.send(t.validate_req())
    got = await t.expect(m.CM_VALIDATE_CNF, st.TT_MATCH_RESPONSE, since=sent)
    assert got.mme.dst == t.ev_mac and got.mme.result == m.VALIDATE_FAILURE, got.mme.result
    sent = t.send(t.match_req(rid))
    got = await t.expect(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE, since=sent)
    assert got.mme.pev_mac == t.ev_mac and bytes(got.mme.run_id) == rid


async def validate_after_unplug(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid)
    await unplug(pilot)
    sent = t.send(t.validate_req())
    await t.expect_none(m.CM_VALIDATE_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)


# --------------------------------------------------------------------------- CM_SLAC_MATCH
async def match_confirmed(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid, validate=case.validate)
    repeats = 2 if case.over.get("repeat") else 1
    for _ in range(repeats):
        sent = t.send(t.match_req(rid))
        got = await t.expect(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE, since=sent)
        assert got.at - sent <= st.TT_MATCH_RESPONSE + st.SLACK
        cnf = got.mme
        key = t.set_keys[-1].mme
        assert cnf.dst == t.ev_mac and bytes(cnf.run_id) == rid
        assert cnf.pev_mac == t.ev_mac and cnf.evse_mac == t.secc_mac
        assert cnf.mvf_length == m.MATCH_CNF_MVF_LENGTH
        assert bytes(cnf.nmk) == bytes(key.new_key), "MATCH.CNF NMK is not the one set on " \
                                                     "the modem"
        assert bytes(cnf.nid) == bytes(key.nid) == m.nid_from_nmk(bytes(cnf.nmk))


async def match_too_late(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid, validate=case.validate)
    await asyncio.sleep(st.TT_EVSE_MATCH_SESSION + 0.5)
    await no_match_cnf(t, rid)


async def match_invalid(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid, validate=case.validate)
    over = dict(case.over)
    if over.get("run_id") == "other":
        over["run_id"] = run_id()
    await no_match_cnf(t, rid, **over)


async def match_after_unplug(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    rid = run_id()
    await t.to_match(rid, validate=case.validate)
    await unplug(pilot)
    await no_match_cnf(t, rid)


# --------------------------------------------------------------------------- link status
async def parm_while_matched(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """Matched, the EV's modem on the SECC's network: a new CM_SLAC_PARM.REQ (the EV's, a new
    RunID; then another station's) gets no CNF."""
    rid = run_id()
    await t.to_match(rid)
    sent = t.send(t.match_req(rid))
    await t.expect(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE, since=sent)
    polls, deadline = t.nw_info_requests, time.monotonic() + 3.0
    while t.nw_info_requests < polls + 2:   # the SECC asked its modem and heard the EV joined
        assert time.monotonic() < deadline, "the SECC never asked its modem for the link"
        await asyncio.sleep(0.02)
    sent = t.send(t.parm_req(run_id()))
    await t.expect_none(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)
    other = bytes.fromhex("02eeeeee0001")
    sent = t.send(t.parm_req(run_id(), src=other))
    await t.expect_none(m.CM_SLAC_PARM_CNF, st.TT_MATCH_RESPONSE + MARGIN, since=sent)


async def link_left_on_unplug(t: SlacTester, pilot: Pilot, case: SlacCase) -> None:
    """Matched and joined, the car unplugs: the SECC's node leaves the logical network within
    TP_match_leave -- its modem is given a new NMK (not the one the EV got)."""
    rid = run_id()
    await t.to_match(rid)
    sent = t.send(t.match_req(rid))
    cnf = (await t.expect(m.CM_SLAC_MATCH_CNF, st.TT_MATCH_RESPONSE, since=sent)).mme
    keys = len(t.set_keys)
    await pilot.set("A")
    unplugged = time.monotonic()
    while len(t.set_keys) == keys:
        assert time.monotonic() - unplugged < st.TP_MATCH_LEAVE + 1.0 + st.SLACK, \
            "the SECC's modem kept the EV's network key after unplug"
        await asyncio.sleep(0.01)
    left = t.set_keys[-1]
    assert bytes(left.mme.new_key) != bytes(cnf.nmk)
    # the pilot is debounced before the SECC sees A: TP_match_leave counts from there
    status = await pilot.status()
    assert status["cp"] == "A"
    assert left.at - unplugged <= st.TP_MATCH_LEAVE + st.SLACK, \
        f"left the network {left.at - unplugged:.3f} s after unplug"


# --------------------------------------------------------------------------- the table
NA_AC_NOMINAL = ("PICS: the SECC has no AC basic-charging fallback (it never leaves 5 % for a "
                 "nominal duty cycle); the N3 AC CmSlacParm cases need one")
NA_VALIDATE = ("PICS: CM_VALIDATE (BCB-toggle validation, optional in ISO 15118-3) is not "
               "supported; the SECC answers step 1 with notRequired (CmValidate_004/_012/_013 "
               "run)")
NA_AMP_MAP = "PICS: CM_AMP_MAP (optional amplitude map exchange) is not supported"
NA_LINK_NAMED = ("N3 names the PLCLinkStatus case without a body (its test-case file is a copy "
                 "of CmAmpMap): no stimulus to run (CMN_002/_003 run N3's same-numbered "
                 "behaviour function)")
NA_DIODE = "the simulated board's CP hook has no diode-fault state"

MATCH_FIELDS = [  # (odd id, mutation); the even id runs the same after CM_VALIDATE
    (7, dict(application_type=0xFF)), (9, dict(security_type=0xFF)), (11, dict(mvf_length=0)),
    (13, dict(pev_id=NOT_ZERO_ID)), (15, dict(pev_mac=ZERO_MAC)), (17, dict(evse_id=NOT_ZERO_ID)),
    (19, dict(evse_mac=ZERO_MAC)), (21, dict(run_id="other")),
]
RSP_FIELDS = [
    (5, dict(application_type=0xFF)), (6, dict(security_type=0xFF)),
    (7, dict(source_address=ZERO_MAC)), (8, dict(run_id="other")),
    (9, dict(source_id=NOT_ZERO_ID)), (10, dict(resp_id=NOT_ZERO_ID)), (11, dict(result=0xFF)),
]
START_FIELDS = [
    (13, dict(application_type=0xFF)), (14, dict(security_type=0xFF)), (15, dict(num_sounds=0)),
    (16, dict(time_out=0)), (17, dict(resp_type=0)), (18, dict(run_id="other")),
]

P = "TC_SECC_CMN_VTB_"
CASES: list[SlacCase] = [
    SlacCase(P + "CmSlacParm_001", parm_answered),
    SlacCase(P + "CmSlacParm_002", parm_answered, cp="C"),
    SlacCase(P + "CmSlacParm_003", parm_answered, cp="D"),
    SlacCase(P + "CmSlacParm_004", parm_never_sent, long=True),
    SlacCase(P + "CmSlacParm_005", parm_never_sent, over=dict(application_type=0xFF), long=True),
    SlacCase(P + "CmSlacParm_006", parm_never_sent, over=dict(security_type=0xFF), long=True),
    SlacCase(P + "CmSlacParm_007", parm_after_unplug),
    SlacCase(P + "CmSlacParm_008", parm_after_wakeup),
    SlacCase(P + "CmSlacParm_009", parm_at_five_percent, set_key_delay=0.5),
    *[SlacCase(f"TC_SECC_AC_VTB_CmSlacParm_00{i}", na=NA_AC_NOMINAL) for i in range(1, 5)],
    SlacCase(P + "AttenuationCharacterization_001", atten_reported),
    SlacCase(P + "AttenuationCharacterization_002", restart_after_atten),
    SlacCase(P + "AttenuationCharacterization_003", fewer_sounds),
    SlacCase(P + "AttenuationCharacterization_004", atten_unacknowledged),
    *[SlacCase(f"{P}AttenuationCharacterization_{n:03}", atten_unacknowledged, over=o)
      for n, o in RSP_FIELDS],
    SlacCase(P + "AttenuationCharacterization_012", sounding_too_late),
    *[SlacCase(f"{P}AttenuationCharacterization_{n:03}", bad_start_atten, over=o)
      for n, o in START_FIELDS],
    SlacCase(P + "AttenuationCharacterization_019", unplug_while_sounding),
    SlacCase(P + "AttenuationCharacterization_020", two_rounds),
    *[SlacCase(f"{P}CmValidate_{n:03}", na=NA_VALIDATE) for n in (1, 2, 3, 5, 6, 7, 8, 9)],
    SlacCase(P + "CmValidate_004", validate_bad_signal),
    SlacCase(P + "CmValidate_010", validate_failure, daemon="slac_validate_failure"),
    SlacCase(P + "CmValidate_011", na=NA_VALIDATE),
    SlacCase(P + "CmValidate_012", validate_not_required),
    SlacCase(P + "CmValidate_013", validate_after_unplug),
    SlacCase(P + "CmSlacMatch_001", match_confirmed),
    SlacCase(P + "CmSlacMatch_002", match_confirmed, validate=True),
    SlacCase(P + "CmSlacMatch_003", match_confirmed, over=dict(repeat=True)),
    SlacCase(P + "CmSlacMatch_004", match_confirmed, over=dict(repeat=True), validate=True),
    SlacCase(P + "CmSlacMatch_005", match_too_late, long=True),
    SlacCase(P + "CmSlacMatch_006", match_too_late, validate=True, long=True),
    *[SlacCase(f"{P}CmSlacMatch_{n + even:03}", match_invalid, over=o, validate=bool(even))
      for n, o in MATCH_FIELDS for even in (0, 1)],
    SlacCase(P + "CmSlacMatch_023", match_after_unplug),
    SlacCase(P + "CmSlacMatch_024", match_after_unplug, validate=True),
    *[SlacCase(f"{P}CmAmpMap_{n:03}", na=NA_AMP_MAP) for n in range(1, 9)],
    *[SlacCase(f"{P}PLCLinkStatus_{n:03}", na=NA_LINK_NAMED) for n in (1, 4, 5)],
    SlacCase(P + "PLCLinkStatus_002", link_left_on_unplug),
    SlacCase(P + "PLCLinkStatus_003", parm_while_matched),
    *[SlacCase(f"TC_SECC_AC_VTB_PLCLinkStatus_{n:03}", na=NA_LINK_NAMED) for n in range(1, 13)],
    *[SlacCase(f"TC_SECC_DC_VTB_PLCLinkStatus_{n:03}", na=NA_LINK_NAMED) for n in range(1, 8)],
    SlacCase(P + "Abnormal_001", na=NA_DIODE),
]
BY_ID = {case.id: case for case in CASES}
assert len(BY_ID) == len(CASES), "duplicate SLAC case id"
