"""Pause and resume (ISO 15118-2): the catalogue's SessionSetup AC/DC_001..006, ServiceDiscovery
AC/DC_001/002 and the ChargeParameterDiscovery resume matrix (AC/DC _007 ... _036).

Every case runs R4's pause precondition, then a wake-up, then the resumed session:

1. the GoodCase up to PowerDelivery(Stop) (AC) or WeldingDetection (DC), then
   SessionStopReq(ChargingSession=Pause): OK, and the SECC closes the connection;
2. the sleep: the car stays in B; the SECC must switch the oscillator off (X1, 100 %) with its
   contactors open and keep it off for the whole sleep, and offer no communication (an SDP
   request goes unanswered: it left the logical network);
3. the wake-up, either
   * by the EV (``EV`` cases: 001-003, ServiceDiscovery_001, CPD _007/_017/_019/_022): after
     ``EV_SLEEP`` s the car makes a BCB toggle, CP B -> C for TP_EV_vald_state_duration (0.3 s,
     ISO 15118-3: 200-400 ms) -> B; the SECC must answer with 5 % PWM within ``WAKE_WITHIN``;
   * by the SECC (``EVSE`` cases: 004-006, ServiceDiscovery_002, CPD _029/_031/_033/_036): the
     car waits; the SECC's own wake-up time (PIXIT ``PAUSE_WAKE_UP`` of the daemon under test,
     ``[v2g.timers].pause_wake_up``) must bring the 5 % PWM back (B1 -> B2), not earlier;
4. SDP, a new TCP connection, SupportedAppProtocol, SessionSetupReq with the paused SessionID
   (``OK_OldSessionJoined``, same SessionID), another non-zero one or zero
   (``OK_NewSessionEstablished``, a new SessionID), and what the case checks after it
   ([V2G2-741]: ServiceDiscoveryRes offers only the payment option and charge service chosen
   before the pause; the first ChargeParameterDiscoveryRes offers the SAScheduleTuple the car
   selected, for what is left of its period).

Written for the suite like the rest of the tester: our codec, never our session code.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.conformance.daemon import PAUSE_WAKE_UP
from tests.conformance.runner import Target, connect, drive_to
from tests.conformance.tester import Ev, default_request, foreign_session_id, sdp_discover

EV_SLEEP = 1.0            # the car's sleep before its BCB toggle (well inside PAUSE_WAKE_UP)
TOGGLE_STATE_S = 0.3      # ISO 15118-3 TP_EV_vald_state_duration (200-400 ms)
WAKE_WITHIN = 2.0         # the toggle -> 5 % PWM
OSCILLATOR_OFF_WITHIN = 1.5   # SessionStopRes(Pause) -> X1 (CP state detection time)
EARLY = 0.5               # the SECC's wake-up may come this much before its PIXIT, not more
LATE = 2.0                # ... and this much after it


#: SessionSetup_00i: (i, who wakes, the SessionID the car resumes with)
SESSION_SETUP = ((1, "EV", "old"), (2, "EV", "other"), (3, "EV", "zero"),
                 (4, "EVSE", "old"), (5, "EVSE", "other"), (6, "EVSE", "zero"))
_NONE, _DEP, _MAX = {"departure_time": None}, {"departure_time": 50}, \
    {"max_entries_sa_schedule_tuple": 12}
#: ChargeParameterDiscovery_0ii of a resumed session: (ii, who wakes, what the CPD carries)
CPD_MATRIX = ((7, "EV", _NONE), (17, "EV", _DEP), (19, "EV", {**_NONE, **_MAX}),
              (22, "EV", {**_DEP, **_MAX}), (29, "EVSE", _NONE), (31, "EVSE", _DEP),
              (33, "EVSE", {**_NONE, **_MAX}), (36, "EVSE", {**_DEP, **_MAX}))
#: the matrix's SalesTariff variants (011/018/020/021, 030/032/034/035): the daemon under test
#: has no SalesTariff configured, so they stay not applicable (cases.TARIFF)
CPD_WITH_TARIFF = (11, 18, 20, 21, 30, 32, 34, 35)


def _oscillator_off(s: dict[str, Any]) -> bool:
    return s["pwm"] == "x1" and s["duty_percent"] in (None, 100.0) \
        and not s["contactors_closed"]


def _five_percent(s: dict[str, Any]) -> bool:
    return s["pwm"] == "pwm" and abs(s["duty_percent"] - 5.0) < 0.5


class Paused:
    """What the tester remembers of the session it paused."""

    def __init__(self, ev: Ev, paused_at: float) -> None:
        self.session_id = ev.session_id
        self.paused_at = paused_at
        sd = next(x.body for x in ev.log if x.response == "ServiceDiscoveryRes")
        self.payment_options = list(sd.payment_option_list.payment_option)
        self.charge_service = sd.charge_service
        # the GoodCase's PaymentServiceSelectionReq (the log keeps the answers)
        self.selected_payment = default_request(ev.p, ev.p.payment_selection) \
            .selected_payment_option
        cpd = [x for x in ev.log if x.response == "ChargeParameterDiscoveryRes"
               and x.body.sa_schedule_list is not None][-1]
        self.schedule = cpd.body.sa_schedule_list
        self.schedule_offered_at = cpd.at
        self.selected_tuple_id = 1     # the tester's PowerDeliveryReq(Start) selects tuple 1


async def pause(target: Target, p: Any) -> Paused:
    """Precondition: a charged session paused with SessionStopReq(Pause); the SECC closes
    and switches the oscillator off."""
    ev = await drive_to(target, p, "PowerDeliveryStop" if p.ac else "WeldingDetection")
    try:
        _, res = await ev.request("SessionStopReq", charging_session="Pause")
        assert res.response_code == "OK", f"SessionStopRes(Pause): {res.response_code}"
        paused = Paused(ev, time.monotonic())
        await ev.conn.expect_close(5.0)
    finally:
        ev.conn.close()
    await target.pilot.wait_for(_oscillator_off, within=OSCILLATOR_OFF_WITHIN)
    return paused


async def stays_asleep(target: Target, seconds: float) -> None:
    """The oscillator stays off (and the contactors open) for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = await target.pilot.status()
        assert _oscillator_off(status), f"not asleep during the pause: {status}"
        await asyncio.sleep(0.05)


