"""The board configuration: one TOML file -> one typed, frozen :class:`BoardConfig`.

Validated completely at load: every problem is reported (not just the first) with the file,
the key path, what was expected and what was found, e.g. (one line)::

    board_configs/x.toml: [slac].tt_match_sequence: expected a number of seconds in 0.1..2,
    got "fast"

Unknown sections and keys are errors (a typo must not silently fall back to a default).

Sections are frozen dataclasses; :func:`build_section` turns any of them into a validator from
its type hints plus per-field metadata made with :func:`setting` (range, unit, choices, regex),
so a new section is a few lines. Dataclasses owned elsewhere (``SlacConfig``,
``V2GTimerConfig``) are built the same way from their fields, with ranges supplied here in
``FIELD_RULES`` — a field someone adds later is accepted and type-checked without a change here.

Usage: ``config = load_board_config(path)`` (raises :class:`ConfigError`), then pass
``config.slac``, ``config.v2g.timers`` etc. down; nothing else reads the file or env vars.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from secc.slac.config import SlacConfig
from secc.v2g.tariff import SalesTariffConfig
from secc.v2g.timers import V2GTimerConfig

_REQUIRED = dataclasses.MISSING


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigIssue:
    source: str          # file path as given
    key: str             # "[slac].tt_match_sequence"
    problem: str         # 'expected a number of seconds in 0.1..2, got "fast"'

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.problem}"


class ConfigError(ValueError):
    """The file is unreadable or invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


# --------------------------------------------------------------------------- field metadata


@dataclass(frozen=True)
class Rule:
    """How a value is validated beyond its type."""

    range: tuple[float, float] | None = None
    unit: str | None = None            # "s" renders as "a number of seconds"
    pattern: str | None = None         # regex a string must fully match
    expect: str | None = None          # human text for the pattern ("an interface name")
    unique: bool = False               # lists: no duplicates
    non_empty: bool = False            # lists: at least one item


def setting(default: Any = _REQUIRED, *, range: tuple[float, float] | None = None,
            unit: str | None = None, pattern: str | None = None, expect: str | None = None,
            unique: bool = False, non_empty: bool = False) -> Any:
    """A dataclass field carrying a :class:`Rule`. Omit ``default`` for a required key."""
    rule = Rule(range, unit, pattern, expect, unique, non_empty)
    if default is _REQUIRED:
        return field(metadata={"rule": rule})
    if dataclasses.is_dataclass(default):
        return field(default_factory=lambda: default, metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


def _fmt_num(x: float) -> str:
    return f"{x:g}"


def _toml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_repr(v) for v in value) + "]"
    return str(value)


# --------------------------------------------------------------------------- the generic builder


class _Invalid(Exception):
    def __init__(self, problem: str, where: str = "") -> None:
        self.problem = problem
        self.where = where          # "[1]" when one list item is wrong


