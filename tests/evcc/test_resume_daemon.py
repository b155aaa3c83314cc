"""The simulated EV's pause and resume against the real ``secc run`` daemon over veth: after
SessionStop(Pause) the daemon sleeps (oscillator off, SDP closed, secc/v2g/sleep.py); the car
sleeps too, wakes the charger with its BCB toggle through the simulated board's control socket
(sim/evcc/wake.py), waits for the 5 % PWM and resumes with the old SessionID."""

from __future__ import annotations

import dataclasses
import time

import pytest

from sim.evcc import Battery, EvccConfig, Misbehaviour
from sim.evcc.runner import EvSessionConfig, run_ev_session
from sim.evcc.wake import ControlSocketLine, bcb_wake_up, is_hlc_duty, signals_hook, \
    wait_for_hlc_pwm
from tests.conformance.daemon import PAUSE_WAKE_UP, start_daemon

pytestmark = pytest.mark.netns

CAR_SLEEP_S = 0.3   # the car's sleep before its toggle (the daemon's own wake-up is 3 s)


@pytest.fixture
def iso2_ac_daemon(veth_link):
    daemon = start_daemon(veth_link, "iso2-ac", profile="field")
    try:
        yield daemon
    finally:
        daemon.stop()


def pausing_car(interface: str, line: ControlSocketLine, **changes) -> EvSessionConfig:
    config = EvSessionConfig(
        interface=interface, protocol="iso2", mode="ac", battery=Battery(max_iterations=2),
        evcc=EvccConfig(loop_interval=0.05, repeat_interval=0.05, seconds_per_iteration=60.0),
        misbehaviour=Misbehaviour(pause_instead_of_terminate=True), resume_after_pause=True,
        on_signals=signals_hook(line), sdp_retries=3)
    return dataclasses.replace(config, **changes)


async def plugged_in(line: ControlSocketLine) -> None:
    await line.set_pilot("B")
    assert await wait_for_hlc_pwm(line, 3.0), "no 5 % PWM at plug-in"


def test_iso2_car_sleeps_wakes_the_daemon_with_a_bcb_toggle_and_resumes_its_session(
        veth_link, iso2_ac_daemon):
    line = ControlSocketLine(iso2_ac_daemon.socket_path)
    seen: dict = {}
    toggle = bcb_wake_up(line, sleep_s=CAR_SLEEP_S,
                         on_toggle=lambda: seen.setdefault("toggled", True))

    async def wake_up() -> None:
        seen["duty_after_pause"] = await line.duty_percent()   # asleep: oscillator off
        await toggle()
        seen["duty_after_wake_up"] = await line.duty_percent()

    async def ev_main():
        await plugged_in(line)
        result = await run_ev_session(pausing_car(veth_link.ifnames["ev"], line,
                                                  wake_up=wake_up))
        seen["status"] = await line.ask({"cmd": "status"})
        return result

    result = veth_link.run_coroutine("ev", ev_main).result(60)
    log = iso2_ac_daemon.log_tail(400)
    assert result.ok, f"{result.failure}\n{log}"
    first, second = result.sessions
    assert first.paused and not first.resumed and first.loop_iterations == 2
    assert second.resumed and not second.paused
    assert second.session_id == first.session_id
    assert ("SessionSetup", "OK_OldSessionJoined") in second.response_codes
    assert second.loop_iterations == 2 and second.energy_wh > 0   # charging continues
    assert second.response_codes[-1] == ("SessionStop", "OK")
    # the charger slept until the car's toggle woke it (not its own 3 s wake-up time)
    assert seen["duty_after_pause"] is None and seen.get("toggled")
    assert is_hlc_duty(seen["duty_after_wake_up"])
    assert result.setup_seconds["sleep"] < PAUSE_WAKE_UP - 1.0
    assert "by=ev_bcb_toggle" in log and "by=evse_wake_up_time" not in log
    # the resumed session ended normally: safe state, the car back in B
    assert seen["status"]["cp_raw"] == "B" and not seen["status"]["contactors_closed"]
    assert iso2_ac_daemon.alive()


