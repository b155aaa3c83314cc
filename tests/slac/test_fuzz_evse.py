"""Hypothesis: arbitrary frames, pilot/link events and time jumps never crash the EVSE machine
and never leave an expired timer behind."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from secc.slac import messages as m
from secc.slac.config import SlacConfig
from secc.slac.evse import (
    EvseSlac,
    LinkEstablished,
    LinkLost,
    MatchFailed,
    MatchSucceeded,
    Phase,
    SendFrame,
    SetPilotState,
    SetPwmDuty,
)

EVSE = bytes.fromhex("02000000e5e1")
MODEM = bytes.fromhex("00b052a0c0de")
EVS = [bytes.fromhex("02000000ee01"), bytes.fromhex("02000000ee02")]
RUNS = [bytes(8), bytes.fromhex("0102030405060708")]
ACTION_TYPES = (SendFrame, SetPwmDuty, SetPilotState, MatchSucceeded, MatchFailed,
                LinkEstablished, LinkLost)

macs = st.sampled_from(EVS)
runs = st.sampled_from(RUNS)


@st.composite
def valid_frames(draw) -> bytes:
    ev, run = draw(macs), draw(runs)
    dst = draw(st.sampled_from([EVSE, m.BROADCAST_MAC, bytes.fromhex("020000000bad")]))
    choice = draw(st.integers(0, 8))
    mme = [
        lambda: m.slac_parm_req(m.BROADCAST_MAC, ev, run),
        lambda: m.start_atten_char_ind(ev, run, draw(st.integers(0, 12)), 6),
        lambda: m.mnbc_sound_ind(ev, run, draw(st.integers(0, 9))),
        lambda: m.atten_profile_ind(EVSE, MODEM, ev,
                                    draw(st.lists(st.integers(0, 255), max_size=60))),
        lambda: m.atten_char_rsp(dst, ev, run, draw(st.integers(0, 2))),
        lambda: m.validate_req(dst, ev),
        lambda: m.slac_match_req(dst, ev, run, draw(st.sampled_from([EVSE, bytes(6)]))),
        lambda: m.set_key_cnf(EVSE, MODEM, draw(st.integers(0, 2))),
        lambda: m.vs_nw_info_cnf(EVSE, MODEM, []),
    ][choice]()
    return m.encode(mme)


@st.composite
def mutated(draw) -> bytes:
    frame = bytearray(draw(valid_frames()))
    for _ in range(draw(st.integers(1, 4))):
        frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    return bytes(frame[:draw(st.integers(0, len(frame)))])


def happy_path(ev: bytes, run: bytes) -> list[bytes]:
    """One EV's complete, well-formed matching sequence (parts of it get interleaved)."""
    frames = [m.slac_parm_req(m.BROADCAST_MAC, ev, run), m.start_atten_char_ind(ev, run, 2, 6)]
    for count in (1, 0):
        frames += [m.mnbc_sound_ind(ev, run, count), m.atten_profile_ind(EVSE, MODEM, ev, [9] * 58)]
    frames += [m.atten_char_rsp(EVSE, ev, run), m.slac_match_req(EVSE, ev, run, EVSE),
               m.vs_nw_info_cnf(EVSE, MODEM, [])]
    return [m.encode(f) for f in frames]


operations = st.one_of(
    st.tuples(st.just("sequence"), st.tuples(macs, runs, st.integers(0, 9))),
    st.tuples(st.just("frame"), valid_frames()),
    st.tuples(st.just("frame"), mutated()),
    st.tuples(st.just("frame"), st.binary(max_size=80)),
    st.tuples(st.just("advance"), st.floats(0, 60, allow_nan=False)),
    st.tuples(st.just("plug"), st.none()),
    st.tuples(st.just("unplug"), st.none()),
    st.tuples(st.just("link"), st.booleans()),
)

configs = st.builds(
    SlacConfig,
    restart_on_parm_req=st.booleans(),
    failure_action=st.sampled_from(["pwm_off", "state_e", "state_f"]),
    join_check=st.sampled_from(["nw_info", "none"]),
    set_key_success_mode=st.sampled_from(["modem_compat_0x01", "accept_0x00_or_0x01"]),
    max_concurrent_attempts=st.integers(1, 3),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, st.lists(operations, max_size=40))
def test_any_input_sequence_keeps_the_machine_consistent(config, ops):
    evse = EvseSlac(config, EVSE)
    now = 0.0
    evse.pilot_state_b(now)
    evse.receive_frame(m.encode(m.set_key_cnf(EVSE, MODEM, 0x01)), now)
    for kind, arg in ops:
        if kind == "sequence":  # a prefix of a good EV, 10 ms apart
            ev, run, length = arg
            actions = []
            for frame in happy_path(ev, run)[:length]:
                now += 0.01
                actions += evse.handle_timer(now) + evse.receive_frame(frame, now)
        elif kind == "frame":
            actions = evse.receive_frame(arg, now)
        elif kind == "advance":
            now += arg
            actions = evse.handle_timer(now)
            deadline = evse.next_deadline()
            assert deadline is None or deadline > now, "an expired timer was left behind"
        elif kind == "plug":
            actions = evse.pilot_state_b(now)
        elif kind == "unplug":
            actions = evse.pilot_unplugged(now)
            assert evse.phase == Phase.IDLE and evse.next_deadline() is None
        else:
            actions = evse.modem_link(arg, now)
        event(evse.phase.value)
        assert all(isinstance(a, ACTION_TYPES) for a in actions)
        assert len(evse.attempts) <= config.max_concurrent_attempts
        if evse.phase in (Phase.IDLE, Phase.FAILED):
            assert evse.next_deadline() is None
        if evse.phase not in (Phase.IDLE, Phase.FAILED, Phase.MATCHED):
            assert evse.next_deadline() is not None, f"{evse.phase} would wait forever"
