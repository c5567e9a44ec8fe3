"""A league's parts for a cluster, in one process: the resource budget and the runners' opponent cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from conftest import tiny_ppo
from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.env.registry import make_env
from marl_arena.league.league import OpponentDraw, SeatAssignment
from marl_arena.runners.env_runner import EnvRunner
from marl_arena.runners.module_specs import module_spec_from_env
from marl_arena.runners.resources import WORKER_NICENESS_VARIABLE, ActorRequest, divide_resources, ensure_ray

SEATS = ("player_0", "player_1")
OPPONENTS = [f"opponent_{i}" for i in range(5)]


# ---------------------------------------------------------------------- resource budget
def _league_requests(trainers: int, runners: int, learners: int = 0, gpus: float = 0.0) -> list[ActorRequest]:
    requests = []
    for t in range(trainers):
        requests += [ActorRequest(f"t{t}", "env runner", runners, 1.0),
                     ActorRequest(f"t{t}", "learner", learners, 1.0, gpus),
                     ActorRequest(f"t{t}", "driver learner", int(learners == 0), 1.0)]
    return requests


@pytest.mark.parametrize("address, preset, expected", [(None, None, "0"), (None, "5", "5"), ("auto", None, None)])
def test_a_local_ray_started_here_runs_its_workers_at_the_drivers_priority(monkeypatch, address, preset, expected):
    import ray

    seen = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.append(os.environ.get(WORKER_NICENESS_VARIABLE)))
    if preset is None:
        monkeypatch.delenv(WORKER_NICENESS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(WORKER_NICENESS_VARIABLE, preset)
    ensure_ray(address)
    assert seen == [expected]  # a user's own setting wins; a cluster joined keeps its own workers' niceness


def test_a_league_that_fits_keeps_every_share_and_says_so():
    plan = divide_resources(_league_requests(2, 2), cpus=8, gpus=0, nodes=[8])
    assert not plan.scaled
    assert set(plan.cpus.values()) == {1.0}
    assert "it fits" in plan.summary and "6 CPUs" in plan.summary


def test_the_readme_league_with_two_runners_per_trainer_shares_two_cpus():
    plan = divide_resources(_league_requests(2, 2), cpus=2, gpus=0, nodes=[2])
    assert plan.scaled and "sharing them" in plan.summary
    total = sum(r.count * plan.cpus[r.owner, r.kind] for r in _league_requests(2, 2))
    assert 1.9 < total <= 2.0
    assert plan.cpus["t0", "env runner"] == pytest.approx(1 / 3, abs=1e-3)


def test_shares_shrink_until_the_actors_pack_into_the_nodes():
    # Three 1-CPU learners on two 1-CPU nodes: 2/3 CPU each adds up, but two never share a node.
    requests = [ActorRequest(f"t{t}", "learner", 1, 1.0) for t in range(3)]
    plan = divide_resources(requests, cpus=2, gpus=0, nodes=[1, 1])
    assert all(share <= 0.5 for share in plan.cpus.values())


def test_gpus_are_shared_as_fractions_or_refused_at_build():
    plan = divide_resources(_league_requests(3, 1, learners=1, gpus=1.0), cpus=16, gpus=1, nodes=[16])
    assert plan.gpus["t0", "learner"] == pytest.approx(1 / 3, abs=1e-3)
    with pytest.raises(ValueError, match=r"Asked for 3 GPUs .* the Ray cluster has none"):
        divide_resources(_league_requests(3, 1, learners=1, gpus=1.0), cpus=16, gpus=0, nodes=[16])
    with pytest.raises(ValueError, match=r"Asked for 6 CPUs .* has 0"):
        divide_resources(_league_requests(2, 2), cpus=0, gpus=0)


# ---------------------------------------------------------------------- opponent cache
def _config(max_opponents: int | None, mapping, num_envs: int):
    return (tiny_ppo("games:take_away").environment(env_config={"pile": 10})
            .multi_agent(policies={"main"}, policies_to_train=["main"], policy_mapping_fn=mapping)
            .env_runners(num_envs_per_env_runner=num_envs, record_moves=True,
                         max_opponents_per_runner=max_opponents))


def _spec(config):
    env = make_env("games:take_away", {"pile": 10})
    try:
        return module_spec_from_env(config, env, ActorCriticModule)
    finally:
        env.close()


def _runner(max_opponents: int | None, mapping, num_envs: int = 1) -> EnvRunner:
    """A runner whose config knows only "main"; ``mapping`` draws opponents once they are added."""
    config = _config(max_opponents, SeatAssignment({SEATS[0]: "main", SEATS[1]: "main"}), num_envs)
    runner = EnvRunner(config, _spec(config))
    runner.set_policy_mapping_fn(mapping)
    return runner


def _opponent_weights():
    """Five opponents' distinct weights, and the spec they share with "main"."""
    spec = _spec(_config(None, SeatAssignment({SEATS[0]: "main", SEATS[1]: "main"}), 1)).rl_module_specs["main"]
    weights = {}
    for i, module_id in enumerate(OPPONENTS):
        torch.manual_seed(100 + i)
        weights[module_id] = spec.build().state_dict()
    return weights, spec


