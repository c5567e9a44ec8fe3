"""DQN's Rainbow heads: distributional C51 (projection, loss, learning a return distribution)
and noisy nets (noisy while exploring and training, their mean while greedy)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from marl_arena.algorithms import DQNConfig
from marl_arena.algorithms.dqn.dqn_learner import project_distribution
from marl_arena.core import Columns, DuelingQModule, QModule
from marl_arena.core.noisy import NoisyLinear
from marl_arena.env import register_env

SUPPORT = torch.tensor([-1.0, 0.0, 1.0])


def _project(probs, reward, discount, bootstrap=True):
    return project_distribution(torch.tensor([probs]), torch.tensor([reward]), torch.tensor([discount]),
                                torch.tensor([bootstrap]), SUPPORT)[0]


@pytest.mark.parametrize(
    ("probs", "reward", "discount", "bootstrap", "expected"),
    [
        # All mass on 0 shifted by r=0.5: halfway between atoms 0 and 1.
        ([0.0, 1.0, 0.0], 0.5, 1.0, True, [0.0, 0.5, 0.5]),
        # Tz = 0.5 + 0.5 * [-1, 0, 1] = [0, 0.5, 1]: atom 0 -> 0, atom 1 splits, atom 2 -> 1.
        ([0.2, 0.3, 0.5], 0.5, 0.5, True, [0.0, 0.35, 0.65]),
        # Tz = -2 + [-1, 0, 1] is below v_min everywhere: all mass clipped to -1.
        ([0.2, 0.3, 0.5], -2.0, 1.0, True, [1.0, 0.0, 0.0]),
        # Tz = 0.25 + [-1, 0, 1] = [-0.75, 0.25, 1.25->1]: 0.2 splits 0.75/0.25 over -1/0,
        # 0.3 splits 0.75/0.25 over 0/1, 0.5 lands on 1.
        ([0.2, 0.3, 0.5], 0.25, 1.0, True, [0.15, 0.05 + 0.225, 0.075 + 0.5]),
        # Terminal: no bootstrap, the whole mass sits at r = 0.5.
        ([0.2, 0.3, 0.5], 0.5, 0.99, False, [0.0, 0.5, 0.5]),
        # A shifted atom exactly on a support atom gives it all its mass.
        ([0.0, 0.0, 1.0], 0.0, 1.0, True, [0.0, 0.0, 1.0]),
    ],
)
def test_c51_projection_by_hand(probs, reward, discount, bootstrap, expected):
    projected = _project(probs, reward, discount, bootstrap)
    assert torch.allclose(projected, torch.tensor(expected), atol=1e-6)
    assert projected.sum().item() == pytest.approx(1.0)


def test_c51_module_q_is_the_expectation_over_atoms():
    module = DuelingQModule(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(4),
                            {"fcnet_hiddens": [16], "num_atoms": 5, "v_min": -2.0, "v_max": 2.0})
    obs = torch.randn(6, 3)
    out = module.forward_train({Columns.OBS: obs})
    logits = out[Columns.QF_LOGITS]
    assert logits.shape == (6, 4, 5)
    assert torch.equal(module.support, torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    expected = (logits.softmax(-1) * module.support).sum(-1)
    assert torch.allclose(out[Columns.QF_PREDS], expected)
    greedy = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].argmax(-1)
    assert torch.equal(greedy, expected.argmax(-1))


def test_noisy_heads_explore_with_noise_and_act_greedily_without():
    torch.manual_seed(0)
    module = QModule(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), {"fcnet_hiddens": [8], "noisy": True})
    assert any(isinstance(layer, NoisyLinear) for layer in module.modules())
    batch = {Columns.OBS: torch.randn(4, 3)}
    greedy = [module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS] for _ in range(2)]
    assert torch.equal(greedy[0], greedy[1])
    noisy = [module.forward_train(batch)[Columns.QF_PREDS] for _ in range(2)]
    assert not torch.equal(noisy[0], noisy[1])
    noisy[0].sum().backward()
    sigmas = [p for name, p in module.named_parameters() if "sigma" in name]
    assert sigmas and all(p.grad is not None and p.grad.abs().sum() > 0 for p in sigmas)


class TwoArmBandit(gym.Env):
    """One step: arm 0 pays 0 or 10 with equal odds (mean 5), arm 1 pays 4 for sure."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        reward = float(self.np_random.integers(2) * 10) if action == 0 else 4.0
        return np.zeros(1, np.float32), reward, True, False, {}


