"""A -20 DC session over a real socket: TLS 1.3 with mutual authentication across the netns
veth pair, SupportedAppProtocol, then the shared session driver (secc.session) running the
-20 core against the -20 EVCC driven by sim.evcc's runner loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from secc.authorization import AllowListAuthorizer
from secc.session.driver import SessionSettings, run_v2g_session
from secc.tls import CertificateDirectory, ClientAuth, iso20_client_context, iso20_server_context
from secc.v2g.evse import (
    EnterSafeState,
    EvseSnapshot,
    InsulationTestResult,
    Isolation,
    PublishEvent,
    SetContactors,
    SetDcOutput,
    StartIsolationCheck,
)
from secc.v2g.timers import V2GTimerConfig
from sim.ev_transport import connect_v2gtp, run_secc_and_ev, v2gtp_server_side
from sim.evcc import Battery, EvccConfig, Misbehaviour, protocols
from sim.evcc.iso20 import Iso20Evcc
from sim.evcc.runner import drive_evcc, negotiate
from sim.testing.waits import wait_for_thread_event


# The 0.5 s loop timeout is tested in virtual time; on a loaded CI machine real time may stall.
RELAXED = V2GTimerConfig(charge_loop_sequence_timeout_iso20=3.0)


class SimulatedCharger:
    """EvseController for the driver: the board's state as actions leave it, with a 0.2 s
    isolation measurement; CP shows C once the contactors are closed."""

    def __init__(self) -> None:
        self.authorizer = AllowListAuthorizer(accept_all=True)
        self.state = EvseSnapshot()
        self.isolation_due: float | None = None
        self.events: list[str] = []
        self.safe_states: list[str] = []

    async def refresh(self, snapshot: EvseSnapshot) -> None:
        now = asyncio.get_running_loop().time()
        if self.isolation_due is not None and now >= self.isolation_due:
            self.state.isolation, self.isolation_due = Isolation.VALID, None
            test = self.state.insulation_test
            self.state.insulation_test = InsulationTestResult(
                test.token, test.voltage, complete=True, state=Isolation.VALID)
        for name in ("present_voltage", "present_current", "isolation", "insulation_test",
                     "contactors_closed",
                     "cp_state"):
            setattr(snapshot, name, getattr(self.state, name))

    async def perform(self, action) -> None:
        s = self.state
        if isinstance(action, SetContactors):
            s.contactors_closed = action.closed
            s.cp_state = "C" if action.closed else "B"
            if not action.closed:
                s.present_voltage = s.present_current = 0.0
        elif isinstance(action, SetDcOutput):
            s.present_current = action.current if action.enabled else 0.0
            if action.enabled:
                s.present_voltage = action.voltage
        elif isinstance(action, StartIsolationCheck):
            s.isolation = Isolation.INVALID
            s.insulation_test = InsulationTestResult(action.token, action.voltage)
            self.isolation_due = asyncio.get_running_loop().time() + 0.2
        elif isinstance(action, EnterSafeState):
            self.safe_states.append(action.reason)
            s.contactors_closed = False
            s.present_voltage = s.present_current = 0.0
        elif isinstance(action, PublishEvent):
            self.events.append(action.kind)


@pytest.fixture
def tls_files(tmp_path, test_pki):
    files = test_pki.write_secc_files(tmp_path / "certs")
    vehicle = test_pki.write_vehicle_files(tmp_path / "vehicle")
    return {"certs": CertificateDirectory(tmp_path / "certs"), "v2g_root": files["v2g_root"],
            "chain": vehicle["chain"], "key": vehicle["key"]}


@pytest.mark.netns
def test_iso20_dc_session_over_tls13_with_mutual_auth(veth_link, tls_files):
    server_ctx = iso20_server_context(tls_files["certs"], ClientAuth.REQUIRED)
    client_ctx = iso20_client_context(tls_files["v2g_root"], tls_files["chain"],
                                      tls_files["key"])
    charger = SimulatedCharger()
    results: dict = {}
    settings = SessionSettings(evse_id="DE*PYS*E1", protocols=("iso20-dc",), timers=RELAXED)

    async def handler(connection):
        results["tls"] = connection.tls_version
        results["summary"] = await run_v2g_session(connection, settings, charger)

    secc_main = v2gtp_server_side(veth_link.ifnames["secc"], handler, ssl_context=server_ctx,
                                  handshake_timeout=5)

    async def ev_main(info):
        connection = await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
        try:
            protocol, code = await negotiate(
                connection, [protocols.offer_for(protocols.get("iso20"), "dc")], "dc")
            connection.restrict_payload_types(protocol.payload_types)
            evcc = protocol.factory(Battery(max_iterations=8), EvccConfig(mode="dc"), None)
            record = await drive_evcc(connection, evcc)
            return protocol.name, code, record, evcc
        finally:
            await connection.close()

    _, (name, code, record, evcc) = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=30)
    assert name == "iso20" and code == "OK_SuccessfulNegotiation"
    assert isinstance(evcc, Iso20Evcc)
    assert record.failure is None, record.failure
    assert record.loop_iterations == 8 and record.evse_id == "DE*PYS*E1"
    assert [s for s in record.steps_sent if s != record.steps_sent[0]][-1] == "SessionStop"
    assert results["tls"] == "TLSv1.3"
    summary = results["summary"]
    assert summary.protocol == "iso20-dc" and summary.final_state == "Terminated"
    assert summary.session_id == record.session_id.hex()
    assert "ChargingStarted" in charger.events and "SessionStopped" in charger.events
    assert not charger.state.contactors_closed and charger.state.present_current == 0


@pytest.mark.netns
def test_iso20_pause_and_resume_across_two_tls_connections(veth_link, tls_files):
    """SessionStop(Pause) on one TLS connection, OK_OldSessionJoined on the next: the session
    driver builds a new adapter per connection, the paused session survives between them."""
    server_ctx = iso20_server_context(tls_files["certs"], ClientAuth.REQUIRED)
    client_ctx = iso20_client_context(tls_files["v2g_root"], tls_files["chain"],
                                      tls_files["key"])
    charger = SimulatedCharger()
    summaries: list = []
    settings = SessionSettings(evse_id="DE*PYS*E1", protocols=("iso20-dc",), timers=RELAXED)

    first_over = threading.Event()

    async def handler(connection):
        summaries.append(await run_v2g_session(connection, settings, charger))
        first_over.set()

    secc_main = v2gtp_server_side(veth_link.ifnames["secc"], handler, ssl_context=server_ctx,
                                  handshake_timeout=5)

    async def one_session(info, misbehaviour, resume):
        connection = await connect_v2gtp(veth_link.ifnames["ev"], *info, ssl_context=client_ctx)
        try:
            protocol, _ = await negotiate(
                connection, [protocols.offer_for(protocols.get("iso20"), "dc")], "dc")
            connection.restrict_payload_types(protocol.payload_types)
            evcc = protocol.factory(Battery(max_iterations=3),
                                    EvccConfig(mode="dc", resume_session_id=resume),
                                    misbehaviour)
            return await drive_evcc(connection, evcc)
        finally:
            await connection.close()

    async def ev_main(info):
        first = await one_session(info, Misbehaviour(pause_instead_of_terminate=True), None)
        await wait_for_thread_event(first_over, 10, "the SECC to end the paused session")
        second = await one_session(info, None, first.session_id)
        return first, second

    _, (first, second) = run_secc_and_ev(veth_link, secc_main, ev_main, timeout=30)
    assert first.failure is None and first.paused
    assert second.failure is None and second.resumed
    assert second.session_id == first.session_id
    assert [s.session_id for s in summaries] == [first.session_id.hex()] * 2
    assert "SessionPaused" in charger.events and "SessionResumed" in charger.events
