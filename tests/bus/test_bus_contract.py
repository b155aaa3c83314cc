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


def test_compiled_validators_are_up_to_date_with_the_schemas():
    assert contract.VALIDATORS_FILE.read_text() == contract.validators_text(), \
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


# --- the SECC's validators (fastjsonschema) give jsonschema's verdicts -------------------------
def _reference_validator(name):
    """jsonschema's Draft 7 validator with an RFC 3339 date-time check (jsonschema checks
    date-time only with an optional package this project does not install)."""
    import datetime

    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_datetime(value):
        if not isinstance(value, str):
            return True
        if value[10:11] not in ("T", "t") or (value[-1:] not in ("z", "Z")
                                                  and value[-6:-5] not in ("+", "-")):
            raise ValueError("not an RFC 3339 date-time")
        datetime.datetime.fromisoformat(value.replace("z", "Z"))
        return True

    return jsonschema.Draft7Validator(contract.load_schema(name), format_checker=checker)


def _property_names():
    names = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    names.update(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in contract.SCHEMA_DIR.glob("*.json"):
        walk(json.loads(path.read_text()))
    return sorted(names)


SCHEMA_NAMES = sorted(p.stem for p in contract.SCHEMA_DIR.glob("*.json"))
ODD_VALUES = (st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False)
              | st.sampled_from(["", "2026-01-01T00:00:00Z", "2026-01-01 00:00:00",
                                 "2026-13-01T00:00:00Z", "Accepted", "x" * 600])
              | st.lists(st.integers(), max_size=2) | st.dictionaries(
                  st.sampled_from(_property_names()), st.integers(), max_size=2))


def instances(schema):
    """Payloads near ``schema``: each value drawn to fit its sub-schema, sometimes not (an odd
    value, a missing required or an extra property), so that both verdicts occur."""
    if "oneOf" in schema:
        return st.one_of([instances(s) for s in schema["oneOf"]]) | ODD_VALUES
    if "const" in schema:
        return st.just(schema["const"]) | ODD_VALUES
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | ODD_VALUES
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([instances({**schema, "type": k}) for k in kind])
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fitting = st.fixed_dictionaries(
            {k: instances(v) for k, v in props.items() if k in required},
            optional={k: instances(v) for k, v in props.items() if k not in required})
        extra = st.dictionaries(st.sampled_from(["x", *props]), ODD_VALUES, max_size=1)
        drop = st.sampled_from([None, *sorted(required)])
        return st.builds(lambda d, e, k: {key: v for key, v in {**d, **e}.items() if key != k},
                         fitting, st.just({}) | extra, st.just(None) | drop)
    if kind == "array":
        return st.lists(instances(schema.get("items", {})),
                        min_size=max(0, schema.get("minItems", 0) - 1),
                        max_size=min(schema.get("maxItems", 4), 4) + 1)
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.sampled_from(["2026-01-01T00:00:00Z", "2026-06-01T12:30:00.250+02:00",
                                    "2026-01-01T00:00:00", "2026-01-01"])
        low, high = schema.get("minLength", 0), schema.get("maxLength", 40)
        return st.text("AZaz09_-", min_size=max(0, low - 1), max_size=min(high, 60) + 1) | \
            st.sampled_from(["A" * high, "A" * (high + 1)])
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -1000), schema.get("maximum", 10**6)
        values = st.integers(low - 1, high + 1) | st.sampled_from([float(low), low + 0.5, True])
        return values | st.floats(low - 1, high + 1) if kind == "number" else values
    if kind == "boolean":
        return st.booleans() | ODD_VALUES
    if kind == "null":
        return st.none()
    return ODD_VALUES


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_secc_validators_agree_with_jsonschema(data):
    name = data.draw(st.sampled_from(SCHEMA_NAMES))
    payload = data.draw(instances(contract.load_schema(name)))
    expected_valid = _reference_validator(name).is_valid(payload)
    try:
        contract.validate(name, payload)
    except contract.BusPayloadError:
        assert not expected_valid, f"{name}: valid payload refused: {payload!r}"
    else:
        assert expected_valid, f"{name}: invalid payload accepted: {payload!r}"


def test_one_of_takes_either_branch_and_refuses_neither():
    state = {"state": "Charging", "timestamp": "2026-01-01T00:00:00Z"}
    assert contract.validate("session_state", {**state, "session_id": None})
    assert contract.validate("session_state", {**state, "session_id": "abcd"})
    with pytest.raises(contract.BusPayloadError) as info:
        contract.validate("session_state", {**state, "session_id": 5})
    assert info.value.path == "session_id"


def test_every_generated_name_is_defined():
    """The validators module carries fastjsonschema's runtime names itself: a name it uses
    and does not define would fail only on the first payload that takes that branch."""
    import ast
    import builtins

    tree = ast.parse(contract.VALIDATORS_FILE.read_text())
    defined = set(dir(builtins)) | {
        node.id for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)} | {
        node.name for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.ClassDef)} | {
        alias.asname or alias.name for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names} | {
        arg.arg for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
        for arg in node.args.args}
    used = {node.id for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert used <= defined, sorted(used - defined)


def test_a_refused_timestamp_names_its_field():
    ok = {"online": True, "since": "2026-01-01T00:00:00Z"}
    if "since" not in contract.load_schema("online").get("properties", {}):
        pytest.skip("online has no timestamp")
    contract.validate("online", ok)
    with pytest.raises(contract.BusPayloadError) as info:
        contract.validate("online", {**ok, "since": "yesterday"})
    assert info.value.path == "since"


def test_every_validator_compiles_before_the_first_message():
    assert contract.compile_validators() == len(SCHEMA_NAMES)
