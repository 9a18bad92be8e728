"""Voting workers: MAKER's first-to-ahead-by-k voting over tasks cut into minimal steps.

Public surface; the modules behind it may move.
"""
from ponder.voting.client import VotingClient
from ponder.voting.kchoice import (
    choose_k,
    estimate_p,
    expected_samples_per_step,
    expected_votes_per_step,
    task_success,
    voted_step_success,
)
from ponder.voting.rule import Decision, RedFlag, VoteCounter, vote_step, vote_sync
from ponder.voting.samplers import PoolSampler, PoolTarget, Sampler, SamplerRegistry, ScriptedSampler, pool_targets
from ponder.voting.solver import SolveConfig, StepResult, Summary, solve
from ponder.voting.tasks import Addition, Hanoi, Task, make_task

__all__ = [
    "Addition", "Decision", "Hanoi", "PoolSampler", "PoolTarget", "RedFlag", "Sampler", "SamplerRegistry",
    "ScriptedSampler", "SolveConfig", "VotingClient", "StepResult", "Summary", "Task", "VoteCounter", "choose_k", "estimate_p",
    "expected_samples_per_step", "expected_votes_per_step", "make_task", "pool_targets", "solve", "task_success",
    "vote_step", "vote_sync", "voted_step_success",
]
