"""The SECC daemon: one charging point, from plug-in to unplug.

Edges only; the protocol logic lives in the sans-I/O cores. The daemon
* starts the board (HAL) and watches its events: state B -> 5 % PWM (HLC) and, unless the
  board config says ``start_at_sdp``, one SLAC matching attempt; state A (unplug) -> the
  running V2G connection is aborted and the board goes to its safe state;
* keeps the V2G transport up (SDP + TCP and/or TLS on the PLC interface) and runs each
  accepted connection through ``secc.session.run_v2g_session``;
* publishes session events to the local bus when a bus client is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.board import BoardError, PilotSignal, PilotState, PilotStateChanged, SafeStateReason
from secc.authorization import AllowListAuthorizer, Authorizer, OfflineFallbackAuthorizer
from secc.common.logs import layer_logger
from secc.common.looplag import monitor as loop_lag
from secc.common.memory import limit_malloc_arenas, trim_heap
from secc.config import BoardConfig
from secc.contract.reasons import EndReason
from secc.pnc.contract import load_mo_roots
from secc.session import SessionSettings, SessionSummary, run_v2g_session
from secc.session.controller import BoardController
from secc.session.warmup import WarmUpReport, freeze_heap, late_imports, thaw_heap, warm_up
from secc.v2g.evse import EvseLimits, PublishEvent
from secc.v2g.paused import PausedSessions
from secc.v2g.quirks import for_profile
from secc.v2g.sleep import SleepMode, WakeUpCause
from secc.v2gtp import V2GTPConnection
from secc.v2gtp.evse import EVSETransport, EVSETransportConfig, start_evse_transport

log = layer_logger("v2g")

AC_MODES = ("AC_three_phase_core", "AC_single_phase_core")
# Why a session ends when the daemon is stopped (SIGTERM, `systemctl stop`): a local command
# at the charger, so OCPP triggerReason StopAuthorized / stoppedReason Local
# (ocpp_bridge/stop_reasons.py); docs/field-operation.md says why.
SHUTDOWN_END_REASON = EndReason.LOCAL_STOP
# in sys.modules once any of ``cryptography`` has really been used (~12 MB of RSS)
CRYPTOGRAPHY_BINDING = "cryptography.hazmat.bindings._rust"

# session event of the cores -> (bus session_event name, extra detail); others stay local
BUS_SESSION_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "SessionStarted": ("SessionStarted", {}),
    "Authorized": ("Authorized", {}),
    "ChargingStarted": ("PowerDelivery", {"charging": True}),
    "ChargingStopped": ("PowerDelivery", {"charging": False}),
    "SessionStopped": ("SessionStopped", {}),
}


def session_settings(config: BoardConfig, paused: PausedSessions) -> SessionSettings:
    """Translate the board config into what each V2G session needs."""
    b = config.board
    ac = b.output == "ac"
    protocols: list[str] = []
    for name in config.v2g.protocols:
        protocols.append({"iso20": "iso20-ac" if ac else "iso20-dc"}.get(name, name))
    limits = EvseLimits(max_voltage=b.max_voltage_v, min_voltage=b.min_voltage_v,
                        max_current=b.max_current_a, max_power=b.max_power_w,
                        ac_max_current=min(b.max_current_a, 63.0))
    iso2_modes = AC_MODES if ac else ("DC_extended",)
    # options every ISO 15118 core takes (the -2 and -20 cores share the names)
    common = {"offer_contract": config.v2g.plug_and_charge,
              "payment_options": config.v2g.payment_options,
              # only Plug & Charge checks contracts against them: parsing certificates loads
              # ``cryptography`` (~12 MB), which a daemon without PnC never does
              "mo_roots": load_mo_roots(Path(config.v2g.certificate_dir) / "mo_root.pem")
              if config.v2g.plug_and_charge else [],
              "charging_needs_wait": config.bus.charging_needs_wait if config.bus.enabled
              else 0.0}
    return SessionSettings(
        evse_id=b.evse_id, protocols=tuple(p for p in protocols if not (ac and p == "din")),
        limits=limits, timers=config.v2g.timers,
        quirks=for_profile(config.v2g.profile, config.v2g.quirks),
        core_options={"iso2": {"energy_transfer_modes": iso2_modes, **common,
                               "sales_tariff": config.v2g.tariff,
                               "meter_info_always": config.v2g.meter_info == "always",
                               "contract_receipts": config.v2g.request_metering_receipt},
                      "iso20-dc": dict(common), "iso20-ac": dict(common)},
        paused_sessions=paused)


def server_tls_context(config: BoardConfig) -> ssl.SSLContext | None:
    """TLS for the V2G server per ``[v2g].tls``: -2 (TLS 1.2, ECDHE-ECDSA-AES128-SHA256) and,
    when -20 is offered, TLS 1.3 on the same port (the protocol is known only after TLS)."""
    if config.v2g.tls == "none":
        return None
    if set(config.v2g.protocols) == {"din"}:
        # DIN 70121 has no TLS ([V2G-DC-618]: SDP answers TCP); offering it makes EVs that ask
        # for TLS drop DIN and fail (seen with Josev's EVCC)
        log.info("TLS not offered: DIN 70121 is the only protocol")
        return None
    from secc.tls.context import CertificateDirectory, TLSConfigError

    try:
        ctx = tls_context_for(config, CertificateDirectory(Path(config.v2g.certificate_dir)))
    except TLSConfigError as exc:
        if config.v2g.tls == "required":
            raise
        log.warning("TLS not offered: certificates missing", extra={"error": str(exc)})
        return None
    return ctx


def tls_context_for(config: BoardConfig, certs: Any) -> ssl.SSLContext:
    """The V2G server context for one SECC chain (``secc.tls.context.CertificateDirectory``):
    TLS 1.2 for -2 and, with -20 offered, 1.3 with the vehicle roots for client auth."""
    from secc.tls.context import iso2_server_context

    ctx = iso2_server_context(certs)
    if "iso20" not in config.v2g.protocols:
        return ctx
    oem_roots = certs.path / "oem_root.pem"
    if oem_roots.is_file() and oem_roots.read_bytes().strip():
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(cafile=str(oem_roots))  # the vehicle's chain ends there
        ctx.verify_mode = ssl.CERT_OPTIONAL
    elif config.v2g.without_oem_root == "no_iso20_tls":
        log.warning("no OEM root installed: ISO 15118-20 over TLS 1.3 not offered "
                    "([v2g].without_oem_root = no_iso20_tls)",
                    extra={"missing": str(oem_roots), "fix": "secc certs import oem-root FILE"})
    else:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        log.warning("no OEM root installed: ISO 15118-20 vehicle certificates are not "
                    "requested ([v2g].without_oem_root = no_vehicle_certificate)",
                    extra={"missing": str(oem_roots), "fix": "secc certs import oem-root FILE"})
    return ctx


@dataclass
class SeccDaemon:
    config: BoardConfig
    board: Any
    interface: str
    authorizer: Authorizer = field(default_factory=lambda: AllowListAuthorizer(accept_all=True))
    bus: Any = None                       # secc.bus.client.SeccBusClient or None
    tls_context: ssl.SSLContext | None = None
    summaries: list[SessionSummary] = field(default_factory=list)
    # extra session-event listeners (sync, on the daemon's loop), e.g. the demo's vehicle plant
    event_listeners: list[Any] = field(default_factory=list)
    # called once, on the loop, when the daemon is READY (after "SECC ready" is logged):
    # everything a session needs is loaded and warmed, the V2G servers accept. Sync or async.
    # ``ready`` (an asyncio.Event) is set at the same point.
    ready_callbacks: list[Callable[[SeccDaemon], Any]] = field(default_factory=list)
    notifier: Any = None                  # secc.common.sdnotify.SystemdNotifier under systemd

    def __post_init__(self) -> None:
        self.paused = PausedSessions()
        self.settings = session_settings(self.config, self.paused)
        if self.config.v2g.plug_and_charge:  # keep the contract chains seen (secc certs list)
            from secc.cert_commands import ContractCachingAuthorizer

            self.authorizer = ContractCachingAuthorizer(self.authorizer,
                                                        Path(self.config.v2g.certificate_dir))
        if self.config.board.kind == "sim" and self.config.sim.control_socket:
            from secc.authorization import HoldableAuthorizer

            # the tester's authorization hook (hold / accept / reject; "pass" by default)
            self.authorizer = HoldableAuthorizer(self.authorizer)
        self.controller = BoardController(self.board, self.authorizer, self._publish,
                                          bus=self.bus)
        self.transport: EVSETransport | None = None
        self._connection: V2GTPConnection | None = None
        self._slac = None
        self._tasks: list[asyncio.Task] = []
        self.slac_matches: list[Any] = []
        self.ready = asyncio.Event()
        self.tls_selector: Any = None   # secc.tls.selection.TlsChainSelector, from start()
        self.ready_seconds: float | None = None   # start() called -> READY
        self.warm_up_report: WarmUpReport | None = None
        # session events go to the bus and the outbox from their own task, in order: a
        # session's next response never waits for an MQTT publish or an outbox commit
        self._bus_events: asyncio.Queue[PublishEvent] = asyncio.Queue()
        self._session_id = ""
        self._comm_setup: asyncio.Task | None = None
        # a paused car's sleep (oscillator off) and its wake-up (secc.v2g.sleep)
        self.sleep = SleepMode(wake_up_after=self.config.v2g.timers.pause_wake_up)
        self._sleep_timer: asyncio.Task | None = None
        self._pause_pending = False   # a paused session waits for its car (until unplug)
        self._sim_control = None
        self._sim_follower = None
        if self.config.board.kind == "sim" and hasattr(self.board, "plant"):
            self._setup_sim_car()
        self.reporter = None
        self.smart_charging = None
        self.shutting_down = False
        self._session_done = asyncio.Event()
        self._session_done.set()
        if self.bus is not None:
            from secc.bus.smart_charging import SmartChargingLink
            from secc.bus.transactions import TransactionReporter

            self.smart_charging = SmartChargingLink(self.bus, self.controller)

            self.reporter = TransactionReporter(self.bus, self.board,
                                                self.config.bus.meter_interval)
        self.commands = None   # CSMS commands via the bridge (reset, availability, unlock...)
        self._stop_cause: EndReason | None = None
        if self.bus is not None:
            from secc.session.evse_commands import EvseCommands

            self.commands = EvseCommands(
                self.board, self.bus, hlc_duty_percent=self.config.slac.hlc_pwm_duty_percent,
                session_active=lambda: self._connection is not None,
                stop_session=self._stop_session, reporter=self.reporter,
                offer_charging=self._plugged_in,
                state_path=Path(self.config.bus.state_dir)
                / f"availability-{self.config.board.name}.json")

    def _setup_sim_car(self) -> None:
        """``[sim]``: the control-pilot hook for external testers and the self-following
        simulated car (hal/sim_control.py)."""
        from hal.sim_control import SessionFollower, SimControlServer

        sim = self.config.sim
        if sim.control_socket:
            self._sim_control = SimControlServer(self.board, sim.control_socket, commands={
                "authorization": self._sim_authorization, "schedule": self._sim_schedule})
        if sim.ev_follows_session:
            self._sim_follower = SessionFollower(self.board, sim.ev_battery_voltage_v)
            self.event_listeners.append(self._sim_follower.on_session_event)

    def _sim_authorization(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control socket ``{"cmd": "authorization", "mode": "pass|hold|accept|reject"}``."""
        mode = str(request.get("mode", ""))
        try:
            self.authorizer.set_mode(mode)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        log.info("sim hook: authorization mode", extra={"mode": mode})
        return {"ok": True, "mode": mode}

    def _sim_schedule(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control socket ``{"cmd": "schedule", "held": true|false}``."""
        held = request.get("held")
        if not isinstance(held, bool):
            return {"ok": False, "error": "held must be true or false"}
        self.controller.schedule_held = held
        log.info("sim hook: schedule held", extra={"held": held})
        return {"ok": True, "held": held}

    # --- bus ------------------------------------------------------------------------------------
    async def _publish(self, event: PublishEvent) -> None:
        if self.shutting_down and event.kind == "SessionStopped":
            # the charger is being stopped (SIGTERM): that, not the car, ended the transaction
            event = PublishEvent(event.kind, {**event.data, "end_reason": SHUTDOWN_END_REASON})
        elif event.kind == "SessionStopped" and self._stop_cause is not None:
            # the CSMS's Reset ended it, not a plain stop
            event = PublishEvent(event.kind, {**event.data, "end_reason": self._stop_cause})
        if event.kind == "SessionStopped":
            self._stop_cause = None
        for listener in self.event_listeners:
            listener(event)
        session_id = str(event.data.get("session_id") or "")
        if event.kind in ("SessionStarted", "SessionResumed"):
            self._session_id = session_id
            self._cancel_communication_setup()
            self._end_sleep()
        elif event.kind == "SessionPaused":
            self._fall_asleep()
        if self.bus is not None:
            self._bus_events.put_nowait(event)

    async def _publish_bus_events(self) -> None:
        while True:
            event = await self._bus_events.get()
            try:
                await self._publish_to_bus(event)
            except Exception:  # one bad event must not stop the ones after it
                log.exception("session event not published", extra={"event": event.kind})
            finally:
                self._bus_events.task_done()

    async def events_published(self, timeout: float = 10.0) -> None:
        """Wait until every session event so far went to the bus / is committed to the outbox."""
        await asyncio.wait_for(self._bus_events.join(), timeout)

    async def _publish_to_bus(self, event: PublishEvent) -> None:
        session_id = str(event.data.get("session_id") or "")
        if self.smart_charging is not None:   # NotifyEVChargingNeeds/Schedule, in the background
            self.smart_charging.on_session_event(event, session_id or self._session_id)
        if self.commands is not None and event.kind in ("SessionStarted", "ChargingStarted",
                                                        "ChargingStopped"):
            self.commands.charging = event.kind == "ChargingStarted"
            await self.commands.publish_state(session_id)
        named = BUS_SESSION_EVENTS.get(event.kind)
        if named is not None and session_id:
            name, extra = named
            detail = {k: v for k, v in event.data.items()
                      if k not in ("session_id", "protocol") and isinstance(v, (str, int, float,
                                                                               bool))}
            try:
                await self.bus.publish_session_event(name, session_id, **detail, **extra)
            except Exception as exc:  # informational: never a reason to stop charging
                log.warning("bus publish failed", extra={"event": event.kind,
                                                         "error": repr(exc)})
        if self.reporter is not None:
            try:
                await self.reporter.on_event(event)
            except Exception as exc:  # the outbox refused it: say so loudly
                log.error("transaction event not recorded", extra={"event": event.kind,
                                                                   "error": repr(exc)})

    async def _on_remote_stop(self, command: dict) -> dict:
        """RequestStopTransaction from the CSMS, via the bridge."""
        if self._connection is None or command.get("session_id") != self._session_id:
            return {"status": "Rejected", "reason": "no such session on this EVSE"}
        self.controller.request_remote_stop()
        log.info("remote stop requested", extra={"session": self._session_id})
        return {"status": "Accepted", "session_id": self._session_id}

    def _stop_session(self, cause: EndReason) -> None:
        """Stop the running session as a remote stop does, reporting ``cause`` (Reset)."""
        self._stop_cause = cause
        self.controller.request_remote_stop()

    # --- V2G connections --------------------------------------------------------------------------
    async def _serve(self, conn: V2GTPConnection) -> None:
        if self.shutting_down:  # no new sessions while stopping
            conn.abort("SECC shutting down")
            return
        if self.commands is not None and not self.commands.may_offer_charging():
            # no PWM is offered, so a conforming car never gets here; one that does is refused
            log.warning("V2G connection refused: EVSE inoperative or resetting")
            conn.abort("EVSE inoperative")
            return
        self._connection = conn
        self._session_done.clear()
        try:
            await self._resume_hlc_pilot()
            summary = await run_v2g_session(conn, self.settings, self.controller)
            self.summaries.append(summary)
        finally:
            if self._connection is conn:   # a superseding connection may have taken over
                self._connection = None
                if self.commands is not None:   # Scheduled availability/reset, then the state
                    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                        await self.events_published(5.0)   # the Ended event is in the outbox
                    await self.commands.session_ended()
                    await self.commands.publish_state()
                self._session_done.set()

    async def _resume_hlc_pilot(self) -> None:
        """A car that reconnects (superseding its stale connection, whose session ended in
        the safe state with the oscillator off) while still plugged in gets the 5 % PWM
        back: digital communication only, no energy."""
        if (self.board.pilot_state in (PilotState.B, PilotState.C, PilotState.D)
                and self.board.pilot_signal.kind.value != "pwm"):
            try:
                await self.board.set_pilot(PilotSignal.hlc(self.config.slac.hlc_pwm_duty_percent))
            except BoardError as exc:
                log.warning("pilot not resumed for the new connection", extra={"error": str(exc)})

    # --- pilot and SLAC ---------------------------------------------------------------------------
    async def _watch_board(self) -> None:
        events = self.board.subscribe()
        if self.board.pilot_state in (PilotState.B, PilotState.C, PilotState.D):
            await self._plugged_in()
        while True:
            event = await events.get()
            if not isinstance(event, PilotStateChanged):
                continue
            log.info("control pilot", extra={"from": event.previous.value,
                                             "to": event.state.value})
            was_asleep = self.sleep.asleep   # awake: a toggle with the oscillator off counts
            woken = self.sleep.on_pilot(event.state, time.monotonic(),   # when we fall asleep
                                        oscillator_off=self.board.pilot_signal.kind.value != "pwm")
            if was_asleep and not self.sleep.asleep:
                self._cancel_sleep_timer()
            if woken is not None:
                await self._wake_up(woken)
            if event.state is PilotState.B and event.previous is PilotState.A:
                await self._plugged_in()
            elif event.state is PilotState.A:
                await self._unplugged()
            if self.commands is not None:
                await self.commands.publish_state(self._session_id or None
                                                  if self._connection else None)

    async def _plugged_in(self) -> None:
        if self.commands is not None and not self.commands.may_offer_charging():
            log.info("EV plugged in, EVSE inoperative: no PWM, no session")
            return
        if self.transport is not None:
            self.transport.set_open(True)
        if self._slac is not None:
            # The 5 % PWM tells the car to start SLAC: SLAC switches it on once the modem has
            # the new key (SetPwmDuty after CM_SET_KEY.CNF), never before it can answer.
            self._slac.pilot_state_b()
            return
        try:
            await self.board.set_pilot(PilotSignal.hlc(self.config.slac.hlc_pwm_duty_percent))
        except BoardError as exc:  # e-stop, isolation fault ...: the board refuses, stay safe
            log.warning("EV plugged in but charging is blocked", extra={"error": str(exc)})
            return
        self._arm_communication_setup()  # start_at_sdp: the link is up as soon as the car is

    # --- a paused car's sleep and wake-up (secc.v2g.sleep) ---------------------------------------
    def _fall_asleep(self) -> None:
        """SessionStop(Pause) answered: the board went to its safe state (oscillator off, X1);
        no communication while the car sleeps, until its BCB toggle or our wake-up time."""
        self._cancel_communication_setup()
        self._pause_pending = True
        woken = self.sleep.enter(time.monotonic())
        if woken is not None:   # the car toggled while its old connection was still closing
            log.info("paused session: the EV already made its wake-up toggle",
                     extra={"session": self._session_id})
            self._spawn(self._wake_up(woken))
            return
        if self.transport is not None:
            self.transport.set_open(False)
        log.info("paused session: the EV sleeps, oscillator off until a wake-up",
                 extra={"session": self._session_id,
                        "evse_wake_up_s": self.sleep.wake_up_after or "never"})
        self._arm_sleep_timer()

    def _arm_sleep_timer(self) -> None:
        self._cancel_sleep_timer()
        deadline = self.sleep.deadline
        if deadline is not None:
            self._sleep_timer = asyncio.get_running_loop().create_task(
                self._sleep_until(deadline), name="pause-wake-up")

    async def _sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        self._sleep_timer = None
        woken = self.sleep.on_time(time.monotonic())
        if woken is not None:
            await self._wake_up(woken)

    def _cancel_sleep_timer(self) -> None:
        if self._sleep_timer is not None and self._sleep_timer is not asyncio.current_task():
            self._sleep_timer.cancel()
        self._sleep_timer = None

    def _end_sleep(self) -> None:
        self._pause_pending = False
        self.sleep.leave()
        self._cancel_sleep_timer()

    async def _wake_up(self, cause: WakeUpCause) -> None:
        """B1 -> B2: the 5 % PWM back on, SDP and V2G open, the communication set-up time
        running (a car that does not come back in time: safe state, sleeping again)."""
        log.info("paused EV woken up: 5 % PWM, waiting for the session to resume",
                 extra={"by": cause.value, "session": self._session_id})
        if self.commands is not None and not self.commands.may_offer_charging():
            log.info("paused EV not woken: EVSE inoperative")
            return
        if self.transport is not None:
            self.transport.set_open(True)
        try:
            await self.board.set_pilot(PilotSignal.hlc(self.config.slac.hlc_pwm_duty_percent))
        except BoardError as exc:  # e-stop, isolation fault ...: the board refuses, stay safe
            log.warning("paused EV not woken: charging is blocked", extra={"error": str(exc)})
            return
        self._arm_communication_setup()

    # --- V2G_SECC_CommunicationSetup_Timeout: link up -> a V2G session must start ------------
    def _arm_communication_setup(self) -> None:
        self._cancel_communication_setup()
        self._comm_setup = asyncio.get_running_loop().create_task(self._communication_setup())

    def _cancel_communication_setup(self) -> None:
        if self._comm_setup is not None:
            self._comm_setup.cancel()
            self._comm_setup = None

    async def _communication_setup(self) -> None:
        timeout = self.settings.timers.communication_setup_timeout
        await asyncio.sleep(timeout)
        self._comm_setup = None
        log.error("no V2G session within the communication set-up time: safe state, SDP and "
                  "V2G closed until the next plug-in",
                  extra={"timeout_s": timeout, "slac": self._slac is not None})
        if self.transport is not None:
            self.transport.set_open(False)
        if self._connection is not None:
            self._connection.abort("communication set-up time is over")
        await self.board.safe_state(SafeStateReason.COMMUNICATION_ERROR)
        if self._pause_pending:   # a woken car that did not come back: asleep again
            self._fall_asleep()

    def _on_slac_action(self, action: Any) -> None:
        """SLAC's pilot requests and link news (called from the SLAC driver, sync)."""
        from secc.slac import (
            LinkLost,
            MatchFailed,
            MatchSucceeded,
            SetPilotState,
            SetPwmDuty,
        )

        if isinstance(action, SetPwmDuty):
            signal = (PilotSignal.x1() if action.percent >= 100
                      else PilotSignal.hlc(action.percent))
            self._spawn(self._set_slac_pilot(signal))
        elif isinstance(action, SetPilotState):
            self._spawn(self.board.set_pilot(PilotSignal.state_f()))
        elif isinstance(action, MatchSucceeded):
            log.info("SLAC matched", extra={"ev_mac": action.ev_mac.hex(":"),
                                            "attenuation_db": action.attenuation_db})
            self.slac_matches.append(action)
            self._arm_communication_setup()
        elif isinstance(action, MatchFailed):
            log.warning("SLAC failed", extra={"reason": action.reason.value,
                                              "detail": action.detail,
                                              "retrying": action.retrying})
        elif isinstance(action, LinkLost) and self._connection is not None:
            self._connection.abort("PLC link lost")

    async def _set_slac_pilot(self, signal: PilotSignal) -> None:
        try:
            await self.board.set_pilot(signal)
        except BoardError as exc:  # e-stop, isolation fault ...: the board refuses, stay safe
            log.warning("EV plugged in but charging is blocked", extra={"error": str(exc)})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or log.error(
            "pilot command failed", extra={"error": repr(t.exception())}))

    async def _unplugged(self) -> None:
        self._cancel_communication_setup()
        self._end_sleep()
        self.paused.clear()   # no resuming after a re-plug: the transaction ended with the cable
        if self._slac is not None:
            self._slac.pilot_unplugged()
        if self._connection is not None:
            self._connection.abort("EV unplugged")
        report = await self.board.safe_state(SafeStateReason.EV_UNPLUGGED)
        log.info("EV unplugged: safe state", extra={"safe": report.safe})
        if self.reporter is not None:  # a paused session's transaction ends with the cable
            try:
                await self.reporter.ev_unplugged()
            except Exception as exc:  # the outbox refused it: say so loudly
                log.error("transaction event not recorded", extra={"event": "EVUnplugged",
                                                                   "error": repr(exc)})

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        started = time.monotonic()
        limit_malloc_arenas()  # before the warm-up thread allocates (secc.common.memory)
        loop_lag.install()
        # imports and first runs of everything a session needs, in a worker thread while the
        # board, SLAC and the bus come up (the loop keeps serving heartbeats meanwhile)
        warming = asyncio.ensure_future(asyncio.to_thread(warm_up, self.settings,
                                                          self.board))
        try:
            await self._start_edges()
        finally:
            report = await warming  # also when the edges failed: no thread left behind
        self.warm_up_report = report
        log.info("warmed up", extra={"protocols": ",".join(report.protocols),
                                     "schemas": ",".join(report.schemas),
                                     "messages": report.messages,
                                     "modules": report.modules_loaded,
                                     "ms": round(report.seconds * 1000)})
        self._warn_expiring_certificates()
        self.tls_selector = self._tls_selector()
        self.transport = await start_evse_transport(
            EVSETransportConfig(interface=self.interface, offer_tcp=self.config.v2g.tls != "required",
                                tls_context=self.tls_context, tls_selector=self.tls_selector,
                                message_timeout=self.config.v2g.timers.message_timeout),
            self._serve)
        self._tasks.append(asyncio.create_task(self._watch_board(), name="pilot-watch"))
        if self._sim_control is not None:
            await self._sim_control.start()
        if self._sim_follower is not None:
            self._sim_follower.plug_in()
        if self.bus is not None:
            self._tasks.append(asyncio.create_task(self._publish_bus_events(),
                                                   name="bus-events"))
        if self.commands is not None:
            if not self.commands.operative:   # kept from before the restart
                await self.board.set_pilot(PilotSignal.x1())
            await self.commands.publish_state()
        self.ready_seconds = time.monotonic() - started
        await self._announce_ready()

    async def _announce_ready(self) -> None:
        """The one READY point: log it, set ``ready``, call ``ready_callbacks``; from here on
        a session imports nothing (``late_imports`` names what it would)."""
        log.info("SECC ready", extra={"iface": self.interface, "evse_id": self.settings.evse_id,
                                      "protocols": ",".join(self.settings.protocols),
                                      "tcp_port": self.transport.tcp.port if self.transport.tcp
                                      else None,
                                      "tls_port": self.transport.tls.port if self.transport.tls
                                      else None,
                                      "ready_ms": round((self.ready_seconds or 0) * 1000)})
        freeze_heap()  # no full GC pass over the warmed-up heap during a session
        trim_heap()    # the warm-up's freed memory back to the kernel
        late_imports.arm()
        self.ready.set()
        if self.notifier is not None:  # systemd: READY=1 only now that everything serves
            self.notifier.ready(f"idle, EVSE {self.config.bus.evse} ready")
        for callback in self.ready_callbacks:
            result = callback(self)
            if asyncio.iscoroutine(result):
                await result

    async def _start_edges(self) -> None:
        await self.board.start()
        wait_connected = getattr(self.board, "wait_connected", None)
        if wait_connected is not None:  # serial MCU: no pilot events before the link is up
            await wait_connected()
        if not self.config.plc.start_at_sdp:
            from secc.slac.driver import SlacDriver

            self._slac = SlacDriver(self.interface, self.config.slac,
                                    on_action=self._on_slac_action)
            await self._slac.open()
        if self.bus is not None:
            self.bus.on_command("request_stop_transaction", self._on_remote_stop)
            from secc.cert_commands import CertificateCommands

            certs = CertificateCommands(Path(self.config.v2g.certificate_dir),
                                        self._certificates_changed)
            self.bus.on_command("create_csr", certs.create_csr)
            self.bus.on_command("install_certificate", certs.install_certificate)
            self.commands.register()
            await self.bus.start()
            try:  # a charger whose broker is late still charges: authorization waits then
                await self.bus.wait_connected(5.0)
            except (TimeoutError, asyncio.TimeoutError):
                log.warning("bus not connected yet; continuing without it for now")

    def _warn_expiring_certificates(self) -> None:
        """Ahead of time (30 days), at every start: certificates about to expire or expired.
        Reading them needs ``cryptography``: in this process when a feature loaded it anyway
        (Plug & Charge, a meter signing in software), else in a short child process after
        READY (``python -m secc.certstore``), so that the daemon stays without its ~12 MB."""
        directory = Path(self.config.v2g.certificate_dir)
        if CRYPTOGRAPHY_BINDING not in sys.modules:
            self._tasks.append(asyncio.create_task(self._warn_expiring_in_child(directory),
                                                   name="certificate-expiry"))
            return
        from secc.certstore import expiry_warnings

        try:
            warnings = expiry_warnings(directory)
        except Exception as exc:  # noqa: BLE001 - a warning must never stop the charger
            log.warning("certificate store unreadable", extra={"error": str(exc)})
            return
        self._log_expiry(warnings)

    async def _warn_expiring_in_child(self, directory: Path) -> None:
        await self.ready.wait()
        try:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "secc.certstore", str(directory),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            log.warning("certificate store unreadable", extra={"error": str(exc)})
            return
        try:
            out, err = await child.communicate()
        except asyncio.CancelledError:  # the daemon stops: no child left behind
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            raise
        except OSError as exc:
            log.warning("certificate store unreadable", extra={"error": str(exc)})
            return
        if child.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            log.warning("certificate store unreadable",
                        extra={"error": lines[-1] if lines else f"status {child.returncode}"})
            return
        self._log_expiry([json.loads(line) for line in out.decode().splitlines() if line])

    @staticmethod
    def _log_expiry(warnings: list[dict[str, str]]) -> None:
        for w in warnings:
            log.warning(f"certificate {w['state']}: {w['role']} {w['cn']}",
                        extra={"file": w["file"], "fingerprint": w["fingerprint"],
                               "fix": "secc certs list; renew via SignCertificate or "
                                      "secc certs import"})

    async def _certificates_changed(self, kind: str) -> None:
        """A certificate from the CSMS is in the store: use it now. New TLS handshakes get the
        rebuilt contexts (a new SECC chain, new V2G roots), new sessions the MO roots."""
        if kind == "MORootCertificate":
            self.settings = await asyncio.to_thread(session_settings, self.config, self.paused)
        if self.tls_selector is not None:
            await asyncio.to_thread(self.tls_selector.reload)
        log.info("certificates in use", extra={"changed": kind})

    def _tls_selector(self) -> Any:
        """SECC chain per the car's trusted_ca_keys (``secc.tls.selection``), when TLS is on
        and the certificate directory is the one the context came from."""
        if self.tls_context is None:
            return None
        from secc.tls.selection import TlsChainSelector

        selector = TlsChainSelector(Path(self.config.v2g.certificate_dir),
                                    lambda certs: tls_context_for(self.config, certs),
                                    default=self.tls_context)
        try:
            selector.reload(rebuild_default=False)
        except Exception as exc:  # noqa: BLE001 - the given context still serves
            log.warning("TLS chain selection off", extra={"error": str(exc)})
            return None
        return selector

    async def stop(self) -> None:
        self._cancel_communication_setup()
        self._end_sleep()
        if self._sim_control is not None:
            await self._sim_control.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.transport is not None:
            await self.transport.close()
        if self._slac is not None:
            await self._slac.close()
        if self.reporter is not None:
            await self.reporter.close()
        if self.smart_charging is not None:
            await self.smart_charging.close()
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.stop()
        await self.board.close()  # every board enters its safe state on close
        thaw_heap()

    async def shutdown(self, grace: float = 6.0, flush: float = 3.0) -> None:
        """SIGTERM: a running session is stopped as a CSMS stop would (the car is told to
        stop, ramps its current to 0, the contactors open), cut after ``grace`` seconds (the
        board's safe state ramps down and opens them); its transaction ends as a local stop
        (``SHUTDOWN_END_REASON``) and the outbox is flushed to the bridge for ``flush`` s."""
        self.shutting_down = True
        if self.notifier is not None:
            self.notifier.stopping("stopping: ending the session safely")
        conn = self._connection
        if conn is not None:
            log.warning("stopping during a session: asking the car to stop",
                        extra={"session": self._session_id, "grace_s": grace})
            self.controller.request_remote_stop()
            try:
                await asyncio.wait_for(self._session_done.wait(), grace)
            except (TimeoutError, asyncio.TimeoutError):
                log.error("car did not stop in time: cutting the session",
                          extra={"session": self._session_id})
                conn.abort("SECC shutting down")
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._session_done.wait(), 2.0)
        if self.bus is not None and self.bus.outbox_pending:
            try:
                await self.bus.flush(flush)
            except (TimeoutError, asyncio.TimeoutError):
                log.warning("transaction events still in the outbox: sent after restart",
                            extra={"pending": self.bus.outbox_pending})

    @property
    def slac_driver(self) -> Any:
        """The SLAC driver (``secc.slac.driver.SlacDriver``), None with ``start_at_sdp``."""
        return self._slac

    def apply_config(self, config: BoardConfig) -> None:
        """SIGHUP: take over a config ``secc.service.reload_plan`` vetted; sessions started
        from now on use it (a running one keeps its settings)."""
        self.config = config
        self.settings = session_settings(config, self.paused)
        if self.reporter is not None:
            self.reporter.meter_interval = config.bus.meter_interval
        if self._slac is not None:
            self._slac.config = config.slac
            if self._slac.machine is not None:
                self._slac.machine.config = config.slac

    async def run(self, stop: asyncio.Event | None = None) -> None:
        try:
            await self.start()
        except BaseException:
            await self.stop()  # whatever started (board, bus, SLAC) is put back safely
            raise
        try:
            await (stop or asyncio.Event()).wait()
            await self.shutdown()
        finally:
            await self.stop()


def bus_from_config(config: BoardConfig) -> tuple[Any, Authorizer]:
    """(bus client or None, authorizer) as ``[bus]`` says: with the bus on, authorization
    goes to the OCPP bridge; without it, the local policy decides."""
    b = config.bus
    if not b.enabled:
        return None, AllowListAuthorizer(accept_all=b.local_authorization == "accept_all")
    from secc.bus.authorizer import BusAuthorizer
    from secc.bus.client import SeccBusClient, SeccBusConfig
    from secc.common.mqtt import BrokerConfig

    Path(b.state_dir).mkdir(parents=True, exist_ok=True)
    bus = SeccBusClient(SeccBusConfig(
        BrokerConfig(b.mqtt_host, b.mqtt_port, b.username, b.password), evse_id=b.evse,
        outbox_path=Path(b.state_dir) / f"outbox-{config.board.name}.db"))
    return bus, OfflineFallbackAuthorizer(BusAuthorizer(bus),
                                          b.offline_authorization == "accept")
