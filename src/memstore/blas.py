"""numpy's BLAS on one thread in a process that recalls.

Recall's matrix products are memory-bound (scanning 100k x 384 float32 takes as long on one
thread as on two) or small. OpenBLAS splits a product over its threads as soon as it is a
few thousand rows, and on a busy host the caller then waits for a thread that has no core:
a 3,000 x 384 product took 7 ms instead of 0.25 ms at load 5.5, and a cached recall at 10k
memories 38 ms instead of 15 ms (docs/performance.md). So the first recall limits BLAS to
one thread for the process, unless ``OPENBLAS_NUM_THREADS`` is set: then it is left alone.
"""

from __future__ import annotations

import os
import threading

_done = False
_lock = threading.Lock()


def one_thread() -> None:
    """Limit the process's BLAS to one thread, once (a no-op after the first call)."""
    global _done
    if _done:
        return
    with _lock:
        if not _done:
            if "OPENBLAS_NUM_THREADS" not in os.environ:
                from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

                threadpool_limits(limits=1, user_api="blas")
            _done = True
