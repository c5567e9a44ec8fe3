"""Every ready-made league in leagues/, run briefly, and every dashboard page on the store it writes.

Each league is built by its own ``make_config`` with only its sampling budget cut (``shortened``):
same game, trainer, modules and roster, so the store holds what the real league writes: the game
record with the trainer's module spec (a DQN trainer's for tic-tac-toe), its bots, matches, and
one snapshot, frozen explicitly since a short run reaches no snapshot rule.
"""

from __future__ import annotations

import importlib

import pytest

from dashboard_league import PAGES, assert_clean, open_page
from marl_arena.algorithms.off_policy_config import OffPolicyConfig
from marl_arena.league.league_config import LeagueConfig
from marl_arena.league.module_specs import load_player_module, spec_from_json
from marl_arena.league.store import LeagueStore
from marl_arena_dashboard import queries
from marl_arena_leagues import NAMES

LEARNER = "main_0"
"""Every ready-made league has one main agent."""
SNAPSHOT = f"{LEARNER}_v1"
PLAYABLE = {"tic_tac_toe", "connect_four"}
"""The ready-made leagues on a board game that a person can play in the dashboard."""


def shortened(config: LeagueConfig) -> LeagueConfig:
    """``config`` sampling a few hundred env steps per iteration and learning from them at once."""
    trainer = config.trainer_config
    if isinstance(trainer, OffPolicyConfig):
        trainer.training(num_steps_sampled_before_learning_starts=100)
        trainer.reporting(min_sample_timesteps_per_iteration=200)
    else:
        trainer.training(train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
    return config


@pytest.fixture(scope="module", params=NAMES)
def name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def league_dir(name, tmp_path_factory):
    """The league's directory after an iteration, a snapshot of its main agent, and one more iteration."""
    directory = tmp_path_factory.mktemp(name)
    make_config = importlib.import_module(f"marl_arena_leagues.{name}").make_config
    league = shortened(make_config(str(directory))).build()
    try:
        league.run(1)
        league.freeze(LEARNER, league.store.metrics(LEARNER)[-1][1]["env_steps"])
        league.run(1)
    finally:
        league.stop()
    return directory


@pytest.fixture
def store(league_dir):
    store = LeagueStore(league_dir, read_only=True)
    yield store
    store.close()


def test_every_player_to_play_against_is_rebuilt_from_the_store(store):
    players = queries.playable_players(store)
    assert SNAPSHOT in players
    modules = {player: load_player_module(store, player) for player in players}  # bots with the trainer's spaces
    assert type(modules[SNAPSHOT]) is spec_from_json(store.game()["module_spec"]).module_class


def test_every_page_renders_on_the_leagues_store(monkeypatch, league_dir, store):
    app = open_page(monkeypatch, league_dir, "leaderboard")
    assert set(app.dataframe[0].value["player"]) == {p.id for p in store.players()}
    for page in PAGES:
        app.switch_page(f"views/{page}.py").run()
        assert_clean(app, page)
        assert not app.warning or page == "graph", (page, [w.value for w in app.warning])  # graph: cycles


def test_play_seats_every_opponent_or_says_the_game_is_not_playable(monkeypatch, name, league_dir, store):
    app = open_page(monkeypatch, league_dir, "play")
    assert_clean(app, "play")
    if name not in PLAYABLE:
        assert "Playing against an agent needs a league on" in app.info[0].value
        return
    opponents = app.selectbox(key="play_opponent").options
    assert set(opponents) == set(queries.playable_players(store))
    for opponent in opponents:
        app.selectbox(key="play_opponent").set_value(opponent).run()
        assert not app.exception and not app.warning, (opponent, [w.value for w in app.warning])
    app.selectbox(key="play_opponent").set_value(SNAPSHOT).run()
    app.radio(key="play_seat").set_value(1).run()
    app.button(key="new_game").click().run()  # the snapshot opens the game with its own module
    assert not app.exception
    assert f"You are **o** against `{SNAPSHOT}`. Your move." in [m.value for m in app.markdown]
