"""Modules loaded on first use: ``x509 = lazy_module("cryptography.x509")`` at the top of a
module costs nothing; the first attribute read (``x509.load_der_x509_certificate``) loads it.

Why: the ``cryptography`` package (its own OpenSSL, x509, ASN.1) adds ~12 MB to a process the
moment any of it is imported, and only Plug & Charge, a meter that signs in software and the
certificate commands use it. The PnC code lives in modules every ISO 15118 session imports
(the session cores name its classes), so those modules name ``cryptography`` through
``lazy_module`` and a daemon without PnC never loads it (docs/realtime.md, "Footprint").

Where a feature needs it, the READY warm-up (``secc.session.warmup``) uses it once, so it is
loaded before READY, not in a session; ``secc.session.warmup.late_imports`` would name it
otherwise (the real load adds modules to ``sys.modules``).

Built on the standard library's ``importlib.util.LazyLoader``: after the first attribute read
the object is the ordinary module (no indirection left on later calls).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types

_lock = threading.Lock()
_armed: list[str] = []           # every module lazy_module armed, in order


def lazy_module(name: str) -> types.ModuleType:
    """``name``, loaded at its first attribute read (already loaded: the module itself).

    Only a module whose parent packages are cheap to import (they are imported now): e.g.
    ``cryptography.x509``, ``cryptography.hazmat.primitives.asymmetric.ec``. Do not name a
    submodule of a module made lazy here (finding it would load the parent)."""
    with _lock:
        module = sys.modules.get(name)
        if module is not None:
            return module
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"no module named {name!r}", name=name)
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)     # lazy: only arms the first-use load
        _armed.append(name)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
        return module


def load_armed() -> list[str]:
    """Load every module ``lazy_module`` armed (the READY warm-up of a feature that uses
    them: their own imports happen now, not at the first use in a session). Returns their
    names."""
    for name in list(_armed):
        getattr(sys.modules[name], "__name__", None)   # any attribute read loads it
    return list(_armed)
