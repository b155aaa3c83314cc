"""`make demo` must keep working: run its DIN scenario (SLAC, SDP, session, energy) here."""

from sim import session_demo


def test_demo_din_scenario_charges_and_ends_safely(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    name, protocol, mode, tls = session_demo.SCENARIOS[0]
    result = session_demo.run_scenario(veth_link, name, protocol, mode, tls, tmp_path, test_pki)
    assert result.ok, result.detail
    assert "protocol=din" in result.detail and "contactors_open=True" in result.detail


def test_demo_iso20_scenario_uses_tls_1_3(veth_link, tmp_path, test_pki):
    test_pki.write_secc_files(tmp_path)
    name, protocol, mode, tls = session_demo.SCENARIOS[3]
    result = session_demo.run_scenario(veth_link, name, protocol, mode, tls, tmp_path, test_pki)
    assert result.ok, result.detail
    assert "protocol=iso20 tls=TLSv1.3" in result.detail
