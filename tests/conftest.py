"""Shared fixtures: small PPO configs and one Ray session per test module that asks for it."""

from __future__ import annotations

import importlib
import os
import pathlib
import sys
from types import ModuleType

import pytest

from marl_arena.algorithms import PPOConfig
from marl_arena.env import MultiAgentCartPole, register_env
from marl_arena.runners.resources import WORKER_NICENESS_VARIABLE

register_env("ma_cartpole", lambda cfg: MultiAgentCartPole(cfg))

# Ray starts its workers at nice 15, so runner actors get next to no CPU while any ordinary
# process keeps the cores busy (a learner thread in the test's own driver, or another job on a
# shared machine): tests then crawl into their timeout. Every Ray the tests start runs its
# workers at the driver's priority, as a Ray the library starts does (resources.ensure_ray).
os.environ.setdefault(WORKER_NICENESS_VARIABLE, "0")

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def import_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module, imported as the script would import its neighbours:
    with examples/ on ``sys.path``, for the import only."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def tiny_ppo(env="CartPole-v1", batch: int = 256, **training) -> PPOConfig:
    """A PPO config small enough for an iteration in well under a second."""
    return (
        PPOConfig()
        .environment(env)
        .training(train_batch_size_per_learner=batch, minibatch_size=min(64, abs(batch)), num_epochs=2)
        .training(**training)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
        .debugging(seed=0)
    )


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray cluster for the tests of one module, shut down afterwards."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
