"""A league on a (2-CPU, local) Ray cluster: one resource budget, concurrent trainers, shared snapshots."""

from __future__ import annotations

import logging

import pytest

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig
from marl_arena.runners.env_runner import WeightsRef
from test_league import take_away_league

pytestmark = pytest.mark.ray


def test_the_readme_kuhn_league_with_two_runners_per_trainer_runs_on_two_cpus(ray_session, tmp_path, caplog):
    """README's league example plus ``num_env_runners=2``: 4 runners and 2 driver learners on 2 CPUs."""
    config = (LeagueConfig().environment("open_spiel:kuhn_poker")
              .trainer(PPOConfig().training(entropy_coeff=0.2).env_runners(num_env_runners=2))
              .roster(main_agents=1, main_exploiters=1, scripted={"random": RandomModule})
              .matchmaking("alphastar").snapshots(win_rate=0.7).rating(k=16).store(str(tmp_path)))
    with caplog.at_level(logging.INFO, logger="marl_arena"):
        league = config.build()
    try:
        played = []
        league.run(1, lambda lg, summary: played.append({p: s["matches"] for p, s in summary["players"].items()}))
        count = league.store.count_matches()
        runners = {pid: algo.env_runner_group.num_remote_runners for pid, algo in league.trainers.items()}
    finally:
        league.stop()
    budget = [r.getMessage() for r in caplog.records if r.getMessage().startswith("League:")]
    assert len(budget) == 1, budget
    assert "at the same time" in budget[0] and "ask for 6 CPUs of the cluster's 2 CPUs" in budget[0]
    assert "0.3333 CPU per env runner" in budget[0]
    assert runners == {"main_0": 2, "main_exploiter_0": 2}
    assert count == sum(played[0].values()) and all(played[0].values())


def _three_trainers(directory, concurrent: bool, max_opponents: int = 16) -> LeagueConfig:
    config = take_away_league(directory, win_rate=None).roster(main_agents=1, main_exploiters=1, league_exploiters=1,
                                                               scripted={"random": RandomModule})
    config.trainer_config.env_runners(num_env_runners=1, num_envs_per_env_runner=1)
    return config.cluster(concurrent_trainers=concurrent, max_opponents_per_runner=max_opponents)


def test_concurrent_trainers_play_and_record_the_same_matches_as_trainers_in_turn(ray_session, tmp_path):
    per_trainer = {}
    for concurrent in (False, True):
        league = _three_trainers(tmp_path / str(concurrent), concurrent).build()
        try:
            assert league.concurrent is concurrent
            summaries = []
            league.run(1, lambda lg, summary: summaries.append(summary))
            per_trainer[concurrent] = {pid: s["matches"] for pid, s in summaries[0]["players"].items()}
            assert league.store.count_matches() == sum(per_trainer[concurrent].values())
        finally:
            league.stop()
    assert per_trainer[True] == per_trainer[False]
    assert len(per_trainer[True]) == 3 and all(per_trainer[True].values())


def test_snapshots_go_to_the_object_store_once_and_runners_keep_a_bounded_set(ray_session, tmp_path):
    league = _three_trainers(tmp_path, concurrent=True, max_opponents=2).build()
    try:
        league.run(1)
        frozen = [league.freeze("main_0", steps=i) for i in range(3)]
        league.run(1)
        for snapshot in frozen:
            source = league._sources[snapshot]
            assert isinstance(source, WeightsRef)
            # One object for every trainer's runners: the very reference the league put.
            assert all(algo.env_runner_group._added[snapshot][1] is source for algo in league.trainers.values())
        built = {pid: algo.env_runner_group.foreach_runner("built_added_modules")[0]
                 for pid, algo in league.trainers.items()}
        matches = league.store.count_matches()
    finally:
        league.stop()
    # Each runner has 6 added opponents (3 snapshots, 2 other trainers, random) and keeps 2.
    assert all(len(modules) <= 2 for modules in built.values()), built
    assert matches > 0


def test_a_league_asking_for_gpus_the_cluster_lacks_fails_at_build(ray_session, tmp_path):
    config = take_away_league(tmp_path).roster(main_agents=1, main_exploiters=1)
    config.trainer_config.learners(num_learners=1, num_gpus_per_learner=1)
    with pytest.raises(ValueError, match=r"Asked for 2 GPUs \(main_0: .*\) but the Ray cluster has none"):
        config.build()
