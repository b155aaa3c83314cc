"""Per-vehicle workarounds, kept apart from the standards-compliant core.

Each quirk has a name, a reason (the car or field report it comes from) and is switched on
by listing it in the board config's ``[v2g].quirks``. Conformance runs use an empty set. The
cores consult ``quirk in self.quirks`` at the one place each quirk acts.
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

DEFAULT_FIELD_QUIRKS = frozenset({"session_stop_anytime", "no_zero_limits", "relaxed_cp_state"})


def validate(names: list[str] | frozenset[str]) -> frozenset[str]:
    unknown = sorted(set(names) - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown quirk(s) {', '.join(unknown)}; known: {', '.join(QUIRKS)}")
    return frozenset(names)