def _describe(tp: Any, rule: Rule) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(_toml_repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _describe(inner[0], rule)
    if origin is tuple:
        return "a list, each " + _describe(typing.get_args(tp)[0], rule)
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        text = "an integer" if tp is int else "a number"
        if rule.unit == "s":
            text += " of seconds"
        elif rule.unit:
            text += f" ({rule.unit})"
        if rule.range:
            text += f" in {_fmt_num(rule.range[0])}..{_fmt_num(rule.range[1])}"
        return text
    if tp is str:
        return rule.expect or ("a string matching " + rule.pattern if rule.pattern
                               else "a string")
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, rule: Rule) -> Any:
    """Check ``value`` against type ``tp`` and ``rule``; return the typed value or raise."""
    def fail() -> typing.NoReturn:
        raise _Invalid(f"expected {_describe(tp, rule)}, got {_toml_repr(value)}")

    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(value, inner[0], rule)
    if origin is Literal:
        if isinstance(value, bool) or value not in typing.get_args(tp):
            fail()
        return value
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(value, list):
            fail()
        item_rule = Rule(pattern=rule.pattern, expect=rule.expect)
        converted = []
        for index, item in enumerate(value):
            try:
                converted.append(_convert(item, item_tp, item_rule))
            except _Invalid as exc:
                raise _Invalid(exc.problem, f"[{index}]") from None
        items = tuple(converted)
        if rule.non_empty and not items:
            raise _Invalid(f"expected {_describe(tp, rule)} (at least one), got []")
        if rule.unique and len(set(items)) != len(items):
            raise _Invalid(f"expected {_describe(tp, rule)} without duplicates, "
                           f"got {_toml_repr(value)}")
        return items
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        if tp is int and not isinstance(value, int):
            fail()
        if isinstance(value, float) and not math.isfinite(value):
            fail()
        if rule.range and not rule.range[0] <= value <= rule.range[1]:
            fail()
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        if rule.pattern and not re.fullmatch(rule.pattern, value):
            fail()
        return value
    raise _Invalid(f"unsupported field type {tp!r} (a bug in the section definition)")


def _key(section: str, name: str) -> str:
    return f"[{section}].{name}"


def build_section(cls: type, table: Any, section: str, source: str,
                  issues: list[ConfigIssue],
                  rules: dict[str, Rule] | None = None) -> Any:
    """Build frozen dataclass ``cls`` from TOML ``table``; append problems to ``issues``.

    Nested dataclass fields are sub-tables (``[v2g.timers]``). ``rules`` supplies rules for
    classes defined elsewhere; fields without any rule are type-checked only, except that
    names starting with ``tt_`` are seconds. Returns None when the table had errors.
    """
    if not isinstance(table, dict):
        issues.append(ConfigIssue(source, f"[{section}]",
                                  f"expected a table, got {_toml_repr(table)}"))
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    before = len(issues)
    for name in table:
        if name not in fields:
            issues.append(ConfigIssue(source, _key(section, name),
                                      f"unknown key (known: {', '.join(fields)})"))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        tp = hints[name]
        rule = (rules or {}).get(name) or f.metadata.get("rule") or (
            Rule(unit="s") if name.startswith("tt_") else Rule())
        if dataclasses.is_dataclass(tp):
            sub = build_section(tp, table.get(name, {}), f"{section}.{name}", source, issues,
                                FIELD_RULES.get(tp))
            if sub is not None:
                values[name] = sub
            continue
        if name not in table:
            required = f.default is _REQUIRED and f.default_factory is _REQUIRED
            if required:
                issues.append(ConfigIssue(source, _key(section, name),
                                          f"expected {_describe(tp, rule)}, missing"))
            continue
        try:
            values[name] = _convert(table[name], tp, rule)
        except _Invalid as exc:
            issues.append(ConfigIssue(source, _key(section, name) + exc.where, exc.problem))
    if len(issues) != before:
        return None
    try:
        instance = cls(**values)
    except (ValueError, TypeError) as exc:     # the class's own __post_init__ checks
        # Their messages read "slac.<field> must be ...": point at the key when they do.
        named = re.match(rf"{re.escape(section)}\.(\w+) (.*)", str(exc), re.S)
        key, problem = ((_key(section, named[1]), named[2]) if named
                        else (f"[{section}]", str(exc)))
        issues.append(ConfigIssue(source, key, problem))
        return None
    check = getattr(instance, "cross_check", None)
    if check is not None:
        for key, problem in check():
            issues.append(ConfigIssue(source, _key(section, key), problem))
    return instance if len(issues) == before else None


# --------------------------------------------------------------------------- sections

_IDENT = r"[A-Za-z0-9_.-]{1,64}"
_EVSE_ID = r"[A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9*]{1,30}|ZZ[0-9]{5}|\+?[0-9*]{3,37}"


