"""Dashboard load time on a big league: 200 players, 100,000 matches; goal under 2 s per page.

Builds the store in a temporary directory through ``LeagueStore``'s own API (matches and
their Elo in one ``record_matches`` transaction): 4 main agents with 45 snapshots each, 16
scripted bots; results drawn from a Bradley-Terry model of hidden strengths, every match
with the moves of a random tic-tac-toe game, 300 training iterations of metrics per main
agent. Then, per page, with every cache cleared first:

* ``data_s``: the page's queries (``marl_arena_dashboard.queries``) on a read-only store;
* ``page_s``: a full Streamlit ``AppTest`` run of the page (script, queries, charts), the
  median of ``--repeats`` cold runs (the first run in the process, which imports
  Streamlit's machinery, is not timed);
* ``warm_s``: the same page run again with the store unchanged, what each tick of live
  refresh costs.

The process runs with the thread settings ``marl-arena dashboard`` gives the server
(``SERVER_ENV``: one BLAS thread).

    python benchmarks/dashboard_load.py --quick    # 10,000 matches, one run per page
    python benchmarks/dashboard_load.py            # prints JSON
    python benchmarks/dashboard_load.py --out      # also writes benchmarks/results/dashboard_load.json
"""

from __future__ import annotations

import logging
import os
import pathlib
import tempfile
import time
from typing import Any, Callable

from marl_arena_dashboard import APP, LEAGUE_DIR_ENV, SERVER_ENV  # constants only: imports no numpy

for _name, _value in SERVER_ENV.items():  # as `marl-arena dashboard` runs the server; before numpy loads BLAS
    os.environ.setdefault(_name, _value)

import gymnasium as gym  # noqa: E402
import numpy as np
import pyspiel
import torch

try:  # python -m benchmarks.dashboard_load, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/dashboard_load.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.core.actor_critic import ActorCriticModule
from marl_arena.core.rl_module import RLModuleSpec
from marl_arena.league.leaderboard import INITIAL_ELO
from marl_arena.league.module_specs import spec_to_json
from marl_arena.league.players import PlayerInfo
from marl_arena.league.ratings import elo_update
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena_dashboard import queries
from marl_arena_dashboard.boards import board_game

logger = logging.getLogger("benchmarks.dashboard_load")

NAME = "dashboard_load"
TARGET_S = 2.0
ENV = "open_spiel:tic_tac_toe"
MAIN_AGENTS, SNAPSHOTS_PER_MAIN, SCRIPTED = 4, 45, 16  # 4 + 180 + 16 = 200 players
ITERATIONS = 300


def random_games(count: int, rng: np.random.Generator) -> list[tuple[tuple[int, int], ...]]:
    """``count`` random tic-tac-toe games as ``(seat, action)`` moves."""
    game = pyspiel.load_game("tic_tac_toe")
    games = []
    for _ in range(count):
        state, moves = game.new_initial_state(), []
        while not state.is_terminal():
            seat = state.current_player()
            action = int(rng.choice(state.legal_actions()))
            moves.append((seat, action))
            state.apply_action(action)
        games.append(tuple(moves))
    return games


