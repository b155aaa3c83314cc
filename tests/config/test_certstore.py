"""The SECC's certificate store (``secc.certstore``) and ``secc certs``: roots, the SECC chain
per V2G root, cached contract chains with OCSP status, expiry warnings, atomic writes and
strict permissions."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from secc.certstore import (
    MAX_CONTRACTS,
    CertificateStore,
    RootKind,
    StoreError,
    key_sha1,
    pem,
)
from secc.cli import main as cli
from sim.testing.pki import TestPKI


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def store(tmp_path, test_pki) -> CertificateStore:
    s = CertificateStore(tmp_path / "certs")
    s.import_root(RootKind.V2G, test_pki.v2g_root.cert_pem)
    s.import_root(RootKind.MO, test_pki.mo_root.cert_pem)
    s.import_root(RootKind.OEM, test_pki.oem_root.cert_pem)
    s.install_secc_chain(test_pki.secc_leaf.cert_pem + test_pki.cpo_sub2.cert_pem
                         + test_pki.cpo_sub1.cert_pem, test_pki.secc_leaf.key)
    return s


def test_chain_filed_under_its_v2g_root_and_default_with_strict_modes(store, test_pki):
    folder = store.path / "chains" / key_sha1(test_pki.v2g_root.cert)
    assert (folder / "secc_chain.pem").is_file() and (store.path / "secc_chain.pem").is_file()
    assert mode(store.path) == 0o700
    assert mode(folder / "secc_key.pem") == mode(store.path / "secc_key.pem") == 0o600
    assert mode(store.path / "v2g_root.pem") == 0o644
    assert store.verify() == []
    assert [c.leaf.subject for c in store.secc_chains()] == [test_pki.secc_leaf.cert.subject] * 2


def test_import_root_ignores_duplicates_and_refuses_non_roots(store, test_pki):
    assert store.import_root(RootKind.V2G, test_pki.v2g_root.cert_pem) == []
    with pytest.raises(StoreError, match="not a self-signed root"):
        store.import_root(RootKind.V2G, test_pki.cpo_sub1.cert_pem)
    with pytest.raises(StoreError, match="not an X.509"):
        store.import_root(RootKind.MO, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END")
    other = TestPKI()
    assert len(store.import_root(RootKind.V2G, other.v2g_root.cert_pem)) == 1
    assert len(store.roots(RootKind.V2G)) == 2


def test_chain_with_a_foreign_key_or_an_unknown_root_is_refused(store, test_pki):
    chain = test_pki.secc_leaf.cert_pem + test_pki.cpo_sub2.cert_pem + test_pki.cpo_sub1.cert_pem
    with pytest.raises(StoreError, match="key does not belong"):
        store.install_secc_chain(chain, test_pki.oem_sub.key)
    other = TestPKI()
    with pytest.raises(StoreError, match="SECC chain refused"):  # same root name, other key
        store.install_secc_chain(other.secc_leaf.cert_pem + other.cpo_sub2.cert_pem
                                 + other.cpo_sub1.cert_pem, other.secc_leaf.key)


def test_second_pki_chain_is_filed_apart_and_the_default_stays(store, test_pki):
    other = TestPKI()
    store.import_root(RootKind.V2G, other.v2g_root.cert_pem)
    store.install_secc_chain(other.secc_leaf.cert_pem + other.cpo_sub2.cert_pem
                             + other.cpo_sub1.cert_pem, other.secc_leaf.key)
    default = x509.load_pem_x509_certificates((store.path / "secc_chain.pem").read_bytes())[0]
    assert default.subject == test_pki.secc_leaf.cert.subject
    assert default.public_key() == test_pki.secc_leaf.cert.public_key()
    assert len(list((store.path / "chains").iterdir())) == 2
    assert store.verify() == []


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(store, test_pki, monkeypatch):
    before = (store.path / "mo_root.pem").read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.import_root(RootKind.MO, TestPKI().mo_root.cert_pem)
    assert (store.path / "mo_root.pem").read_bytes() == before
    assert not [p for p in store.path.iterdir() if p.name.startswith(".")]


def test_contract_cache_keeps_the_newest_five_with_ocsp_status(store, test_pki):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for n in range(MAX_CONTRACTS + 2):
        contract = test_pki.issue_contract(f"DEPYSC{n:07d}X")
        store.cache_contract(contract.emaid, [contract.leaf.cert] + [c.cert for c in
                                                                    contract.sub_cas],
                             ocsp_status="Good" if n % 2 else "Revoked",
                             now=t0 + dt.timedelta(minutes=n))
    cached = store.contracts()
    assert [c[0] for c in cached] == [f"DEPYSC{n:07d}X" for n in range(6, 1, -1)]
    assert cached[0][2]["ocsp"]["status"] == "Revoked" and cached[1][2]["ocsp"]["status"] == \
        "Good"
    assert store.verify() == []


def test_expiry_warning_ahead_of_time(store, test_pki):
    soon = test_pki.issue_leaf(test_pki.cpo_sub2, "DEPYSE00002", "pysecc CPO", domain="CPO",
                               days=10)
    store.install_secc_chain(pem([soon.cert, test_pki.cpo_sub2.cert, test_pki.cpo_sub1.cert]),
                             soon.key, default=True)
    warnings = {e.role: s for e, s in store.expiring(warn_days=30)}
    assert warnings["secc leaf"] in ("expires in 10 d", "expires in 9 d")
    assert store.expiring(warn_days=5) == []


def test_verify_names_a_key_that_does_not_match(store, test_pki):
    (store.path / "secc_key.pem").write_bytes(test_pki.oem_sub.key_pem)
    problems = store.verify()
    assert len(problems) == 1 and "key does not belong" in problems[0]


def test_csr_then_signed_chain_installs_with_the_pending_key(store, test_pki):
    csr = x509.load_pem_x509_csr(store.new_csr("DEPYSE00009", "pysecc CPO"))
    assert mode(store.path / "pending_key.pem") == 0o600
    assert csr.is_signature_valid
    now = dt.datetime.now(dt.timezone.utc)
    leaf = (x509.CertificateBuilder().subject_name(csr.subject)
            .issuer_name(test_pki.cpo_sub2.cert.subject).public_key(csr.public_key())
            .serial_number(7).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=60))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, True, False, False, False,
                                         False), critical=True)
            .sign(test_pki.cpo_sub2.key, hashes.SHA256()))
    chain = store.install_secc_chain(pem([leaf, test_pki.cpo_sub2.cert, test_pki.cpo_sub1.cert]))
    assert chain.leaf.subject == csr.subject
    assert not (store.path / "pending_key.pem").exists()
    assert store.verify() == []


# --- secc certs ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _restore_pysecc_logger():
    """``secc`` (in-process here) installs its own log handler and stops propagation; later
    tests read log records through pytest's, so put the logger back as it was."""
    import logging

    logger = logging.getLogger("pysecc")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]



