"""Test-time strategies: how a plan's samples are drawn from a pool and combined."""
