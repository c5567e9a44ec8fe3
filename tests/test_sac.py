"""SAC in one process: targets and losses by hand, temperature and target updates, learning
checks on small continuous and masked discrete tasks, multi-agent, checkpoints, and SAC as
a league trainer."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

import conftest  # noqa: F401  (registers "ma_cartpole")
from marl_arena.algorithms import SACConfig
from marl_arena.algorithms.registry import config_for
from marl_arena.algorithms.sac.sac_losses import (
    auto_discrete_target_entropy,
    critic_loss,
    discrete_entropy,
    expected_soft_value,
    soft_q_targets,
    temperature_loss,
)
from marl_arena.core import Columns, SACModule, SingleQSACModule


def tiny_sac(env="Pendulum-v1", **training) -> SACConfig:
    """A SAC config whose iterations take a fraction of a second."""
    return (
        SACConfig()
        .environment(env)
        .training(num_steps_sampled_before_learning_starts=64, train_batch_size=32,
                  replay_buffer_config={"capacity": 2000})
        .training(**training)
        .reporting(min_sample_timesteps_per_iteration=100)
        .rl_module(model_config={"fcnet_hiddens": [32, 32], "fcnet_activation": "relu"})
        .debugging(seed=0)
    )


def _params(module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


class TrackTarget(gym.Env):
    """One-step continuous task: observe x in [-1, 1], act a in [-1, 1], reward -(a - x)^2.

    A uniformly random policy scores -2/3 on average; the optimal one scores 0.
    """

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, config=None):
        super().__init__()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = self.np_random.uniform(-1.0, 1.0, (1,)).astype(np.float32)
        return self._x, {}

    def step(self, action):
        reward = -float((np.asarray(action)[0] - self._x[0]) ** 2)
        return self._x, reward, True, False, {}


class MaskedPick(gym.Env):
    """One-step discrete task with a legal-action mask: pick the marked action out of four.

    Two actions are legal (the marked one and one other); an illegal pick raises, so a
    policy that ignores the mask crashes the run. A random legal pick scores 0.5.
    """

    observation_space = gym.spaces.Dict({
        "observation": gym.spaces.Box(0.0, 1.0, (4,), np.float32),
        "action_mask": gym.spaces.Box(0.0, 1.0, (4,), np.float32),
    })
    action_space = gym.spaces.Discrete(4)

    def __init__(self, config=None):
        super().__init__()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._best, other = self.np_random.choice(4, size=2, replace=False)
        self._mask = np.zeros(4, np.float32)
        self._mask[[self._best, other]] = 1.0
        return {"observation": np.eye(4, dtype=np.float32)[self._best], "action_mask": self._mask}, {}

    def step(self, action):
        if self._mask[int(action)] == 0:
            raise ValueError(f"illegal action {action} under mask {self._mask}")
        obs = {"observation": np.zeros(4, np.float32), "action_mask": self._mask}
        return obs, float(int(action) == self._best), True, False, {}


# ---------------------------------------------------------------------- targets and losses by hand
def test_continuous_soft_target_takes_the_twin_minimum_and_the_entropy_term():
    next_q1, next_q2 = torch.tensor([1.0, 5.0, 2.0]), torch.tensor([2.0, 3.0, 9.0])
    next_logp, alpha = torch.tensor([-1.0, 0.5, 0.0]), 0.2
    next_values = torch.minimum(next_q1, next_q2) - alpha * next_logp  # [1.2, 2.9, 2.0]
    targets = soft_q_targets(torch.tensor([1.0, 0.0, 3.0]), torch.tensor([False, False, True]),
                             torch.tensor([0.9, 0.81, 0.9]), next_values)
    assert torch.allclose(targets, torch.tensor([1.0 + 0.9 * 1.2, 0.81 * 2.9, 3.0]))


def test_discrete_expectation_counts_legal_actions_only():
    probs = torch.tensor([[0.5, 0.0, 0.5], [0.2, 0.3, 0.5]])
    lowest = torch.finfo(torch.float32).min
    log_probs = torch.where(probs > 0, probs.log(), torch.full_like(probs, lowest))  # as a masked policy gives
    legal = torch.tensor([[True, False, True], [True, True, True]])
    q = torch.tensor([[1.0, 1e9, 3.0], [1.0, 2.0, 3.0]])  # an illegal action's Q is never looked at
    alpha = 2.0  # large enough that alpha * lowest overflows to -inf: must not leak NaN
    value = expected_soft_value(log_probs, q, alpha, legal)
    by_hand = [0.5 * (1.0 - alpha * math.log(0.5)) + 0.5 * (3.0 - alpha * math.log(0.5)),
               sum(p * (qa - alpha * math.log(p)) for p, qa in ((0.2, 1.0), (0.3, 2.0), (0.5, 3.0)))]
    assert torch.allclose(value, torch.tensor(by_hand))
    assert torch.allclose(discrete_entropy(log_probs, legal),
                          torch.tensor([math.log(2.0), -sum(p * math.log(p) for p in (0.2, 0.3, 0.5))]))
    assert expected_soft_value(log_probs, q, alpha, torch.zeros_like(legal)).tolist() == [0.0, 0.0]


def test_discrete_actor_gradient_is_finite_and_zero_on_illegal_logits():
    logits = torch.tensor([[0.3, -1.0, 0.7]], requires_grad=True)
    legal = torch.tensor([[True, False, True]])
    masked = logits.masked_fill(~legal, torch.finfo(torch.float32).min)
    log_probs = masked - masked.logsumexp(-1, keepdim=True)
    loss = -expected_soft_value(log_probs, torch.tensor([[1.0, 50.0, 2.0]]), 3.0, legal).sum()
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 1] == 0.0 and logits.grad[0, 0] != 0.0


def test_critic_and_temperature_losses_by_hand():
    q_taken = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # (num_q=2, rows=2)
    targets = torch.tensor([2.0, 2.0])
    weights = torch.tensor([1.0, 0.5])
    # Q1: 0.5 * [1, 0] * w -> mean 0.25; Q2: 0.5 * [1, 4] * w -> [0.5, 1.0] -> mean 0.75.
    assert critic_loss(q_taken, targets, weights).item() == pytest.approx(1.0)
    assert critic_loss(q_taken, targets).item() == pytest.approx(0.25 + 1.25)
    log_alpha = torch.tensor(0.0, requires_grad=True)
    temperature_loss(log_alpha, torch.tensor([0.5, 0.7]), 1.0).backward()
    assert log_alpha.grad.item() == pytest.approx(-0.4)  # entropy below target: descent raises alpha


def test_auto_discrete_target_entropy_follows_the_legal_actions_per_row():
    legal = torch.tensor([[True, True, True, True], [True, False, True, False], [True, False, False, False]])
    assert torch.allclose(auto_discrete_target_entropy(legal, 0.5),
                          torch.tensor([0.5 * math.log(4), 0.5 * math.log(2), 0.0]))


def _constant_critics(target, values) -> None:
    """Make each target critic output constants (its last bias: one per action, or one), whatever the input."""
    with torch.no_grad():
        for q_net, value in zip(target.q_nets, values):
            for p in q_net.parameters():
                p.zero_()
            q_net[-1].bias.copy_(torch.as_tensor(value, dtype=torch.float32).expand_as(q_net[-1].bias))


def test_learner_discrete_target_is_the_exact_expectation_under_the_target_critics():
    algo = tiny_sac("CartPole-v1", initial_alpha=0.5).build_algo()
    try:
        learner = algo.learner_group.local_learner
        module = learner.module["default_policy"]
        _constant_critics(learner.target_modules["default_policy"], ([2.0, 2.0], [1.0, 4.0]))
        with torch.no_grad():
            for p in module.pi.parameters():
                p.zero_()
            module.pi[-1].bias.copy_(torch.tensor([0.0, math.log(3.0)]))  # pi = [0.25, 0.75]
        obs = torch.zeros(2, 4)
        batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: torch.tensor([0, 1]),
                 Columns.REWARDS: torch.tensor([1.0, 1.0]), Columns.TERMINATEDS: torch.tensor([False, True]),
                 Columns.N_STEP_DISCOUNT: torch.tensor([0.5, 0.5])}
        targets = learner.prepare_batch("default_policy", batch)[Columns.VALUE_TARGETS]
        # min over critics per action: [min(2, 1), min(2, 4)] = [1, 2]
        value = 0.25 * (1.0 - 0.5 * math.log(0.25)) + 0.75 * (2.0 - 0.5 * math.log(0.75))
        assert torch.allclose(targets, torch.tensor([1.0 + 0.5 * value, 1.0]))
    finally:
        algo.stop()


def test_learner_continuous_target_uses_min_critic_and_sampled_entropy_term():
    algo = tiny_sac(initial_alpha=1.0).build_algo()
    try:
        learner = algo.learner_group.local_learner
        module = learner.module["default_policy"]
        _constant_critics(learner.target_modules["default_policy"], (-3.0, -2.0))
        obs = torch.zeros(3, 3)
        batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: torch.zeros(3, 1),
                 Columns.REWARDS: torch.tensor([1.0, 0.0, 2.0]),
                 Columns.TERMINATEDS: torch.tensor([False, False, True])}
        torch.manual_seed(7)
        targets = learner.prepare_batch("default_policy", dict(batch))[Columns.VALUE_TARGETS]
        torch.manual_seed(7)  # the same next-action sample, to read its log-probability
        _, next_logp = module.action_distribution(module.policy_inputs({Columns.OBS: obs})).rsample_with_logp()
        expected = torch.tensor([1.0, 0.0, 2.0]) + torch.tensor([0.99, 0.99, 0.0]) * (-3.0 - next_logp.detach())
        assert torch.allclose(targets, expected, atol=1e-6)
    finally:
        algo.stop()


# ---------------------------------------------------------------------- temperature and targets
@pytest.mark.parametrize("peaked, target_entropy, direction", [(True, 1.0, "up"), (False, 0.1, "down")])
def test_alpha_moves_towards_the_target_entropy(peaked, target_entropy, direction):
    algo = tiny_sac("CartPole-v1", target_entropy=target_entropy, alpha_lr=0.05).build_algo()
    try:
        learner = algo.learner_group.local_learner
        module = learner.module["default_policy"]
        with torch.no_grad():
            module.pi[-1].bias.copy_(torch.tensor([8.0, 0.0]) if peaked else torch.zeros(2))
            module.pi[-1].weight.zero_()
        rng = np.random.default_rng(0)
        batch = {Columns.OBS: rng.normal(size=(32, 4)).astype(np.float32),
                 Columns.NEXT_OBS: rng.normal(size=(32, 4)).astype(np.float32),
                 Columns.ACTIONS: rng.integers(0, 2, 32), Columns.REWARDS: np.ones(32, np.float32),
                 Columns.TERMINATEDS: np.zeros(32, bool)}
        before = module.log_alpha.item()
        for _ in range(5):
            metrics = learner.update({"default_policy": batch})["default_policy"]
        after = module.log_alpha.item()
        assert (after > before) if direction == "up" else (after < before)
        assert metrics["alpha_value"] == pytest.approx(math.exp(module.log_alpha.item()), rel=0.2)
    finally:
        algo.stop()


def test_soft_target_update_after_every_gradient_step_and_only_of_the_critics():
    algo = tiny_sac(tau=0.25).build_algo()
    try:
        learner = algo.learner_group.local_learner
        target, critic = learner.target_modules["default_policy"], learner.module["default_policy"].critic
        assert set(dict(target.named_parameters())) == set(dict(critic.named_parameters()))
        with torch.no_grad():
            for p in target.parameters():
                p.fill_(1.0)
            for p in critic.parameters():
                p.fill_(3.0)
        learner.after_update("default_policy", {})
        assert torch.allclose(_params(target), torch.full_like(_params(target), 0.25 * 3.0 + 0.75 * 1.0))
        learner.after_update("default_policy", {})
        assert torch.allclose(_params(target), torch.full_like(_params(target), 0.25 * 3.0 + 0.75 * 1.5))
    finally:
        algo.stop()


def test_periodic_target_copy_without_tau():
    algo = tiny_sac(tau=None, target_network_update_freq=100).build_algo()
    try:
        learner = algo.learner_group.local_learner
        target, critic = learner.target_modules["default_policy"], learner.module["default_policy"].critic
        with torch.no_grad():
            for p in critic.parameters():
                p.add_(1.0)
        learner.after_update("default_policy", {})
        assert learner.after_training_step(99) == {"target_updated": 0.0}
        assert not torch.equal(_params(target), _params(critic))
        assert learner.after_training_step(100) == {"target_updated": 1.0}
        assert torch.equal(_params(target), _params(critic))
    finally:
        algo.stop()


def test_each_optimizer_learns_from_its_own_loss_only():
    """The actor loss runs through the critics; one update must leave the critic's gradient
    equal to the critic loss's gradient alone."""
    algo = tiny_sac().build_algo()
    try:
        learner = algo.learner_group.local_learner
        module = learner.module["default_policy"]
        assert {n: [id(p) for g in o.param_groups for p in g["params"]]
                for n, o in learner.optimizers["default_policy"].items()} == {
            n: [id(p) for p in ps] for n, ps in module.parameter_groups().items()}
        rng = np.random.default_rng(0)
        batch = {Columns.OBS: torch.as_tensor(rng.normal(size=(16, 3)), dtype=torch.float32),
                 Columns.NEXT_OBS: torch.as_tensor(rng.normal(size=(16, 3)), dtype=torch.float32),
                 Columns.ACTIONS: torch.as_tensor(rng.uniform(-2, 2, size=(16, 1)), dtype=torch.float32),
                 Columns.REWARDS: torch.ones(16), Columns.TERMINATEDS: torch.zeros(16, dtype=torch.bool)}
        batch = learner.prepare_batch("default_policy", batch)
        losses, _ = learner.compute_loss_for_module("default_policy", module, batch, module.forward_train(batch))
        critic_params = list(module.critic.parameters())
        expected = torch.autograd.grad(losses["critic"], critic_params, retain_graph=True)
        learner._step_optimizers("default_policy", module, losses)
        assert all(torch.equal(p.grad, g) for p, g in zip(critic_params, expected))
    finally:
        algo.stop()


