"""Store scale: ``marl-arena league status`` and the dashboard's leaderboard on a store of 1M matches; goal < 2 s.

Builds a store through ``LeagueStore.record_matches`` (its own API, in transactions of
``--chunk`` matches, each with the two Elo ratings it moved, as a league writes them): the
200 players of benchmarks/dashboard_load.py (4 main agents with 45 snapshots each, frozen
at even intervals, and 16 bots), results drawn from hidden strengths, every match with the
moves of a random tic-tac-toe game. Then, each timed cold (new process or cleared caches):

* ``status_s``: ``marl-arena league status DIR`` as a subprocess, interpreter start included,
  and ``cli_import_s``, the interpreter start and ``import marl_arena.cli`` alone;
* ``status_in_process_s``: ``store_leaderboard`` on a read-only store;
* ``leaderboard_page_s``: a Streamlit ``AppTest`` run of the dashboard's leaderboard page
  (median of ``--repeats``), and ``leaderboard_data_s``, its queries alone;
* ``recount_s``: the same results counted from the matches table (what a store without
  the summary table, opened read-only, costs);
* ``fit_cold_s`` / ``fit_warm_s``: the rating fit from scratch and warm-started from the
  stored one after one more iteration of matches.

    python benchmarks/league_store_scale.py --quick   # 50,000 matches
    python benchmarks/league_store_scale.py --out     # 1M; writes benchmarks/results/league_store_scale.json
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

from marl_arena_dashboard import APP, LEAGUE_DIR_ENV, SERVER_ENV  # constants only: imports no numpy

for _name, _value in SERVER_ENV.items():
    os.environ.setdefault(_name, _value)

import numpy as np  # noqa: E402

try:  # python -m benchmarks.league_store_scale, from the repository root
    from benchmarks import common
    from benchmarks.dashboard_load import ENV, MAIN_AGENTS, SCRIPTED, SNAPSHOTS_PER_MAIN, random_games
except ImportError:  # python benchmarks/league_store_scale.py: benchmarks/ is sys.path[0]
    import common
    from dashboard_load import ENV, MAIN_AGENTS, SCRIPTED, SNAPSHOTS_PER_MAIN, random_games

from marl_arena.league.leaderboard import FIT_KEY, INITIAL_ELO, RatingFit, store_leaderboard
from marl_arena.league.players import PlayerInfo
from marl_arena.league.ratings import elo_update
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena_dashboard import queries

logger = logging.getLogger("benchmarks.league_store_scale")

NAME = "league_store_scale"
TARGET_S = 2.0


def build_store(directory: pathlib.Path, matches: int, chunk: int, seed: int = 0) -> dict[str, Any]:
    """``matches`` matches among 200 players, snapshots frozen as the matches go; what was built, how fast."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    store = LeagueStore(directory)
    store.set_game({"env": ENV, "env_config": {}, "elo_k": 16.0})
    now = time.time() - matches
    mains = [PlayerInfo(f"main_{m}", "main_agent", created=now) for m in range(MAIN_AGENTS)]
    bots = [PlayerInfo(f"bot_{b}", "scripted", created=now, frozen=True) for b in range(SCRIPTED)]
    for player in mains + bots:
        store.add_player(player)
    active = [p.id for p in mains + bots]
    strength = {pid: rng.normal(0.0, 1.0) for pid in active}
    games = random_games(500, rng)
    every = matches // (SNAPSHOTS_PER_MAIN + 1)
    elo: dict[str, float] = {}
    rows: list[tuple[MatchRecord, dict[str, float]]] = []
    for i in range(matches):
        if i and i % every == 0 and i // every <= SNAPSHOTS_PER_MAIN:
            store.record_matches(rows)  # the matches before the freeze, then the freeze
            rows = []
            for main in mains:  # freeze every main agent, which then improves a little
                snapshot = f"{main.id}_v{i // every}"
                store.add_player(PlayerInfo(snapshot, "snapshot", parent=main.id, created=now + i, frozen=True),
                                 rating=elo.get(main.id, INITIAL_ELO))
                strength[snapshot] = strength[main.id]
                strength[main.id] += 0.05
                active.append(snapshot)
        a, b = rng.choice(len(active), size=2, replace=False)
        first, second = active[a], active[b]
        p_first = 1.0 / (1.0 + np.exp(strength[second] - strength[first]))
        outcome = 0.0 if rng.random() < 0.1 else (1.0 if rng.random() < p_first else -1.0)
        moves = games[i % len(games)]
        match = MatchRecord(ENV, (first, second), (outcome, -outcome), len(moves), iteration=i // 300,
                            created=now + i, moves=moves)
        elo[first], elo[second] = elo_update(elo.get(first, INITIAL_ELO), elo.get(second, INITIAL_ELO),
                                             match.score, 16.0)
        rows.append((match, {first: elo[first], second: elo[second]}))
        if len(rows) == chunk:
            store.record_matches(rows)
            rows = []
    store.record_matches(rows)
    build_s = time.perf_counter() - started
    fit_started = time.perf_counter()
    players = {p.id: p for p in store.players()}
    fit = RatingFit(players, store.versioned_results())
    fit_cold_s = time.perf_counter() - fit_started
    store.set_meta(FIT_KEY, fit.ratings())
    store.close()
    return {"players": len(active), "matches": matches, "build_s": build_s,
            "matches_per_s": matches / build_s, "store_mb": (directory / "league.sqlite").stat().st_size / 2**20,
            "fit_cold_s": fit_cold_s}


