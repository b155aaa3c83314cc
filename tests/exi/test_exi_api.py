"""The public API contract the session layer relies on: typed errors, JSON conventions,
class/field naming, root element selection."""

from __future__ import annotations

import json

import pytest

import exi_schemas as exi
from exi_schemas.generated import appprotocol, din, iso2, iso20_acdp, iso20_dc


def din_msg(**body) -> din.V2G_Message:
    return din.V2G_Message(header=din.MessageHeaderType(session_id=bytes.fromhex("00ff10ab")),
                           body=din.BodyType(**body))


def test_missing_required_field_is_an_encode_error_naming_it():
    msg = din_msg(session_setup_req=din.SessionSetupReqType(evccid=None))
    with pytest.raises(exi.ExiEncodeError, match="evccid"):
        exi.encode(msg)


@pytest.mark.parametrize("bad", [
    din.PhysicalValueType(multiplier=4, unit="A", value=1),          # n-bit range -3..3
    din.PhysicalValueType(multiplier=0, unit="A", value=40000),      # xs:short
    din.PhysicalValueType(multiplier=0, unit="Ampere", value=1),     # enumeration
    din.PhysicalValueType(multiplier="0", unit="A", value=1),        # wrong type
])
def test_out_of_range_or_mistyped_values_are_encode_errors(bad):
    msg = din_msg(pre_charge_req=din.PreChargeReqType(
        dc_ev_status=din.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=50),
        ev_target_voltage=bad, ev_target_current=bad))
    with pytest.raises(exi.ExiEncodeError):
        exi.encode(msg)


def test_too_many_list_items_is_an_encode_error():
    req = appprotocol.supportedAppProtocolReq(app_protocol=[
        appprotocol.AppProtocolType(protocol_namespace="urn:x", version_number_major=1,
                                    version_number_minor=0, schema_id=i, priority=1)
        for i in range(21)])  # maxOccurs 20
    with pytest.raises(exi.ExiEncodeError, match="more than 20 items"):
        exi.encode(req)


def test_dict_conventions_hex_upper_for_hexbinary_base64_for_base64binary():
    msg = iso2.V2G_Message(header=iso2.MessageHeaderType(session_id=bytes.fromhex("0a0b")),
                           body=iso2.BodyType(authorization_req=iso2.AuthorizationReqType(
                               id="ID1", gen_challenge=b"\x00\x01\xfe\xff")))
    d = exi.to_dict(msg)
    assert d["header"]["session_id"] == "0A0B"
    assert d["body"]["authorization_req"] == {"id": "ID1", "gen_challenge": "AAH+/w=="}
    assert exi.from_dict("iso2", json.loads(json.dumps(d))) == msg


def test_from_dict_rejects_unknown_fields_and_wrong_types():
    with pytest.raises(exi.ExiEncodeError, match="unknown fields"):
        exi.from_dict("din", {"header": {"session_id": "00", "sessionid": "00"}})
    with pytest.raises(exi.ExiEncodeError):
        exi.from_dict("din", {"header": {"session_id": 5}})
    with pytest.raises(exi.ExiEncodeError, match="element"):
        exi.from_dict("iso20-dc", {})  # ISO-20 has no single root: name it


def test_iso20_root_is_the_message_element_and_decode_element_names_it():
    req = iso20_dc.DC_ChargeParameterDiscoveryReqType(
        header=iso20_dc.MessageHeaderType(session_id=bytes(8), time_stamp=1),
        dc_cpd_req_energy_transfer_mode=iso20_dc.DC_CPDReqEnergyTransferModeType(
            ev_maximum_charge_power=iso20_dc.RationalNumberType(exponent=3, value=150),
            ev_minimum_charge_power=iso20_dc.RationalNumberType(exponent=0, value=0),
            ev_maximum_charge_current=iso20_dc.RationalNumberType(exponent=0, value=300),
            ev_minimum_charge_current=iso20_dc.RationalNumberType(exponent=0, value=0),
            ev_maximum_voltage=iso20_dc.RationalNumberType(exponent=0, value=900),
            ev_minimum_voltage=iso20_dc.RationalNumberType(exponent=0, value=200)))
    data = exi.encode(req)
    assert exi.decode_element(data, "iso20-dc") == ("DC_ChargeParameterDiscoveryReq", req)
    assert exi.from_xml("iso20-dc", exi.to_xml(req)) == req


def test_type_shared_by_two_elements_needs_element_argument():
    msg = iso20_acdp.ACDP_ConnectReqType(
        header=iso20_acdp.MessageHeaderType(session_id=bytes(8), time_stamp=0),
        ev_electrical_charging_device_status="State_A")
    with pytest.raises(exi.ExiEncodeError, match="ACDP_DisconnectReq"):
        exi.encode(msg)
    data = exi.encode(msg, element="ACDP_DisconnectReq")
    assert exi.decode_element(data, "iso20-acdp")[0] == "ACDP_DisconnectReq"


def test_non_generated_objects_are_rejected():
    with pytest.raises(exi.ExiEncodeError):
        exi.encode({"header": {}})
    with pytest.raises(exi.ExiEncodeError):
        exi.from_xml("din", "<not xml")


def test_body_element_names_the_message_for_dispatch():
    req = din.SessionStopType()
    msg = din_msg(session_stop_req=req)
    assert exi.body_element(exi.decode(exi.encode(msg), "din")) == ("SessionStopReq", req)
    assert exi.body_element(din_msg()) is None
    with pytest.raises(TypeError):
        exi.body_element(din.PhysicalValueType(multiplier=0, value=1))
