"""The PLC side: interface and carrier, the modem's firmware, its CM_SET_KEY convention.

Talks to the local modem the way the daemon does (raw HomePlug frames on ``[plc].interface``,
addressed to ``[slac].modem_mac``); needs CAP_NET_RAW like the daemon. The CM_SET_KEY probe
gives the modem a fresh random NMK, exactly what the daemon does at every plug-in; it is
skipped while the bus says a session is in progress (and with ``--no-set-key``).
"""

from __future__ import annotations

import asyncio

from secc.config import BoardConfig
from secc.doctor import Finding, Status
from secc.slac import messages as m
from secc.slac.evse import set_key_result_hint, set_key_result_ok

SET_KEY_CODES = {0x00: "HomePlug GP success (0x00)", 0x01: "QCA success (0x01)"}


def check_interface(config: BoardConfig) -> tuple[Finding, bool]:
    """(finding, usable): the interface exists, is up and has carrier."""
    from secc.slac.driver import InterfaceError, interface_info

    iface = config.plc.interface
    try:
        info = interface_info(iface, bring_up=False)
    except InterfaceError:
        return Finding("plc.interface", Status.FAIL, f"PLC interface {iface} does not exist",
                       "set [plc].interface to the modem's interface (`ip link` lists them); "
                       "for a QCA7000/7005 on SPI, check that the qcaspi driver is loaded "
                       "(device tree overlay, `dmesg | grep qca`)"), False
    details = {"mac": m.mac_str(info.mac), "mtu": info.mtu, "up": info.up,
               "carrier": info.carrier}
    if not info.up:
        return Finding("plc.interface", Status.FAIL, f"{iface} is down", f"ip link set {iface} "
                       "up (the daemon brings it up itself at start)", details), False
    if not info.carrier:
        return Finding("plc.interface", Status.FAIL, f"{iface} is up but has no carrier: the "
                       "modem is not powered, not flashed, or its SPI link is broken",
                       "check the modem's supply and reset line, `dmesg | grep qca` for SPI "
                       "errors, and that the modem has firmware and a PIB", details), False
    return Finding("plc.interface", Status.OK, f"{iface} up with carrier, MTU {info.mtu}",
                   details=details), True


async def check_modem(config: BoardConfig, set_key: bool) -> list[Finding]:
    from secc.slac.driver import SlacDriver

    slac = config.slac
    driver = SlacDriver(config.plc.interface, slac, carrier_poll_interval=3600)
    try:
        await driver.open()
    except PermissionError:
        return [Finding("plc.modem", Status.FAIL, "cannot open a raw socket on "
                        f"{config.plc.interface}", "run secc doctor as root (or with "
                        "CAP_NET_RAW, as the daemon's unit grants)")]
    findings: list[Finding] = []
    try:
        try:
            chip, firmware = await driver.modem_firmware(timeout=1.0)
        except (TimeoutError, asyncio.TimeoutError):
            return [Finding("plc.modem", Status.FAIL, f"the modem at {slac.modem_mac} does not "
                            "answer VS_SW_VER.REQ", "check [slac].modem_mac (QCA's local "
                            "address 00:b0:52:00:00:01 reaches the attached modem), power "
                            "and firmware; a modem in boot loader mode answers nothing")]
        capable = chip == m.DEVICE_CLASSES[0x22] and "7420" not in firmware
        findings.append(Finding(
            "plc.modem", Status.OK if capable else Status.WARN,
            f"modem {chip}, firmware {firmware}", "" if capable else
            "a QCA7420 reports no attenuation profiles: SLAC matches without them; use a "
            "QCA7000/7005 for an EVSE", {"chip": chip, "firmware": firmware}))
        if set_key:
            findings.append(await _probe_set_key(driver, config))
    finally:
        await driver.close()
    return findings


async def _probe_set_key(driver, config: BoardConfig) -> Finding:
    mode = config.slac.set_key_success_mode
    try:
        cnf = await driver.set_key_probe(timeout=config.slac.set_key_timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return Finding("slac.set_key", Status.FAIL, "the modem does not answer CM_SET_KEY.REQ "
                       "(it answered VS_SW_VER): SLAC cannot set a network key",
                       "update the modem firmware / PIB; check that no other process (a "
                       "second daemon, plc-utils) manages the modem")
    result = cnf.result
    code = SET_KEY_CODES.get(result, f"0x{result:02X}")
    details = {"result": f"0x{result:02X}", "set_key_success_mode": mode}
    if set_key_result_ok(result, mode):
        return Finding("slac.set_key", Status.OK, f"CM_SET_KEY.CNF result {code} matches "
                       f'[slac].set_key_success_mode = "{mode}"', details=details)
    return Finding("slac.set_key", Status.FAIL, f"CM_SET_KEY.CNF result {code} is a failure "
                   f'under [slac].set_key_success_mode = "{mode}": every SLAC attempt fails '
                   "at CM_SET_KEY", set_key_result_hint(result, mode), details)
