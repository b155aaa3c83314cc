"""End to end over the simulated PLC link (two network namespaces joined by veth).

EV simulator in the ``ev`` namespace; SECC driver (or the ``secc slac`` CLI) and the
simulated modem in the ``secc`` namespace. Real raw sockets, real timers.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from secc.slac import messages as m
from secc.slac.config import SlacConfig
from secc.slac.driver import SlacDriver
from secc.slac.evse import LinkEstablished, MatchFailed, MatchSucceeded, SetPwmDuty
from sim.ev_slac import EvMisbehaviour, run_ev
from sim.modem import SimModem, run_modem
from sim.testing.waits import wait_until_sync

pytestmark = pytest.mark.netns
REPO = Path(__file__).resolve().parents[2]


class ModemThread:
    """The simulated modem serving the SECC's interface until the test ends."""

    def __init__(self, link, modem: SimModem) -> None:
        self.modem = modem
        self.stop = threading.Event()
        ready = threading.Event()
        self.future = link.run_coroutine("secc", lambda: run_modem(
            link.ifnames["secc"], modem, self.stop.is_set, timeout=60, on_ready=ready.set))
        if not ready.wait(5):
            self.future.result(timeout=1)  # re-raises the simulator's error, if any
            raise AssertionError("modem simulator did not start")

    def close(self) -> SimModem:
        self.stop.set()
        return self.future.result(timeout=5)


def pwm_watch() -> tuple[threading.Event, object]:
    """An event set when the SECC switches the 5 % PWM on (the cue for a car to start SLAC)."""
    on = threading.Event()

    def on_action(action) -> None:
        if isinstance(action, SetPwmDuty) and action.percent < 100:
            on.set()

    return on, on_action


def wait_for_pwm_line(proc, timeout: float = 15.0) -> list[str]:
    """Read the CLI's stderr until it reports the PWM action (the cue for the EV)."""
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "SetPwmDuty" in line:
            return lines
    raise AssertionError("the CLI never switched the PWM on:\n" + "".join(lines))


def test_driver_matches_simulated_ev_over_veth(veth_link):
    modem = ModemThread(veth_link, SimModem(attenuation_db=17))
    pwm_on, on_action = pwm_watch()

    async def secc():
        async with SlacDriver(veth_link.ifnames["secc"], SlacConfig(), on_action) as driver:
            chip, firmware = await driver.modem_firmware()
            driver.pilot_state_b()
            succeeded = await driver.wait_for(MatchSucceeded, MatchFailed, timeout=10)
            link = await driver.wait_for(LinkEstablished, MatchFailed, timeout=5)
            return chip, firmware, succeeded, link, await driver.link_local()

    try:
        secc_future = veth_link.run_coroutine("secc", secc)
        assert pwm_on.wait(10), "SET_KEY never confirmed"
        ev = veth_link.run_coroutine("ev", lambda: run_ev(veth_link.ifnames["ev"], timeout=10))
        chip, firmware, succeeded, link, link_local = secc_future.result(timeout=20)
        ev_result = ev.result(timeout=10)
    finally:
        served = modem.close()
    assert chip == "QCA7000/QCA7005" and firmware.startswith("MAC-QCA7000")
    assert isinstance(succeeded, MatchSucceeded), succeeded
    assert succeeded.ev_mac == veth_link.mac("ev") and succeeded.attenuation_db == 17.0
    assert isinstance(link, LinkEstablished)
    assert ev_result.matched and ev_result.evse_mac == veth_link.mac("secc")
    assert (ev_result.nid, ev_result.nmk) == (succeeded.nid, succeeded.nmk) == \
        (served.nid, served.nmk)
    assert succeeded.parm_req_to_match_cnf_s < 2.0
    assert link_local == veth_link.link_local("secc")


