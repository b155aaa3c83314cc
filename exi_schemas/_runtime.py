"""Bit-level EXI primitives used by the generated codecs (W3C EXI 1.0 §7.1).

The reader holds a window of the stream (the whole message for charge-loop messages) as one
Python int and extracts fields with a shift and a mask; the writer accumulates into an int and
flushes whole bytes now and then, so neither touches individual bytes in Python loops. Every read checks the remaining input, so a
truncated or hostile stream ends in ``ExiDecodeError`` with the bit offset, never in an
IndexError or an endless loop.
"""

from __future__ import annotations


class ExiError(Exception):
    """Base of the codec errors."""


class ExiDecodeError(ExiError):
    """The input is not a valid EXI stream for the schema; ``bit_offset`` says where."""

    def __init__(self, message: str, bit_offset: int = 0) -> None:
        super().__init__(f"{message} (at bit {bit_offset})")
        self.reason = message
        self.bit_offset = bit_offset


class ExiEncodeError(ExiError):
    """The message cannot be encoded (missing required field, value out of range, ...)."""


WINDOW_BYTES = 512  # how much of the stream one Python int holds at a time


class Reader:
    """MSB-first bit reader over ``data``.

    ``v`` holds the bits ``[n - bitlen, n)`` of the stream (a window of at most a few hundred
    bytes, the whole message for charge-loop messages), ``n`` is the absolute bit position of
    the window's end, ``p`` the read position. A field ending at ``q <= n`` is
    ``(v >> (n - q)) & mask``. Windows only move forward and a stale window stays valid for the
    positions it covers, so generated code may cache ``v``/``n`` in locals and call
    ``refill(q)`` when a read would pass ``n``. Shifting a window, not the whole message, keeps
    decoding linear in the message size.
    """

    __slots__ = ("v", "n", "p", "data", "total")

    def __init__(self, data: bytes, start_bit: int = 0) -> None:
        self.data = data
        self.total = len(data) * 8
        self.p = start_bit
        end = min(len(data), start_bit // 8 + WINDOW_BYTES)
        self.v = int.from_bytes(data[start_bit // 8:end], "big")
        self.n = end * 8

    def refill(self, q: int) -> tuple[int, int]:
        """Move the window so that it covers ``[p, q)``; the end of the input is an error."""
        if q > self.total:
            raise ExiDecodeError("unexpected end of stream", self.p)
        start = self.p >> 3
        end = min(len(self.data), max(start + WINDOW_BYTES, (q + 7) >> 3))
        self.v = v = int.from_bytes(self.data[start:end], "big")
        self.n = n = end << 3
        return v, n

    def fail(self, message: str):
        raise ExiDecodeError(message, self.p)

    # error helpers of the generated fused reads (kept out of line: they never return)
    def eos(self):
        raise ExiDecodeError("unexpected end of stream", self.p)

    def bad(self, at: int, message: str):
        raise ExiDecodeError(message, at)

    def badz(self, at: int, width: int, wrong: int):
        """A fused read found a non-zero code where only one production exists."""
        raise ExiDecodeError("unexpected event (second-level or undeclared)",
                             at + width - wrong.bit_length())

    def bad_code(self, at: int, code: int, limit: int):
        raise ExiDecodeError(
            "unsupported second-level event (xsi:type/xsi:nil/undeclared content)"
            if code == limit else f"invalid event code {code}", at)

    def bits(self, k: int) -> int:
        p = self.p + k
        if p > self.n:
            self.refill(p)
        self.p = p
        return (self.v >> (self.n - p)) & ((1 << k) - 1)

    def code(self, k: int, limit: int) -> int:
        """An event code of ``k`` bits; codes >= ``limit`` are second-level or invalid."""
        p = self.p + k
        if p > self.n:
            self.refill(p)
        c = (self.v >> (self.n - p)) & ((1 << k) - 1)
        if c >= limit:
            raise ExiDecodeError(
                "unsupported second-level event (xsi:type/xsi:nil/undeclared content)"
                if c == limit else f"invalid event code {c}", self.p)
        self.p = p
        return c

    def zero(self, k: int, what: str) -> None:
        """A one-production state: the code must be 0 (anything else is second level)."""
        p = self.p + k
        if p > self.n:
            self.refill(p)
        if (self.v >> (self.n - p)) & ((1 << k) - 1):
            raise ExiDecodeError(f"expected {what}", self.p)
        self.p = p

    def uint(self) -> int:
        """Unsigned integer of an unbounded type (xs:integer, e.g. X509SerialNumber): 7-bit
        groups, least significant first, high bit = more groups follow. Ends at the input's
        end at the latest."""
        start = self.p
        p = start
        result = 0
        shift = 0
        while True:
            if p + 8 > self.n:
                if p + 8 > self.total:
                    raise ExiDecodeError("unexpected end of stream in unsigned integer", start)
                self.p = p
                self.refill(p + 8)
            b = (self.v >> (self.n - p - 8)) & 0xFF
            p += 8
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self.p = p
                return result
            shift += 7

    def uintb(self, hi: int) -> int:
        """Unsigned integer of a type bounded by ``hi``: at most the groups ``hi`` needs."""
        start = self.p
        p = start
        v = self.v
        n = self.n
        result = 0
        shift = 0
        limit = hi.bit_length() + 7
        while shift < limit:
            if p + 8 > n:
                if p + 8 > self.total:
                    raise ExiDecodeError("unexpected end of stream in unsigned integer", start)
                self.p = p
                v, n = self.refill(p + 8)
            b = (v >> (n - p - 8)) & 0xFF
            p += 8
            result |= (b & 0x7F) << shift
            if b < 0x80:
                if result > hi:
                    break
                self.p = p
                return result
            shift += 7
        self.p = start
        raise ExiDecodeError(f"integer out of range (max {hi})", start)

    def enum(self, k: int, values: tuple[str, ...]) -> str:
        at = self.p
        i = self.bits(k)
        if i >= len(values):
            raise ExiDecodeError(f"enumeration index {i} out of range", at)
        return values[i]

    def sintb(self, lo: int, hi: int) -> int:
        at = self.p
        if self.bits(1):
            v = -self.uintb(-lo - 1) - 1
        else:
            v = self.uintb(hi)
        if v < lo or v > hi:
            raise ExiDecodeError(f"integer {v} out of range [{lo}, {hi}]", at)
        return v

    def sint(self) -> int:
        if self.bits(1):
            return -self.uint() - 1
        return self.uint()

    def boolean(self) -> bool:
        return self.bits(1) == 1

    def length(self, unit_bits: int) -> int:
        """A length prefix, checked against what is left of the stream."""
        at = self.p
        n = self.uintb(self.total)
        if n * unit_bits > self.total - self.p:
            raise ExiDecodeError(f"length {n} exceeds the remaining input", at)
        return n

    def _take_bytes(self, n: int) -> bytes:
        """``n`` whole bytes at the (possibly unaligned) read position."""
        p = self.p
        q = p + 8 * n
        if p & 7 == 0:
            out = self.data[p >> 3:q >> 3]
        else:
            start = p >> 3
            chunk = int.from_bytes(self.data[start:(q + 7) >> 3], "big")
            out = ((chunk >> ((-q) & 7)) & ((1 << (8 * n)) - 1)).to_bytes(n, "big")
        self.p = q
        return out

    def binary(self) -> bytes:
        n = self.length(8)
        return self._take_bytes(n) if n else b""

    def string(self) -> str:
        at = self.p
        n = self.uintb(self.total + 2)
        if n < 2:
            raise ExiDecodeError("string table hit (valuePartitionCapacity is 0)", at)
        n -= 2
        if n * 8 > self.total - self.p:
            raise ExiDecodeError(f"string length {n} exceeds the remaining input", at)
        if n == 0:
            return ""
        start = self.p
        raw = self._take_bytes(n)
        if max(raw) < 0x80:
            return raw.decode("ascii")
        self.p = start  # non-ASCII code points: decode one by one
        chars = []
        for _ in range(n):
            at = self.p
            cp = self.uintb(0x10FFFF)
            if 0xD800 <= cp <= 0xDFFF:
                raise ExiDecodeError(f"code point {cp:#x} is a surrogate", at)
            chars.append(chr(cp))
        return "".join(chars)

    # Simple-typed elements: SE was read; next is CH (1 bit 0) with the value and EE (1 bit 0),
    # or, for an empty value, the escape (1 bit 1) to the second-level EE: EXIficient writes
    # no CH event for empty content (libcbv2g, OpenV2G and our encoder write CH with an empty
    # value). The second level of a simple type's first state holds EE, xsi:type, xsi:nil,
    # AT(*), AT(*) untyped, SE(*), CH untyped: 3 bits, EE = 0.
    def empty_element(self) -> bool:
        """True if the element is empty (second-level EE consumed), False if CH follows."""
        if not self.bits(1):
            return False
        at = self.p
        if self.bits(3):
            raise ExiDecodeError(
                "unsupported second-level event (xsi:type/xsi:nil/undeclared content)", at)
        return True

    def string_element(self) -> str:
        if self.empty_element():
            return ""
        s = self.string()
        self.zero(1, "end of element")
        return s

    def binary_element(self) -> bytes:
        if self.empty_element():
            return b""
        b = self.binary()
        self.zero(1, "end of element")
        return b

    def count(self, limit: int | None) -> int:
        """A list length: at least one bit per item must remain."""
        at = self.p
        n = self.uintb(self.total)
        if n > self.total - self.p or (limit is not None and n > limit):
            raise ExiDecodeError(f"list length {n} is not possible here", at)
        return n


class Writer:
    """MSB-first bit writer; ``bits(value, k)`` appends ``k`` bits."""

    __slots__ = ("acc", "n", "out")

    def __init__(self) -> None:
        self.acc = 0
        self.n = 0
        self.out = bytearray()

    def bits(self, value: int, k: int) -> None:
        self.acc = (self.acc << k) | value
        self.n += k
        if self.n > 512:
            self._flush()

    def _flush(self) -> None:
        whole, rest = divmod(self.n, 8)
        self.out += (self.acc >> rest).to_bytes(whole, "big")
        self.acc &= (1 << rest) - 1
        self.n = rest

    def uint(self, v: int) -> None:
        if 0 <= v < 0x80:  # one 7-bit group: the byte is the value
            self.acc = (self.acc << 8) | v
            self.n += 8
        else:
            if v < 0:
                raise ExiEncodeError(f"negative value {v} for an unsigned type")
            acc = 0
            k = 8
            while v > 0x7F:  # first group (least significant 7 bits) ends up leftmost
                acc = (acc << 8) | 0x80 | (v & 0x7F)
                v >>= 7
                k += 8
            self.acc = (self.acc << k) | (acc << 8) | v
            self.n += k
        if self.n > 512:
            self._flush()

    def nbit(self, v: int, lo: int, hi: int, k: int) -> None:
        """A bounded integer (range <= 4096) as ``k``-bit offset from the lower bound."""
        if not lo <= v <= hi:
            raise ExiEncodeError(f"value {v} outside [{lo}, {hi}]")
        self.bits(v - lo, k)

    def enum(self, v: str, index: dict[str, int], k: int) -> None:
        i = index.get(v)
        if i is None:
            raise ExiEncodeError(f"{v!r} is not one of {sorted(index)}")
        self.bits(i, k)

    def sint(self, v: int) -> None:
        if v < 0:
            self.bits(1, 1)
            self.uint(-v - 1)
        else:
            self.bits(0, 1)
            self.uint(v)

    def binary(self, b: bytes) -> None:
        n = len(b)
        self.uint(n)
        if n:
            self.bits(int.from_bytes(b, "big"), 8 * n)

    def string(self, s: str) -> None:
        n = len(s)
        self.uint(n + 2)
        if n == 0:
            return
        if s.isascii():
            self.bits(int.from_bytes(s.encode("ascii"), "big"), 8 * n)
        else:
            for ch in s:
                self.uint(ord(ch))

    def getvalue(self) -> bytes:
        self._flush()
        if self.n:
            return bytes(self.out) + bytes([(self.acc << (8 - self.n)) & 0xFF])
        return bytes(self.out)


def _with(obj, selected):
    """Set the alternative a generated decoder picked from a big choice (see emit.py)."""
    if selected is not None:
        setattr(obj, selected[0], selected[1])
    return obj


class _NoList:
    """Default of a repeated field in a generated ``__init__``: a fresh list per object
    (what ``field(default_factory=list)`` does), while an explicit ``None`` stays ``None``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no list given>"


_NO_LIST = _NoList()
