"""``secc certs``: the SECC's certificate store (``[v2g].certificate_dir``, ``secc.certstore``).

    secc certs list   [--dir D | --board F] [--warn-days N]   every certificate, expiry warnings
    secc certs show   REF                                     one certificate (fingerprint prefix)
    secc certs verify                                         chains, keys, expiry; exit 1 on problems
    secc certs import KIND FILE [--key KEY] [--default]       v2g-root, mo-root, oem-root,
                                                              secc-chain, contract
    secc certs delete REF                                     a root or a cached contract
    secc certs csr    --cn SECC_ID --org ORG [--out FILE]     new key (pending) + CSR for
                                                              SignCertificate(V2GCertificate)

Exit codes: 0 done, 1 problems found (verify), 2 refused (bad input, unknown reference).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

KINDS = ("v2g-root", "mo-root", "oem-root", "secc-chain", "contract")


def register(subparsers) -> None:
    parser = subparsers.add_parser("certs", help="the SECC's certificate store")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dir", type=Path, help="certificate directory")
    where.add_argument("--board", help="board file whose [v2g].certificate_dir to use")
    actions = parser.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every certificate, with expiry warnings")
    listing.add_argument("--warn-days", type=float, default=30.0)
    listing.set_defaults(handler=run_list)
    show = actions.add_parser("show", help="one certificate by fingerprint prefix")
    show.add_argument("ref")
    show.set_defaults(handler=run_show)
    actions.add_parser("verify", help="check chains, keys and expiry").set_defaults(
        handler=run_verify)
    imp = actions.add_parser("import", help="add a root, the SECC chain or a contract chain")
    imp.add_argument("kind", choices=KINDS)
    imp.add_argument("file", type=Path)
    imp.add_argument("--key", type=Path, help="secc-chain: its private key (PEM); default: "
                                              "the key of the pending CSR")
    imp.add_argument("--default", action="store_true",
                     help="secc-chain: also make it the default TLS chain")
    imp.set_defaults(handler=run_import)
    delete = actions.add_parser("delete", help="remove a root or a cached contract")
    delete.add_argument("ref")
    delete.set_defaults(handler=run_delete)
    csr = actions.add_parser("csr", help="new SECC key (pending) and its CSR")
    csr.add_argument("--cn", required=True, help="the SECC's id (CN), e.g. DEPYSE00001")
    csr.add_argument("--org", required=True)
    csr.add_argument("--country", default="DE")
    csr.add_argument("--out", type=Path, help="write the CSR here (default: stdout)")
    csr.set_defaults(handler=run_csr)


def _store(args):
    from secc.certstore import CertificateStore

    if args.dir is not None:
        return CertificateStore(args.dir)
    if args.board:
        from secc.config import load_board_config

        return CertificateStore(Path(load_board_config(args.board).v2g.certificate_dir))
    return CertificateStore(Path("/etc/pysecc/certs"))


def _refused(exc: Exception) -> int:
    print(f"refused: {exc}", file=sys.stderr)
    return 2


def run_list(args) -> int:
    from secc.certstore import common_name

    store = _store(args)
    now = dt.datetime.now(dt.timezone.utc)
    entries = store.entries()
    print(f"# {store.path}: {len(entries)} certificate(s)")
    print(f"{'fingerprint':<14} {'role':<16} {'subject':<28} {'issuer':<28} {'not after':<11} "
          "state")
    for e in entries:
        print(f"{e.id[:12]:<14} {e.role:<16} {common_name(e.cert.subject)[:27]:<28} "
              f"{common_name(e.cert.issuer)[:27]:<28} {e.cert.not_valid_after_utc:%Y-%m-%d}  "
              f"{e.state(now, args.warn_days)}" + (f"  ({e.detail})" if e.detail else ""))
    for e, state in store.expiring(now, args.warn_days):
        print(f"WARNING: {e.role} {common_name(e.cert.subject)} ({e.id[:12]}) {state}, "
              f"{e.where}", file=sys.stderr)
    return 0


def run_show(args) -> int:
    from cryptography import x509

    from secc.certstore import StoreError, key_sha1

    try:
        e = _store(args).find(args.ref)
    except StoreError as exc:
        return _refused(exc)
    c = e.cert
    print(f"role:         {e.role}" + (f" ({e.detail})" if e.detail else ""))
    print(f"file:         {e.where}")
    print(f"subject:      {c.subject.rfc4514_string()}")
    print(f"issuer:       {c.issuer.rfc4514_string()}")
    print(f"serial:       {c.serial_number:x}")
    print(f"valid:        {c.not_valid_before_utc:%Y-%m-%d %H:%M} .. "
          f"{c.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    print(f"key:          {getattr(c.public_key(), 'curve', None) and c.public_key().curve.name}"
          f" (key SHA-1 {key_sha1(c)})")
    print(f"fingerprint:  SHA-256 {e.id}")
    for ext in c.extensions:
        name = getattr(ext.oid, "_name", ext.oid.dotted_string)
        value = ext.value
        if isinstance(value, x509.KeyUsage):
            value = ", ".join(k for k in ("digital_signature", "key_agreement", "key_cert_sign",
                                          "crl_sign", "content_commitment", "key_encipherment")
                              if getattr(value, k))
        print(f"ext:          {name}{' (critical)' if ext.critical else ''}: {value}")
    return 0


def run_verify(args) -> int:
    store = _store(args)
    problems = store.verify()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"# {store.path}: {len(problems)} problem(s)")
    return 1 if problems else 0


def run_import(args) -> int:
    from secc.certstore import RootKind, StoreError, common_name, load_certs, load_key

    store = _store(args)
    try:
        data = args.file.read_bytes()
        if args.kind.endswith("-root"):
            added = store.import_root(RootKind(args.kind.split("-")[0]), data)
            for cert in added:
                print(f"imported {args.kind} {common_name(cert.subject)}")
            if not added:
                print(f"{args.kind}: already installed")
        elif args.kind == "secc-chain":
            key = load_key(args.key.read_bytes()) if args.key else None
            chain = store.install_secc_chain(data, key, default=args.default or None)
            print(f"installed SECC chain {common_name(chain.leaf.subject)} in "
                  f"{chain.chain_path.parent}")
        else:
            certs = load_certs(data)
            emaid = common_name(certs[0].subject)
            store.cache_contract(emaid, certs)
            print(f"cached contract chain {emaid}")
    except (OSError, StoreError) as exc:
        return _refused(exc)
    return 0


def run_delete(args) -> int:
    from secc.certstore import StoreError, common_name

    try:
        entry = _store(args).delete(args.ref)
    except StoreError as exc:
        return _refused(exc)
    print(f"deleted {entry.role} {common_name(entry.cert.subject)}")
    return 0


def run_csr(args) -> int:
    store = _store(args)
    csr = store.new_csr(args.cn, args.org, country=args.country)
    if args.out:
        args.out.write_bytes(csr)
        print(f"CSR written to {args.out}; key kept as {store.path / 'pending_key.pem'}")
    else:
        sys.stdout.write(csr.decode())
    return 0
