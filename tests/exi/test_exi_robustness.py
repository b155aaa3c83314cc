"""Hostile input: whatever the bytes, decode() raises only ExiDecodeError (with the bit
offset), promptly, with memory bounded by the input — never another exception or a hang."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import exi_schemas as exi
from exi_schemas import fuzzing
from exi_schemas._runtime import Reader
from exi_schemas.generated import din

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "exi_vectors" / "vectors.jsonl"


def din_current_demand_req() -> bytes:
    pv = din.PhysicalValueType
    req = din.CurrentDemandReqType(
        dc_ev_status=din.DC_EVStatusType(ev_ready=True, ev_error_code="NO_ERROR", evresssoc=55),
        ev_target_current=pv(multiplier=0, unit="A", value=120),
        ev_maximum_voltage_limit=pv(multiplier=0, unit="V", value=450),
        charging_complete=False,
        ev_target_voltage=pv(multiplier=0, unit="V", value=400))
    msg = din.V2G_Message(header=din.MessageHeaderType(session_id=bytes.fromhex("0102030405060708")),
                          body=din.BodyType(current_demand_req=req))
    return exi.encode(msg)


def test_every_truncation_is_a_decode_error_with_offset():
    data = din_current_demand_req()
    for n in range(len(data)):
        with pytest.raises(exi.ExiDecodeError) as info:
            exi.decode(data[:n], "din")
        assert 0 <= info.value.bit_offset <= 8 * n


def test_wrong_header_byte_is_rejected_at_bit_zero():
    data = bytearray(din_current_demand_req())
    data[0] = 0x81
    with pytest.raises(exi.ExiDecodeError) as info:
        exi.decode(bytes(data), "din")
    assert info.value.bit_offset == 0 and "header" in info.value.reason


def test_absurd_length_prefix_is_rejected_without_allocating():
    # a length of 2**70 - 1 bytes followed by a few bytes of data
    huge = b"\xff" * 10 + b"\x01" + b"\x00" * 16
    for read in (Reader.binary, Reader.string, lambda r: r.count(None)):
        with pytest.raises(exi.ExiDecodeError) as info:
            read(Reader(huge))
        assert info.value.bit_offset == 0


def test_second_level_and_out_of_range_event_codes_are_decode_errors():
    # state with 3 first-level productions: 2-bit codes; 3 escapes to the second level
    with pytest.raises(exi.ExiDecodeError, match="second-level") as info:
        Reader(bytes([0b11000000]), 0).code(2, 3)
    assert info.value.bit_offset == 0
    # state with 4 productions: 3-bit codes; 5..7 are not events at all
    with pytest.raises(exi.ExiDecodeError, match="invalid event code 6"):
        Reader(bytes([0b11000000]), 0).code(3, 4)


def test_every_single_byte_corruption_of_a_message_is_handled():
    data = din_current_demand_req()
    for i in range(1, len(data)):
        for value in (0x00, 0xFF, data[i] ^ 0x01):
            bad = data[:i] + bytes([value]) + data[i + 1:]
            try:
                exi.decode(bad, "din")
            except exi.ExiDecodeError as exc:
                assert 0 <= exc.bit_offset <= 8 * len(bad)


def test_trailing_bytes_after_the_document_are_ignored():
    data = din_current_demand_req()
    assert exi.decode(data + b"\x00\x00", "din") == exi.decode(data, "din")


def test_unknown_schema_and_non_bytes_are_caller_errors():
    with pytest.raises(ValueError):
        exi.decode(b"\x80", "iso99")
    with pytest.raises(TypeError):
        exi.decode("80", "din")  # type: ignore[arg-type]


def test_20000_mutated_vectors_raise_only_decode_errors():
    if not VECTORS.is_file():
        pytest.skip(f"{VECTORS} is absent")
    seeds = list(fuzzing.iter_vector_seeds(str(VECTORS)))
    t0 = time.monotonic()
    report = fuzzing.run(seeds, 20_000, seed=20251126, slow_limit_s=0.5)
    assert report.crashes == []
    assert report.inputs == 20_000
    assert report.rejected > 10_000  # the mutations do reach the decoders' checks
    assert time.monotonic() - t0 < 30


def test_random_garbage_after_a_valid_header_never_escapes():
    import random

    rng = random.Random(7)
    for schema in exi.SCHEMAS:
        for _ in range(300):
            data = b"\x80" + rng.randbytes(rng.randint(0, 200))
            try:
                exi.decode(data, schema)
            except exi.ExiDecodeError:
                pass


def test_huge_all_ones_input_is_rejected_quickly():
    t0 = time.monotonic()
    with pytest.raises(exi.ExiDecodeError):
        exi.decode(b"\x80" + b"\xff" * 200_000, "iso2")
    with pytest.raises(exi.ExiDecodeError):
        exi.decode(b"\x80\x00" + b"\xff" * 200_000, "iso20")
    assert time.monotonic() - t0 < 2


def test_decoding_time_is_linear_in_message_size():
    """A 3 x 1024-entry PMaxSchedule (~60 kB) decodes in well under a second: the reader
    shifts a window, not the whole message, for every field."""
    from exi_schemas.generated import iso2

    def pv(v):
        return iso2.PhysicalValueType(multiplier=0, unit="W", value=v)

    tuples = [iso2.SAScheduleTupleType(
        sa_schedule_tuple_id=i + 1,
        p_max_schedule=iso2.PMaxScheduleType(p_max_schedule_entry=[
            iso2.PMaxScheduleEntryType(
                relative_time_interval=iso2.RelativeTimeIntervalType(start=k * 60, duration=60),
                p_max=pv(k)) for k in range(1024)])) for i in range(3)]
    res = iso2.ChargeParameterDiscoveryResType(
        response_code="OK", evse_processing="Finished",
        sa_schedule_list=iso2.SAScheduleListType(sa_schedule_tuple=tuples),
        ac_evse_charge_parameter=iso2.AC_EVSEChargeParameterType(
            ac_evse_status=iso2.AC_EVSEStatusType(notification_max_delay=0,
                                                  evse_notification="None", rcd=False),
            evse_nominal_voltage=pv(230), evse_max_current=pv(32)))
    msg = iso2.V2G_Message(header=iso2.MessageHeaderType(session_id=bytes(8)),
                           body=iso2.BodyType(charge_parameter_discovery_res=res))
    data = exi.encode(msg)
    assert len(data) > 20_000
    t0 = time.monotonic()
    assert exi.decode(data, "iso2") == msg
    assert time.monotonic() - t0 < 1.0


def test_empty_value_is_decoded_in_both_encodings():
    """ISO-2 SessionStopReq with an empty SessionID: libcbv2g/OpenV2G/real cars (and we) write
    CH with an empty value, EXIficient writes no CH but a second-level EE. Both decode."""
    ours = bytes.fromhex("80980011f000")
    exificient = bytes.fromhex("8098447c00")
    a = exi.decode(ours, "iso2")
    b = exi.decode(exificient, "iso2")
    assert a == b and a.header.session_id == b""
    assert exi.encode(b) == ours
