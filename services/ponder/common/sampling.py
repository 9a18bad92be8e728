"""Sampling defaults: what a pool uses for a parameter a request leaves unset.

One place for every sampler (pool engine, backends, voting workers), so that a
sample drawn by the router and one drawn by a voting worker mean the same thing.
"""
from __future__ import annotations

TEMPERATURE = 0.8
TOP_P = 0.95
TOP_K = 40
