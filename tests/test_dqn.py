"""DQN in one process: smoke runs, hand-computed targets and target updates, epsilon
schedule, config errors, checkpoints with the target network, and a real learning check."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import conftest  # noqa: F401  (registers "ma_cartpole")
from marl_arena.algorithms import DQN, DQNConfig
from marl_arena.algorithms.schedules import value_at
from marl_arena.algorithms.dqn.dqn_learner import q_targets
from marl_arena.learners.target_networks import update_target
from marl_arena.algorithms.registry import config_for
from marl_arena.core import Columns, DuelingQModule, QModule


def tiny_dqn(env="CartPole-v1", **training) -> DQNConfig:
    """A DQN config whose iterations take a fraction of a second."""
    return (
        DQNConfig()
        .environment(env)
        .training(num_steps_sampled_before_learning_starts=64, epsilon=[(0, 1.0), (500, 0.1)],
                  replay_buffer_config={"capacity": 2000})
        .training(**training)
        .reporting(min_sample_timesteps_per_iteration=200)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
        .debugging(seed=0)
    )


def _params(module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize(
    "env, multi_agent",
    [
        ("CartPole-v1", None),
        ("ma_cartpole", {"policies": ["p0", "p1"], "policy_mapping_fn": lambda aid, *a, **k: f"p{aid}"}),
        ("games:take_away", {"policies": ["shared"], "policy_mapping_fn": lambda aid, *a, **k: "shared"}),
    ],
    ids=["cartpole", "two-modules", "masked-shared"],
)
def test_smoke(env, multi_agent):
    config = tiny_dqn(env, n_step=3)
    if multi_agent:
        config.multi_agent(**multi_agent)
    algo = config.build_algo()
    try:
        before = {mid: _params(algo.get_module(mid)).clone() for mid in algo.learner_group.module_ids_to_train}
        result = algo.train()
        assert result["num_env_steps_sampled_lifetime"] >= 200
        for mid, params in before.items():
            assert not torch.equal(params, _params(algo.get_module(mid))), f"module {mid} did not change"
            metrics = result["learners"][mid]
            for key in ("qf_loss", "qf_mean", "td_error_mean", "epsilon", "replay_buffer_size"):
                assert math.isfinite(metrics[key]), (mid, key, metrics)
            assert metrics["replay_buffer_size"] > 0
        assert algo.evaluate()["env_runners"]["num_episodes"] == 10
    finally:
        algo.stop()


def test_masked_env_never_plays_illegal_moves_and_stays_finite():
    """take_away raises on an illegal take, so a full iteration is the check; Q stays finite."""
    config = tiny_dqn("games:take_away", n_step=3, epsilon=0.5).multi_agent(
        policies=["shared"], policy_mapping_fn=lambda aid, *a, **k: "shared")
    algo = config.build_algo()
    try:
        for _ in range(2):
            metrics = algo.train()["learners"]["shared"]
        assert all(math.isfinite(v) for v in metrics.values())
    finally:
        algo.stop()


def test_policies_to_train_freezes_the_others():
    config = tiny_dqn("ma_cartpole").multi_agent(
        policies=["p0", "p1"], policy_mapping_fn=lambda aid, *a, **k: f"p{aid}", policies_to_train=["p0"])
    algo = config.build_algo()
    try:
        frozen = _params(algo.get_module("p1")).clone()
        result = algo.train()
        assert torch.equal(frozen, _params(algo.get_module("p1")))
        assert set(result["learners"]) == {"p0"}
        assert algo.replay_buffer.module_ids == ["p0"]
    finally:
        algo.stop()


# ---------------------------------------------------------------------- targets by hand
def test_double_q_target_and_masked_max_by_hand():
    rewards = torch.tensor([1.0, 0.5, 2.0, 1.0])
    terminateds = torch.tensor([False, False, True, False])
    discounts = torch.tensor([0.9, 0.81, 0.9, 0.9])
    next_q_target = torch.tensor([[1.0, 5.0, 3.0], [2.0, 4.0, 6.0], [7.0, 8.0, 9.0], [1.0, 1.0, 1.0]])
    next_q_online = torch.tensor([[0.0, 1.0, 2.0], [9.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])

    # Plain DQN with masks: row 0 max over {0, 1} of target = 5; row 1 max = 6;
    # row 2 terminal (and all-zero mask); row 3 not terminal but no legal action: no bootstrap.
    plain = q_targets(rewards, terminateds, discounts, next_q_target, None, mask)
    assert torch.allclose(plain, torch.tensor([1.0 + 0.9 * 5.0, 0.5 + 0.81 * 6.0, 2.0, 1.0]))
    # Double Q: online argmax among legal -> row 0 action 1 (action 2 illegal), row 1 action 0.
    double = q_targets(rewards, terminateds, discounts, next_q_target, next_q_online, mask)
    assert torch.allclose(double, torch.tensor([1.0 + 0.9 * 5.0, 0.5 + 0.81 * 2.0, 2.0, 1.0]))
    # Without masks: row 0 online argmax is action 2 -> 3.
    unmasked = q_targets(rewards, terminateds, discounts, next_q_target, next_q_online)
    assert unmasked[0] == pytest.approx(1.0 + 0.9 * 3.0)
    assert torch.isfinite(double).all()


def test_learner_loss_uses_target_network_and_n_step_discount():
    algo = tiny_dqn(double_q=False, td_error_loss_fn="mse").build_algo()
    try:
        learner = algo.learner_group.local_learner
        online, target = learner.module["default_policy"], learner.target_modules["default_policy"]
        with torch.no_grad():
            for p in target.parameters():
                p.zero_()
            target.value_head[-1].bias.fill_(2.0)  # target Q = 2 for every action
        obs = torch.zeros(2, 4)
        batch = {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: torch.tensor([0, 1]),
                 Columns.REWARDS: torch.tensor([1.0, 1.0]), Columns.TERMINATEDS: torch.tensor([False, True]),
                 Columns.N_STEP_DISCOUNT: torch.tensor([0.5, 0.5]),
                 Columns.BATCH_INDEXES: torch.tensor([3, 7]), Columns.WEIGHTS: torch.tensor([1.0, 0.0])}
        batch = learner.prepare_batch("default_policy", batch)
        assert torch.allclose(batch[Columns.VALUE_TARGETS], torch.tensor([2.0, 1.0]))
        fwd = online.forward_train(batch)
        loss, _ = learner.compute_loss_for_module("default_policy", online, batch, fwd)
        q0 = fwd[Columns.QF_PREDS][0, 0]
        assert loss.item() == pytest.approx((0.5 * (q0 - 2.0) ** 2 / 2).item(), rel=1e-5)  # row 1 weight 0
        slots, td = learner.pop_td_errors()["default_policy"]
        assert slots.tolist() == [3, 7]
        assert td[0] == pytest.approx((q0 - 2.0).item(), rel=1e-5)
    finally:
        algo.stop()


# ---------------------------------------------------------------------- target updates
def _target_and_online(algo):
    learner = algo.learner_group.local_learner
    return learner, learner.target_modules["default_policy"], learner.module["default_policy"]


def test_target_update_by_period():
    algo = tiny_dqn(target_network_update_freq=100).build_algo()
    try:
        learner, target, online = _target_and_online(algo)
        initial = _params(target).clone()
        with torch.no_grad():
            for p in online.parameters():
                p.add_(1.0)
        assert learner.after_training_step(99)["target_updated"] == 0.0
        assert torch.equal(_params(target), initial)
        assert learner.after_training_step(100)["target_updated"] == 1.0
        assert torch.equal(_params(target), _params(online))
        with torch.no_grad():
            for p in online.parameters():
                p.add_(1.0)
        learner.after_training_step(199)
        assert torch.allclose(_params(target), _params(online) - 1.0)
        learner.after_training_step(200)
        assert torch.equal(_params(target), _params(online))
    finally:
        algo.stop()


def test_soft_target_update_with_tau():
    algo = tiny_dqn(tau=0.25).build_algo()
    try:
        learner, target, online = _target_and_online(algo)
        with torch.no_grad():
            for p in target.parameters():
                p.fill_(1.0)
            for p in online.parameters():
                p.fill_(3.0)
        learner.after_update("default_policy", {})  # soft updates follow every gradient step
        assert torch.allclose(_params(target), torch.full_like(_params(target), 0.25 * 3.0 + 0.75 * 1.0))
        learner.after_update("default_policy", {})
        assert torch.allclose(_params(target), torch.full_like(_params(target), 0.25 * 3.0 + 0.75 * 1.5))
    finally:
        algo.stop()


def test_update_target_copies_exactly_with_tau_one():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    update_target(a, b, 1.0)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


# ---------------------------------------------------------------------- epsilon
def test_epsilon_schedule_values():
    schedule = [(0, 1.0), (1000, 0.1), (2000, 0.0)]
    assert value_at(schedule, 0) == 1.0
    assert value_at(schedule, 500) == pytest.approx(0.55)
    assert value_at(schedule, 1000) == pytest.approx(0.1)
    assert value_at(schedule, 1500) == pytest.approx(0.05)
    assert value_at(schedule, 10_000) == 0.0
    assert value_at([(100, 0.5), (200, 0.1)], 0) == 0.5
    assert value_at(0.2, 12345) == 0.2


def test_epsilon_reaches_the_runners_through_weight_sync():
    algo = tiny_dqn(epsilon=[(0, 1.0), (400, 0.0)]).build_algo()
    try:
        runner_module = algo.env_runner_group.local_runner.module["default_policy"]
        assert runner_module.epsilon.item() == 1.0
        result = algo.train()
        expected = value_at([(0, 1.0), (400, 0.0)], result["num_env_steps_sampled_lifetime"])
        assert runner_module.epsilon.item() == pytest.approx(expected, abs=1e-6)
        assert result["learners"]["default_policy"]["epsilon"] == pytest.approx(expected, abs=1e-6)
    finally:
        algo.stop()


def test_epsilon_greedy_acting_over_legal_actions_only():
    module = DuelingQModule(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(4))
    obs = torch.zeros(4000, 3)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]]).expand(4000, 4)
    module.epsilon.fill_(1.0)
    out = module.forward_exploration({Columns.OBS: obs, Columns.ACTION_MASK: mask})
    actions = module.action_distribution(out[Columns.ACTION_DIST_INPUTS]).sample()
    assert set(actions.tolist()) == {0, 2}
    module.epsilon.fill_(0.0)
    greedy_inputs = module.forward_inference({Columns.OBS: obs, Columns.ACTION_MASK: mask})[Columns.ACTION_DIST_INPUTS]
    greedy = module.action_distribution(greedy_inputs).deterministic_sample()
    sampled = module.action_distribution(
        module.forward_exploration({Columns.OBS: obs, Columns.ACTION_MASK: mask})[Columns.ACTION_DIST_INPUTS]).sample()
    assert torch.equal(greedy, sampled) and set(greedy.tolist()) <= {0, 2}


def test_dueling_flag_picks_the_module_class():
    assert isinstance(tiny_dqn(dueling=False).build_algo().get_module(), QModule)
    algo = tiny_dqn(dueling=True).build_algo()
    assert isinstance(algo.get_module(), DuelingQModule)
    with pytest.raises(ValueError, match="Discrete"):
        QModule(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)))


# ---------------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    "training, field, value",
    [
        ({"n_step": 0}, "n_step", "0"),
        ({"target_network_update_freq": 0}, "target_network_update_freq", "0"),
        ({"tau": 1.5}, "tau", "1.5"),
        ({"num_steps_sampled_before_learning_starts": -1}, "num_steps_sampled_before_learning_starts", "-1"),
        ({"training_intensity": 0}, "training_intensity", "0"),
        ({"num_atoms": 0}, "num_atoms", "0"),
        ({"v_min": 5.0, "v_max": -5.0}, "v_min", "5.0"),
        ({"noisy": "yes"}, "noisy", "yes"),
        ({"epsilon": 1.5}, "epsilon", "1.5"),
        ({"epsilon": [(0, 1.0), (0, 0.5)]}, "epsilon", r"\[\(0, 1.0\), \(0, 0.5\)\]"),
        ({"epsilon": [(0, 2.0)]}, "epsilon", r"\[\(0, 2.0\)\]"),
        ({"td_error_loss_fn": "l1"}, "td_error_loss_fn", "'l1'"),
        ({"replay_buffer_config": {"type": "Nope"}}, "replay_buffer_config", "Nope"),
        ({"replay_buffer_config": {"alpha": -1}}, "replay_buffer_config", "alpha"),
        ({"minibatch_size": 16}, "minibatch_size", "16"),
    ],
)
def test_config_errors_name_field_and_value(training, field, value):
    with pytest.raises(ValueError, match=rf"{field}.*{value}"):
        tiny_dqn(**training).build_algo()


def test_registry_and_rllib_style_builder():
    config = config_for("DQN")
    assert isinstance(config, DQNConfig)
    config.training(replay_buffer_config={"type": "PrioritizedReplayBuffer", "capacity": 50000, "alpha": 0.6,
                                          "beta": 0.4}, n_step=3, double_q=True, dueling=True,
                    target_network_update_freq=500, num_steps_sampled_before_learning_starts=1000,
                    train_batch_size=32, lr=1e-3, gamma=0.99, epsilon=[(0, 1.0), (10000, 0.05)])
    assert config.replay_buffer_config["capacity"] == 50000 and config.n_step == 3
    config.training(replay_buffer_config={"capacity": 10})  # partial: keeps the type and alpha
    assert config.replay_buffer_config == {"type": "PrioritizedReplayBuffer", "capacity": 10, "alpha": 0.6,
                                           "beta": 0.4}


def test_uniform_replay_works():
    algo = tiny_dqn(replay_buffer_config={"type": "ReplayBuffer", "capacity": 1000}).build_algo()
    try:
        assert math.isfinite(algo.train()["learners"]["default_policy"]["qf_loss"])
    finally:
        algo.stop()


def test_training_intensity_sets_gradient_steps():
    algo = tiny_dqn(training_intensity=16, train_batch_size=32).build_algo()  # 4 env steps -> 2 updates
    try:
        algo.train()
        calls = []
        update = algo.learner_group.update
        algo.learner_group.update = lambda *a, **k: calls.append(1) or update(*a, **k)
        algo.config.min_sample_timesteps_per_iteration = 0
        algo.train()
        assert len(calls) == 2
    finally:
        algo.stop()


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_restores_target_network_and_optimizer(tmp_path):
    algo = tiny_dqn(target_network_update_freq=10_000).build_algo()
    try:
        algo.train()
        learner = algo.learner_group.local_learner
        with torch.no_grad():
            for p in learner.target_modules["default_policy"].parameters():
                p.add_(0.5)  # target differs from the online network
        target = _params(learner.target_modules["default_policy"]).clone()
        online = _params(learner.module["default_policy"]).clone()
        path = algo.save_to_path(str(tmp_path / "ckpt"))
        restored = DQN.from_checkpoint(path)
        try:
            r_learner = restored.learner_group.local_learner
            assert torch.equal(_params(r_learner.target_modules["default_policy"]), target)
            assert torch.equal(_params(r_learner.module["default_policy"]), online)
            assert not torch.equal(target, online)
            opt_a = learner.optimizers["default_policy"]["default"].state_dict()["state"]
            opt_b = r_learner.optimizers["default_policy"]["default"].state_dict()["state"]
            assert torch.equal(opt_a[0]["exp_avg"], opt_b[0]["exp_avg"])
            assert r_learner._last_target_update == learner._last_target_update
            assert restored.train()["num_env_steps_sampled_lifetime"] > algo._counters["num_env_steps_sampled_lifetime"]
        finally:
            restored.stop()
    finally:
        algo.stop()


# ---------------------------------------------------------------------- learning
def test_dqn_learns_cartpole():
    config = (
        DQNConfig()
        .environment("CartPole-v1")
        .training(lr=1e-3, n_step=3, num_steps_sampled_before_learning_starts=500,
                  epsilon=[(0, 1.0), (8000, 0.05)])
        .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
        .debugging(seed=0)
    )
    algo = config.build_algo()
    best = -np.inf
    try:
        for iteration in range(20):
            result = algo.train()
            if iteration >= 5:
                best = max(best, algo.evaluate()["env_runners"]["episode_return_mean"])
                if best >= 150:
                    break
    finally:
        algo.stop()
    assert best >= 150, f"greedy return {best} after {result['num_env_steps_sampled_lifetime']} env steps"
