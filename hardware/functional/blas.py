"""One BLAS thread for the functional models' many small matrix products.

A functional run multiplies many small matrices (a row of output channels by
a window, one crossbar by an input slice); BLAS threads cost more to start
and join than they save on them, and on a busy machine far more: ResNet-50's
partition run took 32 s with OpenBLAS's threads and 3 s without, on two
shared cores.  threadpoolctl finds numpy's BLAS, whichever it is, and
restores its thread count afterwards.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def single_threaded_blas():
    """A context manager that runs its block with one BLAS thread."""
    return threadpool_limits(limits=1, user_api="blas")
