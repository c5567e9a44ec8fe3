"""Rating calibration on a real league: predicted against observed win rates for pairs with >= 100 games.

Runs the take_away league as ``marl-arena league run take_away`` does (its ``make_config``
and ``ITERATIONS``), then has main_0 as it ends play ``--eval-games`` evaluation games
against the random bot and against its newest snapshot (``League.play_matches``), so that
its current version has pairs of at least 100 games. Then, per pair:

* ``after``: the league's ratings as they are now. ``bradley_terry``: the fit over rated
  policies (a learner's versions apart, see marl_arena/league/leaderboard.py), every pair
  of policies; ``elo``: Elo as the league keeps it (online, re-anchored on that fit each
  iteration), pairs of players in their current versions.
* ``before``: what the league computed before this change, from the same matches: online
  Elo replayed in match order (K of the league, each snapshot starting at its parent's
  rating), and the Bradley-Terry fit with one rating per player; each against the pairs'
  whole-history results (what the issue measured: main_0 against random) and against the
  current versions' results.

    python benchmarks/rating_calibration.py          # prints JSON
    python benchmarks/rating_calibration.py --out    # also writes benchmarks/results/rating_calibration.json
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from typing import Any

try:  # python -m benchmarks.rating_calibration, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/rating_calibration.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.league.leaderboard import (
    INITIAL_ELO, RatingFit, calibration_report, format_leaderboard, payoff_from_results,
)
from marl_arena.league.ratings import bradley_terry, calibration, elo_update
from marl_arena_leagues import take_away

logger = logging.getLogger("benchmarks.rating_calibration")

NAME = "rating_calibration"
MIN_GAMES = 100
TARGET = 0.05


def replay_online_elo(store, k: float) -> dict[str, float]:
    """Online Elo as the league kept it before: every rated match in order, snapshots starting at their parent's."""
    snapshots = sorted((p.created, p.id, p.parent) for p in store.players() if p.kind == "snapshot")
    elo: dict[str, float] = {}
    for match_id, match in store.matches_after(0):
        while snapshots and snapshots[0][0] <= match.created:
            _, sid, parent = snapshots.pop(0)
            elo[sid] = elo.get(parent, INITIAL_ELO)
        a, b = match.players
        if a != b:
            elo[a], elo[b] = elo_update(elo.get(a, INITIAL_ELO), elo.get(b, INITIAL_ELO), match.score, k)
    for _, sid, parent in snapshots:
        elo[sid] = elo.get(parent, INITIAL_ELO)
    return elo


def worst(rows: list[dict[str, Any]]) -> float | None:
    return max((abs(r["error"]) for r in rows), default=None)


def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, **{k: round(r[k], 4) for k in ("observed", "predicted", "error")}} for r in rows]


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=take_away.ITERATIONS)
    parser.add_argument("--eval-games", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.iterations = 15
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": NAME, "machine": common.machine_info(), "min_games": MIN_GAMES,
                              "target_abs_error": TARGET, "iterations": args.iterations}
    directory = tempfile.mkdtemp(prefix="rating_calibration_")
    try:
        config = take_away.make_config(directory)
        league = config.build()
        try:
            league.run(args.iterations)
            latest = max((p for p in league.players.values() if p.parent == "main_0"), key=lambda p: p.created).id
            for opponent in ("random", latest):
                league.play_matches("main_0", opponent, args.eval_games)
            players, elo, store = dict(league.players), dict(league.elo), league.store
            results = store.versioned_results()
            after = calibration_report(players, results, elo, min_games=MIN_GAMES)
            fit = RatingFit(players, results)
            whole = payoff_from_results(players, results)
            played = [pid for pid in whole.players if any(whole.stats(pid, o).games for o in whole.players if o != pid)]
            old_bt = bradley_terry(whole, played).as_dict()
            old_elo = replay_online_elo(store, config.elo_k)
            current_old_elo = {policy: old_elo[pid] for pid, policy in fit.current.items() if pid in old_elo}
            report["before"] = {
                "elo_online_whole_history": rounded(calibration(whole, old_elo, min_games=MIN_GAMES)),
                "elo_online_current_versions": rounded(calibration(fit.table, current_old_elo, min_games=MIN_GAMES)),
                "bradley_terry_per_player_whole_history": rounded(calibration(whole, old_bt, min_games=MIN_GAMES)),
            }
            report["after"] = {"bradley_terry": rounded(after["bradley_terry"]), "elo": rounded(after["elo"]),
                               "bradley_terry_whole_history": rounded(after["bradley_terry_whole_history"])}
            report["worst_abs_error"] = {
                "before": {name: worst(rows) for name, rows in report["before"].items()},
                "after": {name: worst(rows) for name, rows in report["after"].items()},
            }
            report["after_within_target"] = all(
                worst(report["after"][name]) is not None and worst(report["after"][name]) <= TARGET
                for name in ("bradley_terry", "elo"))
            report["leaderboard"] = [{k: row[k] for k in ("player", "kind", "bt", "bt_low", "bt_high", "elo", "games")}
                                     for row in league.leaderboard()]
            report["ratings_before"] = {"elo_online": old_elo, "bradley_terry_per_player": old_bt}
            report["current_versions"] = {pid: policy for pid, policy in fit.current.items() if policy != pid}
            report["matches"] = store.count_matches()
            logger.info("\n%s", format_leaderboard(league.leaderboard()))
        finally:
            league.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
