"""ISO 15118-20 energy transfer services and the parameter sets this SECC offers.

Service IDs are fixed by the standard (Table 204): 1 AC, 2 DC, 3 WPT, 4 DC_ACDP, 5 AC_BPT,
6 DC_BPT, 7 DC_ACDP_BPT. Each service is offered with numbered parameter sets; the car picks
one in ServiceSelectionReq. The parameter that decides our behaviour most is ``ControlMode``
(1 Scheduled: the car sets targets inside a schedule we gave; 2 Dynamic: we set the power).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EnergyService(enum.IntEnum):
    AC = 1
    DC = 2
    WPT = 3
    DC_ACDP = 4
    AC_BPT = 5
    DC_BPT = 6
    DC_ACDP_BPT = 7

    @property
    def is_dc(self) -> bool:
        return self in (EnergyService.DC, EnergyService.DC_BPT)

    @property
    def is_ac(self) -> bool:
        return self in (EnergyService.AC, EnergyService.AC_BPT)

    @property
    def is_bpt(self) -> bool:
        return self in (EnergyService.AC_BPT, EnergyService.DC_BPT, EnergyService.DC_ACDP_BPT)


class ControlMode(enum.IntEnum):
    SCHEDULED = 1
    DYNAMIC = 2


class MobilityNeedsMode(enum.IntEnum):
    PROVIDED_BY_EVCC = 1
    PROVIDED_BY_EVCC_AND_SECC = 2


class Energy(enum.Enum):
    """Which -20 message set a session speaks (the negotiated namespace): DC or AC."""

    DC = "dc"
    AC = "ac"

    @property
    def services(self) -> tuple[EnergyService, ...]:
        if self is Energy.DC:
            return (EnergyService.DC, EnergyService.DC_BPT)
        return (EnergyService.AC, EnergyService.AC_BPT)


@dataclass(frozen=True)
class ParameterSet:
    """One offered parameter set: its ID and its named integer parameters."""

    parameter_set_id: int
    control_mode: ControlMode
    parameters: tuple[tuple[str, int], ...]


def parameter_sets(service: EnergyService, *, ac_nominal_voltage: float = 230.0,
                   ac_phases: int = 3) -> tuple[ParameterSet, ...]:
    """Two sets per service: ID 1 scheduled, ID 2 dynamic (same connector and pricing)."""
    sets = []
    for set_id, mode, mobility in ((1, ControlMode.SCHEDULED, MobilityNeedsMode.PROVIDED_BY_EVCC),
                                   (2, ControlMode.DYNAMIC,
                                    MobilityNeedsMode.PROVIDED_BY_EVCC_AND_SECC)):
        if service.is_ac:
            # AC Connector: 1 single phase, 2 three phase
            params: list[tuple[str, int]] = [("Connector", 2 if ac_phases == 3 else 1),
                                             ("EVSENominalVoltage", round(ac_nominal_voltage))]
        else:
            params = [("Connector", 1)]  # DC Connector: 1 Core (CCS)
        params += [("ControlMode", int(mode)), ("MobilityNeedsMode", int(mobility)),
                   ("Pricing", 0)]  # 0: no pricing information
        if service.is_bpt:
            params += [("BPTChannel", 1),      # 1 unified channel
                       ("GeneratorMode", 1)]   # 1 grid following
            if service.is_ac:
                params.append(("GridCodeIslandingDetectionMethod", 1))  # 1 active
        sets.append(ParameterSet(set_id, mode, tuple(params)))
    return tuple(sets)
