"""DreamerV3 as a league trainer: the take_away league (pile 21) until its main agent wins >= 90%
against the random bot from both seats (issue 18, item 5).

Protocol, per seed: the league of ``leagues/take_away.py`` (one main agent, the random bot,
PFSP, snapshots at 70% over 200 games) with ``DreamerV3Config`` as the trainer; ``League.run(1)``
repeatedly; after every iteration ``League.play_matches(main_0, random, GAMES)`` plays greedy
games, half from each seat (they are recorded in the store like any match). Reached where
both seats' win rates were at the target ``CONSECUTIVE`` checks in a row, counted at the last;
otherwise the figure is the last check's. Reported: the trainer's env steps (both the main
agent's and its opponents' moves, as the league counts them) and wall seconds.

The trainer runs model size "nano" (64-unit GRU and MLPs, 8 x 8 latents): a two-player game
of at most 21 moves needs no more, and XS costs several times the update time on two cores.

    python benchmarks/dreamerv3_league.py --quick
    python benchmarks/dreamerv3_league.py --out
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

try:  # python -m benchmarks.dreamerv3_league, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/dreamerv3_league.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.algorithms.dreamerv3 import DreamerV3Config
from marl_arena.league.league import League
from marl_arena_leagues import take_away

logger = logging.getLogger("benchmarks.dreamerv3_league")

NAME = "dreamerv3_league"
MAIN, BOT = "main_0", "random"
TARGET = 0.9
GAMES = 200
CONSECUTIVE = 2
BUDGETS_S = {"full": 900, "quick": 240}
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: the settings were chosen on seed 0
TRAINING = {"model_size": "nano", "batch_size_B": 16, "batch_length_T": 16, "training_ratio": 64,
            "imagination_starts": None, "gamma": 0.99, "num_steps_sampled_before_learning_starts": 256}


def trainer_config() -> DreamerV3Config:
    return (DreamerV3Config().training(**TRAINING).env_runners(num_envs_per_env_runner=8)
            .reporting(min_sample_timesteps_per_iteration=500))


def win_rates(league: League) -> dict[str, float]:
    """The main agent's greedy win rate against the bot from each seat."""
    wins: dict[int, list[bool]] = {0: [], 1: []}
    for match in league.play_matches(MAIN, BOT, GAMES):
        seat = match.players.index(MAIN)
        wins[seat].append(match.returns[seat] > match.returns[1 - seat])
    return {f"seat{seat}": sum(results) / len(results) for seat, results in wins.items()}


def run_seed(seed: int, budget_s: float) -> dict[str, Any]:
    load = common.log_load(f"dreamerv3 take_away league seed {seed}")
    with tempfile.TemporaryDirectory(prefix="dreamerv3_league_") as directory:
        league = League(take_away.make_config(directory).trainer(trainer_config()).debugging(seed=seed))
        start = time.perf_counter()
        streak, history, reached = common.Streak(CONSECUTIVE), [], False
        try:
            while time.perf_counter() - start < budget_s:
                league.run(1)
                rates = win_rates(league)
                steps = league.trainers[MAIN]._counters["num_env_steps_sampled_lifetime"]
                history.append({"env_steps": steps, "wall_s": time.perf_counter() - start, **rates})
                logger.info("seed %d: %s", seed, history[-1])
                if streak.add(min(rates.values()) >= TARGET):
                    reached = True
                    break
            board = league.leaderboard()
        finally:
            league.stop()
    last = history[-1] if history else {"env_steps": 0, "wall_s": time.perf_counter() - start}
    return {"seed": seed, "reached": reached, "consecutive": CONSECUTIVE, "env_steps": last["env_steps"],
            "wall_s": last["wall_s"], "iterations": len(history), "final_eval_return": min(last.get("seat0", 0.0),
                                                                                         last.get("seat1", 0.0)),
            "final_win_rates": {k: v for k, v in last.items() if k.startswith("seat")}, "history": history,
            "leaderboard": board, "load_before": load}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    parser.add_argument("--budget-s", type=float, help="wall seconds per seed (default: 900, quick: 240)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    seeds = args.seeds or SEEDS[mode]
    budget = args.budget_s or BUDGETS_S[mode]
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "protocol": f"leagues/take_away.py with DreamerV3Config().training({TRAINING}) as the trainer; after every "
                    f"League.run(1), {GAMES} greedy games against the random bot (half per seat); reached when both "
                    f"seats win >= {TARGET:.0%} in {CONSECUTIVE} checks in a row, within {budget} s per seed. "
                    "final_eval_return: the lower seat's win rate at the last check.",
        "settings": TRAINING,
        "peer": "none: no other library trains a DreamerV3 league player",
    }
    started = time.perf_counter()
    runs = [run_seed(seed, budget) for seed in seeds]
    report["tasks"] = {"take_away": {"target": TARGET, "time_budget_s_per_seed": budget, **common.summarize_runs(runs)}}
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
