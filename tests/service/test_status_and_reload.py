"""The systemd status line and the SIGHUP reload plan (pure functions)."""

from __future__ import annotations

import dataclasses

from secc.config import loads_board_config
from secc.service import StatusLine, merged_config, reload_plan

BOARD = """
[board]
name = "r"
evse_id = "DE*PNX*E00001*1"
max_current_a = {current}
[plc]
interface = "{iface}"
[slac]
tt_evse_slac_init = {slac_init}
[v2g]
quirks = {quirks}
[logging]
level = "{level}"
"""


def config(current=200, iface="eth1", slac_init=40, quirks="[]", level="INFO"):
    return loads_board_config(BOARD.format(current=current, iface=iface, slac_init=slac_init,
                                           quirks=quirks, level=level))


def test_status_lines_a_person_reads():
    line = StatusLine(evse=1, output="dc", plc=True, csms="connected")
    assert line.text() == "idle, PLC link up, CSMS connected"
    line.pilot = "B"
    line.on_event("SessionStarted", {"protocol": "iso2", "session_id": "ab"})
    assert line.text() == "session EVSE 1 ISO-2, not charging, PLC link up, CSMS connected"
    line.on_event("ChargingStarted", {})
    line.power_w = 42_300.0
    assert line.text() == "charging EVSE 1 ISO-2 DC 42 kW"
    line.on_event("SessionStopped", {})
    line.pilot, line.plc, line.csms = "A", False, "offline"
    assert line.text() == "idle, PLC link DOWN, CSMS offline"
    assert StatusLine(pilot="F").text() == "EVSE 1 faulted (pilot F)"


def test_reload_applies_safe_changes_and_refuses_the_rest_by_name():
    old = config()
    new = config(current=150, iface="eth2", slac_init=20, quirks='["relaxed_cp_state"]',
                 level="DEBUG")
    plan = reload_plan(old, new)
    assert set(plan.apply) == {"[board].max_current_a", "[slac].tt_evse_slac_init",
                               "[v2g].quirks", "[logging].level"}
    assert plan.refuse == ("[plc].interface changed: not applied until restart (the PLC "
                           "interface and its sockets are opened at start; systemctl restart "
                           "pysecc-secc@<board>)",)
    merged = merged_config(old, new, plan)
    assert merged.board.max_current_a == 150 and merged.plc.interface == "eth1"
    assert merged.v2g.quirks == ("relaxed_cp_state",) and merged.logging.level == "DEBUG"
    assert merged == dataclasses.replace(new, plc=old.plc)


def test_a_rating_is_never_raised_above_what_the_board_started_with():
    started = config(current=200)
    lowered = merged_config(started, config(current=100),
                            reload_plan(started, config(current=100), started))
    plan = reload_plan(lowered, config(current=180), started)     # back up, still <= 200
    assert plan.apply == ("[board].max_current_a",) and not plan.refuse
    plan = reload_plan(lowered, config(current=250), started)
    assert plan.apply == ()
    assert "raised to 250: not applied, the board enforces the 200" in plan.refuse[0]


def test_applied_reload_reaches_the_next_session_not_the_running_one():
    from secc.boards import board_from_config
    from secc.daemon import SeccDaemon

    old = config(current=200)
    daemon = SeccDaemon(old, board_from_config(old, realtime=False), "lo")
    running = daemon.settings                       # what a session started now holds
    new = config(current=120, slac_init=20)
    daemon.apply_config(merged_config(old, new, reload_plan(old, new)))
    assert daemon.settings.limits.max_current == 120
    assert daemon.config.slac.tt_evse_slac_init == 20
    assert running.limits.max_current == 200            # the running session keeps its own
