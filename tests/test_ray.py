"""Everything that needs Ray, on one local cluster for the whole module."""

from __future__ import annotations

import logging
import pathlib
import runpy

import pytest
import torch

from conftest import tiny_ppo
from marl_arena.algorithms import PPOConfig

pytestmark = pytest.mark.ray

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script", ["taxi_ppo.py", "multi_agent_cartpole_ppo.py"])
def test_seed_examples_run_to_the_end(ray_session, script, capsys, monkeypatch):
    """RLlib's first-page programs with marl_arena imports: 5 iterations and an evaluation."""
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/<script>` would
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("'training_iteration'") == 5
    assert "'num_episodes': 10" in out  # the evaluation's 10 episodes


def _greedy_best(algo, iterations: int) -> float:
    best = 0.0
    for _ in range(iterations):
        algo.train()
        best = max(best, algo.evaluate()["env_runners"]["episode_return_mean"])
        if best >= 150:
            break
    return best


def _learning_config() -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size_per_learner=2000, minibatch_size=128, num_epochs=10)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .debugging(seed=1)
    )


def test_two_ray_runners_learn_like_one_local(ray_session):
    local = _learning_config().build_algo()
    remote = _learning_config().env_runners(num_env_runners=2).build_algo()
    try:
        assert _greedy_best(local, 12) >= 150
        assert _greedy_best(remote, 12) >= 150
        assert remote.env_runner_group.num_remote_runners == 2
    finally:
        local.stop()
        remote.stop()


def test_runner_actors_hold_the_learners_exact_weights_after_a_sync(ray_session):
    """Weights travel through the object store as NumPy arrays and load back as tensors, bit for bit."""
    algo = tiny_ppo().env_runners(num_env_runners=2).build_algo()
    try:
        algo.train()
        learned = algo.learner_group.get_weights()["default_policy"]
        for held in algo.env_runner_group.foreach_runner("get_weights", ["default_policy"]):
            assert held["default_policy"].keys() == learned.keys()
            assert all(torch.equal(held["default_policy"][k], v) for k, v in learned.items())
    finally:
        algo.stop()


def test_killed_runner_is_restarted_and_training_goes_on(ray_session):
    algo = tiny_ppo().env_runners(num_env_runners=2).build_algo()
    try:
        algo.train()
        ray_session.kill(algo.env_runner_group.remote_runners[0])
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    assert results[-1]["env_runners"]["num_env_runner_restarts"] == 1
    assert results[-1]["training_iteration"] == 3
    assert all(r["env_runners"]["num_env_steps_sampled"] >= 256 for r in results)


def test_more_runners_than_cpus_share_them_with_a_warning(ray_session, caplog):
    config = tiny_ppo().env_runners(num_env_runners=3).evaluation(evaluation_num_env_runners=1)
    with caplog.at_level(logging.WARNING, logger="marl_arena"):
        algo = config.build_algo()
    try:
        algo.train()
        evaluation = algo.evaluate()
    finally:
        algo.stop()
    assert "Asked for 4 CPUs" in caplog.text and "has 2" in caplog.text
    assert evaluation["env_runners"]["num_episodes"] == 10


def test_gpus_that_do_not_exist_fail_at_build(ray_session):
    config = tiny_ppo().learners(num_learners=1, num_gpus_per_learner=1)
    with pytest.raises(ValueError, match=r"asks for 1 GPUs, but 0 are available"):
        config.build_algo()


def test_two_data_parallel_learners_stay_in_sync(ray_session):
    algo = tiny_ppo(batch=512).learners(num_learners=2).build_algo()
    try:
        before = algo.learner_group.get_weights()["default_policy"]
        result = algo.train()
        weights = [w["default_policy"] for w in algo.learner_group.foreach_learner("get_weights")]
    finally:
        algo.stop()
    assert "default_policy" in result["learners"]
    assert any(not torch.equal(before[k], weights[0][k]) for k in before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_each_runner_draws_its_own_opponents_from_the_matchmakers_distribution(ray_session):
    """Two runner actors get the league's opponent draw by value; each must draw its own sequence.

    Pooled over both runners, the (learner seat, opponent) pairs must fit the drawn
    distribution: a chi-square test over the 6 cells at p = 0.001 (critical value 20.52
    for 5 degrees of freedom), which a wrong seat or opponent frequency fails.
    """
    from marl_arena.league.league import OpponentDraw

    distribution = {"a": 0.5, "b": 0.3, "c": 0.2}
    seats = ("player_0", "player_1")
    config = (tiny_ppo("games:rock_paper_scissors").environment(env_config={"num_rounds": 1})
              .multi_agent(policies={"main", *distribution}, policies_to_train=["main"],
                           policy_mapping_fn=OpponentDraw("main", distribution, seats, seed=3))
              .env_runners(num_env_runners=2))
    algo = config.build_algo()
    try:
        results = algo.env_runner_group.foreach_runner("sample", None, 300)
    finally:
        algo.stop()
    draws = [[(next(s for s in seats if e.agent_modules[s] == "main"),
               next(m for m in e.agent_modules.values() if m != "main")) for e in result.episodes]
             for result in results]
    assert draws[0] != draws[1]
    pooled = draws[0] + draws[1]
    cells = [(seat, opponent) for seat in seats for opponent in distribution]
    expected = {(seat, opponent): len(pooled) * 0.5 * p for seat in seats for opponent, p in distribution.items()}
    chi_square = sum((pooled.count(cell) - expected[cell]) ** 2 / expected[cell] for cell in cells)
    assert chi_square < 20.52, {cell: pooled.count(cell) for cell in cells}
