"""Teams in a league: sides, team mappings (shared, individual, fixed members), neutral agents, per-side
scoring and leaderboards, a short simple_tag league with snapshots, and resuming it from the store."""

from __future__ import annotations

import collections
import dataclasses
import pickle
import re

import gymnasium as gym
import numpy as np
import pytest

from dashboard_league import PAGES, assert_clean, open_page
from marl_arena.algorithms import PPOConfig
from marl_arena.cli import main as cli_main
from marl_arena.core.scripted import RandomModule
from marl_arena.env import MultiAgentEnv, register_env
from marl_arena.env.episode import MultiAgentEpisode
from marl_arena.env.registry import make_env
from marl_arena.league.league_config import LeagueConfig
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena.league.teams import SidesConfig, TeamDraw, TeamLayout
from marl_arena_leagues import simple_tag

RED, BLUE = ("r0", "r1"), ("b0", "b1")


class Squads(MultiAgentEnv):
    """Two squads of two and a neutral referee, acting at once for ``length`` steps. Each step a squad
    member earns the number of its squad's 1-actions minus the other squad's (so the squads' mean
    returns are opposite); the referee earns nothing. Squad members see [own index, step, squad]."""

    def __init__(self, config: dict | None = None):
        self.length = (config or {}).get("length", 3)
        self.possible_agents = [*RED, *BLUE, "referee"]
        box = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.observation_spaces = {agent: box for agent in self.possible_agents}
        self.observation_spaces["referee"] = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
        self.action_spaces = {agent: gym.spaces.Discrete(2) for agent in self.possible_agents}
        self.agents, self.t = [], 0

    def _obs(self):
        obs = {a: np.array([i % 2, self.t, a in RED], np.float32) for i, a in enumerate(self.possible_agents[:4])}
        return obs | {"referee": np.array([self.t], np.float32)}

    def reset(self, *, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return self._obs(), {}

    def step(self, actions):
        self.t += 1
        margin = sum(int(actions[a]) for a in RED) - sum(int(actions[a]) for a in BLUE)
        rewards = {a: float(margin) for a in RED} | {a: -float(margin) for a in BLUE} | {"referee": 0.0}
        over = self.t >= self.length
        truncateds = {a: over for a in self.agents} | {"__all__": over}
        return self._obs(), rewards, {"__all__": False}, truncateds, {}


register_env("squads", lambda cfg: Squads(cfg))

SQUADS = {"red": list(RED), "blue": list(BLUE)}
MIXED = {"red": {"r0": "shared", "r1": "individual"}}  # one shared and one individual module per team


def _tiny_ppo() -> PPOConfig:
    return (PPOConfig().training(train_batch_size_per_learner=120, minibatch_size=60, num_epochs=1, lr=1e-3)
            .env_runners(num_envs_per_env_runner=2).rl_module(model_config={"fcnet_hiddens": [8]}))


def _squads_config(directory) -> LeagueConfig:
    return (LeagueConfig().environment("squads").trainer(_tiny_ppo())
            .sides(SQUADS, members=MIXED, neutral={"referee": RandomModule})
            .roster(main_agents=1, scripted={"random": RandomModule})
            .matchmaking("uniform").snapshots(win_rate=None, every_n_steps=120).store(str(directory)))


# ---------------------------------------------------------------------------------------------- sides
def test_equal_sides_are_symmetric_and_members_map_by_position():
    layout = TeamLayout.resolve(SidesConfig(SQUADS, members=MIXED, neutral={"referee": RandomModule}), Squads())
    assert layout.symmetric and layout.home_sides() == [None]
    team = layout.team("p", None)
    assert team == {"r0": "p", "r1": "p/r1"}
    assert layout.trained_modules(team) == ["p", "p/r1"]
    assert layout.seat("blue", team) == {"b0": "p", "b1": "p/r1"}  # the individual member by position
    assert layout.fixed_modules() == {"neutral/referee": ("referee", RandomModule)}


def test_symmetric_draw_seats_the_learner_on_both_sides_and_the_neutral_agent_on_its_module():
    layout = TeamLayout.resolve(SidesConfig(SQUADS, members=MIXED, neutral={"referee": RandomModule}), Squads())
    teams = {"me": layout.team("me", None), "them": layout.team("them", None)}
    draw = TeamDraw("me", {"them": 1.0}, layout, teams, {"me": None, "them": None}, seed=0)
    sides = collections.Counter()
    for _ in range(200):
        episode = MultiAgentEpisode()
        mapping = {agent: draw(agent, episode) for agent in Squads().possible_agents}
        assert mapping["referee"] == "neutral/referee"
        mine = "red" if mapping["r0"] == "me" else "blue"
        sides[mine] += 1
        own, other = (RED, BLUE) if mine == "red" else (BLUE, RED)
        assert [mapping[a] for a in own] == ["me", "me/r1"]
        assert [mapping[a] for a in other] == ["them", "them/r1"]
    assert 70 < sides["red"] < 130  # a random side per episode


def test_asymmetric_sides_keep_every_player_on_its_own_side():
    env = make_env(simple_tag.ENV, simple_tag.ENV_CONFIG)
    layout = TeamLayout.resolve(SidesConfig({"predators": simple_tag.PREDATORS, "prey": simple_tag.PREY}), env)
    env.close()
    assert not layout.symmetric and layout.home_sides() == ["predators", "prey"]
    teams = {"hunter": layout.team("hunter", "predators"), "runner": layout.team("runner", "prey"),
             "runner_v1": layout.team("runner_v1", "prey")}
    draw = TeamDraw("hunter", {"runner": 0.5, "runner_v1": 0.5}, layout, teams,
                    {"hunter": "predators", "runner": "prey", "runner_v1": "prey"}, seed=1)
    drawn = collections.Counter()
    for _ in range(100):
        episode = MultiAgentEpisode()
        mapping = {agent: draw(agent, episode) for agent in env.possible_agents}
        assert [mapping[a] for a in simple_tag.PREDATORS] == ["hunter"] * 3
        drawn[mapping["agent_0"]] += 1
    assert set(drawn) == {"runner", "runner_v1"}


def test_a_team_draw_travels_to_runners_and_each_runner_draws_its_own_opponents():
    layout = TeamLayout.resolve(SidesConfig(SQUADS, neutral={"referee": RandomModule}), Squads())
    teams = {pid: layout.team(pid, None) for pid in ("me", "a", "b", "c")}
    draw = TeamDraw("me", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, layout, teams, dict.fromkeys(teams), seed=5)
    copies = [pickle.loads(pickle.dumps(draw.for_env_runner(index))) for index in (1, 2)]

    def opponents(copy: TeamDraw) -> list[str]:
        plans = [copy.plan() for _ in range(30)]
        return [plan["b0"] if plan["r0"] == "me" else plan["r0"] for plan in plans]

    first, second = map(opponents, copies)
    assert set(first) == {"a", "b", "c"} and first != second


def test_a_fixed_member_is_one_module_every_team_of_the_side_shares():
    layout = TeamLayout.resolve(SidesConfig(SQUADS, members={"red": {"r1": RandomModule}},
                                            neutral={"referee": RandomModule}), Squads())
    assert layout.team("a", None) == {"r0": "a", "r1": "fixed/r1"}
    assert layout.trained_modules(layout.team("a", None)) == ["a"]
    assert set(layout.fixed_modules()) == {"fixed/r1", "neutral/referee"}


@pytest.mark.parametrize("sides, options, message", [
    ({"red": ["r0"], "blue": ["b0"], "green": ["b1"]}, {}, "exactly two sides"),
    ({"red": ["r0", "x9"], "blue": ["b0"]}, {}, "'x9'"),
    ({"red": ["r0", "b0"], "blue": ["b0"]}, {}, "on two sides"),
    (SQUADS, {}, "['referee'] are on no side"),
    (SQUADS, {"neutral": {"referee": RandomModule}, "members": {"red": {"r0": "solo"}}}, "'solo'"),
    ({"red": ["r0", "referee"], "blue": ["b0", "b1"]}, {"symmetric": True}, "symmetric=True"),
    ({"red": ["r0", "referee"], "blue": ["b0", "b1"]}, {}, "shared members ['r0', 'referee']"),
])
def test_bad_sides_are_refused_naming_what_is_wrong(sides, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TeamLayout.resolve(SidesConfig(sides, **options), Squads())


# ---------------------------------------------------------------------------------------------- scoring
def test_a_match_scores_each_side_by_its_members_mean_return_or_the_outcome_rule():
    layout = TeamLayout.resolve(SidesConfig({"predators": ["r0", "r1", "b0"], "prey": ["b1"]},
                                            neutral={"referee": RandomModule}), Squads())
    returns = layout.side_returns({"r0": 3.0, "r1": 3.0, "b0": 0.0, "b1": -2.5, "referee": 100.0})
    assert returns == (2.0, -2.5)  # a mean over three predators; the referee counts for nobody
    assert layout.score(returns) == 1.0 and layout.score((1.0, 1.0)) == 0.5
    ruled = dataclasses.replace(layout, outcome=simple_tag.caught)
    assert ruled.score((0.0, -4.0)) == 0.0  # no catch: the prey escaped, though its return is lower
    assert ruled.score((10.0, -12.0)) == 1.0


def test_an_outcome_score_survives_the_store(tmp_path):
    store = LeagueStore(tmp_path)
    store.record_matches([(MatchRecord("env", ("hunter", "runner"), (0.0, -4.0), 25, outcome=0.0), {}),
                          (MatchRecord("env", ("hunter", "runner"), (10.0, -12.0), 25), {})])
    first, second = store.matches()
    assert (first.score, second.score) == (0.0, 1.0)
    assert store.versioned_results() == [("hunter", "runner", 0, 0, 1, 0, 1)]
    store.close()


# ---------------------------------------------------------------------------------------------- leagues
def test_a_symmetric_team_league_with_mixed_members_and_a_neutral_agent_trains_snapshots_and_resumes(tmp_path):
    league = _squads_config(tmp_path).build()
    try:
        algo = league.trainers["main_0"]
        assert algo.learner_group.module_ids_to_train == ["main_0", "main_0/r1"]
        assert {"random", "random/r1", "neutral/referee"} <= set(algo.config.policies)
        before = {m: {k: v.clone() for k, v in w.items()} for m, w in league._player_weights("main_0").items()}
        league.run(2)
        after = league._player_weights("main_0")
        for module_id in ("main_0", "main_0/r1"):  # both the shared and the individual module learn
            assert any(not np.allclose(before[module_id][k], after[module_id][k]) for k in before[module_id])
        assert "main_0_v1" in league.players  # every 120 env steps
        assert set(league.trainers["main_0"].config.policies) >= {"main_0_v1", "main_0_v1/r1"}
        matches = league.store.matches()
        assert matches and all(set(m.players) <= set(league.players) for m in matches)
        agents = league.layout.sides
        for match in matches:
            assert match.returns[0] == pytest.approx(-match.returns[1])  # opposite squads
        board = league.leaderboard()
        row = next(r for r in board if r["player"] == "main_0_v1")
        assert row["side"] is None and row["members"] == {"r0": "main_0_v1", "r1": "main_0_v1/r1"}
        snapshot = league.store.load_snapshot(league.store.player_snapshot("main_0_v1"))
        assert set(snapshot) == {"", "/r1"}  # the whole team is frozen
        count, iteration = league.store.count_matches(), league.iteration
        assert agents == {"red": RED, "blue": BLUE}
        assert {m.players.index("main_0") for m in matches if set(m.players) != {"main_0"}} == {0, 1}  # both sides
    finally:
        league.stop()
    resumed = _squads_config(tmp_path).build()
    try:
        assert resumed.iteration == iteration and resumed.store.count_matches() == count
        assert resumed._teams["main_0_v1"] == {"r0": "main_0_v1", "r1": "main_0_v1/r1"}
        assert {"main_0_v1", "main_0_v1/r1"} <= set(resumed.trainers["main_0"].config.policies)
        resumed.run(1)
        assert resumed.store.count_matches() > count
    finally:
        resumed.stop()


def _short_simple_tag(directory) -> LeagueConfig:
    config = simple_tag.make_config(str(directory), train_batch=200, minibatch=100, epochs=1)
    return config.snapshots(win_rate=None, every_n_steps=200)


@pytest.fixture(scope="module")
def simple_tag_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("simple_tag")
    league = _short_simple_tag(directory).build()
    try:
        league.run(2)
    finally:
        league.stop()
    return directory


def test_simple_tag_trains_a_predator_team_and_a_prey_team_each_with_snapshots(simple_tag_dir):
    league = _short_simple_tag(simple_tag_dir).build()
    try:
        assert sorted(league.trainers) == ["predators_main_0", "prey_main_0"]
        predators = league.trainers["predators_main_0"]
        assert type(predators.get_module("predators_main_0")).__name__ == "CentralizedCriticModule"
        assert type(league.trainers["prey_main_0"].get_module("prey_main_0")).__name__ == "ActorCriticModule"
        assert {"predators_main_0_v1", "prey_main_0_v1"} <= set(league.players)
        for match in league.store.matches():
            predator, prey = match.players
            assert league._player_sides[predator] == "predators" and league._player_sides[prey] == "prey"
            assert match.score == (1.0 if match.returns[0] > 0 else 0.0)  # the catch decides
    finally:
        league.stop()


def test_simple_tag_has_a_leaderboard_per_side_rating_predators_only_against_prey(simple_tag_dir):
    league = _short_simple_tag(simple_tag_dir).build()
    try:
        boards = {side: league.leaderboard(side) for side in ("predators", "prey")}
        assert {r["player"] for r in boards["predators"]} == {p for p in league.players if p.startswith("predators")}
        assert {r["player"] for r in boards["prey"]} == {p for p in league.players if p.startswith("prey")}
        predator = next(r for r in boards["predators"] if r["player"] == "predators_main_0")
        prey = next(r for r in boards["prey"] if r["player"] == "prey_main_0")
        assert predator["games"] > 0 and predator["members"] == dict.fromkeys(simple_tag.PREDATORS, "predators_main_0")
        # every rated game of a predator was against prey: wins of one side are losses of the other
        assert sum(r["wins"] for r in boards["predators"]) == sum(r["losses"] for r in boards["prey"])
        assert sum(r["games"] for r in boards["predators"]) == sum(r["games"] for r in boards["prey"])
        assert prey["side"] == "prey"
        with pytest.raises(ValueError, match="sides are"):
            league.leaderboard("referees")
    finally:
        league.stop()


def test_simple_tag_store_shows_teams_in_the_dashboard(monkeypatch, simple_tag_dir):
    app = open_page(monkeypatch, simple_tag_dir, "leaderboard")
    assert_clean(app, "leaderboard")
    assert [s.value for s in app.subheader][:2] == ["Side predators: adversary_0, adversary_1, adversary_2",
                                                    "Side prey: agent_0"]
    predators, prey = (table.value for table in app.dataframe[:2])
    assert set(predators["side"]) == {"predators"} and set(prey["side"]) == {"prey"}
    assert "adversary_1: predators_main_0" in set(predators["members"].str.cat(sep="; ").split("; ")[0].split(", "))
    for page in PAGES:  # every other page reads the team league's store as well
        app.switch_page(f"views/{page}.py").run()
        assert_clean(app, page)


def test_simple_tag_runs_from_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(simple_tag, "trainer", _smaller(simple_tag.trainer))
    assert cli_main(["league", "run", "simple_tag", "--iterations", "1", "--dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "side predators:" in out and "side prey:" in out and "predators_main_0" in out
    assert cli_main(["league", "status", str(tmp_path)]) == 0
    status = capsys.readouterr().out
    predators, prey = status.split("side prey:")
    assert "predators_main_0" in predators and "prey_main_0" not in predators and "prey_main_0" in prey


def _smaller(trainer):
    def make(**options):
        return trainer(**{"train_batch": 200, "minibatch": 100, "epochs": 1, **options})
    return make


def _world_comm_config(directory) -> LeagueConfig:
    """simple_world_comm 2v2: a leader (its own spaces, so its own module) and an adversary on the
    side's shared module, against two good agents sharing one."""
    return (LeagueConfig().environment("mpe2:simple_world_comm_v3",
                                       env_config={"num_good": 2, "num_adversaries": 2, "num_obstacles": 1,
                                                   "num_food": 1, "num_forests": 1, "max_cycles": 10})
            .trainer(_tiny_ppo())
            .sides({"adversaries": ["leadadversary_0", "adversary_0"], "good": ["agent_0", "agent_1"]},
                   members={"adversaries": {"leadadversary_0": "individual", "adversary_0": "shared"}})
            .roster(main_agents=1).matchmaking("uniform")
            .snapshots(win_rate=None, every_n_steps=120).store(str(directory)))


def test_a_2v2_world_comm_team_with_a_shared_and_an_individual_module_trains_and_resumes(tmp_path):
    league = _world_comm_config(tmp_path).build()
    learner, leader = "adversaries_main_0", "adversaries_main_0/leadadversary_0"
    try:
        assert set(league.trainers[learner].learner_group.module_ids_to_train) == {learner, leader}
        before = {m: {k: v.clone() for k, v in w.items()} for m, w in league._player_weights(learner).items()}
        league.run(2)
        after = league._player_weights(learner)
        for module_id in (learner, leader):  # the shared and the individual module both learn
            assert any(not np.allclose(before[module_id][k], after[module_id][k]) for k in before[module_id])
        assert f"{learner}_v1" in league.players
        iteration = league.iteration
    finally:
        league.stop()
    resumed = _world_comm_config(tmp_path).build()
    try:
        assert resumed.iteration == iteration
        restored = resumed._player_weights(learner)
        for module_id in (learner, leader):  # the checkpoint restores the team's weights
            assert all(np.allclose(after[module_id][k], restored[module_id][k]) for k in after[module_id])
    finally:
        resumed.stop()


def test_teams_play_rated_evaluation_matches_on_both_symmetric_sides_and_mix_as_a_pool(tmp_path):
    league = _squads_config(tmp_path).build()
    try:
        matches = league.play_matches("main_0", "random", episodes=10)
        assert len(matches) == 10 and league.store.count_matches() == 10
        assert collections.Counter(m.players for m in matches) == {("main_0", "random"): 5, ("random", "main_0"): 5}
        for match in matches:  # the squads' returns are opposite, whichever side a team plays
            assert match.returns[0] == pytest.approx(-match.returns[1])
        assert league.payoff.stats("main_0", "random").games == 10
        mixture = league.pool_mixture(players=["main_0", "random"], episodes=4)
        assert set(mixture) == {"main_0", "random"} and sum(mixture.values()) == pytest.approx(1.0)
    finally:
        league.stop()


def test_asymmetric_teams_play_matches_on_their_own_sides_only(simple_tag_dir):
    league = _short_simple_tag(simple_tag_dir).build()
    try:
        before = league.store.count_matches()
        matches = league.play_matches("prey_main_0_v1", "predators_main_0", episodes=6)
        assert len(matches) == 6 and league.store.count_matches() == before + 6
        assert all(m.players == ("predators_main_0", "prey_main_0_v1") for m in matches)  # side order, not call order
        with pytest.raises(ValueError, match="both play side 'prey'"):
            league.play_matches("prey_main_0", "prey_main_0_v1", episodes=2)
        with pytest.raises(ValueError, match="asymmetric"):
            league.pool_mixture()
    finally:
        league.stop()
