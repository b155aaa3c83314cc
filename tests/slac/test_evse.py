"""EVSE SLAC state machine in virtual time: every timer, every misbehaviour, clean endings."""

from __future__ import annotations

import dataclasses

import pytest
from slac_medium import EV2_MAC, EV_MAC, EVSE_MAC

from secc.slac import messages as m
from secc.slac.config import SlacConfig
from secc.slac.evse import (
    PWM_OFF_PERCENT,
    EvseSlac,
    FailureReason,
    LinkEstablished,
    LinkLost,
    MatchFailed,
    MatchSucceeded,
    Phase,
    SendFrame,
    SetPilotState,
    SetPwmDuty,
)
from sim.ev_slac import EvMisbehaviour, EvSlac
from sim.modem import SimModem

RUN = bytes.fromhex("1111111111111111")
NO_RESTART = SlacConfig(restart_on_parm_req=False, failure_action="pwm_off")


def plug_in(med, at: float = 0.0, ev_start: float = 0.1) -> None:
    """State B at ``at``; EVs start SLAC ``ev_start`` later."""
    med.now = at
    med.evse_do(med.evse.pilot_state_b(med.now))
    med.run_until(at + ev_start)
    med.start_evs()


def failures(med) -> list[MatchFailed]:
    return med.of_type(MatchFailed)


def evse_frames(med, mmtype: int) -> list[m.Mme]:
    return med.frames(mmtype, "evse")


