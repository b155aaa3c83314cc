"""``python -m sim.ev`` argument handling (the session itself runs in test_runner_veth)."""

from __future__ import annotations

import pytest
from sim.ev import build_parser, config_from_args


def config(argv: str):
    return config_from_args(build_parser().parse_args(["--iface", "veth0", *argv.split()]))


def test_defaults_are_din_dc_with_slac_and_the_vendor_entry_off():
    c = config("")
    assert (c.protocol, c.mode, c.slac, c.tls, c.vendor_first) == ("din", "dc", True, False,
                                                                   False)
    assert c.offers is None and c.battery.soc == 30.0


def test_misbehaviour_flags_become_knobs():
    c = config("--protocol iso2 --mode ac --no-slac --skip Authorization --stall "
               "PowerDelivery=2.5 --send-instead ServiceDiscovery=PowerDelivery "
               "--garbage ChargingStatus --wrong-session-id SessionStop --pause-resume")
    knobs = c.misbehaviour
    assert knobs.skip == {"Authorization"} and knobs.stall == {"PowerDelivery": 2.5}
    assert knobs.send_instead == {"ServiceDiscovery": "PowerDelivery"}
    assert knobs.garbage == {"ChargingStatus"} and knobs.wrong_session_id == {"SessionStop"}
    assert knobs.pause_instead_of_terminate and c.resume_after_pause and not c.slac


def test_explicit_offer_list_keeps_its_order_behind_the_vendor_entry():
    c = config("--protocol iso2 --offer iso2 din --vendor-first")
    assert [o.namespace.split(":")[1] for o in c.offers] == ["tesla", "iso", "din"]


@pytest.mark.parametrize("argv", ["--protocol din --mode ac", "--tls",
                                  "--skip Authorization",  # not a DIN step
                                  "--stall PreCharge", "--send-instead CableCheck=Nonsense"])
def test_bad_arguments_are_rejected_with_a_reason(argv):
    with pytest.raises(ValueError):
        config(argv)
