"""Service and payment selection rules DIN 70121 and ISO 15118-2 share (EIM charging).

This EVSE offers one service, charging (ServiceID 1, category EVCharging), paid by External
Identification Means. Plug & Charge ("Contract") is offered only over TLS by the PnC flow.
"""

from __future__ import annotations

from typing import Any

from secc.v2g.failures import Failure, SessionFailure

CHARGE_SERVICE_ID = 1
EIM_PAYMENT = "ExternalPayment"


def check_service_category(category: str | None) -> None:
    if category not in (None, "EVCharging"):
        raise SessionFailure(Failure.SERVICE_SELECTION_INVALID,
                             f"service category {category} not offered")


def check_payment_selection(option: str, selected_service_list: Any,
                            no_charge_service: Failure) -> None:
    """The EV must pick EIM and the charge service; ``no_charge_service`` is the protocol's
    failure for a selection without it (DIN: ServiceSelectionInvalid, -2: its own code)."""
    if option != EIM_PAYMENT:
        raise SessionFailure(Failure.PAYMENT_SELECTION_INVALID, f"{option} not offered (EIM only)")
    check_selected_services(selected_service_list, no_charge_service)


def check_selected_services(selected_service_list: Any, no_charge_service: Failure,
                            offered: frozenset[int] = frozenset({CHARGE_SERVICE_ID})) -> None:
    """A ServiceID we never offered is FAILED_ServiceSelectionInvalid (ISO 15118-4 style
    PaymentServiceSelection_006), checked before the charge service's presence (_007)."""
    ids = [s.service_id for s in selected_service_list.selected_service]
    unoffered = sorted(set(ids) - offered)
    if unoffered:
        raise SessionFailure(Failure.SERVICE_SELECTION_INVALID,
                             f"ServiceID {unoffered} not offered (offered {sorted(offered)})")
    if CHARGE_SERVICE_ID not in ids:
        raise SessionFailure(no_charge_service, f"selected services {ids}")
