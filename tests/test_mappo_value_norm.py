"""Value-target normalisation (``PPOConfig.normalize_value_targets``, on-policy's ValueNorm): the
running moments against hand-computed values, PPO's targets and GAE through it for the default
module and the centralized critic, its checkpointed state, and learning with returns of a
scale the plain value loss cannot follow."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch

from marl_arena.algorithms import Algorithm, PPOConfig
from marl_arena.core import Columns, RLModuleSpec
from marl_arena.core.centralized_critic import CentralizedCriticModule
from marl_arena.env import register_env
from marl_arena.learners.value_norm import VARIANCE_FLOOR, ValueNormalizer

SCALE = 100.0
register_env("scaled_cartpole", lambda cfg: gym.wrappers.TransformReward(gym.make("CartPole-v1"),
                                                                         lambda r: SCALE * r))


# ---------------------------------------------------------------------------- the normaliser
def _moments(values):
    values = torch.tensor(values, dtype=torch.float64)
    return values.mean(), (values ** 2).mean()


def test_running_moments_are_debiased_moving_averages():
    norm = ValueNormalizer(decay=0.5)
    norm.update(*_moments([1.0, 3.0]))
    # raw averages 0.5 * 2 and 0.5 * 5, debiasing term 0.5: mean 2, mean square 5, variance 1.
    mean, std = norm.mean_std()
    assert float(mean) == pytest.approx(2.0) and float(std) == pytest.approx(1.0)
    norm.update(*_moments([5.0]))
    # raw 0.5 * 1 + 0.5 * 5 = 3 and 0.5 * 2.5 + 0.5 * 25 = 13.75, debiasing 0.75.
    mean, std = norm.mean_std()
    assert float(mean) == pytest.approx(4.0)
    assert float(std) == pytest.approx(math.sqrt(13.75 / 0.75 - 16.0))
    x = torch.tensor([4.0, 4.0 + math.sqrt(13.75 / 0.75 - 16.0)])
    torch.testing.assert_close(norm.normalize(x), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(norm.denormalize(norm.normalize(x)), x)
    assert norm.normalize(x).dtype == torch.float32


def test_variance_has_a_floor_and_a_fresh_normaliser_scales_by_it():
    fresh = ValueNormalizer()
    mean, std = fresh.mean_std()
    assert float(mean) == 0.0 and float(std) == pytest.approx(math.sqrt(VARIANCE_FLOOR))
    constant = ValueNormalizer(decay=0.9)
    constant.update(*_moments([7.0, 7.0, 7.0]))
    torch.testing.assert_close(constant.normalize(torch.tensor([7.1])), torch.tensor([1.0]))


def test_normaliser_state_round_trips_and_bad_decay_is_refused():
    norm = ValueNormalizer(decay=0.9)
    norm.update(*_moments([-3.0, 10.0]))
    copy = ValueNormalizer(decay=0.9)
    copy.set_state(norm.get_state())
    assert [float(v) for v in copy.mean_std()] == [float(v) for v in norm.mean_std()]
    with pytest.raises(ValueError, match="decay=1.0 must be in"):
        ValueNormalizer(decay=1.0)


def test_config_fields_are_validated_by_name():
    with pytest.raises(ValueError, match="normalize_value_targets='yes'"):
        PPOConfig().environment("CartPole-v1").training(normalize_value_targets="yes").validate()
    with pytest.raises(ValueError, match="value_norm_decay=1.0 must be below 1"):
        PPOConfig().environment("CartPole-v1").training(normalize_value_targets=True, value_norm_decay=1.0).validate()


# ---------------------------------------------------------------------------- PPO's learner
def _two_rows(critic_width: int | None) -> dict[str, torch.Tensor]:
    batch = {Columns.OBS: torch.zeros(2, 4), Columns.ACTIONS: torch.zeros(2, dtype=torch.int64),
             Columns.REWARDS: torch.tensor([10.0, 30.0]), Columns.TERMINATEDS: torch.tensor([False, True]),
             Columns.TRUNCATEDS: torch.tensor([False, False]), Columns.NEXT_OBS: torch.zeros(2, 4),
             Columns.ACTION_LOGP: torch.zeros(2), Columns.ACTION_DIST_INPUTS: torch.zeros(2, 2)}
    if critic_width is not None:
        batch[Columns.CRITIC_OBS] = torch.zeros(2, critic_width)
        batch[Columns.NEXT_CRITIC_OBS] = torch.zeros(2, critic_width)
    return batch


@pytest.mark.parametrize("centralized", [False, True], ids=["default-module", "centralized-critic"])
def test_ppo_runs_gae_on_denormalised_values_and_trains_on_normalised_targets(centralized):
    model = {"fcnet_hiddens": [8]}
    spec = (RLModuleSpec(module_class=CentralizedCriticModule, model_config={**model, "critic_input": "team_obs"})
            if centralized else RLModuleSpec(model_config=model))
    config = (PPOConfig().environment("CartPole-v1")
              .training(gamma=1.0, lambda_=1.0, normalize_value_targets=True, value_norm_decay=0.5)
              .rl_module(rl_module_spec=spec).debugging(seed=0))
    algo = config.build_algo()
    try:
        learner = algo.learner_group.local_learner
        module = learner.module["default_policy"]
        with torch.no_grad():  # the value head outputs 1 (normalised) everywhere
            module.vf[-1].weight.zero_()
            module.vf[-1].bias.fill_(1.0)
        norm = learner.value_normalizers["default_policy"]
        norm.update(*_moments([0.0, 4.0]))  # mean 2, std 2: the head's 1 stands for a value of 4
        prepared = learner.prepare_batch("default_policy", _two_rows(4 if centralized else None))
        # gamma = lambda = 1, the episode ends at row 1: returns 40 and 30 (no bootstrap), so
        # value targets are the returns and advantages the returns minus the denormalised 4.
        raw_targets = torch.tensor([40.0, 30.0])
        # The batch moments (mean 35, mean square 1250) are folded in before normalising: the raw
        # averages were 0.5 * 2 and 0.5 * 8 (debiasing 0.5), now 0.5 * 1 + 0.5 * 35 and
        # 0.5 * 4 + 0.5 * 1250 (debiasing 0.75).
        mean = (0.5 + 17.5) / 0.75
        std = math.sqrt((2.0 + 625.0) / 0.75 - mean ** 2)
        torch.testing.assert_close(prepared[Columns.VALUE_TARGETS], (raw_targets - mean) / std)
        advantages = raw_targets - 4.0  # 36 and 26, then standardised over the batch
        expected = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        torch.testing.assert_close(prepared[Columns.ADVANTAGES], expected)
        assert learner.get_extra_state()["value_normalizers"]["default_policy"] == norm.get_state()
    finally:
        algo.stop()


def test_normaliser_state_is_checkpointed_and_reset_with_the_module(tmp_path):
    config = (PPOConfig().environment("CartPole-v1")
              .training(train_batch_size=200, minibatch_size=100, num_epochs=1, normalize_value_targets=True)
              .rl_module(model_config={"fcnet_hiddens": [8]}).debugging(seed=0))
    algo = config.build_algo()
    try:
        metrics = algo.train()["learners"]["default_policy"]
        assert metrics["value_norm_mean"] > 1.0  # CartPole's returns, not the 0 it starts from
        algo.save_to_path(str(tmp_path))
        saved = algo.learner_group.local_learner.value_normalizers["default_policy"].get_state()
        algo.learner_group.local_learner.reset_module("default_policy")
        assert algo.learner_group.local_learner.value_normalizers["default_policy"].get_state()["debias"] == 0.0
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert restored.learner_group.local_learner.value_normalizers["default_policy"].get_state() == saved
    finally:
        restored.stop()


def _explained_variances(normalize: bool, iterations: int, stop_above: float | None = None) -> list[float]:
    config = (PPOConfig().environment("scaled_cartpole")
              .training(train_batch_size_per_learner=2000, minibatch_size=128, num_epochs=10,
                        normalize_value_targets=normalize)
              .rl_module(model_config={"fcnet_hiddens": [64, 64]}).debugging(seed=1))
    algo = config.build_algo()
    explained = []
    try:
        for _ in range(iterations):
            explained.append(algo.train()["learners"]["default_policy"]["vf_explained_var"])
            if stop_above is not None and explained[-1] > stop_above:
                break
    finally:
        algo.stop()
    return explained


def test_value_function_learns_returns_a_hundred_times_larger_only_when_normalised():
    """CartPole with every reward x100 (returns in the thousands): the plain value loss, the
    squared error capped at vf_clip_param, gives the value head no gradient and it explains
    nothing; normalised, it learns the returns as the policy improves."""
    assert max(_explained_variances(False, 4)) < 0.05
    assert _explained_variances(True, 10, stop_above=0.5)[-1] > 0.5