async def ev_wakes(target: Target, paused: Paused) -> None:
    """The car sleeps ``EV_SLEEP`` s (no SDP answer meanwhile), then makes a BCB toggle."""
    assert await sdp_discover(target.interface, tries=1, wait=0.3) is None, \
        "SDP answered while the paused car sleeps"
    await stays_asleep(target, paused.paused_at + EV_SLEEP - time.monotonic())
    for state in ("C", "B"):
        await target.pilot.set(state)
        await asyncio.sleep(TOGGLE_STATE_S)
    await target.pilot.wait_for(_five_percent, within=WAKE_WITHIN)


async def evse_wakes(target: Target, paused: Paused) -> None:
    """The car waits; the SECC wakes it after its wake-up time (B1 -> B2), not before."""
    await stays_asleep(target, paused.paused_at + PAUSE_WAKE_UP - EARLY - time.monotonic())
    left = paused.paused_at + PAUSE_WAKE_UP + LATE - time.monotonic()
    status = await target.pilot.wait_for(_five_percent, within=max(left, 0.1))
    assert status["cp"] == "B", status


WAKE = {"EV": ev_wakes, "EVSE": evse_wakes}


async def resumed_setup(target: Target, p: Any, paused: Paused, sid: str) -> Ev:
    """SDP, a new TCP connection, SAP, SessionSetupReq with SessionID ``sid``: ``old`` (the
    paused one), ``other`` (random, non-zero) or ``zero``."""
    ev = await connect(target, p)
    res = await ev.handshake()
    assert res.response_code.startswith("OK"), res
    header = {"old": paused.session_id, "other": foreign_session_id(paused.session_id),
              "zero": bytes(8)}[sid]
    _, res = await ev.request("SessionSetupReq", session_id=header)
    if sid == "old":
        assert res.response_code == "OK_OldSessionJoined", res.response_code
        assert ev.session_id == paused.session_id, \
            f"resumed with {ev.session_id.hex()}, paused {paused.session_id.hex()}"
    else:
        assert res.response_code == "OK_NewSessionEstablished", res.response_code
        assert ev.session_id not in (paused.session_id, header, bytes(8)), ev.session_id.hex()
    assert res.evseid
    return ev