def test_cli_list_show_verify_delete(store, test_pki, capsys):
    assert cli(["certs", "--dir", str(store.path), "list"]) == 0
    out = capsys.readouterr().out
    assert "v2g root" in out and "secc leaf" in out and "DEPYSE00001" in out
    fingerprint = store.entries()[0].id
    assert cli(["certs", "--dir", str(store.path), "show", fingerprint[:10]]) == 0
    assert "V2G Root CA" in capsys.readouterr().out
    assert cli(["certs", "--dir", str(store.path), "verify"]) == 0
    assert cli(["certs", "--dir", str(store.path), "delete", fingerprint[:10]]) == 0
    assert store.roots(RootKind.V2G) == []
    assert cli(["certs", "--dir", str(store.path), "verify"]) == 1  # the chain lost its root
    assert "no trusted root" in capsys.readouterr().out
    assert cli(["certs", "--dir", str(store.path), "show", "ffffffffff"]) == 2


def test_cli_import_and_csr(tmp_path, test_pki, capsys):
    d = str(tmp_path / "store")
    root = tmp_path / "root.pem"
    root.write_bytes(test_pki.v2g_root.cert_pem)
    assert cli(["certs", "--dir", d, "import", "v2g-root", str(root)]) == 0
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(test_pki.secc_leaf.cert_pem + test_pki.cpo_sub2.cert_pem
                      + test_pki.cpo_sub1.cert_pem)
    key.write_bytes(test_pki.secc_leaf.key_pem)
    assert cli(["certs", "--dir", d, "import", "secc-chain", str(chain), "--key", str(key)]) == 0
    assert cli(["certs", "--dir", d, "import", "mo-root", str(chain)]) == 2  # not a root
    assert "refused" in capsys.readouterr().err
    out = tmp_path / "secc.csr"
    assert cli(["certs", "--dir", d, "csr", "--cn", "DEPYSE00001", "--org", "pysecc CPO",
                "--out", str(out)]) == 0
    assert x509.load_pem_x509_csr(out.read_bytes()).subject.rfc4514_string().startswith(
        "DC=CPO")


