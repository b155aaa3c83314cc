"""The contract: schemas valid, AsyncAPI up to date, bad payloads refused with named fields."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secc import contract


def test_asyncapi_file_is_up_to_date_with_the_contract():
    assert contract.ASYNCAPI_FILE.read_text() == contract.asyncapi_text(), \
        "run: python -m secc.contract --write"


def test_asyncapi_cli_prints_the_document():
    out = subprocess.run([sys.executable, "-m", "secc.contract", "--asyncapi"],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["asyncapi"] == "2.6.0"
    assert set(doc["channels"]) == {c.topic for c in contract.CHANNELS}


def test_every_schema_is_a_valid_draft7_schema():
    names = {c.schema for c in contract.CHANNELS} | {c.reply_schema for c in contract.CHANNELS
                                                     if c.reply_schema} | {"bus_error"}
    for name in names:
        jsonschema.Draft7Validator.check_schema(contract.load_schema(name))
    assert {p.stem for p in contract.SCHEMA_DIR.glob("*.json")} == names


def test_topics_are_versioned_and_match_back_to_their_channel():
    for channel in contract.CHANNELS:
        assert channel.topic.startswith("pysecc/v1/")
        topic = channel.topic_for(7) if "{evse_id}" in channel.topic else channel.topic
        found, evse = contract.match_topic(topic)
        assert found is channel
        assert evse == ("7" if "{evse_id}" in channel.topic else None)
    assert contract.match_topic("pysecc/v1/evse/1/nonsense") is None


def test_must_not_lose_channels_use_qos1_and_state_is_retained():
    for channel in contract.CHANNELS:
        assert channel.qos == 1
        assert channel.retained == (channel.kind is contract.Kind.STATE)
        assert (channel.reply_schema is not None) == (
            channel.kind in (contract.Kind.REQUEST, contract.Kind.PERSISTED))


def test_invalid_payload_error_names_schema_and_field():
    with pytest.raises(contract.BusPayloadError) as info:
        contract.validate("transaction_event", {
            "message_id": "m" * 10, "event_type": "Begun", "session_id": "s1",
            "timestamp": "2026-01-01T00:00:00Z", "trigger_reason": "Authorized"})
    assert "transaction_event" in str(info.value) and "event_type" in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b"\xff\xfe", b"{}", b"x" * 70000])
def test_decode_refuses_garbage_with_a_typed_error(raw):
    with pytest.raises(contract.BusPayloadError):
        contract.decode("authorize_request", raw)


def test_exi_response_up_to_17000_characters_is_valid_on_the_bus():
    ok = {"status": "Accepted", "exi_response": "A" * 17000}
    contract.validate("get_15118_ev_certificate_response", ok)
    with pytest.raises(contract.BusPayloadError):
        contract.validate("get_15118_ev_certificate_response", {**ok, "exi_response": "A" * 17001})


def test_reply_may_be_a_bus_error():
    raw = json.dumps(contract.error_payload("CsmsOffline", "no CSMS")).encode()
    assert contract.decode_reply("authorize_response", raw)["error"]["code"] == "CsmsOffline"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["session_id", "id_token", "id_token_type", "event_type", "message_id",
                         "readings", "x"]), children, max_size=5), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([c.schema for c in contract.CHANNELS]),
       st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_decode_never_fails_with_anything_but_bus_payload_error(schema, raw):
    try:
        contract.decode(schema, raw)
    except contract.BusPayloadError as exc:
        assert str(exc).startswith(schema)
