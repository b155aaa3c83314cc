"""SLAC timers and policies (ISO 15118-3 names), with standard defaults.

The board config's ``[slac]`` table overrides any field; values are seconds unless the name
says otherwise. Defaults follow ISO 15118-3 Table A.1 and field experience (FIELD_NOTES.md).
Policy fields are checked when the object is made, so a typo in a board file fails at load.
"""

from __future__ import annotations

from dataclasses import dataclass

SET_KEY_SUCCESS_MODES = ("modem_compat_0x01", "hpgp_standard_0x00", "accept_0x00_or_0x01")
FAILURE_ACTIONS = ("pwm_off", "state_e", "state_f")
VALIDATE_MODES = ("not_required", "failure")
JOIN_CHECKS = ("nw_info", "none")


@dataclass(frozen=True)
class SlacConfig:
    # ISO 15118-3 timers
    tt_evse_slac_init: float = 40.0       # state B -> first CM_SLAC_PARM.REQ (10-50 s; cars take ~30 s)
    tt_match_sequence: float = 0.4       # between messages of the matching sequence
    tt_evse_match_mnbc: float = 0.6      # sounding window after CM_START_ATTEN_CHAR.IND
    tt_match_response: float = 0.2       # EVSE answer time
    tt_match_join: float = 12.0          # CM_SLAC_MATCH.CNF -> link up on the new network
    tt_evse_match_session: float = 10.0  # whole matching session
    # retries and counts
    c_ev_match_retry: int = 2            # ATTEN_CHAR.IND retransmissions without RSP
    c_ev_match_mnbc: int = 10            # sounds the EV sends
    c_evse_set_key_retry: int = 3        # CM_SET_KEY to a QCA7005 sometimes fails: confirm, retry
    # policies
    attenuation_threshold_db: float = 40.0   # average attenuation above this is a foreign car
    restart_on_parm_req: bool = True     # a car resending CM_SLAC_PARM.REQ after abort is served
    validate_mode: str = "not_required"  # CM_VALIDATE answer: "not_required" | "failure"
    link_loss_debounce: float = 1.0      # modem link-down shorter than this is ignored
    hlc_pwm_duty_percent: float = 5.0    # 5 % duty for AC and DC by default
    # local modem (CM_SET_KEY, vendor diagnostics)
    modem_mac: str = "00:b0:52:00:00:01"  # Qualcomm "local" address: the attached modem answers
    set_key_timeout: float = 1.0         # wait for CM_SET_KEY.CNF before retrying
    # QCA firmware answers 0x01 on success although HomePlug GP says 0x00 (EVerest does the same)
    set_key_success_mode: str = "modem_compat_0x01"
    # after CM_SLAC_MATCH.CNF: poll VS_NW_INFO until the EV's modem joined ("none": trust CNF)
    join_check: str = "nw_info"
    link_poll_interval: float = 0.5      # VS_NW_INFO polling while joining and once matched
    # failure handling (ISO 15118-3: E/F for T_step_EF, then 5 % again, C_sequ_retry times)
    failure_action: str = "state_f"      # "pwm_off" (X1, no retry) | "state_e" | "state_f"
    t_step_ef: float = 4.0               # time spent in state E/F before retrying (min 4 s)
    c_sequ_retry: int = 2                # E/F retries before giving up (then X1)
    max_concurrent_attempts: int = 4     # matching attempts tracked at once (cross-talk)

    def __post_init__(self) -> None:
        choices = {
            "set_key_success_mode": SET_KEY_SUCCESS_MODES,
            "failure_action": FAILURE_ACTIONS,
            "validate_mode": VALIDATE_MODES,
            "join_check": JOIN_CHECKS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"slac.{name} must be one of {allowed}, "
                                 f"not {getattr(self, name)!r}")
        for name in ("tt_evse_slac_init", "tt_match_sequence", "tt_evse_match_mnbc",
                     "tt_match_response", "tt_match_join", "tt_evse_match_session",
                     "set_key_timeout", "link_poll_interval", "t_step_ef"):
            if not getattr(self, name) > 0:
                raise ValueError(f"slac.{name} must be > 0 seconds")
        for name in ("c_ev_match_retry", "c_evse_set_key_retry", "c_sequ_retry",
                     "link_loss_debounce"):
            if getattr(self, name) < 0:
                raise ValueError(f"slac.{name} must be >= 0")
        if not 1 <= self.c_ev_match_mnbc <= 255:
            raise ValueError("slac.c_ev_match_mnbc must be 1..255")
        if self.max_concurrent_attempts < 1:
            raise ValueError("slac.max_concurrent_attempts must be >= 1")
        if not 0 < self.hlc_pwm_duty_percent <= 100:
            raise ValueError("slac.hlc_pwm_duty_percent must be in (0, 100]")
        mac = self.modem_mac.replace(":", "").replace("-", "")
        if len(mac) != 12 or any(c not in "0123456789abcdefABCDEF" for c in mac):
            raise ValueError(f"slac.modem_mac {self.modem_mac!r} is not a MAC address")

    @property
    def modem_mac_bytes(self) -> bytes:
        return bytes.fromhex(self.modem_mac.replace(":", "").replace("-", ""))
