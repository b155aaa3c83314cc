"""Catalogue rows that need two of the suite's SECC set-ups at once (branch c12x):

* the SalesTariff variants of the pause/resume matrix, ChargeParameterDiscovery AC/DC
  _011/_018/_020/_021 (the car wakes by a BCB toggle) and _030/_032/_034/_035 (the SECC
  wakes, B1 -> B2): resume.py's pause and wake-up against the ``tariff`` board variant
  (tariff.py), then the first CPD of the resumed session with the row's Dep/Max inputs.
* Authorization_015/_016/_017 (ISO-2): a Plug & Charge authorization held through the board's
  control socket (hooks.py's ``{"cmd": "authorization", "mode": "hold"}``) with pnc.py's TLS +
  contract tester: plain (_015, the ``pnc`` daemon), after a CertificateInstallation (_016) or
  a CertificateUpdate (_017) in the same session (the ``cps`` daemon: bus, OCPP bridge, test
  CSMS with its CPS). The signed AuthorizationReq, then bare repeats every second ([V2G2-684]):
  OK + Ongoing each time, contactors open, until the SECC closes inside R4's window.
* PaymentServiceSelection_010 (ISO-2): ExternalPayment at a Contract-only SECC
  (``[v2g].payment_options = ["Contract"]``, the ``contract_only`` daemon: TLS required, PnC).

The tester checks from the decoded responses alone (never our session code): the resumed
session is offered the SAScheduleTuple selected before the pause ([V2G2-741]) for what is
left of its period, and that tuple still carries the SalesTariff, continued on its own time
axis: the entries the car was shown before the pause, each start moved back by the time
elapsed since that offer (an entry already over is left out, the one running now starts at
0), within the car's MaxEntriesSAScheduleTuple, unsigned (EIM).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.conformance import hooks, pki, pnc, resume, tariff, tester
from tests.conformance.runner import Target
from tests.conformance.tester import Closed, Silence

#: CPD_0ii of the resume matrix with a SalesTariff: (ii, who wakes, what the CPD carries)
RESUMED_WITH_TARIFF = ((11, "EV", tariff.NO_DEP), (18, "EV", tariff.DEP),
                       (20, "EV", {**tariff.NO_DEP, **tariff.MAX}),
                       (21, "EV", {**tariff.DEP, **tariff.MAX}),
                       (30, "EVSE", tariff.NO_DEP), (32, "EVSE", tariff.DEP),
                       (34, "EVSE", {**tariff.NO_DEP, **tariff.MAX}),
                       (35, "EVSE", {**tariff.DEP, **tariff.MAX}))
assert tuple(i for i, _, _ in RESUMED_WITH_TARIFF) == resume.CPD_WITH_TARIFF

SLACK_S = 2   # whole seconds of the SECC's clock against the tester's


def _starts_ends(sales_tariff: Any) -> list[tuple[int, int | None]]:
    entries = sales_tariff.sales_tariff_entry
    out = []
    for i, e in enumerate(entries):
        start = e.relative_time_interval.start
        end = entries[i + 1].relative_time_interval.start if i + 1 < len(entries) else (
            start + e.relative_time_interval.duration)
        out.append((start, end))
    return out


def check_continued_tariff(before: Any, after: Any, elapsed: float,
                           budget: int | None) -> None:
    """``after`` (the resumed offer's SalesTariff) is ``before`` (the one offered before the
    pause) continued ``elapsed`` seconds later: same ID and price levels; each entry still
    running or to come, its start moved back by ``elapsed`` (the running one from 0); the
    first ``budget`` of them when the car's MaxEntries leaves that many."""
    assert after.sales_tariff_id == before.sales_tariff_id, \
        (after.sales_tariff_id, before.sales_tariff_id)
    assert after.num_e_price_levels == before.num_e_price_levels
    levels_before = [e.e_price_level for e in before.sales_tariff_entry]
    spans_before = _starts_ends(before)
    expected = [(max(0, s - elapsed), level) for (s, end), level
                in zip(spans_before, levels_before) if end - elapsed > SLACK_S]
    got = [(e.relative_time_interval.start, e.e_price_level) for e in after.sales_tariff_entry]
    if budget is not None:
        expected = expected[:budget]
    assert len(got) == len(expected), f"{len(got)} entries, expected {len(expected)}: {got}"
    for (start, level), (want, want_level) in zip(got, expected):
        assert level == want_level, f"price levels {got} != {expected}"
        assert abs(start - want) <= SLACK_S, \
            f"tariff not continued after {elapsed:.1f} s: starts {[s for s, _ in got]}, " \
            f"expected about {[round(s) for s, _ in expected]}"


