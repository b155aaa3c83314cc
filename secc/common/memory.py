"""The C heap of a long-running process on a charge controller (glibc; elsewhere no-ops).

* ``limit_malloc_arenas``: glibc gives each thread that allocates its own malloc arena (up to
  8 x cores), each keeping freed memory for itself. The daemon's threads (warm-up, outbox,
  TLS handshakes' ``to_thread``) allocate little: two arenas serve them, ~1 MB less RSS.
  The same as ``MALLOC_ARENA_MAX=2`` in the environment, but for every way the daemon is
  started (systemd, ``secc run``, tests).
* ``trim_heap``: at READY, after the warm-up's garbage is collected, hand the free pages at
  the top of the heap and in the arenas back to the kernel (``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import functools

M_ARENA_MAX = -8                 # mallopt parameter (malloc.h)
DAEMON_ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int = DAEMON_ARENAS) -> bool:
    """Cap glibc's malloc arenas (call before threads start); False where not glibc."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def trim_heap() -> bool:
    """Return free heap memory to the kernel; True when glibc released some."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