def test_driver_reports_link_lost_when_the_modem_interface_goes_away(veth_link):
    from pyroute2 import NetNS

    from secc.slac.evse import FailureReason, LinkLost

    modem = ModemThread(veth_link, SimModem())
    config = SlacConfig(link_loss_debounce=0.5, failure_action="pwm_off")
    matched = threading.Event()
    pwm_on, on_action = pwm_watch()

    async def secc():
        async with SlacDriver(veth_link.ifnames["secc"], config, on_action,
                              carrier_poll_interval=0.1) as driver:
            driver.pilot_state_b()
            await driver.wait_for(LinkEstablished, MatchFailed, timeout=10)
            matched.set()
            lost = await driver.wait_for(LinkLost, timeout=10)
            failed = await driver.wait_for(MatchFailed, timeout=5)
            return lost, failed

    try:
        secc_future = veth_link.run_coroutine("secc", secc)
        assert pwm_on.wait(10), "SET_KEY never confirmed"
        veth_link.run_coroutine("ev", lambda: run_ev(veth_link.ifnames["ev"], timeout=10))
        assert matched.wait(10), secc_future.exception(timeout=1) if secc_future.done() else ""
        with NetNS(veth_link.namespaces["secc"]) as ns:  # the modem's Ethernet goes down
            ns.link("set", index=veth_link.ifindex("secc"), state="down")
        lost, failed = secc_future.result(timeout=15)
    finally:
        modem.close()
    assert lost == LinkLost(veth_link.mac("ev"))
    assert failed.reason == FailureReason.LINK_LOST and not failed.retrying


def test_driver_vendor_diagnostics_read_firmware_and_reset_the_modem(veth_link):
    modem = ModemThread(veth_link, SimModem(firmware="MAC-QCA7420-1.4.0", device_class=0x20))

    async def secc():
        async with SlacDriver(veth_link.ifnames["secc"]) as driver:
            chip, firmware = await driver.modem_firmware()
            reset = await driver.vendor_request(m.VS_RS_DEV_REQ)
            info = await driver.vendor_request(m.VS_NW_INFO_REQ)
            return chip, firmware, reset, info

    try:
        chip, firmware, reset, info = veth_link.run_coroutine("secc", secc).result(timeout=10)
    finally:
        served = modem.close()
    assert (chip, firmware) == ("QCA7420", "MAC-QCA7420-1.4.0")  # logged as not EVSE-capable
    assert reset.mmtype == m.VS_RS_DEV_CNF and reset.status == 0
    assert info.num_networks == 0  # the reset modem has no network key
    assert served.answers == {"VS_SW_VER.CNF": 1, "VS_RS_DEV.CNF": 1, "VS_NW_INFO.CNF": 1}


def test_driver_retries_set_key_and_survives_garbage_and_wrong_run_id(veth_link):
    modem = ModemThread(veth_link, SimModem(set_key_failures=1))
    config = SlacConfig(set_key_timeout=0.3)
    pwm_on, on_action = pwm_watch()

    async def secc():
        async with SlacDriver(veth_link.ifnames["secc"], config, on_action) as driver:
            driver.pilot_state_b()
            await driver.wait_for(SetPwmDuty, timeout=5)
            return await driver.wait_for(MatchSucceeded, MatchFailed, timeout=15)

    misbehaving = EvMisbehaviour(garbage_frames=3, extra_parm_reqs=1, wrong_run_id=True,
                                 restart_after_fail=True)
    try:
        secc_future = veth_link.run_coroutine("secc", secc)
        assert pwm_on.wait(10), "SET_KEY never confirmed"
        ev = veth_link.run_coroutine("ev", lambda: run_ev(veth_link.ifnames["ev"], misbehaving,
                                                          timeout=15))
        succeeded = secc_future.result(timeout=20)
        ev_result = ev.result(timeout=10)
    finally:
        served = modem.close()
    assert served.answers.get("CM_SET_KEY.REQ(failed)") == 1
    assert isinstance(succeeded, MatchSucceeded), succeeded
    assert ev_result.matched and succeeded.run_id == ev_result.run_id


def board_file(tmp_path, iface: str) -> str:
    """The shipped simulated board, on our veth end, with a [slac] override."""
    text = (REPO / "board_configs" / "sim.toml").read_text()
    text = re.sub(r'(?m)^interface = .*$', f'interface = "{iface}"', text)
    text = text.replace("[slac]\n", "[slac]\nhlc_pwm_duty_percent = 6\n", 1)
    path = tmp_path / "board.toml"
    path.write_text(text)
    return str(path)


