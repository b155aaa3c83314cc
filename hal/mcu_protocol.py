"""Host <-> MCU serial protocol, sans-I/O (specification: hal/MCU_PROTOCOL.md).

Three layers, none touching a port or a clock:

* framing: :func:`encode_frame` / :class:`FrameDecoder` — COBS, 0x00 delimiter, CRC-16;
* messages: one frozen dataclass per message type with ``encode()`` / ``decode(payload)``;
* the link: :class:`McuLink` — heartbeat, HELLO handshake, stop-and-wait ACK/retry,
  duplicate suppression, link-loss and MCU-reset detection. Feed it ``receive_bytes(data, now)``
  and ``handle_timer(now)``; take ``data_to_send()``, ``next_event()`` and ``next_deadline()``.

The same link class runs the host side (``hal/serial_board.py``) and the simulated MCU
firmware (``hal/mcu_sim.py``), selected by ``role``.
"""

from __future__ import annotations

import collections
import enum
import struct
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
MAX_BODY = 512                 # type + seq + payload + CRC, before COBS
MAX_PAYLOAD = MAX_BODY - 4
MAX_WIRE = MAX_BODY + MAX_BODY // 254 + 2


# --------------------------------------------------------------------------- CRC-16 and COBS


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR
    (check value for b"123456789" is 0x29B1)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: output contains no 0x00."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


class FrameError(Exception):
    """A frame that failed COBS, length or CRC checks (counted, then dropped)."""


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(data):
        code = data[index]
        if code == 0:
            raise FrameError("zero byte inside a COBS frame")
        end = index + code
        if end > len(data):
            raise FrameError("COBS block runs past the frame end")
        out += data[index + 1:end]
        index = end
        if code != 255 and index < len(data):
            out.append(0)
    return bytes(out)


# --------------------------------------------------------------------------- frames


class MsgType(enum.IntEnum):
    """Message type byte. 0x0_ link, 0x1_ handshake, 0x2_/0x3_ MCU reports, 0x4_ commands."""

    ACK = 0x01
    NAK = 0x02
    HEARTBEAT = 0x03
    HELLO = 0x10
    HELLO_REQ = 0x11
    STATUS = 0x20
    SIGNED_METER = 0x31
    REQ_SIGNED_METER = 0x30
    SET_PWM = 0x40
    SET_CONTACTORS = 0x41
    SET_LOCK = 0x42
    SET_DC = 0x43
    ENTER_SAFE_STATE = 0x44


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int          # 1..255 reliable (must be ACKed), 0 unreliable
    payload: bytes = b""


def encode_frame(frame: Frame) -> bytes:
    """Frame -> bytes on the wire (COBS(body) + 0x00)."""
    if len(frame.payload) > MAX_PAYLOAD:
        raise ValueError(f"payload {len(frame.payload)} bytes > {MAX_PAYLOAD}")
    body = bytes((frame.type & 0xFF, frame.seq & 0xFF)) + frame.payload
    body += struct.pack(">H", crc16_ccitt(body))
    return cobs_encode(body) + b"\x00"


