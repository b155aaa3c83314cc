"""``secc exi decode|encode`` as a user runs it (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import exi_schemas as exi
from exi_schemas.generated import din, iso20

SESSION_STOP = din.V2G_Message(header=din.MessageHeaderType(session_id=bytes.fromhex("0A0B0C0D")),
                               body=din.BodyType(session_stop_req=din.SessionStopType()))


def secc(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "secc", "exi", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_decode_prints_json_that_encode_turns_back_into_the_same_bytes(tmp_path):
    data = exi.encode(SESSION_STOP)
    out = secc("decode", "--schema", "din", data.hex())
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc == {"V2G_Message": {"header": {"session_id": "0A0B0C0D"},
                                   "body": {"session_stop_req": {}}}}
    path = tmp_path / "msg.json"
    path.write_text(out.stdout)
    enc = secc("encode", "--schema", "din", str(path))
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout.strip() == data.hex()


def test_decode_xml_from_file_with_v2gtp_header_and_encode_xml(tmp_path):
    res = iso20.SessionSetupResType(
        header=iso20.MessageHeaderType(session_id=bytes(8), time_stamp=1700000000),
        response_code="OK", evseid="DE*ABC*E123")
    data = exi.encode(res)
    framed = bytes([0x01, 0xFE, 0x80, 0x04]) + len(data).to_bytes(4, "big") + data
    raw = tmp_path / "msg.bin"
    raw.write_bytes(framed)
    out = secc("decode", "--schema", "iso20", "--xml", f"@{raw}")
    assert out.returncode == 0, out.stderr
    assert "SessionSetupRes" in out.stdout and "DE*ABC*E123" in out.stdout
    xml = tmp_path / "msg.xml"
    xml.write_text(out.stdout)
    enc = secc("encode", "--schema", "iso20", str(xml))
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout.strip() == data.hex()


def test_truncated_input_is_one_line_with_bit_offset_and_exit_2():
    data = exi.encode(SESSION_STOP)[:-3]
    out = secc("decode", "--schema", "din", data.hex())
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "at bit" in lines[0] and "Traceback" not in out.stderr


def test_encode_of_invalid_json_is_exit_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"V2G_Message": {"header": {"session_id": 5}}}))
    out = secc("encode", "--schema", "din", str(path))
    assert out.returncode == 2
    assert out.stderr.startswith("secc exi: error: encode failed")
    garbage = secc("decode", "--schema", "din", "zz")
    assert garbage.returncode == 2
