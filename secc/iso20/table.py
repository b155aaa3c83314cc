"""THE sequence table of the ISO 15118-20 SECC: which request is allowed in which state, and
where it leads. Nothing else in secc/iso20 decides sequence (h11 style).

Events are request element names, refined where content decides the path:
``PowerDeliveryReq.Start|Stop|Standby|ScheduleRenegotiation`` and
``SessionStopReq.Terminate|Pause|ServiceRenegotiation``. A request whose event is not in the
row of the current state is answered FAILED_SequenceError by the core.

There is one table per negotiated namespace (DC, AC) because the two share the common part and
differ after ScheduleExchange (DC has CableCheck/PreCharge/WeldingDetection). DC_BPT and
AC_BPT are services inside those namespaces and follow the same rows.
"""

from __future__ import annotations

from secc.iso20.services import Energy
from secc.v2g.core import TERMINATED


class S:
    """State names (strings, so logs and the table read the same)."""

    WAIT_SESSION_SETUP = "WaitSessionSetup"
    WAIT_AUTHORIZATION_SETUP = "WaitAuthorizationSetup"
    WAIT_AUTHORIZATION = "WaitAuthorization"            # AuthorizationReq repeats while Ongoing
    WAIT_SERVICE_DISCOVERY = "WaitServiceDiscovery"
    WAIT_SERVICE_SELECTION = "WaitServiceSelection"      # ServiceDetailReq may repeat
    WAIT_CHARGE_PARAMETERS = "WaitChargeParameterDiscovery"
    WAIT_SCHEDULE_EXCHANGE = "WaitScheduleExchange"      # ScheduleExchangeReq repeats while Ongoing
    WAIT_CABLE_CHECK = "WaitCableCheck"                  # DC; repeats while Ongoing
    WAIT_PRE_CHARGE = "WaitPreCharge"                    # DC
    PRE_CHARGING = "PreCharging"                         # DC: PreChargeReq repeats
    WAIT_POWER_DELIVERY = "WaitPowerDelivery"            # AC: after ScheduleExchange
    CHARGE_LOOP = "ChargeLoop"
    STANDBY = "Standby"                                  # PowerDelivery(Standby): no power
    RENEGOTIATING = "RenegotiatingSchedule"              # PowerDelivery(ScheduleRenegotiation)
    RENEGOTIATED = "WaitPowerDeliveryAfterRenegotiation"
    POST_CHARGE = "PostCharge"                           # after PowerDelivery(Stop)
    TERMINATED = TERMINATED


# Refined events
PD_START = "PowerDeliveryReq.Start"
PD_STOP = "PowerDeliveryReq.Stop"
PD_STANDBY = "PowerDeliveryReq.Standby"
PD_RENEGOTIATE = "PowerDeliveryReq.ScheduleRenegotiation"
STOP_TERMINATE = "SessionStopReq.Terminate"
STOP_PAUSE = "SessionStopReq.Pause"
STOP_SERVICE_RENEGOTIATION = "SessionStopReq.ServiceRenegotiation"

#: States in which power may flow: pausing is refused there (FAILED_PauseNotAllowed, by the
#: SessionStopReq handler) because the car must first end power transfer with PowerDelivery(Stop).
POWER_STATES = frozenset({S.WAIT_CABLE_CHECK, S.WAIT_PRE_CHARGE, S.PRE_CHARGING, S.CHARGE_LOOP,
                          S.STANDBY, S.RENEGOTIATING, S.RENEGOTIATED})
#: States whose sequence timeout is the -20 charge-loop value (0.5 s), not 60 s.
LOOP_STATES = frozenset({S.CHARGE_LOOP, S.STANDBY})

_TERMINATE = {STOP_TERMINATE: TERMINATED}
_TERMINATE_OR_PAUSE = {STOP_TERMINATE: TERMINATED, STOP_PAUSE: TERMINATED}