def resumed_with_tariff(wake: str):
    """The case: pause (the tariff offered), ``wake`` (EV | EVSE), SessionSetupReq with the
    paused SessionID, the GoodCase to Authorization, then the row's CPD."""
    async def run(target: Target, p: Any, case: Any) -> None:
        paused = await resume.pause(target, p)
        before = next(t for t in paused.schedule.sa_schedule_tuple
                      if t.sa_schedule_tuple_id == paused.selected_tuple_id).sales_tariff
        assert before is not None, "no SalesTariff offered before the pause (tariff board)"
        await resume.WAKE[wake](target, paused)
        ev = await resume.resumed_setup(target, p, paused, "old")
        try:
            await resume.service_discovery_resumed(ev, paused)
            _, res = await ev.request(p.payment_selection,
                                      selected_payment_option=paused.selected_payment)
            assert res.response_code == "OK", res.response_code
            _, res = await ev.until_finished(p.authorization)
            assert res.response_code == "OK" and res.evse_processing == "Finished", res
            over = dict(case.over)
            max_entries = over.get("max_entries_sa_schedule_tuple")
            res, header = await tariff.cpd_with_header(ev, **over)
            elapsed = time.monotonic() - paused.schedule_offered_at
            assert res.evse_processing == "Finished"
            assert header.signature is None, "EIM: the SalesTariff must travel unsigned"
            tuples = {t.sa_schedule_tuple_id: t for t in res.sa_schedule_list.sa_schedule_tuple}
            assert paused.selected_tuple_id in tuples, \
                f"tuple {paused.selected_tuple_id} (selected before the pause) not offered"
            chosen = tuples[paused.selected_tuple_id]
            pmax = chosen.p_max_schedule.p_max_schedule_entry
            # what is left of the period ([V2G2-741]), as resume.py checks it
            left = resume._period(chosen)
            period = resume._period(next(t for t in paused.schedule.sa_schedule_tuple
                                         if t.sa_schedule_tuple_id == paused.selected_tuple_id))
            assert period - elapsed - SLACK_S <= left < period, \
                f"period {left} s after {elapsed:.1f} s; {period} s were offered before"
            after = chosen.sales_tariff
            assert after is not None, "the resumed offer lost the SalesTariff"
            entries = after.sales_tariff_entry
            assert entries[0].relative_time_interval.start == 0
            assert tariff._end(entries[-1].relative_time_interval) == \
                tariff._end(pmax[-1].relative_time_interval), \
                "SalesTariff and PMaxSchedule end apart"
            if max_entries:
                assert len(pmax) + len(entries) <= max_entries, (len(pmax), len(entries))
            check_continued_tariff(before, after, elapsed,
                                   max_entries - len(pmax) if max_entries else None)
        finally:
            ev.conn.close()
    return run


# --------------------------------------------------------------------------- held PnC authorization
DIN_NO_PNC = ("DIN 70121 has no Plug & Charge (ExternalPayment only, no TLS, no contract "
              "certificates): nothing to hold")


