"""Plug & Charge benchmark (issue 11).

Part 1, the SECC's own time, in-process (no I/O): ISO 15118-2 PaymentDetailsReq (decode, chain
check against the installed MO root, fresh GenChallenge, encode) and the signed AuthorizationReq
(decode, challenge + XML signature check over EXI, the authorization request, encode), with the
contract chain check and the signature check also timed on their own; the same for ISO 15118-20
AuthorizationReq with a P-521 contract (chain + ECDSA-SHA512 signature).

Part 2, PnC authorization wall time with the local CSMS: the SECC's bus authorizer asks the
OCPP bridge (its own process, as in the product) over the local mosquitto, the bridge sends OCPP
Authorize (eMAID, contract chain, OCSP data) to the test CSMS over a WebSocket and the decision
comes back: what the car waits for across its Ongoing repeats.

    python benchmarks/pnc_bench.py [--iterations 200] [--authorizations 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import exi_schemas  # noqa: E402
from exi_schemas.generated import iso2 as M  # noqa: E402
from secc.iso2 import Iso2Adapter, Iso2Session  # noqa: E402
from secc.pnc import xmldsig  # noqa: E402
from secc.pnc.contract import check_contract, parse_contract_chain  # noqa: E402
from sim.testing.pki import TestPKI  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"  {name:<48} p50 {percentile(ms, 50):7.3f} ms   p99 {percentile(ms, 99):7.3f} ms"
          f"   mean {statistics.mean(ms):7.3f} ms   (n={len(ms)})")


def iso2_message(sid: bytes, field: str, body, signature=None) -> bytes:
    return exi_schemas.encode(M.V2G_Message(
        header=M.MessageHeaderType(session_id=sid, signature=signature),
        body=M.BodyType(**{field: body})))


def iso2_secc_time(iterations: int) -> None:
    pki = TestPKI()
    contract = pki.issue_contract()
    adapter = Iso2Adapter()
    details_req = M.PaymentDetailsReqType(
        e_maid=contract.emaid, contract_signature_cert_chain=M.CertificateChainType(
            id="cc1", certificate=contract.leaf.cert_der,
            sub_certificates=M.SubCertificatesType(certificate=contract.sub_ca_ders)))
    details_t, auth_t, chain_t, sig_t = [], [], [], []
    for _ in range(iterations):
        core = Iso2Session(evse_id="DE*PYS*E0001*1", tls=True, mo_roots=[pki.mo_root.cert])
        core.receive("SessionSetupReq", M.SessionSetupReqType(evccid=bytes(6)), 0.0, bytes(8))
        sid = core.session_id
        core.receive("ServiceDiscoveryReq", M.ServiceDiscoveryReqType(), 0.0, sid)
        core.receive("PaymentServiceSelectionReq", M.PaymentServiceSelectionReqType(
            selected_payment_option="Contract", selected_service_list=M.SelectedServiceListType(
                selected_service=[M.SelectedServiceType(service_id=1)])), 0.0, sid)
        data = iso2_message(sid, "payment_details_req", details_req)
        t0 = time.perf_counter()
        request = adapter.decode(0x8001, data)
        reply = core.receive(request.name, request.body, 0.0, request.session_id)
        adapter.encode(reply.response_name, reply.response, sid)
        details_t.append(time.perf_counter() - t0)
        assert reply.response.response_code == "OK"
        auth = M.AuthorizationReqType(id="ID1", gen_challenge=core.gen_challenge)
        data = iso2_message(sid, "authorization_req", auth, xmldsig.sign([auth],
                                                                         contract.leaf.key))
        t0 = time.perf_counter()
        request = adapter.decode(0x8001, data)
        reply = core.receive(request.name, request.body, 0.0, request.session_id)
        adapter.encode(reply.response_name, reply.response, sid)
        auth_t.append(time.perf_counter() - t0)
        assert reply.response.response_code == "OK"
        # the two expensive parts alone
        t0 = time.perf_counter()
        chain = parse_contract_chain(contract.leaf.cert_der, contract.sub_ca_ders)
        check_contract(chain, contract.emaid, mo_roots=[pki.mo_root.cert])
        chain_t.append(time.perf_counter() - t0)
        signed = exi_schemas.decode(data, "iso2")
        t0 = time.perf_counter()
        xmldsig.verify(signed.header.signature, {"ID1": signed.body.authorization_req},
                       chain.public_key)
        sig_t.append(time.perf_counter() - t0)
    print("ISO 15118-2 (P-256), SECC time per request, decode + core + encode:")
    report("PaymentDetailsReq -> Res", details_t)
    report("AuthorizationReq (signed) -> Res", auth_t)
    report("PaymentDetails + Authorization together", [a + b for a, b in
                                                        zip(details_t, auth_t)])
    report("  of which: contract chain check (2 sub-CAs)", chain_t)
    report("  of which: XML signature check", sig_t)


def iso20_secc_time(iterations: int) -> None:
    from exi_schemas.generated import iso20 as cm
    from secc.pnc import iso20 as pnc

    pki = TestPKI.iso20()
    contract = pki.issue_contract()
    chain_t, sig_t = [], []
    mode = cm.PnC_AReqAuthorizationModeType(
        id="id1", gen_challenge=bytes(16), contract_certificate_chain=cm.ContractCertificateChainType(
            certificate=contract.leaf.cert_der,
            sub_certificates=cm.SubCertificatesType(certificate=contract.sub_ca_ders)))
    signature = pnc.sign_authorization(mode, contract.leaf.key)
    for _ in range(iterations):
        t0 = time.perf_counter()
        chain = pnc.contract_of(mode)
        pnc.check_contract_chain(chain, mo_roots=[pki.mo_root.cert])
        chain_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pnc.verify_signature(signature, mode, chain.public_key)
        sig_t.append(time.perf_counter() - t0)
    print("ISO 15118-20 (P-521, ECDSA-SHA512), AuthorizationReq parts:")
    report("contract chain check (2 sub-CAs)", chain_t)
    report("XML signature check", sig_t)
    report("together", [a + b for a, b in zip(chain_t, sig_t)])


async def csms_wall_time(authorizations: int) -> None:
    from secc.authorization import AuthorizationRequest
    from secc.bus.authorizer import BusAuthorizer
    from secc.bus.client import SeccBusClient, SeccBusConfig
    from secc.common.mqtt import BrokerConfig
    from secc.pnc.contract import ocsp_request_data
    from sim.charger import BUS_PASSWORD, BUS_USER, ChargerBackend

    pki = TestPKI()
    contract = pki.issue_contract()
    chain = parse_contract_chain(contract.leaf.cert_der, contract.sub_ca_ders)
    with tempfile.TemporaryDirectory() as work:
        stack = await ChargerBackend(Path(work)).start()
        try:
            client = SeccBusClient(SeccBusConfig(
                BrokerConfig(stack.broker.host, stack.broker.port, BUS_USER, BUS_PASSWORD),
                evse_id=1, outbox_path=Path(work) / "outbox.db"))
            async with client:
                await client.wait_connected(10)
                authorizer = BusAuthorizer(client)
                times = []
                for n in range(authorizations):
                    request = AuthorizationRequest(
                        "1", f"bench{n}", contract.emaid, "eMAID",
                        contract_chain_pem=contract.chain_pem.decode(),
                        ocsp_request_data=ocsp_request_data(chain, [pki.mo_root.cert]))
                    t0 = time.perf_counter()
                    decision = await authorizer.authorize(request)
                    times.append(time.perf_counter() - t0)
                    assert decision.accepted, decision
        finally:
            await stack.stop()
    print("PnC authorization wall time with the local CSMS (SECC bus -> bridge process -> "
          "OCPP Authorize over WebSocket -> test CSMS -> back):")
    report("eMAID + OCSP data, decision back at the SECC", times[1:] or times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--authorizations", type=int, default=50)
    args = parser.parse_args()
    iso2_secc_time(args.iterations)
    iso20_secc_time(max(20, args.iterations // 4))
    asyncio.run(csms_wall_time(args.authorizations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
