"""Schedules of training fields (``marl_arena.algorithms.schedules``) and PPO following them."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms.dqn.dqn_config import DQNConfig
from marl_arena.algorithms.schedules import check_schedule, value_at


def test_value_at_interpolates_linearly_and_holds_the_last_value():
    schedule = [[0, 1.0], [100, 0.5], [300, 0.1]]
    assert value_at(schedule, 0) == 1.0
    assert value_at(schedule, 50) == pytest.approx(0.75)
    assert value_at(schedule, 100) == pytest.approx(0.5)
    assert value_at(schedule, 200) == pytest.approx(0.3)
    assert value_at(schedule, 300) == pytest.approx(0.1)
    assert value_at(schedule, 10**9) == pytest.approx(0.1)
    assert value_at(0.25, 10**6) == 0.25
    assert value_at([[0, 2.0]], 5) == 2.0


class _Fields:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@pytest.mark.parametrize("value, words", [
    ([[10, 1e-3]], "first point must be at env step 0"),
    ([[0, 1e-3], [100, 1e-4], [100, 1e-5]], "increase strictly"),
    ([[0, 1e-3], [50.5, 1e-4]], "integer >= 0"),
    ([[0, 1e-3], [100, 0.0]], "every value must be > 0.0"),
    ([[0, 1e-3, 5]], "pair [env_steps, value]"),
    ([], "pair [env_steps, value]"),
    (-1.0, "must be a number > 0.0"),
    ("fast", "must be a number > 0.0"),
])
def test_check_schedule_names_the_field_the_value_and_what_is_allowed(value, words):
    with pytest.raises(ValueError) as error:
        check_schedule(_Fields(lr=value), "lr", low=0.0, low_inclusive=False)
    message = str(error.value)
    assert message.startswith(f"lr={value!r} is not allowed")
    assert words in message
    assert "[[0, 3e-4], [1000000, 3e-5]]" in message


def test_check_schedule_accepts_numbers_and_schedules_within_bounds():
    check_schedule(_Fields(c=0.0), "c", low=0.0)
    check_schedule(_Fields(c=[[0, 0.2], [1000, 0.0]]), "c", low=0.0)
    check_schedule(_Fields(c=((0, 0.2), (10, 0.1))), "c", low=0.0, high=1.0)


def test_ppo_validates_its_schedules_and_other_algorithms_keep_a_number_lr():
    with pytest.raises(ValueError, match=r"entropy_coeff=\[\[0, -0.1\]\] is not allowed"):
        tiny_ppo(entropy_coeff=[[0, -0.1]]).validate()
    with pytest.raises(ValueError, match=r"lr=\[\[5, 0.001\]\] is not allowed: the first point"):
        tiny_ppo(lr=[[5, 1e-3]]).validate()
    tiny_ppo(lr=[[0, 1e-3], [1000, 1e-4]], entropy_coeff=[[0, 0.1], [1000, 0.0]]).validate()
    with pytest.raises(ValueError, match=r"lr=\[\[0, 0.001\]\] is not allowed: it must be a number > 0.0"):
        DQNConfig().environment("CartPole-v1").training(lr=[[0, 1e-3]]).validate()


def test_ppo_follows_its_lr_and_entropy_schedules_by_sampled_env_steps():
    # batch 256: after iteration k the clock reads 256 k env steps.
    algo = tiny_ppo(lr=[[0, 1e-3], [512, 1e-5]], entropy_coeff=[[0, 0.4], [512, 0.0]]).build()
    try:
        seen = []
        for _ in range(3):
            metrics = algo.train()["learners"]["default_policy"]
            optimizer = algo.learner_group.local_learner.optimizers["default_policy"]["default"]
            seen.append((metrics["curr_lr"], metrics["curr_entropy_coeff"], optimizer.param_groups[0]["lr"]))
        assert seen[0][0] == pytest.approx(1e-3 + (1e-5 - 1e-3) * 256 / 512)
        assert seen[0][1] == pytest.approx(0.2)
        assert seen[0][2] == pytest.approx(seen[0][0])
        assert seen[1][:2] == pytest.approx((1e-5, 0.0)) and seen[2][:2] == pytest.approx((1e-5, 0.0))
        assert seen[2][2] == pytest.approx(1e-5)
    finally:
        algo.stop()


def _mean_entropy(algo) -> float:
    module = algo.get_module("default_policy")
    obs = torch.randn(512, 4) * 0.5
    with torch.no_grad():
        dist = module.action_distribution(module.forward_inference({"obs": obs})["action_dist_inputs"])
    return float(dist.entropy().mean())


def test_a_rising_entropy_schedule_makes_the_policy_near_uniform_and_a_vanishing_lr_freezes_it():
    # The same seed and batches; only the schedules differ. An entropy bonus that climbs to 5
    # outweighs CartPole's advantages (standardised to unit scale): the policy goes towards
    # uniform (entropy ln 2). With lr falling to 1e-9, the last iterations change nothing.
    rising = tiny_ppo(entropy_coeff=[[0, 0.0], [1024, 5.0]], lr=1e-3).build()
    frozen = tiny_ppo(lr=[[0, 1e-3], [1024, 1e-9]]).build()
    try:
        for _ in range(12):
            rising.train()
        assert _mean_entropy(rising) > 0.98 * math.log(2)
        for _ in range(4):
            frozen.train()
        before = [p.detach().clone() for p in frozen.get_module("default_policy").parameters()]
        for _ in range(3):
            frozen.train()
        after = [p.detach() for p in frozen.get_module("default_policy").parameters()]
        assert max(float((a - b).abs().max()) for a, b in zip(after, before)) < 1e-6
    finally:
        rising.stop()
        frozen.stop()


def test_a_constant_lr_keeps_learning_where_the_scheduled_one_froze():
    """The control for the test above: the same runs with lr held at 1e-3 do move."""
    algo = tiny_ppo(lr=1e-3).build()
    try:
        for _ in range(4):
            algo.train()
        before = [p.detach().clone() for p in algo.get_module("default_policy").parameters()]
        algo.train()
        after = [p.detach() for p in algo.get_module("default_policy").parameters()]
        assert max(float((a - b).abs().max()) for a, b in zip(after, before)) > 1e-4
    finally:
        algo.stop()
