"""Which SECC chain the TLS server presents: the one the car can verify.

A charger may hold SECC chains under several V2G roots (two eMobility PKIs, a test PKI and a
production one). ISO 15118-2 cars name the V2G roots they trust in the ClientHello's
``trusted_ca_keys`` extension (RFC 6066); Python's ``ssl`` does not expose it, so the V2G
server peeks the ClientHello before the handshake (``secc.tls.clienthello``) and asks this
selector for the ``SSLContext`` to use. The first authority the car lists that matches an
installed chain's V2G root (by key SHA-1, certificate SHA-1 or DER name) wins; no match, no
extension, or an unreadable hello: the default chain (``secc_chain.pem``).

Contexts are built once per chain, off the real-time path (at start and on ``reload()``, after
the store changed: a renewed SECC leaf, a new V2G root); selecting is a dictionary look-up.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from secc.certstore import CertificateStore, RootKind, common_name, key_sha1
from secc.common.lazy import lazy_module
from secc.common.logs import layer_logger
from secc.tls.clienthello import (
    TRUSTED_CERT_SHA1,
    TRUSTED_KEY_SHA1,
    TRUSTED_X509_NAME,
    ClientHello,
)
from secc.tls.context import CertificateDirectory, TLSConfigError

serialization = lazy_module("cryptography.hazmat.primitives.serialization")

log = layer_logger("tls")

#: Builds the server context for one chain (the daemon's: same versions, suites, client auth).
ContextFactory = Callable[[CertificateDirectory], ssl.SSLContext]


@dataclass
class ChainChoice:
    """One installed chain and the names a car may use for its V2G root."""

    root_name: str
    context: ssl.SSLContext
    keys: set[tuple[int, bytes]] = field(default_factory=set)


@dataclass
class TlsChainSelector:
    path: Path
    factory: ContextFactory
    default: ssl.SSLContext | None = None
    choices: list[ChainChoice] = field(default_factory=list)
    generation: int = 0          # bumped by every reload (for logs and tests)

    def reload(self, rebuild_default: bool = True) -> None:
        """Rebuild the contexts from the store (new leaf, new roots): the next handshake uses
        them, connections already up keep theirs. A chain that does not load is logged and
        left out; the previous default stays if the new one does not load
        (``rebuild_default=False``: keep the default context given at start)."""
        folders = sorted((self.path / "chains").glob("*"))
        # only chains filed per V2G root need the roots read (``cryptography``, ~12 MB): a
        # charger with the one default chain never loads it
        store = CertificateStore(self.path) if folders else None
        roots = {key_sha1(r): r for r in store.roots(RootKind.V2G)} if store else {}
        choices = []
        for folder in folders:
            root = roots.get(folder.name)
            if root is None:
                log.warning("SECC chain filed under a V2G root that is not installed; not "
                            "offered", extra={"chain": str(folder), "setting": "secc certs"})
                continue
            try:
                context = self.factory(CertificateDirectory(
                    self.path, chain_name=f"chains/{folder.name}/secc_chain.pem",
                    key_name=f"chains/{folder.name}/secc_key.pem"))
            except (TLSConfigError, ssl.SSLError, OSError) as exc:
                log.error("SECC chain not loadable; not offered",
                          extra={"chain": str(folder), "error": str(exc)})
                continue
            der = root.public_bytes(serialization.Encoding.DER)
            choices.append(ChainChoice(common_name(root.subject), context, {
                (TRUSTED_KEY_SHA1, bytes.fromhex(folder.name)),
                (TRUSTED_CERT_SHA1, hashlib.sha1(der).digest()),
                (TRUSTED_X509_NAME, root.subject.public_bytes())}))
        try:
            if rebuild_default or self.default is None:
                self.default = self.factory(CertificateDirectory(self.path))
        except (TLSConfigError, ssl.SSLError, OSError) as exc:
            if self.default is None:
                raise
            log.error("default SECC chain not loadable; keeping the previous one",
                      extra={"error": str(exc)})
        self.choices = choices
        self.generation += 1
        log.info("TLS chains loaded", extra={
            "chains": len(choices), "roots": ",".join(c.root_name for c in choices),
            "generation": self.generation})

    def select(self, hello: ClientHello | None) -> ssl.SSLContext:
        assert self.default is not None
        wanted = hello.trusted_ca_keys if hello is not None else []
        for authority in wanted:
            for choice in self.choices:
                if authority in choice.keys:
                    log.info("SECC chain chosen by the car's trusted_ca_keys",
                             extra={"v2g_root": choice.root_name})
                    return choice.context
        if wanted:
            log.info("no installed SECC chain under the V2G roots the car trusts; default "
                     "chain", extra={"authorities": len(wanted),
                                     "setting": "secc certs import secc-chain"})
        return self.default
