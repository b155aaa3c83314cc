"""ISO 15118-3 SLAC, EVSE side, as a sans-I/O state machine.

Nothing here touches a socket or a clock. The owner feeds it

* frames: ``receive_frame(frame, now)`` (every EtherType 0x88E1 frame of the PLC interface),
* pilot events: ``pilot_state_b(now)`` (car plugged, state B entered),
  ``pilot_unplugged(now)`` (pilot left B/C/D: unplug),
* modem link events: ``modem_link(up, now)``,
* time: ``handle_timer(now)`` at ``next_deadline()``,

and every call returns the list of actions to carry out, in order:
:class:`SendFrame`, :class:`SetPwmDuty`, :class:`SetPilotState`, :class:`MatchSucceeded`,
:class:`LinkEstablished`, :class:`LinkLost`, :class:`MatchFailed`.

Session phases (one table, :data:`HANDLERS`, says which MME each phase accepts; anything else
is logged and dropped, never an exception)::

    IDLE --B--> SETTING_KEY --CNF ok--> WAITING_FOR_EV --PARM.REQ--> MATCHING
    MATCHING --MATCH.REQ--> JOINING --modem sees the EV--> MATCHED
    any failure --> E/F pause (T_step_EF) --> SETTING_KEY ... (C_sequ_retry times) --> FAILED
    any --unplug--> IDLE

Inside MATCHING, each EV is a :class:`MatchAttempt` keyed by (EV MAC, RunID), with its own
step and deadline, so a neighbour's EV whose SLAC frames leak onto our line (cross-talk) runs
its own attempt and can never complete or disturb ours: only the EV that sends
CM_SLAC_MATCH.REQ to our MAC with its own RunID is matched.

Failure handling (chosen per ISO 15118-3 9.4 / [V2G3-A09-...] and field practice, configured by
``failure_action``):

* an attempt-level problem (no START_ATTEN_CHAR, no ATTEN_CHAR.RSP, no MATCH.REQ, attenuation
  above threshold) drops that attempt; with ``restart_on_parm_req`` (default) the EVSE keeps
  waiting for the car's next CM_SLAC_PARM.REQ (cars resend it after an abort), bounded by
  TT_EVSE_SLAC_init; without it the session fails;
* a session failure (SET_KEY never confirmed, no PARM.REQ within TT_EVSE_SLAC_init, no join
  within TT_match_join, link lost) emits :class:`MatchFailed`, then with ``state_e``/``state_f``
  the pilot goes to E/F for T_step_EF, back to X1 (no PWM), a new NMK is set and 5 % PWM
  restarts SLAC, up to C_sequ_retry times; with ``pwm_off`` (or retries used up) the PWM is
  switched off (X1, 100 %) and the machine stays FAILED until unplug.

While the machine holds the pilot in E/F the owner must not report that as an unplug.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from secc.common.logs import layer_logger
from secc.slac import messages as m
from secc.slac.config import SlacConfig

log = layer_logger("slac")

PWM_OFF_PERCENT = 100.0  # X1: constant +12 V, no oscillator


# --- actions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendFrame:
    frame: bytes
    name: str  # MME name, for logs


@dataclass(frozen=True)
class SetPwmDuty:
    percent: float  # 100.0 = oscillator off (X1)


@dataclass(frozen=True)
class SetPilotState:
    state: str  # "E" or "F": the EVSE forces the pilot to signal a restart


@dataclass(frozen=True)
class MatchSucceeded:
    ev_mac: bytes
    run_id: bytes
    nid: bytes
    nmk: bytes
    attenuation_db: float | None  # None when no CM_ATTEN_PROFILE.IND arrived
    num_profiles: int
    parm_req_to_match_cnf_s: float
    session_start_to_match_cnf_s: float


@dataclass(frozen=True)
class LinkEstablished:
    ev_mac: bytes
    match_cnf_to_link_s: float


@dataclass(frozen=True)
class LinkLost:
    ev_mac: bytes


class FailureReason(str, Enum):
    SET_KEY_FAILED = "set_key_failed"
    NO_SLAC_PARM_REQ = "no_slac_parm_req"            # TT_EVSE_SLAC_init
    NO_START_ATTEN_CHAR = "no_start_atten_char"      # TT_match_sequence after PARM.CNF
    NO_ATTEN_CHAR_RSP = "no_atten_char_rsp"          # TT_match_response x (1 + C_EV_match_retry)
    ATTEN_CHAR_RSP_FAILED = "atten_char_rsp_failed"
    NO_MATCH_REQ = "no_match_req"                    # TT_EVSE_match_session
    ATTENUATION_TOO_HIGH = "attenuation_too_high"
    SUPERSEDED = "superseded"                        # same EV restarted with a new RunID
    JOIN_TIMEOUT = "join_timeout"                    # TT_match_join
    LINK_LOST = "link_lost"
    UNPLUGGED = "unplugged"


@dataclass(frozen=True)
class MatchFailed:
    reason: FailureReason
    detail: str
    retrying: bool  # an E/F restart follows


Action = SendFrame | SetPwmDuty | SetPilotState | MatchSucceeded | LinkEstablished | LinkLost \
    | MatchFailed


# --- state -----------------------------------------------------------------------------------
class Phase(str, Enum):
    IDLE = "idle"
    SETTING_KEY = "setting_key"
    WAITING_FOR_EV = "waiting_for_ev"
    MATCHING = "matching"
    JOINING = "joining"
    MATCHED = "matched"
    EF_PAUSE = "ef_pause"
    FAILED = "failed"


class Step(str, Enum):
    """Where one EV's matching attempt stands."""

    PARM_CONFIRMED = "parm_confirmed"      # sent CM_SLAC_PARM.CNF, wait START_ATTEN_CHAR
    SOUNDING = "sounding"                  # collecting CM_ATTEN_PROFILE.IND
    ATTEN_CHAR_SENT = "atten_char_sent"    # wait CM_ATTEN_CHAR.RSP
    WAITING_FOR_MATCH = "waiting_for_match"  # wait CM_VALIDATE.REQ / CM_SLAC_MATCH.REQ


