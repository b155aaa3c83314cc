"""Which EV protocol implementations exist: a registry the runner looks things up in.

The runner never names a protocol class. A protocol module registers an :class:`EvProtocol`
(its SupportedAppProtocol namespace per charging mode, version, and a factory building its
sans-I/O EVCC); the runner offers the registered entries in supportedAppProtocolReq and runs
whichever the SECC picks. Adding ISO 15118-20 is one new module, ``sim/evcc/iso20.py``, that
calls :func:`register` at import; it is imported here when present.

An EVCC built by a factory has the interface of :class:`sim.evcc.core.EvccSession`:
``start(now)``, ``receive(payload_type, payload, now)``, ``next_deadline()``,
``handle_timer(now)``, ``fail(failure)``, ``record``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from secc.appprotocol.negotiation import TESLA_NAMESPACE, Protocol
from secc.common.logs import layer_logger
from sim.evcc.battery import Battery
from sim.evcc.core import EvccConfig, Misbehaviour

log = layer_logger("sim")

EvccFactory = Callable[[Battery, EvccConfig, Misbehaviour], Any]


@dataclass(frozen=True)
class EvProtocol:
    """One protocol the simulated EV can speak."""

    name: str                          # CLI name: "din", "iso2", "iso20"
    namespaces: Mapping[str, str]      # charging mode ("dc"/"ac") -> MsgDef namespace
    major: int
    minor: int
    factory: EvccFactory
    payload_types: frozenset[int]      # V2GTP payload types after the negotiation

    @property
    def modes(self) -> frozenset[str]:
        return frozenset(self.namespaces)


@dataclass(frozen=True)
class AppProtocolOffer:
    """One entry the EV puts in supportedAppProtocolReq (priority = position in the list)."""

    namespace: str
    major: int
    minor: int


#: A vendor entry Teslas put first; no charger picks it, so it tests the SECC's skipping.
TESLA_OFFER = AppProtocolOffer(TESLA_NAMESPACE, 0, 7)

PROTOCOLS: dict[str, EvProtocol] = {}


def register(protocol: EvProtocol) -> None:
    PROTOCOLS[protocol.name] = protocol


def get(name: str) -> EvProtocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown EV protocol {name!r}; known: {sorted(PROTOCOLS)}") from None


def by_namespace(namespace: str, mode: str) -> EvProtocol | None:
    for protocol in PROTOCOLS.values():
        if protocol.namespaces.get(mode) == namespace:
            return protocol
    return None


def offer_for(protocol: EvProtocol, mode: str) -> AppProtocolOffer:
    if mode not in protocol.namespaces:
        raise ValueError(f"{protocol.name} has no {mode.upper()} mode")
    return AppProtocolOffer(protocol.namespaces[mode], protocol.major, protocol.minor)


def default_offers(preferred: Iterable[str], mode: str, *,
                   vendor_first: bool = False) -> list[AppProtocolOffer]:
    """The offer list: the named protocols in order (those that have ``mode``), optionally
    behind a Tesla-like vendor entry."""
    offers = [TESLA_OFFER] if vendor_first else []
    for name in preferred:
        protocol = get(name)
        if mode in protocol.namespaces:
            offers.append(offer_for(protocol, mode))
    return offers


def _register_builtin() -> None:
    from sim.evcc.din import DinEvcc
    from sim.evcc.iso2 import Iso2Evcc

    register(EvProtocol("din", {"dc": Protocol.DIN70121.namespace}, 2, 0, DinEvcc,
                        Protocol.DIN70121.payload_types))
    register(EvProtocol("iso2", {"dc": Protocol.ISO15118_2.namespace,
                                 "ac": Protocol.ISO15118_2.namespace}, 2, 0, Iso2Evcc,
                        Protocol.ISO15118_2.payload_types))


_register_builtin()

#: Protocol modules loaded when present; each registers itself when imported. A broken one
#: must not take DIN/ISO-2 down with it: it is logged and left out.
_OPTIONAL_MODULES = ("sim.evcc.iso20",)

for _module in _OPTIONAL_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            log.warning(f"EV protocol module {_module} not loaded: {_exc}")
    except Exception as _exc:  # noqa: BLE001 - reported, never hidden
        log.warning(f"EV protocol module {_module} not loaded: {type(_exc).__name__}: {_exc}")
