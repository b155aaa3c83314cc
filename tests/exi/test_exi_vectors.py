"""Every reference vector: EXI → message equals the vector's XML infoset, XML → EXI equals
the vector's bytes (the vectors come from EXIficient/Josev, libcbv2g and real cars)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

import exi_schemas as exi

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "exi_vectors" / "vectors.jsonl"


def _load() -> list:
    if not VECTORS.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{VECTORS} is absent"))]
    out = []
    for line in VECTORS.read_text().splitlines():
        v = json.loads(line)
        out.append(pytest.param(v, id=v["id"]))
    return out


def infoset(el: etree._Element) -> tuple:
    """Qualified names, attributes and text; prefixes and formatting do not matter."""
    q = etree.QName(el)
    children = [c for c in el if isinstance(c.tag, str)]
    text = (el.text or "") if not children else ""
    return (q.namespace, q.localname, tuple(sorted(el.attrib.items())), text,
            tuple(infoset(c) for c in children))


@pytest.mark.parametrize("vector", _load())
def test_vector_decodes_to_its_xml(vector):
    msg = exi.decode(bytes.fromhex(vector["exi_hex"]), vector["protocol"])
    got = etree.fromstring(exi.to_xml(msg).encode())
    assert infoset(got) == infoset(etree.fromstring(vector["xml"].encode()))


@pytest.mark.parametrize("vector", _load())
def test_vector_xml_encodes_to_its_bytes(vector):
    msg = exi.from_xml(vector["protocol"], vector["xml"])
    assert exi.encode(msg).hex() == vector["exi_hex"]


@pytest.mark.parametrize("vector", _load())
def test_vector_survives_dict_round_trip(vector):
    msg = exi.decode(bytes.fromhex(vector["exi_hex"]), vector["protocol"])
    d = exi.to_dict(msg)
    json.dumps(d)  # JSON-able
    root = exi.decode_element(bytes.fromhex(vector["exi_hex"]), vector["protocol"])[0]
    again = exi.from_dict(vector["protocol"], d, element=root)
    assert again == msg
    assert exi.encode(again).hex() == vector["exi_hex"]
