"""Per-vehicle workarounds, kept apart from the standards-compliant core.

Each quirk has a name, a reason (the car or field report it comes from) and acts at one place
in the cores (``quirk in self.quirks``, or a row of a protocol's ``QUIRK_TRANSITIONS``).

Two profiles (``[v2g].profile``, docs/conformance.md):

* ``field`` (the default of every board): ``DEFAULT_FIELD_QUIRKS`` plus ``[v2g].quirks``. A
  charger on the road serves the cars on the road; only leniencies that cannot make anything
  less safe are in it (each one ends in, or repeats, a safety step; none skips one).
* ``conformance``: only what ``[v2g].quirks`` lists (normally nothing): the standards' tables,
  for test runs against ISO 15118-4/-5 style suites.
"""

from __future__ import annotations

QUIRKS: dict[str, str] = {
    "session_stop_anytime":
        "Accept SessionStopReq in any state after SessionSetup (Audi Q4 sends it right after "
        "SessionSetup; EcoG-io/iso15118#432).",
    "no_zero_limits":
        "Never announce 0 W / 0 A limits in ChargeParameterDiscoveryRes (some EVs reject them).",
    "bpt_discharge_positive":
        "ISO 15118-20 BPT: the car sends discharge limits as positive numbers (EVerest PR #1473).",
    "iso20_price_schedule":
        "ISO 15118-20: add a zero-cost AbsolutePriceSchedule to every schedule of "
        "ScheduleExchangeRes. The XSD makes it optional, but EVs built on Josev (iso15118 <= "
        "0.31) reject schedules without one (EcoG-io/iso15118 PR #435).",
    "relaxed_cp_state":
        "Allow twice V2G_SECC_CPState_Detection_Timeout for CP state C/D after "
        "PowerDelivery(Start): real cars are slower than the standard (EcoG-io/iso15118 #201/#437).",
}

QUIRKS["cable_check_after_renegotiation"] = (
    "ISO 15118-2 DC: after PowerDelivery(Renegotiate) -> ChargeParameterDiscovery accept a "
    "new CableCheck (and PreCharge) before PowerDelivery(Start), as other chargers and test "
    "tools do; a fresh insulation test runs (EcoG-io/iso15118 and pyPLC field captures).")

#: The field profile: leniencies that only end a session or repeat a safety step.
DEFAULT_FIELD_QUIRKS = frozenset({"session_stop_anytime", "no_zero_limits", "relaxed_cp_state",
                                  "cable_check_after_renegotiation"})

PROFILES = ("field", "conformance")


def for_profile(profile: str, extra: list[str] | tuple[str, ...] | frozenset[str] = ()) -> \
        frozenset[str]:
    """The quirks a board runs with: the profile's set plus the board's own list."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    base = DEFAULT_FIELD_QUIRKS if profile == "field" else frozenset()
    return base | validate(extra)


def validate(names: list[str] | frozenset[str]) -> frozenset[str]:
    unknown = sorted(set(names) - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown quirk(s) {', '.join(unknown)}; known: {', '.join(QUIRKS)}")
    return frozenset(names)
