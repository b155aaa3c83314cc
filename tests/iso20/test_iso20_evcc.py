"""The -20 EVCC on its own terms: registry entry, EV-side timeouts, signals, how it reacts to
odd SECC responses."""

from __future__ import annotations

import pytest

import exi_schemas
from exi_schemas.generated import iso20 as cm
from secc.appprotocol.negotiation import Protocol
from sim.evcc import protocols
from sim.evcc.failures import (
    MessageTimeout,
    ResponseCodeFailed,
    SessionIdMismatch,
    UnexpectedMessage,
)
from sim.evcc.iso20 import Iso20Evcc

from .conftest import Pump, make_evcc, make_secc


def test_registered_for_both_namespaces_with_the_iso20_payload_types():
    entry = protocols.get("iso20")
    assert entry.namespaces == {"dc": Protocol.ISO15118_20_DC.namespace,
                                "ac": Protocol.ISO15118_20_AC.namespace}
    assert (entry.major, entry.minor) == (1, 0)
    assert entry.payload_types == frozenset({0x8002, 0x8003, 0x8004})
    assert protocols.by_namespace(Protocol.ISO15118_20_AC.namespace, "ac") is entry
    assert isinstance(entry.factory(None, None, None), Iso20Evcc)


def test_charge_loop_response_is_due_within_half_a_second():
    adapter, core = make_secc("dc")
    pump = Pump(core, adapter, make_evcc("dc", loops=5))
    pump.until("DC_ChargeLoop")
    assert pump.out.deadline - pump.out.not_before == 0.5
    assert pump.evcc.handle_timer(pump.out.not_before + 0.49) is None
    done = pump.evcc.handle_timer(pump.out.not_before + 0.5)
    assert isinstance(done.record.failure, MessageTimeout)


def test_pilot_and_contactor_signals_follow_the_session():
    adapter, core = make_secc("dc")
    pump = Pump(core, adapter, make_evcc("dc", loops=3))
    pump.until("DC_CableCheck")
    assert pump.evcc.signals.pilot == "C" and not pump.evcc.signals.contactors_closed
    pump.until("DC_ChargeLoop")
    assert pump.evcc.signals.contactors_closed
    pump.run()
    assert pump.evcc.signals.pilot == "B" and not pump.evcc.signals.contactors_closed


def response_bytes(obj, name):
    obj.header = cm.MessageHeaderType(session_id=bytes(8), time_stamp=1)
    return exi_schemas.encode(obj, element=name)


def test_failed_code_other_message_and_foreign_session_id_end_the_ev_session():
    evcc = make_evcc("dc")
    evcc.start(0.0)
    done = evcc.receive(0x8002, response_bytes(cm.SessionSetupResType(
        header=None, response_code="FAILED", evseid="X"), "SessionSetupRes"), 0.1)
    assert isinstance(done.record.failure, ResponseCodeFailed)

    evcc = make_evcc("dc")
    evcc.start(0.0)
    done = evcc.receive(0x8002, response_bytes(cm.SessionStopResType(
        header=None, response_code="OK"), "SessionStopRes"), 0.1)
    assert isinstance(done.record.failure, UnexpectedMessage)

    evcc = make_evcc("dc")
    evcc.start(0.0)
    evcc.receive(0x8002, response_bytes(cm.SessionSetupResType(
        header=None, response_code="OK_NewSessionEstablished", evseid="X"),
        "SessionSetupRes"), 0.1)
    res = cm.AuthorizationSetupResType(header=None, response_code="OK",
                                       authorization_services=["EIM"],
                                       certificate_installation_service=False,
                                       eim_as_res_authorization_mode=(
                                           cm.EIM_ASResAuthorizationModeType()))
    res.header = cm.MessageHeaderType(session_id=b"\x09" * 8, time_stamp=1)
    data = exi_schemas.encode(res, element="AuthorizationSetupRes")
    done = evcc.receive(0x8002, data, 0.2)
    assert isinstance(done.record.failure, SessionIdMismatch)


@pytest.mark.parametrize("mode, service", [("dc", "AC"), ("ac", "DC_BPT")])
def test_service_must_fit_the_mode(mode, service):
    with pytest.raises(ValueError):
        make_evcc(mode, service=service)
