"""The catalogue's cases as data: one row per case id (../shared/conformance/CATALOGUE.md).

A row names the GoodCase step after which the stimulus is sent (``after``), the request (or a
placeholder resolved per protocol: ``{payment}``, ``{auth}``), how its SessionID or fields
differ from the GoodCase, and what the SECC must answer. Cases that need more than one
stimulus have a ``custom`` coroutine. ``na`` gives the reason a case cannot apply to this SECC
or this suite (shown in the table, never silently dropped).

Protocols: ``din`` (DIN 70121 DC), ``iso2-dc``, ``iso2-ac`` (ISO 15118-2 EIM over TCP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tests.conformance import hooks, resume, tariff
from tests.conformance import pnc as P
from tests.conformance import joint
from tests.conformance import cp_after_stop
from tests.conformance.runner import Target, drive_to
from tests.conformance.tester import Ev

DC = ("din", "iso2-dc")
ISO2_DC = ("iso2-dc",)
AC = ("iso2-ac",)
CMN = ("din", "iso2-dc", "iso2-ac")
ISO2 = ("iso2-dc", "iso2-ac")

Custom = Callable[[Target, Any, "Case"], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    protocols: tuple[str, ...]
    after: str | None = None          # GoodCase step done before the stimulus
    send: str = ""                    # request element or {payment}/{auth}
    sid: str = "own"                  # own | foreign | zero8 | zero1
    over: dict[str, Any] = field(default_factory=dict)
    expect: str | dict[str, str] = "OK"   # code, or per protocol; "FAILED*": any FAILED code
    close: bool | None = None         # default: True for FAILED answers
    cp: str | None = None             # CP state the car shows before the stimulus
    check: Callable[[Ev, Any, Target], Awaitable[None] | None] | None = None
    custom: Custom | None = None
    long: bool = False
    na: str = ""
    daemon: str = "eim"               # which SECC serves it: eim (TCP) | pnc / cps (TLS + PnC, pnc.py) | a
    #                                   board variant of daemon._variants() (tariff, ...)
    side_by_side: bool = False        # own link and daemon, run in parallel (test_resume.py)
    na_for: dict[str, str] = field(default_factory=dict)   # protocol -> why n/a for it alone


def sessions_differ(case: Case) -> bool:
    return case.sid != "own"


# --------------------------------------------------------------------------- checks
async def power_stopped(ev: Ev, res: Any, target: Target) -> None:
    """Energy transfer stopped: contactors open, no 5 % PWM any more."""
    await target.pilot.wait_for(lambda s: not s["contactors_closed"] and s["pwm"] != "pwm"
                                and s["output_current_a"] < 1.0, within=3.0)


async def contactors_closed(ev: Ev, res: Any, target: Target) -> None:
    await target.pilot.wait_for(lambda s: s["contactors_closed"], within=3.0)


async def contactors_open(ev: Ev, res: Any, target: Target) -> None:
    await target.pilot.wait_for(lambda s: not s["contactors_closed"], within=3.0)


def new_session(ev: Ev, res: Any, target: Target) -> None:
    assert ev.session_id != bytes(8) and len(ev.session_id) == 8, ev.session_id
    assert res.evseid not in (None, "")


def charge_service_offered(ev: Ev, res: Any, target: Target) -> None:
    service = res.charge_service
    assert service is not None
    if ev.p.din:
        assert service.energy_transfer_type == ev.p.mode
    else:
        assert ev.p.mode in service.supported_energy_transfer_mode.energy_transfer_mode


def schedule_offered(ev: Ev, res: Any, target: Target) -> None:
    assert res.evse_processing == "Finished"
    assert res.sa_schedule_list is not None and res.sa_schedule_list.sa_schedule_tuple
    max_entries = getattr(ev, "max_entries", None)
    if max_entries:
        assert len(res.sa_schedule_list.sa_schedule_tuple) <= max_entries


def loop_answer(ev: Ev, res: Any, target: Target) -> None:
    assert ev.log[-1].seconds < 0.25, f"CurrentDemandRes after {ev.log[-1].seconds:.3f} s"
    if not ev.p.din:
        assert res.receipt_required is False          # EIM: no receipt
        assert res.evseid
    assert res.dc_evse_status.evse_status_code == "EVSE_Ready"


def charging_status_answer(ev: Ev, res: Any, target: Target) -> None:
    assert res.receipt_required is False and res.evseid and res.sa_schedule_tuple_id == 1
    assert res.ac_evse_status is not None


def meter_info_present(ev: Ev, res: Any, target: Target) -> None:
    charging_status_answer(ev, res, target)
    assert res.meter_info is not None and res.meter_info.meter_id


def meter_reading_present(ev: Ev, res: Any, target: Target) -> None:
    meter_info_present(ev, res, target)
    assert res.meter_info.meter_reading is not None


def current_demand_meter_info(ev: Ev, res: Any, target: Target) -> None:
    """CurrentDemandRes with MeterInfo although no receipt is asked for ([v2g].meter_info =
    "always", the default board)."""
    loop_answer(ev, res, target)
    assert res.meter_info is not None and res.meter_info.meter_id, res.meter_info


def current_demand_meter_reading(ev: Ev, res: Any, target: Target) -> None:
    current_demand_meter_info(ev, res, target)
    assert res.meter_info.meter_reading is not None and res.meter_info.meter_reading >= 0


def precharge_ready(ev: Ev, res: Any, target: Target) -> None:
    assert res.dc_evse_status.evse_status_code == "EVSE_Ready"


# --------------------------------------------------------------------------- custom flows
async def cable_check_ongoing_first(target: Target, p: Any, case: Case) -> None:
    """CP C/D, then CableCheckReq repeated: Ongoing first (a fresh insulation test), Finished
    inside the EV's 40 s limit."""
    ev = await drive_to(target, p, "ChargeParameterDiscovery")
    try:
        await target.pilot.set(case.cp or "C")
        _, first = await ev.request("CableCheckReq")
        assert first.response_code == "OK" and first.evse_processing == "Ongoing"
        start = asyncio.get_running_loop().time()
        _, res = await ev.until_finished("CableCheckReq", limit=40.0)
        assert res.response_code == "OK" and res.evse_processing == "Finished", res
        assert asyncio.get_running_loop().time() - start < 40.0
    finally:
        ev.conn.close()


