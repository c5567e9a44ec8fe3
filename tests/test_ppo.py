"""PPO in one process: a smoke run per learning path, a real learning check, determinism."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms import PPOConfig
from marl_arena.core import RLModuleSpec


def _params(algo, module_id="default_policy"):
    return torch.cat([p.detach().flatten() for p in algo.get_module(module_id).parameters()])


@pytest.mark.parametrize(
    "env, multi_agent",
    [
        ("CartPole-v1", None),  # discrete actions
        ("Pendulum-v1", None),  # continuous actions
        ("Taxi-v3", None),  # discrete observations, flattened automatically
        ("ma_cartpole", {"policies": {"p0", "p1"}, "policy_mapping_fn": lambda aid, *a, **k: f"p{aid}"}),
        ("ma_cartpole", {"policies": {"shared"}, "policy_mapping_fn": lambda aid, *a, **k: "shared"}),
    ],
    ids=["discrete", "continuous", "taxi", "two-modules", "one-shared-module"],
)
def test_smoke_each_learning_path(env, multi_agent):
    config = tiny_ppo(env)
    if multi_agent:
        config.multi_agent(**multi_agent)
    algo = config.build_algo()
    try:
        before = {mid: _params(algo, mid).clone() for mid in algo.learner_group.module_ids_to_train}
        result = algo.train()
        for mid, params in before.items():
            assert not torch.equal(params, _params(algo, mid)), f"module {mid} did not change"
            metrics = result["learners"][mid]
            assert all(math.isfinite(metrics[k]) for k in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss"))
        assert result["num_env_steps_sampled_lifetime"] >= 256
        assert algo.evaluate()["env_runners"]["num_episodes"] == 10
    finally:
        algo.stop()


def test_shared_module_reports_returns_of_both_agents():
    config = tiny_ppo("ma_cartpole", batch=512).multi_agent(
        policies={"shared"}, policy_mapping_fn=lambda aid, *a, **k: "shared"
    )
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    runners = result["env_runners"]
    assert set(runners["agent_episode_returns_mean"]) == {0, 1}
    agents_total = sum(runners["agent_episode_returns_mean"].values())
    assert runners["module_episode_returns_mean"]["shared"] == pytest.approx(agents_total)


def test_finished_episodes_say_which_module_played_each_agent():
    config = tiny_ppo("ma_cartpole").multi_agent(
        policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}"
    )
    algo = config.build_algo()
    episodes = algo.env_runner_group.local_runner.sample(num_episodes=3).episodes
    algo.stop()
    assert [e.agent_modules for e in episodes] == [{0: "p0", 1: "p1"}] * 3


def test_policies_to_train_freezes_the_others():
    config = tiny_ppo("ma_cartpole").multi_agent(
        policies={"p0", "p1"}, policy_mapping_fn=lambda aid, *a, **k: f"p{aid}", policies_to_train=["p0"]
    )
    algo = config.build_algo()
    frozen = _params(algo, "p1").clone()
    result = algo.train()
    algo.stop()
    assert set(result["learners"]) == {"p0"}
    assert torch.equal(frozen, _params(algo, "p1"))


def test_ppo_learns_cartpole():
    """The learning check: greedy return >= 150 within 12 small iterations."""
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size_per_learner=2000, minibatch_size=128, num_epochs=10)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=1)
    )
    algo = config.build_algo()
    best = 0.0
    for _ in range(12):
        algo.train()
        best = max(best, algo.evaluate()["env_runners"]["episode_return_mean"])
        if best >= 150:
            break
    algo.stop()
    assert best >= 150


def test_custom_module_class_through_spec():
    """A user's RLModule subclass is built from an RLModuleSpec and trained."""
    from marl_arena.core import ActorCriticModule

    class WideModule(ActorCriticModule):
        pass

    config = tiny_ppo().rl_module(rl_module_spec=RLModuleSpec(module_class=WideModule))
    algo = config.build_algo()
    algo.train()
    assert isinstance(algo.get_module(), WideModule)
    algo.stop()