register_env("two_arm_bandit", lambda cfg: TwoArmBandit())


def _bandit_dqn(**training) -> DQNConfig:
    return (
        DQNConfig()
        .environment("two_arm_bandit")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4, rollout_fragment_length=4)
        .training(train_batch_size=64, lr=3e-3, num_steps_sampled_before_learning_starts=200,
                  target_network_update_freq=100, replay_buffer_config={"type": "ReplayBuffer"}, **training)
        .reporting(min_sample_timesteps_per_iteration=1000)
        .rl_module(model_config={"fcnet_hiddens": [16]})
        .debugging(seed=0)
    )


def test_c51_learns_a_bimodal_return_distribution():
    algo = _bandit_dqn(num_atoms=11, v_min=0.0, v_max=10.0, epsilon=0.5).build_algo()
    for _ in range(4):
        algo.train()
    module = algo.get_module()
    with torch.no_grad():
        probs = module.forward_train({Columns.OBS: torch.zeros(1, 1)})[Columns.QF_LOGITS][0].softmax(-1)
    algo.stop()
    risky, safe = probs[0], probs[1]
    # Arm 0: half the mass at 0, half at 10, nothing between; arm 1: everything at 4.
    assert risky[0].item() == pytest.approx(0.5, abs=0.1) and risky[10].item() == pytest.approx(0.5, abs=0.1)
    assert risky[1:10].sum().item() < 0.05
    assert safe[4].item() > 0.9
    q = (probs * module.support).sum(-1)
    assert q[0].item() == pytest.approx(5.0, abs=0.6) and q[1].item() == pytest.approx(4.0, abs=0.3)


@pytest.mark.parametrize("noisy", [True, False])
def test_noisy_heads_are_the_only_exploration_when_epsilon_is_zero(noisy):
    """With epsilon 0, the same observation gets both arms only if the heads are noisy."""
    algo = _bandit_dqn(noisy=noisy, epsilon=0.0).build_algo()
    actions = algo.env_runner_group.sample(num_timesteps=400)[0].batches["default_policy"][Columns.ACTIONS]
    algo.stop()
    share = float(np.mean(actions == 0))
    if noisy:
        assert 0.05 < share < 0.95, share
    else:
        assert share in (0.0, 1.0)


def test_noisy_c51_dqn_without_epsilon_learns_the_better_arm():
    algo = _bandit_dqn(noisy=True, epsilon=0.0, num_atoms=11, v_min=0.0, v_max=10.0).build_algo()
    for _ in range(4):
        result = algo.train()
    greedy = algo.get_module().forward_inference({Columns.OBS: torch.zeros(1, 1)})[Columns.ACTION_DIST_INPUTS]
    algo.stop()
    assert result["learners"]["default_policy"]["epsilon"] == 0.0
    assert greedy[0, 0].item() == pytest.approx(5.0, abs=0.6) and greedy[0, 1].item() == pytest.approx(4.0, abs=0.3)


@pytest.mark.parametrize("training", [{"num_atoms": 51, "v_min": 0.0, "v_max": 100.0}, {"noisy": True}])
def test_rainbow_heads_checkpoint_round_trip(tmp_path, training):
    from marl_arena.algorithms import Algorithm

    algo = (DQNConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
            .training(num_steps_sampled_before_learning_starts=0, **training)
            .reporting(min_sample_timesteps_per_iteration=64).debugging(seed=1)).build_algo()
    algo.train()
    path = algo.save_to_path(str(tmp_path / "ckpt"))
    weights = algo.learner_group.get_weights()
    algo.stop()
    restored = Algorithm.from_checkpoint(path)
    module = restored.get_module()
    assert module.num_atoms == training.get("num_atoms", 1)
    assert any(isinstance(m, NoisyLinear) for m in module.modules()) == training.get("noisy", False)
    for key, value in restored.learner_group.get_weights()["default_policy"].items():
        assert torch.equal(value, weights["default_policy"][key])
    restored.stop()
