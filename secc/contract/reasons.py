"""Why a charging session ended: the one vocabulary the session cores, the bus and the bridge share.

The session cores put a :class:`EndReason` in their ``SessionStopped`` event (never log text);
the SECC's transaction reporter carries its value on the bus as ``end_reason`` of the
``transaction_event``; the OCPP bridge turns it into TransactionEvent ``triggerReason`` and
``stoppedReason`` with one table (``ocpp_bridge/stop_reasons.py``). A test keeps the schema's
enum, this enum and the bridge's table the same set.
"""

from __future__ import annotations

import enum


class EndReason(enum.StrEnum):
    """Why a charging session (and the transaction it carries) ended, as the SECC saw it."""

    EV_STOPPED = "ev_stopped"                # the car's SessionStop(Terminate): a normal end
    EV_PAUSED = "ev_paused"                  # ISO-2/-20 SessionStop(Pause): may resume later
    SOC_LIMIT_REACHED = "soc_limit_reached"  # the car stopped after saying it is full
    EV_UNPLUGGED = "ev_unplugged"            # control pilot went to A
    COMMUNICATION_LOST = "communication_lost"  # the V2G connection closed or became unreadable
    TIMEOUT = "timeout"                      # a V2G timer expired (sequence, Ongoing, CP state)
    PROTOCOL_ERROR = "protocol_error"        # a request failed (sequence, signature, parameters)
    DEAUTHORIZED = "deauthorized"            # the id token / contract was refused
    REMOTE_STOP = "remote_stop"              # the CSMS asked to stop (RequestStopTransaction)
    IMMEDIATE_RESET = "immediate_reset"      # the CSMS asked for Reset(Immediate)
    LOCAL_STOP = "local_stop"                # stopped at the charger (stop button, local command)
    EMERGENCY_STOP = "emergency_stop"        # e-stop pressed
    ISOLATION_FAULT = "isolation_fault"      # the isolation monitor found a fault
    MALFUNCTION = "malfunction"              # power module / contactor fault
    POWER_LOSS = "power_loss"                # utility interruption
    INTERNAL_ERROR = "internal_error"        # a bug in the SECC (logged); power made safe
