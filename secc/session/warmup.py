"""READY means ready: everything a session of the board's protocols needs, loaded and run once
before the daemon says "SECC ready".

A car allows 2 s for SupportedAppProtocolRes (and 250 ms for a CurrentDemandRes). Importing a
generated codec module or a protocol package costs 0.1-0.3 s on a CCU, several seconds when
the daemon is held to a fraction of a core; done lazily inside the first session after boot,
that is the first car's failed attempt. ``warm_up`` does it all before READY:

* imports the protocol adapters of the configured protocols and every module a session of
  them reaches (``SESSION_MODULES``: the ones otherwise imported inside functions);
* one encode + decode of every request and response of each of their schemas (and of
  SupportedAppProtocol), built by ``exi_schemas.samples``;
* with Plug & Charge: loads ``cryptography`` (named lazily by the PnC modules, see
  ``secc.common.lazy``) and makes and checks one ECDSA signature per curve; without it,
  ``cryptography`` is never loaded (~12 MB of RSS);
* lets the board warm what its first calls need (``Board.warm_up``: e.g. a meter that signs
  in software);
* builds one session core per protocol with the board's real options (PnC trust anchors
  included), so first-time initialisation of the cores happens here too.

``LateImportWatch`` is the check that it worked: it remembers ``sys.modules`` at READY and
names any module imported afterwards (logged once per session, counted in its summary).
"""

from __future__ import annotations

import gc
import importlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from secc.appprotocol.negotiation import Protocol
from secc.common.logs import layer_logger

log = layer_logger("v2g")

#: the EXI schemas a session of each protocol exchanges (SupportedAppProtocol for all)
PROTOCOL_SCHEMAS: dict[Protocol, tuple[str, ...]] = {
    Protocol.DIN70121: ("din",),
    Protocol.ISO15118_2: ("iso2",),
    Protocol.ISO15118_20_DC: ("iso20", "iso20-dc"),
    Protocol.ISO15118_20_AC: ("iso20", "iso20-ac"),
}

#: modules a session reaches through imports inside functions (kept lazy so that a daemon
#: without the feature does not load them); imported here when a session could need them
SESSION_MODULES: tuple[str, ...] = (
    "secc.authorization",
    "secc.session.controller",
    "hal.board",
)
PNC_MODULES: tuple[str, ...] = (
    "secc.pnc.contract",
    "secc.pnc.signed",
    "secc.pnc.xmldsig",
    "secc.pnc.installation",
    "secc.pnc.key_transport",
    "secc.pnc.iso20",
    "secc.common.pki",
    "secc.contract",
    "secc.bus.client",
    "secc.common.mqtt",
    "tempfile",          # the contract cache writes to the certificate store (secc.certstore)
)


@dataclass
class WarmUpReport:
    protocols: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    messages: int = 0                 # encoded + decoded once each
    modules_loaded: int = 0           # modules imported by the warm-up
    seconds: float = 0.0


def warm_up(settings: Any, board: Any = None) -> WarmUpReport:
    """Load and run once what sessions of ``settings.protocols`` need (see the module doc),
    and what ``board``'s first calls need (``Board.warm_up``).

    Synchronous (imports are); the daemon runs it in a worker thread so that its event loop
    (board heartbeats, bus) keeps running meanwhile. Raises when a configured protocol cannot
    be loaded or its codec does not round-trip: better at boot than with a car."""
    from exi_schemas import samples
    from secc.common import lazy
    from secc.session.driver import load_adapter, supported_versions
    from secc.v2g.evse import EvseSnapshot

    started = time.perf_counter()
    before = len(sys.modules)
    report = WarmUpReport()
    for name in SESSION_MODULES:
        importlib.import_module(name)
    pnc = any(options.get("offer_contract") for options in settings.core_options.values())
    if pnc:
        for name in PNC_MODULES:
            importlib.import_module(name)
    versions = supported_versions(settings.protocols)
    schemas = ["appprotocol"]
    for version in versions:
        schemas += [s for s in PROTOCOL_SCHEMAS.get(version.protocol, ()) if s not in schemas]
    for schema in schemas:
        report.messages += samples.round_trip_all(schema)
    from secc import contract  # the bus payload validators, compiled once

    contract.compile_validators()
    if pnc:
        lazy.load_armed("cryptography")
        _warm_crypto()
    if board is not None:
        board.warm_up()
    for version in versions:
        adapter = load_adapter(version.protocol)
        options = dict(settings.core_options.get(adapter.name, {}))
        if adapter.name in ("iso2", "iso20-dc", "iso20-ac"):
            options["tls"] = True
        adapter.new_core(limits=settings.limits, evse=EvseSnapshot(), timers=settings.timers,
                         now=0.0, evse_id=settings.evse_id, quirks=settings.quirks, **options)
    report.protocols = tuple(v.protocol.name for v in versions)
    report.schemas = tuple(schemas)
    report.modules_loaded = len(sys.modules) - before
    report.seconds = time.perf_counter() - started
    return report


def _warm_crypto() -> None:
    """One ECDSA signature made and checked per curve a session meets (P-256: -2 PnC, OCMF
    meters; P-521: -20 PnC): the backend and its tables load here, not in a session."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    for curve, digest in ((ec.SECP256R1(), hashes.SHA256()), (ec.SECP521R1(), hashes.SHA512())):
        key = ec.generate_private_key(curve)
        signature = key.sign(b"pysecc warm-up", ec.ECDSA(digest))
        key.public_key().verify(signature, b"pysecc warm-up", ec.ECDSA(digest))


def freeze_heap() -> int:
    """At READY: collect once, then move every object alive now (modules, codec tables, the
    cores' tables: ~40k tracked objects) out of the garbage collector's reach (``gc.freeze``).
    A full collection over them takes ~15 ms at full speed, 60+ ms on a quarter core: a stall
    in the middle of a session whenever the oldest generation fills up. Returns how many
    objects are frozen. ``thaw_heap`` undoes it (daemon stop)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw_heap() -> None:
    gc.unfreeze()


@dataclass
class LateImportWatch:
    """Names the modules imported after READY (each reported once)."""

    known: set[str] = field(default_factory=set)
    armed: bool = False

    def arm(self) -> None:
        self.known = set(sys.modules)
        self.armed = True

    def new_modules(self) -> list[str]:
        """Modules imported since READY that were not reported yet."""
        if not self.armed or len(sys.modules) == len(self.known):
            return []
        fresh = sorted(set(sys.modules) - self.known)
        self.known.update(fresh)
        if fresh:
            log.warning("modules imported after READY (a session paid for the import)",
                        extra={"modules": ",".join(fresh)})
        return fresh


#: one per process: the daemon arms it at READY, every session reports against it
late_imports = LateImportWatch()