@dataclass
class MatchAttempt:
    ev_mac: bytes
    run_id: bytes
    started: float
    step: Step
    deadline: float
    parm_cnf: bytes
    expected_sounds: int = 0
    sounds_seen: int = 0
    profiles: list[list[int]] = field(default_factory=list)
    atten_char_ind: bytes = b""
    atten_char_sends: int = 0
    aag: list[int] = field(default_factory=list)
    attenuation_db: float | None = None

    @property
    def key(self) -> tuple[bytes, bytes]:
        return (self.ev_mac, self.run_id)

    def describe(self) -> dict[str, str]:
        return {"ev_mac": m.mac_str(self.ev_mac), "run_id": self.run_id.hex()}


@dataclass
class Match:
    ev_mac: bytes
    run_id: bytes
    match_cnf: bytes
    matched_at: float


_session_counter = itertools.count(1)



def set_key_result_ok(result: int, mode: str) -> bool:
    """Does CM_SET_KEY.CNF ``result`` mean success under ``[slac].set_key_success_mode``?"""
    if mode == "modem_compat_0x01":
        return result == 0x01
    if mode == "hpgp_standard_0x00":
        return result == 0x00
    return result in (0x00, 0x01)


def set_key_result_hint(result: int, mode: str) -> str:
    """What to tell the field engineer when a CM_SET_KEY.CNF result is not ``mode``'s success
    code: a modem answering the other convention's success code needs the setting changed."""
    if result == 0x00 and mode == "modem_compat_0x01":
        return ("the modem answered 0x00, HomePlug GP's success code, where "
                '[slac].set_key_success_mode = "modem_compat_0x01" expects QCA\'s 0x01; if '
                'this modem follows HomePlug GP, set [slac].set_key_success_mode = '
                '"accept_0x00_or_0x01" (or "hpgp_standard_0x00")')
    if result == 0x01 and mode == "hpgp_standard_0x00":
        return ("the modem answered 0x01, QCA firmware's success code, where "
                '[slac].set_key_success_mode = "hpgp_standard_0x00" expects 0x00; set '
                '[slac].set_key_success_mode = "modem_compat_0x01" (or "accept_0x00_or_0x01")')
    return "the modem refused the key (a result no success convention uses)"

