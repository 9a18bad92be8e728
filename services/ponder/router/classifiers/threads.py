"""One BLAS thread for the small optimisations in training.

scipy's L-BFGS-B and the logistic regressions it drives do small dense
products per iteration; a multi-threaded BLAS gains nothing there and, on a
busy machine, its spinning threads slowed a 300-row matrix factorisation
seventeen-fold (49 s against 2.9 s measured side by side). Training wraps
those calls in ``one_blas_thread()``.
"""
from __future__ import annotations


def one_blas_thread():
    """A context manager limiting BLAS to one thread (threadpoolctl, a scikit-learn dependency)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
