"""Data-parallel learners (two Ray learner actors, gloo): every rank holds one state, and two
learners make the update that one learner makes on the whole batch.

One Ray session for the module; each algorithm starts its two learner actors once
(``pair``), and its tests run before the next algorithm's actors start.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms import DQNConfig, SACConfig
from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.core.columns import Columns

pytestmark = pytest.mark.ray

MID = "default_policy"
ROWS = 64  # rows of the batch given to one learner, and split in two halves for two
COMPARED = ("modules", "optimizers", "extra")  # the learner state that must agree; RNG streams may differ


def _off_policy(config_class, **training):
    """A DQN or SAC config on CartPole that learns within its first iteration."""
    return (
        config_class()
        .environment("CartPole-v1")
        .training(num_steps_sampled_before_learning_starts=64, train_batch_size=32,
                  replay_buffer_config={"capacity": 2000}, **training)
        .reporting(min_sample_timesteps_per_iteration=100)
        .rl_module(model_config={"fcnet_hiddens": [16, 16]})
        .debugging(seed=0)
    )


CONFIGS = {
    # Two epochs, so that the second one's KL is not zero. kl_target lies where the batch's
    # KL keeps the coefficient but one half's KL would raise it: a rank that adapted from
    # its own rows would hold another coefficient than the others and than one learner.
    "PPO": lambda: tiny_ppo(batch=ROWS, num_epochs=2, lr=3e-3, kl_target=8e-6)
    .rl_module(model_config={"fcnet_hiddens": [16, 16]}),
    # Hard target copies every 500 env steps: none within these tests, so a target that a
    # rank built from its own initialisation would still differ. Prioritized replay's
    # weights scale rows of a mean, which keeps the update exact.
    "DQN": lambda: _off_policy(DQNConfig, target_network_update_freq=500, epsilon=[(0, 1.0), (500, 0.1)]),
    # Discrete actions: the losses take exact expectations over the policy, so no sampled
    # action makes the ranks' losses differ from one learner's (with Box actions each rank
    # draws noise for its own rows, and two learners match one only in distribution).
    "SAC": lambda: _off_policy(SACConfig),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def pair(request, ray_session) -> Iterator[tuple[str, Algorithm, Algorithm]]:
    """(name, the algorithm with one local learner, the same with two learner actors)."""
    config = CONFIGS[request.param]()
    one = config.build_algo()
    two = config.copy().learners(num_learners=2).build_algo()
    yield request.param, one, two
    one.stop()
    two.stop()


def _batch(name: str, algo: Algorithm) -> dict[str, dict[str, np.ndarray]]:
    """``ROWS`` rows of what the algorithm learns from: a sampled PPO batch, or a replayed sample."""
    if name != "PPO":
        algo.train()  # fills the replay buffer
        return algo.replay_buffer.sample(ROWS, np.random.default_rng(0))
    batches, _ = algo.sample_batches(ROWS)
    batch = {key: value[:ROWS].copy() for key, value in batches[MID].items()}
    # Two learners bootstrap GAE where the batch is cut in two (shard_batches marks that row
    # truncated); one learner would carry the advantages across it. Ending a segment there
    # for both leaves the data-parallel update itself as the only difference.
    batch[Columns.TRUNCATEDS][ROWS // 2 - 1] |= ~batch[Columns.TERMINATEDS][ROWS // 2 - 1]
    return {MID: batch}


def _assert_same(a: Any, b: Any, where: str, exact: bool) -> None:
    """Nested dicts, lists and tensors equal: bit for bit, or to float32 rounding."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}", exact)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}/{index}", exact)
    elif isinstance(a, torch.Tensor):
        if exact:
            assert torch.equal(a, b), where
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=lambda m: f"{where}: {m}")
    elif isinstance(a, float) and not exact:
        assert a == pytest.approx(b, rel=1e-4), where
    else:
        assert a == b, where


def test_two_learners_update_like_one_on_the_whole_batch(pair):
    """The learners' all-reduced gradients (and PPO's batch statistics) make N shards one batch.

    The one-learner algorithm takes the two-learner group's state as it started (rank 0's),
    then both update on the same batch; weights, optimizer moments, target networks and
    PPO's KL coefficient must agree to float rounding (sums run in another order). One
    minibatch per epoch (``minibatch_size=None``: one learner takes the whole batch, each
    rank its whole half), so the average of two half-batch mean gradients is the gradient
    of the whole batch's mean.
    """
    name, one, two = pair
    batch = _batch(name, one)
    one.learner_group.set_state(two.learner_group.get_state())
    num_epochs = one.config.num_epochs if name == "PPO" else 1
    before = one.learner_group.get_weights([MID])[MID]
    one.learner_group.update(batch, num_epochs, None)
    two.learner_group.update(batch, num_epochs, None)
    expected = one.learner_group.get_state()
    if name != "PPO":  # TD errors of a batch from one's buffer must not reach two's priorities later
        for algo in (one, two):
            algo.learner_group.foreach_learner("pop_td_errors")
    assert any(not torch.equal(before[k], expected["modules"][MID][k]) for k in before)
    for rank, state in enumerate(two.learner_group.foreach_learner("get_state")):
        for part in COMPARED:
            _assert_same(expected[part], state[part], f"rank {rank}: {part}", exact=False)


@pytest.mark.parametrize("pair", ["DQN", "SAC"], indirect=True)
def test_every_rank_holds_the_same_state_after_training(pair):
    """Weights, target networks, optimizer moments and learner extras are rank 0's on every rank.

    Each rank used to copy its targets from its own initialisation before rank 0's weights
    arrived; only the two off-policy algorithms have targets (PPO's state is compared in the
    test above).
    """
    _, _, two = pair
    before = two.learner_group.get_weights([MID])[MID]
    for _ in range(2):
        two.train()
    first, second = two.learner_group.foreach_learner("get_state")
    assert any(not torch.equal(before[k], first["modules"][MID][k]) for k in before)
    assert set(first["extra"]["target_modules"]) == {MID}
    for part in COMPARED:
        _assert_same(first[part], second[part], part, exact=True)