class FrameDecoder:
    """Bytes in (any chunking) -> frames out. Never raises on bad input: counts and drops."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overflow = False
        self.crc_errors = 0
        self.framing_errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        for byte in data:
            if byte != 0:
                if len(self._buffer) >= MAX_WIRE:
                    self._overflow = True          # drop until the next delimiter
                else:
                    self._buffer.append(byte)
                continue
            raw, overflow = bytes(self._buffer), self._overflow
            self._buffer.clear()
            self._overflow = False
            if not raw and not overflow:
                continue                          # idle delimiters are allowed
            frame = self._decode(raw, overflow)
            if frame is not None:
                frames.append(frame)
        return frames

    def _decode(self, raw: bytes, overflow: bool) -> Frame | None:
        if overflow:
            self.framing_errors += 1
            return None
        try:
            body = cobs_decode(raw)
        except FrameError:
            self.framing_errors += 1
            return None
        if len(body) < 4:
            self.framing_errors += 1
            return None
        if crc16_ccitt(body[:-2]) != struct.unpack(">H", body[-2:])[0]:
            self.crc_errors += 1
            return None
        return Frame(body[0], body[1], body[2:-2])


# --------------------------------------------------------------------------- messages


class PayloadError(ValueError):
    """A payload whose length or content does not fit its message type."""


def _unpack(fmt: str, payload: bytes) -> tuple:
    if len(payload) != struct.calcsize(fmt):
        raise PayloadError(f"expected {struct.calcsize(fmt)} bytes, got {len(payload)}")
    return struct.unpack(fmt, payload)


def _take_str(payload: bytes, offset: int, size_fmt: str = ">B") -> tuple[bytes, int]:
    width = struct.calcsize(size_fmt)
    if offset + width > len(payload):
        raise PayloadError("truncated length field")
    (length,) = struct.unpack_from(size_fmt, payload, offset)
    offset += width
    if offset + length > len(payload):
        raise PayloadError("truncated string")
    return payload[offset:offset + length], offset + length


def _put_str(data: bytes, size_fmt: str = ">B") -> bytes:
    return struct.pack(size_fmt, len(data)) + data


class NakReason(enum.IntEnum):
    UNKNOWN_TYPE = 1
    BAD_PAYLOAD = 2
    REFUSED = 3        # e.g. close contactors while the emergency stop is pressed


@dataclass(frozen=True)
class Hello:
    """MCU -> host at boot and in answer to HELLO_REQ. A new boot_counter means a reset."""

    boot_counter: int
    firmware: str = ""
    sensors: tuple[str, ...] = ()
    version: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        data = struct.pack(">BI", self.version, self.boot_counter)
        data += _put_str(self.firmware.encode()[:255])
        data += bytes((len(self.sensors),))
        for name in self.sensors:
            data += _put_str(name.encode()[:255])
        return data

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        if len(payload) < 5:
            raise PayloadError("HELLO shorter than 5 bytes")
        version, boot = struct.unpack_from(">BI", payload)
        firmware, offset = _take_str(payload, 5)
        if offset >= len(payload):
            raise PayloadError("HELLO without sensor count")
        count = payload[offset]
        offset += 1
        sensors = []
        for _ in range(count):
            name, offset = _take_str(payload, offset)
            sensors.append(name.decode(errors="replace"))
        if offset != len(payload):
            raise PayloadError("trailing bytes after HELLO")
        return cls(boot, firmware.decode(errors="replace"), tuple(sensors), version)


@dataclass(frozen=True)
class HelloRequest:
    """Host -> MCU when (re)starting the link; tells the MCU its heartbeat watchdog time."""

    heartbeat_ms: int
    mcu_timeout_ms: int

    def encode(self) -> bytes:
        return struct.pack(">HH", self.heartbeat_ms, self.mcu_timeout_ms)

    @classmethod
    def decode(cls, payload: bytes) -> HelloRequest:
        return cls(*_unpack(">HH", payload))


PILOT_CODES = "ABCDEF"          # pilot_raw byte: 0..5 = A..F, 0xFF unknown
NO_RESISTANCE = 0xFFFFFFFF


class StatusFlag(enum.IntFlag):
    CONTACTORS_CLOSED = 0x01      # auxiliary-contact feedback
    CONTACTORS_COMMANDED = 0x02
    EMERGENCY_STOP = 0x04
    LOCK_LOCKED = 0x08            # neither LOCKED nor UNLOCKED: position unknown
    LOCK_UNLOCKED = 0x10
    DC_ENABLED = 0x20
    MCU_SAFE_STATE = 0x40         # latched after heartbeat loss until the next HELLO_REQ


@dataclass(frozen=True)
class Status:
    """MCU -> host every heartbeat period and on every change (unreliable: the next one
    repairs a lost one)."""

    pilot_raw: int                 # index into PILOT_CODES, 0xFF unknown
    flags: StatusFlag
    pwm_permille: int
    voltage_mv: int
    current_ma: int
    isolation_ohm: int             # NO_RESISTANCE: not measured
    isolation_state: int           # 0 valid, 1 warning, 2 fault, 3 not measured
    energy_import_wh_milli: int
    energy_export_wh_milli: int
    temperatures_decidegc: tuple[int, ...] = ()

    _FMT = ">BBHiiIBQQB"

    def encode(self) -> bytes:
        data = struct.pack(self._FMT, self.pilot_raw, int(self.flags), self.pwm_permille,
                           self.voltage_mv, self.current_ma, self.isolation_ohm,
                           self.isolation_state, self.energy_import_wh_milli,
                           self.energy_export_wh_milli, len(self.temperatures_decidegc))
        return data + b"".join(struct.pack(">h", t) for t in self.temperatures_decidegc)

    @classmethod
    def decode(cls, payload: bytes) -> Status:
        size = struct.calcsize(cls._FMT)
        if len(payload) < size:
            raise PayloadError(f"STATUS shorter than {size} bytes")
        fields = struct.unpack_from(cls._FMT, payload)
        count = fields[-1]
        if len(payload) != size + 2 * count:
            raise PayloadError("STATUS temperature count does not match its length")
        if fields[0] > 5 and fields[0] != 0xFF:
            raise PayloadError(f"pilot code {fields[0]} unknown")
        temps = struct.unpack_from(f">{count}h", payload, size)
        return cls(fields[0], StatusFlag(fields[1] & 0x7F), *fields[2:-1], temps)


@dataclass(frozen=True)
class SignedMeter:
    """MCU -> host (reliable) in answer to REQ_SIGNED_METER."""

    format: str
    data: bytes
    public_key: bytes = b""

    def encode(self) -> bytes:
        return (_put_str(self.format.encode()[:255]) + _put_str(self.data, ">H")
                + _put_str(self.public_key, ">H"))

    @classmethod
    def decode(cls, payload: bytes) -> SignedMeter:
        fmt, offset = _take_str(payload, 0)
        data, offset = _take_str(payload, offset, ">H")
        key, offset = _take_str(payload, offset, ">H")
        if offset != len(payload):
            raise PayloadError("trailing bytes after SIGNED_METER")
        return cls(fmt.decode(errors="replace"), data, key)


@dataclass(frozen=True)
class SetDc:
    voltage_mv: int
    current_ma: int           # negative: discharge
    enabled: bool

    def encode(self) -> bytes:
        return struct.pack(">iiB", self.voltage_mv, self.current_ma, int(self.enabled))

    @classmethod
    def decode(cls, payload: bytes) -> SetDc:
        v, i, e = _unpack(">iiB", payload)
        return cls(v, i, bool(e))


def encode_u8(value: int) -> bytes:
    return bytes((value & 0xFF,))


def decode_u8(payload: bytes) -> int:
    return _unpack(">B", payload)[0]


def encode_u16(value: int) -> bytes:
    return struct.pack(">H", value)


def decode_u16(payload: bytes) -> int:
    return _unpack(">H", payload)[0]


# --------------------------------------------------------------------------- link events


@dataclass(frozen=True)
class MessageReceived:
    type: int
    payload: bytes
    seq: int


@dataclass(frozen=True)
class Delivered:
    seq: int


@dataclass(frozen=True)
class DeliveryFailed:
    seq: int
    reason: str


@dataclass(frozen=True)
class Nacked:
    seq: int
    reason: int


@dataclass(frozen=True)
class LinkUp:
    boot_counter: int          # host side: the MCU's; MCU side: 0
    hello: Hello | None = None


@dataclass(frozen=True)
class LinkLost:
    reason: str


@dataclass(frozen=True)
class PeerReset:
    """Host side: a HELLO with a different boot counter (the MCU rebooted)."""

    previous_boot_counter: int
    boot_counter: int


LinkEvent = MessageReceived | Delivered | DeliveryFailed | Nacked | LinkUp | LinkLost | PeerReset


class LinkNotUp(Exception):
    """A reliable message was offered while the link is down."""


@dataclass
class LinkStats:
    frames_in: int = 0
    frames_out: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    crc_errors: int = 0
    framing_errors: int = 0


@dataclass
class _Outstanding:
    frame: Frame
    wire: bytes
    deadline: float
    attempts: int = 1


# --------------------------------------------------------------------------- the link


@dataclass
class LinkTiming:
    heartbeat_s: float = 0.1       # host: HEARTBEAT / HELLO_REQ period
    link_timeout_s: float = 0.5    # host: no valid frame this long -> link lost
    mcu_timeout_s: float = 0.3     # MCU: no valid host frame this long -> safe outputs
    ack_timeout_s: float = 0.05
    max_retries: int = 3


class McuLink:
    """One end of the link. ``role`` is ``"host"`` or ``"mcu"``.

    Host: sends HELLO_REQ every heartbeat until a HELLO arrives (link up), then HEARTBEAT every
    heartbeat; declares the link lost when the MCU is silent for ``link_timeout_s`` or a
    reliable frame exhausts its retries, and reports :class:`PeerReset` when a HELLO brings a
    new boot counter. MCU: answers HELLO_REQ with ``hello`` (reset of duplicate suppression),
    reports :class:`LinkLost` when the host is silent for the watchdog time the host announced,
    and :class:`LinkUp` on the next HELLO_REQ. Both: reliable frames are numbered 1..255,
    ACKed by the receiver, retransmitted unchanged after ``ack_timeout_s``; a repeated number is
    ACKed again but not delivered twice. One reliable frame is in flight at a time; later ones
    queue.
    """

    def __init__(self, role: str, timing: LinkTiming | None = None,
                 hello: Hello | None = None, *, auto_ack: bool | None = None) -> None:
        if role not in ("host", "mcu"):
            raise ValueError("role must be 'host' or 'mcu'")
        self.role = role
        # The MCU answers each command itself (ACK, or NAK when it refuses); the host ACKs
        # everything it can parse.
        self.auto_ack = (role == "host") if auto_ack is None else auto_ack
        self._answers: dict[int, bytes] = {}
        self.timing = timing or LinkTiming()
        self.hello = hello or Hello(boot_counter=0)
        self.stats = LinkStats()
        self.up = False
        self.peer_boot_counter: int | None = None
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: collections.deque[LinkEvent] = collections.deque()
        self._next_seq = 1
        self._last_rx_seq: int | None = None
        self._outstanding: _Outstanding | None = None
        self._queue: collections.deque[Frame] = collections.deque()
        self._last_rx: float | None = None
        self._next_beat: float | None = None
        self._started = False

    # ------------------------------------------------------------------ API
    def start(self, now: float) -> None:
        """Host: begin the handshake now. MCU: announce itself (HELLO at boot)."""
        self._started = True
        self._last_rx = now
        if self.role == "host":
            self._next_beat = now
            self.handle_timer(now)
        else:
            self._emit_frame(Frame(MsgType.HELLO, 0, self.hello.encode()))

    def send(self, msg_type: int, payload: bytes = b"", *, reliable: bool = True) -> int:
        """Queue a message; returns its sequence number (0 when unreliable)."""
        if not reliable:
            self._emit_frame(Frame(msg_type, 0, payload))
            return 0
        if not self.up:
            raise LinkNotUp("link is down")
        seq = self._next_seq
        self._next_seq = seq % 255 + 1
        self._queue.append(Frame(msg_type, seq, payload))
        return seq

    def answer(self, seq: int, nak: NakReason | None = None) -> None:
        """Acknowledge (or refuse with ``nak``) the reliable frame ``seq`` just received."""
        if nak is None:
            wire = encode_frame(Frame(MsgType.ACK, 0, bytes((seq,))))
        else:
            wire = encode_frame(Frame(MsgType.NAK, 0, bytes((seq, int(nak)))))
        self._answers[seq] = wire
        self._out += wire
        self.stats.frames_out += 1

    def data_to_send(self, now: float) -> bytes:
        self._pump(now)
        data, self._out = bytes(self._out), bytearray()
        return data

    def next_event(self) -> LinkEvent | None:
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        candidates = []
        if self._outstanding is not None:
            candidates.append(self._outstanding.deadline)
        if self._next_beat is not None:
            candidates.append(self._next_beat)
        if self._last_rx is not None and (self.up or self.role == "host"):
            candidates.append(self._last_rx + self._silence_limit())
        return min(candidates) if candidates else None

    def _silence_limit(self) -> float:
        return self.timing.link_timeout_s if self.role == "host" else self.timing.mcu_timeout_s

    # ------------------------------------------------------------------ input
    def receive_bytes(self, data: bytes, now: float) -> None:
        for frame in self._decoder.feed(data):
            self.stats.frames_in += 1
            self._last_rx = now
            self._on_frame(frame, now)
        self.stats.crc_errors = self._decoder.crc_errors
        self.stats.framing_errors = self._decoder.framing_errors

    def _on_frame(self, frame: Frame, now: float) -> None:
        kind = frame.type
        if kind == MsgType.ACK:
            self._on_ack(frame.payload, now)
            return
        if kind == MsgType.NAK:
            if len(frame.payload) == 2 and self._outstanding is not None \
                    and frame.payload[0] == self._outstanding.frame.seq:
                self._events.append(Nacked(frame.payload[0], frame.payload[1]))
                self._outstanding = None
            return
        if self.role == "host" and kind == MsgType.HELLO:
            self._on_hello(frame, now)
            return
        if self.role == "mcu" and kind == MsgType.HELLO_REQ:
            self._on_hello_request(frame, now)
            return
        if frame.seq:
            if frame.seq == self._last_rx_seq:
                self.stats.duplicates += 1        # our answer was lost: repeat it, no redo
                if frame.seq in self._answers:
                    self._out += self._answers[frame.seq]
                    self.stats.frames_out += 1
                return
            self._last_rx_seq = frame.seq
            self._answers.clear()
            if self.auto_ack:
                self.answer(frame.seq)
        if kind == MsgType.HEARTBEAT:
            return
        if self.role == "host" and not self.up:
            return                     # reports before HELLO belong to an unknown MCU state
        self._events.append(MessageReceived(kind, frame.payload, frame.seq))

    def _on_ack(self, payload: bytes, now: float) -> None:
        out = self._outstanding
        if len(payload) == 1 and out is not None and payload[0] == out.frame.seq:
            self._outstanding = None
            self._events.append(Delivered(out.frame.seq))
            self._pump(now)

    def _on_hello(self, frame: Frame, now: float) -> None:
        try:
            hello = Hello.decode(frame.payload)
        except PayloadError:
            self.stats.framing_errors += 1
            return
        previous = self.peer_boot_counter
        self._last_rx_seq = None           # the MCU numbers its frames anew after HELLO
        self._answers.clear()
        if previous is not None and hello.boot_counter != previous:
            self._events.append(PeerReset(previous, hello.boot_counter))
            self.rehello()                 # give the rebooted MCU our watchdog time again
        self.peer_boot_counter = hello.boot_counter
        if not self.up:
            self.up = True
            self._next_beat = now + self.timing.heartbeat_s
            self._events.append(LinkUp(hello.boot_counter, hello))

    def _on_hello_request(self, frame: Frame, now: float) -> None:
        try:
            request = HelloRequest.decode(frame.payload)
        except PayloadError:
            self.stats.framing_errors += 1
            return
        self.timing.mcu_timeout_s = request.mcu_timeout_ms / 1000.0
        self._last_rx_seq = None           # a (re)started host numbers from 1 again
        self._answers.clear()
        self._emit_frame(Frame(MsgType.HELLO, 0, self.hello.encode()))
        self.up = True
        self._events.append(LinkUp(0))       # every HELLO_REQ: the firmware clears its latch

    # ------------------------------------------------------------------ timers
    def handle_timer(self, now: float) -> None:
        if not self._started:
            return
        if self._last_rx is not None and now - self._last_rx >= self._silence_limit():
            if self.up:
                who = "MCU" if self.role == "host" else "host"
                self._lose(f"no frame from the {who} for {self._silence_limit() * 1000:.0f} ms")
            self._last_rx = now if self.role == "host" else None
        out = self._outstanding
        if out is not None and now >= out.deadline:
            if out.attempts > self.timing.max_retries:
                self._lose(f"frame seq {out.frame.seq} type 0x{out.frame.type:02x} not "
                           f"acknowledged after {out.attempts} attempts")
            else:
                out.attempts += 1
                out.deadline = now + self.timing.ack_timeout_s
                self.stats.retransmissions += 1
                self._out += out.wire
                self.stats.frames_out += 1
        if self.role == "host" and self._next_beat is not None and now >= self._next_beat:
            self._next_beat = now + self.timing.heartbeat_s
            if self.up:
                self._emit_frame(Frame(MsgType.HEARTBEAT, 0))
            else:
                self.rehello()
        self._pump(now)

    def rehello(self) -> None:
        """Host: send HELLO_REQ now (handshake, or clear a latched MCU safe state)."""
        request = HelloRequest(round(self.timing.heartbeat_s * 1000),
                               round(self.timing.mcu_timeout_s * 1000))
        self._emit_frame(Frame(MsgType.HELLO_REQ, 0, request.encode()))

    def _lose(self, reason: str) -> None:
        self.up = False
        failed = ([self._outstanding.frame] if self._outstanding else []) + list(self._queue)
        self._outstanding = None
        self._queue.clear()
        for frame in failed:
            self._events.append(DeliveryFailed(frame.seq, reason))
        self._events.append(LinkLost(reason))

    # ------------------------------------------------------------------ output
    def _emit_frame(self, frame: Frame) -> None:
        self._out += encode_frame(frame)
        self.stats.frames_out += 1

    def _pump(self, now: float) -> None:
        if self._outstanding is None and self._queue:
            frame = self._queue.popleft()
            wire = encode_frame(frame)
            self._outstanding = _Outstanding(frame, wire, now + self.timing.ack_timeout_s)
            self._out += wire
            self.stats.frames_out += 1


@dataclass
class FaultPlan:
    """Test hook for either end: drop incoming or corrupt outgoing frames, N at a time.

    ``filter_rx`` works on the byte stream (any chunking): it holds back a partial frame until
    its delimiter arrives, so whole frames are dropped, never fragments.
    """

    drop_rx: int = 0
    corrupt_tx: int = 0
    dropped: int = 0
    corrupted: int = 0
    _partial: bytearray = field(default_factory=bytearray)

    def filter_rx(self, data: bytes) -> bytes:
        self._partial += data
        *complete, rest = bytes(self._partial).split(b"\x00")
        self._partial = bytearray(rest)
        kept = bytearray()
        for part in complete:
            if part and self.drop_rx:
                self.drop_rx -= 1
                self.dropped += 1
                continue
            kept += part + b"\x00"
        return bytes(kept)

    def filter_tx(self, data: bytes) -> bytes:
        """``data`` is whole frames (what :meth:`McuLink.data_to_send` returns)."""
        if not self.corrupt_tx or not data:
            return data
        out = bytearray()
        for part in data.split(b"\x00")[:-1]:
            if self.corrupt_tx and len(part) > 2:
                self.corrupt_tx -= 1
                self.corrupted += 1
                damaged = bytearray(part)
                index = len(damaged) - 2          # a CRC byte: the frame fails its check
                damaged[index] = (damaged[index] ^ 0x10) or 0x10
                part = bytes(damaged)
            out += part + b"\x00"
        return bytes(out)
