"""TLS as the V2G server offers it, against what ISO 15118-2 and -20 allow.

The server context is built exactly as the daemon builds it (``secc.daemon.server_tls_context``)
and then proven with in-memory handshakes (``ssl.MemoryBIO``, no sockets) by a client that
offers only what the standard allows: TLS 1.2 with ECDHE-ECDSA-AES128-SHA256 for -2, TLS 1.3
for -20. So a finding reflects what a car would get, not what a file says.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from secc.config import BoardConfig
from secc.doctor import Finding, Status
from secc.tls.context import (
    ISO2_CIPHERS,
    ISO2_UNAVAILABLE_SUITES,
    ISO20_SUITES,
    CertificateDirectory,
    TLSConfigError,
    iso2_server_context,
)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[str, str]:
    """(version, cipher) of a handshake between the two contexts, in memory; raises
    ``ssl.SSLError`` when they do not agree."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_side=False)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end in (("client", cli), ("server", srv)):
            if done[name]:
                continue
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            version, cipher = cli.version() or "", (cli.cipher() or ("",))[0]
            return version, cipher
    raise ssl.SSLError("handshake did not complete")


def _client(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    if version is ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers(ISO2_CIPHERS)
    return ctx


def check_tls(config: BoardConfig) -> list[Finding]:
    from secc.daemon import server_tls_context

    protocols = set(config.v2g.protocols)
    if config.v2g.tls == "none":
        if "iso20" in protocols:
            return [Finding("tls.server", Status.FAIL, '[v2g].tls = "none" but ISO 15118-20 '
                            "is offered: -20 runs over TLS 1.3 only, -20 cars cannot start",
                            'set [v2g].tls = "optional" (with certificates) or drop "iso20" '
                            "from [v2g].protocols")]
        return [Finding("tls.server", Status.OK, '[v2g].tls = "none": TCP only (DIN 70121, '
                        "-2 EIM without TLS)")]
    if protocols == {"din"}:
        return [Finding("tls.server", Status.OK, "DIN 70121 only: no TLS (as [V2G-DC-618])")]
    needed = config.v2g.tls == "required" or config.v2g.plug_and_charge or "iso20" in protocols
    try:  # what the daemon would log and swallow with tls = "optional"
        iso2_server_context(CertificateDirectory(Path(config.v2g.certificate_dir)))
        server = server_tls_context(config)
    except TLSConfigError as exc:
        return [Finding("tls.server", Status.FAIL if needed else Status.WARN,
                        f"TLS is not offered: {exc}; cars asking for TLS (all of -20, Plug & "
                        "Charge) fail or fall back",
                        "fix the certificate store (see the certs.* findings)")]
    assert server is not None
    offered = [c["name"] for c in server.get_ciphers()]
    details = {"min_version": server.minimum_version.name,
               "max_version": server.maximum_version.name, "ciphers": offered}
    findings = []
    if "iso2" in protocols:
        findings.append(_probe("tls.iso2", server, ssl.TLSVersion.TLSv1_2, details,
                               "ISO 15118-2 (TLS 1.2, ECDHE-ECDSA-AES128-SHA256)",
                               "; not offerable by OpenSSL 3: " + ", ".join(
                                   ISO2_UNAVAILABLE_SUITES.values())))
    if "iso20" in protocols:
        finding = _probe("tls.iso20", server, ssl.TLSVersion.TLSv1_3, details,
                         "ISO 15118-20 (TLS 1.3)", "")
        missing = [s for s in ISO20_SUITES if s not in offered]
        if finding.status is Status.OK and missing:
            finding = Finding("tls.iso20", Status.FAIL, "TLS 1.3 offered without "
                              + ", ".join(missing) + " that ISO 15118-20 requires",
                              "use an OpenSSL build with the standard TLS 1.3 suites", details)
        findings.append(finding)
    return findings


def _probe(check: str, server: ssl.SSLContext, version: ssl.TLSVersion, details: dict,
           what: str, note: str) -> Finding:
    try:
        got_version, cipher = handshake(server, _client(version))
    except ssl.SSLError as exc:
        return Finding(check, Status.FAIL, f"a car limited to {what} cannot connect: "
                       f"{exc.reason or exc}", "the server offers "
                       f"{details['min_version']}..{details['max_version']}: check [v2g].tls, "
                       "[v2g].protocols and the SECC key's curve (P-256 for -2)", details)
    return Finding(check, Status.OK, f"{what}: handshake {got_version} {cipher}{note}",
                   details=details)
