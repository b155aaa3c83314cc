"""The -20 adapter against real-world vectors, and smaller pieces of the session: VehicleCheckIn/
Out, MeterInfo, restricted service lists, the adapter registry used by the session driver."""

from __future__ import annotations

import json

import pytest

import exi_schemas
from exi_schemas.generated import iso20 as cm
from secc.appprotocol.negotiation import Protocol
from secc.iso20 import EnergyService, Iso20AcAdapter, Iso20Config, Iso20DcAdapter, adapter_for
from sim.iso20_loopback import LoopbackCharger, run_loopback
from secc.session.driver import load_adapter
from sim.evcc.failures import InvalidResponse

from .conftest import make_evcc, make_secc

PAYLOAD_TYPES = {"iso15118_20_common": 0x8002, "iso15118_20_dc": 0x8004,
                 "iso15118_20_ac": 0x8003}


def vectors(shared_dir):
    path = shared_dir / "exi_vectors" / "vectors.jsonl"
    if not path.is_file():
        pytest.skip(f"no EXI vectors at {path}")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_iso20_request_vector_decodes_through_the_adapter(shared_dir):
    adapter = Iso20DcAdapter()
    requests = [v for v in vectors(shared_dir)
                if v["protocol"] in PAYLOAD_TYPES and v["message"].endswith("Req")]
    assert len(requests) > 30
    for v in requests:
        decoded = adapter.decode(PAYLOAD_TYPES[v["protocol"]], bytes.fromhex(v["exi_hex"]))
        assert decoded.name == v["message"], v["id"]
        assert len(decoded.session_id) == 8


def test_real_session_setup_vector_opens_a_session(shared_dir):
    vector = next(v for v in vectors(shared_dir)
                  if v["id"] == "iso15118_20_common/SessionSetupReq/a")
    adapter, core = make_secc("dc")
    request = adapter.decode(0x8002, bytes.fromhex(vector["exi_hex"]))
    reply = core.receive(request.name, request.body, 0.0, request.session_id)
    assert reply.response.response_code == "OK_NewSessionEstablished"
    assert core.evccid == "WMIV1234567890ABCDEF"
    payload_type, data = adapter.encode(reply.response_name, reply.response, core.session_id)
    res = exi_schemas.decode(data, "iso20")
    assert payload_type == 0x8002 and res.header.session_id == core.session_id
    assert res.header.time_stamp > 1_700_000_000


def test_session_driver_finds_the_iso20_adapters():
    dc_adapter = load_adapter(Protocol.ISO15118_20_DC)
    ac_adapter = load_adapter(Protocol.ISO15118_20_AC)
    assert isinstance(dc_adapter, Iso20DcAdapter) and dc_adapter.name == "iso20-dc"
    assert isinstance(ac_adapter, Iso20AcAdapter) and ac_adapter.name == "iso20-ac"
    # no process-wide state in the adapters: the driver hands each core the EVSE's
    # paused-session store (SessionSettings.paused_sessions; resume through the driver is
    # tests/iso20/test_iso20_tls.py and tests/evcc/test_runner_veth.py)
    assert load_adapter(Protocol.ISO15118_20_DC).paused_sessions is not dc_adapter.paused_sessions
    assert adapter_for(Protocol.ISO15118_20_AC).payload_types == frozenset({0x8002, 0x8003})
    with pytest.raises(ValueError):
        adapter_for(Protocol.ISO15118_2)


def test_vehicle_check_in_and_out_are_answered(pump_for):
    pump = pump_for("dc", loops=2, welding_detection=False)
    pump.until("DC_ChargeParameterDiscovery")
    step = pump.send(cm.VehicleCheckInReqType(header=None, ev_check_in_status="CheckIn",
                                              parking_method="Manual"), "VehicleCheckInReq")
    assert step.response.response_code == "OK"
    pump.until("SessionStop")
    step = pump.send(cm.VehicleCheckOutReqType(header=None, ev_check_out_status="CheckOut",
                                               check_out_time=0), "VehicleCheckOutReq")
    assert step.response.evse_check_out_status == "Completed"
    pump.run()
    assert pump.evcc.record.failure is None


def test_meter_info_when_the_car_asks(pump_for):
    pump = pump_for("dc", loops=5, meter_info_requested=True)
    pump.until("DC_ChargeLoop")
    for _ in range(3):
        step = pump.step()
    assert step.response.meter_info.meter_id == "PYSECC-METER-1"
    assert step.response.meter_info.charged_energy_reading_wh >= 0


def test_car_wanting_a_service_we_do_not_offer_stops():
    adapter, core = make_secc("dc", config=Iso20Config(services=(EnergyService.DC,)))
    result = run_loopback(core, adapter, make_evcc("dc", service="DC_BPT"), LoopbackCharger())
    assert isinstance(result.ev_result.record.failure, InvalidResponse)
    discovery = next(s for s in result.exchanges if s.request == "ServiceDiscoveryReq")
    assert discovery.response_code == "OK"


def test_services_of_the_other_namespace_are_a_configuration_error():
    with pytest.raises(ValueError, match="AC"):
        make_secc("dc", config=Iso20Config(services=(EnergyService.AC,)))
