"""How a catalogue case is run: the GoodCase chain up to a named step, then the stimulus.

``drive_to(ev, pilot, step)`` runs R4's GoodCase procedure (CP A -> B, SDP, TCP, SAP,
SessionSetup ... the charge loop ... SessionStop) up to and including ``step`` and checks
every answer on the way is OK. The steps are named after the request they send.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tests.conformance.tester import Connection, Ev, Pilot, Protocol, sdp_discover

#: the GoodCase chain per protocol: step names in order
DC_STEPS = ("SupportedAppProtocol", "SessionSetup", "ServiceDiscovery", "PaymentServiceSelection",
            "Authorization", "ChargeParameterDiscovery", "CableCheck", "PreCharge",
            "PowerDeliveryStart", "ChargeLoop", "PowerDeliveryStop", "WeldingDetection",
            "SessionStop")
AC_STEPS = ("SupportedAppProtocol", "SessionSetup", "ServiceDiscovery", "PaymentServiceSelection",
            "Authorization", "ChargeParameterDiscovery", "PowerDeliveryStart", "ChargeLoop",
            "PowerDeliveryStop", "SessionStop")


def steps_of(p: Protocol) -> tuple[str, ...]:
    return AC_STEPS if p.ac else DC_STEPS


@dataclass
class Target:
    """Where the daemon under test is reached from the EV namespace."""

    interface: str
    pilot: Pilot


async def plug_in(target: Target) -> None:
    """CP A (clean start), then B; the SECC must answer with 5 % PWM."""
    pilot = target.pilot
    await pilot.set("A")
    await pilot.wait_for(lambda s: s["cp"] == "A" and s["lock"] == "unlocked"
                         and not s["contactors_closed"], within=5.0)
    await pilot.set("B")
    await pilot.wait_for(lambda s: s["cp"] == "B" and s["pwm"] == "pwm"
                         and abs(s["duty_percent"] - 5.0) < 0.5, within=3.0)


async def connect(target: Target, p: Protocol) -> Ev:
    answer = await sdp_discover(target.interface)
    assert answer is not None, "no SDP response"
    body = answer[8:]
    import socket
    import struct
    address = socket.inet_ntop(socket.AF_INET6, body[:16])
    port = struct.unpack(">H", body[16:18])[0]
    return Ev(p, await Connection.open(target.interface, address, port))


def ok(res, what: str) -> None:
    code = getattr(res, "response_code", None)
    assert code is not None and str(code).startswith("OK"), f"{what}: {code}"


async def run_step(ev: Ev, target: Target, step: str) -> None:
    p = ev.p
    if step == "SupportedAppProtocol":
        res = await ev.handshake()
        assert res.response_code.startswith("OK"), res
    elif step == "SessionSetup":
        _, res = await ev.request("SessionSetupReq")
        ok(res, step)
    elif step == "ServiceDiscovery":
        _, res = await ev.request("ServiceDiscoveryReq")
        ok(res, step)
    elif step == "PaymentServiceSelection":
        _, res = await ev.request(p.payment_selection)
        ok(res, step)
    elif step == "Authorization":
        _, res = await ev.until_finished(p.authorization)
        ok(res, step)
        assert res.evse_processing == "Finished"
    elif step == "ChargeParameterDiscovery":
        _, res = await ev.until_finished("ChargeParameterDiscoveryReq")
        ok(res, step)
    elif step == "CableCheck":
        await target.pilot.set("C")      # the EV is ready (S2 closed) before the cable check
        _, res = await ev.until_finished("CableCheckReq", limit=40.0)
        ok(res, step)
        assert res.evse_processing == "Finished"
    elif step == "PreCharge":
        deadline = asyncio.get_running_loop().time() + 7.0
        while True:
            _, res = await ev.request("PreChargeReq")
            ok(res, step)
            volts = res.evse_present_voltage.value * 10 ** res.evse_present_voltage.multiplier
            if volts >= 380:
                break
            assert asyncio.get_running_loop().time() < deadline, f"pre-charge at {volts} V"
            await asyncio.sleep(0.1)
    elif step == "PowerDeliveryStart":
        _, res = await ev.request("PowerDeliveryReq", start=True, timeout=5.0)
        ok(res, step)
        if p.ac:
            await target.pilot.set("C")
    elif step == "ChargeLoop":
        for _ in range(3):
            name = "ChargingStatusReq" if p.ac else "CurrentDemandReq"
            _, res = await ev.request(name)
            ok(res, step)
            await asyncio.sleep(0.1)
    elif step == "PowerDeliveryStop":
        _, res = await ev.request("PowerDeliveryReq", start=False, timeout=5.0)
        ok(res, step)
        await target.pilot.set("B")
    elif step == "WeldingDetection":
        _, res = await ev.request("WeldingDetectionReq")
        ok(res, step)
    elif step == "SessionStop":
        _, res = await ev.request("SessionStopReq")
        ok(res, step)
    else:  # pragma: no cover - a typo in the case table
        raise ValueError(f"unknown step {step}")


async def drive_to(target: Target, p: Protocol, step: str | None) -> Ev:
    """Plug in, discover, connect and run the GoodCase chain up to ``step`` (None: connect
    only)."""
    await plug_in(target)
    ev = await connect(target, p)
    if step is None:
        return ev
    chain = steps_of(p)
    assert step in chain, f"{step} is not a step of {p.name}"
    for name in chain[:chain.index(step) + 1]:
        await run_step(ev, target, name)
    return ev


def next_step(p: Protocol, step: str) -> str | None:
    chain = steps_of(p)
    i = chain.index(step)
    return chain[i + 1] if i + 1 < len(chain) else None
