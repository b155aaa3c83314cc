"""Session-layer benchmark (issue 6): SECC CPU per CurrentDemandReq -> CurrentDemandRes, and
response latency p50/p99 with 1 and 10 concurrent sessions over TCP and TLS 1.2 on loopback.

Part 1 times decode + session core + encode in-process (no I/O): the SECC's CPU per message.
Part 2 runs N complete SECC session drivers (SupportedAppProtocol, SessionSetup ... into
the DC charge loop) in a SECC process against N scripted EVs in another process, and
measures the EV-side round trip of each CurrentDemandReq. The charger's hardware is replaced by a controller that does
nothing, so the numbers are the software stack's own (codec, state machine, TLS, asyncio).

    python benchmarks/session_bench.py [--loops 300] [--sessions 1 10]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import exi_schemas  # noqa: E402
from exi_schemas.generated import appprotocol as AP  # noqa: E402
from exi_schemas.generated import din, iso2  # noqa: E402
from secc.authorization import AllowListAuthorizer  # noqa: E402
from secc.din import DinAdapter, DinSession  # noqa: E402
from secc.iso2 import Iso2Adapter, Iso2Session  # noqa: E402
from secc.session import SessionSettings, run_v2g_session  # noqa: E402
from secc.v2g.evse import Isolation  # noqa: E402
from secc.v2gtp import PayloadType, V2GTPConnection  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- part 1: CPU per message ------------------------------------------------------------------
def current_demand_req(M, sid: bytes) -> bytes:
    """CurrentDemandReq of DIN (``M`` = din) or ISO-2 (``M`` = iso2): same fields there."""
    return exi_schemas.encode(M.V2G_Message(
        header=M.MessageHeaderType(session_id=sid), body=M.BodyType(
            current_demand_req=M.CurrentDemandReqType(
                dc_ev_status=M.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR",
                                               evresssoc=55),
                ev_target_current=M.PhysicalValueType(multiplier=0, unit="A", value=120),
                ev_maximum_voltage_limit=M.PhysicalValueType(multiplier=0, unit="V", value=450),
                ev_maximum_current_limit=M.PhysicalValueType(multiplier=0, unit="A", value=200),
                charging_complete=False,
                ev_target_voltage=M.PhysicalValueType(multiplier=0, unit="V", value=400)))))


def cpu_per_message(adapter, core, request: bytes, n: int) -> float:
    core.state = "CurrentDemand"
    now = 0.0
    start = time.process_time()
    for _ in range(n):
        now += 0.05
        req = adapter.decode(PayloadType.EXI, request)
        reply = core.receive(req.name, req.body, now, req.session_id)
        adapter.encode(reply.response_name, reply.response, core.session_id)
    return (time.process_time() - start) / n * 1e6


# --- part 2: latency with concurrent sessions -----------------------------------------------------
class NullController:
    """Hardware stand-in: readings never change, actions cost nothing."""

    authorizer = AllowListAuthorizer(accept_all=True)

    async def refresh(self, snapshot):
        snapshot.isolation = Isolation.VALID
        snapshot.cp_state = "C"  # the car is in state C while charging
        snapshot.present_voltage = 400.0
        snapshot.present_current = 120.0

    async def perform(self, action):
        return None


def din_req(name, body, sid):
    field = {n: f for f, n in DinAdapter.REQUEST_FIELDS}[name]
    return exi_schemas.encode(din.V2G_Message(header=din.MessageHeaderType(session_id=sid),
                                              body=din.BodyType(**{field: body})))


async def ev_session(conn: V2GTPConnection, loops: int, latencies: list[float]) -> None:
    M = din
    st = M.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=50)

    def pv(v, u):
        return M.PhysicalValueType(multiplier=0, unit=u, value=v)

    sid = bytes(8)

    async def ask(name, body):
        nonlocal sid
        await conn.send(PayloadType.EXI, din_req(name, body, sid))
        msg = exi_schemas.decode((await conn.receive(10)).payload, "din")
        sid = msg.header.session_id
        return msg.body

    await conn.send(PayloadType.EXI, exi_schemas.encode(AP.supportedAppProtocolReq(app_protocol=[
        AP.AppProtocolType(protocol_namespace="urn:din:70121:2012:MsgDef", version_number_major=2,
                           version_number_minor=0, schema_id=1, priority=1)])))
    await conn.receive(10)
    await ask("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x01" * 6))
    await ask("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
    await ask("ServicePaymentSelectionReq", M.ServicePaymentSelectionReqType(
        selected_payment_option="ExternalPayment", selected_service_list=M.SelectedServiceListType(
            selected_service=[M.SelectedServiceType(service_id=1)])))
    while (await ask("ContractAuthenticationReq", M.ContractAuthenticationReqType())
           ).contract_authentication_res.evse_processing != "Finished":
        await asyncio.sleep(0.005)
    await ask("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
        ev_requested_energy_transfer_type="DC_extended",
        dc_ev_charge_parameter=M.DC_EVChargeParameterType(
            dc_ev_status=st, ev_maximum_current_limit=pv(200, "A"),
            ev_maximum_voltage_limit=pv(450, "V"))))
    await ask("CableCheckReq", M.CableCheckReqType(dc_ev_status=st))
    await ask("PreChargeReq", M.PreChargeReqType(dc_ev_status=st, ev_target_voltage=pv(400, "V"),
                                                 ev_target_current=pv(2, "A")))
    await ask("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=True))
    req = M.CurrentDemandReqType(dc_ev_status=st, ev_target_current=pv(120, "A"),
                                 ev_target_voltage=pv(400, "V"), charging_complete=False)
    for _ in range(loops):
        t0 = time.perf_counter()
        await ask("CurrentDemandReq", req)
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.01)  # cars send CurrentDemandReq every ~50-100 ms; keep it busy


def serve_secc(port_queue, tls_dir: str | None) -> None:
    """The SECC side, in its own process (as on a charger, where the EV is another machine)."""
    settings = SessionSettings(evse_id="00", protocols=("din",))
    server_ctx = None
    if tls_dir:
        from secc.tls.context import CertificateDirectory, iso2_server_context
        server_ctx = iso2_server_context(CertificateDirectory(Path(tls_dir)))

    async def serve():
        async def on_client(reader, writer):
            await run_v2g_session(V2GTPConnection(reader, writer), settings, NullController())

        server = await asyncio.start_server(on_client, "::1", 0, family=socket.AF_INET6,
                                            ssl=server_ctx)
        port_queue.put((server.sockets[0].getsockname()[1], time.process_time()))
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, port_queue.get)
        port_queue.put(time.process_time())

    asyncio.run(serve())


async def latency_run(sessions: int, loops: int, tls: bool) -> tuple[list[float], float]:
    tls_dir = client_ctx = None
    if tls:
        from sim.testing.pki import TestPKI
        from secc.tls.context import iso2_client_context
        directory = Path(tempfile.mkdtemp(prefix="pysecc-bench-"))
        TestPKI().write_secc_files(directory)
        tls_dir = str(directory)
        client_ctx = iso2_client_context(directory / "v2g_root.pem")
    ctx = multiprocessing.get_context("fork")
    to_child, from_child = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=serve_secc, args=(_Duplex(from_child, to_child), tls_dir))
    child.start()
    port, cpu0 = await asyncio.to_thread(from_child.get)
    latencies: list[float] = []

    async def one():
        reader, writer = await asyncio.open_connection(
            "::1", port, ssl=client_ctx, server_hostname="" if client_ctx else None)
        await ev_session(V2GTPConnection(reader, writer), loops, latencies)
        writer.close()

    await asyncio.gather(*(one() for _ in range(sessions)))
    to_child.put("stop")
    cpu1 = await asyncio.to_thread(from_child.get)
    child.join(10)
    return latencies, cpu1 - cpu0


class _Duplex:
    """put() goes to the parent, get() reads the parent's stop signal."""

    def __init__(self, up, down):
        self.up, self.down = up, down

    def put(self, item):
        self.up.put(item)

    def get(self):
        return self.down.get()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loops", type=int, default=300)
    parser.add_argument("--cpu-n", type=int, default=5000)
    parser.add_argument("--sessions", type=int, nargs="*", default=[1, 10])
    args = parser.parse_args()

    print("== SECC CPU per CurrentDemandReq -> CurrentDemandRes (decode + core + encode)")
    sid = bytes.fromhex("0102030405060708")
    for label, adapter, core, request in (
            ("DIN  ", DinAdapter(), DinSession(evse_id="00"), current_demand_req(din, sid)),
            ("ISO-2", Iso2Adapter(), Iso2Session(evse_id="DE*PYS*E1*1"),
             current_demand_req(iso2, sid))):
        core.session_id = sid
        print(f"   {label} {cpu_per_message(adapter, core, request, args.cpu_n):7.1f} µs/message")

    print("== CurrentDemand round trip seen by the EV (loopback, full stack, SECC in its own process)")
    for tls in (False, True):
        for n in args.sessions:
            latencies, cpu = asyncio.run(latency_run(n, args.loops, tls))
            print(f"   {'TLS 1.2' if tls else 'TCP    '} {n:2d} session(s): "
                  f"p50 {statistics.median(latencies):.2f} ms  "
                  f"p99 {percentile(latencies, 99):.2f} ms  "
                  f"({len(latencies)} requests; SECC process CPU {cpu:.2f} s = "
                  f"{cpu / len(latencies) * 1e6:.0f} µs per request incl. session set-up)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"== max RSS {rss:.1f} MiB  (target: p99 < 5 ms at 10 sessions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
