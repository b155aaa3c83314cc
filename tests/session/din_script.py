"""A scripted DIN 70121 EV for driver and daemon tests: it speaks over a real V2GTP
connection and moves the simulated board's vehicle side through ``call(fn, *args)`` (a direct
call on the same loop, or ``loop.call_soon_threadsafe`` across namespaces)."""

from __future__ import annotations

import asyncio

import exi_schemas
from exi_schemas.generated import appprotocol as AP
from exi_schemas.generated import din as M
from secc.v2gtp import PayloadType
from tests.din.conftest import REQ_FIELD, ev_status, pv

DIN_NS = "urn:din:70121:2012:MsgDef"
# the scripted car's request pace (what it does, not a wait for the charger)
EV_REPEAT_S = 0.02   # repeating a request answered Ongoing, or pre-charge
EV_LOOP_S = 0.01     # between CurrentDemand requests


def sap_request(*offers):
    return AP.supportedAppProtocolReq(app_protocol=[
        AP.AppProtocolType(protocol_namespace=ns, version_number_major=2, version_number_minor=0,
                           schema_id=sid, priority=prio) for ns, sid, prio in offers])


def din_message(name, body, sid):
    return exi_schemas.encode(M.V2G_Message(header=M.MessageHeaderType(session_id=sid),
                                            body=M.BodyType(**{REQ_FIELD[name]: body})))


class ScriptedEv:
    def __init__(self, conn):
        self.conn = conn
        self.sid = bytes(8)

    async def negotiate(self, *offers):
        await self.conn.send(PayloadType.EXI, exi_schemas.encode(sap_request(*offers)))
        return exi_schemas.decode((await self.conn.receive(5)).payload, "appprotocol")

    async def request(self, name, body):
        await self.conn.send(PayloadType.EXI, din_message(name, body, self.sid))
        msg = await self.conn.receive(5)
        decoded = exi_schemas.decode(msg.payload, "din")
        self.sid = decoded.header.session_id
        return next(getattr(decoded.body, k) for k in decoded.body.__slots__
                    if getattr(decoded.body, k) is not None)

    async def until_finished(self, name, body):
        for _ in range(100):
            res = await self.request(name, body)
            if getattr(res, "evse_processing", "Finished") == "Finished":
                return res
            await asyncio.sleep(EV_REPEAT_S)   # the car's Ongoing repeat pace
        raise AssertionError(f"{name} never finished")

    async def charge(self, board, call, loops=10):
        """SessionSetup ... PowerDelivery(start) and ``loops`` CurrentDemand requests."""
        res = await self.request("SessionSetupReq", M.SessionSetupReqType(evccid=b"\x02" * 6))
        assert res.response_code == "OK_NewSessionEstablished" and self.sid != bytes(8)
        await self.request("ServiceDiscoveryReq", M.ServiceDiscoveryReqType())
        await self.request("ServicePaymentSelectionReq", M.ServicePaymentSelectionReqType(
            selected_payment_option="ExternalPayment",
            selected_service_list=M.SelectedServiceListType(
                selected_service=[M.SelectedServiceType(service_id=1)])))
        await self.until_finished("ContractAuthenticationReq", M.ContractAuthenticationReqType())
        await self.until_finished("ChargeParameterDiscoveryReq", M.ChargeParameterDiscoveryReqType(
            ev_requested_energy_transfer_type="DC_extended",
            dc_ev_charge_parameter=M.DC_EVChargeParameterType(
                dc_ev_status=ev_status(), ev_maximum_current_limit=pv(125, "A"),
                ev_maximum_voltage_limit=pv(450, "V"))))
        call(board.ev_set_pilot, "C")
        await self.until_finished("CableCheckReq", M.CableCheckReqType(dc_ev_status=ev_status()))
        call(board.ev_set_battery_voltage, 380.0)
        for _ in range(200):
            res = await self.request("PreChargeReq", M.PreChargeReqType(
                dc_ev_status=ev_status(), ev_target_voltage=pv(380, "V"),
                ev_target_current=pv(2, "A")))
            if abs(res.evse_present_voltage.value * 10 ** res.evse_present_voltage.multiplier
                   - 380) < 20:
                break
            await asyncio.sleep(EV_REPEAT_S)   # the car's pre-charge request pace
        else:
            raise AssertionError("pre-charge never reached the target")
        await self.request("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=True))
        call(board.ev_close_contactors, True)
        for _ in range(loops):
            res = await self.request("CurrentDemandReq", M.CurrentDemandReqType(
                dc_ev_status=ev_status(), ev_target_current=pv(50, "A"),
                ev_target_voltage=pv(400, "V"), charging_complete=False))
            assert res.response_code == "OK"
            await asyncio.sleep(EV_LOOP_S)   # the car's charge-loop pace

    async def stop(self, board, call):
        """PowerDelivery(stop), WeldingDetection, SessionStop; returns SessionStopRes."""
        await self.request("PowerDeliveryReq", M.PowerDeliveryReqType(ready_to_charge_state=False))
        call(board.ev_close_contactors, False)
        call(board.ev_set_pilot, "B")   # S2 open after PowerDeliveryRes(Stop)
        await self.request("WeldingDetectionReq",
                           M.WeldingDetectionReqType(dc_ev_status=ev_status()))
        return await self.request("SessionStopReq", M.SessionStopType())


def direct(fn, *args):
    fn(*args)