def test_seeded_runs_are_identical_and_seeds_matter():
    def run(seed):
        algo = tiny_ppo().debugging(seed=seed).build_algo()
        for _ in range(2):
            algo.train()
        params = _params(algo).clone()
        algo.stop()
        return params

    first, again, other = run(3), run(3), run(4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


class _NarrowActionEnv(gym.Env):
    """One-step env with a narrow action box that remembers every action it was sent."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-0.1, 0.1, (1,), np.float32)
    received: list = []

    def __init__(self, config=None):
        pass

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        _NarrowActionEnv.received.append(np.array(action))
        return np.zeros(2, np.float32), 0.0, True, False, {}


def test_box_actions_are_clipped_for_the_env_but_kept_raw_for_learning():
    algo = tiny_ppo(_NarrowActionEnv).build_algo()
    result = algo.env_runner_group.local_runner.sample(num_timesteps=200)
    algo.stop()
    stored = result.batches["default_policy"]["actions"]
    sent = np.stack(_NarrowActionEnv.received[-200:])
    assert np.abs(stored).max() > 0.1  # raw Gaussian samples, as their log-probs were computed
    assert np.abs(sent).max() <= 0.1 + 1e-7


def test_evaluation_is_not_biased_towards_short_episodes():
    """With many sub-envs, evaluation still runs exactly the episodes it started, in full."""
    algo = tiny_ppo().env_runners(num_envs_per_env_runner=8).build_algo()
    runner = algo.env_runner_group.local_runner
    result = runner.sample(num_episodes=4, explore=False)
    later = runner.sample(num_timesteps=16)
    algo.stop()
    assert len(result.episodes) == 4
    assert result.env_steps == sum(e.length for e in result.episodes)  # no step spent on a fifth episode
    assert later.env_steps >= 16  # idle sub-envs start again outside episode mode


def test_set_of_policies_builds_in_the_same_order_whatever_the_hash_seed():
    import subprocess
    import sys

    code = ("from marl_arena.algorithms import PPOConfig;"
            "print(list(PPOConfig().multi_agent(policies={'p1', 'p0', 'p10'}).policies))")
    orders = {subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": str(seed), "PATH": ""},
                             capture_output=True, text=True, check=True).stdout for seed in (0, 1, 2, 3)}
    assert orders == {"['p0', 'p1', 'p10']\n"}


def test_evaluation_time_is_timed_and_counted_in_the_iteration():
    algo = tiny_ppo().evaluation(evaluation_interval=1, evaluation_duration=2).build_algo()
    result = algo.train()
    algo.stop()
    assert result["evaluation"]["env_runners"]["num_episodes"] == 2
    timers = result["timers"]
    assert timers["evaluation"] > 0
    assert result["time_this_iter_s"] >= timers["evaluation"] + timers["learner_update_timer"]


def test_bootstrap_values_match_a_forward_over_every_next_observation():
    """GAE's next values come mostly from the shifted value column; they must equal V(next_obs)."""
    from marl_arena.learners.bootstrap import bootstrap_values
    from marl_arena.core.actor_critic import ActorCriticModule

    torch.manual_seed(0)
    module = ActorCriticModule(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
    rng = np.random.default_rng(0)
    obs, next_obs, terminated = [], [], []
    for length, ends_terminal in [(5, True), (4, False), (1, True), (6, False)]:  # segments back to back
        states = torch.as_tensor(rng.normal(size=(length + 1, 3)), dtype=torch.float32)
        obs.append(states[:-1])
        next_obs.append(states[1:])
        terminated.append(torch.arange(length) == length - 1 if ends_terminal else torch.zeros(length, dtype=torch.bool))
    obs, next_obs, terminated = torch.cat(obs), torch.cat(next_obs), torch.cat(terminated)
    with torch.no_grad():
        values = module.compute_values(obs)
        got = bootstrap_values(module, values, obs, next_obs, terminated)
        expected = torch.where(terminated, torch.zeros(()), module.compute_values(next_obs))
    torch.testing.assert_close(got, expected)


def test_runner_draws_categorical_actions_with_their_probabilities_and_never_a_masked_one():
    from marl_arena.core.distributions import Categorical
    from marl_arena.runners.env_runner import sample_categorical

    masked = np.finfo(np.float32).min
    logits = np.array([[0.3, -1.0, 2.0], [0.0, masked, 1.0]], np.float32)
    rng = np.random.default_rng(0)
    draws = np.stack([sample_categorical(logits, rng, explore=True)[0] for _ in range(20_000)])
    expected = torch.softmax(torch.as_tensor(logits), -1).numpy()
    for row in range(2):
        np.testing.assert_allclose(np.bincount(draws[:, row], minlength=3) / len(draws), expected[row], atol=0.015)
    assert not (draws[:, 1] == 1).any()
    actions, logp = sample_categorical(logits, rng, explore=True)
    torch.testing.assert_close(torch.as_tensor(logp),
                               Categorical(torch.as_tensor(logits)).logp(torch.as_tensor(actions)))
    greedy, _ = sample_categorical(logits, rng, explore=False)
    assert greedy.tolist() == [2, 2]
    with pytest.raises(ValueError, match="not finite"):
        sample_categorical(np.array([[np.nan, 0.0]], np.float32), rng, explore=True)


def test_an_iteration_reports_the_learner_phases():
    algo = tiny_ppo().build_algo()
    result = algo.train()
    algo.stop()
    timers = result["timers"]
    assert 0 < timers["learner_prepare_batch"] and 0 < timers["learner_minibatch_updates"]
    assert timers["learner_prepare_batch"] + timers["learner_minibatch_updates"] <= timers["learner_update_timer"]


def test_overlapped_sampling_learns_from_batches_one_update_behind(ray_session):
    """Opt-in overlap: the runner samples the next batch during the update, with the weights before it."""
    config = tiny_ppo(batch=512).env_runners(num_env_runners=1).training(overlap_sampling=True)
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(3)]
    finally:
        algo.stop()
    lags = [r["learners"]["default_policy"]["policy_lag"] for r in results]
    assert lags == [0.0, 1.0, 1.0]  # the first batch waits; later ones were sampled during an update
    assert all(r["env_runners"]["num_env_steps_sampled"] >= 512 for r in results)
    assert all(r["learners"]["default_policy"]["num_minibatch_updates"] > 0 for r in results)


def test_sequential_sampling_has_no_policy_lag():
    algo = tiny_ppo().build_algo()
    lags = [algo.train()["learners"]["default_policy"]["policy_lag"] for _ in range(2)]
    algo.stop()
    assert lags == [0.0, 0.0]


def test_default_optimizer_is_the_fused_adam_and_steps_like_the_plain_one():
    from marl_arena.learners.learner import adam

    torch.manual_seed(0)
    fused_net, plain_net = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    plain_net.load_state_dict(fused_net.state_dict())
    fused, plain = adam(fused_net.parameters(), lr=1e-2), torch.optim.Adam(plain_net.parameters(), lr=1e-2)
    assert fused.defaults["fused"]
    x = torch.randn(8, 4)
    for _ in range(5):
        for net, optimizer in ((fused_net, fused), (plain_net, plain)):
            optimizer.zero_grad()
            net(x).pow(2).sum().backward()
            optimizer.step()
    for a, b in zip(fused_net.parameters(), plain_net.parameters()):
        torch.testing.assert_close(a, b)