# --- nominal ---------------------------------------------------------------------------------
def test_nominal_match_sets_key_then_pwm_then_matches_and_sees_the_link(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    assert med.evse.phase == Phase.MATCHED
    set_key = evse_frames(med, m.CM_SET_KEY_REQ)[0]
    assert set_key.dst == m.QUALCOMM_LOCAL_MAC
    assert bytes(set_key.nid) == m.nid_from_nmk(bytes(set_key.new_key))
    pwm, succeeded, link = med.actions
    assert pwm == SetPwmDuty(5.0)
    assert isinstance(succeeded, MatchSucceeded) and isinstance(link, LinkEstablished)
    assert succeeded.ev_mac == EV_MAC and succeeded.attenuation_db == 20.0
    assert succeeded.num_profiles == 10 and succeeded.nmk == bytes(set_key.new_key)
    assert succeeded.parm_req_to_match_cnf_s < 1.5
    ev = med.evs[0].result
    assert ev.matched and ev.evse_mac == EVSE_MAC
    assert (ev.nid, ev.nmk) == (succeeded.nid, succeeded.nmk)
    parm_cnf = evse_frames(med, m.CM_SLAC_PARM_CNF)[0]
    assert parm_cnf.dst == EV_MAC and parm_cnf.num_sounds == 10 and parm_cnf.time_out == 6
    ind = evse_frames(med, m.CM_ATTEN_CHAR_IND)[0]
    assert ind.num_sounds == 10 and list(ind.aag) == [20] * 58


def test_every_session_gets_a_new_nmk(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    med.evse_do(med.evse.pilot_unplugged(med.now))
    assert med.evse.phase == Phase.IDLE and med.evse.next_deadline() is None
    med.evse_do(med.evse.pilot_state_b(med.now))
    keys = [bytes(f.new_key) for f in evse_frames(med, m.CM_SET_KEY_REQ)]
    assert len(keys) == 2 and keys[0] != keys[1]


def test_state_b_during_a_session_does_not_restart_it(make_medium):
    med = make_medium()
    med.evse_do(med.evse.pilot_state_b(0.0))
    assert med.evse.pilot_state_b(0.1) == []
    assert len(evse_frames(med, m.CM_SET_KEY_REQ)) == 1


# --- CM_SET_KEY --------------------------------------------------------------------------------
def test_set_key_failure_is_retried_until_confirmed(make_medium):
    med = make_medium(modem=SimModem(set_key_failures=2), evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    assert len(evse_frames(med, m.CM_SET_KEY_REQ)) == 3
    assert med.evse.phase == Phase.MATCHED


def test_silent_modem_is_retried_after_set_key_timeout(make_medium):
    med = make_medium(modem=SimModem(set_key_failures=1, set_key_silent=True))
    med.evse_do(med.evse.pilot_state_b(0.0))
    med.run_until(0.99)
    assert len(evse_frames(med, m.CM_SET_KEY_REQ)) == 1
    med.run_until(1.0)
    assert len(evse_frames(med, m.CM_SET_KEY_REQ)) == 2
    assert med.evse.phase == Phase.WAITING_FOR_EV


def test_set_key_retries_exhausted_fails_cleanly(make_medium):
    med = make_medium(config=NO_RESTART, modem=SimModem(set_key_failures=99))
    med.evse_do(med.evse.pilot_state_b(0.0))
    med.run_until(10.0)
    assert len(evse_frames(med, m.CM_SET_KEY_REQ)) == 1 + NO_RESTART.c_evse_set_key_retry
    assert [f.reason for f in failures(med)] == [FailureReason.SET_KEY_FAILED]
    assert med.actions[-1] == SetPwmDuty(PWM_OFF_PERCENT)
    assert med.evse.phase == Phase.FAILED and med.evse.next_deadline() is None


@pytest.mark.parametrize("mode, modem_result, ok", [
    ("modem_compat_0x01", 0x01, True), ("modem_compat_0x01", 0x00, False),
    ("hpgp_standard_0x00", 0x00, True), ("hpgp_standard_0x00", 0x01, False),
    ("accept_0x00_or_0x01", 0x00, True), ("accept_0x00_or_0x01", 0x01, True),
])
def test_set_key_success_code_follows_config(make_medium, mode, modem_result, ok):
    config = SlacConfig(set_key_success_mode=mode)
    med = make_medium(config=config, modem=SimModem(success_result=modem_result))
    med.evse_do(med.evse.pilot_state_b(0.0))
    assert (med.evse.phase == Phase.WAITING_FOR_EV) is ok



@pytest.mark.parametrize("mode, modem_result, proposed", [
    ("modem_compat_0x01", 0x00, '"accept_0x00_or_0x01"'),
    ("hpgp_standard_0x00", 0x01, '"modem_compat_0x01"'),
])
def test_set_key_failure_log_names_the_setting(make_medium, caplog, mode, modem_result,
                                               proposed):
    """The daemon's own log line tells the field engineer which setting to change."""
    import logging

    logger = logging.getLogger("pysecc")
    logger.addHandler(caplog.handler)
    try:
        med = make_medium(config=SlacConfig(set_key_success_mode=mode),
                          modem=SimModem(success_result=modem_result))
        med.evse_do(med.evse.pilot_state_b(0.0))
    finally:
        logger.removeHandler(caplog.handler)
    record = next(r for r in caplog.records if r.getMessage() == "CM_SET_KEY.CNF reports failure")
    assert record.result == f"0x{modem_result:02X}"
    assert "[slac].set_key_success_mode" in record.hint and proposed in record.hint


# --- TT_EVSE_SLAC_init and failure handling ---------------------------------------------------
def test_no_ev_fails_after_tt_evse_slac_init_then_ef_retries_then_pwm_off(make_medium):
    config = SlacConfig(failure_action="state_f", c_sequ_retry=2)
    med = make_medium(config=config)
    med.evse_do(med.evse.pilot_state_b(0.0))
    med.run_until(39.99)
    assert failures(med) == []
    med.run_until(40.0)
    assert failures(med)[0].reason == FailureReason.NO_SLAC_PARM_REQ
    assert failures(med)[0].retrying and med.actions[-1] == SetPilotState("F")
    assert med.evse.phase == Phase.EF_PAUSE
    med.run_until(44.0)  # T_step_EF later: X1, new key, 5 %
    assert med.actions[-2:] == [SetPwmDuty(PWM_OFF_PERCENT), SetPwmDuty(5.0)]
    assert len(evse_frames(med, m.CM_SET_KEY_REQ)) == 2
    med.run_until(200.0)
    assert [f.retrying for f in failures(med)] == [True, True, False]
    assert med.actions[-1] == SetPwmDuty(PWM_OFF_PERCENT)
    assert med.evse.phase == Phase.FAILED and med.evse.next_deadline() is None


def test_state_e_failure_action_uses_state_e(make_medium):
    med = make_medium(config=SlacConfig(failure_action="state_e"))
    med.evse_do(med.evse.pilot_state_b(0.0))
    med.run_until(40.0)
    assert SetPilotState("E") in med.actions


def test_slow_car_starting_after_30_s_is_still_served(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC, EvMisbehaviour(start_delay=30.0))])
    plug_in(med)
    med.run_until(40.0)
    assert med.evse.phase == Phase.MATCHED and failures(med) == []


# --- per-attempt timers -----------------------------------------------------------------------
def _parm_req(src=EV_MAC, run=RUN) -> bytes:
    return m.encode(m.slac_parm_req(m.BROADCAST_MAC, src, run))


def _ready(med) -> None:
    med.evse_do(med.evse.pilot_state_b(0.0))
    assert med.evse.phase == Phase.WAITING_FOR_EV


def test_no_start_atten_char_drops_attempt_after_tt_match_sequence(make_medium):
    med = make_medium()
    _ready(med)
    med.now = 1.0
    med.inject(_parm_req())
    assert med.evse.phase == Phase.MATCHING
    med.run_until(1.39)
    assert med.evse.attempts
    med.run_until(1.4)
    assert not med.evse.attempts and med.evse.phase == Phase.WAITING_FOR_EV
    assert med.evse.next_deadline() == pytest.approx(1.4 + 40.0)


def test_no_start_atten_char_without_restart_fails_the_session(make_medium):
    med = make_medium(config=NO_RESTART)
    _ready(med)
    med.inject(_parm_req())
    med.run_until(1.0)
    assert [f.reason for f in failures(med)] == [FailureReason.NO_START_ATTEN_CHAR]
    assert med.evse.phase == Phase.FAILED


def test_no_sounds_still_sends_atten_char_ind_at_end_of_mnbc_window(make_medium):
    med = make_medium()
    _ready(med)
    med.now = 1.0
    med.inject(_parm_req())
    med.now = 1.1
    med.inject(m.encode(m.start_atten_char_ind(EV_MAC, RUN, 10, 6)))
    med.run_until(1.69)
    assert evse_frames(med, m.CM_ATTEN_CHAR_IND) == []
    med.run_until(1.7001)
    ind = evse_frames(med, m.CM_ATTEN_CHAR_IND)[0]
    assert ind.num_sounds == 0 and ind.num_groups == 58 and ind.dst == EV_MAC


def test_modem_without_attenuation_profiles_still_matches(make_medium):
    med = make_medium(modem=SimModem(send_profiles=False), evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    (succeeded,) = med.of_type(MatchSucceeded)
    assert succeeded.attenuation_db is None and succeeded.num_profiles == 0


def test_missing_atten_char_rsp_resends_ind_then_drops_attempt(make_medium):
    med = make_medium(config=NO_RESTART,
                      evs=[EvSlac(EV_MAC, EvMisbehaviour(skip_atten_char_rsp=True,
                                                         never_send_match_req=True))])
    plug_in(med)
    med.run_until(5.0)
    inds = [t for t, who, mme in med.sent if who == "evse" and mme.mmtype == m.CM_ATTEN_CHAR_IND]
    assert len(inds) == 1 + NO_RESTART.c_ev_match_retry
    assert inds[1] - inds[0] == pytest.approx(0.2) and inds[2] - inds[1] == pytest.approx(0.2)
    assert [f.reason for f in failures(med)] == [FailureReason.NO_ATTEN_CHAR_RSP]


def test_ev_that_never_sends_match_req_times_out_after_tt_evse_match_session(make_medium):
    med = make_medium(config=NO_RESTART,
                      evs=[EvSlac(EV_MAC, EvMisbehaviour(never_send_match_req=True))])
    plug_in(med)
    med.run_until(2.0)
    assert med.evse.phase == Phase.MATCHING and failures(med) == []
    med.run_until(15.0)
    assert [f.reason for f in failures(med)] == [FailureReason.NO_MATCH_REQ]
    assert med.evse.phase == Phase.FAILED


def test_match_req_is_accepted_even_if_the_atten_char_rsp_was_lost(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC, EvMisbehaviour(skip_atten_char_rsp=True))])
    plug_in(med)
    med.run_until(5.0)
    assert med.evse.phase == Phase.MATCHED