class EvseSlac:
    """One charge point's SLAC, EVSE side. See the module docstring for the protocol."""

    def __init__(self, config: SlacConfig, evse_mac: bytes,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.config = config
        self.evse_mac = evse_mac
        self.modem_mac = config.modem_mac_bytes
        self._random = random_bytes
        self.phase = Phase.IDLE
        self.session_id = ""
        self.nmk = b""
        self.nid = b""
        self.attempts: dict[tuple[bytes, bytes], MatchAttempt] = {}
        self.match: Match | None = None
        self._timers: dict[str, float] = {}
        self._set_key_sends = 0
        self._set_key_nonce = 0
        self._ef_retries_used = 0
        self._session_started = 0.0
        self._link_down_since: float | None = None
        self._last_drop = (FailureReason.NO_MATCH_REQ, "")
        self._link_seen_at = 0.0
        self.modem_seen_mac: bytes | None = None  # learned from CM_SET_KEY.CNF
        self.malformed_frames = 0  # diagnostics: frames that failed to parse

    # --- public API --------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = list(self._timers.values()) + [a.deadline for a in self.attempts.values()]
        return min(deadlines) if deadlines else None

    def pilot_state_b(self, now: float) -> list[Action]:
        """The car is plugged in (state B entered): start a SLAC session unless one runs."""
        if self.phase != Phase.IDLE:
            log.debug("state B ignored: session already active", extra={"phase": self.phase.value})
            return []
        self._ef_retries_used = 0
        return self._start_session(now)

    def pilot_unplugged(self, now: float) -> list[Action]:
        """The pilot left B/C/D: forget everything; the next plug-in gets a new NMK."""
        actions: list[Action] = []
        if self.phase in (Phase.SETTING_KEY, Phase.WAITING_FOR_EV, Phase.MATCHING,
                          Phase.JOINING):
            actions.append(MatchFailed(FailureReason.UNPLUGGED, "pilot left B/C/D", False))
        if self.phase != Phase.IDLE:
            log.info("unplugged: SLAC session closed", extra=self._ctx())
            actions.append(SetPwmDuty(PWM_OFF_PERCENT))
        self._reset(Phase.IDLE)
        return actions

    def modem_link(self, up: bool, now: float) -> list[Action]:
        """Link status of the PLC network as reported by the driver (or a VS_NW_INFO poll)."""
        if up:
            self._link_seen_at = now
            self._link_down_since = None
            self._timers.pop("link_debounce", None)
            if self.phase == Phase.JOINING:
                return self._joined(now)
            return []
        if self.phase == Phase.MATCHED and self._link_down_since is None:
            self._link_down_since = now
            self._timers["link_debounce"] = now + self.config.link_loss_debounce
            log.info("modem reports link down; debouncing", extra=self._ctx())
        return []

    def receive_frame(self, frame: bytes, now: float) -> list[Action]:
        """One received EtherType 0x88E1 frame. Bad, foreign and late frames are dropped."""
        try:
            mme = m.decode(frame)
        except m.UnknownMmeType as exc:
            log.debug("ignored MME", extra={"reason": str(exc)})
            return []
        except m.MmeError as exc:  # debug: a noisy neighbour must not flood the log
            self.malformed_frames += 1
            log.debug("dropped malformed MME", extra={"reason": str(exc)})
            return []
        if mme.src == self.evse_mac:
            return []  # our own transmission seen on the wire
        if mme.dst not in (self.evse_mac, m.BROADCAST_MAC):
            return []
        handler_name = HANDLERS.get(self.phase, {}).get(mme.mmtype)
        if handler_name is None:
            log.debug("ignored MME not expected now", extra={
                "mme": mme.name, "phase": self.phase.value, "src": m.mac_str(mme.src)})
            return []
        return getattr(self, handler_name)(mme, now)

    def handle_timer(self, now: float) -> list[Action]:
        """Run every timer that expired at ``now`` (in deadline order)."""
        actions: list[Action] = []
        for _ in range(1000):  # bounded: each round removes or moves at least one deadline
            expired = [(t, name) for name, t in self._timers.items() if t <= now]
            expired += [(a.deadline, a.key) for a in self.attempts.values() if a.deadline <= now]
            if not expired:
                break
            _, which = min(expired, key=lambda item: item[0])
            if isinstance(which, str):
                del self._timers[which]
                actions += getattr(self, f"_timer_{which}")(now)
            else:
                attempt = self.attempts.get(which)
                if attempt is not None:
                    actions += self._attempt_timer(attempt, now)
        return actions

    # --- session ------------------------------------------------------------------------------
    def _ctx(self, **more: str) -> dict[str, str]:
        return {"slac_session": self.session_id, "phase": self.phase.value, **more}

    def _reset(self, phase: Phase) -> None:
        self.phase = phase
        self.attempts.clear()
        self.match = None
        self._timers.clear()
        self._link_down_since = None

    def _start_session(self, now: float) -> list[Action]:
        self._reset(Phase.SETTING_KEY)
        self.session_id = f"slac{next(_session_counter)}-{self._random(2).hex()}"
        self.nmk = self._random(16)
        self.nid = m.nid_from_nmk(self.nmk)
        self._session_started = now
        self._set_key_sends = 0
        log.info("new SLAC session: setting a new NMK on the modem",
                 extra=self._ctx(nid=self.nid.hex(), modem=m.mac_str(self.modem_mac)))
        return self._send_set_key(now)

    def _send_set_key(self, now: float) -> list[Action]:
        self._set_key_sends += 1
        self._set_key_nonce = int.from_bytes(self._random(4), "little")
        self._timers["set_key"] = now + self.config.set_key_timeout
        frame = m.encode(m.set_key_req(self.modem_mac, self.evse_mac, self.nmk, self.nid,
                                       self._set_key_nonce))
        return [SendFrame(frame, "CM_SET_KEY.REQ")]

    def _set_key_result_ok(self, result: int) -> bool:
        return set_key_result_ok(result, self.config.set_key_success_mode)

    def _on_set_key_cnf(self, mme: m.Mme, now: float) -> list[Action]:
        if not self._set_key_result_ok(mme.result):
            log.warning("CM_SET_KEY.CNF reports failure", extra=self._ctx(
                result=f"0x{mme.result:02X}", attempt=str(self._set_key_sends),
                hint=set_key_result_hint(mme.result, self.config.set_key_success_mode)))
            self._timers.pop("set_key", None)
            return self._retry_set_key(now, f"result 0x{mme.result:02X}")
        self._timers.pop("set_key", None)
        # Only this station may tell us attenuation profiles and network membership later.
        self.modem_seen_mac = mme.src
        self.phase = Phase.WAITING_FOR_EV
        self._timers["slac_init"] = now + self.config.tt_evse_slac_init
        log.info("modem confirmed the new NMK; PWM on, waiting for CM_SLAC_PARM.REQ",
                 extra=self._ctx(nid=self.nid.hex(), duty=str(self.config.hlc_pwm_duty_percent)))
        return [SetPwmDuty(self.config.hlc_pwm_duty_percent)]

    def _timer_set_key(self, now: float) -> list[Action]:
        log.warning("no CM_SET_KEY.CNF from the modem", extra=self._ctx(
            attempt=str(self._set_key_sends)))
        return self._retry_set_key(now, "no CM_SET_KEY.CNF")

    def _retry_set_key(self, now: float, why: str) -> list[Action]:
        if self._set_key_sends <= self.config.c_evse_set_key_retry:
            return self._send_set_key(now)
        return self._fail(FailureReason.SET_KEY_FAILED,
                          f"{why} after {self._set_key_sends} CM_SET_KEY.REQ", now)

    def _timer_slac_init(self, now: float) -> list[Action]:
        detail = (f"no CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init "
                  f"({self.config.tt_evse_slac_init:g} s)")
        return self._fail(FailureReason.NO_SLAC_PARM_REQ, detail, now)

    def _fail(self, reason: FailureReason, detail: str, now: float) -> list[Action]:
        retrying = (self.config.failure_action != "pwm_off"
                    and self._ef_retries_used < self.config.c_sequ_retry)
        log.warning("SLAC failed", extra=self._ctx(
            reason=reason.value, detail=detail, retrying=str(retrying)))
        actions: list[Action] = [MatchFailed(reason, detail, retrying)]
        if retrying:
            self._ef_retries_used += 1
            state = "E" if self.config.failure_action == "state_e" else "F"
            self._reset(Phase.EF_PAUSE)
            self._timers["ef_pause"] = now + self.config.t_step_ef
            actions.append(SetPilotState(state))
        else:
            self._reset(Phase.FAILED)
            actions.append(SetPwmDuty(PWM_OFF_PERCENT))
        return actions

    def _timer_ef_pause(self, now: float) -> list[Action]:
        log.info("E/F pause over: restarting SLAC with a new NMK", extra=self._ctx(
            retry=str(self._ef_retries_used)))
        return [SetPwmDuty(PWM_OFF_PERCENT), *self._start_session(now)]

    # --- matching -----------------------------------------------------------------------------
    def _on_parm_req(self, mme: m.Mme, now: float) -> list[Action]:
        key = (mme.src, bytes(mme.run_id))
        if mme.application_type != m.APPLICATION_TYPE_PEV_EVSE or \
                mme.security_type != m.SECURITY_TYPE_NONE:
            log.info("CM_SLAC_PARM.REQ with unsupported application/security type ignored",
                     extra=self._ctx(ev_mac=m.mac_str(mme.src)))
            return []
        existing = self.attempts.get(key)
        if existing is not None:
            if existing.step == Step.PARM_CONFIRMED:  # our CNF was lost: answer again
                log.info("repeated CM_SLAC_PARM.REQ: CNF sent again", extra=self._ctx(
                    **existing.describe()))
                return [SendFrame(existing.parm_cnf, "CM_SLAC_PARM.CNF")]
            return []  # late duplicate
        if self.phase in (Phase.JOINING, Phase.MATCHED) and self.match is not None \
                and mme.src != self.match.ev_mac:
            log.info("CM_SLAC_PARM.REQ from another EV while matched ignored (cross-talk)",
                     extra=self._ctx(ev_mac=m.mac_str(mme.src)))
            return []
        if self.phase in (Phase.JOINING, Phase.MATCHED) or any(
                a.ev_mac == mme.src for a in self.attempts.values()):
            if not self.config.restart_on_parm_req:
                log.info("new CM_SLAC_PARM.REQ ignored (restart_on_parm_req off)",
                         extra=self._ctx(ev_mac=m.mac_str(mme.src)))
                return []
        if self.phase in (Phase.JOINING, Phase.MATCHED):
            log.info("EV restarted SLAC after CM_SLAC_MATCH.CNF: serving it again",
                     extra=self._ctx(ev_mac=m.mac_str(mme.src)))
            self.match = None
            for name in ("join", "link_poll", "link_debounce"):
                self._timers.pop(name, None)
        for old in [a for a in self.attempts.values() if a.ev_mac == mme.src]:
            self._drop_attempt(old, FailureReason.SUPERSEDED, "EV sent a new RunID")
        if len(self.attempts) >= self.config.max_concurrent_attempts:
            log.warning("too many concurrent SLAC attempts: CM_SLAC_PARM.REQ ignored",
                        extra=self._ctx(ev_mac=m.mac_str(mme.src)))
            return []
        cnf = m.encode(m.slac_parm_cnf(
            mme.src, self.evse_mac, mme.src, bytes(mme.run_id), self.config.c_ev_match_mnbc,
            max(1, round(self.config.tt_evse_match_mnbc * 10))))
        attempt = MatchAttempt(ev_mac=mme.src, run_id=bytes(mme.run_id), started=now,
                               step=Step.PARM_CONFIRMED,
                               deadline=now + self.config.tt_match_sequence, parm_cnf=cnf)
        self.attempts[attempt.key] = attempt
        self.phase = Phase.MATCHING
        self._timers.pop("slac_init", None)
        log.info("CM_SLAC_PARM.REQ: matching attempt started", extra=self._ctx(
            **attempt.describe(), concurrent=str(len(self.attempts))))
        return [SendFrame(cnf, "CM_SLAC_PARM.CNF")]

    def _attempt_for(self, mme: m.Mme, *steps: Step) -> MatchAttempt | None:
        attempt = self.attempts.get((mme.src, bytes(mme.run_id)))
        if attempt is None:
            log.debug("MME for no known attempt (foreign, late or wrong RunID) ignored",
                      extra=self._ctx(mme=mme.name, src=m.mac_str(mme.src),
                                      run_id=bytes(mme.run_id).hex()))
            return None
        if attempt.step not in steps:
            log.debug("MME out of step ignored", extra=self._ctx(
                mme=mme.name, step=attempt.step.value, **attempt.describe()))
            return None
        return attempt

    def _on_start_atten_char(self, mme: m.Mme, now: float) -> list[Action]:
        attempt = self._attempt_for(mme, Step.PARM_CONFIRMED)
        if attempt is None:
            return []
        self._begin_sounding(attempt, mme.num_sounds, now)
        return []

    def _begin_sounding(self, attempt: MatchAttempt, num_sounds: int, now: float) -> None:
        attempt.step = Step.SOUNDING
        attempt.expected_sounds = num_sounds if 0 < num_sounds <= 255 else \
            self.config.c_ev_match_mnbc
        attempt.deadline = now + self.config.tt_evse_match_mnbc
        log.info("sounding started", extra=self._ctx(
            **attempt.describe(), expected=str(attempt.expected_sounds)))

    def _on_mnbc_sound(self, mme: m.Mme, now: float) -> list[Action]:
        attempt = self._attempt_for(mme, Step.PARM_CONFIRMED, Step.SOUNDING)
        if attempt is None:
            return []
        if attempt.step == Step.PARM_CONFIRMED:  # every START_ATTEN_CHAR.IND was lost
            self._begin_sounding(attempt, mme.count + 1 + attempt.sounds_seen, now)
        attempt.sounds_seen += 1
        return []

    def _from_modem(self, mme: m.Mme) -> bool:
        if mme.src in (self.modem_seen_mac, self.modem_mac):
            return True
        log.info("modem-only MME from another station ignored", extra=self._ctx(
            mme=mme.name, src=m.mac_str(mme.src)))
        return False

    def _on_atten_profile(self, mme: m.Mme, now: float) -> list[Action]:
        if not self._from_modem(mme):
            return []
        attempt = next((a for a in self.attempts.values()
                        if a.ev_mac == mme.pev_mac and a.step == Step.SOUNDING), None)
        if attempt is None:
            log.debug("CM_ATTEN_PROFILE.IND for no sounding EV ignored",
                      extra=self._ctx(pev_mac=m.mac_str(mme.pev_mac)))
            return []
        groups = list(mme.aag)
        if not groups:  # QCA7420-class modems send empty profiles: nothing measured
            log.debug("empty CM_ATTEN_PROFILE.IND ignored", extra=self._ctx(**attempt.describe()))
            return []
        if attempt.profiles and len(groups) != len(attempt.profiles[0]):
            log.info("CM_ATTEN_PROFILE.IND with inconsistent group count ignored",
                     extra=self._ctx(**attempt.describe(), groups=str(len(groups))))
            return []
        attempt.profiles.append(groups)
        if len(attempt.profiles) >= attempt.expected_sounds:
            return self._finish_sounding(attempt, now)
        return []

    def _finish_sounding(self, attempt: MatchAttempt, now: float) -> list[Action]:
        if attempt.profiles:
            count = len(attempt.profiles)
            attempt.aag = [round(sum(column) / count) for column in zip(*attempt.profiles)]
            attempt.attenuation_db = sum(attempt.aag) / len(attempt.aag)
            log.info("sounding done", extra=self._ctx(
                **attempt.describe(), profiles=str(count), sounds=str(attempt.sounds_seen),
                attenuation_db=f"{attempt.attenuation_db:.1f}"))
            if attempt.attenuation_db > self.config.attenuation_threshold_db:
                self._drop_attempt(attempt, FailureReason.ATTENUATION_TOO_HIGH,
                                   f"{attempt.attenuation_db:.1f} dB > "
                                   f"{self.config.attenuation_threshold_db:g} dB")
                return self._after_attempt_dropped(now)
        else:
            # QCA7420-style modems never send CM_ATTEN_PROFILE.IND; the EV still needs our
            # CM_ATTEN_CHAR.IND to proceed (qca/open-plc-utils#156): send one with 0 sounds.
            attempt.aag = [0] * m.NUM_GROUPS
            log.warning("no CM_ATTEN_PROFILE.IND during the sounding window (is the modem an "
                        "EVSE-capable QCA7000/7005?); sending CM_ATTEN_CHAR.IND anyway",
                        extra=self._ctx(**attempt.describe(), sounds=str(attempt.sounds_seen)))
        attempt.atten_char_ind = m.encode(m.atten_char_ind(
            attempt.ev_mac, self.evse_mac, attempt.ev_mac, attempt.run_id,
            len(attempt.profiles), attempt.aag))
        attempt.step = Step.ATTEN_CHAR_SENT
        attempt.atten_char_sends = 1
        attempt.deadline = now + self.config.tt_match_response
        return [SendFrame(attempt.atten_char_ind, "CM_ATTEN_CHAR.IND")]

    def _on_atten_char_rsp(self, mme: m.Mme, now: float) -> list[Action]:
        attempt = self._attempt_for(mme, Step.ATTEN_CHAR_SENT)
        if attempt is None:
            return []
        if mme.result != m.ATTEN_CHAR_RSP_SUCCESS:
            self._drop_attempt(attempt, FailureReason.ATTEN_CHAR_RSP_FAILED,
                               f"result {mme.result}")
            return self._after_attempt_dropped(now)
        attempt.step = Step.WAITING_FOR_MATCH
        # Cars decide between EVSEs after TT_EV_atten_results: MATCH.REQ comes ~0.8-1 s later.
        attempt.deadline = now + self.config.tt_evse_match_session
        log.info("CM_ATTEN_CHAR.RSP ok: waiting for CM_SLAC_MATCH.REQ",
                 extra=self._ctx(**attempt.describe()))
        return []

    def _on_validate_req(self, mme: m.Mme, now: float) -> list[Action]:
        attempt = next((a for a in self.attempts.values() if a.ev_mac == mme.src and a.step in (
            Step.ATTEN_CHAR_SENT, Step.WAITING_FOR_MATCH)), None)
        if attempt is None:
            return []
        result = m.VALIDATE_NOT_REQUIRED if self.config.validate_mode == "not_required" \
            else m.VALIDATE_FAILURE
        attempt.step = Step.WAITING_FOR_MATCH
        attempt.deadline = now + self.config.tt_evse_match_session
        log.info("CM_VALIDATE.REQ answered", extra=self._ctx(
            **attempt.describe(), result=self.config.validate_mode))
        return [SendFrame(m.encode(m.validate_cnf(mme.src, self.evse_mac, result)),
                          "CM_VALIDATE.CNF")]

    def _on_match_req(self, mme: m.Mme, now: float) -> list[Action]:
        if mme.dst != self.evse_mac:
            return []  # a MATCH.REQ is unicast to the chosen EVSE
        attempt = self._attempt_for(mme, Step.ATTEN_CHAR_SENT, Step.WAITING_FOR_MATCH)
        if attempt is None:
            return []
        if mme.pev_mac != mme.src or mme.evse_mac not in (self.evse_mac, bytes(6)):
            log.info("CM_SLAC_MATCH.REQ with inconsistent MACs ignored", extra=self._ctx(
                **attempt.describe(), pev_mac=m.mac_str(mme.pev_mac),
                evse_mac=m.mac_str(mme.evse_mac)))
            return []
        cnf = m.encode(m.slac_match_cnf(attempt.ev_mac, self.evse_mac, attempt.run_id,
                                        attempt.ev_mac, self.nid, self.nmk))
        for other in [a for a in self.attempts.values() if a is not attempt]:
            self._drop_attempt(other, FailureReason.SUPERSEDED, "another EV matched")
        self.attempts.clear()
        self.match = Match(attempt.ev_mac, attempt.run_id, cnf, now)
        succeeded = MatchSucceeded(
            ev_mac=attempt.ev_mac, run_id=attempt.run_id, nid=self.nid, nmk=self.nmk,
            attenuation_db=attempt.attenuation_db, num_profiles=len(attempt.profiles),
            parm_req_to_match_cnf_s=now - attempt.started,
            session_start_to_match_cnf_s=now - self._session_started)
        log.info("CM_SLAC_MATCH.CNF sent: EV matched", extra=self._ctx(
            **attempt.describe(), nid=self.nid.hex(),
            attenuation_db="none" if attempt.attenuation_db is None
            else f"{attempt.attenuation_db:.1f}",
            parm_to_match_ms=f"{(now - attempt.started) * 1000:.0f}"))
        actions: list[Action] = [SendFrame(cnf, "CM_SLAC_MATCH.CNF"), succeeded]
        if self.config.join_check == "none":
            self.phase = Phase.MATCHED
            return actions
        self.phase = Phase.JOINING
        self._timers["join"] = now + self.config.tt_match_join
        self._timers["link_poll"] = now + self.config.link_poll_interval
        return actions

    def _on_match_req_again(self, mme: m.Mme, now: float) -> list[Action]:
        match = self.match
        if match is None or mme.dst != self.evse_mac or \
                (mme.src, bytes(mme.run_id)) != (match.ev_mac, match.run_id):
            return []
        log.info("repeated CM_SLAC_MATCH.REQ: CNF sent again", extra=self._ctx(
            ev_mac=m.mac_str(match.ev_mac)))
        return [SendFrame(match.match_cnf, "CM_SLAC_MATCH.CNF")]

    def _attempt_timer(self, attempt: MatchAttempt, now: float) -> list[Action]:
        if attempt.step == Step.SOUNDING:
            return self._finish_sounding(attempt, now)
        if attempt.step == Step.ATTEN_CHAR_SENT and \
                attempt.atten_char_sends <= self.config.c_ev_match_retry:
            attempt.atten_char_sends += 1
            attempt.deadline = now + self.config.tt_match_response
            log.info("no CM_ATTEN_CHAR.RSP: CM_ATTEN_CHAR.IND sent again", extra=self._ctx(
                **attempt.describe(), send=str(attempt.atten_char_sends)))
            return [SendFrame(attempt.atten_char_ind, "CM_ATTEN_CHAR.IND")]
        reason = {
            Step.PARM_CONFIRMED: FailureReason.NO_START_ATTEN_CHAR,
            Step.ATTEN_CHAR_SENT: FailureReason.NO_ATTEN_CHAR_RSP,
            Step.WAITING_FOR_MATCH: FailureReason.NO_MATCH_REQ,
        }[attempt.step]
        self._drop_attempt(attempt, reason, f"timer expired in step {attempt.step.value}")
        return self._after_attempt_dropped(now)

    def _drop_attempt(self, attempt: MatchAttempt, reason: FailureReason, detail: str) -> None:
        self.attempts.pop(attempt.key, None)
        self._last_drop = (reason, detail)
        log.info("matching attempt dropped", extra=self._ctx(
            **attempt.describe(), reason=reason.value, detail=detail))

    def _after_attempt_dropped(self, now: float) -> list[Action]:
        if self.attempts or self.phase != Phase.MATCHING:
            return []
        if self.config.restart_on_parm_req:
            self.phase = Phase.WAITING_FOR_EV
            self._timers["slac_init"] = now + self.config.tt_evse_slac_init
            log.info("no attempt left: waiting for the EV to restart with CM_SLAC_PARM.REQ",
                     extra=self._ctx())
            return []
        reason, detail = self._last_drop
        return self._fail(reason, detail, now)

    # --- joining and link supervision ---------------------------------------------------------
    def _timer_join(self, now: float) -> list[Action]:
        return self._fail(FailureReason.JOIN_TIMEOUT,
                          f"EV modem did not join within TT_match_join "
                          f"({self.config.tt_match_join:g} s)", now)

    def _timer_link_poll(self, now: float) -> list[Action]:
        self._timers["link_poll"] = now + self.config.link_poll_interval
        frame = m.encode(m.vs_request(m.VS_NW_INFO_REQ, self.modem_mac, self.evse_mac))
        actions: list[Action] = [SendFrame(frame, "VS_NW_INFO.REQ")]
        silent_for = now - self._link_seen_at
        if self.phase == Phase.MATCHED and \
                silent_for > self.config.link_loss_debounce + 2 * self.config.link_poll_interval:
            # a modem that stopped answering is as good as a link down
            actions += self.modem_link(False, now)
        return actions

    def _on_nw_info(self, mme: m.Mme, now: float) -> list[Action]:
        if not self._from_modem(mme):
            return []
        joined = any(bytes(net.nid) == self.nid and net.num_stations > 0
                     for net in mme.networks)
        return self.modem_link(joined, now)

    def _joined(self, now: float) -> list[Action]:
        assert self.match is not None
        self._timers.pop("join", None)
        self.phase = Phase.MATCHED
        elapsed = now - self.match.matched_at
        log.info("EV modem joined the network: PLC link up", extra=self._ctx(
            ev_mac=m.mac_str(self.match.ev_mac), join_ms=f"{elapsed * 1000:.0f}"))
        return [LinkEstablished(self.match.ev_mac, elapsed)]

    def _timer_link_debounce(self, now: float) -> list[Action]:
        if self._link_down_since is None or self.match is None:
            return []
        ev_mac = self.match.ev_mac
        actions: list[Action] = [LinkLost(ev_mac)]
        return actions + self._fail(FailureReason.LINK_LOST,
                                    f"PLC link down for {now - self._link_down_since:.1f} s", now)


# Which MME each phase accepts, and the method that handles it. Everything else is dropped.
HANDLERS: dict[Phase, dict[int, str]] = {
    Phase.SETTING_KEY: {m.CM_SET_KEY_CNF: "_on_set_key_cnf"},
    Phase.WAITING_FOR_EV: {m.CM_SLAC_PARM_REQ: "_on_parm_req"},
    Phase.MATCHING: {
        m.CM_SLAC_PARM_REQ: "_on_parm_req",
        m.CM_START_ATTEN_CHAR_IND: "_on_start_atten_char",
        m.CM_MNBC_SOUND_IND: "_on_mnbc_sound",
        m.CM_ATTEN_PROFILE_IND: "_on_atten_profile",
        m.CM_ATTEN_CHAR_RSP: "_on_atten_char_rsp",
        m.CM_VALIDATE_REQ: "_on_validate_req",
        m.CM_SLAC_MATCH_REQ: "_on_match_req",
    },
    Phase.JOINING: {
        m.CM_SLAC_MATCH_REQ: "_on_match_req_again",
        m.CM_SLAC_PARM_REQ: "_on_parm_req",
        m.VS_NW_INFO_CNF: "_on_nw_info",
    },
    Phase.MATCHED: {
        m.CM_SLAC_MATCH_REQ: "_on_match_req_again",
        m.CM_SLAC_PARM_REQ: "_on_parm_req",
        m.VS_NW_INFO_CNF: "_on_nw_info",
    },
}