def time_warm_fit(directory: pathlib.Path) -> dict[str, float]:
    """One more iteration of matches, then the fit warm-started from the stored one, and cold."""
    store = LeagueStore(directory)
    try:
        players = {p.id: p for p in store.players()}
        ids = sorted(players)
        rng = np.random.default_rng(1)
        store.record_matches([(MatchRecord(ENV, tuple(rng.choice(ids, 2, replace=False)), (1.0, -1.0), 5), {})
                              for _ in range(300)])
        results = store.versioned_results()
        started = time.perf_counter()
        RatingFit(players, results, store.meta(FIT_KEY))
        warm = time.perf_counter() - started
        started = time.perf_counter()
        RatingFit(players, results)
        cold = time.perf_counter() - started
    finally:
        store.close()
    return {"fit_warm_s": warm, "fit_cold_after_s": cold}


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def time_reads(directory: pathlib.Path, repeats: int) -> dict[str, Any]:
    status = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "marl_arena.cli", "league", "status", str(directory)],
                              capture_output=True, text=True)
        status.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"league status failed: {done.stderr}")
    imports = []
    for _ in range(repeats):  # the part of status_s that does not depend on the store
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import marl_arena.cli"], check=True)
        imports.append(time.perf_counter() - started)
    store = LeagueStore(directory, read_only=True)
    try:
        in_process = timed(lambda: store_leaderboard(store))
        data = timed(lambda: (queries.overview(store), queries.standings(store)))
        recount = timed(lambda: store.versioned_results(recount=True))
    finally:
        store.close()
    return {"status_s": common.median(status), "status_runs_s": status, "status_lines": done.stdout.count("\n"),
            "cli_import_s": common.median(imports),
            "status_in_process_s": in_process, "leaderboard_data_s": data, "recount_s": recount}


def time_page(directory: pathlib.Path, repeats: int) -> dict[str, Any]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ[LEAGUE_DIR_ENV] = str(directory)
    AppTest.from_file(str(APP), default_timeout=120).run()  # warm-up: imports and Streamlit's own set-up
    times, problems = [], []
    for _ in range(repeats):
        app = AppTest.from_file(str(APP), default_timeout=120).run()
        st.cache_resource.clear()
        st.cache_data.clear()
        app.switch_page("views/leaderboard.py")
        started = time.perf_counter()
        app.run()
        times.append(time.perf_counter() - started)
        problems += [e.value for e in app.exception]
    return {"leaderboard_page_s": common.median(times), "leaderboard_page_runs_s": times, "exceptions": problems}


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="matches per record_matches transaction")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", help="build in (or reuse) this directory instead of a temporary one")
    args = parser.parse_args()
    if args.quick:
        args.matches, args.repeats = 50_000, 1
    common.configure_logging(args.verbose)
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": NAME, "machine": common.machine_info(), "target_s": TARGET_S}
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(args.dir or tmp)
        if (directory / "league.sqlite").exists():
            report["store"] = {"reused": str(directory)}
        else:
            report["store"] = build_store(directory, args.matches, args.chunk)
        logger.info("store %s", report["store"])
        report.update(time_reads(directory, args.repeats))
        report.update(time_page(directory, args.repeats))
        report.update(time_warm_fit(directory))
    report["all_under_target"] = (report["status_s"] < TARGET_S and report["leaderboard_page_s"] < TARGET_S
                                  and not report["exceptions"])
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
