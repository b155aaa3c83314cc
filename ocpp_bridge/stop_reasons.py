"""Why a transaction ended, in OCPP 2.0.1 terms: the one table from the SECC's ``end_reason``.

The SECC says why a session ended with :class:`secc.contract.reasons.EndReason` (bus field
``end_reason`` of ``transaction_event``); the TransactionEvent(Ended) the CSMS gets carries the
``triggerReason`` (what caused the event) and ``stoppedReason`` (ReasonEnumType) of this table.
Choices (OCPP 2.0.1 part 2, TriggerReasonEnumType / ReasonEnumType descriptions):

* A car that ends its session normally is ``StoppedByEV`` with trigger
  ``ChargingStateChanged``, not an abnormal condition; a car that says it is full is
  ``SOCLimitReached``.
* An unplugged cable is ``EVDisconnected`` with trigger ``EVCommunicationLost`` (the trigger's
  own description: "for example: cable disconnected").
* A lost or silent V2G connection with the cable still in is ``EVCommunicationLost`` too; a
  timer that expired says ``Timeout``, a closed connection has no closer OCPP reason than
  ``Other``.
* Faults on the charger side are ``AbnormalCondition`` with the most specific reason OCPP has
  (``EmergencyStop``, ``GroundFault`` for an isolation fault, ``PowerLoss``).
* ``ev_paused`` never ends a transaction (the SECC reports a pause as Updated/SuspendedEV);
  the row is there for a sender that ends one anyway.
"""

from __future__ import annotations

from secc.contract.reasons import EndReason

# EndReason -> (triggerReason, stoppedReason) of TransactionEvent(Ended)
OCPP_END_REASONS: dict[EndReason, tuple[str, str]] = {
    EndReason.EV_STOPPED: ("ChargingStateChanged", "StoppedByEV"),
    EndReason.EV_PAUSED: ("ChargingStateChanged", "StoppedByEV"),
    EndReason.SOC_LIMIT_REACHED: ("ChargingStateChanged", "SOCLimitReached"),
    EndReason.EV_UNPLUGGED: ("EVCommunicationLost", "EVDisconnected"),
    EndReason.COMMUNICATION_LOST: ("EVCommunicationLost", "Other"),
    EndReason.TIMEOUT: ("EVCommunicationLost", "Timeout"),
    EndReason.PROTOCOL_ERROR: ("AbnormalCondition", "Other"),
    EndReason.DEAUTHORIZED: ("Deauthorized", "DeAuthorized"),
    EndReason.REMOTE_STOP: ("RemoteStop", "Remote"),
    EndReason.IMMEDIATE_RESET: ("ResetCommand", "ImmediateReset"),
    EndReason.LOCAL_STOP: ("StopAuthorized", "Local"),
    EndReason.EMERGENCY_STOP: ("AbnormalCondition", "EmergencyStop"),
    EndReason.ISOLATION_FAULT: ("AbnormalCondition", "GroundFault"),
    EndReason.MALFUNCTION: ("AbnormalCondition", "Other"),
    EndReason.POWER_LOSS: ("AbnormalCondition", "PowerLoss"),
    EndReason.INTERNAL_ERROR: ("AbnormalCondition", "Other"),
}


def ocpp_end(end_reason: str) -> tuple[str, str]:
    """(triggerReason, stoppedReason) for a bus ``end_reason`` (already schema-validated)."""
    return OCPP_END_REASONS[EndReason(end_reason)]
