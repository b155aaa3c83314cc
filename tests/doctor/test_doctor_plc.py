"""``secc doctor`` against the simulated modem on a real PLC-side interface (veth in a network
namespace): each fault is the modem's behaviour, the finding and its fix are checked."""

from __future__ import annotations

import threading

import pytest

from secc.config import loads_board_config
from secc.doctor import Status, run_doctor
from sim.modem import SimModem, run_modem

pytestmark = pytest.mark.netns


def board(iface: str, mode: str = "modem_compat_0x01"):
    return loads_board_config(f"""
[board]
name = "doctor"
evse_id = "DE*PNX*E00001*1"
[plc]
interface = "{iface}"
[slac]
set_key_success_mode = "{mode}"
set_key_timeout = 0.3
[v2g]
tls = "none"
protocols = ["iso2", "din"]
""")


def diagnose(link, modem: SimModem | None, config) -> dict:
    """Run the doctor in the SECC namespace, with ``modem`` serving that interface."""
    stop, ready = threading.Event(), threading.Event()
    served = None
    if modem is not None:
        served = link.run_coroutine("secc", lambda: run_modem(
            link.ifnames["secc"], modem, stop.is_set, timeout=30, on_ready=ready.set))
        assert ready.wait(5), "modem simulator did not start"
    try:
        findings = link.run_coroutine("secc", lambda: run_doctor(config)).result(timeout=20)
    finally:
        stop.set()
        if served is not None:
            served.result(timeout=5)
    return {f.check: f for f in findings}


def test_healthy_modem_firmware_and_set_key_convention(veth_link):
    found = diagnose(veth_link, SimModem(), board(veth_link.ifnames["secc"]))
    assert found["plc.interface"].status is Status.OK
    assert found["plc.modem"].status is Status.OK
    assert "MAC-QCA7000-1.2.5" in found["plc.modem"].summary
    assert found["slac.set_key"].status is Status.OK
    assert found["certs.directory"].status is Status.SKIP


def test_modem_answering_0x00_names_the_setting(veth_link):
    """A modem following HomePlug GP (0x00 = success) against the QCA default."""
    found = diagnose(veth_link, SimModem(success_result=0x00), board(veth_link.ifnames["secc"]))
    finding = found["slac.set_key"]
    assert finding.status is Status.FAIL
    assert finding.details == {"result": "0x00", "set_key_success_mode": "modem_compat_0x01"}
    assert "[slac].set_key_success_mode" in finding.fix
    assert '"accept_0x00_or_0x01"' in finding.fix
    # the same modem with the setting the finding proposes is healthy
    found = diagnose(veth_link, SimModem(success_result=0x00),
                     board(veth_link.ifnames["secc"], "accept_0x00_or_0x01"))
    assert found["slac.set_key"].status is Status.OK


def test_silent_modem_and_qca7420(veth_link):
    found = diagnose(veth_link, SimModem(mute=True), board(veth_link.ifnames["secc"]))
    assert found["plc.modem"].status is Status.FAIL
    assert "does not answer VS_SW_VER.REQ" in found["plc.modem"].summary
    assert "[slac].modem_mac" in found["plc.modem"].fix
    assert "slac.set_key" not in found  # nothing to probe without a modem

    found = diagnose(veth_link, SimModem(firmware="MAC-QCA7420-1.4.0", device_class=0x20),
                     board(veth_link.ifnames["secc"]))
    assert found["plc.modem"].status is Status.WARN
    assert "QCA7420" in found["plc.modem"].summary


def test_missing_and_carrierless_interface(veth_link):
    found = diagnose(veth_link, None, board("nosuch0"))
    assert found["plc.interface"].status is Status.FAIL
    assert "[plc].interface" in found["plc.interface"].fix
    assert "plc.modem" not in found

    from pyroute2 import NetNS

    with NetNS(veth_link.namespaces["ev"]) as ns:  # the other end goes: no carrier here
        ns.link("set", index=veth_link.ifindex("ev"), state="down")
    found = diagnose(veth_link, None, board(veth_link.ifnames["secc"]))
    assert found["plc.interface"].status is Status.FAIL
    assert "no carrier" in found["plc.interface"].summary

