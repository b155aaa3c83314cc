"""ISO 15118-3 SLAC, EVSE side, over a HomePlug Green PHY (QCA700x) modem.

Modules:

* :mod:`secc.slac.messages`  MME layouts (construct), builders, NID derivation, ``MmeError``;
* :mod:`secc.slac.evse`      the sans-I/O EVSE state machine (:class:`EvseSlac`) and its actions;
* :mod:`secc.slac.driver`    asyncio driver on a raw AF_PACKET socket (:class:`SlacDriver`);
* :mod:`secc.slac.config`    :class:`SlacConfig`, the board file's ``[slac]`` table.

Wiring into the daemon (one :class:`SlacDriver` per connector)::

    driver = SlacDriver(board.plc.interface, board.slac, on_action=handle)
    await driver.open()
    # HAL events -> SLAC
    pilot enters B (from A)        -> driver.pilot_state_b()
    pilot leaves B/C/D (unplug)    -> driver.pilot_unplugged()   # not while SLAC holds E/F
    # SLAC actions -> HAL / session layer (``handle(action)``)
    SetPwmDuty(percent)            -> pilot PWM (5 % HLC; 100 % = X1, oscillator off)
    SetPilotState("E" | "F")       -> force E/F (T_step_EF restart); SLAC ends it with SetPwmDuty
    MatchSucceeded(ev_mac, nid, nmk, attenuation_db, ...) -> start SDP on the link-local address
                                      (``await driver.link_local()``)
    LinkEstablished(ev_mac, ...)   -> the EV's modem joined (VS_NW_INFO): PLC link usable
    LinkLost(ev_mac)               -> stop the V2G session (a MatchFailed(LINK_LOST) follows)
    MatchFailed(reason, detail, retrying) -> report; if not retrying: basic charging or error
    await driver.close()

Diagnostics: ``await driver.modem_firmware()`` (VS_SW_VER: chip + firmware, warns for
QCA7420-class modems that cannot be EVSE-side), ``await driver.vendor_request(VS_RS_DEV_REQ)``.
"""

import importlib

# Loaded on first use (PEP 562): the board config reads ``secc.slac.config`` on every charger,
# but a board that starts at SDP (no SLAC) never loads the MME layouts (construct, ~4 MB).
_HOME: dict[str, str] = {
    "SlacConfig": "secc.slac.config",
    **dict.fromkeys(("Action", "EvseSlac", "FailureReason", "LinkEstablished", "LinkLost",
                     "MatchFailed", "MatchSucceeded", "Phase", "SendFrame", "SetPilotState",
                     "SetPwmDuty"), "secc.slac.evse"),
    "MmeError": "secc.slac.messages",
}


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "Action", "EvseSlac", "FailureReason", "LinkEstablished", "LinkLost", "MatchFailed",
    "MatchSucceeded", "MmeError", "Phase", "SendFrame", "SetPilotState", "SetPwmDuty",
    "SlacConfig",
]
