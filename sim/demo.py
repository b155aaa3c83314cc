"""`make demo`: run what exists of the stack end to end and show its progress.

Each stage uses real components (mosquitto, network namespaces, the test PKI). Stages whose
layer has not landed yet say so; the demo never pretends a session happened.
"""

from __future__ import annotations

import sys

from secc.common.logs import layer_logger, setup_logging

log = layer_logger("sim")


def stage(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    setup_logging("kv", "INFO")
    stage("bus: private mosquitto on localhost")
    from sim.testing.broker import MosquittoBroker
    with MosquittoBroker() as broker:
        print(f"   mosquitto listening on {broker.host}:{broker.port}")

    stage("PKI: V2G/CPO, MO/contract and OEM chains")
    from secc.common.pki import verify_chain
    from sim.testing.pki import TestPKI
    pki = TestPKI()
    leaf, subs = pki.secc_chain()
    verify_chain(leaf, subs, [pki.v2g_root.cert])
    print(f"   SECC leaf {pki.secc_id} verifies to the V2G root")

    stage("PLC link: EV and SECC network namespaces joined by veth")
    from sim.testing.netns import VethLink, netns_supported
    ok, why = netns_supported()
    if not ok:
        print(f"   skipped: {why}")
    else:
        with VethLink() as link:
            print(f"   EV   {link.namespaces['ev']}/{link.ifnames['ev']} {link.link_local('ev')}")
            print(f"   SECC {link.namespaces['secc']}/{link.ifnames['secc']} {link.link_local('secc')}")

    stage("charging sessions")
    from sim import session_demo

    return session_demo.run()


if __name__ == "__main__":
    sys.exit(main())
