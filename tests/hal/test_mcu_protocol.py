"""MCU protocol, sans-I/O: framing, messages, and two links wired back to back in virtual
time (no sleeping)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.mcu_protocol import (
    MAX_PAYLOAD,
    Delivered,
    DeliveryFailed,
    FaultPlan,
    Frame,
    FrameDecoder,
    Hello,
    HelloRequest,
    LinkLost,
    LinkNotUp,
    LinkTiming,
    LinkUp,
    McuLink,
    MessageReceived,
    MsgType,
    Nacked,
    NakReason,
    PayloadError,
    PeerReset,
    SetDc,
    SignedMeter,
    Status,
    StatusFlag,
    cobs_decode,
    cobs_encode,
    crc16_ccitt,
    encode_frame,
)


def test_crc16_matches_ccitt_false_check_value():
    assert crc16_ccitt(b"123456789") == 0x29B1


@given(st.binary(max_size=700))
def test_cobs_round_trips_and_never_emits_zero(data):
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=MAX_PAYLOAD),
       st.integers(1, 64))
def test_frames_survive_any_chunking(kind, seq, payload, chunk):
    wire = encode_frame(Frame(kind, seq, payload)) * 2
    decoder = FrameDecoder()
    frames = []
    for i in range(0, len(wire), chunk):
        frames += decoder.feed(wire[i:i + chunk])
    assert frames == [Frame(kind, seq, payload)] * 2


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_decoder_never_raises_on_garbage(noise):
    decoder = FrameDecoder()
    for frame in decoder.feed(noise):
        assert isinstance(frame, Frame)
    # and it resynchronises: a good frame after the garbage is decoded
    good = Frame(MsgType.HEARTBEAT, 0, b"ok")
    assert decoder.feed(b"\x00" + encode_frame(good))[-1] == good


@given(st.binary(min_size=0, max_size=200), st.integers(0, 10_000))
def test_single_bit_error_in_body_is_a_crc_error(payload, bit):
    body = bytes((MsgType.STATUS, 7)) + payload
    body += crc16_ccitt(body).to_bytes(2, "big")
    bit %= len(body) * 8
    damaged = bytearray(body)
    damaged[bit // 8] ^= 1 << (bit % 8)
    decoder = FrameDecoder()
    assert decoder.feed(cobs_encode(bytes(damaged)) + b"\x00") == []
    assert decoder.crc_errors + decoder.framing_errors == 1


@pytest.mark.parametrize(("frame", "wire"), [
    (Frame(0x41, 5, b"\x01"), "06 41 05 01 09 d5 00"),
    (Frame(0x01, 0, b"\x05"), "02 01 04 05 ab 09 00"),
    (Frame(0x03, 0, b""), "02 03 03 48 5c 00"),
])
def test_wire_bytes_match_the_vectors_in_mcu_protocol_md(frame, wire):
    assert encode_frame(frame).hex(" ") == wire
    doc = (Path(__file__).resolve().parents[2] / "hal/MCU_PROTOCOL.md").read_text()
    assert f"`{wire}`" in doc


def test_oversized_frame_is_dropped_and_decoder_recovers():
    decoder = FrameDecoder()
    assert decoder.feed(b"\x01" * 5000 + b"\x00") == []
    assert decoder.framing_errors == 1
    assert decoder.feed(encode_frame(Frame(1, 0, b"x"))) == [Frame(1, 0, b"x")]


def test_payload_too_large_is_refused_at_encode():
    with pytest.raises(ValueError):
        encode_frame(Frame(1, 1, b"x" * (MAX_PAYLOAD + 1)))


def test_messages_round_trip():
    hello = Hello(7, "fw 2.1", ("connector", "module"))
    assert Hello.decode(hello.encode()) == hello
    status = Status(2, StatusFlag.CONTACTORS_CLOSED | StatusFlag.LOCK_LOCKED, 50, 400_000,
                    -12_500, 5_000_000, 0, 123_456, 7, (251, -40))
    assert Status.decode(status.encode()) == status
    assert SetDc.decode(SetDc(500_000, -20_000, True).encode()) == SetDc(500_000, -20_000, True)
    meter = SignedMeter("OCMF", b"OCMF|{}|{}", b"\x30\x59")
    assert SignedMeter.decode(meter.encode()) == meter
    assert HelloRequest.decode(HelloRequest(100, 300).encode()) == HelloRequest(100, 300)


@given(st.binary(max_size=80))
def test_message_decoders_raise_only_payload_error(payload):
    for cls in (Hello, Status, SetDc, SignedMeter, HelloRequest):
        try:
            cls.decode(payload)
        except PayloadError:
            pass


# ---------------------------------------------------------------- two links, virtual time


class Wire:
    """Host and MCU links joined back to back; ``run`` advances virtual time."""

    def __init__(self, timing: LinkTiming | None = None) -> None:
        self.timing = timing or LinkTiming(heartbeat_s=0.1, link_timeout_s=0.5,
                                           mcu_timeout_s=0.3, ack_timeout_s=0.05,
                                           max_retries=3)
        self.host = McuLink("host", self.timing)
        self.mcu = McuLink("mcu", LinkTiming(), Hello(1, "fw"))
        self.now = 0.0
        self.host_faults = FaultPlan()     # applied to bytes arriving at the host
        self.mcu_faults = FaultPlan()      # applied to bytes arriving at the MCU
        self.mcu_silent = False
        self.host_events: list = []
        self.mcu_events: list = []
        self.host.start(0.0)
        self.mcu.start(0.0)
        self.run(0.0)

    def pump(self) -> None:
        for _ in range(10):
            to_mcu = self.mcu_faults.filter_rx(self.host.data_to_send(self.now))
            to_host = self.mcu.data_to_send(self.now)
            if self.mcu_silent:
                to_host, to_mcu = b"", b""
            if not to_mcu and not to_host:
                break
            self.mcu.receive_bytes(to_mcu, self.now)
            self.host.receive_bytes(self.host_faults.filter_rx(to_host), self.now)
            self._collect()

    def _collect(self) -> None:
        while (e := self.host.next_event()) is not None:
            self.host_events.append(e)
        while (e := self.mcu.next_event()) is not None:
            self.mcu_events.append(e)
            if isinstance(e, MessageReceived) and e.seq:
                nak = NakReason.REFUSED if e.payload == b"no" else None
                self.mcu.answer(e.seq, nak)

    def run(self, seconds: float, step: float = 0.005) -> None:
        end = self.now + seconds
        while True:
            self.host.handle_timer(self.now)
            if not self.mcu_silent:
                self.mcu.handle_timer(self.now)
            self._collect()
            self.pump()
            if self.now >= end:
                break
            self.now = min(end, self.now + step)


def test_handshake_brings_both_ends_up_and_mcu_learns_the_watchdog_time():
    wire = Wire()
    assert wire.host.up and wire.mcu.up
    assert isinstance(wire.host_events[0], LinkUp) and wire.host_events[0].boot_counter == 1
    assert wire.mcu.timing.mcu_timeout_s == pytest.approx(0.3)


def test_reliable_command_is_delivered_once_and_acknowledged():
    wire = Wire()
    seq = wire.host.send(MsgType.SET_CONTACTORS, b"\x01")
    wire.run(0.01)
    assert Delivered(seq) in wire.host_events
    got = [e for e in wire.mcu_events if isinstance(e, MessageReceived)
           and e.type == MsgType.SET_CONTACTORS]
    assert len(got) == 1


def test_lost_command_is_retransmitted_and_not_executed_twice():
    wire = Wire()
    wire.mcu_faults.drop_rx = 1
    seq = wire.host.send(MsgType.SET_CONTACTORS, b"\x01")
    wire.run(0.2)
    assert Delivered(seq) in wire.host_events and wire.host.stats.retransmissions == 1
    assert sum(isinstance(e, MessageReceived) and e.seq == seq for e in wire.mcu_events) == 1


def test_lost_ack_leads_to_duplicate_that_is_acked_but_not_redelivered():
    wire = Wire()
    wire.host_faults.drop_rx = 1          # the ACK is lost on its way to the host
    seq = wire.host.send(MsgType.SET_LOCK, b"\x01")
    wire.run(0.2)
    assert Delivered(seq) in wire.host_events
    assert wire.mcu.stats.duplicates == 1
    assert sum(isinstance(e, MessageReceived) and e.seq == seq for e in wire.mcu_events) == 1


def test_nak_ends_the_command_without_retries():
    wire = Wire()
    seq = wire.host.send(MsgType.SET_CONTACTORS, b"no")
    wire.run(0.2)
    assert Nacked(seq, NakReason.REFUSED) in wire.host_events
    assert wire.host.stats.retransmissions == 0


def test_retries_exhausted_fail_the_command_and_drop_the_link():
    wire = Wire()
    wire.mcu_faults.drop_rx = 100
    seq = wire.host.send(MsgType.SET_DC, b"x")
    wire.run(0.3)
    failed = [e for e in wire.host_events if isinstance(e, DeliveryFailed)]
    assert failed and failed[0].seq == seq and "after 4 attempts" in failed[0].reason
    assert any(isinstance(e, LinkLost) for e in wire.host_events) and not wire.host.up
    with pytest.raises(LinkNotUp):
        wire.host.send(MsgType.SET_DC, b"x")


def test_silent_mcu_is_detected_after_link_timeout_and_link_recovers():
    wire = Wire()
    wire.mcu_silent = True
    wire.run(0.45)
    assert wire.host.up
    wire.run(0.1)
    lost = [e for e in wire.host_events if isinstance(e, LinkLost)]
    assert len(lost) == 1 and "500 ms" in lost[0].reason
    wire.mcu_silent = False
    wire.run(0.2)
    assert wire.host.up and sum(isinstance(e, LinkUp) for e in wire.host_events) == 2
    assert not any(isinstance(e, PeerReset) for e in wire.host_events)


def test_mcu_watchdog_fires_when_heartbeats_stop():
    wire = Wire()
    wire.mcu_faults.drop_rx = 10_000       # host frames (heartbeats) no longer arrive
    start = wire.now
    wire.run(0.5)
    lost = [e for e in wire.mcu_events if isinstance(e, LinkLost)]
    assert len(lost) == 1 and "host" in lost[0].reason
    assert wire.now - start >= 0.3


def test_mcu_reboot_is_reported_as_peer_reset_with_new_boot_counter():
    wire = Wire()
    wire.mcu = McuLink("mcu", LinkTiming(), Hello(2, "fw"))   # fresh firmware after reset
    wire.mcu.start(wire.now)
    wire.run(0.05)
    assert PeerReset(1, 2) in wire.host_events
    assert wire.mcu.up                      # host re-sent HELLO_REQ: watchdog time known
    seq = wire.host.send(MsgType.SET_PWM, b"\x00\x32")
    wire.run(0.05)
    assert Delivered(seq) in wire.host_events


def test_sequence_numbers_wrap_from_255_to_1():
    wire = Wire()
    seqs = []
    for _ in range(300):
        seqs.append(wire.host.send(MsgType.SET_LOCK, b"\x00"))
        wire.run(0.0)
    assert seqs[254] == 255 and seqs[255] == 1 and 0 not in seqs
    assert sum(isinstance(e, Delivered) for e in wire.host_events) == 300


def test_reports_before_hello_are_ignored_by_the_host():
    host = McuLink("host")
    host.start(0.0)
    host.receive_bytes(encode_frame(Frame(MsgType.STATUS, 0, b"x")), 0.01)
    assert host.next_event() is None


@settings(max_examples=200)
@given(st.lists(st.one_of(
    st.binary(max_size=64),
    st.builds(lambda t, q, p: encode_frame(Frame(t, q, p)),
              st.sampled_from(list(MsgType) + [0x00, 0x7F, 0xFF]), st.integers(0, 255),
              st.binary(max_size=40)),
), max_size=30), st.sampled_from(["host", "mcu"]))
def test_link_survives_any_byte_sequence(chunks, role):
    """Garbage, valid frames of any type with any payload, in any order: no exception, and
    events are only of the documented kinds."""
    link = McuLink(role)
    link.start(0.0)
    now = 0.0
    for chunk in chunks:
        now += 0.01
        link.receive_bytes(chunk, now)
        link.handle_timer(now)
        link.data_to_send(now)
        while (event := link.next_event()) is not None:
            assert type(event).__name__ in {
                "MessageReceived", "Delivered", "DeliveryFailed", "Nacked", "LinkUp",
                "LinkLost", "PeerReset"}