async def renegotiate_then(target: Target, p: Any, case: Case) -> None:
    """From the charge loop: PowerDelivery(Renegotiate) OK, ChargeParameterDiscovery (with
    the case's optional fields) OK, then PowerDelivery(Start) OK (ISO-2; our reading of the
    -2 table goes straight back to PowerDelivery, docs/conformance.md)."""
    ev = await drive_to(target, p, "ChargeLoop")
    try:
        _, res = await ev.request("PowerDeliveryReq", progress="Renegotiate", start=True,
                                  timeout=5.0)
        assert res.response_code == "OK", res
        over = dict(case.over)
        ev.max_entries = over.get("max_entries_sa_schedule_tuple")
        _, res = await ev.until_finished("ChargeParameterDiscoveryReq", **_cpd_over(ev, over))
        assert res.response_code == "OK", res
        schedule_offered(ev, res, target)
        _, res = await ev.request("PowerDeliveryReq", start=True, timeout=5.0)
        assert res.response_code == "OK", res
        if p.ac:
            await target.pilot.set("C")
    finally:
        ev.conn.close()


def _cpd_over(ev: Ev, over: dict[str, Any]) -> dict[str, Any]:
    return dict(over)   # departure_time / max entries: the tester's request shorthands


async def aging(target: Target, p: Any, case: Case) -> None:
    """Repeated full sessions (R4 "aging"): every cycle to SessionStop OK."""
    for _ in range(3):
        ev = await drive_to(target, p, "SessionStop")
        await ev.conn.expect_close(5.0)
        ev.conn.close()


async def state_e_in_loop(target: Target, p: Any, case: Case) -> None:
    """CP shorted to PE (state E) in the charge loop: emergency shutdown (power off,
    oscillator off) within ~1.5 s, no further OK loop answer, close within 5 s."""
    ev = await drive_to(target, p, "ChargeLoop")
    try:
        await target.pilot.set("E")
        await target.pilot.wait_for(lambda s: not s["contactors_closed"] and s["pwm"] != "pwm"
                                    and s["output_current_a"] < 1.0, within=1.5)
        name = "ChargingStatusReq" if p.ac else "CurrentDemandReq"
        try:
            _, res = await ev.request(name)
            assert not str(res.response_code).startswith("OK"), "OK loop answer in state E"
        except Exception as exc:   # closed already: fine
            if isinstance(exc, AssertionError):
                raise
        await ev.conn.expect_close(5.0)
    finally:
        ev.conn.close()


async def unknown_namespace(target: Target, p: Any, case: Case) -> None:
    ev = await drive_to(target, p, None)
    try:
        res = await ev.handshake([("urn:iso:15118:2:2014:MsgDef", 3, 0, 1)])
        assert res.response_code == "Failed_NoNegotiation"
        assert res.schema_id is None
        await ev.conn.expect_close(5.0)
    finally:
        ev.conn.close()


async def minor_deviation(target: Target, p: Any, case: Case) -> None:
    ev = await drive_to(target, p, None)
    try:
        res = await ev.handshake([(p.namespace, 2, 1, 1)])
        sap = res
        assert sap.response_code == "OK_SuccessfulNegotiationWithMinorDeviation", sap
        assert sap.schema_id == 1
    finally:
        ev.conn.close()


async def sap_ok(target: Target, p: Any, case: Case) -> None:
    ev = await drive_to(target, p, None)
    try:
        res = await ev.handshake()
        sap = res
        assert sap.response_code == "OK_SuccessfulNegotiation" and sap.schema_id == 1, sap
    finally:
        ev.conn.close()


def sdp_case(request_frame: bytes | None, answered: bool, security: int = 0x10) -> Custom:
    async def run(target: Target, p: Any, case: Case) -> None:
        from tests.conformance.runner import plug_in
        from tests.conformance.tester import parse_sdp_response, sdp_discover

        await plug_in(target)
        answer = await sdp_discover(target.interface, request_frame,
                                    tries=2 if not answered else 5, wait=0.5)
        if not answered:
            assert answer is None, f"answered a corrupt SDP request: {answer.hex()}"
            answer = await sdp_discover(target.interface)   # liveness: a good one still works
            assert answer is not None
            return
        assert answer is not None, "no SDP response"
        res = parse_sdp_response(answer)
        assert (res["version"], res["inverse"], res["type"], res["length"]) == \
            (0x01, 0xFE, 0x9001, 0x14), res
        assert res["address"].startswith("fe80:") and 49152 <= res["port"] <= 65535, res
        assert res["security"] == security and res["transport"] == 0x00, res
    return run


def v2gtp_case(version: int = 0x01, inverse: int | None = None, ptype: int = 0x8001,
               length: int | None = None) -> Custom:
    """SessionSetupReq with one header field broken: no response within 2 s (R4); closing
    is our documented deviation (docs/conformance.md), then a new session works."""
    async def run(target: Target, p: Any, case: Case) -> None:
        from tests.conformance.tester import Closed, Silence, v2gtp

        ev = await drive_to(target, p, "SupportedAppProtocol")
        try:
            body = ev.encode("SessionSetupReq", _default(ev, "SessionSetupReq"), bytes(8))
            frame = v2gtp(ptype, body, version=version, inverse=inverse, length=length)
            await ev.conn.send_raw(frame)
            try:
                ptype_back, payload = await ev.conn.receive(2.0)
                if length == 0:   # the body then parses as the next header: still not answered
                    raise AssertionError(f"answered: {ptype_back:#x} {payload[:16].hex()}")
                raise AssertionError(f"answered a broken header: {ptype_back:#x}")
            except (Silence, Closed):
                pass
        finally:
            ev.conn.close()
        ev = await drive_to(target, p, "SessionSetup")   # liveness
        ev.conn.close()
    return run


def _default(ev: Ev, name: str) -> Any:
    from tests.conformance.tester import default_request
    return default_request(ev.p, name)


async def v2gtp_valid_header(target: Target, p: Any, case: Case) -> None:
    ev = await drive_to(target, p, "SupportedAppProtocol")
    try:
        from tests.conformance.tester import v2gtp
        await ev.conn.send_raw(v2gtp(0x8001, ev.encode("SessionSetupReq",
                                                        _default(ev, "SessionSetupReq"))))
        ptype, _ = await ev.conn.receive(2.0)
        assert ptype == 0x8001
        header = ev.conn  # the header bytes were checked by receive's framing
        assert header is not None
    finally:
        ev.conn.close()


async def welding_while_c(target: Target, p: Any, case: Case) -> None:
    """After PowerDelivery(Stop) the car keeps CP in C: WeldingDetection/SessionStop FAILED."""
    ev = await drive_to(target, p, "ChargeLoop")
    try:
        _, res = await ev.request("PowerDeliveryReq", start=False, timeout=5.0)
        assert res.response_code == "OK"
        await target.pilot.set("C")
        _, res = await ev.request(case.send)
        assert str(res.response_code).startswith("FAILED"), res.response_code
        await ev.conn.expect_close(5.0)
    finally:
        ev.conn.close()