# ---------------------------------------------------------------------- runs
@pytest.mark.parametrize(
    "env, multi_agent",
    [
        ("Pendulum-v1", None),
        ("CartPole-v1", None),
        ("ma_cartpole", {"policies": ["p0", "p1"], "policy_mapping_fn": lambda aid, *a, **k: f"p{aid}"}),
        ("games:take_away", {"policies": ["shared"], "policy_mapping_fn": lambda aid, *a, **k: "shared"}),
    ],
    ids=["continuous", "discrete", "two-modules", "masked-shared"],
)
def test_smoke(env, multi_agent):
    config = tiny_sac(env, n_step=2)
    if multi_agent:
        config.multi_agent(**multi_agent)
    algo = config.build_algo()
    try:
        before = {mid: _params(algo.get_module(mid)).clone() for mid in algo.learner_group.module_ids_to_train}
        result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] >= 100
        for mid, params in before.items():
            assert not torch.equal(params, _params(algo.get_module(mid))), f"module {mid} did not change"
            metrics = result["learners"][mid]
            for key in ("actor_loss", "critic_loss", "alpha_loss", "alpha_value", "entropy", "qf_mean",
                        "gradients_global_norm_actor", "gradients_global_norm_critic", "replay_buffer_size"):
                assert math.isfinite(metrics[key]), (mid, key, metrics)
            assert metrics["replay_buffer_size"] > 0
        assert sorted(algo.replay_buffer.module_ids) == sorted(before)
        assert algo.evaluate()["env_runners"]["num_episodes"] == 10
    finally:
        algo.stop()