def test_match_req_about_a_second_after_rsp_like_real_cars_is_accepted(make_medium):
    ev = EvSlac(EV_MAC)
    ev.timing.decision_delay = 1.0  # Ioniq, Model Y: ~0.8-1.0 s between RSP and MATCH.REQ
    med = make_medium(evs=[ev])
    plug_in(med)
    med.run_until(5.0)
    assert med.evse.phase == Phase.MATCHED


def test_join_timeout_after_tt_match_join(make_medium):
    med = make_medium(config=NO_RESTART, modem=SimModem(join_delay=1000.0), evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(2.0)
    assert med.evse.phase == Phase.JOINING and med.of_type(MatchSucceeded)
    med.run_until(20.0)
    assert [f.reason for f in failures(med)] == [FailureReason.JOIN_TIMEOUT]
    matched_at = med.frames(m.CM_SLAC_MATCH_CNF, "evse")
    assert matched_at and med.evse.phase == Phase.FAILED


def test_join_check_none_trusts_match_cnf(make_medium):
    med = make_medium(config=SlacConfig(join_check="none"), evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    assert med.evse.phase == Phase.MATCHED and not med.of_type(LinkEstablished)
    assert evse_frames(med, m.VS_NW_INFO_REQ) == []


# --- wrong, foreign, duplicate and late frames -------------------------------------------------
def test_wrong_run_id_in_sounds_and_match_req_is_ignored(make_medium):
    med = make_medium(config=NO_RESTART,
                      evs=[EvSlac(EV_MAC, EvMisbehaviour(wrong_run_id=True))])
    plug_in(med)
    med.run_until(30.0)
    assert evse_frames(med, m.CM_SLAC_MATCH_CNF) == []
    assert evse_frames(med, m.CM_ATTEN_CHAR_IND)[0].num_sounds == 10  # modem profiles by MAC
    assert not med.evs[0].result.matched
    assert [f.reason for f in failures(med)] == [FailureReason.NO_MATCH_REQ]


def test_ev_restarting_with_a_new_parm_req_after_abort_is_served(make_medium):
    ev = EvSlac(EV_MAC, EvMisbehaviour(wrong_run_id=True, restart_after_fail=True))
    med = make_medium(evs=[ev])
    plug_in(med)
    med.run_until(10.0)
    assert med.evse.phase == Phase.MATCHED and failures(med) == []
    assert len(evse_frames(med, m.CM_SLAC_PARM_CNF)) == 2
    assert med.of_type(MatchSucceeded)[0].run_id == ev.run_id


def test_new_parm_req_is_ignored_when_restart_is_off(make_medium):
    ev = EvSlac(EV_MAC, EvMisbehaviour(wrong_run_id=True, restart_after_fail=True))
    med = make_medium(config=NO_RESTART, evs=[ev])
    plug_in(med)
    med.run_until(20.0)
    assert len(evse_frames(med, m.CM_SLAC_PARM_CNF)) == 1
    assert med.evse.phase == Phase.FAILED


def test_garbage_and_duplicate_parm_reqs_give_one_attempt(make_medium):
    ev = EvSlac(EV_MAC, EvMisbehaviour(garbage_frames=5, extra_parm_reqs=2))
    med = make_medium(evs=[ev])
    plug_in(med)
    med.run_until(5.0)
    assert len(evse_frames(med, m.CM_SLAC_PARM_CNF)) == 3  # each copy answered, one attempt
    assert med.evse.phase == Phase.MATCHED and len(med.of_type(MatchSucceeded)) == 1


def test_frames_for_another_evse_or_from_a_non_modem_are_ignored(make_medium):
    med = make_medium()
    _ready(med)
    med.inject(_parm_req())
    other = bytes.fromhex("02000000abcd")
    med.inject(m.encode(m.slac_match_req(other, EV_MAC, RUN, other)))
    med.inject(m.encode(m.slac_match_req(m.BROADCAST_MAC, EV_MAC, RUN, EVSE_MAC)))
    med.inject(m.encode(m.start_atten_char_ind(EV_MAC, RUN, 10, 6)))
    # an EV pretending to be the modem cannot feed attenuation profiles
    med.inject(m.encode(m.atten_profile_ind(EVSE_MAC, EV2_MAC, EV_MAC, [1] * 58)))
    med.run_until(2.0)
    assert {ind.num_sounds for ind in evse_frames(med, m.CM_ATTEN_CHAR_IND)} == {0}
    assert evse_frames(med, m.CM_SLAC_MATCH_CNF) == []


def test_late_frames_after_match_are_ignored_and_repeated_match_req_is_answered(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    run = med.evs[0].run_id
    before = len(med.actions)
    med.inject(m.encode(m.start_atten_char_ind(EV_MAC, run, 10, 6)))
    med.inject(m.encode(m.atten_char_rsp(EVSE_MAC, EV_MAC, run)))
    med.inject(m.encode(m.slac_match_req(EVSE_MAC, EV_MAC, run, EVSE_MAC)))
    assert len(evse_frames(med, m.CM_SLAC_MATCH_CNF)) == 2
    assert len(med.actions) == before and med.evse.phase == Phase.MATCHED


def test_validate_req_is_answered_per_config(make_medium):
    for mode, code in (("not_required", m.VALIDATE_NOT_REQUIRED), ("failure", m.VALIDATE_FAILURE)):
        ev = EvSlac(EV_MAC, EvMisbehaviour(never_send_match_req=True))
        med = make_medium(config=SlacConfig(validate_mode=mode), evs=[ev])
        plug_in(med)
        med.run_until(2.0)
        med.inject(m.encode(m.validate_req(EVSE_MAC, EV_MAC)))
        (cnf,) = evse_frames(med, m.CM_VALIDATE_CNF)
        assert cnf.result == code and cnf.dst == EV_MAC


# --- cross-talk and attenuation ----------------------------------------------------------------
def test_crosstalk_neighbour_with_high_attenuation_cannot_take_the_match(make_medium):
    neighbour = EvSlac(EV2_MAC)
    modem = SimModem(attenuation_by_ev={EV2_MAC: 70})
    med = make_medium(modem=modem, evs=[EvSlac(EV_MAC), neighbour])
    plug_in(med)
    med.run_until(5.0)
    (succeeded,) = med.of_type(MatchSucceeded)
    assert succeeded.ev_mac == EV_MAC
    assert [i.dst for i in evse_frames(med, m.CM_ATTEN_CHAR_IND)] == [EV_MAC]
    assert not neighbour.result.matched


def test_crosstalk_neighbour_matching_elsewhere_does_not_disturb_our_attempt(make_medium):
    neighbour = EvSlac(EV2_MAC, EvMisbehaviour(never_send_match_req=True))
    med = make_medium(evs=[EvSlac(EV_MAC), neighbour])
    plug_in(med)
    med.run_until(5.0)
    assert len(evse_frames(med, m.CM_SLAC_PARM_CNF)) == 2  # both attempts tracked
    (succeeded,) = med.of_type(MatchSucceeded)
    assert succeeded.ev_mac == EV_MAC and med.evse.attempts == {}


def test_neighbour_parm_req_after_our_match_does_not_reset_it(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    assert med.evse.phase == Phase.MATCHED
    med.inject(_parm_req(EV2_MAC, RUN))  # a neighbour's car starts SLAC, heard via cross-talk
    assert med.evse.phase == Phase.MATCHED and med.evse.match.ev_mac == EV_MAC
    assert len(evse_frames(med, m.CM_SLAC_PARM_CNF)) == 1
    med.inject(_parm_req(EV_MAC, RUN))  # our own car restarting is served
    assert med.evse.phase == Phase.MATCHING


def test_match_req_with_another_evs_run_id_cannot_hijack(make_medium):
    med = make_medium()
    _ready(med)
    med.inject(_parm_req(EV_MAC, RUN))
    med.inject(m.encode(m.start_atten_char_ind(EV_MAC, RUN, 1, 6)))
    med.inject(m.encode(m.mnbc_sound_ind(EV_MAC, RUN, 0)))
    assert evse_frames(med, m.CM_ATTEN_CHAR_IND)
    med.inject(m.encode(m.slac_match_req(EVSE_MAC, EV2_MAC, RUN, EVSE_MAC)))  # RunID of EV1
    forged = m.slac_match_req(EVSE_MAC, EV2_MAC, RUN, EVSE_MAC)
    forged.body.pev_mac = EV_MAC
    med.inject(m.encode(forged))
    assert evse_frames(med, m.CM_SLAC_MATCH_CNF) == []
    med.inject(m.encode(m.slac_match_req(EVSE_MAC, EV_MAC, RUN, EVSE_MAC)))
    assert evse_frames(med, m.CM_SLAC_MATCH_CNF)[0].dst == EV_MAC


def test_single_ev_above_attenuation_threshold_is_not_offered_a_match(make_medium):
    med = make_medium(config=NO_RESTART, modem=SimModem(attenuation_db=55), evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    assert evse_frames(med, m.CM_ATTEN_CHAR_IND) == []
    assert [f.reason for f in failures(med)] == [FailureReason.ATTENUATION_TOO_HIGH]


def test_attenuation_is_averaged_over_profiles(make_medium):
    med = make_medium()
    _ready(med)
    med.inject(_parm_req())
    med.inject(m.encode(m.start_atten_char_ind(EV_MAC, RUN, 2, 6)))
    modem_mac = med.modem.mac
    med.inject(m.encode(m.atten_profile_ind(EVSE_MAC, modem_mac, EV_MAC, [10] * 29 + [20] * 29)))
    med.inject(m.encode(m.atten_profile_ind(EVSE_MAC, modem_mac, EV_MAC, [20] * 29 + [40] * 29)))
    (ind,) = evse_frames(med, m.CM_ATTEN_CHAR_IND)
    assert list(ind.aag) == [15] * 29 + [30] * 29 and ind.num_sounds == 2


def test_too_many_concurrent_attempts_are_refused(make_medium):
    med = make_medium(config=SlacConfig(max_concurrent_attempts=2))
    _ready(med)
    for i in range(4):
        med.inject(_parm_req(bytes.fromhex(f"0200000001{i:02x}"), RUN))
    assert len(med.evse.attempts) == 2 and len(evse_frames(med, m.CM_SLAC_PARM_CNF)) == 2


# --- link supervision and unplug ----------------------------------------------------------------
def test_link_loss_is_debounced_then_reported(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    med.evse_do(med.evse.modem_link(False, med.now))
    med.evse_do(med.evse.modem_link(True, med.now + 0.3))  # a blip
    med.run_until(8.0)
    assert not med.of_type(LinkLost) and med.evse.phase == Phase.MATCHED
    med.modem.drop_link()
    lost_at = med.now
    med.run_until(lost_at + 0.99)
    assert not med.of_type(LinkLost)
    med.run_until(lost_at + 3.0)
    assert med.of_type(LinkLost) == [LinkLost(EV_MAC)]
    assert failures(med)[-1].reason == FailureReason.LINK_LOST


def test_modem_that_stops_answering_counts_as_link_lost(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(5.0)
    assert med.evse.phase == Phase.MATCHED
    med.modem.mute = True
    med.run_until(med.now + 2.0)
    assert not med.of_type(LinkLost)  # silence shorter than debounce + 2 polls
    med.run_until(med.now + 2.0)
    assert med.of_type(LinkLost) == [LinkLost(EV_MAC)]


def test_unplug_during_matching_ends_cleanly(make_medium):
    med = make_medium(evs=[EvSlac(EV_MAC)])
    plug_in(med)
    med.run_until(0.3)
    assert med.evse.phase == Phase.MATCHING
    med.evse_do(med.evse.pilot_unplugged(med.now))
    assert failures(med)[-1] == MatchFailed(FailureReason.UNPLUGGED, "pilot left B/C/D", False)
    assert med.actions[-1] == SetPwmDuty(PWM_OFF_PERCENT)
    assert med.evse.phase == Phase.IDLE and med.evse.next_deadline() is None
    med.run_until(100.0)
    assert evse_frames(med, m.CM_SLAC_MATCH_CNF) == []


def test_parm_req_before_key_is_set_or_when_idle_is_ignored(make_medium):
    med = make_medium()
    assert med.evse.receive_frame(_parm_req(), 0.0) == []
    med.modem.set_key_silent, med.modem.set_key_failures = True, 1
    med.evse_do(med.evse.pilot_state_b(0.0))
    assert med.evse.phase == Phase.SETTING_KEY
    assert med.evse.receive_frame(_parm_req(), 0.1) == []


def test_actions_are_plain_values(make_medium):
    med = make_medium()
    actions = med.evse.pilot_state_b(0.0)
    assert isinstance(actions[0], SendFrame) and actions[0].name == "CM_SET_KEY.REQ"
    assert dataclasses.is_dataclass(actions[0])


def test_own_frames_echoed_back_are_ignored():
    evse = EvseSlac(SlacConfig(), EVSE_MAC)
    (send,) = evse.pilot_state_b(0.0)
    assert evse.receive_frame(send.frame, 0.0) == []
