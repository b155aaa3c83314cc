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


# --- Plug & Charge options --------------------------------------------------------------------
@pytest.fixture(scope="module")
def pnc_files(test_pki, tmp_path_factory):
    """PEM files as a user would pass them: V2G root, OEM provisioning chain and key, a
    contract chain and key (the shared TestPKI, P-256)."""
    pki = test_pki
    directory = tmp_path_factory.mktemp("pnc")
    files = {"v2g_root": pki.v2g_root.cert_pem,
             "oem_chain": pki.vehicle_leaf.cert_pem + pki.oem_sub.cert_pem,
             "oem_key": pki.vehicle_leaf.key_pem,
             "stranger_key": pki.secc_leaf.key_pem}
    for name, data in files.items():
        (directory / f"{name}.pem").write_bytes(data)
    chain, key = pki.issue_contract().write(directory)
    return pki, {**{name: directory / f"{name}.pem" for name in files},
                 "contract_chain": chain, "contract_key": key}


def test_oem_options_give_the_car_a_provisioning_credential_trusting_the_v2g_root(pnc_files):
    pki, f = pnc_files
    c = config(f"--protocol iso2 --tls --v2g-root {f['v2g_root']} "
               f"--oem-chain {f['oem_chain']} --oem-key {f['oem_key']}")
    credential = c.evcc.provisioning
    assert credential is not None and c.contract is None and c.evcc.contract is None
    assert credential.certificate == pki.vehicle_leaf.cert_der  # the leaf only, not the sub-CA
    assert credential.key.private_numbers() == pki.vehicle_leaf.key.private_numbers()
    root = pki.v2g_root.cert
    assert credential.root_ids == ((root.subject.rfc4514_string(), root.serial_number),)
    assert credential.v2g_root == pki.v2g_root.cert_der


def test_contract_options_work_for_iso20_too(pnc_files):
    _, f = pnc_files
    c = config(f"--protocol iso20 --tls --v2g-root {f['v2g_root']} "
               f"--contract-chain {f['contract_chain']} --contract-key {f['contract_key']}")
    assert c.protocol == "iso20" and c.contract is not None
    assert c.contract.emaid and len(c.contract.sub_certificates) == 2
    assert c.evcc.provisioning is None


def test_help_no_longer_says_plug_and_charge_is_iso2_only():
    text = build_parser().format_help()
    assert "Plug & Charge (ISO 15118-2 and -20" in text
    assert "ISO-2 Plug & Charge" not in text


@pytest.mark.parametrize("argv, reason", [
    ("--oem-chain {oem_chain} --v2g-root {v2g_root}", "go together"),
    ("--oem-key {oem_key} --v2g-root {v2g_root}", "go together"),
    ("--oem-chain {oem_chain} --oem-key {oem_key}", "needs --v2g-root"),
    ("--oem-chain {oem_chain} --oem-key {stranger_key} --v2g-root {v2g_root}",
     "does not belong"),
    ("--oem-chain {oem_key} --oem-key {oem_key} --v2g-root {v2g_root}", "cannot load"),
    ("--oem-chain {oem_chain} --oem-key {oem_key} --v2g-root {v2g_root} --offer din",
     "offer iso2"),
])
def test_bad_provisioning_options_are_rejected_with_a_reason(pnc_files, argv, reason):
    _, f = pnc_files
    with pytest.raises(ValueError, match=reason):
        config("--protocol iso2 " + argv.format(**f))


def test_vehicle_certificate_options_for_iso20_mutual_tls(tmp_path):
    c = config(f"--protocol iso20 --tls --v2g-root {tmp_path}/r.pem --vehicle-chain "
               f"{tmp_path}/c.pem --vehicle-key {tmp_path}/k.pem")
    assert c.vehicle_tls == (tmp_path / "c.pem", tmp_path / "k.pem")
    assert config("--protocol iso20").vehicle_tls is None
    with pytest.raises(ValueError, match="go together"):
        config(f"--protocol iso20 --vehicle-chain {tmp_path}/c.pem")


def test_control_socket_moves_the_pilot_and_wakes_the_charger_after_a_pause():
    c = config("--protocol iso2 --mode ac --no-slac --pause-resume --control-socket "
               "/run/x/sim.sock --sleep 2")
    assert c.on_signals is not None and c.wake_up is not None and c.resume_after_pause
    assert config("--control-socket /run/x/sim.sock").wake_up is None   # no pause: no wake-up
    assert config("--pause-resume").wake_up is None   # no pilot: reconnects at once
    with pytest.raises(ValueError, match="--sleep"):
        config("--pause-resume --sleep -1")