@dataclass(frozen=True, kw_only=True)
class BoardSection:
    """``[board]``: identity, ratings and the safety thresholds the HAL enforces."""

    name: str = setting(pattern=_IDENT, expect="a name of 1..64 letters, digits, _ . -")
    kind: Literal["sim", "serial", "gpio"] = "sim"
    evse_id: str = setting(pattern=_EVSE_ID,
                           expect='an EVSE ID like "DE*PNX*E12345*1" (ISO 15118) or "ZZ00000"')
    connector: Literal["ccs2", "ccs1", "type2", "type1", "nacs"] = "ccs2"
    output: Literal["dc", "ac"] = "dc"
    max_current_a: float = setting(200.0, range=(0.1, 1000), unit="A")
    max_voltage_v: float = setting(1000.0, range=(50, 1500), unit="V")
    min_voltage_v: float = setting(150.0, range=(0, 1500), unit="V")
    max_power_w: float = setting(150_000.0, range=(100, 1_000_000), unit="W")
    max_discharge_current_a: float = setting(0.0, range=(0, 1000), unit="A")
    max_discharge_power_w: float = setting(0.0, range=(0, 1_000_000), unit="W")
    contactor_feedback_timeout: float = setting(0.2, range=(0.01, 5), unit="s")
    lock_feedback_timeout: float = setting(1.0, range=(0.05, 10), unit="s")
    unlock_max_voltage_v: float = setting(60.0, range=(0, 120), unit="V")
    unlock_max_current_a: float = setting(1.0, range=(0, 10), unit="A")
    discharge_timeout: float = setting(2.0, range=(0.1, 30), unit="s")
    max_temperature_c: float = setting(90.0, range=(30, 200), unit="°C")
    # cable check: the insulation test holds the test voltage this long (IEC 61851-23 CC.4.1)
    insulation_test_hold: float = setting(1.0, range=(0.1, 30), unit="s")

    def cross_check(self) -> Iterable[tuple[str, str]]:
        if self.min_voltage_v > self.max_voltage_v:
            yield "min_voltage_v", (f"expected at most max_voltage_v ({self.max_voltage_v:g}), "
                                    f"got {self.min_voltage_v:g}")


@dataclass(frozen=True)
class SerialSection:
    """``[serial]``: the MCU link (hal/MCU_PROTOCOL.md); required when kind = "serial"."""

    port: str | None = setting(None, pattern=r"/dev/\S+", expect='a device path like "/dev/ttyS1"')
    baud: Literal[9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600] = 115200
    heartbeat_ms: int = setting(100, range=(10, 1000), unit="ms")
    link_timeout_ms: int = setting(500, range=(30, 10_000), unit="ms")
    ack_timeout_ms: int = setting(50, range=(5, 1000), unit="ms")
    max_retries: int = setting(3, range=(0, 10))

    def cross_check(self) -> Iterable[tuple[str, str]]:
        if self.link_timeout_ms < 2 * self.heartbeat_ms:
            yield "link_timeout_ms", (f"expected at least 2 x heartbeat_ms "
                                      f"({2 * self.heartbeat_ms}), got {self.link_timeout_ms}")


_LINE = (0, 511)