async def test_pnc_decisions_cache_the_contract_chain_with_its_ocsp_status(tmp_path, test_pki):
    import asyncio

    from secc.authorization import (
        AuthorizationDecision,
        AuthorizationRequest,
        AuthorizationStatus,
    )
    from secc.cert_commands import ContractCachingAuthorizer

    class Csms:
        async def authorize(self, request):
            if request.id_token.endswith("2X"):
                return AuthorizationDecision(AuthorizationStatus.CERTIFICATE_REJECTED,
                                             "contract certificate CertificateRevoked.")
            return AuthorizationDecision(AuthorizationStatus.ACCEPTED)

    authorizer = ContractCachingAuthorizer(Csms(), tmp_path / "certs")
    for emaid in ("DEPYSC0000001X", "DEPYSC0000002X"):
        contract = test_pki.issue_contract(emaid)
        await authorizer.authorize(AuthorizationRequest(
            "1", "s", emaid, "eMAID", contract_chain_pem=contract.chain_pem.decode()))
    await authorizer.authorize(AuthorizationRequest("1", "s", "04A1B2C3", "ISO14443"))
    while authorizer._tasks:
        await asyncio.sleep(0.01)
    status = {e: m["ocsp"]["status"] for e, _, m in authorizer.store.contracts()}
    assert status == {"DEPYSC0000001X": "Good", "DEPYSC0000002X": "Revoked"}


@pytest.mark.parametrize("where", ["in_process", "child_process"])
def test_daemon_start_warns_of_certificates_about_to_expire(store, test_pki, where):
    """In the daemon's process when ``cryptography`` is loaded anyway (PnC, a meter signing
    in software), else by ``python -m secc.certstore`` after READY (the daemon stays without
    the library's ~12 MB): the same warnings either way."""
    import asyncio
    import logging

    from secc.boards import board_from_config
    from secc.config import loads_board_config
    from secc.daemon import SeccDaemon

    soon = test_pki.issue_leaf(test_pki.cpo_sub2, "DEPYSE00003", "pysecc CPO", domain="CPO",
                               days=7)
    store.install_secc_chain(pem([soon.cert, test_pki.cpo_sub2.cert, test_pki.cpo_sub1.cert]),
                             soon.key, default=True)
    config = loads_board_config(f"""
[board]
name = "t"
kind = "sim"
evse_id = "DE*PYS*E00001*1"
output = "dc"
max_current_a = 100
[v2g]
certificate_dir = "{store.path}"
""")
    daemon = SeccDaemon(config, board_from_config(config), "lo")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # the CLI tests may have turned propagation off
    logging.getLogger("pysecc").addHandler(handler)
    try:
        if where == "in_process":
            daemon._warn_expiring_certificates()
        else:
            async def after_ready():
                daemon.ready.set()
                await daemon._warn_expiring_in_child(store.path)

            asyncio.run(after_ready())
    finally:
        logging.getLogger("pysecc").removeHandler(handler)
    lines = [r.getMessage() for r in records if "DEPYSE00003" in r.getMessage()]
    assert lines and all("expires in" in line and "secc leaf" in line for line in lines)
