"""Board configuration: shipped files load, every section's errors are clear, nothing unknown
slips through, and the CLI reports like the loader."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secc.config import (
    BoardConfig,
    ConfigError,
    dumps_board_config,
    load_board_config,
    loads_board_config,
    parse_board_config,
)
from secc.slac.config import SlacConfig

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "board_configs").glob("*.toml"))
MINIMAL = '[board]\nname = "t"\nevse_id = "DE*PNX*E12345*1"\n'
SRC = "board_configs/x.toml"


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads_board_config(text, SRC)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_board_configs_load(path):
    config = load_board_config(path)
    assert isinstance(config, BoardConfig) and config.source == str(path)


def test_both_required_configs_are_shipped():
    assert {p.name for p in SHIPPED} >= {"sim.toml", "example-serial.toml"}


def test_sim_config_selects_simulated_board_and_sdp_start():
    config = load_board_config(REPO / "board_configs/sim.toml")
    assert config.board.kind == "sim" and config.plc.start_at_sdp is True


def test_minimal_config_gets_defaults_everywhere():
    config = loads_board_config(MINIMAL)
    assert config.slac == SlacConfig()
    assert config.v2g.protocols == ("iso20", "iso2", "din")
    assert config.v2g.tls == "optional" and config.bus.mqtt_port == 1883
    assert config.pilot.debounce_ms == 30 and config.logging.format == "kv"


def test_config_is_frozen():
    config = loads_board_config(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.board.max_current_a = 5  # type: ignore[misc]


def test_slac_error_names_file_key_expectation_and_value():
    assert errors_of(MINIMAL + '[slac]\ntt_match_sequence = "fast"\n') == [
        f'{SRC}: [slac].tt_match_sequence: expected a number of seconds in 0.1..2, got "fast"']


def test_slac_overrides_land_in_the_shared_dataclass():
    config = loads_board_config(MINIMAL + "[slac]\ntt_evse_slac_init = 20\nc_ev_match_mnbc = 5\n")
    assert config.slac.tt_evse_slac_init == 20.0 and isinstance(config.slac.tt_evse_slac_init,
                                                                 float)
    assert config.slac.c_ev_match_mnbc == 5


def test_slac_field_without_local_rule_is_still_type_checked():
    # every SlacConfig field is accepted generically; wrong types are refused
    for f in dataclasses.fields(SlacConfig):
        text = MINIMAL + f"[slac]\n{f.name} = [1]\n"
        assert any(f"[slac].{f.name}: expected" in e for e in errors_of(text)), f.name


def test_slac_own_validation_is_reported_at_its_key():
    errs = errors_of(MINIMAL + '[slac]\nvalidate_mode = "maybe"\n')
    assert errs[0].startswith(f"{SRC}: [slac].validate_mode: must be one of")


@pytest.mark.parametrize(("snippet", "expected"), [
    ('[board]\nname = "t"\nevse_id = "DE*PNX*E12345*1"\nkind = "can"\n',
     '[board].kind: expected one of "sim", "serial", "gpio", got "can"'),
    ('[board]\nname = "t"\nevse_id = "nope"\n',
     '[board].evse_id: expected an EVSE ID like "DE*PNX*E12345*1" (ISO 15118) or "ZZ00000", '
     'got "nope"'),
    ('[board]\nname = "t"\n',
     '[board].evse_id: expected an EVSE ID like "DE*PNX*E12345*1" (ISO 15118) or "ZZ00000", '
     "missing"),
    (MINIMAL.replace('name = "t"', 'name = "t"\nmax_voltage_v = 5000'),
     "[board].max_voltage_v: expected a number (V) in 50..1500, got 5000"),
    (MINIMAL.replace('name = "t"', 'name = "t"\nmin_voltage_v = 900\nmax_voltage_v = 500'),
     "[board].min_voltage_v: expected at most max_voltage_v (500), got 900"),
    (MINIMAL + "[serial]\nbaud = 12345\n",
     "[serial].baud: expected one of 9600, 19200, 38400, 57600, 115200, 230400, 460800, "
     "921600, got 12345"),
    (MINIMAL + "[serial]\nheartbeat_ms = 200\nlink_timeout_ms = 300\n",
     "[serial].link_timeout_ms: expected at least 2 x heartbeat_ms (400), got 300"),
    (MINIMAL.replace('name = "t"', 'name = "t"\nkind = "serial"'),
     '[serial].port: expected a device path when [board].kind = "serial", missing'),
    (MINIMAL + "[pilot]\ndebounce_ms = 2.5\n",
     "[pilot].debounce_ms: expected an integer (ms) in 0..500, got 2.5"),
    (MINIMAL + '[plc]\nstart_at_sdp = "yes"\n',
     '[plc].start_at_sdp: expected true or false, got "yes"'),
    (MINIMAL + '[plc]\ninterface = "a-very-long-interface-name"\n',
     '[plc].interface: expected a network interface name (1..15 characters), '
     'got "a-very-long-interface-name"'),
    (MINIMAL + '[v2g]\nprotocols = ["iso2", "iso15"]\n',
     '[v2g].protocols[1]: expected one of "iso20", "iso2", "din", got "iso15"'),
    (MINIMAL + "[v2g]\nprotocols = []\n",
     '[v2g].protocols: expected a list, each one of "iso20", "iso2", "din" (at least one), '
     "got []"),
    (MINIMAL + '[v2g]\nprotocols = ["din", "din"]\n',
     '[v2g].protocols: expected a list, each one of "iso20", "iso2", "din" without '
     'duplicates, got ["din", "din"]'),
    (MINIMAL + '[v2g]\ntls = "sometimes"\n',
     '[v2g].tls: expected one of "none", "optional", "required", got "sometimes"'),
    (MINIMAL + "[v2g.timers]\nsequence_timeout = 0\n",
     "[v2g.timers].sequence_timeout: expected a number of seconds in 1..120, got 0"),
    (MINIMAL + '[v2g]\nquirks = ["Audi Q4"]\n',
     '[v2g].quirks[0]: expected a quirk profile name (a-z, 0-9, _), got "Audi Q4"'),
    (MINIMAL + "[bus]\nmqtt_port = 70000\n",
     "[bus].mqtt_port: expected an integer in 1..65535, got 70000"),
    (MINIMAL + '[bus]\npassword = "x"\n',
     "[bus].password: expected together with username, got a password alone"),
    (MINIMAL + '[bus]\ntopic_prefix = "pysecc/#"\n',
     '[bus].topic_prefix: expected a topic prefix like "pysecc/v1" (no wildcards), '
     'got "pysecc/#"'),
    (MINIMAL + '[logging]\nformat = "xml"\n',
     '[logging].format: expected one of "kv", "json", got "xml"'),
    (MINIMAL + '[logging]\nlevel = "debug"\n',
     '[logging].level: expected one of "DEBUG", "INFO", "WARNING", "ERROR", got "debug"'),
])
def test_each_section_reports_a_clear_error(snippet, expected):
    assert f"{SRC}: {expected}" in errors_of(snippet)


@pytest.mark.parametrize(("snippet", "key"), [
    (MINIMAL.replace('name = "t"', 'name = "t"\nmax_curent_a = 10'), "[board].max_curent_a"),
    (MINIMAL + "[serial]\nbaudrate = 9600\n", "[serial].baudrate"),
    (MINIMAL + "[slac]\ntt_match_seqeunce = 0.4\n", "[slac].tt_match_seqeunce"),
    (MINIMAL + "[v2g.timers]\nsequence = 3\n", "[v2g.timers].sequence"),
    (MINIMAL + "[bus]\nhost = \"x\"\n", "[bus].host"),
])
def test_unknown_keys_are_rejected_with_the_known_ones_listed(snippet, key):
    errs = errors_of(snippet)
    assert len(errs) == 1 and errs[0].startswith(f"{SRC}: {key}: unknown key (known: ")


def test_unknown_section_is_rejected():
    assert errors_of(MINIMAL + "[ocpp]\nurl = 1\n") == [
        f"{SRC}: [ocpp]: unknown section (known: board, serial, gpio, pilot, plc, slac, v2g, "
        "bus, sim, logging)"]


def test_section_that_is_not_a_table_is_rejected():
    assert errors_of('slac = "fast"\n' + MINIMAL) == [
        f'{SRC}: [slac]: expected a table, got "fast"']


def test_all_problems_are_reported_at_once():
    text = MINIMAL + '[slac]\ntt_match_join = "x"\n[bus]\nmqtt_port = 0\n[logging]\nlevel = 1\n'
    assert len(errors_of(text)) == 3


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path):
    assert "not valid TOML" in errors_of("[board\n")[0]
    with pytest.raises(ConfigError, match="cannot read"):
        load_board_config(tmp_path / "absent.toml")


def test_bool_is_not_accepted_as_a_number():
    assert f"{SRC}: [pilot].debounce_ms: expected an integer (ms) in 0..500, got true" in \
        errors_of(MINIMAL + "[pilot]\ndebounce_ms = true\n")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_printed_config_loads_back_identical(path):
    config = load_board_config(path)
    again = loads_board_config(dumps_board_config(config), str(path))
    assert again == config


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "secc", "board", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_check_prints_valid_config_and_exits_0():
    done = run_cli("check", "board_configs/sim.toml")
    assert done.returncode == 0, done.stderr
    assert "# board_configs/sim.toml: valid" in done.stdout
    assert 'evse_id = "DE*PNX*E00001*1"' in done.stdout and "[v2g.timers]" in done.stdout


def test_cli_check_prints_every_error_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + '[slac]\ntt_match_sequence = "fast"\n[pilot]\nfoo = 1\n')
    done = run_cli("check", str(bad))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert f'{bad}: [slac].tt_match_sequence: expected a number of seconds in 0.1..2, ' \
           f'got "fast"' in lines
    assert any(line.startswith(f"{bad}: [pilot].foo: unknown key") for line in lines)
    assert lines[-1] == f"{bad}: 2 problem(s)" and done.stdout == ""


_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3))
_keys = st.sampled_from(["name", "kind", "evse_id", "port", "baud", "heartbeat_ms",
                         "debounce_ms", "interface", "tt_match_sequence", "protocols", "tls",
                         "quirks", "mqtt_port", "password", "format", "level", "timers", "x"])
_sections = st.sampled_from(["board", "serial", "pilot", "plc", "slac", "v2g", "bus",
                             "logging", "extra"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_sections, st.one_of(
    _values, st.dictionaries(_keys, st.one_of(_values, st.dictionaries(_keys, _values,
                                                                         max_size=3)),
                             max_size=6)), max_size=6))
def test_any_document_gives_a_config_or_a_config_error(document):
    try:
        config = parse_board_config(document, SRC)
    except ConfigError as exc:
        assert exc.issues and all(str(i).startswith(f"{SRC}: ") for i in exc.issues)
    else:
        assert isinstance(config, BoardConfig)
