"""Plug & Charge and TLS cases of the catalogue for ISO 15118-2 (AC and DC).

The system under test is ``secc run`` with ``[v2g] tls = "optional"``, ``plug_and_charge``
and ``request_metering_receipt`` on, its certificate directory from the suite's test PKI
(``pki.py``), the bus off: the daemon checks the contract chain against the installed MO
root and the AuthorizationReq signature itself, then its stand-alone authorizer (local
``accept_all``) decides (docs/conformance.md, "Plug & Charge and TLS").

The tester's side, written here for the suite: SDP asking for TLS (security byte 0x00), a
TLS 1.2 client offering only ECDHE-ECDSA-AES128-SHA256 and trusting only the V2G root, the
PnC GoodCase chain (PaymentServiceSelection(Contract), PaymentDetails with the contract chain,
AuthorizationReq signed with the contract key, MeteringReceiptReq signed after every loop
response that asks for one), and XML signatures over EXI fragments (SHA-256 digests of the
signed elements' fragments, ECDSA over SignedInfo's fragment, ``r || s`` on the wire) made
with the project's codec only. It uses none of the SECC's session or signature code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ssl
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import exi_schemas
from exi_schemas.generated import iso2 as ISO2
from sim.testing.pki import ContractCredential, Defect
from tests.conformance import pki
from tests.conformance.runner import Target, plug_in, run_step
from tests.conformance.tester import (
    EXI,
    SDP_REQUEST,
    Connection,
    Ev,
    Exchange,
    body_field,
    foreign_session_id,
    parse_sdp_response,
    sdp_discover,
    v2gtp,
)

TLS_SDP_REQUEST = v2gtp(SDP_REQUEST, bytes([0x00, 0x00]))   # security 0x00 = TLS, TCP
ISO2_TLS_CIPHER = "ECDHE-ECDSA-AES128-SHA256"               # [V2G2-604]

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

#: the PnC GoodCase chain: steps named after the request they send
DC_STEPS = ("SupportedAppProtocol", "SessionSetup", "ServiceDiscovery", "PaymentServiceSelection",
            "PaymentDetails", "Authorization", "ChargeParameterDiscovery", "CableCheck",
            "PreCharge", "PowerDeliveryStart", "ChargeLoop", "PowerDeliveryStop",
            "WeldingDetection", "SessionStop")
AC_STEPS = ("SupportedAppProtocol", "SessionSetup", "ServiceDiscovery", "PaymentServiceSelection",
            "PaymentDetails", "Authorization", "ChargeParameterDiscovery", "PowerDeliveryStart",
            "ChargeLoop", "PowerDeliveryStop", "SessionStop")


# --------------------------------------------------------------------------- the daemon
def start_pnc_daemon(link, protocol: str, with_csms: bool = False):
    """``secc run`` for ``protocol`` (iso2-dc | iso2-ac) with TLS, PnC and receipts.
    ``with_csms``: with the bus on, behind it the OCPP bridge process and the test CSMS whose
    certificate provisioning service issues contracts under the suite's MO root (the
    charger's own processes, ``sim.charger.ChargerBackend``), for the rows that need a CPS."""
    from tests.conformance.daemon import start_daemon

    backend = CsmsBackend(link).start() if with_csms else None
    try:
        daemon = start_daemon(link, protocol, certs=pki.certificate_dir(), tls="optional",
                              plug_and_charge=True, metering_receipts=True,
                              extra_board=backend.bus_section if backend else "")
    except BaseException:
        if backend is not None:
            backend.stop()
        raise
    if backend is None:
        return daemon
    return WithBackend(daemon, backend)


class CsmsBackend:
    """Broker + test CSMS (with a CPS under the suite's PKI) + OCPP bridge, on a thread in the
    SECC namespace (the broker is on that namespace's loopback)."""

    def __init__(self, link) -> None:
        import tempfile
        import threading

        self.link = link
        self.workdir = tempfile.TemporaryDirectory(prefix="pysecc-conformance-csms-")
        self.ready = threading.Event()
        self.done = threading.Event()
        self.bus_section = ""
        self.future = None

    async def _main(self) -> None:
        from pathlib import Path

        from sim.charger import ChargerBackend
        from sim.csms import ContractProvisioning

        backend = ChargerBackend(Path(self.workdir.name))
        try:
            await backend.start()
            backend.csms.provisioning = ContractProvisioning(pki.session_pki(),
                                                             emaid_prefix="DEPYSI")
            self.bus_section = "\n" + backend.board_bus_section()
            self.ready.set()
            await asyncio.to_thread(self.done.wait)
        finally:
            await backend.stop()

    def start(self) -> "CsmsBackend":
        self.future = self.link.run_coroutine("secc", self._main)
        while not self.ready.wait(0.1):
            if self.future.done():
                self.future.result()          # raises why it did not start
                raise RuntimeError("CSMS backend ended before it was ready")
        return self

    def stop(self) -> None:
        self.done.set()
        if self.future is not None:
            try:
                self.future.result(30)
            except Exception:  # noqa: BLE001 - stopping: the daemon's result counts
                pass
        self.workdir.cleanup()


