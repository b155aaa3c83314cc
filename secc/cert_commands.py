"""The bridge's certificate commands, carried out by the SECC (bus channels ``create_csr`` and
``install_certificate``, ``docs/bus.md``).

* ``create_csr`` (OCPP SignCertificate(V2GCertificate), e.g. after TriggerMessage
  SignV2GCertificate): a new P-256 key, kept by the SECC as pending, and its CSR for the bridge.
  The key never leaves the SECC.
* ``install_certificate``: a V2G or MO root from InstallCertificate, or the signed SECC chain
  from CertificateSigned(V2GCertificate) for the pending key. Checked and written by the store
  (atomic, 0600 keys), then used at once: the TLS server's contexts are rebuilt (the next
  handshake presents the new chain, no restart) and new sessions get the new MO roots.

Disk and crypto work runs in a worker thread: a session in progress is never held up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from secc.certstore import CertificateStore, RootKind, StoreError, common_name
from secc.common.logs import layer_logger

log = layer_logger("pki")

ROOT_KINDS = {"V2GRootCertificate": RootKind.V2G, "MORootCertificate": RootKind.MO}


class CertificateCommands:
    def __init__(self, directory: Path, on_changed: Callable[[str], Awaitable[None]]) -> None:
        self.store = CertificateStore(directory)
        self.on_changed = on_changed     # e.g. rebuild TLS contexts, reload MO roots

    async def create_csr(self, payload: dict[str, Any]) -> dict[str, Any]:
        csr = await asyncio.to_thread(self.store.new_csr, payload["common_name"],
                                      payload["organization"], country=payload["country"])
        log.info("CSR made for SignCertificate(V2GCertificate); key kept pending",
                 extra={"cn": payload["common_name"], "key": str(self.store.path /
                                                                 "pending_key.pem")})
        return {"status": "Accepted", "csr": csr.decode()}

    async def install_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        kind, pem = payload["certificate_type"], payload["certificate"].encode()
        try:
            if kind in ROOT_KINDS:
                added = await asyncio.to_thread(self.store.import_root, ROOT_KINDS[kind], pem)
                what = ", ".join(common_name(c.subject) for c in added) or "already installed"
            else:
                chain = await asyncio.to_thread(self.store.install_secc_chain, pem)
                what = common_name(chain.leaf.subject)
        except (StoreError, OSError) as exc:
            log.warning("certificate from the CSMS refused", extra={"type": kind,
                                                                    "error": str(exc)})
            return {"status": "Rejected", "reason": str(exc)[:512]}
        log.info("certificate from the CSMS installed", extra={"type": kind, "what": what})
        await self.on_changed(kind)
        return {"status": "Accepted", "reason": what[:512]}


#: decision -> the OCSP status kept with a cached contract chain
OCSP_STATUS_OF_DECISION = {"Accepted": "Good", "CertificateRevoked": "Revoked"}


class ContractCachingAuthorizer:
    """Wraps the charger's authorizer: every Plug & Charge decision also keeps the contract
    chain in the store's cache (newest 5) with the OCSP status the decision implies (Good when
    accepted, Revoked when the CSMS said so, Unknown otherwise). The write runs in a worker
    thread after the decision is returned: it never delays the car."""

    def __init__(self, inner: Any, directory: Path) -> None:
        self.inner = inner
        self.store = CertificateStore(directory)
        self._tasks: set[asyncio.Task] = set()

    async def authorize(self, request: Any) -> Any:
        decision = await self.inner.authorize(request)
        if request.id_token_type == "eMAID" and request.contract_chain_pem:
            status = "Good" if decision.accepted else next(
                (s for key, s in OCSP_STATUS_OF_DECISION.items() if key in decision.reason),
                "Unknown")
            task = asyncio.create_task(self._cache(request, status))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return decision

    async def _cache(self, request: Any, status: str) -> None:
        from cryptography import x509

        try:
            chain = x509.load_pem_x509_certificates(request.contract_chain_pem.encode())
            await asyncio.to_thread(self.store.cache_contract, request.id_token, chain, status)
        except (ValueError, OSError, StoreError) as exc:
            log.warning("contract chain not cached", extra={"emaid": request.id_token,
                                                            "error": str(exc)})
