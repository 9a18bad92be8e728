"""Allocation policies: choose a plan for a request under a budget."""
