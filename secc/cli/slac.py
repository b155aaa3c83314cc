"""``secc slac --iface IF [--board FILE]``: one EVSE-side SLAC matching attempt, as the daemon
runs it after state B: new NMK on the modem, wait for the EV's CM_SLAC_PARM.REQ, match, wait
for the EV's modem to join; prints the outcome (EV MAC, NID, attenuation, timings).

For bench work with a car or an EV simulator on the line. There is no control pilot here:
the PWM/pilot actions the daemon would apply are printed instead. The attempt does not
retry through state E/F (``failure_action`` is forced to ``pwm_off``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time

from secc.common.logs import layer_logger
from secc.slac.config import SlacConfig

log = layer_logger("cli")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "slac", help="run one EVSE-side SLAC match on a PLC interface and print the outcome")
    parser.add_argument("--iface", help="PLC interface (default: [plc].interface of --board)")
    parser.add_argument("--board", help="board TOML file; its [slac] table sets the timers")
    parser.add_argument("--timeout", type=float, default=None,
                        help="give up after this many seconds (default: TT_EVSE_SLAC_init "
                             "+ matching + join)")
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON line")
    parser.add_argument("--no-modem-info", action="store_true",
                        help="skip the VS_SW_VER firmware query")
    parser.set_defaults(handler=run)


def load_config(board: str | None) -> tuple[SlacConfig, str | None]:
    """SlacConfig (and the PLC interface) from a board file, or the defaults."""
    if not board:
        return SlacConfig(), None
    from secc.config import ConfigError, load_board_config

    try:
        config = load_board_config(board)
    except ConfigError as exc:
        raise SystemExit(f"secc slac: invalid board file:\n{exc}") from exc
    return config.slac, config.plc.interface


def run(args) -> int:
    config, board_iface = load_config(args.board)
    iface = args.iface or board_iface
    if not iface:
        print("secc slac: --iface or --board is required", file=sys.stderr)
        return 2
    config = dataclasses.replace(config, failure_action="pwm_off")
    timeout = args.timeout or (config.tt_evse_slac_init + config.tt_evse_match_session
                               + config.tt_match_join + 5)
    outcome = asyncio.run(match_once(iface, config, timeout, not args.no_modem_info))
    if args.json:
        print(json.dumps(outcome, separators=(",", ":")), flush=True)
    else:
        for key, value in outcome.items():
            print(f"{key:>24}: {value}", flush=True)
    return 0 if outcome["result"] == "matched" else 1


async def match_once(iface: str, config: SlacConfig, timeout: float,
                     modem_info: bool) -> dict[str, object]:
    from secc.slac import messages as m     # construct: loaded by this command only
    from secc.slac.driver import InterfaceError, SlacDriver
    from secc.slac.evse import (
        LinkEstablished,
        MatchFailed,
        MatchSucceeded,
        SetPilotState,
        SetPwmDuty,
    )

    def show(action) -> None:
        if isinstance(action, (SetPwmDuty, SetPilotState)):
            print(f"pilot action for the daemon: {action}", file=sys.stderr, flush=True)

    outcome: dict[str, object] = {"iface": iface}
    started = time.monotonic()
    try:
        async with SlacDriver(iface, config, on_action=show) as driver:
            assert driver.info is not None
            outcome["evse_mac"] = m.mac_str(driver.info.mac)
            outcome["mtu"] = driver.info.mtu
            if modem_info:
                try:
                    chip, firmware = await driver.modem_firmware(timeout=0.5)
                    outcome["modem"] = f"{chip} {firmware}"
                except TimeoutError:
                    outcome["modem"] = "no answer to VS_SW_VER.REQ"
            driver.pilot_state_b()
            remaining = max(0.1, timeout - (time.monotonic() - started))
            try:
                result = await driver.wait_for(MatchSucceeded, MatchFailed, timeout=remaining)
            except TimeoutError:
                return {**outcome, "result": "failed", "reason": "timeout"}
            if isinstance(result, MatchFailed):
                return {**outcome, "result": "failed", "reason": result.reason.value,
                        "detail": result.detail}
            outcome.update({
                "result": "matched",
                "ev_mac": m.mac_str(result.ev_mac),
                "run_id": result.run_id.hex(),
                "nid": result.nid.hex(),
                "attenuation_db": None if result.attenuation_db is None
                else round(result.attenuation_db, 1),
                "profiles": result.num_profiles,
                "parm_req_to_match_cnf_ms": round(result.parm_req_to_match_cnf_s * 1000, 1),
                "state_b_to_match_cnf_ms": round(result.session_start_to_match_cnf_s * 1000, 1),
            })
            if config.join_check != "none":
                remaining = max(0.1, timeout - (time.monotonic() - started))
                try:
                    link = await driver.wait_for(LinkEstablished, MatchFailed, timeout=remaining)
                except TimeoutError:
                    link = None
                if isinstance(link, LinkEstablished):
                    outcome["match_cnf_to_link_ms"] = round(link.match_cnf_to_link_s * 1000, 1)
                else:
                    outcome.update(result="failed", reason="join_timeout")
            try:
                outcome["link_local"] = await driver.link_local(timeout=2.0)
            except InterfaceError as exc:
                outcome["link_local"] = f"none ({exc})"
            outcome["frames_in"], outcome["frames_out"] = driver.frames_in, driver.frames_out
    except (InterfaceError, PermissionError, OSError) as exc:
        return {**outcome, "result": "failed", "reason": f"interface: {exc}"}
    return outcome
