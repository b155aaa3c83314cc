"""Board hardware abstraction: control pilot, contactors, lock, meter, isolation, power module.

Modules:

* ``hal.board``   the interface (:class:`Board`), readings, events, errors, ``SafeStateReason``
* ``hal.pilot``   IEC 61851-1 pilot: ``PilotState``, ``PilotSignal`` (hlc / nominal / x1 /
  state_f), Table A.8 duty formulas, ``PilotDebouncer``
* ``hal.base``    ``BaseBoard``: the safety policy every board shares (feedback checks, unlock
  rules, safe-state sequence, automatic reactions to e-stop / isolation fault / welding /
  link loss / MCU reset)
* ``hal.sim``     ``SimBoard`` + ``SimPlant``: deterministic simulated hardware and EV side
* ``hal.serial_board`` / ``hal.mcu_protocol`` / ``hal.mcu_sim``: MCU on a UART
  (``MCU_PROTOCOL.md``), its sans-I/O link, and a simulated MCU firmware on a pty
* ``secc.boards`` ``board_from_config(config)``: what the daemon calls

Typical use by the daemon / session layer::

    board = board_from_config(load_board_config(path))
    await board.start()                      # SerialBoard: then await board.wait_connected()
    events = board.subscribe()               # asyncio.Queue of hal.board events
    await board.set_pilot(PilotSignal.hlc())
    ...                                      # lock(), close_contactors(), set_dc_setpoint() ...
    report = await board.safe_state(SafeStateReason.SESSION_END)
    await board.close()
"""

from hal.board import (
    Board,
    BoardError,
    BoardEvent,
    BoardLinkChanged,
    ContactorError,
    ContactorFault,
    DcCapabilities,
    DcOutput,
    EmergencyStopChanged,
    IsolationChanged,
    IsolationReading,
    IsolationState,
    LinkDown,
    LockError,
    LockFault,
    LockState,
    McuReset,
    MeterReading,
    OverTemperature,
    PilotStateChanged,
    SafeStateEntered,
    SafeStateReason,
    SafeStateReport,
    SafetyLimits,
    SetpointOutOfRange,
    SignedMeterValue,
    UnsafeToUnlock,
)
from hal.pilot import PilotSignal, PilotState

__all__ = [
    "Board", "BoardError", "BoardEvent", "BoardLinkChanged", "ContactorError", "ContactorFault",
    "DcCapabilities", "DcOutput", "EmergencyStopChanged", "IsolationChanged",
    "IsolationReading", "IsolationState", "LinkDown", "LockError", "LockFault", "LockState",
    "McuReset", "MeterReading", "OverTemperature", "PilotSignal", "PilotState", "PilotStateChanged",
    "SafeStateEntered", "SafeStateReason", "SafeStateReport", "SafetyLimits",
    "SetpointOutOfRange", "SignedMeterValue", "UnsafeToUnlock",
]