def test_iso2_car_toggling_right_after_the_pause_is_woken_and_resumes(veth_link,
                                                                      iso2_ac_daemon):
    """A hasty car: B, C and B again held 50 ms each (just over the board's 30 ms debounce)
    from the moment SessionStopRes(Pause) arrives. The toggle is not lost and the 5 % PWM it
    brings stays on through the old connection's end. (The narrower race, a toggle complete
    before the daemon takes the SessionPaused event: tests/session/test_daemon_sleep.py.)"""
    line = ControlSocketLine(iso2_ac_daemon.socket_path)
    hasty = bcb_wake_up(line, sleep_s=0, toggle_state_s=0.05, pwm_within_s=1.0)
    seen: dict = {}

    async def wake_up() -> None:
        await hasty()
        seen["woken_at"] = time.monotonic()

    async def ev_main():
        await plugged_in(line)
        return await run_ev_session(pausing_car(veth_link.ifnames["ev"], line,
                                                wake_up=wake_up))

    result = veth_link.run_coroutine("ev", ev_main).result(60)
    log = iso2_ac_daemon.log_tail(400)
    assert result.ok, f"{result.failure}\n{log}"
    first, second = result.sessions
    assert second.resumed and second.session_id == first.session_id
    assert second.loop_iterations == 2 and second.energy_wh > 0
    assert result.setup_seconds["sleep"] < 1.0 and "by=ev_bcb_toggle" in log
    assert "by=evse_wake_up_time" not in log


def test_iso2_car_that_does_not_wake_the_daemon_finds_it_asleep(veth_link, iso2_ac_daemon):
    """The old behaviour of the simulator (reconnect straight after the pause) against the
    sleeping daemon: SDP goes unanswered, no resume."""
    line = ControlSocketLine(iso2_ac_daemon.socket_path)

    async def ev_main():
        await plugged_in(line)
        result = await run_ev_session(pausing_car(veth_link.ifnames["ev"], line, wake_up=None,
                                                  sdp_retries=2))
        return result, await line.duty_percent()

    result, duty = veth_link.run_coroutine("ev", ev_main).result(60)
    assert result.sessions[0].paused and len(result.sessions) == 1
    assert result.failure is not None and result.failure.step == "SDP", result.failure
    assert duty is None   # still asleep: oscillator off


def test_iso20_dc_car_pauses_sleeps_wakes_the_daemon_and_resumes_over_tls_13(veth_link,
                                                                             test_pki, tmp_path):
    files = test_pki.write_secc_files(tmp_path / "certs")
    vehicle = test_pki.write_vehicle_files(tmp_path / "vehicle")   # -20: mutual TLS
    daemon = start_daemon(veth_link, "iso20-dc", certs=str(tmp_path / "certs"))
    line = ControlSocketLine(daemon.socket_path)
    seen: dict = {}
    toggle = bcb_wake_up(line, sleep_s=CAR_SLEEP_S)

    async def wake_up() -> None:
        seen["duty_after_pause"] = await line.duty_percent()
        await toggle()

    async def ev_main():
        await plugged_in(line)
        return await run_ev_session(dataclasses.replace(
            pausing_car(veth_link.ifnames["ev"], line, wake_up=wake_up),
            protocol="iso20", mode="dc", tls=True, v2g_root=files["v2g_root"],
            vehicle_tls=(vehicle["chain"], vehicle["key"])))

    try:
        result = veth_link.run_coroutine("ev", ev_main).result(60)
        log = daemon.log_tail(400)
        assert daemon.alive()
    finally:
        daemon.stop()
    assert result.ok, f"{result.failure}\n{log}"
    assert result.protocol == "iso20" and result.tls_version == "TLSv1.3"
    first, second = result.sessions
    assert first.paused and second.resumed and second.session_id == first.session_id
    assert ("SessionSetup", "OK_OldSessionJoined") in second.response_codes
    assert second.loop_iterations == 2 and second.energy_wh > 0
    assert seen["duty_after_pause"] is None, "oscillator still on while the -20 car sleeps"
    assert "by=ev_bcb_toggle" in log