@dataclass(frozen=True)
class GpioSection:
    """``[gpio]``: lines and pilot channels of a ``kind = "gpio"`` board (hal/gpio_board.py);
    required when kind = "gpio". Line numbers are offsets on ``chip`` (``gpioinfo``)."""

    chip: str = setting("/dev/gpiochip0", pattern=r"/dev/gpiochip\d+",
                        expect='a gpiochip device like "/dev/gpiochip0"')
    contactor: int | None = setting(None, range=_LINE)
    contactor_feedback: int | None = setting(None, range=_LINE)
    lock: int | None = setting(None, range=_LINE)
    lock_feedback: int | None = setting(None, range=_LINE)
    relays: tuple[int, ...] = setting((), unique=True)
    emergency_stop: int | None = setting(None, range=_LINE)
    active_low: tuple[int, ...] = setting((), unique=True)
    # "adc": CP by the PWM channel and the ADC below; "mcu": CP/PP, e-stop, meter and
    # isolation from the serial MCU of [serial] (only the actuators are on GPIO)
    pilot: Literal["adc", "mcu"] = "adc"
    pwm: str = setting("/sys/class/pwm/pwmchip0/pwm0", pattern=r"/sys/\S+",
                       expect='a sysfs PWM channel like "/sys/class/pwm/pwmchip0/pwm0"')
    cp_adc: str = setting("/sys/bus/iio/devices/iio:device0/in_voltage0_raw",
                          pattern=r"/sys/\S+", expect="an IIO in_voltageN_raw file")
    cp_adc_scale: float = setting(0.01, range=(1e-6, 1.0), unit="V per count")
    cp_adc_offset: float = setting(0.0, range=(-20, 20), unit="V")
    # PP (Type 2 socket): the cable's coding resistor through an ADC; caps the PWM current
    pp_adc: str | None = setting(None, pattern=r"/sys/\S+", expect="an IIO in_voltageN_raw file")
    pp_adc_scale: float = setting(0.001, range=(1e-6, 1.0), unit="V per count")
    pp_pullup_ohm: float = setting(330.0, range=(10, 100_000), unit="ohm")
    pp_reference_v: float = setting(3.3, range=(0.5, 24), unit="V")

    def cross_check(self) -> Iterable[tuple[str, str]]:
        used = [v for v in (self.contactor, self.contactor_feedback, self.lock,
                            self.lock_feedback, self.emergency_stop) if v is not None]
        used += list(self.relays)
        if len(set(used)) != len(used):
            yield "contactor", f"expected each line used once, got {sorted(used)}"


@dataclass(frozen=True)
class PilotSection:
    """``[pilot]``: IEC 61851-1 control pilot."""

    debounce_ms: int = setting(30, range=(0, 500), unit="ms")
    basic_charging: bool = False    # AC: offer nominal-duty PWM when no HLC comes up


@dataclass(frozen=True)
class PlcSection:
    """``[plc]``: the interface the QCA700x modem is on."""

    interface: str = setting("eth1", pattern=r"[A-Za-z0-9_.:@-]{1,15}",
                             expect="a network interface name (1..15 characters)")
    # No SLAC peer (plain veth in tests): treat the link as matched and go straight to SDP.
    start_at_sdp: bool = False