async def _provisioned(ev: pnc.PncEv, what: str) -> None:
    """Certificate{Installation,Update} through the SECC and the CPS: OK; the tester decrypts
    the new contract key (checked against the certificate) and uses that contract from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from sim.testing.pki import ContractCredential, Credential

    if what == "Installation":
        body, own_key = pnc.certificate_installation(ev), pki.session_pki().vehicle_leaf.key
    else:
        body, own_key = pnc.certificate_update(ev), ev.contract.leaf.key
    _, _, res = await ev.request_with_header(f"Certificate{what}Req", body, timeout=5.0)
    assert res.response_code == "OK", f"Certificate{what}Res: {res.response_code}"
    chain = res.contract_signature_cert_chain
    cert = x509.load_der_x509_certificate(chain.certificate)
    key = pnc.decrypt_contract_key(res, own_key)
    point = PublicFormat.UncompressedPoint
    assert key.public_key().public_bytes(Encoding.X962, point) == \
        cert.public_key().public_bytes(Encoding.X962, point), "key is not the contract's"
    subs = [Credential(x509.load_der_x509_certificate(der), None)
            for der in chain.sub_certificates.certificate]
    ev.contract = ContractCredential(Credential(cert, key), subs)
    assert ev.contract.emaid == res.e_maid.value != pki.good_contract().emaid


async def ongoing_until_closed(ev: pnc.PncEv, target: Target) -> float:
    """The signed AuthorizationReq, then bare ones every second while the SECC answers
    OK + Ongoing (never Finished, contactors open); the seconds from the first Ongoing until
    the SECC closed the connection."""
    M = ev.p.mod
    _, res = await ev.signed("AuthorizationReq",
                             M.AuthorizationReqType(id="ID1", gen_challenge=ev.gen_challenge))
    first: float | None = None
    while True:
        code = str(res.response_code)
        if not code.startswith("OK"):
            assert code.startswith("FAILED"), code     # the SECC ends the step itself
            await ev.conn.expect_close(5.0)
            break
        assert res.evse_processing != "Finished", \
            "Finished although the authorization is held (inconclusive: the hook did not hold)"
        assert res.evse_processing.startswith("Ongoing"), res.evse_processing
        if first is None:
            first = time.monotonic()
        status = await target.pilot.status()
        assert not status["contactors_closed"], f"contactors closed while held: {status}"
        assert time.monotonic() - first < hooks.WINDOW[1] + tester.SLACK, \
            "still answering Ongoing after the window"
        await asyncio.sleep(hooks.POLL)
        try:
            _, res = await ev.request("AuthorizationReq", M.AuthorizationReqType())
        except (Closed, Silence, ConnectionError, asyncio.IncompleteReadError):
            break                                    # closed without a last answer
    assert first is not None, "never answered Ongoing"
    return time.monotonic() - first


def pnc_authorization_held(provisioning: str | None = None):
    """Authorization_015 (``provisioning`` None), _016 (Installation), _017 (Update)."""
    async def run(target: Target, p: Any, case: Any) -> None:
        await target.pilot.ask({"cmd": "authorization", "mode": "hold"})
        try:
            ev = await pnc.drive_pnc(target, p, "PaymentServiceSelection")
            try:
                if provisioning is not None:
                    await _provisioned(ev, provisioning)
                _, res = await ev.request("PaymentDetailsReq", pnc.payment_details(ev))
                assert res.response_code == "OK", f"PaymentDetailsRes: {res.response_code}"
                ev.gen_challenge = res.gen_challenge
                elapsed = await ongoing_until_closed(ev, target)
            finally:
                ev.conn.close()
            low, high = hooks.WINDOW
            assert low <= elapsed <= high + tester.SLACK, \
                f"closed {elapsed:.2f} s after the first Ongoing (window {low}..{high} s)"
            status = await target.pilot.status()
            assert not status["contactors_closed"] and status["output_current_a"] < 1.0, status
        finally:
            await target.pilot.ask({"cmd": "authorization", "mode": "pass"})
    return run


# --------------------------------------------------------------------------- Contract-only SECC
DIN_EIM_ONLY = ("DIN 70121 knows ExternalPayment only: a DIN SECC cannot be Contract-only "
                "([v2g].payment_options refuses \"din\" without ExternalPayment)")


def start_contract_only_daemon(link, protocol: str):
    """``secc run`` (iso2-dc | iso2-ac) accepting Contract alone: ``[v2g].payment_options =
    ["Contract"]``, PnC on, TLS required (no TCP offered), the suite's test PKI."""
    from tests.conformance.daemon import start_daemon

    return start_daemon(link, protocol, certs=pki.certificate_dir(), tls="required",
                        plug_and_charge=True, payment_options=("Contract",))


def offers_contract_only(ev: Any, res: Any, target: Target) -> None:
    """The ServiceDiscoveryRes before the stimulus offered Contract alone."""
    discovery = next(x.body for x in ev.log if x.response == "ServiceDiscoveryRes")
    offered = list(discovery.payment_option_list.payment_option)
    assert offered == ["Contract"], f"a Contract-only SECC offered {offered}"
