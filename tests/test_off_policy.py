"""The shared off-policy plumbing: replay buffers in checkpoints, and learners with several
named optimizers (each trained by its own loss only)."""

from __future__ import annotations

import pathlib

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms import DQNConfig, SACConfig
from marl_arena.algorithms.checkpoints import EXTRA_STATE
from marl_arena.algorithms.off_policy import OffPolicyAlgorithm
from marl_arena.algorithms.off_policy_config import OffPolicyConfig
from marl_arena.core import Columns, RLModule, RLModuleSpec
from marl_arena.core.distributions import Categorical
from marl_arena.core.rl_module import MultiRLModuleSpec
from marl_arena.learners.learner import DEFAULT_OPTIMIZER, Learner


def tiny_dqn(**training) -> DQNConfig:
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .training(num_steps_sampled_before_learning_starts=64, replay_buffer_config={"capacity": 500})
        .training(**training)
        .reporting(min_sample_timesteps_per_iteration=200)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )


def test_dqn_and_sac_share_the_off_policy_base():
    assert isinstance(DQNConfig(), OffPolicyConfig) and isinstance(SACConfig(), OffPolicyConfig)
    assert issubclass(DQNConfig().algo_class, OffPolicyAlgorithm)
    assert issubclass(SACConfig().algo_class, OffPolicyAlgorithm)
    assert DQNConfig().store_buffer_in_checkpoints is False and SACConfig().store_buffer_in_checkpoints is False


@pytest.mark.parametrize("replay_type", ["PrioritizedReplayBuffer", "ReplayBuffer"])
def test_stored_replay_restores_the_same_contents_and_the_same_next_sample(tmp_path, replay_type):
    algo = tiny_dqn(store_buffer_in_checkpoints=True, replay_buffer_config={"type": replay_type}).build_algo()
    try:
        for _ in range(4):  # 800 steps: the 500-slot ring has wrapped
            algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        restored = type(algo).from_checkpoint(path)
        try:
            saved_state = algo.replay_buffer.get_state()
            restored_state = restored.replay_buffer.get_state()
            assert restored_state.keys() == saved_state.keys() == {"default_policy"}
            for key, value in saved_state["default_policy"].items():
                other = restored_state["default_policy"][key]
                if key == "columns":
                    assert other.keys() == value.keys()
                    assert all(np.array_equal(other[c], value[c]) for c in value)
                else:
                    assert np.array_equal(other, value), key
            ours = algo.replay_buffer.sample(64, algo._replay_rng)["default_policy"]
            theirs = restored.replay_buffer.sample(64, restored._replay_rng)["default_policy"]
            assert (Columns.WEIGHTS in ours) == (replay_type == "PrioritizedReplayBuffer")
            for column, values in ours.items():
                assert np.array_equal(theirs[column], values), column
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_replay_is_left_out_of_checkpoints_by_default(tmp_path):
    algo = tiny_dqn().build_algo()
    try:
        algo.train()
        path = pathlib.Path(algo.save_to_path(str(tmp_path / "ckpt")))
        assert (path / EXTRA_STATE).stat().st_size < 2000  # the replay RNG and step credit, no transitions
        restored = type(algo).from_checkpoint(str(path))
        try:
            assert len(restored.replay_buffer) == 0
            assert restored._replay_rng.bit_generator.state == algo._replay_rng.bit_generator.state
        finally:
            restored.stop()
    finally:
        algo.stop()


# ---------------------------------------------------------------------- named optimizers
class _TwoParts(RLModule):
    """Two scalars, x and y, for a learner whose two losses both read y."""

    def __init__(self, observation_space, action_space, model_config=None, inference_only=False):
        super().__init__(observation_space, action_space, model_config, inference_only)
        self.x = torch.nn.Parameter(torch.tensor(1.0))
        self.y = torch.nn.Parameter(torch.tensor(2.0))

    def forward_inference(self, batch):
        return {Columns.ACTION_DIST_INPUTS: torch.zeros(len(batch[Columns.OBS]), 2)}

    forward_exploration = forward_inference

    def forward_train(self, batch):
        return {}

    def action_distribution(self, dist_inputs):
        return Categorical(dist_inputs)


class _TwoOptimizerLearner(Learner):
    def configure_optimizers_for_module(self, module_id, module):
        return {"x": torch.optim.SGD([module.x], lr=1.0), "y": torch.optim.SGD([module.y], lr=1.0)}

    def compute_loss_for_module(self, module_id, module, batch, fwd_out):
        return {"x": module.x * module.y, "y": module.y ** 2}, {}


