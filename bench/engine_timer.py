"""A wall-time timer around a ``MemoryEngine`` method, for bench/http_overhead.py and
bench/remember_overhead.py.

Imported by the bench and by the ``memstore serve`` it starts (before the server loads), so
the engine's own time is measured the same way in both processes.
"""

from __future__ import annotations

import os
import time
from typing import Any

ENGINE_LOG_ENV = "HTTP_OVERHEAD_ENGINE_LOG"
LOCAL_ENGINE_MS: list[float] = []  # this process' engine times (the local variant)


def time_engine(method: str = "recall") -> None:
    """Wrap ``MemoryEngine.<method>`` with a wall-time timer: each call's ms is appended to
    the file named by ``HTTP_OVERHEAD_ENGINE_LOG`` (a server) or to LOCAL_ENGINE_MS."""
    from memstore.engine import MemoryEngine

    inner = getattr(MemoryEngine, method)
    path = os.environ.get(ENGINE_LOG_ENV)
    out = open(path, "a", buffering=1) if path else None  # noqa: SIM115  (one line a call)

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(self, *args, **kwargs)
        finally:
            ms = (time.perf_counter() - t0) * 1000
            if out is not None:
                out.write(f"{ms:.4f}\n")
            else:
                LOCAL_ENGINE_MS.append(ms)

    setattr(MemoryEngine, method, timed)
