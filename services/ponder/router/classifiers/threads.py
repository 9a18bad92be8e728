"""One thread for the small optimisations and tree fits in training.

scipy's L-BFGS-B (and the logistic regressions it drives) does small dense
products per iteration, and scikit-learn's histogram boosting splits a few
thousand rows per tree: extra BLAS or OpenMP threads gain little there and, on
a busy machine, their spin-waiting makes things far slower. Measured side by
side on this project's 2-core CI machine under load: a 300-row matrix
factorisation 49 s with BLAS threads against 2.9 s with one; one boosted-tree
target on 1,000 GSM8K prompts 247 s with two OpenMP threads against 45 s with
one. Training wraps those calls in ``one_thread()``.
"""
from __future__ import annotations


def one_thread():
    """A context manager limiting BLAS and OpenMP to one thread (threadpoolctl, a scikit-learn dependency)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