def _learner(learner_class):
    spec = MultiRLModuleSpec({"m": RLModuleSpec(_TwoParts, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2))})
    return learner_class(SACConfig(), spec)


def test_each_named_optimizer_steps_on_the_gradient_of_its_own_loss():
    learner = _learner(_TwoOptimizerLearner)
    metrics = learner.update({"m": {Columns.OBS: np.zeros((4, 1), np.float32)}})["m"]
    module = learner.module["m"]
    # d(xy)/dx = y = 2 -> x = 1 - 2; d(y^2)/dy = 2y = 4 -> y = 2 - 4 (x*y's dy = x must not leak in).
    assert module.x.item() == pytest.approx(-1.0) and module.y.item() == pytest.approx(-2.0)
    assert metrics["gradients_global_norm_x"] == pytest.approx(2.0)
    assert metrics["gradients_global_norm_y"] == pytest.approx(4.0)
    state = learner.get_state()
    assert set(state["optimizers"]["m"]) == {"x", "y"}
    fresh = _learner(_TwoOptimizerLearner)
    fresh.set_state(state)
    assert fresh.module["m"].y.item() == pytest.approx(-2.0)


def test_losses_must_match_the_optimizers_by_name():
    class OneLoss(_TwoOptimizerLearner):
        def compute_loss_for_module(self, module_id, module, batch, fwd_out):
            return module.x * module.y, {}

    class WrongNames(_TwoOptimizerLearner):
        def compute_loss_for_module(self, module_id, module, batch, fwd_out):
            return {"x": module.x, "z": module.y}, {}

    batch = {"m": {Columns.OBS: np.zeros((4, 1), np.float32)}}
    with pytest.raises(ValueError, match=r"optimizers \['x', 'y'\].*one loss per optimizer"):
        _learner(OneLoss).update(batch)
    with pytest.raises(ValueError, match=r"losses \['x', 'z'\].*optimizers are \['x', 'y'\]"):
        _learner(WrongNames).update(batch)


def test_a_checkpoint_from_before_named_optimizers_still_restores():
    algo = tiny_dqn().build_algo()
    try:
        algo.train()
        learner = algo.learner_group.local_learner
        state = learner.get_state()
        state["optimizers"] = {mid: named[DEFAULT_OPTIMIZER] for mid, named in state["optimizers"].items()}
        learner.set_state(state)
        moments = learner.optimizers["default_policy"][DEFAULT_OPTIMIZER].state_dict()["state"][0]["exp_avg"]
        assert torch.equal(moments, state["optimizers"]["default_policy"]["state"][0]["exp_avg"])
    finally:
        algo.stop()


@pytest.mark.parametrize("num_envs", [1, 3])
def test_n_step_returns_reach_across_rollout_fragments(num_envs):
    """CartPole pays 1 per step: with gamma 0.5 and n=3 a full return is 1.75 with discount 0.125.

    Fragments of ONE env step would cut every return to one step without the runner's look-ahead.
    """
    from marl_arena.algorithms.off_policy import without_lookahead
    from marl_arena.replay.n_step import n_step_transitions

    config = (DQNConfig().environment("CartPole-v1")
              .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs, rollout_fragment_length=1)
              .training(n_step=3, gamma=0.5).debugging(seed=0))
    algo = config.build_algo()
    try:
        parts, steps = [], 0
        for _ in range(300):
            batches, results = algo.sample_batches(num_envs)
            steps += sum(r.env_steps for r in results)
            parts.append(without_lookahead(n_step_transitions(batches["default_policy"], 3, 0.5)))
    finally:
        algo.stop()
    rewards = np.concatenate([p[Columns.REWARDS] for p in parts])
    discounts = np.concatenate([p[Columns.N_STEP_DISCOUNT] for p in parts])
    terminated = np.concatenate([p[Columns.TERMINATEDS] for p in parts])
    full = np.isclose(rewards, 1.75) & np.isclose(discounts, 0.125) & ~terminated
    # Only transitions that reach the pole's fall (terminal within n steps) are shorter.
    assert np.all(full | terminated)
    assert full.mean() > 0.8
    # Every step is a transition once, except the last n-1 of each still running episode.
    assert steps - 2 * num_envs <= len(rewards) <= steps
    assert Columns.LOOKAHEAD not in parts[0]
