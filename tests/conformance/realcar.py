"""DIN sessions out of the real-car captures (../shared/realcar/pcaps).

Each IPv6 TCP connection of a capture is reassembled per direction (by TCP sequence number,
retransmissions dropped), split on V2GTP headers and decoded. A connection whose
SupportedAppProtocol exchange chose DIN 70121 is one session: the car's requests in order,
each with the original charger's response (element name and response code).
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exi_schemas

DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"


@dataclass
class Exchange:
    request: str
    request_exi: bytes
    response: str | None          # None: the charger never answered (capture ends)
    response_code: str | None
    response_body: Any = None


@dataclass
class Session:
    capture: str
    index: int
    sap_request: bytes
    charger_session_id: bytes = b""
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.capture}#{self.index}"


def _streams(path: Path) -> dict[tuple, dict[str, Any]]:
    """TCP payloads per connection and direction, from the raw frames (Ethernet, IPv6
    without extension headers, TCP: what these captures hold)."""
    from scapy.utils import RawPcapReader

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    connections: dict[tuple, dict[str, Any]] = {}
    with RawPcapReader(str(path)) as reader:
        for raw, _meta in reader:
            if len(raw) < 74 or raw[12:14] != b"\x86\xdd" or raw[20] != 6:
                continue
            ip = raw[14:54]
            src, dst = ip[8:24].hex(), ip[24:40].hex()
            tcp = raw[54:]
            sport, dport, seq = struct.unpack(">HHI", tcp[:8])
            offset = (tcp[12] >> 4) * 4
            flags = tcp[13]
            end = 54 + struct.unpack(">H", ip[4:6])[0]      # IPv6 payload length
            payload = raw[54 + offset:end]
            a, b = (src, sport), (dst, dport)
            key = tuple(sorted((a, b)))
            conn = connections.setdefault(key, {"client": None, "segments": {}})
            if flags & 0x02 and not flags & 0x10:      # SYN: a is the client
                conn["client"] = a
            if payload:
                conn["segments"].setdefault(a, {}).setdefault(seq, payload)
    return connections


def _frames(segments: dict[int, bytes]) -> list[tuple[int, bytes]]:
    """Reassemble one direction (contiguous from the lowest sequence number) and split."""
    data = b""
    next_seq = None
    for seq in sorted(segments):
        chunk = segments[seq]
        if next_seq is not None and seq < next_seq:
            overlap = next_seq - seq
            if overlap >= len(chunk):
                continue
            chunk = chunk[overlap:]
            seq = next_seq
        data += chunk
        next_seq = seq + len(chunk)
    frames = []
    while len(data) >= 8:
        version, inverse, ptype, length = struct.unpack(">BBHI", data[:8])
        if version != 1 or inverse != 0xFE or len(data) < 8 + length:
            break
        frames.append((ptype, data[8:8 + length]))
        data = data[8 + length:]
    return frames


def din_sessions(path: Path) -> list[Session]:
    sessions = []
    for index, (key, conn) in enumerate(sorted(_streams(path).items())):
        client = conn["client"]
        sides = list(conn["segments"])
        if client is None:       # no SYN captured: the side whose first frame is SAP req
            client = next((s for s in sides if _frames(conn["segments"][s])
                           and _frames(conn["segments"][s])[0][1][:1] == b"\x80"), None)
        if client is None or client not in conn["segments"]:
            continue
        server = next((s for s in sides if s != client), None)
        requests = _frames(conn["segments"][client])
        responses = _frames(conn["segments"][server]) if server else []
        if not requests:
            continue
        try:
            sap = exi_schemas.decode(requests[0][1], "appprotocol")
            sap_res = exi_schemas.decode(responses[0][1], "appprotocol") if responses else None
        except Exception:
            continue
        chosen = None
        if sap_res is not None and sap_res.schema_id is not None:
            chosen = next((e.protocol_namespace for e in sap.app_protocol
                           if e.schema_id == sap_res.schema_id), None)
        if chosen != DIN_NAMESPACE:
            continue
        session = Session(path.name, index, requests[0][1])
        if len(responses) > 1:
            try:
                session.charger_session_id = exi_schemas.decode(
                    responses[1][1], "din").header.session_id
            except Exception:
                pass
        for i, (_, exi) in enumerate(requests[1:], start=1):
            try:
                element, _ = exi_schemas.body_element(exi_schemas.decode(exi, "din"))
            except Exception:
                continue
            response = code = body = None
            if i < len(responses):
                try:
                    response, body = exi_schemas.body_element(
                        exi_schemas.decode(responses[i][1], "din"))
                    code = str(body.response_code)
                except Exception:
                    pass
            session.exchanges.append(Exchange(element, exi, response, code, body))
        sessions.append(session)
    return sessions


def all_din_sessions(pcap_dir: Path) -> list[Session]:
    found = []
    for path in sorted(pcap_dir.glob("*.pcap*")):
        found += [s for s in din_sessions(path) if s.exchanges]
    return found
