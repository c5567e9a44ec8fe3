"""What the dashboard tests share: the app opened on a page, and the short real league they look at.

The league: tic-tac-toe, a PPO main agent, two bots. Four iterations of self-play and PFSP
(a snapshot every 600 env steps), then 20 games of the random bot against the greedy one:
about two seconds, and every page has something to show (several kinds, lineage, ratings,
training curves, matches with moves, players to play).
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig
from marl_arena_dashboard import APP, LEAGUE_DIR_ENV
from marl_arena_envs.openspiel import TicTacToeGreedy

PAGES = {"leaderboard": "Leaderboard", "ratings": "Ratings and training", "payoff": "Payoff",
         "graph": "League graph", "matches": "Matches", "play": "Play against an agent"}
"""Each page's file in dashboard/views/ and the title it shows."""


def open_page(monkeypatch, directory, page: str) -> AppTest:
    """The app on ``directory``, switched to ``page`` and run (live refresh off: AppTest runs no timers)."""
    monkeypatch.setenv(LEAGUE_DIR_ENV, str(directory))
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params["live"] = "off"
    app.run()
    if page != "leaderboard":
        app.switch_page(f"views/{page}.py").run()
    return app


def assert_clean(app: AppTest, page: str) -> None:
    """``page`` is shown, with no exception and no error message."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert [t.value for t in app.title] == [PAGES[page]]


def tic_tac_toe_league(directory) -> LeagueConfig:
    trainer = (PPOConfig()
               .training(train_batch_size_per_learner=300, minibatch_size=100, num_epochs=2, lr=1e-3)
               .env_runners(num_envs_per_env_runner=4)
               .rl_module(model_config={"fcnet_hiddens": [32, 32]}))
    return (LeagueConfig()
            .environment("open_spiel:tic_tac_toe")
            .trainer(trainer)
            .roster(main_agents=1, scripted={"random": RandomModule, "greedy": TicTacToeGreedy})
            .matchmaking("pfsp", weighting="variance")
            .snapshots(win_rate=None, every_n_steps=600)
            .store(str(directory)))


def build_league(directory) -> None:
    league = tic_tac_toe_league(directory).build()
    try:
        league.run(4)
        league.play_matches("random", "greedy", 20)
    finally:
        league.stop()