def test_a_runner_keeps_the_most_recently_drawn_opponents_and_reloads_evicted_ones():
    weights, spec = _opponent_weights()
    runner = _runner(2, SeatAssignment({SEATS[0]: "main", SEATS[1]: OPPONENTS[0]}))
    try:
        for module_id in OPPONENTS:
            runner.add_module(module_id, spec, weights[module_id])
        assert runner.built_added_modules() == [] and runner.num_module_builds == 0  # built when drawn
        runner.get_weights(OPPONENTS[2:])  # draws opponents 2, 3, 4 in turn: 2 is evicted
        assert runner.built_added_modules() == OPPONENTS[3:]
        played = runner.sample(num_episodes=3, explore=False).episodes
        assert all(e.agent_modules[SEATS[1]] == OPPONENTS[0] for e in played)
        assert runner.built_added_modules() == [OPPONENTS[4], OPPONENTS[0]]  # opponent_3 was least recent
        assert runner.num_module_builds == 4  # opponent_0 built once for 3 episodes
        assert runner.num_modules_reused == 1  # opponent_0 loaded into opponent_2's evicted module
        reloaded = runner.get_weights([OPPONENTS[3]])[OPPONENTS[3]]  # evicted: loaded again from its weights
        assert all(torch.equal(reloaded[k], v) for k, v in weights[OPPONENTS[3]].items())
        assert runner.built_added_modules() == [OPPONENTS[0], OPPONENTS[3]] and runner.num_module_builds == 5
        assert runner.num_modules_reused == 2  # into its own old module, evicted for opponent_0 meanwhile
    finally:
        runner.stop()


def test_evicting_opponents_changes_no_sampled_action():
    """A runner limited to 1 opponent over 4 sub-envs plays exactly as one that keeps all 5.

    Modules that running episodes play are never evicted (the limit is passed meanwhile),
    a reload restores the same weights, and building a module leaves torch's random stream
    alone, so both runners draw the same actions for the same seeds.
    """
    weights, spec = _opponent_weights()
    draw = OpponentDraw("main", {m: 0.2 for m in OPPONENTS}, SEATS, seed=5)
    runs = []
    for limit in (1, None):
        torch.manual_seed(0)
        runner = _runner(limit, draw, num_envs=4)
        try:
            for module_id in OPPONENTS:
                runner.add_module(module_id, spec, weights[module_id])
            result = runner.sample(num_timesteps=300)
            runs.append(([(e.agent_modules, e.moves, e.agent_returns) for e in result.episodes],
                         {k: np.asarray(v) for k, v in result.batches["main"].items()},
                         (runner.num_module_builds, runner.num_modules_reused)))
        finally:
            runner.stop()
    (episodes_1, batch_1, builds_1), (episodes_all, batch_all, builds_all) = runs
    assert episodes_1 == episodes_all and len(episodes_1) > 20
    assert all(np.array_equal(batch_1[k], batch_all[k]) for k in batch_all)
    assert builds_all == (5, 0)  # without a limit each opponent is built once, when first drawn
    assert builds_1[0] > 5 and builds_1[1] > 0  # with one, most are loaded into an evicted module