def flow(wake: str, sid: str = "old", then: str | None = None):
    """The case: pause, ``wake`` (EV | EVSE), SessionSetupReq with ``sid``, then ``then``
    (None | ServiceDiscovery | ChargeParameterDiscovery, with the row's ``over``)."""
    async def run(target: Target, p: Any, case: Any) -> None:
        paused = await pause(target, p)
        await WAKE[wake](target, paused)
        ev = await resumed_setup(target, p, paused, sid)
        try:
            if then == "ServiceDiscovery":
                await service_discovery_resumed(ev, paused)
            elif then == "ChargeParameterDiscovery":
                await charge_parameters_resumed(ev, p, paused, dict(case.over))
        finally:
            ev.conn.close()
    return run


async def service_discovery_resumed(ev: Ev, paused: Paused) -> Any:
    """[V2G2-741]: only the payment option selected before the pause, the same charge service."""
    _, res = await ev.request("ServiceDiscoveryReq")
    assert res.response_code == "OK", res.response_code
    offered = list(res.payment_option_list.payment_option)
    assert offered == [paused.selected_payment], \
        f"resumed session offers {offered}"
    assert res.charge_service == paused.charge_service, res.charge_service
    assert res.service_list is None, res.service_list
    return res


async def charge_parameters_resumed(ev: Ev, p: Any, paused: Paused,
                                    over: dict[str, Any]) -> None:
    """The GoodCase to Authorization in the resumed session, then the row's CPD: OK, Finished,
    the tuple selected before the pause, its period reduced by the time elapsed ([V2G2-741]),
    at most MaxEntriesSAScheduleTuple entries."""
    await service_discovery_resumed(ev, paused)
    _, res = await ev.request(p.payment_selection,
                              selected_payment_option=paused.selected_payment)
    assert res.response_code == "OK", res.response_code
    _, res = await ev.until_finished(p.authorization)
    assert res.response_code == "OK" and res.evse_processing == "Finished", res
    max_entries = over.get("max_entries_sa_schedule_tuple")
    _, res = await ev.until_finished("ChargeParameterDiscoveryReq", **over)
    assert res.response_code == "OK" and res.evse_processing == "Finished", res
    tuples = {t.sa_schedule_tuple_id: t for t in res.sa_schedule_list.sa_schedule_tuple}
    assert paused.selected_tuple_id in tuples, \
        f"tuple {paused.selected_tuple_id} (selected before the pause) not offered: {tuples}"
    entries = tuples[paused.selected_tuple_id].p_max_schedule.p_max_schedule_entry
    if max_entries:
        assert len(entries) <= max_entries, f"{len(entries)} entries, at most {max_entries}"
    before = _period(next(t for t in paused.schedule.sa_schedule_tuple
                          if t.sa_schedule_tuple_id == paused.selected_tuple_id))
    now = _period(tuples[paused.selected_tuple_id])
    elapsed = time.monotonic() - paused.schedule_offered_at
    assert before - elapsed - 2 <= now < before, \
        f"period {now} s after {elapsed:.1f} s; {before} s were offered before the pause"


def _period(sa_tuple: Any) -> int:
    entries = sa_tuple.p_max_schedule.p_max_schedule_entry
    last = entries[-1].relative_time_interval
    return last.start + (last.duration or 0)