def test_twin_q_flag_picks_the_module_class_and_prioritized_replay_gets_td_errors():
    assert isinstance(tiny_sac(twin_q=False).build_algo().get_module(), SingleQSACModule)
    algo = tiny_sac(replay_buffer_config={"type": "PrioritizedReplayBuffer", "alpha": 0.6, "beta": 0.4}).build_algo()
    try:
        assert type(algo.get_module()) is SACModule
        algo.train()
        buffer = algo.replay_buffer["default_policy"]
        priorities = buffer.get_state()["priorities"]
        assert len(set(np.round(priorities, 6))) > 1  # TD errors came back as priorities
    finally:
        algo.stop()
    with pytest.raises(ValueError, match="Discrete or a bounded float Box"):
        SACModule(gym.spaces.Box(-1, 1, (3,)), gym.spaces.MultiBinary(2))


@pytest.mark.parametrize(
    "training, field, value",
    [
        ({"initial_alpha": 0.0}, "initial_alpha", "0.0"),
        ({"target_entropy": "high"}, "target_entropy", "'high'"),
        ({"target_entropy_scale": 1.5}, "target_entropy_scale", "1.5"),
        ({"actor_lr": -1.0}, "actor_lr", "-1.0"),
        ({"critic_lr": 0}, "critic_lr", "0"),
        ({"twin_q": 1}, "twin_q", "1"),
        ({"tau": 0.0}, "tau", "0.0"),
        ({"n_step": 0}, "n_step", "0"),
        ({"store_buffer_in_checkpoints": "yes"}, "store_buffer_in_checkpoints", "'yes'"),
        ({"replay_buffer_config": {"type": "Nope"}}, "replay_buffer_config", "Nope"),
    ],
)
def test_config_errors_name_field_and_value(training, field, value):
    with pytest.raises(ValueError, match=rf"{field}.*{value}"):
        tiny_sac(**training).build_algo()