@dataclass(frozen=True)
class V2gSection:
    """``[v2g]``: protocols offered, TLS, timers (``[v2g.timers]``), quirk profiles."""

    protocols: tuple[Literal["iso20", "iso2", "din"], ...] = setting(
        ("iso20", "iso2", "din"), unique=True, non_empty=True)
    tls: Literal["none", "optional", "required"] = "optional"
    certificate_dir: str = setting("/etc/pysecc/certs", pattern=r"\S.*",
                                   expect="a directory path")
    timers: V2GTimerConfig = field(default_factory=V2GTimerConfig)
    # Plug & Charge ("Contract"/PnC over TLS, ISO-2 and -20). Off by default: switch it on once
    # the CSMS serves the 15118 messages (Authorize with certificate data, Get15118EVCertificate);
    # EVs that prefer PnC would otherwise try it and fail instead of using EIM.
    plug_and_charge: bool = False
    # ISO-2 Plug & Charge: ask the car for a MeteringReceipt signed with its contract key
    # (ReceiptRequired + MeterInfo in the loop responses of Contract sessions; OCPP's
    # ISO15118Ctrlr.RequestMeteringReceipt). EIM sessions are never asked.
    request_metering_receipt: bool = False
    # ISO 15118-20 mutual TLS: the vehicle certificate is checked against the OEM roots in
    # certificate_dir/oem_root.pem. With none installed: "no_vehicle_certificate" serves -20
    # without asking for one (a warning at start), "no_iso20_tls" offers no TLS 1.3 at all.
    without_oem_root: Literal["no_vehicle_certificate", "no_iso20_tls"] = \
        "no_vehicle_certificate"
    # "field": the safe field leniencies (secc.v2g.quirks.DEFAULT_FIELD_QUIRKS) + quirks;
    # "conformance": the standards' tables strictly, + quirks (docs/conformance.md)
    profile: Literal["field", "conformance"] = "field"
    quirks: tuple[str, ...] = setting((), pattern=r"[a-z0-9_]{1,64}", unique=True,
                                      expect="a quirk profile name (a-z, 0-9, _)")
    # ISO-2 loop responses: "always" sends MeterInfo (meter ID, reading) in every
    # ChargingStatusRes/CurrentDemandRes; "with_receipt" only when a receipt is asked for
    meter_info: Literal["always", "with_receipt"] = "always"
    # an optional SalesTariff in the ISO-2 SAScheduleTuple (EIM: unsigned; secc/v2g/tariff.py)
    tariff: SalesTariffConfig = field(default_factory=SalesTariffConfig)
    # the payment options this charger accepts (ISO-2 PaymentOption; -20: EIM / PnC).
    # "Contract" is offered over TLS with plug_and_charge only; ["Contract"] alone makes a
    # Contract-only charger (no EIM: needs plug_and_charge, tls = "required", no DIN)
    payment_options: tuple[Literal["Contract", "ExternalPayment"], ...] = setting(
        ("Contract", "ExternalPayment"), unique=True, non_empty=True)

    def cross_check(self) -> Iterable[tuple[str, str]]:
        if "ExternalPayment" in self.payment_options:
            return
        # Contract only: every session must be able to offer it
        if not self.plug_and_charge:
            yield "payment_options", ('["Contract"] alone needs plug_and_charge = true '
                                      '(or add "ExternalPayment")')
        if self.tls != "required":
            yield "payment_options", ('["Contract"] alone needs tls = "required": Contract is '
                                      f'offered over TLS only, got tls = "{self.tls}"')
        if "din" in self.protocols:
            yield "payment_options", ('["Contract"] alone cannot serve DIN 70121 (it knows '
                                      'ExternalPayment only): remove "din" from protocols')


@dataclass(frozen=True)
class BusSection:
    """``[bus]``: the MQTT broker the SECC and the OCPP bridge share.

    With ``enabled = false`` (a stand-alone charger, the simulator) authorization is local
    (``local_authorization``) and no transaction events leave the SECC."""

    enabled: bool = False
    local_authorization: Literal["accept_all", "reject_all"] = "accept_all"
    state_dir: str = setting("/var/lib/pysecc", pattern=r"/\S*",
                             expect="an absolute directory path (the persistent outbox lives here)")
    meter_interval: float = setting(10.0, range=(0.5, 900), unit="s")
    evse: int = setting(1, range=(1, 99))   # the OCPP EVSE number of this charging point
    # when the bridge cannot be reached over the bus: charge anyway (free vend) or refuse
    offline_authorization: Literal["reject", "accept"] = "reject"
    # ISO-2 ChargeParameterDiscovery / -20 ScheduleExchange answer Ongoing up to this long
    # after NotifyEVChargingNeeds went to the CSMS, so its charging profile shapes the first
    # schedule the car is offered (0: offer the present limit at once)
    charging_needs_wait: float = setting(2.0, range=(0, 50), unit="s")

    mqtt_host: str = setting("127.0.0.1", pattern=r"[A-Za-z0-9_.:-]{1,253}",
                             expect="a host name or address")
    mqtt_port: int = setting(1883, range=(1, 65535))
    username: str | None = None
    password: str | None = None
    topic_prefix: str = setting("pysecc/v1", pattern=r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*",
                                expect='a topic prefix like "pysecc/v1" (no wildcards)')

    def cross_check(self) -> Iterable[tuple[str, str]]:
        if self.password is not None and self.username is None:
            yield "password", "expected together with username, got a password alone"


