import io
import json

import pytest

from secc.common.logs import layer_logger, session_context, setup_logging


def test_key_value_lines_carry_layer_and_session():
    out = io.StringIO()
    setup_logging("kv", "DEBUG", stream=out)
    log = layer_logger("slac")
    log.info("match done", extra={"ev_mac": "02:00:00:00:00:01", "attenuation_db": 23})
    with session_context("a1b2c3d4"):
        layer_logger("v2g").warning("sequence error in state CableCheck")
    first, second = out.getvalue().splitlines()
    assert "layer=slac" in first and "ev_mac=02:00:00:00:00:01" in first
    assert "attenuation_db=23" in first and 'msg="match done"' in first
    assert "session=" not in first
    assert "layer=v2g" in second and "session=a1b2c3d4" in second and "level=warning" in second


def test_json_lines_parse():
    out = io.StringIO()
    setup_logging("json", "INFO", stream=out)
    with session_context("feedbeef"):
        layer_logger("ocpp").info("Authorize accepted", extra={"id_token": "DEPYSC1234567X"})
    doc = json.loads(out.getvalue())
    assert doc["layer"] == "ocpp" and doc["session"] == "feedbeef"
    assert doc["id_token"] == "DEPYSC1234567X" and doc["msg"] == "Authorize accepted"


def test_unknown_layer_and_format_are_errors():
    with pytest.raises(ValueError):
        layer_logger("nope")
    with pytest.raises(ValueError):
        setup_logging("xml")