async def cable_check_in_b(target: Target, p: Any, case: Case) -> None:
    """CableCheckReq while CP stays B (the car never closed S2), repeated as a car repeats
    while Ongoing: FAILED within the CP state detection time (1.5 s; the SECC debounces the
    pilot), no insulation test voltage on the cable at any time, then close."""
    ev = await drive_to(target, p, "ChargeParameterDiscovery")
    try:
        await target.pilot.set("B")
        before = (await target.pilot.status())["insulation_test"]   # an earlier car's test
        start = asyncio.get_running_loop().time()
        while True:
            _, res = await ev.request("CableCheckReq")
            status = await target.pilot.status()
            assert status["insulation_test"] == before, f"a test was started: {status}"
            if res.response_code != "OK" or res.evse_processing != "Ongoing":
                break
            assert asyncio.get_running_loop().time() - start < 2.0, "still Ongoing after 2 s"
            await asyncio.sleep(0.2)
        assert str(res.response_code).startswith("FAILED"), res
        await ev.conn.expect_close(5.0)
    finally:
        ev.conn.close()


def silence_after(step: str, low: float, high: float, energy_off: bool = False) -> Custom:
    """The EV goes silent after ``step``: the SECC closes between ``low`` and ``high``
    seconds after its last answer (V2G_SECC_Sequence_Timeout 60 s, or the CommunicationSetup
    time before SessionSetup), stopping any energy transfer."""
    async def run(target: Target, p: Any, case: Case) -> None:
        ev = await drive_to(target, p, step)
        try:
            waited = await ev.conn.expect_close(high)
            assert waited >= low, f"closed after {waited:.1f} s, before {low} s"
            if energy_off:
                await power_stopped(ev, None, target)
        finally:
            ev.conn.close()
    return run


async def silence_after_connect(target: Target, p: Any, case: Case) -> None:
    ev = await drive_to(target, p, None)
    try:
        await ev.conn.expect_close(65.0)
    finally:
        ev.conn.close()


async def sdp_after_communication_setup(target: Target, p: Any, case: Case) -> None:
    from tests.conformance.runner import plug_in
    from tests.conformance.tester import sdp_discover

    await plug_in(target)
    await asyncio.sleep(20.5)
    assert await sdp_discover(target.interface, tries=5, wait=0.25) is None, \
        "SDP still answered after the CommunicationSetup time"


async def connect_after_communication_setup(target: Target, p: Any, case: Case) -> None:
    from tests.conformance.runner import connect, plug_in

    await plug_in(target)
    ev = await connect(target, p)       # SDP answered in time
    ev.conn.close()
    await asyncio.sleep(20.5)
    try:
        ev = await connect(target, p)
    except (AssertionError, OSError, TimeoutError):
        return
    try:
        res = await ev.handshake()
        raise AssertionError(f"new connection served after CommunicationSetup: {res}")
    except Exception as exc:
        if isinstance(exc, AssertionError):
            raise
    finally:
        ev.conn.close()


# --------------------------------------------------------------------------- the table
NO_VAS = "the SECC offers no value-added service (EIM over TCP): nothing to detail"
RESUME = "pause/resume (SessionStop Pause, wake-up, old SessionID) is not ported yet"
OEM_DC = ("an OEM provisioning certificate with a changed domain-component attribute: neither "
          "the SECC nor the test CSMS's CPS checks the certificate profile's DC, and we could "
          "not check which values ISO 15118-2 Annex F requires; not ported")
COUNTRY = ("R4's 'Country attribute where the profile forbids it': the contract certificate "
           "profile clause (ISO 15118-2 Annex F) is not available to us to check which "
           "attributes are forbidden; not ported")

A14 = "1.4 SessionSetup"
A15 = "1.5 ServiceDiscovery/Detail/PaymentSelection"
A16 = "1.6 Authorization"
A17 = "1.7 ChargeParameterDiscovery"
A18 = "1.8 CableCheck/PreCharge"
A19 = "1.9 PowerDelivery"
A110 = "1.10 CurrentDemand/ChargingStatus"
A111 = "1.11 MeteringReceipt"
A112 = "1.12 WeldingDetection"
A113 = "1.13 SessionStop"
A114 = "1.14 Timers"
A12 = "1.2 SDP"
A13 = "1.3 SupportedAppProtocol"
A117 = "1.17 Error handling"
A116 = "1.16 Certificate installation/update"
SEQ = "FAILED_SequenceError"
UNK = "FAILED_UnknownSession"