def test_cli_secc_slac_with_board_file_reports_the_match(veth_link, tmp_path):
    modem = ModemThread(veth_link, SimModem(attenuation_db=23))
    board = board_file(tmp_path, veth_link.ifnames["secc"])
    proc = veth_link.popen("secc", [sys.executable, "-m", "secc", "--log-level", "WARNING",
                                    "slac", "--board", board, "--json", "--timeout", "15"],
                           stdout=-1, stderr=-1, text=True)
    try:
        early = wait_for_pwm_line(proc)  # the car starts SLAC once it sees 5 % PWM
        ev = veth_link.run_coroutine("ev", lambda: run_ev(veth_link.ifnames["ev"], timeout=10))
        out, err = proc.communicate(timeout=25)
        err = "".join(early) + err
        assert ev.result(timeout=5).matched
    finally:
        if proc.poll() is None:
            proc.kill()
        modem.close()
    assert proc.returncode == 0, err
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome["result"] == "matched"
    assert outcome["ev_mac"] == m.mac_str(veth_link.mac("ev"))
    assert outcome["attenuation_db"] == 23.0 and outcome["profiles"] == 10
    assert outcome["modem"].startswith("QCA7000/QCA7005")
    assert outcome["link_local"].startswith("fe80:")
    assert "SetPwmDuty(percent=6.0)" in err  # [slac] of the board file applied


def test_cli_secc_slac_fails_cleanly_without_a_modem(veth_link):
    proc = veth_link.popen("secc", [sys.executable, "-m", "secc", "--log-level", "ERROR", "slac",
                                    "--iface", veth_link.ifnames["secc"], "--json",
                                    "--no-modem-info", "--timeout", "10"],
                           stdout=-1, stderr=-1, text=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome == {**outcome, "result": "failed", "reason": "set_key_failed"}


def test_cli_capture_records_slac_and_ipv6_only(veth_link, tmp_path):
    from scapy.utils import rdpcap

    out = tmp_path / "plc.pcap"
    proc = veth_link.popen("secc", [sys.executable, "-m", "secc", "capture", "--iface",
                                    veth_link.ifnames["secc"], "--out", str(out),
                                    "--duration", "20"], stdout=-1, stderr=-1, text=True)
    try:
        line = proc.stdout.readline()
        assert "capturing" in line, proc.stderr.read()
        ev_mac = veth_link.mac("ev")
        tx = veth_link.socket("ev", socket.AF_PACKET, socket.SOCK_RAW, 0)
        slac = m.encode(m.slac_parm_req(m.BROADCAST_MAC, ev_mac, bytes(8)))
        sdp = b"\x01\xfe\x90\x00\x00\x00\x00\x02\x10\x00"
        with tx:
            tx.bind((veth_link.ifnames["ev"], 0))
            tx.send(m.BROADCAST_MAC + ev_mac + b"\x08\x06" + bytes(46))  # ARP-typed: skipped
            tx.send(slac)
        udp = veth_link.socket("ev", socket.AF_INET6, socket.SOCK_DGRAM)
        with udp:
            udp.sendto(sdp, ("ff02::1", 15118, 0, veth_link.ifindex("ev")))
        # the capture writes each packet at once (sync): wait until both are in the file
        wait_until_sync(lambda: out.exists() and slac[14:] in out.read_bytes()
                        and sdp in out.read_bytes(), 10, "both packets in the capture")
        proc.terminate()  # SIGTERM ends the capture cleanly
        out_text, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "packets written" in out_text
    packets = rdpcap(str(out))
    kinds = {int.from_bytes(bytes(p)[12:14], "big") for p in packets}
    assert kinds == {0x86DD, 0x88E1}  # the ARP-typed frame was left out
    assert any(bytes(p)[-10:] == b"\x01\xfe\x90\x00\x00\x00\x00\x02\x10\x00" for p in packets)
