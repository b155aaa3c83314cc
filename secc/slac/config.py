"""SLAC timers and policies (ISO 15118-3 names), with standard defaults.

The board config's ``[slac]`` table overrides any field; values are seconds unless the name
says otherwise. Defaults follow ISO 15118-3 Table A.1 and field experience (FIELD_NOTES.md).
"""

from __future__ import annotations

from dataclasses import dataclass


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