def _common(energy: Energy) -> dict[str, dict[str, str]]:
    cpd = "DC_ChargeParameterDiscoveryReq" if energy is Energy.DC else \
        "AC_ChargeParameterDiscoveryReq"
    after_schedule = S.WAIT_CABLE_CHECK if energy is Energy.DC else S.WAIT_POWER_DELIVERY
    return {
        S.WAIT_SESSION_SETUP: {"SessionSetupReq": S.WAIT_AUTHORIZATION_SETUP},
        # Audi Q4 sends SessionStopReq right after SessionSetup (EcoG-io/iso15118#432).
        S.WAIT_AUTHORIZATION_SETUP: {"AuthorizationSetupReq": S.WAIT_AUTHORIZATION,
                                     **_TERMINATE},
        # the car installs a contract first (CertificateInstallationService offered) then
        # authorizes with it; the SECC forwards it to the CSMS (Get15118EVCertificate)
        S.WAIT_AUTHORIZATION: {"AuthorizationReq": S.WAIT_SERVICE_DISCOVERY,
                               "CertificateInstallationReq": S.WAIT_AUTHORIZATION,
                               **_TERMINATE},
        S.WAIT_SERVICE_DISCOVERY: {"ServiceDiscoveryReq": S.WAIT_SERVICE_SELECTION,
                                   **_TERMINATE},
        S.WAIT_SERVICE_SELECTION: {"ServiceDetailReq": S.WAIT_SERVICE_SELECTION,
                                   "ServiceSelectionReq": S.WAIT_CHARGE_PARAMETERS,
                                   **_TERMINATE},
        S.WAIT_CHARGE_PARAMETERS: {cpd: S.WAIT_SCHEDULE_EXCHANGE,
                                   "VehicleCheckInReq": S.WAIT_CHARGE_PARAMETERS,
                                   **_TERMINATE},
        S.WAIT_SCHEDULE_EXCHANGE: {"ScheduleExchangeReq": after_schedule,
                                   **_TERMINATE_OR_PAUSE},
        S.RENEGOTIATING: {"ScheduleExchangeReq": S.RENEGOTIATED, **_TERMINATE_OR_PAUSE},
        S.RENEGOTIATED: {PD_START: S.CHARGE_LOOP, PD_STOP: S.POST_CHARGE,
                         **_TERMINATE_OR_PAUSE},
    }


def _loop_rows(loop_request: str) -> dict[str, dict[str, str]]:
    return {
        S.CHARGE_LOOP: {loop_request: S.CHARGE_LOOP, PD_STOP: S.POST_CHARGE,
                        PD_STANDBY: S.STANDBY, PD_RENEGOTIATE: S.RENEGOTIATING,
                        **_TERMINATE_OR_PAUSE},
        S.STANDBY: {loop_request: S.STANDBY, PD_START: S.CHARGE_LOOP, PD_STOP: S.POST_CHARGE,
                    **_TERMINATE_OR_PAUSE},
    }


def _post_charge(extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return {S.POST_CHARGE: {**extra, "VehicleCheckOutReq": S.POST_CHARGE,
                            **_TERMINATE_OR_PAUSE,
                            STOP_SERVICE_RENEGOTIATION: S.WAIT_SERVICE_DISCOVERY}}


DC_TRANSITIONS: dict[str, dict[str, str]] = {
    **_common(Energy.DC),
    S.WAIT_CABLE_CHECK: {"DC_CableCheckReq": S.WAIT_PRE_CHARGE, **_TERMINATE_OR_PAUSE},
    S.WAIT_PRE_CHARGE: {"DC_PreChargeReq": S.PRE_CHARGING, **_TERMINATE_OR_PAUSE},
    S.PRE_CHARGING: {"DC_PreChargeReq": S.PRE_CHARGING, PD_START: S.CHARGE_LOOP,
                     PD_STOP: S.POST_CHARGE, **_TERMINATE_OR_PAUSE},
    **_loop_rows("DC_ChargeLoopReq"),
    **_post_charge({"DC_WeldingDetectionReq": S.POST_CHARGE}),
}

AC_TRANSITIONS: dict[str, dict[str, str]] = {
    **_common(Energy.AC),
    S.WAIT_POWER_DELIVERY: {PD_START: S.CHARGE_LOOP, PD_STOP: S.POST_CHARGE,
                            **_TERMINATE_OR_PAUSE},
    **_loop_rows("AC_ChargeLoopReq"),
    **_post_charge({}),
}

TRANSITIONS = {Energy.DC: DC_TRANSITIONS, Energy.AC: AC_TRANSITIONS}