def test_registry_and_rllib_names():
    config = config_for("SAC")
    assert isinstance(config, SACConfig)
    config.training(twin_q=True, tau=5e-3, initial_alpha=1.0, target_entropy="auto", actor_lr=3e-4,
                    critic_lr=3e-4, alpha_lr=3e-4, n_step=1, train_batch_size=256, store_buffer_in_checkpoints=False,
                    num_steps_sampled_before_learning_starts=1000, target_network_update_freq=1,
                    replay_buffer_config={"capacity": 10})
    assert config.replay_buffer_config == {"type": "ReplayBuffer", "capacity": 10}


# ---------------------------------------------------------------------- learning
def test_continuous_sac_learns_to_track_a_target():
    config = (tiny_sac(TrackTarget, num_steps_sampled_before_learning_starts=200, train_batch_size=64,
                       actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
              .reporting(min_sample_timesteps_per_iteration=500)
              .evaluation(evaluation_duration=50))
    algo = config.build_algo()
    try:
        for _ in range(4):
            algo.train()
        score = algo.evaluate()["env_runners"]["episode_return_mean"]
    finally:
        algo.stop()
    assert score > -0.05, f"greedy mean reward {score} (random: -0.67, optimal: 0)"


def test_discrete_sac_learns_a_masked_pick_and_never_plays_illegal_moves():
    config = (tiny_sac(MaskedPick, num_steps_sampled_before_learning_starts=100, train_batch_size=64,
                       actor_lr=1e-3, critic_lr=1e-3)
              .reporting(min_sample_timesteps_per_iteration=300)
              .evaluation(evaluation_duration=50))
    algo = config.build_algo()
    try:
        for _ in range(3):
            algo.train()
        score = algo.evaluate()["env_runners"]["episode_return_mean"]
    finally:
        algo.stop()
    assert score >= 0.95, f"greedy success {score} (random legal: 0.5)"


# ---------------------------------------------------------------------- checkpoints
RESTORE_AND_UPDATE = textwrap.dedent(
    """
    import pickle, sys, torch
    from marl_arena.algorithms import Algorithm
    checkpoint, batch_file, out_file = sys.argv[1:]
    algo = Algorithm.from_checkpoint(checkpoint)
    learner = algo.learner_group.local_learner
    with open(batch_file, "rb") as f:
        batch = pickle.load(f)
    algo.learner_group.update(batch, 1, None)  # the actor loss samples: the restored torch RNG gives the same noise
    torch.save({"module": algo.get_module().state_dict(),
                "target": learner.target_modules["default_policy"].state_dict(),
                "optimizers": {n: o.state_dict() for n, o in learner.optimizers["default_policy"].items()}}, out_file)
    algo.stop()
    """
)


def test_checkpoint_restores_in_a_new_process_and_continues_bit_for_bit(tmp_path):
    algo = tiny_sac().build_algo()
    try:
        algo.train()
        algo.train()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        batch = algo.replay_buffer.sample(32, np.random.default_rng(5))
        with open(tmp_path / "batch.pkl", "wb") as f:
            pickle.dump(batch, f)
        algo.learner_group.update(batch, 1, None)
        learner = algo.learner_group.local_learner
        expected = {"module": algo.get_module().state_dict(),
                    "target": learner.target_modules["default_policy"].state_dict(),
                    "optimizers": {n: o.state_dict() for n, o in learner.optimizers["default_policy"].items()}}
    finally:
        algo.stop()
    script = tmp_path / "restore.py"
    script.write_text(RESTORE_AND_UPDATE)
    subprocess.run([sys.executable, str(script), path, str(tmp_path / "batch.pkl"), str(tmp_path / "out.pt")],
                   check=True, capture_output=True, timeout=120)
    out = torch.load(tmp_path / "out.pt")
    for part in ("module", "target"):
        for name, value in expected[part].items():
            assert torch.equal(out[part][name], value), f"{part} {name} differs after restore + one update"
    assert set(out["optimizers"]) == {"actor", "critic", "alpha"}
    for name, state in expected["optimizers"].items():
        for index, moments in state["state"].items():
            for key, value in moments.items():
                assert torch.equal(out["optimizers"][name]["state"][index][key], value), (name, index, key)


# ---------------------------------------------------------------------- league
def test_discrete_sac_trains_a_take_away_league_player_that_beats_random(tmp_path):
    from marl_arena.core.scripted import RandomModule
    from marl_arena.league.league_config import LeagueConfig

    trainer = (
        SACConfig()
        .training(gamma=1.0, train_batch_size=64, num_steps_sampled_before_learning_starts=200,
                  actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, replay_buffer_config={"capacity": 5000})
        .env_runners(num_envs_per_env_runner=4, rollout_fragment_length=2)
        .reporting(min_sample_timesteps_per_iteration=400)
        .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
    )
    league = (
        LeagueConfig()
        .environment("games:take_away", env_config={"pile": 10})
        .trainer(trainer)
        .roster(main_agents=1, scripted={"random": RandomModule})
        .matchmaking("uniform")
        .snapshots(win_rate=None)
        .store(str(tmp_path))
    ).build()
    try:
        def win_rate() -> float:
            matches = league.play_matches("main_0", "random", episodes=200)
            return float(np.mean([m.score if m.players[0] == "main_0" else 1.0 - m.score for m in matches]))

        before = win_rate()
        league.run(6)
        after = win_rate()
        board = {row["player"]: row for row in league.leaderboard()}
    finally:
        league.stop()
    assert after >= 0.8 and after > before, f"win rate vs random {before:.2f} -> {after:.2f}"
    assert board["main_0"]["elo"] > board["random"]["elo"]
