"""Real-car DIN 70121 / AppProtocol captures (pyPLC): all decode; re-encoding reproduces the
bytes wherever an independent C codec (libcbv2g) also does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

import exi_schemas as exi

MESSAGES = Path(__file__).resolve().parents[3] / "shared" / "realcar" / "messages.jsonl"


@pytest.fixture(scope="module")
def messages() -> list[dict]:
    if not MESSAGES.is_file():
        pytest.skip(f"{MESSAGES} is absent")
    return [json.loads(line) for line in MESSAGES.read_text().splitlines()]


def test_every_real_car_message_decodes_and_reencodes_byte_exact(messages):
    exact = 0
    for m in messages:
        data = bytes.fromhex(m["exi_hex"])
        msg = exi.decode(data, m["protocol"])
        if m["protocol"] == "din70121":
            root = etree.fromstring(exi.to_xml(msg).encode())
            body = root[-1]
            assert [etree.QName(c).localname for c in body] == [m["message"]], m
        if m["cbv2g_roundtrip_exact"]:
            assert exi.encode(msg) == data, m
            exact += 1
    assert exact == sum(1 for m in messages if m["cbv2g_roundtrip_exact"]) > 2000


def test_tesla_trailing_zero_byte_is_accepted(messages):
    tesla = [m for m in messages if not m["cbv2g_roundtrip_exact"]]
    assert tesla, "the capture set lost its Tesla ContractAuthenticationReq"
    for m in tesla:
        data = bytes.fromhex(m["exi_hex"])
        assert data.endswith(b"\x00")
        msg = exi.decode(data, m["protocol"])
        assert msg.body.contract_authentication_req is not None
        assert exi.encode(msg) == data[:-1]  # the canonical encoding has no padding byte
