"""Allocation policies: score the candidate plans of a request under a budget.

The package registers the built-in policies here, once; ``base`` holds the
plug-in kind and the planning pass, ``filters`` the filters every policy shares.
"""
from ponder.router.policies import difficulty, threshold  # noqa: F401  (register themselves)
