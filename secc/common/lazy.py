"""Modules loaded on first use: ``x509 = lazy_module("cryptography.x509")`` at the top of a
module costs nothing; the first attribute read (``x509.load_der_x509_certificate``) loads it.

Why: RSS on a charge controller (issue 13, goal 40 MB for the daemon). The ``cryptography``
package (its own OpenSSL, x509, ASN.1) adds ~12 MB to a process the moment any of it is
imported, and only Plug & Charge, a meter that signs in software and the certificate commands
use it; the PnC code lives in modules every ISO 15118 session imports (the cores name its
classes), so those modules name ``cryptography`` through ``lazy_module`` and a daemon without
PnC never loads it. Likewise paho-mqtt imports ``urllib.request`` (email, http, tempfile,
bz2, lzma: ~2.7 MB) for a proxy lookup it makes only with PySocks installed
(``secc.common.mqtt`` arms it). docs/realtime.md, "Footprint", has the numbers.

Where a feature needs a module, the READY warm-up (``secc.session.warmup``) loads it
(``load_armed``) and uses it once, so that no session pays for the import;
``secc.session.warmup.late_imports`` would name it otherwise (the real load adds modules to
``sys.modules``).

How: ``sys.modules[name]`` holds a placeholder module until the first attribute read (PEP 562
module ``__getattr__``); ``__spec__`` is None so that ``import name`` statements elsewhere
return the placeholder without loading. The first read imports the real module (it replaces
the placeholder in ``sys.modules``) and copies its namespace into the placeholder, so later
reads through a name bound to the placeholder are ordinary attribute reads.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

_lock = threading.RLock()
_armed: dict[str, types.ModuleType] = {}      # name -> placeholder, in arming order


def lazy_module(name: str) -> types.ModuleType:
    """``name``, loaded at its first attribute read (already imported: the module itself).

    The parent packages are imported now: name only modules whose parents are cheap (e.g.
    ``cryptography.x509``, ``cryptography.hazmat.primitives.asymmetric.ec``,
    ``urllib.request``)."""
    with _lock:
        module = sys.modules.get(name)
        if module is not None:
            return module
        parent_name, _, child = name.rpartition(".")
        parent = importlib.import_module(parent_name) if parent_name else None
        placeholder = types.ModuleType(name, f"{name}, loaded on first use (secc.common.lazy)")
        placeholder.__spec__ = None          # read by the import system: must not load

        def __getattr__(attribute: str) -> object:
            return getattr(_load(name), attribute)

        placeholder.__getattr__ = __getattr__  # type: ignore[attr-defined]
        sys.modules[name] = placeholder
        if parent is not None:
            setattr(parent, child, placeholder)
        _armed[name] = placeholder
        return placeholder


def _load(name: str) -> types.ModuleType:
    with _lock:
        placeholder = _armed[name]
        if sys.modules.get(name) is placeholder:
            del sys.modules[name]
            try:
                module = importlib.import_module(name)
            except BaseException:
                sys.modules[name] = placeholder
                raise
            namespace = dict(vars(module))
            namespace.pop("__getattr__", None)
            vars(placeholder).update(namespace)
            return module
        return sys.modules[name]


def load_armed(package: str) -> list[str]:
    """Load every module of ``package`` that ``lazy_module`` armed (the READY warm-up of a
    feature that uses them: their imports happen now, not at the first use in a session).
    Returns their names."""
    names = [n for n in _armed if n == package or n.startswith(package + ".")]
    for name in names:
        _load(name)
    return names