CASES: list[Case] = [
    # 1.2 SDP
    Case("TC_SECC_CMN_VTB_SDP_001", A12, ("din",), custom=sdp_case(None, True)),
    Case("TC_SECC_CMN_VTB_SDP_007", A12, ("iso2-dc",), custom=sdp_case(
        bytes.fromhex("01fe9000000000020000"), True)),
    Case("TC_SECC_CMN_VTB_SDP_002", A12, ISO2, custom=P.sdp_tls, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_SDP_003", A12, ISO2, custom=P.sdp_tls, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_V2GTPSDP_001", A12, ("din",), custom=sdp_case(None, True)),
    Case("TC_SECC_CMN_VTB_V2GTPSDP_002", A12, ("din",), custom=sdp_case(
        bytes.fromhex("01fe9000000000001000"), False)),
    Case("TC_SECC_CMN_VTB_V2GTPSDP_003", A12, ("din",), custom=sdp_case(
        bytes.fromhex("01fe7000000000021000"), False)),
    Case("TC_SECC_CMN_VTB_V2GTPSDP_004", A12, ("din",), custom=sdp_case(
        bytes.fromhex("fffe9000000000021000"), False)),
    Case("TC_SECC_CMN_VTB_V2GTPSDP_005", A12, ("din",), custom=sdp_case(
        bytes.fromhex("01ff9000000000021000"), False)),
    Case("TC_SECC_CMN_VTB_SDP_004", A12, ("din",), custom=sdp_after_communication_setup,
         long=True),
    *[Case(f"TC_SECC_CMN_VTB_SDP_00{i}", A12, ISO2, custom=P.tls_sdp_after_communication_setup,
           long=True, daemon="pnc") for i in (5, 6)],
    # 1.3 SupportedAppProtocol
    Case("TC_SECC_CMN_VTB_SupportedAppProtocol_004", A13, CMN, custom=sap_ok),
    Case("TC_SECC_CMN_VTB_SupportedAppProtocol_001", A13, ISO2, custom=P.sap_over_tls,
         daemon="pnc"),
    Case("TC_SECC_CMN_VTB_SupportedAppProtocol_006", A13, CMN, custom=minor_deviation),
    Case("TC_SECC_CMN_VTB_SupportedAppProtocol_002", A13, CMN, custom=unknown_namespace),
    # 1.4 SessionSetup
    Case("TC_SECC_CMN_VTB_SessionSetup_001", A14, CMN, "SupportedAppProtocol",
         "SessionSetupReq", sid="zero8", expect="OK_NewSessionEstablished", check=new_session),
    Case("TC_SECC_CMN_VTB_SessionSetup_002", A14, CMN, "SupportedAppProtocol",
         "ServiceDiscoveryReq", sid="zero1", expect=SEQ),
    *[Case(f"TC_SECC_{e}_VTB_SessionSetup_00{i}", A14, proto, custom=resume.flow(wake, sid),
           side_by_side=True)
      for e, proto in (("AC", AC), ("DC", ISO2_DC)) for i, wake, sid in resume.SESSION_SETUP],
    # 1.5 ServiceDiscovery ... PaymentServiceSelection
    Case("TC_SECC_CMN_VTB_ServiceDiscovery_001", A15, CMN, "SessionSetup",
         "ServiceDiscoveryReq", check=charge_service_offered),
    Case("TC_SECC_CMN_VTB_ServiceDiscovery_002", A15, CMN, "SessionSetup", "{auth}",
         expect=SEQ),
    Case("TC_SECC_CMN_VTB_ServiceDiscovery_003", A15, CMN, "SessionSetup",
         "ServiceDiscoveryReq", sid="foreign", expect=UNK),
    *[Case(f"TC_SECC_{e}_VTB_ServiceDiscovery_00{i}", A15, proto,
           custom=resume.flow(wake, then="ServiceDiscovery"), side_by_side=True)
      for e, proto in (("AC", AC), ("DC", ISO2_DC)) for i, wake in ((1, "EV"), (2, "EVSE"))],
    *[Case(f"TC_SECC_CMN_VTB_ServiceDetail_0{i:02d}", A15, ISO2, na=NO_VAS)
      for i in (1, 2, 11, 12)],
    Case("TC_SECC_CMN_VTB_ServiceDetail_003", A15, ISO2, "ServiceDiscovery",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_CMN_VTB_ServiceDetail_004", A15, ISO2, "ServiceDiscovery", "ServiceDiscoveryReq",
         expect=SEQ, custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_ServiceDetail_005", A15, ISO2, "ServiceDiscovery", "ServiceDetailReq",
         sid="foreign", expect=UNK),
    Case("TC_SECC_CMN_VTB_ServiceDetail_006", A15, ISO2, "ServiceDiscovery", "ServiceDetailReq",
         sid="foreign", expect=UNK, custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_ServiceDetail_007", A15, ISO2, "ServiceDiscovery", "ServiceDetailReq",
         over={"service_id": 99}, expect="FAILED_ServiceIDInvalid"),
    Case("TC_SECC_CMN_VTB_ServiceDetail_008", A15, ISO2, "ServiceDiscovery", "ServiceDetailReq",
         over={"service_id": 99}, expect="FAILED_ServiceIDInvalid", custom=P.pnc_row,
         daemon="pnc"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_001", A15, CMN, "ServiceDiscovery",
         "{payment}"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_002", A15, CMN, "ServiceDiscovery",
         "{payment}"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_003", A15, ISO2, "ServiceDiscovery",
         "PaymentServiceSelectionReq", over={"selected_payment_option": "Contract"},
         custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_004", A15, CMN, "ServiceDiscovery",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_005", A15, CMN, "ServiceDiscovery",
         "{payment}", sid="foreign", expect=UNK),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_006", A15, CMN, "ServiceDiscovery",
         "{payment}", over={"selected_service_list": 99},
         expect="FAILED_ServiceSelectionInvalid"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_007", A15, CMN, na=(
        "only the charge service is offered: a list without ServiceID 1 names an unoffered "
        "ServiceID, which is _006 (FAILED_ServiceSelectionInvalid)")),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_009", A15, CMN, "ServiceDiscovery",
         "{payment}", over={"selected_payment_option": "Contract"},
         expect="FAILED_PaymentSelectionInvalid"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_010", A15, CMN, "ServiceDiscovery",
         "PaymentServiceSelectionReq", over={"selected_payment_option": "ExternalPayment"},
         expect="FAILED_PaymentSelectionInvalid", check=joint.offers_contract_only,
         custom=P.pnc_row, daemon="contract_only", na_for={"din": joint.DIN_EIM_ONLY}),
    Case("TC_SECC_CMN_VTB_PaymentDetails_001", A15, ISO2, "PaymentServiceSelection",
         "PaymentDetailsReq", check=P.fresh_challenge, custom=P.pnc_row, daemon="pnc"),
    *[Case(f"TC_SECC_CMN_VTB_PaymentDetails_00{i}", A15, ISO2, daemon="cps",
           custom=P.after_provisioning(what, "PaymentDetails"))
      for i, what in ((2, "Installation"), (3, "Update"))],
    Case("TC_SECC_CMN_VTB_PaymentDetails_004", A15, ISO2, "PaymentServiceSelection",
         "ServiceDiscoveryReq", expect=SEQ, custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_PaymentDetails_005", A15, ISO2, "PaymentServiceSelection",
         "PaymentDetailsReq", sid="foreign", expect=UNK, custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_PaymentDetails_007", A15, ISO2, daemon="pnc", custom=(
        P.payment_details_with("leaf_expired", "FAILED_CertificateExpired"))),
    Case("TC_SECC_CMN_VTB_PaymentDetails_008", A15, ISO2, daemon="pnc", na=COUNTRY),
    Case("TC_SECC_CMN_VTB_PaymentDetails_009", A15, ISO2, daemon="pnc", custom=(
        P.payment_details_with("sub1_expired", "FAILED_CertificateExpired"))),
    Case("TC_SECC_CMN_VTB_PaymentDetails_010", A15, ISO2, daemon="pnc", custom=(
        P.payment_details_with("sub2_expired", "FAILED_CertificateExpired"))),
    # 1.6 Authorization
    Case("TC_SECC_CMN_VTB_Authorization_001", A16, CMN, "PaymentServiceSelection", "{auth}",
         check=lambda ev, res, t: None),
    Case("TC_SECC_CMN_VTB_Authorization_003", A16, CMN, "PaymentServiceSelection",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_CMN_VTB_Authorization_005", A16, CMN, "PaymentServiceSelection", "{auth}",
         sid="foreign", expect=UNK),
    Case("TC_SECC_CMN_VTB_Authorization_002", A16, ISO2, custom=P.authorization_ok,
         daemon="pnc"),
    Case("TC_SECC_CMN_VTB_Authorization_004", A16, ISO2, "PaymentDetails", "ServiceDiscoveryReq",
         expect=SEQ, custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_Authorization_006", A16, ISO2, "PaymentDetails", "AuthorizationReq",
         sid="foreign", expect=UNK, custom=P.pnc_row, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_Authorization_007", A16, ISO2, daemon="pnc", custom=(
        P.bad_authorization("other_challenge", "FAILED_ChallengeInvalid"))),
    Case("TC_SECC_CMN_VTB_Authorization_010", A16, ISO2, daemon="pnc", custom=(
        P.bad_authorization("wrong_key", "FAILED_SignatureError"))),
    Case("TC_SECC_CMN_VTB_Authorization_011", A16, ISO2, daemon="pnc", custom=(
        P.bad_authorization("changed", "FAILED_SignatureError"))),
    *[Case(f"TC_SECC_CMN_VTB_Authorization_01{i}", A16, ISO2, daemon="cps",
           custom=P.after_provisioning(what, "Authorization"))
      for i, what in ((2, "Installation"), (3, "Update"))],
    # 1.7 ChargeParameterDiscovery
    Case("TC_SECC_DC_VTB_ChargeParameterDiscovery_001", A17, DC, "Authorization",
         "ChargeParameterDiscoveryReq", check=schedule_offered),
    Case("TC_SECC_AC_VTB_ChargeParameterDiscovery_001", A17, AC, "Authorization",
         "ChargeParameterDiscoveryReq", check=schedule_offered),
    Case("TC_SECC_DC_VTB_ChargeParameterDiscovery_002", A17, DC, "Authorization",
         "ChargeParameterDiscoveryReq", sid="foreign", expect=UNK),
    Case("TC_SECC_AC_VTB_ChargeParameterDiscovery_003", A17, AC, "Authorization",
         "ChargeParameterDiscoveryReq", sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_ChargeParameterDiscovery_003", A17, DC, "Authorization",
         "ChargeParameterDiscoveryReq", over={"mode": "DC_core"},
         expect={"din": "FAILED_WrongEnergyTransferType",
                 "iso2-dc": "FAILED_WrongEnergyTransferMode"}),
    Case("TC_SECC_AC_VTB_ChargeParameterDiscovery_004", A17, AC, "Authorization",
         "ChargeParameterDiscoveryReq", over={"mode": "DC_extended"},
         expect="FAILED_WrongEnergyTransferMode"),
    Case("TC_SECC_DC_VTB_ChargeParameterDiscovery_004", A17, DC, "Authorization",
         "ChargeParameterDiscoveryReq", over={"max_current": -100},
         expect="FAILED_WrongChargeParameter"),
    Case("TC_SECC_AC_VTB_ChargeParameterDiscovery_005", A17, AC, "Authorization",
         "ChargeParameterDiscoveryReq", over={"max_current": -100},
         expect="FAILED_WrongChargeParameter"),
    Case("TC_SECC_CMN_VTB_ChargeParameterDiscovery_001", A17, CMN, "Authorization",
         "ServiceDiscoveryReq", expect=SEQ),
    *[Case(f"TC_SECC_{e}_VTB_ChargeParameterDiscovery_0{i:02d}", A17, proto, "Authorization",
           "ChargeParameterDiscoveryReq", over=over, check=schedule_offered)
      for e, proto in (("AC", AC), ("DC", ISO2_DC))
      for i, over in ((6, {"departure_time": 50}), (12, {"max_entries_sa_schedule_tuple": 12}),
                      (16, {"departure_time": 50, "max_entries_sa_schedule_tuple": 12}))],
    *[Case(f"TC_SECC_{e}_VTB_ChargeParameterDiscovery_0{i:02d}", A17, proto, over=over,
           custom=tariff.tariff_first_cpd, daemon="tariff")
      for e, proto in (("AC", AC), ("DC", ISO2_DC)) for i, over in tariff.FIRST.items()],
    *[Case(f"TC_SECC_AC_VTB_ChargeParameterDiscovery_0{i:02d}", A17, AC, custom=renegotiate_then,
           over=over) for i, over in ((2, {}), (23, {"departure_time": 50}),
                                      (25, {"max_entries_sa_schedule_tuple": 12}),
                                      (28, {"departure_time": 50,
                                            "max_entries_sa_schedule_tuple": 12}))],
    *[Case(f"TC_SECC_DC_VTB_ChargeParameterDiscovery_0{i:02d}", A17, ISO2_DC,
           custom=renegotiate_then, over=over)
      for i, over in ((5, {}), (23, {"departure_time": 50}),
                      (25, {"max_entries_sa_schedule_tuple": 12}),
                      (28, {"departure_time": 50, "max_entries_sa_schedule_tuple": 12}))],
    *[Case(f"TC_SECC_{e}_VTB_ChargeParameterDiscovery_0{i:02d}", A17, proto, over=over,
           custom=tariff.tariff_after_renegotiation, daemon="tariff")
      for e, proto in (("AC", AC), ("DC", ISO2_DC)) for i, over in tariff.RENEGOTIATED.items()],
    *[Case(f"TC_SECC_{e}_VTB_ChargeParameterDiscovery_0{i:02d}", A17, proto, over=over,
           custom=resume.flow(wake, then="ChargeParameterDiscovery"), side_by_side=True)
      for e, proto in (("AC", AC), ("DC", ISO2_DC)) for i, wake, over in resume.CPD_MATRIX],
    *[Case(f"TC_SECC_{e}_VTB_ChargeParameterDiscovery_0{i:02d}", A17, proto, over=over,
           custom=joint.resumed_with_tariff(wake), side_by_side=True, daemon="tariff")
      for e, proto in (("AC", AC), ("DC", ISO2_DC)) for i, wake, over in joint.RESUMED_WITH_TARIFF],
    # 1.8 CableCheck / PreCharge
    Case("TC_SECC_DC_VTB_CableCheck_001", A18, DC, custom=cable_check_ongoing_first, cp="C"),
    Case("TC_SECC_DC_VTB_CableCheck_002", A18, DC, custom=cable_check_ongoing_first, cp="D"),
    Case("TC_SECC_DC_VTB_CableCheck_006", A18, DC, custom=cable_check_ongoing_first, cp="C"),
    Case("TC_SECC_DC_VTB_CableCheck_007", A18, DC, custom=cable_check_ongoing_first, cp="D"),
    Case("TC_SECC_DC_VTB_CableCheck_008", A18, DC, custom=cable_check_in_b),
    Case("TC_SECC_DC_VTB_CableCheck_003", A18, DC, "ChargeParameterDiscovery",
         "ServiceDiscoveryReq", cp="C", expect=SEQ),
    Case("TC_SECC_DC_VTB_CableCheck_004", A18, DC, "ChargeParameterDiscovery", "CableCheckReq",
         cp="C", sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_PreCharge_001", A18, DC, "CableCheck", "PreChargeReq",
         check=lambda ev, res, t: precharge_ready(ev, res, t)),
    Case("TC_SECC_DC_VTB_PreCharge_002", A18, DC, "CableCheck", "ServiceDiscoveryReq",
         expect=SEQ),
    Case("TC_SECC_DC_VTB_PreCharge_003", A18, DC, "CableCheck", "PreChargeReq", sid="foreign",
         expect=UNK),
    # 1.9 PowerDelivery
    Case("TC_SECC_DC_VTB_PowerDelivery_001", A19, DC, "PreCharge", "PowerDeliveryReq",
         over={"start": True}),
    Case("TC_SECC_DC_VTB_PowerDelivery_002", A19, DC, "ChargeLoop", "PowerDeliveryReq",
         over={"start": False}),
    Case("TC_SECC_DC_VTB_PowerDelivery_003", A19, DC, "PreCharge", "ServiceDiscoveryReq",
         expect=SEQ),
    Case("TC_SECC_DC_VTB_PowerDelivery_004", A19, DC, "ChargeLoop", "ServiceDiscoveryReq",
         expect=SEQ),
    Case("TC_SECC_DC_VTB_PowerDelivery_005", A19, DC, "PreCharge", "PowerDeliveryReq",
         over={"start": True}, sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_PowerDelivery_006", A19, DC, "ChargeLoop", "PowerDeliveryReq",
         over={"start": False}, sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_PowerDelivery_007", A19, ISO2_DC, "PreCharge", "PowerDeliveryReq",
         over={"start": True, "profile_w": 150_010}, expect="FAILED_ChargingProfileInvalid"),
    Case("TC_SECC_DC_VTB_PowerDelivery_008", A19, ISO2_DC, "PreCharge", "PowerDeliveryReq",
         over={"start": True, "sa_schedule_tuple_id": 2},
         expect="FAILED_TariffSelectionInvalid"),
    Case("TC_SECC_DC_VTB_PowerDelivery_011", A19, ISO2_DC, "ChargeLoop", "PowerDeliveryReq",
         over={"start": True, "progress": "Renegotiate"}),
    Case("TC_SECC_DC_VTB_PowerDelivery_012", A19, ISO2_DC, custom=renegotiate_then),
    Case("TC_SECC_DC_VTB_PowerDelivery_013", A19, ISO2_DC, "PreCharge", "PowerDeliveryReq",
         over={"start": True, "progress": "Renegotiate"}, expect="FAILED*"),
    *[Case(f"TC_SECC_DC_VTB_PowerDelivery_0{14 + i}", A19, DC, "ChargeLoop", "PowerDeliveryReq",
           over={"start": False, "ev_error": error})
      for i, error in enumerate((
          "FAILED_RESSTemperatureInhibit", "FAILED_EVShiftPosition",
          "FAILED_ChargerConnectorLockFault", "FAILED_EVRESSMalfunction",
          "FAILED_ChargingCurrentdifferential", "FAILED_ChargingVoltageOutOfRange",
          "FAILED_ChargingSystemIncompatibility", "NoData"))],
    Case("TC_SECC_AC_VTB_PowerDelivery_001", A19, AC, "ChargeParameterDiscovery",
         "PowerDeliveryReq", over={"start": True}, check=contactors_closed, cp="C+"),
    Case("TC_SECC_AC_VTB_PowerDelivery_002", A19, AC, "ChargeParameterDiscovery",
         "PowerDeliveryReq", over={"start": True}, check=contactors_closed, cp="D+"),
    Case("TC_SECC_AC_VTB_PowerDelivery_003", A19, AC, "ChargeLoop", "PowerDeliveryReq",
         over={"start": True, "progress": "Renegotiate"}),
    Case("TC_SECC_AC_VTB_PowerDelivery_004", A19, AC, custom=renegotiate_then),
    Case("TC_SECC_AC_VTB_PowerDelivery_005", A19, AC, "ChargeLoop", "PowerDeliveryReq",
         over={"start": False}, check=contactors_open, cp="B+"),
    Case("TC_SECC_AC_VTB_PowerDelivery_006", A19, AC, "ChargeParameterDiscovery",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_AC_VTB_PowerDelivery_007", A19, AC, "ChargeLoop", "ServiceDiscoveryReq",
         expect=SEQ),
    Case("TC_SECC_AC_VTB_PowerDelivery_008", A19, AC, "ChargeParameterDiscovery",
         "PowerDeliveryReq", over={"start": True}, sid="foreign", expect=UNK),
    Case("TC_SECC_AC_VTB_PowerDelivery_009", A19, AC, "ChargeLoop", "PowerDeliveryReq",
         over={"start": False}, sid="foreign", expect=UNK),
    Case("TC_SECC_AC_VTB_PowerDelivery_010", A19, AC, "ChargeParameterDiscovery",
         "PowerDeliveryReq", over={"start": True, "profile_w": 22_090},
         expect="FAILED_ChargingProfileInvalid"),
    Case("TC_SECC_AC_VTB_PowerDelivery_011", A19, AC, "ChargeParameterDiscovery",
         "PowerDeliveryReq", over={"start": True, "sa_schedule_tuple_id": 2},
         expect="FAILED_TariffSelectionInvalid"),
    Case("TC_SECC_AC_VTB_PowerDelivery_014", A19, AC, "ChargeParameterDiscovery",
         "PowerDeliveryReq", over={"start": True, "progress": "Renegotiate"}, expect="FAILED*"),
    # 1.10 CurrentDemand / ChargingStatus
    Case("TC_SECC_DC_VTB_CurrentDemand_001", A110, DC, "PowerDeliveryStart", "CurrentDemandReq",
         check=loop_answer),
    Case("TC_SECC_DC_VTB_CurrentDemand_002", A110, ISO2_DC, custom=P.loop_with_receipts(),
         daemon="pnc"),
    Case("TC_SECC_DC_VTB_CurrentDemand_003", A110, DC, "ChargeLoop", "ServiceDiscoveryReq",
         expect=SEQ, check=power_stopped),
    Case("TC_SECC_DC_VTB_CurrentDemand_004", A110, DC, "ChargeLoop", "CurrentDemandReq",
         sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_CurrentDemand_006", A110, ISO2_DC, "PowerDeliveryStart",
         "CurrentDemandReq", check=current_demand_meter_info),
    Case("TC_SECC_DC_VTB_CurrentDemand_008", A110, ISO2_DC, "PowerDeliveryStart",
         "CurrentDemandReq", check=current_demand_meter_reading),
    *[Case(f"TC_SECC_DC_VTB_CurrentDemand_00{i}", A110, ISO2_DC, daemon="pnc",
           custom=P.loop_with_receipts(reading=i == 9)) for i in (7, 9)],
    Case("TC_SECC_AC_VTB_ChargingStatus_001", A110, AC, "PowerDeliveryStart",
         "ChargingStatusReq", check=charging_status_answer),
    Case("TC_SECC_AC_VTB_ChargingStatus_002", A110, AC, custom=P.loop_with_receipts(),
         daemon="pnc"),
    Case("TC_SECC_AC_VTB_ChargingStatus_003", A110, AC, "ChargeLoop", "ServiceDiscoveryReq",
         expect=SEQ, check=power_stopped),
    Case("TC_SECC_AC_VTB_ChargingStatus_004", A110, AC, "ChargeLoop", "ChargingStatusReq",
         sid="foreign", expect=UNK),
    Case("TC_SECC_AC_VTB_ChargingStatus_006", A110, AC, "PowerDeliveryStart",
         "ChargingStatusReq", check=meter_info_present),
    Case("TC_SECC_AC_VTB_ChargingStatus_008", A110, AC, "PowerDeliveryStart",
         "ChargingStatusReq", check=meter_reading_present),
    *[Case(f"TC_SECC_AC_VTB_ChargingStatus_00{i}", A110, AC, daemon="pnc",
           custom=P.loop_with_receipts(reading=i == 9)) for i in (7, 9)],
    # 1.11 MeteringReceipt (PnC)
    *[Case(f"TC_SECC_{e}_VTB_MeteringReceipt_00{i}", A111, proto, daemon="pnc",
           custom=P.metering_receipt(stimulus, expect))
      for e, proto in (("AC", AC), ("DC", ISO2_DC))
      for i, stimulus, expect in ((1, "good", "OK"), (2, "sequence", SEQ), (3, "foreign", UNK),
                                  (4, "reading", "FAILED_MeteringSignatureNotValid"),
                                  (6, "wrong_key", "FAILED_MeteringSignatureNotValid"),
                                  (7, "changed", "FAILED_MeteringSignatureNotValid"))],
    # 1.12 WeldingDetection
    Case("TC_SECC_DC_VTB_WeldingDetection_001", A112, DC, "PowerDeliveryStop",
         "WeldingDetectionReq"),
    Case("TC_SECC_DC_VTB_WeldingDetection_002", A112, DC, "PowerDeliveryStop",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_DC_VTB_WeldingDetection_003", A112, DC, "PowerDeliveryStop",
         "WeldingDetectionReq", sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_WeldingDetection_005", A112, DC,
         custom=cp_after_stop.welding_detection_with_cp_c),
    # 1.13 SessionStop
    Case("TC_SECC_DC_VTB_SessionStop_001", A113, DC, "PowerDeliveryStop", "SessionStopReq"),
    Case("TC_SECC_DC_VTB_SessionStop_002", A113, DC, "WeldingDetection", "SessionStopReq"),
    Case("TC_SECC_AC_VTB_SessionStop_001", A113, AC, "PowerDeliveryStop", "SessionStopReq"),
    Case("TC_SECC_DC_VTB_SessionStop_003", A113, DC, "PowerDeliveryStop",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_DC_VTB_SessionStop_007", A113, DC, "WeldingDetection", "ServiceDiscoveryReq",
         expect=SEQ),
    Case("TC_SECC_AC_VTB_SessionStop_002", A113, AC, "PowerDeliveryStop",
         "ServiceDiscoveryReq", expect=SEQ),
    Case("TC_SECC_DC_VTB_SessionStop_004", A113, DC, "PowerDeliveryStop", "SessionStopReq",
         sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_SessionStop_008", A113, DC, "WeldingDetection", "SessionStopReq",
         sid="foreign", expect=UNK),
    Case("TC_SECC_AC_VTB_SessionStop_003", A113, AC, "PowerDeliveryStop", "SessionStopReq",
         sid="foreign", expect=UNK),
    Case("TC_SECC_DC_VTB_SessionStop_006", A113, DC,
         custom=cp_after_stop.session_stop_with_cp_c),
    Case("TC_SECC_DC_VTB_SessionStop_010", A113, DC, custom=aging),
    Case("TC_SECC_AC_VTB_SessionStop_011", A113, AC, custom=aging),
    # 1.16 certificate handling (PnC)
    *[Case(f"TC_SECC_CMN_VTB_Certificate{what}_002", A116, ISO2, "PaymentServiceSelection",
           "ServiceDiscoveryReq", expect=SEQ, custom=P.pnc_row, daemon="pnc")
      for what in ("Installation", "Update")],
    *[Case(f"TC_SECC_CMN_VTB_Certificate{what}_003", A116, ISO2, "PaymentServiceSelection",
           f"Certificate{what}Req", sid="foreign", expect=UNK, custom=P.pnc_row, daemon="pnc")
      for what in ("Installation", "Update")],
    *[Case(f"TC_SECC_CMN_VTB_Certificate{what}_001", A116, ISO2, daemon="cps",
           custom=P.certificate_provisioned(what)) for what in ("Installation", "Update")],
    *[Case(f"TC_SECC_CMN_VTB_CertificateInstallation_00{i}", A116, ISO2, daemon="pnc",
           custom=P.certificate_request("Installation", defect, expect))
      for i, defect, expect in ((5, "wrong_key", "FAILED_SignatureError"),
                                (6, "changed", "FAILED_SignatureError"),
                                (7, "expired", "FAILED_CertificateExpired"))],
    Case("TC_SECC_CMN_VTB_CertificateInstallation_008", A116, ISO2, na=OEM_DC, daemon="pnc"),
    *[Case(f"TC_SECC_CMN_VTB_CertificateUpdate_0{i:02d}", A116, ISO2, daemon="pnc",
           custom=P.certificate_request("Update", defect, expect))
      for i, defect, expect in (
          (5, "wrong_key", "FAILED_SignatureError"), (6, "changed", "FAILED_SignatureError"),
          (7, "order", "FAILED_CertChainError"), (8, "foreign_leaf", "FAILED_CertChainError"),
          (9, "foreign_sub2", "FAILED_CertChainError"),
          (10, "foreign_sub1", "FAILED_CertChainError"),
          (11, "foreign_chain", "FAILED_CertChainError"), (12, "emaid_wrong", "FAILED"),
          (13, "emaid_malformed", "FAILED"), (14, "cert_emaid_wrong", "FAILED"),
          (15, "cert_emaid_malformed", "FAILED"), (16, "expired", "FAILED_CertificateExpired"))],
    Case("TC_SECC_CMN_VTB_CertificateUpdate_017", A116, ISO2, na=COUNTRY, daemon="pnc"),
    # 1.17 error handling
    Case("TC_SECC_CMN_VTB_V2GTPSessionSetup_001", A117, CMN, custom=v2gtp_valid_header),
    Case("TC_SECC_CMN_VTB_V2GTPSessionSetup_002", A117, CMN, custom=v2gtp_case(length=0)),
    Case("TC_SECC_CMN_VTB_V2GTPSessionSetup_003", A117, CMN, custom=v2gtp_case(ptype=0x7001)),
    Case("TC_SECC_CMN_VTB_V2GTPSessionSetup_004", A117, CMN, custom=v2gtp_case(version=0xFF,
                                                                               inverse=0xFE)),
    Case("TC_SECC_CMN_VTB_V2GTPSessionSetup_005", A117, CMN, custom=v2gtp_case(inverse=0xFF)),
    Case("TC_SECC_DC_VTB_Abnormal_001", A117, DC, custom=state_e_in_loop),
    Case("TC_SECC_AC_VTB_Abnormal_001", A117, AC, custom=state_e_in_loop),
    Case("TC_SECC_DC_VTB_Abnormal_002", A117, DC, na="loss of PE needs hardware fault injection"),
    Case("TC_SECC_AC_VTB_Abnormal_002", A117, AC, na="loss of PE needs hardware fault injection"),
    # 1.14 timers (long: make conformance only)
    Case("TC_SECC_CMN_VTB_SupportedAppProtocol_003", A114, CMN, custom=silence_after_connect,
         long=True),
    Case("TC_SECC_CMN_VTB_SupportedAppProtocol_005", A114, CMN,
         custom=connect_after_communication_setup, long=True),
    Case("TC_SECC_CMN_VTB_SessionSetup_003", A114, CMN, custom=silence_after(
        "SupportedAppProtocol", 0.0, 65.0), long=True),
    Case("TC_SECC_CMN_VTB_SessionSetup_004", A114, CMN, custom=silence_after(
        "SupportedAppProtocol", 0.0, 25.0), long=True),
    Case("TC_SECC_CMN_VTB_ServiceDiscovery_004", A114, CMN, custom=silence_after(
        "SessionSetup", 59.0, 65.0), long=True),
    Case("TC_SECC_CMN_VTB_ServiceDetail_009", A114, ISO2, custom=silence_after(
        "ServiceDiscovery", 59.0, 65.0), long=True),
    Case("TC_SECC_CMN_VTB_ServiceDetail_010", A114, ISO2, custom=P.pnc_silence_after(
        "ServiceDiscovery", 59.0, 65.0), long=True, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_PaymentServiceSelection_008", A114, ISO2, na=NO_VAS),
    *[Case(f"TC_SECC_CMN_VTB_{name}", A114, CMN, custom=silence_after(
        "PaymentServiceSelection", 59.0, 65.0), long=True)
      for name in ("Authorization_008", "PaymentDetails_006", "CertificateInstallation_004",
                   "CertificateUpdate_004")],
    Case("TC_SECC_CMN_VTB_Authorization_009", A114, ISO2, custom=P.pnc_silence_after(
        "PaymentDetails", 59.0, 65.0), long=True, daemon="pnc"),
    Case("TC_SECC_CMN_VTB_ChargeParameterDiscovery_002", A114, CMN, custom=silence_after(
        "Authorization", 59.0, 65.0), long=True),
    Case("TC_SECC_DC_VTB_CableCheck_005", A114, DC, custom=silence_after(
        "ChargeParameterDiscovery", 59.0, 65.0), long=True),
    Case("TC_SECC_AC_VTB_PowerDelivery_012", A114, AC, custom=silence_after(
        "ChargeParameterDiscovery", 59.0, 65.0), long=True),
    Case("TC_SECC_DC_VTB_PreCharge_004", A114, DC, custom=silence_after(
        "CableCheck", 59.0, 65.0, energy_off=True), long=True),
    Case("TC_SECC_DC_VTB_PowerDelivery_009", A114, DC, custom=silence_after(
        "PreCharge", 59.0, 65.0, energy_off=True), long=True),
    Case("TC_SECC_DC_VTB_CurrentDemand_005", A114, DC, custom=silence_after(
        "PowerDeliveryStart", 0.0, 65.0, energy_off=True), long=True),
    Case("TC_SECC_AC_VTB_ChargingStatus_005", A114, AC, custom=silence_after(
        "PowerDeliveryStart", 0.0, 65.0, energy_off=True), long=True),
    Case("TC_SECC_DC_VTB_PowerDelivery_010", A114, DC, custom=silence_after(
        "ChargeLoop", 0.0, 65.0, energy_off=True), long=True),
    Case("TC_SECC_AC_VTB_PowerDelivery_013", A114, AC, custom=silence_after(
        "ChargeLoop", 0.0, 65.0, energy_off=True), long=True),
    *[Case(f"TC_SECC_{name}", A114, proto, custom=silence_after(
        "PowerDeliveryStop", 0.0, 65.0), long=True)
      for name, proto in (("DC_VTB_WeldingDetection_004", DC), ("DC_VTB_SessionStop_005", DC),
                          ("DC_VTB_SessionStop_009", DC), ("AC_VTB_SessionStop_004", AC))],
    *[Case(f"TC_SECC_{e}_VTB_MeteringReceipt_005", A114, proto, custom=P.pnc_silence_after(
        "Receipt", 0.0, 65.0), long=True, daemon="pnc")
      for e, proto in (("AC", AC), ("DC", ISO2_DC))],
    Case("TC_SECC_CMN_VTB_Authorization_014", A114, CMN, custom=hooks.authorization_held,
         long=True),
    *[Case(f"TC_SECC_CMN_VTB_Authorization_0{i}", A114, CMN, long=True, daemon=daemon,
           custom=joint.pnc_authorization_held(what), na_for={"din": joint.DIN_NO_PNC})
      for i, daemon, what in ((15, "pnc", None), (16, "cps", "Installation"),
                              (17, "cps", "Update"))],
    *[Case(f"TC_SECC_{e}_VTB_ChargeParameterDiscovery_014", A114, proto,
           custom=hooks.schedule_held, long=True) for e, proto in (("AC", AC), ("DC", DC))],
]

BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "duplicate case id in the table"

#: catalogue areas no row covers, and why (the table lists their ids as not applicable).
#: None today: §1.1 SLAC has its rows in slac_cases.py (test_slac.py: the tester plays the EV
#: and the SECC's local modem on the veth link, the daemon runs SLAC).
UNCOVERED_AREAS: dict[str, str] = {}
