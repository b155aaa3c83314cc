"""Real cars' SLAC, replayed into our EVSE machine.

In the public pyPLC captures where pyPLC acted as the charger, the car's frames (and the
charger modem's CM_ATTEN_PROFILE.IND) are fed to :class:`EvseSlac` at their recorded times,
as if our machine had been the charger. The car's frames were reactions to pyPLC's, whose
timing is close to ours, so our machine must reach a match with the same car and RunID.
"""

from __future__ import annotations

import logging

import pytest

from secc.slac import messages as m
from secc.slac.config import SlacConfig
from secc.slac.evse import EvseSlac, MatchFailed, MatchSucceeded


def homeplug_frames(path):
    from scapy.utils import PcapReader

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    frames = []
    with PcapReader(str(path)) as reader:
        for packet in reader:
            raw = bytes(packet)
            if raw[12:14] == b"\x88\xe1":
                try:
                    frames.append((float(packet.time), raw, m.decode(raw)))
                except m.MmeError:
                    frames.append((float(packet.time), raw, None))
    return frames


def charger_captures(shared_dir):
    found = []
    for path in sorted((shared_dir / "realcar" / "pcaps").glob("*.pcap*")):
        frames = homeplug_frames(path)
        keys = [mme for _, _, mme in frames if mme and mme.mmtype == m.CM_SET_KEY_CNF]
        host_cnfs = [mme for _, _, mme in frames if mme and mme.mmtype == m.CM_SLAC_MATCH_CNF
                     and keys and mme.src == keys[0].dst]
        if keys and host_cnfs:
            found.append((path.name, frames, keys[0], host_cnfs[0]))
    if not found:
        pytest.skip("no real-car captures with pyPLC as charger")
    return found


def test_real_cars_match_with_our_evse_machine(shared_dir):
    results = {}
    for name, frames, set_key_cnf, real_cnf in charger_captures(shared_dir):
        host, modem = set_key_cnf.dst, set_key_cnf.src
        first_parm = next(t for t, _, mme in frames if mme and mme.mmtype == m.CM_SLAC_PARM_REQ)
        evse = EvseSlac(SlacConfig(failure_action="pwm_off"), host)
        actions = evse.pilot_state_b(first_parm - 1.0)
        actions += evse.receive_frame(
            m.encode(m.set_key_cnf(host, modem, set_key_cnf.result)), first_parm - 0.999)
        for t, raw, _ in frames:
            if t < first_parm or raw[6:12] == host:
                continue  # before plug-in, or sent by pyPLC (our machine answers instead)
            actions += evse.handle_timer(t) + evse.receive_frame(raw, t)
            if any(isinstance(a, MatchSucceeded) for a in actions):
                break
        outcome = next(a for a in actions if isinstance(a, (MatchSucceeded, MatchFailed)))
        assert isinstance(outcome, MatchSucceeded), f"{name}: {outcome}"
        assert outcome.ev_mac == real_cnf.pev_mac and outcome.run_id == bytes(real_cnf.run_id)
        # like the recorded charger, well inside TT_EVSE_match_session
        assert 1.0 < outcome.parm_req_to_match_cnf_s < 2.0, name
        results[name] = outcome
    assert len(results) >= 6  # Ioniq, Model Y, Polestar 2, ...
    measured = [o.attenuation_db for o in results.values() if o.attenuation_db is not None]
    assert measured and all(15 < a < 35 for a in measured)