class WithBackend:
    """The daemon under test, stopping its CSMS backend with it."""

    def __init__(self, daemon, backend: CsmsBackend) -> None:
        self.daemon, self.backend = daemon, backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self.daemon, name)

    def stop(self) -> None:
        try:
            self.daemon.stop()
        finally:
            self.backend.stop()


# --------------------------------------------------------------------------- signatures
def fragment_digest(element: Any, name: str | None = None) -> bytes:
    """SHA-256 of the element's EXI fragment (``name``: the element, where its type is
    shared by several, e.g. ContractSignatureCertChain)."""
    return hashlib.sha256(exi_schemas.encode_fragment(element, name)).digest()


def sign(elements: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> Any:
    """The header Signature over ``elements`` ({Id: element}) made with ``key``."""
    M = ISO2
    info = M.SignedInfoType(
        canonicalization_method=M.CanonicalizationMethodType(algorithm=CANONICAL_EXI),
        signature_method=M.SignatureMethodType(algorithm=ECDSA_SHA256),
        reference=[M.ReferenceType(
            uri=f"#{element_id}",
            transforms=M.TransformsType(transform=[M.TransformType(algorithm=CANONICAL_EXI)]),
            digest_method=M.DigestMethodType(algorithm=SHA256),
            digest_value=fragment_digest(element)) for element_id, element in elements.items()])
    der = key.sign(exi_schemas.encode_fragment(info), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return M.SignatureType(signed_info=info, signature_value=M.SignatureValueType(
        value=r.to_bytes(32, "big") + s.to_bytes(32, "big")))


# --------------------------------------------------------------------------- the PnC car
@dataclass
class PncEv(Ev):
    """The tester's car with a contract: the next request can carry a header Signature."""

    contract: ContractCredential | None = None
    gen_challenge: bytes | None = None
    signature: Any = None            # put into the next request's header, then cleared
    last_loop: Any = None            # the last loop response (its MeterInfo is signed)
    receipts: int = 0

    def encode(self, name: str, body: Any, session_id: bytes | None = None) -> bytes:
        M = self.p.mod
        sid = self.session_id if session_id is None else session_id
        signature, self.signature = self.signature, None
        msg = M.V2G_Message(header=M.MessageHeaderType(session_id=sid, signature=signature),
                            body=M.BodyType(**{body_field(M, name): body}))
        return exi_schemas.encode(msg)

    async def request_with_header(self, name: str, body: Any, *, timeout: float = 2.0
                                  ) -> tuple[Any, str, Any]:
        """``name`` with ``body``: (the answer's header, its element name, its body)."""
        start = time.monotonic()
        await self.conn.send_raw(v2gtp(EXI, self.encode(name, body)))
        _, payload = await self.conn.receive(timeout)
        msg = exi_schemas.decode(payload, self.p.schema)
        element, res = exi_schemas.body_element(msg)
        self.log.append(Exchange(name, element, res, time.monotonic() - start))
        return msg.header, element, res

    async def signed(self, name: str, body: Any, key: ec.EllipticCurvePrivateKey | None = None,
                     *, sign_as: Any = None, **kwargs: Any) -> tuple[str, Any]:
        """``name`` with ``body``, its header Signature over ``sign_as`` (default: the body)
        made with ``key`` (default: the contract key)."""
        key = key if key is not None else self.contract.leaf.key
        self.signature = sign({body.id: sign_as if sign_as is not None else body}, key)
        return await self.request(name, body, **kwargs)


def client_context() -> ssl.SSLContext:
    """TLS 1.2 with the one -2 suite, the V2G root as the only trust anchor, no client
    certificate (-2 TLS is server-authenticated only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ISO2_TLS_CIPHER)
    ctx.check_hostname = False          # the SECC's name is its SECC ID, not a host name
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=pki.session_pki().v2g_root.cert_pem.decode())
    return ctx


async def tls_sdp(target: Target) -> dict[str, Any]:
    answer = await sdp_discover(target.interface, TLS_SDP_REQUEST)
    assert answer is not None, "no SDP response to a TLS request"
    return parse_sdp_response(answer)


async def connect_tls(target: Target, p: Any, contract: ContractCredential | None = None) -> PncEv:
    res = await tls_sdp(target)
    assert res["security"] == 0x00, f"SDP offered security {res['security']:#x}, not TLS"
    conn = await Connection.open(target.interface, res["address"], res["port"],
                                 ssl_context=client_context())
    return PncEv(p, conn, contract=contract or pki.good_contract())


def tls_info(ev: Ev) -> tuple[str | None, str | None, dict[str, Any]]:
    """(TLS version, cipher, the SECC's verified certificate as ``getpeercert()`` gives it)."""
    obj = ev.conn.writer.get_extra_info("ssl_object")
    return obj.version(), (obj.cipher() or (None,))[0], obj.getpeercert() or {}


def common_name(peer: dict[str, Any]) -> str | None:
    return next((value for rdn in peer.get("subject", ()) for key, value in rdn
                 if key == "commonName"), None)


def steps_of(p: Any) -> tuple[str, ...]:
    return AC_STEPS if p.ac else DC_STEPS


def payment_details(ev: PncEv, contract: ContractCredential | None = None,
                    emaid: str | None = None) -> Any:
    contract = contract or ev.contract
    M = ev.p.mod
    return M.PaymentDetailsReqType(
        e_maid=emaid or contract.emaid,
        contract_signature_cert_chain=M.CertificateChainType(
            certificate=contract.leaf.cert_der,
            sub_certificates=M.SubCertificatesType(certificate=contract.sub_ca_ders)))


def root_ids(ev: PncEv) -> Any:
    M = ev.p.mod
    root = pki.session_pki().v2g_root.cert
    return M.ListOfRootCertificateIDsType(root_certificate_id=[M.X509IssuerSerialType(
        x509_issuer_name=root.issuer.rfc4514_string(), x509_serial_number=root.serial_number)])


def certificate_installation(ev: PncEv) -> Any:
    """CertificateInstallationReq with the OEM provisioning certificate, signed with its key."""
    M = ev.p.mod
    body = M.CertificateInstallationReqType(
        id="ID1", oem_provisioning_cert=pki.session_pki().vehicle_leaf.cert_der,
        list_of_root_certificate_i_ds=root_ids(ev))
    ev.signature = sign({"ID1": body}, pki.session_pki().vehicle_leaf.key)
    return body


def certificate_update(ev: PncEv) -> Any:
    """CertificateUpdateReq with the contract chain and eMAID, signed with the contract key."""
    M = ev.p.mod
    details = payment_details(ev)
    body = M.CertificateUpdateReqType(
        id="ID1", contract_signature_cert_chain=details.contract_signature_cert_chain,
        e_maid=ev.contract.emaid, list_of_root_certificate_i_ds=root_ids(ev))
    ev.signature = sign({"ID1": body}, ev.contract.leaf.key)
    return body


async def authorize(ev: PncEv, limit: float = 60.0) -> Any:
    """The signed AuthorizationReq, then bare repeats while Ongoing ([V2G2-684])."""
    M = ev.p.mod
    _, res = await ev.signed("AuthorizationReq",
                             M.AuthorizationReqType(id="ID1", gen_challenge=ev.gen_challenge))
    deadline = asyncio.get_running_loop().time() + limit
    while str(res.response_code).startswith("OK") and res.evse_processing == "Ongoing":
        assert asyncio.get_running_loop().time() < deadline, "Authorization Ongoing too long"
        await asyncio.sleep(0.2)
        _, res = await ev.request("AuthorizationReq", M.AuthorizationReqType())
    return res


def receipt(ev: PncEv, loop_res: Any, **change: Any) -> Any:
    M = ev.p.mod
    return M.MeteringReceiptReqType(id="MR1", session_id=ev.session_id,
                                    sa_schedule_tuple_id=loop_res.sa_schedule_tuple_id,
                                    meter_info=dataclasses.replace(loop_res.meter_info, **change))


async def loop_once(ev: PncEv, target: Target) -> Any:
    """One loop request; a signed MeteringReceiptReq when the answer asks for one."""
    name = "ChargingStatusReq" if ev.p.ac else "CurrentDemandReq"
    _, res = await ev.request(name)
    assert str(res.response_code).startswith("OK"), f"{name}: {res.response_code}"
    ev.last_loop = res
    if res.receipt_required:
        _, answer = await ev.signed("MeteringReceiptReq", receipt(ev, res))
        assert answer.response_code == "OK", f"MeteringReceipt: {answer.response_code}"
        ev.receipts += 1
    return res


async def run_pnc_step(ev: PncEv, target: Target, step: str) -> None:
    if step == "PaymentServiceSelection":
        _, res = await ev.request("PaymentServiceSelectionReq",
                                  selected_payment_option="Contract")
        assert res.response_code == "OK", f"{step}: {res.response_code}"
    elif step == "PaymentDetails":
        _, res = await ev.request("PaymentDetailsReq", payment_details(ev))
        assert res.response_code == "OK", f"{step}: {res.response_code}"
        ev.gen_challenge = res.gen_challenge
    elif step == "Authorization":
        res = await authorize(ev)
        assert res.response_code == "OK" and res.evse_processing == "Finished", res
    elif step == "ChargeLoop":
        for _ in range(3):
            await loop_once(ev, target)
            await asyncio.sleep(0.1)
    elif step == "ServiceDiscovery":
        _, res = await ev.request("ServiceDiscoveryReq")
        assert res.response_code == "OK", res.response_code
        assert "Contract" in res.payment_option_list.payment_option, \
            f"Contract not offered over TLS: {res.payment_option_list.payment_option}"
    else:
        await run_step(ev, target, step)


async def drive_pnc(target: Target, p: Any, step: str | None,
                    contract: ContractCredential | None = None) -> PncEv:
    """Plug in, SDP for TLS, TLS connection, then the PnC GoodCase chain up to ``step``."""
    await plug_in(target)
    ev = await connect_tls(target, p, contract)
    if step is None:
        return ev
    chain = steps_of(p)
    assert step in chain, f"{step} is not a PnC step of {p.name}"
    for name in chain[:chain.index(step) + 1]:
        await run_pnc_step(ev, target, name)
    return ev


# --------------------------------------------------------------------------- checks
def expect_code(res: Any, expected: str) -> str:
    code = str(res.response_code)
    if expected.endswith("*"):
        assert code.startswith(expected[:-1]), f"{code}, expected {expected}"
    else:
        assert code == expected, f"{code}, expected {expected}"
    return code


async def finish(ev: PncEv, code: str) -> None:
    """A FAILED answer ends the session: the SECC closes within 5 s."""
    if code.startswith("FAILED"):
        await ev.conn.expect_close(5.0)


# --------------------------------------------------------------------------- custom flows
def pnc_row(target: Target, p: Any, case: Any):
    """A plain row run over the PnC chain: drive to ``case.after``, send ``case.send`` (its
    default request with ``case.over``, SessionID per ``case.sid``), expect ``case.expect``
    and the close of a FAILED answer, then ``case.check``."""
    async def run() -> None:
        ev = await drive_pnc(target, p, case.after)
        try:
            sid = {"own": None, "foreign": foreign_session_id(ev.session_id)}[case.sid]
            body = None
            if case.send == "PaymentDetailsReq":
                body = payment_details(ev)
            elif case.send == "AuthorizationReq":
                body = ev.p.mod.AuthorizationReqType(id="ID1", gen_challenge=ev.gen_challenge)
                ev.signature = sign({"ID1": body}, ev.contract.leaf.key)
            elif case.send == "CertificateInstallationReq":
                body = certificate_installation(ev)
            elif case.send == "CertificateUpdateReq":
                body = certificate_update(ev)
            element, res = await ev.request(case.send, body, session_id=sid, **case.over)
            assert element == case.send[:-3] + "Res", f"answered {element} to {case.send}"
            code = expect_code(res, case.expect)
            if case.check is not None:
                result = case.check(ev, res, target)
                if asyncio.iscoroutine(result):
                    await result
            await finish(ev, code)
        finally:
            ev.conn.close()
    return run()


def fresh_challenge(ev: PncEv, res: Any, target: Target) -> None:
    """PaymentDetailsRes OK: a 16-byte GenChallenge ([V2G2-825]), not all zero."""
    assert isinstance(res.gen_challenge, bytes) and len(res.gen_challenge) == 16, res
    assert res.gen_challenge != bytes(16)


def authorization_ok(target: Target, p: Any, case: Any):
    """AuthorizationReq signed with the contract key over our GenChallenge: OK, Finished
    (Ongoing with bare repeats allowed inside 60 s); then ChargeParameterDiscovery OK."""
    async def run() -> None:
        ev = await drive_pnc(target, p, "PaymentDetails")
        try:
            res = await authorize(ev)
            assert res.response_code == "OK" and res.evse_processing == "Finished", res
            await run_pnc_step(ev, target, "ChargeParameterDiscovery")
        finally:
            ev.conn.close()
    return run()


def sdp_tls(target: Target, p: Any, case: Any):
    """SDP asking for TLS: Security 0x00, TCP, a link-local address and a port 49152..65535
    where a TLS 1.2 server with the -2 suite presents a chain to the V2G root."""
    async def run() -> None:
        await plug_in(target)
        res = await tls_sdp(target)
        assert (res["version"], res["inverse"], res["type"], res["length"]) == \
            (0x01, 0xFE, 0x9001, 0x14), res
        assert res["security"] == 0x00 and res["transport"] == 0x00, res
        assert res["address"].startswith("fe80:") and 49152 <= res["port"] <= 65535, res
        conn = await Connection.open(target.interface, res["address"], res["port"],
                                     ssl_context=client_context())
        try:
            ev = PncEv(p, conn)
            version, cipher, peer = tls_info(ev)
            assert (version, cipher) == ("TLSv1.2", ISO2_TLS_CIPHER), (version, cipher)
            # the SECC leaf (CN = SECC ID), verified up to the V2G root through its sub-CAs
            assert common_name(peer) == pki.session_pki().secc_id, peer.get("subject")
        finally:
            conn.close()
    return run()


def sap_over_tls(target: Target, p: Any, case: Any):
    """SupportedAppProtocolReq inside TLS: OK_SuccessfulNegotiation with our SchemaID, and
    the session goes on inside TLS (SessionSetup OK)."""
    async def run() -> None:
        ev = await drive_pnc(target, p, None)
        try:
            res = await ev.handshake()
            assert res.response_code == "OK_SuccessfulNegotiation" and res.schema_id == 1, res
            _, setup = await ev.request("SessionSetupReq")
            assert setup.response_code == "OK_NewSessionEstablished", setup.response_code
            assert tls_info(ev)[:2] == ("TLSv1.2", ISO2_TLS_CIPHER)
        finally:
            ev.conn.close()
    return run()


def tls_sdp_after_communication_setup(target: Target, p: Any, case: Any):
    """No SDP until the CommunicationSetup time (20 s) has passed, then a TLS request: no
    answer (the SDP server is stopped)."""
    async def run() -> None:
        await plug_in(target)
        await asyncio.sleep(20.5)
        assert await sdp_discover(target.interface, TLS_SDP_REQUEST, tries=5, wait=0.25) \
            is None, "SDP still answered after the CommunicationSetup time"
    return run()


def payment_details_with(defect: str, expect: str):
    """PaymentDetailsReq with a broken contract: ``expect`` (a code or ``FAILED*``) and close."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        contract = {"leaf_expired": lambda: pki.contract(leaf=Defect.EXPIRED),
                    "sub1_expired": lambda: pki.contract(sub1=Defect.EXPIRED),
                    "sub2_expired": lambda: pki.contract(sub2=Defect.EXPIRED)}[defect]()
        ev = await drive_pnc(target, p, "PaymentServiceSelection")
        try:
            _, res = await ev.request("PaymentDetailsReq", payment_details(ev, contract))
            await finish(ev, expect_code(res, expect))
            assert not str(res.response_code).startswith("OK")
        finally:
            ev.conn.close()
    return flow


def bad_authorization(how: str, expect: str):
    """AuthorizationReq after PaymentDetails with one defect (_007 a signed other challenge,
    _010 the wrong key, _011 a body changed after signing): ``expect`` and close."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        ev = await drive_pnc(target, p, "PaymentDetails")
        try:
            M = ev.p.mod
            ours = ev.gen_challenge
            other = bytes([ours[0] ^ 0xFF]) + ours[1:]
            good = M.AuthorizationReqType(id="ID1", gen_challenge=ours)
            if how == "other_challenge":
                body = M.AuthorizationReqType(id="ID1", gen_challenge=other)
                _, res = await ev.signed("AuthorizationReq", body)
            elif how == "wrong_key":
                _, res = await ev.signed("AuthorizationReq", good, pki.stranger_key().key)
            else:   # changed after signing: the signature is over the original body
                body = M.AuthorizationReqType(id="ID1", gen_challenge=other)
                _, res = await ev.signed("AuthorizationReq", body, sign_as=good)
            await finish(ev, expect_code(res, expect))
        finally:
            ev.conn.close()
    return flow


def certificate_request(what: str, defect: str, expect: str):
    """Certificate{Installation,Update}Req (in state PaymentDetails, after selecting
    Contract) with one defect; the SECC refuses it itself, before anything goes to a CSMS:
    ``expect`` and close. Installation: wrong_key (_005), changed (_006), expired OEM
    provisioning certificate (_007). Update: wrong_key (_005), changed (_006), order of the
    sub-CAs inverted (_007), leaf / sub-CA 2 / sub-CA 1 / whole chain of a foreign PKI
    (_008.._011), eMAID in the body wrong / malformed (_012/_013), eMAID in the certificate
    wrong / malformed (_014/_015), expired contract (_016)."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        ev = await drive_pnc(target, p, "PaymentServiceSelection")
        try:
            M = ev.p.mod
            name = f"Certificate{what}Req"
            if what == "Installation":
                signer = pki.session_pki().vehicle_leaf
                if defect == "expired":
                    signer = pki.expired_oem_leaf()
                body = M.CertificateInstallationReqType(
                    id="ID1", oem_provisioning_cert=signer.cert_der,
                    list_of_root_certificate_i_ds=root_ids(ev))
                key = signer.key
            else:
                good, foreign = pki.good_contract(), pki.foreign_contract()
                contract, emaid, key = good, good.emaid, good.leaf.key
                certs = [good.leaf.cert_der, *good.sub_ca_ders]
                if defect == "order":
                    certs = [certs[0], certs[2], certs[1]]
                elif defect == "foreign_leaf":
                    certs[0], key = foreign.leaf.cert_der, foreign.leaf.key
                elif defect == "foreign_sub2":
                    certs[1] = foreign.sub_ca_ders[0]
                elif defect == "foreign_sub1":
                    certs[2] = foreign.sub_ca_ders[1]
                elif defect == "foreign_chain":
                    certs = [foreign.leaf.cert_der, *foreign.sub_ca_ders]
                    key = foreign.leaf.key
                elif defect == "emaid_wrong":
                    emaid = "DEPYSC7654321X"
                elif defect == "emaid_malformed":
                    emaid = "??-NOT-AN-EMAID"
                elif defect in ("cert_emaid_wrong", "cert_emaid_malformed", "expired"):
                    contract = pki.contract(
                        emaid={"cert_emaid_wrong": "DEPYSC7654321X",
                               "cert_emaid_malformed": "not an eMAID!"}.get(defect),
                        leaf=Defect.EXPIRED if defect == "expired" else None)
                    certs = [contract.leaf.cert_der, *contract.sub_ca_ders]
                    key = contract.leaf.key
                body = M.CertificateUpdateReqType(
                    id="ID1", contract_signature_cert_chain=M.CertificateChainType(
                        certificate=certs[0],
                        sub_certificates=M.SubCertificatesType(certificate=certs[1:])),
                    e_maid=emaid, list_of_root_certificate_i_ds=root_ids(ev))
            if defect == "wrong_key":
                key = pki.stranger_key().key if what == "Update" else \
                    pki.good_contract().leaf.key
            if defect == "changed":   # signed, then the root list changed
                signed_body = body
                body = dataclasses.replace(body, list_of_root_certificate_i_ds=M.
                                           ListOfRootCertificateIDsType(root_certificate_id=[
                                               M.X509IssuerSerialType(
                                                   x509_issuer_name="CN=Other Root",
                                                   x509_serial_number=1)]))
                element, res = await ev.signed(name, body, key, sign_as=signed_body,
                                               timeout=5.0)
            else:
                element, res = await ev.signed(name, body, key, timeout=5.0)
            assert element == name[:-3] + "Res", element
            await finish(ev, expect_code(res, expect))
        finally:
            ev.conn.close()
    return flow


def certificate_provisioned(what: str):
    """A good, signed Certificate{Installation,Update}Req (_001): the SECC forwards it to the
    CSMS and relays the CPS's answer: OK within the EV's 5 s, with the CPS's chain, the new
    contract chain (CN = the new eMAID, issued under the installed MO root), an encrypted
    private key (IV + ciphertext, 48 bytes), the CPS's ephemeral public key (P-256, 65
    bytes), the eMAID, and the CPS's header signature over those four elements, made with
    the key of the SAProvisioningCertificateChain's leaf."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        from cryptography import x509
        ev = await drive_pnc(target, p, "PaymentServiceSelection")
        try:
            name = f"Certificate{what}Req"
            body = certificate_installation(ev) if what == "Installation" \
                else certificate_update(ev)
            header, element, res = await ev.request_with_header(name, body, timeout=5.0)
            assert element == name[:-3] + "Res", element
            assert res.response_code == "OK", res.response_code
            assert ev.log[-1].seconds < 5.0, f"answered after {ev.log[-1].seconds:.1f} s"
            cps = x509.load_der_x509_certificate(res.sa_provisioning_certificate_chain
                                                 .certificate)
            leaf = x509.load_der_x509_certificate(res.contract_signature_cert_chain.certificate)
            emaid = res.e_maid.value
            assert leaf.subject.get_attributes_for_oid(
                x509.oid.NameOID.COMMON_NAME)[0].value == emaid
            mo_root = pki.session_pki().mo_root.cert
            top = x509.load_der_x509_certificate(
                res.contract_signature_cert_chain.sub_certificates.certificate[-1])
            top.verify_directly_issued_by(mo_root)
            assert len(res.contract_signature_encrypted_private_key.value) == 48
            assert len(res.d_hpublickey.value) == 65 and res.d_hpublickey.value[0] == 0x04
            signed = {e.id: (e, name) for e, name in (
                (res.contract_signature_cert_chain, "ContractSignatureCertChain"),
                (res.contract_signature_encrypted_private_key,
                 "ContractSignatureEncryptedPrivateKey"),
                (res.d_hpublickey, "DHpublickey"), (res.e_maid, "eMAID"))}
            verify(header.signature, signed, cps.public_key())
        finally:
            ev.conn.close()
    return flow


def decrypt_contract_key(res: Any, own_key: ec.EllipticCurvePrivateKey
                         ) -> ec.EllipticCurvePrivateKey:
    """The car's half of the -2 key transport (§7.9.2.4.2): ECDH with the CPS's ephemeral
    key, ConcatKDF(SHA-256, OtherInfo 01 'U' 'V') to an AES-128 key, AES-CBC with the IV in
    front of the two encrypted blocks."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), res.d_hpublickey.value)
    aes_key = ConcatKDFHash(algorithm=hashes.SHA256(), length=16,
                            otherinfo=b"\x01UV").derive(own_key.exchange(ec.ECDH(), peer))
    data = res.contract_signature_encrypted_private_key.value
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(data[:16])).decryptor()
    value = int.from_bytes(decryptor.update(data[16:]) + decryptor.finalize(), "big")
    return ec.derive_private_key(value, ec.SECP256R1())


def after_provisioning(what: str, until: str):
    """PaymentDetails_002/_003 and Authorization_012/_013: a contract installed (or updated)
    through the SECC in this session — the key decrypted with the OEM provisioning (or old
    contract) key and matching the new certificate — then PaymentDetailsReq with it: OK and a
    fresh 16-byte GenChallenge; ``until`` = Authorization: AuthorizationReq signed with the
    new contract key: OK, Finished (the CSMS authorizes the new eMAID)."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        from sim.testing.pki import Credential
        ev = await drive_pnc(target, p, "PaymentServiceSelection")
        try:
            if what == "Installation":
                body, own_key = certificate_installation(ev), pki.session_pki().vehicle_leaf.key
            else:
                body, own_key = certificate_update(ev), ev.contract.leaf.key
            _, element, res = await ev.request_with_header(f"Certificate{what}Req", body,
                                                           timeout=5.0)
            assert res.response_code == "OK", res.response_code
            chain = res.contract_signature_cert_chain
            cert = x509.load_der_x509_certificate(chain.certificate)
            key = decrypt_contract_key(res, own_key)
            point = PublicFormat.UncompressedPoint
            assert key.public_key().public_bytes(Encoding.X962, point) == \
                cert.public_key().public_bytes(Encoding.X962, point), "key is not the contract's"
            subs = [Credential(x509.load_der_x509_certificate(der), None)
                    for der in chain.sub_certificates.certificate]
            ev.contract = ContractCredential(Credential(cert, key), subs)
            assert ev.contract.emaid == res.e_maid.value and \
                ev.contract.emaid != pki.good_contract().emaid
            _, res = await ev.request("PaymentDetailsReq", payment_details(ev))
            assert res.response_code == "OK", res.response_code
            fresh_challenge(ev, res, target)
            ev.gen_challenge = res.gen_challenge
            if until == "Authorization":
                res = await authorize(ev)
                assert res.response_code == "OK" and res.evse_processing == "Finished", res
        finally:
            ev.conn.close()
    return flow


def verify(signature: Any, elements: dict[str, tuple[Any, str]], public_key: Any) -> None:
    """The tester's own check of a header Signature: every Reference names one of
    ``elements`` ({Id: (element, element name)}) and matches its fragment digest, all are
    referenced, and the ECDSA
    signature over SignedInfo's fragment holds."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    assert signature is not None, "no header Signature"
    info = signature.signed_info
    referenced = set()
    for reference in info.reference:
        element_id = reference.uri[1:]
        assert element_id in elements, f"Reference {reference.uri} names nothing signed"
        assert reference.digest_value == fragment_digest(*elements[element_id]), \
            f"digest of {reference.uri}"
        referenced.add(element_id)
    assert referenced == set(elements), f"not all signed: {set(elements) - referenced}"
    raw = signature.signature_value.value
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, exi_schemas.encode_fragment(info), ec.ECDSA(hashes.SHA256()))


def loop_with_receipts(reading: bool = False):
    """The charge loop of a PnC session (CurrentDemand_002/007/009, ChargingStatus_002/
    007/009): OK in time (250 ms DC, 2 s AC), ReceiptRequired true with MeterInfo (MeterID;
    MeterReading for 009), the receipt signed with the contract key answered OK, and the
    loop goes on."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        ev = await drive_pnc(target, p, "PowerDeliveryStart")
        try:
            name = "ChargingStatusReq" if p.ac else "CurrentDemandReq"
            _, res = await ev.request(name)
            limit = 2.0 if p.ac else 0.25
            assert ev.log[-1].seconds < limit, f"{name} answered after {ev.log[-1].seconds} s"
            assert res.response_code == "OK", res.response_code
            assert res.receipt_required is True, "PnC with receipts: ReceiptRequired false"
            assert res.evseid and res.sa_schedule_tuple_id == 1
            assert res.meter_info is not None and res.meter_info.meter_id
            if reading:
                assert res.meter_info.meter_reading is not None
            _, answer = await ev.signed("MeteringReceiptReq", receipt(ev, res))
            assert answer.response_code == "OK", answer.response_code
            await loop_once(ev, target)
            assert ev.receipts == 1
        finally:
            ev.conn.close()
    return flow


def metering_receipt(stimulus: str, expect: str):
    """After a loop response asking for a receipt: ``stimulus`` = good (signed, _001),
    sequence (ServiceDiscoveryReq, _002), foreign (foreign SessionID, _003), reading (a
    correctly signed other MeterReading, _004), wrong_key (_006), changed (MeterInfo changed
    after signing, _007)."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        ev = await drive_pnc(target, p, "PowerDeliveryStart")
        try:
            name = "ChargingStatusReq" if p.ac else "CurrentDemandReq"
            _, res = await ev.request(name)
            assert res.response_code == "OK" and res.receipt_required is True, res
            good = receipt(ev, res)
            if stimulus == "good":
                element, answer = await ev.signed("MeteringReceiptReq", good)
            elif stimulus == "sequence":
                element, answer = await ev.request("ServiceDiscoveryReq")
            elif stimulus == "foreign":
                element, answer = await ev.signed("MeteringReceiptReq", good,
                                                  session_id=foreign_session_id(ev.session_id))
            elif stimulus == "reading":
                element, answer = await ev.signed("MeteringReceiptReq", receipt(
                    ev, res, meter_reading=(res.meter_info.meter_reading or 0) + 1))
            elif stimulus == "wrong_key":
                element, answer = await ev.signed("MeteringReceiptReq", good,
                                                  pki.stranger_key().key)
            else:   # changed after signing
                changed = receipt(ev, res, meter_reading=(res.meter_info.meter_reading or 0) + 1)
                element, answer = await ev.signed("MeteringReceiptReq", changed, sign_as=good)
            expected_element = "ServiceDiscoveryRes" if stimulus == "sequence" \
                else "MeteringReceiptRes"
            assert element == expected_element, element
            code = expect_code(answer, expect)
            await finish(ev, code)
            if code == "OK":     # and the loop goes on
                _, res = await ev.request(name)
                assert res.response_code == "OK"
        finally:
            ev.conn.close()
    return flow


def pnc_silence_after(step: str, low: float, high: float) -> Any:
    """The EV goes silent after ``step`` of the PnC chain (ServiceDetail_010 after
    ServiceDiscovery, Authorization_009 after PaymentDetails) or after a loop response that
    asked for a receipt (MeteringReceipt_005): the SECC closes between ``low`` and ``high``
    seconds later (V2G_SECC_Sequence_Timeout, 60 s) and stops the energy transfer."""
    async def flow(target: Target, p: Any, case: Any) -> None:
        from tests.conformance.cases import power_stopped
        if step == "Receipt":
            ev = await drive_pnc(target, p, "PowerDeliveryStart")
            name = "ChargingStatusReq" if p.ac else "CurrentDemandReq"
            _, res = await ev.request(name)
            assert res.receipt_required is True, res
        else:
            ev = await drive_pnc(target, p, step)
        try:
            waited = await ev.conn.expect_close(high)
            assert waited >= low, f"closed after {waited:.1f} s, before {low} s"
            if step == "Receipt":
                await power_stopped(ev, None, target)
        finally:
            ev.conn.close()
    return flow
