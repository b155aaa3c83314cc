"""The sans-I/O V2GTP decoder: framing across arbitrary read boundaries, header checks, time."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secc.v2gtp import (
    REACTIONS,
    IncompleteMessageTimeout,
    InvalidProtocolVersion,
    PayloadTooLarge,
    PayloadType,
    Reaction,
    TruncatedMessage,
    UnknownPayloadType,
    V2GTPDecoder,
    V2GTPError,
    V2GTPHeader,
    V2GTPMessage,
    encode_message,
)
from secc.v2gtp.header import payload_type_name


def test_header_layout_matches_the_standard():
    assert encode_message(PayloadType.EXI, b"\xaa\xbb") == bytes.fromhex("01fe800100000002aabb")
    header = V2GTPHeader.unpack(bytes.fromhex("01fe900000000002"))
    assert (header.payload_type, header.payload_length, header.version_ok) == (0x9000, 2, True)


def test_iso20_payload_type_values():
    assert [int(t) for t in (PayloadType.ISO20_MAIN, PayloadType.ISO20_AC, PayloadType.ISO20_DC,
                             PayloadType.ISO20_ACDP, PayloadType.ISO20_WPT,
                             PayloadType.ISO20_SCHEDULE_RENEGOTIATION,
                             PayloadType.SDP_REQUEST_WIRELESS)] == [
        0x8002, 0x8003, 0x8004, 0x8005, 0x8006, 0x8101, 0x9002]
    assert payload_type_name(0xA001) == "manufacturer_0xa001"
    assert payload_type_name(0x8007) == "reserved_0x8007"


def test_real_car_supported_app_protocol_frame_decodes(shared_dir):
    """A SupportedAppProtocolReq exactly as the captures show it (8-byte header + 34 bytes)."""
    import json
    line = next(json.loads(line) for line in
                (shared_dir / "realcar/messages.jsonl").open()
                if '"supportedAppProtocolReq"' in line)
    exi = bytes.fromhex(line["exi_hex"])
    frame = encode_message(int(line["v2gtp_type"], 16), exi)
    assert len(exi) == line["len"]
    events = V2GTPDecoder().feed(frame, now=0.0)
    assert events == [V2GTPMessage(PayloadType.EXI, exi)]


def test_every_error_has_exactly_one_reaction():
    for cls in (InvalidProtocolVersion, UnknownPayloadType, PayloadTooLarge,
                IncompleteMessageTimeout, TruncatedMessage):
        assert cls in REACTIONS
    assert REACTIONS[UnknownPayloadType] is Reaction.DISCARD_MESSAGE
    assert REACTIONS[InvalidProtocolVersion] is Reaction.CLOSE_CONNECTION


def test_message_split_in_single_bytes():
    decoder = V2GTPDecoder()
    frame = encode_message(PayloadType.EXI, b"hello world")
    events = []
    for i in range(len(frame)):
        events += decoder.feed(frame[i:i + 1], now=i * 0.001)
    assert events == [V2GTPMessage(PayloadType.EXI, b"hello world")]
    assert not decoder.in_message


def test_bad_inverse_version_is_fatal_and_decoder_stays_closed():
    decoder = V2GTPDecoder()
    events = decoder.feed(b"\x01\xfd\x80\x01\x00\x00\x00\x00"
                          + encode_message(PayloadType.EXI, b"x"), now=0)
    assert len(events) == 1 and isinstance(events[0], InvalidProtocolVersion)
    assert decoder.closed
    assert decoder.feed(encode_message(PayloadType.EXI, b"x"), now=1) == []


def test_unknown_type_discards_exactly_its_payload_even_when_split():
    decoder = V2GTPDecoder()
    data = encode_message(0x8007, b"z" * 10) + encode_message(PayloadType.EXI, b"ok")
    events = decoder.feed(data[:12], now=0) + decoder.feed(data[12:], now=0)
    assert isinstance(events[0], UnknownPayloadType) and events[0].payload_type == 0x8007
    assert events[1:] == [V2GTPMessage(PayloadType.EXI, b"ok")]


def test_sdp_payload_types_are_not_accepted_on_the_stream():
    events = V2GTPDecoder().feed(encode_message(PayloadType.SDP_REQUEST, b"\x00\x00"), now=0)
    assert isinstance(events[0], UnknownPayloadType)


def test_length_limit_is_configurable_and_8KiB_certificate_installation_fits():
    big = b"c" * 8192
    assert V2GTPDecoder().feed(encode_message(PayloadType.EXI, big), 0) == [
        V2GTPMessage(PayloadType.EXI, big)]
    small = V2GTPDecoder(max_payload_length=1000)
    events = small.feed(encode_message(PayloadType.EXI, big)[:8], now=0)
    assert isinstance(events[0], PayloadTooLarge) and events[0].payload_length == 8192


def test_partial_message_times_out_at_its_deadline_not_before():
    decoder = V2GTPDecoder(message_timeout=0.5)
    assert decoder.deadline() is None
    decoder.feed(encode_message(PayloadType.EXI, b"abc")[:5], now=10.0)
    assert decoder.deadline() == pytest.approx(10.5)
    assert decoder.handle_timer(10.49) == []
    events = decoder.handle_timer(10.5)
    assert isinstance(events[0], IncompleteMessageTimeout) and events[0].received == 5
    assert decoder.closed


def test_late_bytes_do_not_rescue_an_overdue_message():
    decoder = V2GTPDecoder(message_timeout=1.0)
    frame = encode_message(PayloadType.EXI, b"abc")
    decoder.feed(frame[:3], now=0.0)
    events = decoder.feed(frame[3:], now=1.5)
    assert [type(e) for e in events] == [IncompleteMessageTimeout]


def test_deadline_restarts_with_each_message():
    decoder = V2GTPDecoder(message_timeout=1.0)
    frame = encode_message(PayloadType.EXI, b"abc")
    events = decoder.feed(frame + frame[:2], now=5.0)
    assert len(events) == 1 and decoder.deadline() == 6.0
    decoder.feed(frame[2:], now=5.9)
    assert decoder.deadline() is None


def test_end_of_stream_inside_a_message_is_truncation_but_idle_end_is_clean():
    decoder = V2GTPDecoder()
    decoder.feed(encode_message(PayloadType.EXI, b"abcdef")[:10], now=0)
    assert isinstance(decoder.connection_lost()[0], TruncatedMessage)
    assert V2GTPDecoder().connection_lost() == []


# --- property-based: bounded so the whole file stays well under a second or two -------------
messages = st.lists(
    st.tuples(st.sampled_from([PayloadType.EXI, PayloadType.ISO20_MAIN, PayloadType.ISO20_DC]),
              st.binary(max_size=300)),
    max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20))
def test_any_chunking_yields_the_same_messages(items, cuts):
    stream = b"".join(encode_message(t, p) for t, p in items)
    decoder = V2GTPDecoder(message_timeout=None)
    events, pos, i = [], 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        events += decoder.feed(stream[pos:pos + size], now=0)
        pos, i = pos + size, i + 1
    assert events == [V2GTPMessage(t, p) for t, p in items]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=97))
def test_garbage_never_raises_and_only_yields_typed_events(data, chunk):
    decoder = V2GTPDecoder(max_payload_length=1024)
    events = []
    for pos in range(0, len(data), chunk):
        events += decoder.feed(data[pos:pos + chunk], now=pos * 1e-4)
    events += decoder.connection_lost()
    assert all(isinstance(e, (V2GTPMessage, V2GTPError)) for e in events)
    fatal = [e for e in events if isinstance(e, V2GTPError)
             and e.reaction is Reaction.CLOSE_CONNECTION]
    assert len(fatal) <= 1 and (not fatal or events[-1] is fatal[0])
    assert decoder.buffered <= 8 + 1024
