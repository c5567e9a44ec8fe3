"""A reset is a true restart of a player: ``Algorithm.reset_module``, and the league's exploiter reset.

Everything here runs in one process (``num_env_runners=0``, ``num_learners=0``).
"""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms import DQNConfig
from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.league.league_config import LeagueConfig

MID = "default_policy"


def tiny_dqn(env="CartPole-v1") -> DQNConfig:
    """Learning starts after 64 env steps, so two iterations of 200 make many gradient steps."""
    return (
        DQNConfig()
        .environment(env)
        .training(num_steps_sampled_before_learning_starts=64, train_batch_size=32,
                  epsilon=[(0, 1.0), (300, 0.1)], replay_buffer_config={"capacity": 2000})
        .reporting(min_sample_timesteps_per_iteration=200)
        .rl_module(model_config={"fcnet_hiddens": [16, 16]})
        .debugging(seed=0)
    )


CONFIGS = {"PPO": lambda: tiny_ppo(batch=128), "DQN": tiny_dqn}


def _parameters(algo: Algorithm, module_id: str) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in algo.get_module(module_id).named_parameters()}


def _optimizer_states(algo: Algorithm, module_id: str) -> list[dict]:
    return [opt.state_dict()["state"] for opt in algo.learner_group.local_learner.optimizers[module_id].values()]


def _assert_restarted(algo: Algorithm, module_id: str, trained: dict[str, torch.Tensor]) -> None:
    """What a reset must leave behind, whatever the algorithm."""
    fresh = _parameters(algo, module_id)
    assert all(not torch.equal(fresh[name], trained[name]) for name in trained), "some weights survived"
    assert all(state == {} for state in _optimizer_states(algo, module_id)), "optimizer moments survived"
    runner = algo.env_runner_group.local_runner.get_weights([module_id])[module_id]
    learner = algo.learner_group.get_weights([module_id])[module_id]
    assert runner.keys() == learner.keys()
    assert all(torch.equal(runner[key], learner[key]) for key in learner), "runners act with old weights"
    if hasattr(algo, "replay_buffer"):
        target = algo.learner_group.local_learner.target_modules[module_id]
        assert all(torch.equal(t, p) for t, p in zip(target.parameters(), fresh.values())), "stale target network"
        assert module_id not in algo.replay_buffer.module_ids, "the old player's replay survived"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reset_module_restarts_weights_optimizers_runners_targets_and_replay(name):
    algo = CONFIGS[name]().build_algo()
    try:
        for _ in range(2):
            algo.train()
        trained = _parameters(algo, MID)
        assert all(state != {} for state in _optimizer_states(algo, MID))  # it did learn: there is state to drop
        if name == "DQN":
            epsilon = float(algo.get_module(MID).epsilon)
            assert len(algo.replay_buffer[MID]) > 0
        algo.reset_module(MID)
        _assert_restarted(algo, MID, trained)
        if name == "DQN":  # the schedule follows the algorithm's env steps, which a reset keeps
            assert float(algo.get_module(MID).epsilon) == epsilon
        else:  # PPO's adaptive KL coefficient starts again, too
            assert algo.learner_group.local_learner.kl_coeffs[MID] == algo.config.kl_coeff
        result = algo.train()  # and the new player learns from there
        assert result["learners"][MID]["num_module_steps_trained"] > 0
    finally:
        algo.stop()


def test_reset_module_names_the_trained_modules_when_given_another():
    algo = tiny_ppo(batch=64).build_algo()
    try:
        with pytest.raises(ValueError, match=r"'nobody' is not a trained module.*default_policy"):
            algo.reset_module("nobody")
    finally:
        algo.stop()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_freezing_a_main_exploiter_restarts_it(tmp_path, name):
    """The league's reset (AlphaStar: a main exploiter restarts at every snapshot) is the full one."""
    league = (
        LeagueConfig()
        .environment("games:take_away", env_config={"pile": 10})
        .trainer(CONFIGS[name]())  # the league sets the env and the seed
        .roster(main_agents=1, main_exploiters=1)
        .matchmaking("alphastar")
        .snapshots(win_rate=None)
        .store(str(tmp_path))
        .debugging(seed=0)
        .build()
    )
    exploiter = "main_exploiter_0"
    try:
        league.run(1)
        algo = league.trainers[exploiter]
        trained = _parameters(algo, exploiter)
        assert all(state != {} for state in _optimizer_states(algo, exploiter))
        snapshot = league.freeze(exploiter, steps=1)
        _assert_restarted(algo, exploiter, trained)
        frozen = league.store.load_snapshot(league.store.player_snapshot(snapshot))
        assert all(torch.equal(frozen[key], trained[key]) for key in trained)  # the snapshot keeps the old player
    finally:
        league.stop()
