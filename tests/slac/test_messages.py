"""HomePlug AV MME codec: layouts, round trips, key derivation, malformed input."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secc.slac import messages as m

A = bytes.fromhex("020000000001")
B = bytes.fromhex("020000000002")
RUN = bytes.fromhex("0102030405060708")
NMK = bytes(range(16))
NID = m.nid_from_nmk(NMK)


def every_message() -> list[m.Mme]:
    nets = [dict(nid=NID, stations=[dict(mac=B, tei=2, bridge_mac=B, avg_tx_rate=5,
                                         avg_rx_rate=6)])]
    return [
        m.set_key_req(m.QUALCOMM_LOCAL_MAC, A, NMK, NID, 0xAAAAAAAA),
        m.set_key_cnf(A, B, 0x01, 1, 2),
        m.slac_parm_req(m.BROADCAST_MAC, A, RUN),
        m.slac_parm_cnf(A, B, A, RUN, 10, 6),
        m.start_atten_char_ind(A, RUN, 10, 6),
        m.mnbc_sound_ind(A, RUN, 9, os.urandom(16)),
        m.atten_profile_ind(A, B, A, list(range(58))),
        m.atten_char_ind(A, B, A, RUN, 10, [30] * 58),
        m.atten_char_rsp(B, A, RUN),
        m.validate_req(B, A),
        m.validate_cnf(A, B, m.VALIDATE_NOT_REQUIRED),
        m.slac_match_req(B, A, RUN, B),
        m.slac_match_cnf(A, B, RUN, A, NID, NMK),
        m.vs_request(m.VS_SW_VER_REQ, m.QUALCOMM_LOCAL_MAC, A),
        m.vs_sw_ver_cnf(A, B, "MAC-QCA7000-1.2.5"),
        m.vs_request(m.VS_RS_DEV_REQ, m.QUALCOMM_LOCAL_MAC, A),
        m.vs_rs_dev_cnf(A, B),
        m.vs_request(m.VS_NW_INFO_REQ, m.QUALCOMM_LOCAL_MAC, A),
        m.vs_nw_info_cnf(A, B, nets),
    ]


@pytest.mark.parametrize("mme", every_message(), ids=lambda mme: mme.name)
def test_every_message_round_trips(mme):
    frame = m.encode(mme)
    assert len(frame) >= m.ETH_MIN_FRAME
    parsed = m.decode(frame)
    assert parsed.mmtype == mme.mmtype and parsed.dst == mme.dst and parsed.src == mme.src
    assert m.encode(parsed) == frame


def test_header_layout_matches_iso15118_3_for_slac_parm_req():
    frame = m.encode(m.slac_parm_req(m.BROADCAST_MAC, A, RUN))
    assert frame[12:14] == b"\x88\xe1"
    assert frame[14] == 0x01                       # MMV 1.1
    assert frame[15:17] == b"\x64\x60"            # MMTYPE 0x6064, little endian
    assert frame[17:19] == b"\x00\x00"            # FMI
    assert frame[19:21] == b"\x00\x00"            # application type, security type
    assert frame[21:29] == RUN


def test_vendor_messages_use_mmv0_and_the_qualcomm_oui():
    frame = m.encode(m.vs_request(m.VS_SW_VER_REQ, m.QUALCOMM_LOCAL_MAC, A))
    assert frame[14] == 0x00 and frame[15:17] == b"\x00\xa0" and frame[17:20] == m.QUALCOMM_OUI


def test_match_messages_have_the_standard_mvf_lengths_and_sizes():
    req = m.encode(m.slac_match_req(B, A, RUN, B))
    cnf = m.encode(m.slac_match_cnf(A, B, RUN, A, NID, NMK))
    assert struct.unpack_from("<H", req, 21)[0] == 0x3E
    assert struct.unpack_from("<H", cnf, 21)[0] == 0x56
    assert len(cnf) == 19 + 4 + 0x56


def test_atten_char_ind_carries_58_groups_after_num_sounds():
    frame = m.encode(m.atten_char_ind(A, B, A, RUN, 10, list(range(58))))
    body = frame[19:]
    assert body[2:8] == A and body[8:16] == RUN
    assert body[50] == 10 and body[51] == 58 and list(body[52:110]) == list(range(58))


def test_nid_is_derived_from_nmk_with_security_level_bits():
    nid = m.nid_from_nmk(NMK)
    assert len(nid) == 7 and nid[6] >> 4 == 0
    assert m.nid_from_nmk(NMK, m.SECURITY_LEVEL_SECURE)[6] >> 4 == 1
    assert m.nid_from_nmk(NMK)[:6] == nid[:6]
    assert m.nid_from_nmk(bytes(16)) != nid
    with pytest.raises(ValueError):
        m.nid_from_nmk(b"short")


def test_sw_version_text_stops_at_nul():
    cnf = m.decode(m.encode(m.vs_sw_ver_cnf(A, B, "MAC-QCA7000-1.2.5")))
    assert m.sw_version_text(cnf.body) == "MAC-QCA7000-1.2.5"
    assert cnf.device_class == 0x22


def test_nw_info_lists_networks_and_stations():
    cnf = m.decode(m.encode(every_message()[-1]))
    assert cnf.num_networks == 1 and bytes(cnf.networks[0].nid) == NID
    assert cnf.networks[0].stations[0].mac == B


def test_vlan_tagged_frame_is_understood():
    frame = m.encode(m.slac_parm_req(m.BROADCAST_MAC, A, RUN))
    tagged = frame[:12] + b"\x81\x00\x00\x05" + frame[12:]
    assert m.decode(tagged).run_id == RUN


@pytest.mark.parametrize("frame, reason", [
    (b"", "too short"),
    (bytes(13), "too short"),
    (A + B + b"\x86\xdd" + bytes(50), "EtherType"),
    (A + B + b"\x88\xe1\x07\x64\x60" + bytes(50), "MMV"),
    (A + B + b"\x88\xe1\x01\x64\x60\x10\x00" + bytes(50), "fragmented"),
    (A + B + b"\x88\xe1\x00\x00\xa0\x00\x00\x00", "OUI"),
    (A + B + b"\x88\xe1\x01\x7c\x60\x00\x00" + bytes(3), "CM_SLAC_MATCH.REQ"),
])
def test_malformed_frames_raise_mme_error(frame, reason):
    with pytest.raises(m.MmeError, match=reason):
        m.decode(frame)


def test_nw_info_cnf_in_the_mmv1_layout_is_refused_not_misread():
    frame = bytearray(m.encode(every_message()[-1]))
    frame[14] = 0x01
    frame[17:17] = b"\x00\x00"  # FMI
    with pytest.raises(m.MmeError, match="MMV 1"):
        m.decode(bytes(frame))


def test_unknown_mmtype_is_its_own_error_type():
    with pytest.raises(m.UnknownMmeType) as info:
        m.decode(A + B + b"\x88\xe1\x01\x0c\x60\x00\x00" + bytes(50))
    assert info.value.mmtype == 0x600C


def test_match_req_with_wrong_mvf_length_is_rejected():
    frame = bytearray(m.encode(m.slac_match_req(B, A, RUN, B)))
    frame[21] = 0x10
    with pytest.raises(m.MmeError, match="mvf_length"):
        m.decode(bytes(frame))


@pytest.mark.parametrize("mme", every_message(), ids=lambda mme: mme.name)
def test_every_truncation_of_a_body_raises_mme_error(mme):
    frame = m.encode(mme).rstrip(b"\x00")
    empty_body = mme.mmtype in (m.VS_SW_VER_REQ, m.VS_RS_DEV_REQ, m.VS_NW_INFO_REQ)
    for cut in range(len(frame)):
        try:
            m.decode(frame[:cut])
        except m.MmeError:
            continue
        # a prefix may still parse only when the missing part was padding-like zeros
        assert empty_body or cut >= 19, f"prefix of {cut} bytes parsed"


def test_building_with_missing_fields_raises_mme_error():
    with pytest.raises(m.MmeError):
        m.encode(m.Mme(m.CM_SLAC_PARM_REQ, A, B))
    with pytest.raises(m.MmeError):
        m.encode(m.Mme(0x600C, A, B))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_ever_raise_mme_error(data):
    try:
        m.decode(data)
    except m.MmeError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(every_message()), st.data())
def test_fuzz_mutated_valid_frames_only_ever_raise_mme_error(mme, data):
    frame = bytearray(m.encode(mme))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(frame) - 1))
        frame[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(frame)))
    try:
        m.decode(bytes(frame[:cut]))
    except m.MmeError:
        pass


def _homeplug_frames_of_real_cars(shared_dir):
    from scapy.utils import PcapReader

    pcaps = sorted((shared_dir / "realcar" / "pcaps").glob("*.pcap*"))
    if not pcaps:
        pytest.skip("no real-car captures")
    for path in pcaps:
        with PcapReader(str(path)) as reader:
            for packet in reader:
                raw = bytes(packet)
                if raw[12:14] == b"\x88\xe1":
                    yield path.name, raw


def test_every_slac_frame_of_real_car_captures_parses(shared_dir):
    import logging
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    seen: dict[str, int] = {}
    derived_nids = 0
    for name, raw in _homeplug_frames_of_real_cars(shared_dir):
        try:
            mme = m.decode(raw)
        except m.UnknownMmeType:
            continue  # other vendor/management MMEs we do not use
        except m.MmeError as exc:
            assert "foreign OUI" in str(exc) or "VS_NW_INFO.CNF with MMV 1" in str(exc), \
                f"{name}: {exc}"
            continue
        seen[mme.name] = seen.get(mme.name, 0) + 1
        if mme.mmtype == m.CM_SLAC_MATCH_CNF:
            # commercial chargers (Alpitronic, ABB, Compleo, Tesla ...) derive the NID from
            # the NMK by the HomePlug rule; pyPLC acting as charger uses a fixed NID.
            derived_nids += m.nid_from_nmk(bytes(mme.nmk)) == bytes(mme.nid)
        if mme.mmtype == m.CM_ATTEN_CHAR_IND:
            assert mme.num_groups == m.NUM_GROUPS
    for name in ("CM_SLAC_PARM.REQ", "CM_SLAC_PARM.CNF", "CM_START_ATTEN_CHAR.IND",
                 "CM_MNBC_SOUND.IND", "CM_ATTEN_PROFILE.IND", "CM_ATTEN_CHAR.IND",
                 "CM_ATTEN_CHAR.RSP", "CM_SLAC_MATCH.REQ", "CM_SLAC_MATCH.CNF",
                 "CM_SET_KEY.REQ", "CM_SET_KEY.CNF", "VS_SW_VER.CNF", "VS_NW_INFO.CNF"):
        assert seen.get(name, 0) > 0, f"no {name} in the captures"
    assert derived_nids >= 10