def build_store(directory: pathlib.Path, matches: int, seed: int = 0) -> dict[str, Any]:
    """A league store with 200 players and ``matches`` matches; returns what was built and how long it took."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    store = LeagueStore(directory)
    base = RLModuleSpec(ActorCriticModule, gym.spaces.Box(-np.inf, np.inf, (27,), np.float32), gym.spaces.Discrete(9),
                        model_config={"fcnet_hiddens": [32, 32]})
    store.set_game({"env": ENV, "env_config": {}, "elo_k": 16.0, "module_spec": spec_to_json(base)})
    weights = store.save_snapshot("main_0", base.build().state_dict())
    now = time.time() - matches  # one match a second, up to now
    players = []
    for m in range(MAIN_AGENTS):
        players.append(PlayerInfo(f"main_{m}", "main_agent", created=now))
        for v in range(1, SNAPSHOTS_PER_MAIN + 1):
            players.append(PlayerInfo(f"main_{m}_v{v}", "snapshot", parent=f"main_{m}", frozen=True,
                                      created=now + v * matches / (SNAPSHOTS_PER_MAIN + 1)))
    players += [PlayerInfo(f"bot_{b}", "scripted", created=now, frozen=True) for b in range(SCRIPTED)]
    for player in players:
        store.add_player(player, snapshot=weights if player.kind == "snapshot" else None,
                         metadata={"module_class": "marl_arena.core.scripted:RandomModule"}
                         if player.kind == "scripted" else None)
    strength = {p.id: rng.normal(0.0, 1.0) for p in players}
    ids = [p.id for p in players]
    games = random_games(500, rng)
    elo: dict[str, float] = {}
    rows = []
    for i in range(matches):
        a, b = rng.choice(len(ids), size=2, replace=False)
        first, second = ids[a], ids[b]
        p_first = 1.0 / (1.0 + np.exp(strength[second] - strength[first]))
        draw = rng.random() < 0.1
        outcome = 0.0 if draw else (1.0 if rng.random() < p_first else -1.0)
        moves = games[i % len(games)]
        match = MatchRecord(ENV, (first, second), (outcome, -outcome), len(moves), iteration=i // 300,
                            created=now + i, moves=moves)
        elo[first], elo[second] = elo_update(elo.get(first, INITIAL_ELO), elo.get(second, INITIAL_ELO),
                                             match.score, 16.0)
        rows.append((match, {first: elo[first], second: elo[second]}))
    store.record_matches(rows)
    for m in range(MAIN_AGENTS):
        for iteration in range(1, ITERATIONS + 1):
            store.record_metrics(f"main_{m}", iteration, {
                "episode_return_mean": float(np.tanh(iteration / 100)), "env_steps": 4000 * iteration,
                "env_steps_per_s": 9000.0, "learner/total_loss": 1.0 / iteration,
                "learner/policy_loss": -0.01, "learner/vf_loss": 0.5 / iteration})
    store.close()
    return {"players": len(players), "matches": matches, "build_s": time.perf_counter() - started,
            "store_mb": (directory / "league.sqlite").stat().st_size / 2**20}


def page_queries(store: LeagueStore) -> dict[str, Callable[[], Any]]:
    """Each page's data, as its script asks for it with the default widget values."""
    overview = queries.overview(store)
    trainable = [pid for pid in overview["players"] if overview["kinds"][pid] == "main_agent"]

    def ratings():
        standings = queries.standings(store)
        return queries.rating_lines(store, standings.top(8)), queries.training_frame(store, trainable[0])

    def payoff():
        standings = queries.standings(store)
        return queries.payoff_frame(standings.payoff, standings.top(20))

    def graph():
        standings = queries.standings(store)
        return queries.lineage_graph(store), queries.beats(standings.payoff, standings.top(15), 10, 3)

    return {
        "leaderboard": lambda: (queries.overview(store), queries.standings(store)),
        "ratings": lambda: (queries.overview(store), ratings()),
        "payoff": lambda: (queries.overview(store), payoff()),
        "graph": lambda: (queries.overview(store), graph()),
        "matches": lambda: (queries.overview(store), queries.match_log(store, 100),
                            board_game(ENV).states([a for _, a in queries.match(store, store.count_matches()).moves])),
        "play": lambda: (queries.overview(store), queries.playable_players(store)),
    }


def time_data(directory: pathlib.Path) -> dict[str, float]:
    store = LeagueStore(directory, read_only=True)
    try:
        return {page: _seconds(load) for page, load in page_queries(store).items()}
    finally:
        store.close()


def time_pages(directory: pathlib.Path, repeats: int) -> dict[str, dict[str, Any]]:
    """Cold AppTest runs of every page (Streamlit's caches cleared before each)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ[LEAGUE_DIR_ENV] = str(directory)
    AppTest.from_file(str(APP), default_timeout=60).run()  # warm-up: imports and Streamlit's own set-up
    results = {}
    for page in ("leaderboard", "ratings", "payoff", "graph", "matches", "play"):
        times, warm, problems = [], [], []
        for _ in range(repeats):
            app = AppTest.from_file(str(APP), default_timeout=60).run()
            st.cache_resource.clear()
            app.switch_page(f"views/{page}.py")
            started = time.perf_counter()
            app.run()
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            app.run()  # the store has not changed: what a live refresh costs
            warm.append(time.perf_counter() - started)
            problems += [e.value for e in app.exception]
        results[page] = {"page_s": common.median(times), "runs_s": times, "warm_s": common.median(warm),
                         "exceptions": problems}
    return results


def _seconds(load: Callable[[], Any]) -> float:
    started = time.perf_counter()
    load()
    return time.perf_counter() - started


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="cold AppTest runs per page (median)")
    args = parser.parse_args()
    if args.quick:
        args.matches, args.repeats = 10_000, 1
    common.configure_logging(args.verbose)
    torch.set_num_threads(1)
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": NAME, "machine": common.machine_info(), "target_s": TARGET_S}
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp)
        report["store"] = build_store(directory, args.matches)
        logger.info("built %s", report["store"])
        data = time_data(directory)
        pages = time_pages(directory, args.repeats)
    report["pages"] = {page: {"data_s": data[page], **pages[page]} for page in data}
    report["worst_page_s"] = max(p["page_s"] for p in report["pages"].values())
    report["all_under_target"] = all(p["page_s"] < TARGET_S and not p["exceptions"] for p in report["pages"].values())
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