@dataclass(frozen=True)
class SimSection:
    """``[sim]``: the simulated board's car side for outside testers (hal/sim_control.py).

    ``control_socket``: a Unix socket where a tester sets the car's CP state and reads PWM,
    contactors and lock (JSON lines); empty: none. ``ev_follows_session``: the simulated car
    plugs in at start and follows the V2G session (S2 closes after PowerDeliveryReq(Start)),
    for peers without a pilot. Both only with ``[board].kind = "sim"``. ``signed_meter``: the
    simulated meter signs the readings of a transaction's begin and end (OCMF, in software:
    the daemon then loads ``cryptography``, ~12 MB; a real meter signs in its own hardware)."""

    control_socket: str = setting("", pattern=r"(/\S*)?", expect="an absolute socket path")
    ev_follows_session: bool = False
    ev_battery_voltage_v: float = setting(400.0, range=(50, 1500), unit="V")
    signed_meter: bool = True


@dataclass(frozen=True)
class LoggingSection:
    """``[logging]``: format and level for the daemon (the CLI flags override them)."""

    format: Literal["kv", "json"] = "kv"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True)
class BoardConfig:
    """Everything the daemon needs for one charging point."""

    board: BoardSection
    serial: SerialSection = field(default_factory=SerialSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    pilot: PilotSection = field(default_factory=PilotSection)
    plc: PlcSection = field(default_factory=PlcSection)
    slac: SlacConfig = field(default_factory=SlacConfig)
    v2g: V2gSection = field(default_factory=V2gSection)
    bus: BusSection = field(default_factory=BusSection)
    sim: SimSection = field(default_factory=SimSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for ``secc board check`` and logs); the MQTT password is masked."""
        data = dataclasses.asdict(self)
        data.pop("source")
        if data["bus"].get("password") is not None:
            data["bus"]["password"] = "***"
        return data


SECTIONS: dict[str, type] = {name: tp for name, tp in typing.get_type_hints(BoardConfig).items()
                             if name != "source"}

# Ranges for dataclasses whose files belong to other layers. Fields missing here are still
# type-checked (and tt_* are seconds), so adding a field there never breaks loading.
FIELD_RULES: dict[type, dict[str, Rule]] = {
    SlacConfig: {
        "tt_evse_slac_init": Rule(range=(5, 120), unit="s"),
        "tt_match_sequence": Rule(range=(0.1, 2), unit="s"),
        "tt_evse_match_mnbc": Rule(range=(0.1, 2), unit="s"),
        "tt_match_response": Rule(range=(0.05, 1), unit="s"),
        "tt_match_join": Rule(range=(1, 30), unit="s"),
        "tt_evse_match_session": Rule(range=(1, 60), unit="s"),
        "c_ev_match_retry": Rule(range=(0, 10)),
        "c_ev_match_mnbc": Rule(range=(1, 50)),
        "c_evse_set_key_retry": Rule(range=(0, 10)),
        "attenuation_threshold_db": Rule(range=(0, 100), unit="dB"),
        "link_loss_debounce": Rule(range=(0, 10), unit="s"),
        "hlc_pwm_duty_percent": Rule(range=(3, 7), unit="%"),
        "set_key_timeout": Rule(range=(0.05, 10), unit="s"),
        "link_poll_interval": Rule(range=(0.01, 10), unit="s"),
        "t_step_ef": Rule(range=(4, 60), unit="s"),
        "c_sequ_retry": Rule(range=(0, 10)),
        "max_concurrent_attempts": Rule(range=(1, 64)),
    },
    SalesTariffConfig: {
        "sales_tariff_id": Rule(range=(1, 255)),
        "description": Rule(pattern=r".{0,32}", expect="a text of at most 32 characters"),
        "price_levels": Rule(range=(1, 255)),
    },
    V2GTimerConfig: {
        "sequence_timeout": Rule(range=(1, 120), unit="s"),
        "charge_loop_sequence_timeout_iso20": Rule(range=(0.1, 60), unit="s"),
        "communication_setup_timeout": Rule(range=(1, 120), unit="s"),
        "ongoing_timeout": Rule(range=(1, 120), unit="s"),
        "cable_check_timeout": Rule(range=(1, 120), unit="s"),
        "precharge_timeout": Rule(range=(1, 60), unit="s"),
        "cp_state_detection_timeout": Rule(range=(0.1, 10), unit="s"),
        "message_timeout": Rule(range=(0.5, 120), unit="s"),
        "pause_wake_up": Rule(range=(0, 7 * 86400), unit="s"),
    },
}


# --------------------------------------------------------------------------- loading


def parse_board_config(document: dict[str, Any], source: str = "<string>") -> BoardConfig:
    """Validate an already-parsed TOML document; raises :class:`ConfigError`."""
    issues: list[ConfigIssue] = []
    for name in document:
        if name not in SECTIONS:
            issues.append(ConfigIssue(source, f"[{name}]",
                                      f"unknown section (known: {', '.join(SECTIONS)})"))
    if "board" not in document:
        issues.append(ConfigIssue(source, "[board]", "required section missing"))
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        if name not in document and name != "board":
            built[name] = cls()
            continue
        section = build_section(cls, document.get(name, {}), name, source, issues,
                                FIELD_RULES.get(cls))
        if section is not None:
            built[name] = section
    if not issues:
        sim = built["sim"]
        if built["board"].kind != "sim" and (sim.control_socket or sim.ev_follows_session):
            issues.append(ConfigIssue(source, "[sim]",
                                      'only for [board].kind = "sim" (a real car moves a real '
                                      "pilot)"))
        if built["board"].kind == "serial" and built["serial"].port is None:
            issues.append(ConfigIssue(source, "[serial].port",
                                      'expected a device path when [board].kind = "serial", '
                                      "missing"))
        if built["board"].kind == "gpio":
            if built["gpio"].contactor is None:
                issues.append(ConfigIssue(source, "[gpio].contactor", 'expected the line of the '
                                          'contactor output when [board].kind = "gpio", '
                                          "missing"))
            if built["gpio"].pilot == "mcu" and built["serial"].port is None:
                issues.append(ConfigIssue(source, "[serial].port", 'expected the MCU\'s device '
                                          'path when [gpio].pilot = "mcu", missing'))
            if built["board"].output != "ac":
                issues.append(ConfigIssue(source, "[board].output", 'expected "ac" when '
                                          '[board].kind = "gpio" (no DC power module on GPIO '
                                          'lines), got "dc"'))
    if issues:
        raise ConfigError(issues)
    return BoardConfig(**built, source=source)


def loads_board_config(text: str, source: str = "<string>") -> BoardConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigIssue(source, "TOML", f"not valid TOML: {exc}")]) from None
    return parse_board_config(document, source)


def load_board_config(path: str | Path) -> BoardConfig:
    """Read and validate a board file; every problem is in the raised :class:`ConfigError`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(source, "file", f"cannot read: {exc}")]) from None
    return loads_board_config(text, source)


# --------------------------------------------------------------------------- printing


def _toml_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return _toml_repr(value)


def dumps_board_config(config: BoardConfig) -> str:
    """The effective configuration (defaults filled in) as TOML; loads back to the same
    config except for the masked MQTT password."""
    lines: list[str] = []

    def table(name: str, data: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = []
        for key, value in data.items():
            if isinstance(value, dict):
                nested.append((f"{name}.{key}", value))
            elif value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
        for sub_name, sub in nested:
            table(sub_name, sub)

    for section, data in config.as_dict().items():
        table(section, data)
    return "\n".join(lines)
