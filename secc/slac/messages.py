"""HomePlug AV / Green PHY management messages (MMEs) used by ISO 15118-3 SLAC.

Layouts follow ISO 15118-3 Annex A and the HomePlug AV 1.1 specification (field order and
sizes cross-checked against open-plc-utils, the Wireshark HomePlug AV dissector and real-car
captures). Every MME is carried in one Ethernet frame (EtherType 0x88E1)::

    dst(6) src(6) ethertype(2) | MMV(1) MMTYPE(2, little endian) [FMI(2) if MMV >= 1]
                               | [OUI(3) for vendor-specific MMTYPEs 0xA000-0xBFFF] | body

Multi-byte integers inside HomePlug bodies are little endian. Frames shorter than the
Ethernet minimum are padded with zeros when built, and trailing padding is ignored when
parsed. Anything that cannot be parsed raises :class:`MmeError` (and nothing else), so the
state machine can drop bad frames with one ``except``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from construct import Array, Bytes, Container, GreedyBytes, Int8ub, Int16ul, Int32ul, Struct, this

ETH_P_HOMEPLUG = 0x88E1
ETH_P_8021Q = 0x8100
ETH_HEADER_LEN = 14
ETH_MIN_FRAME = 60  # without FCS
BROADCAST_MAC = b"\xff" * 6
QUALCOMM_OUI = b"\x00\xb0\x52"
# Qualcomm modems answer management messages sent to this "local" address (open-plc-utils).
QUALCOMM_LOCAL_MAC = b"\x00\xb0\x52\x00\x00\x01"

MMV_AV_1_0 = 0x00
MMV_AV_1_1 = 0x01

# MMTYPE = base | mode; mode is the two least significant bits.
MODE_REQ, MODE_CNF, MODE_IND, MODE_RSP = 0, 1, 2, 3

CM_SET_KEY_REQ = 0x6008
CM_SET_KEY_CNF = 0x6009
CM_SLAC_PARM_REQ = 0x6064
CM_SLAC_PARM_CNF = 0x6065
CM_START_ATTEN_CHAR_IND = 0x606A
CM_ATTEN_CHAR_IND = 0x606E
CM_ATTEN_CHAR_RSP = 0x606F
CM_MNBC_SOUND_IND = 0x6076
CM_VALIDATE_REQ = 0x6078
CM_VALIDATE_CNF = 0x6079
CM_SLAC_MATCH_REQ = 0x607C
CM_SLAC_MATCH_CNF = 0x607D
CM_ATTEN_PROFILE_IND = 0x6086
VS_SW_VER_REQ = 0xA000
VS_SW_VER_CNF = 0xA001
VS_RS_DEV_REQ = 0xA01C
VS_RS_DEV_CNF = 0xA01D
VS_NW_INFO_REQ = 0xA038
VS_NW_INFO_CNF = 0xA039

VENDOR_MMTYPE_FIRST = 0xA000
VENDOR_MMTYPE_LAST = 0xBFFF

# Constant field values from ISO 15118-3 Annex A
APPLICATION_TYPE_PEV_EVSE = 0x00
SECURITY_TYPE_NONE = 0x00
RESP_TYPE_OTHER_GP_STATION = 0x01
KEY_TYPE_NMK = 0x01
PID_HLE = 0x04
NEW_EKS_NMK = 0x01
MATCH_REQ_MVF_LENGTH = 0x3E
MATCH_CNF_MVF_LENGTH = 0x56
ATTEN_CHAR_RSP_SUCCESS = 0x00
NUM_GROUPS = 58  # attenuation groups of HomePlug Green PHY

# CM_VALIDATE.CNF result codes
VALIDATE_NOT_READY = 0
VALIDATE_READY = 1
VALIDATE_SUCCESS = 2
VALIDATE_FAILURE = 3
VALIDATE_NOT_REQUIRED = 4

# VS_SW_VER.CNF device class -> chip (open-plc-utils chipset table)
DEVICE_CLASSES = {
    0x01: "INT6000", 0x02: "INT6300", 0x03: "INT6400", 0x04: "AR7400", 0x05: "AR6405",
    0x06: "PANTHER/LYNX", 0x07: "QCA7450", 0x08: "QCA7451", 0x09: "QCA7452",
    0x20: "QCA7420", 0x21: "QCA6410", 0x22: "QCA7000/QCA7005", 0x30: "QCA7500",
}
# Chips that forward CM_ATTEN_PROFILE.IND to the host and so can act as EVSE-side modem.
EVSE_CAPABLE_DEVICE_CLASSES = frozenset({0x22})

MAC = Bytes(6)
RUN_ID = Bytes(8)
STATION_ID = Bytes(17)

_SET_KEY_REQ = Struct(
    "key_type" / Int8ub, "my_nonce" / Int32ul, "your_nonce" / Int32ul, "pid" / Int8ub,
    "prn" / Int16ul, "pmn" / Int8ub, "cco_capability" / Int8ub, "nid" / Bytes(7),
    "new_eks" / Int8ub, "new_key" / Bytes(16),
)
_SET_KEY_CNF = Struct(
    "result" / Int8ub, "my_nonce" / Int32ul, "your_nonce" / Int32ul, "pid" / Int8ub,
    "prn" / Int16ul, "pmn" / Int8ub, "cco_capability" / Int8ub,
)
_SLAC_PARM_REQ = Struct("application_type" / Int8ub, "security_type" / Int8ub, "run_id" / RUN_ID)
_SLAC_PARM_CNF = Struct(
    "msound_target" / MAC, "num_sounds" / Int8ub, "time_out" / Int8ub, "resp_type" / Int8ub,
    "forwarding_sta" / MAC, "application_type" / Int8ub, "security_type" / Int8ub,
    "run_id" / RUN_ID,
)
_START_ATTEN_CHAR_IND = Struct(
    "application_type" / Int8ub, "security_type" / Int8ub, "num_sounds" / Int8ub,
    "time_out" / Int8ub, "resp_type" / Int8ub, "forwarding_sta" / MAC, "run_id" / RUN_ID,
)
_MNBC_SOUND_IND = Struct(
    "application_type" / Int8ub, "security_type" / Int8ub, "sender_id" / STATION_ID,
    "count" / Int8ub, "run_id" / RUN_ID, "reserved" / Bytes(8), "random" / Bytes(16),
)
_ATTEN_PROFILE_IND = Struct(
    "pev_mac" / MAC, "num_groups" / Int8ub, "reserved" / Int8ub,
    "aag" / Array(this.num_groups, Int8ub),
)
_ATTEN_CHAR_IND = Struct(
    "application_type" / Int8ub, "security_type" / Int8ub, "source_address" / MAC,
    "run_id" / RUN_ID, "source_id" / STATION_ID, "resp_id" / STATION_ID,
    "num_sounds" / Int8ub, "num_groups" / Int8ub, "aag" / Array(this.num_groups, Int8ub),
)
_ATTEN_CHAR_RSP = Struct(
    "application_type" / Int8ub, "security_type" / Int8ub, "source_address" / MAC,
    "run_id" / RUN_ID, "source_id" / STATION_ID, "resp_id" / STATION_ID, "result" / Int8ub,
)
_VALIDATE_REQ = Struct("signal_type" / Int8ub, "timer" / Int8ub, "result" / Int8ub)
_VALIDATE_CNF = Struct("signal_type" / Int8ub, "toggle_num" / Int8ub, "result" / Int8ub)
_MATCH_VAR_FIELD = (
    "pev_id" / STATION_ID, "pev_mac" / MAC, "evse_id" / STATION_ID, "evse_mac" / MAC,
    "run_id" / RUN_ID, "reserved" / Bytes(8),
)
_SLAC_MATCH_REQ = Struct(
    "application_type" / Int8ub, "security_type" / Int8ub, "mvf_length" / Int16ul,
    *_MATCH_VAR_FIELD,
)
_SLAC_MATCH_CNF = Struct(
    "application_type" / Int8ub, "security_type" / Int8ub, "mvf_length" / Int16ul,
    *_MATCH_VAR_FIELD, "nid" / Bytes(7), "reserved2" / Int8ub, "nmk" / Bytes(16),
)
_EMPTY = Struct()
_VS_SW_VER_CNF = Struct(
    "status" / Int8ub, "device_class" / Int8ub, "version_length" / Int8ub,
    "version" / Bytes(this.version_length), "extra" / GreedyBytes,
)
_VS_RS_DEV_CNF = Struct("status" / Int8ub)
_NW_STATION = Struct(
    "mac" / MAC, "tei" / Int8ub, "bridge_mac" / MAC, "avg_tx_rate" / Int8ub,
    "avg_rx_rate" / Int8ub,
)
_NW_NETWORK = Struct(
    "nid" / Bytes(7), "snid" / Int8ub, "tei" / Int8ub, "role" / Int8ub, "cco_mac" / MAC,
    "cco_tei" / Int8ub, "num_stations" / Int8ub,
    "stations" / Array(this.num_stations, _NW_STATION),
)
_VS_NW_INFO_CNF = Struct("num_networks" / Int8ub,
                         "networks" / Array(this.num_networks, _NW_NETWORK))

# MMTYPE -> (name, body layout). The one table that says what this module understands.
BODIES: dict[int, tuple[str, Struct]] = {
    CM_SET_KEY_REQ: ("CM_SET_KEY.REQ", _SET_KEY_REQ),
    CM_SET_KEY_CNF: ("CM_SET_KEY.CNF", _SET_KEY_CNF),
    CM_SLAC_PARM_REQ: ("CM_SLAC_PARM.REQ", _SLAC_PARM_REQ),
    CM_SLAC_PARM_CNF: ("CM_SLAC_PARM.CNF", _SLAC_PARM_CNF),
    CM_START_ATTEN_CHAR_IND: ("CM_START_ATTEN_CHAR.IND", _START_ATTEN_CHAR_IND),
    CM_MNBC_SOUND_IND: ("CM_MNBC_SOUND.IND", _MNBC_SOUND_IND),
    CM_ATTEN_PROFILE_IND: ("CM_ATTEN_PROFILE.IND", _ATTEN_PROFILE_IND),
    CM_ATTEN_CHAR_IND: ("CM_ATTEN_CHAR.IND", _ATTEN_CHAR_IND),
    CM_ATTEN_CHAR_RSP: ("CM_ATTEN_CHAR.RSP", _ATTEN_CHAR_RSP),
    CM_VALIDATE_REQ: ("CM_VALIDATE.REQ", _VALIDATE_REQ),
    CM_VALIDATE_CNF: ("CM_VALIDATE.CNF", _VALIDATE_CNF),
    CM_SLAC_MATCH_REQ: ("CM_SLAC_MATCH.REQ", _SLAC_MATCH_REQ),
    CM_SLAC_MATCH_CNF: ("CM_SLAC_MATCH.CNF", _SLAC_MATCH_CNF),
    VS_SW_VER_REQ: ("VS_SW_VER.REQ", _EMPTY),
    VS_SW_VER_CNF: ("VS_SW_VER.CNF", _VS_SW_VER_CNF),
    VS_RS_DEV_REQ: ("VS_RS_DEV.REQ", _EMPTY),
    VS_RS_DEV_CNF: ("VS_RS_DEV.CNF", _VS_RS_DEV_CNF),
    VS_NW_INFO_REQ: ("VS_NW_INFO.REQ", _EMPTY),
    VS_NW_INFO_CNF: ("VS_NW_INFO.CNF", _VS_NW_INFO_CNF),
}

# Sanity rules a well-formed body must satisfy beyond its layout: (field, allowed values).
_CONSTRAINTS: dict[int, tuple[tuple[str, tuple[int, ...]], ...]] = {
    CM_SLAC_MATCH_REQ: (("mvf_length", (MATCH_REQ_MVF_LENGTH,)),),
    CM_SLAC_MATCH_CNF: (("mvf_length", (MATCH_CNF_MVF_LENGTH,)),),
}


# Vendor MMEs whose body we only know in the MMV 0 (HomePlug AV 1.0 framing) variant.
_LEGACY_LAYOUT_ONLY = frozenset({VS_NW_INFO_CNF})


class MmeError(ValueError):
    """A frame is not a well-formed MME this stack understands (the reason says why)."""


class UnknownMmeType(MmeError):
    """Well-formed HomePlug header, but an MMTYPE we have no layout for (often harmless)."""

    def __init__(self, mmtype: int) -> None:
        super().__init__(f"unknown MMTYPE 0x{mmtype:04X}")
        self.mmtype = mmtype


def is_vendor_mmtype(mmtype: int) -> bool:
    return VENDOR_MMTYPE_FIRST <= mmtype <= VENDOR_MMTYPE_LAST


def mmtype_name(mmtype: int) -> str:
    entry = BODIES.get(mmtype)
    return entry[0] if entry else f"MMTYPE_0x{mmtype:04X}"


def default_mmv(mmtype: int) -> int:
    """Standard SLAC MMEs are HomePlug AV 1.1 (MMV 1); Qualcomm VS MMEs use MMV 0."""
    return MMV_AV_1_0 if is_vendor_mmtype(mmtype) else MMV_AV_1_1


@dataclass
class Mme:
    """One parsed (or to-be-built) management message."""

    mmtype: int
    dst: bytes
    src: bytes
    body: Container = field(default_factory=Container)
    mmv: int | None = None  # None: the standard one for this MMTYPE
    fmi: int = 0  # fragment info (FMI byte << 8 | FMSN); SLAC MMEs are never fragmented

    @property
    def name(self) -> str:
        return mmtype_name(self.mmtype)

    def __getattr__(self, item: str) -> Any:
        # ``mme.run_id`` reads the body field; keeps the state machine terse.
        body = self.__dict__.get("body")
        if body is not None and item in body:
            return body[item]
        raise AttributeError(item)


def encode(mme: Mme) -> bytes:
    """Ethernet frame bytes for ``mme`` (padded to the Ethernet minimum)."""
    entry = BODIES.get(mme.mmtype)
    if entry is None:
        raise MmeError(f"cannot build unknown MMTYPE 0x{mme.mmtype:04X}")
    mmv = default_mmv(mme.mmtype) if mme.mmv is None else mme.mmv
    header = mme.dst + mme.src + struct.pack("!HB", ETH_P_HOMEPLUG, mmv)
    header += struct.pack("<H", mme.mmtype)
    if mmv >= MMV_AV_1_1:
        header += struct.pack("!H", mme.fmi)
    if is_vendor_mmtype(mme.mmtype):
        header += QUALCOMM_OUI
    try:
        body = entry[1].build(mme.body)
    except Exception as exc:  # construct raises many types; the caller gets one
        raise MmeError(f"cannot build {entry[0]}: {exc}") from exc
    frame = header + body
    return frame.ljust(ETH_MIN_FRAME, b"\x00")


def decode(frame: bytes) -> Mme:
    """Parse one Ethernet frame; raises :class:`MmeError` for anything malformed."""
    if len(frame) < ETH_HEADER_LEN + 3:
        raise MmeError(f"frame too short ({len(frame)} bytes)")
    dst, src = bytes(frame[0:6]), bytes(frame[6:12])
    offset = 12
    (ethertype,) = struct.unpack_from("!H", frame, offset)
    offset += 2
    if ethertype == ETH_P_8021Q:  # tolerate one VLAN tag
        if len(frame) < offset + 4 + 3:
            raise MmeError("VLAN-tagged frame too short")
        (ethertype,) = struct.unpack_from("!H", frame, offset + 2)
        offset += 4
    if ethertype != ETH_P_HOMEPLUG:
        raise MmeError(f"EtherType 0x{ethertype:04X} is not HomePlug AV (0x88E1)")
    mmv = frame[offset]
    (mmtype,) = struct.unpack_from("<H", frame, offset + 1)
    offset += 3
    if mmv > 2:
        raise MmeError(f"unsupported MMV {mmv}")
    fmi = 0
    if mmv >= MMV_AV_1_1:
        if len(frame) < offset + 2:
            raise MmeError("frame too short for FMI")
        (fmi,) = struct.unpack_from("!H", frame, offset)
        offset += 2
        if fmi & 0xF000:  # NF_MI != 0: more than one fragment
            raise MmeError(f"fragmented MME (FMI 0x{fmi:04X}) is not supported")
    if is_vendor_mmtype(mmtype):
        oui = bytes(frame[offset:offset + 3])
        if oui != QUALCOMM_OUI:
            raise MmeError(f"vendor MME with foreign OUI {oui.hex(':')}")
        offset += 3
    entry = BODIES.get(mmtype)
    if entry is None:
        raise UnknownMmeType(mmtype)
    name, layout = entry
    if mmtype in _LEGACY_LAYOUT_ONLY and mmv != MMV_AV_1_0:
        # the MMV 1 variant (answer to an MMV 1 request) has another body; we only ask MMV 0
        raise MmeError(f"{name} with MMV {mmv} has a layout this stack does not parse")
    try:
        body = layout.parse(bytes(frame[offset:]))
    except Exception as exc:  # StreamError, UnicodeError, ... -> one typed error
        raise MmeError(f"malformed {name}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    for field_name, allowed in _CONSTRAINTS.get(mmtype, ()):
        if body[field_name] not in allowed:
            raise MmeError(f"malformed {name}: {field_name}={body[field_name]!r}")
    body.pop("_io", None)
    return Mme(mmtype=mmtype, dst=dst, src=src, body=body, mmv=mmv, fmi=fmi)


# --- key material -------------------------------------------------------------------------
SECURITY_LEVEL_SIMPLE_CONNECT = 0
SECURITY_LEVEL_SECURE = 1


def nid_from_nmk(nmk: bytes, security_level: int = SECURITY_LEVEL_SIMPLE_CONNECT) -> bytes:
    """The 7-byte Network ID the HomePlug AV rule derives from an NMK.

    PBKDF1 with SHA-256, no salt, 5 iterations; the leftmost 52 bits of the digest, then the
    2-bit security level in bits 4-5 of the last octet (0 = simple connect, as SLAC uses).
    """
    if len(nmk) != 16:
        raise ValueError("NMK must be 16 bytes")
    if security_level not in (0, 1, 2, 3):
        raise ValueError("security level is a 2-bit value")
    digest = hashlib.sha256(nmk).digest()
    for _ in range(4):
        digest = hashlib.sha256(digest).digest()
    return digest[:6] + bytes([(security_level << 4) | (digest[6] >> 4)])


def mac_str(mac: bytes) -> str:
    return mac.hex(":")


def station_id(text: str = "") -> bytes:
    """A 17-byte station ID field (ISO 15118-3 sets them to zero; any text is padded)."""
    return text.encode()[:17].ljust(17, b"\x00")


# --- builders for the messages the stack and the simulators send ----------------------------
def set_key_req(dst: bytes, src: bytes, nmk: bytes, nid: bytes, my_nonce: int = 0) -> Mme:
    return Mme(CM_SET_KEY_REQ, dst, src, Container(
        key_type=KEY_TYPE_NMK, my_nonce=my_nonce, your_nonce=0, pid=PID_HLE, prn=0, pmn=0,
        cco_capability=0, nid=nid, new_eks=NEW_EKS_NMK, new_key=nmk))


def set_key_cnf(dst: bytes, src: bytes, result: int, my_nonce: int = 0,
                your_nonce: int = 0) -> Mme:
    return Mme(CM_SET_KEY_CNF, dst, src, Container(
        result=result, my_nonce=my_nonce, your_nonce=your_nonce, pid=PID_HLE, prn=0, pmn=0,
        cco_capability=0))


def slac_parm_req(dst: bytes, src: bytes, run_id: bytes) -> Mme:
    return Mme(CM_SLAC_PARM_REQ, dst, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        run_id=run_id))


def slac_parm_cnf(dst: bytes, src: bytes, ev_mac: bytes, run_id: bytes, num_sounds: int,
                  time_out_100ms: int) -> Mme:
    return Mme(CM_SLAC_PARM_CNF, dst, src, Container(
        msound_target=BROADCAST_MAC, num_sounds=num_sounds, time_out=time_out_100ms,
        resp_type=RESP_TYPE_OTHER_GP_STATION, forwarding_sta=ev_mac,
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        run_id=run_id))


def start_atten_char_ind(src: bytes, run_id: bytes, num_sounds: int,
                         time_out_100ms: int) -> Mme:
    return Mme(CM_START_ATTEN_CHAR_IND, BROADCAST_MAC, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        num_sounds=num_sounds, time_out=time_out_100ms, resp_type=RESP_TYPE_OTHER_GP_STATION,
        forwarding_sta=src, run_id=run_id))


def mnbc_sound_ind(src: bytes, run_id: bytes, count: int, random: bytes = bytes(16)) -> Mme:
    return Mme(CM_MNBC_SOUND_IND, BROADCAST_MAC, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        sender_id=station_id(), count=count, run_id=run_id, reserved=bytes(8), random=random))


def atten_profile_ind(dst: bytes, src: bytes, pev_mac: bytes, aag: list[int]) -> Mme:
    return Mme(CM_ATTEN_PROFILE_IND, dst, src, Container(
        pev_mac=pev_mac, num_groups=len(aag), reserved=0, aag=list(aag)))


def atten_char_ind(dst: bytes, src: bytes, ev_mac: bytes, run_id: bytes, num_sounds: int,
                   aag: list[int]) -> Mme:
    return Mme(CM_ATTEN_CHAR_IND, dst, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        source_address=ev_mac, run_id=run_id, source_id=station_id(), resp_id=station_id(),
        num_sounds=num_sounds, num_groups=len(aag), aag=list(aag)))


def atten_char_rsp(dst: bytes, src: bytes, run_id: bytes,
                   result: int = ATTEN_CHAR_RSP_SUCCESS) -> Mme:
    return Mme(CM_ATTEN_CHAR_RSP, dst, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        source_address=src, run_id=run_id, source_id=station_id(), resp_id=station_id(),
        result=result))


def validate_req(dst: bytes, src: bytes, timer: int = 0, result: int = VALIDATE_READY) -> Mme:
    return Mme(CM_VALIDATE_REQ, dst, src, Container(signal_type=0, timer=timer, result=result))


def validate_cnf(dst: bytes, src: bytes, result: int, toggle_num: int = 0) -> Mme:
    return Mme(CM_VALIDATE_CNF, dst, src, Container(
        signal_type=0, toggle_num=toggle_num, result=result))


def slac_match_req(dst: bytes, src: bytes, run_id: bytes, evse_mac: bytes) -> Mme:
    return Mme(CM_SLAC_MATCH_REQ, dst, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        mvf_length=MATCH_REQ_MVF_LENGTH, pev_id=station_id(), pev_mac=src,
        evse_id=station_id(), evse_mac=evse_mac, run_id=run_id, reserved=bytes(8)))


def slac_match_cnf(dst: bytes, src: bytes, run_id: bytes, ev_mac: bytes, nid: bytes,
                   nmk: bytes) -> Mme:
    return Mme(CM_SLAC_MATCH_CNF, dst, src, Container(
        application_type=APPLICATION_TYPE_PEV_EVSE, security_type=SECURITY_TYPE_NONE,
        mvf_length=MATCH_CNF_MVF_LENGTH, pev_id=station_id(), pev_mac=ev_mac,
        evse_id=station_id(), evse_mac=src, run_id=run_id, reserved=bytes(8), nid=nid,
        reserved2=0, nmk=nmk))


def vs_request(mmtype: int, dst: bytes, src: bytes) -> Mme:
    """VS_SW_VER.REQ, VS_RS_DEV.REQ or VS_NW_INFO.REQ (bodies are empty after the OUI)."""
    if mmtype not in (VS_SW_VER_REQ, VS_RS_DEV_REQ, VS_NW_INFO_REQ):
        raise ValueError(f"{mmtype_name(mmtype)} is not a vendor request")
    return Mme(mmtype, dst, src, Container())


def vs_sw_ver_cnf(dst: bytes, src: bytes, version: str, device_class: int = 0x22,
                  status: int = 0) -> Mme:
    raw = version.encode()[:127] + b"\x00"
    return Mme(VS_SW_VER_CNF, dst, src, Container(
        status=status, device_class=device_class, version_length=len(raw), version=raw,
        extra=b""))


def vs_rs_dev_cnf(dst: bytes, src: bytes, status: int = 0) -> Mme:
    return Mme(VS_RS_DEV_CNF, dst, src, Container(status=status))


def vs_nw_info_cnf(dst: bytes, src: bytes, networks: list[dict[str, Any]]) -> Mme:
    """``networks``: dicts with nid, snid, tei, role, cco_mac, cco_tei, stations (list of
    dicts with mac, tei, bridge_mac, avg_tx_rate, avg_rx_rate)."""
    built = []
    for net in networks:
        stations = [Container(**sta) for sta in net.get("stations", [])]
        built.append(Container(
            nid=net["nid"], snid=net.get("snid", 0), tei=net.get("tei", 1),
            role=net.get("role", 2), cco_mac=net.get("cco_mac", src),
            cco_tei=net.get("cco_tei", 1), num_stations=len(stations), stations=stations))
    return Mme(VS_NW_INFO_CNF, dst, src, Container(num_networks=len(built), networks=built))


def sw_version_text(body: Container) -> str:
    """The firmware version string of a VS_SW_VER.CNF body (NUL-terminated in the frame)."""
    return bytes(body.version).split(b"\x00", 1)[0].decode("ascii", "replace")
