"""DQN as a league trainer: the tic_tac_toe league (leagues/tic_tac_toe.py) until its main agent
wins or draws >= 90% against uniform random from both seats; PPO as the trainer side by side.

Protocol, per seed and trainer: ``League.run(1)`` repeatedly; every ``CHECK_EVERY`` league
iterations the main agent's greedy policy (``ModulePolicy.from_algorithm``) plays
``GAMES`` games per seat, on fresh game seeds, against OpenSpiel's uniform random player;
the target counts as reached where it held ``common.CONSECUTIVE`` checks in a row, counted
at the last (as in ``openspiel_selfplay.py``). Reported per seed: env steps (both seats'
moves, as the league's trainer counts them) and wall seconds to that point, and the final
leaderboard; over seeds (100-102, not the tuning seeds 0-2), their median and min-max.

The PPO side uses the same league (roster, matchmaking, snapshots) with PPO's tic_tac_toe
settings from ``openspiel_selfplay.py``; RLlib has no league to compare against.

    python benchmarks/dqn_league.py --quick       # one seed, short budget
    python benchmarks/dqn_league.py --out         # writes results/dqn_league.json
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

try:  # python -m benchmarks.dqn_league, from the repository root
    from benchmarks import common
    from benchmarks.openspiel_selfplay import SETTINGS as PPO_SETTINGS
except ImportError:  # python benchmarks/dqn_league.py: benchmarks/ is sys.path[0]
    import common
    from openspiel_selfplay import SETTINGS as PPO_SETTINGS

from marl_arena.algorithms import AlgorithmConfig, PPOConfig
from marl_arena.league.league import League
from marl_arena_envs.openspiel import ModulePolicy, play_both_seats_against_random
from marl_arena_leagues import tic_tac_toe

logger = logging.getLogger("benchmarks.dqn_league")

NAME = "dqn_league"
TARGET = 0.9
GAMES = 200
CHECK_EVERY = 3
MAIN = "main_0"
BUDGETS = {"full": 240, "quick": 90}
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: tuning used 0-2


def _ppo_trainer() -> PPOConfig:
    settings = PPO_SETTINGS["tic_tac_toe"]
    return (
        PPOConfig()
        .training(**settings["training"])
        .env_runners(num_envs_per_env_runner=settings["num_envs_per_env_runner"])
        .rl_module(model_config=settings["model_config"])
    )


TRAINERS = {"dqn": tic_tac_toe.trainer_config, "ppo": _ppo_trainer}


def _vs_random(league: League, base_seed: int) -> dict[str, dict[str, float]]:
    policy = ModulePolicy.from_algorithm(league.trainers[MAIN], module_id=MAIN, greedy=True)
    return play_both_seats_against_random(policy, "tic_tac_toe", GAMES, base_seed)


def _passes(match: dict[str, dict[str, float]]) -> bool:
    return all(match[seat]["win"] + match[seat]["draw"] >= TARGET for seat in ("seat0", "seat1"))


def run_league(trainer: str, seed: int, budget_s: float,
               trainer_config: AlgorithmConfig | None = None) -> dict[str, Any]:
    """The tic_tac_toe league with ``trainer``'s config (or ``trainer_config``, labelled ``trainer``) until
    the target held ``common.CONSECUTIVE`` checks in a row or ``budget_s`` seconds passed."""
    trainer_config = trainer_config if trainer_config is not None else TRAINERS[trainer]()
    with tempfile.TemporaryDirectory(prefix="dqn_league_") as directory:
        league = League(tic_tac_toe.make_config(directory).trainer(trainer_config).debugging(seed=seed))
        start = time.perf_counter()
        history, reached, streak = [], None, common.Streak()
        try:
            while time.perf_counter() - start < budget_s:
                league.run(1)
                if league.iteration % CHECK_EVERY:
                    continue
                entry = {"iteration": league.iteration, "wall_s": round(time.perf_counter() - start, 1),
                         "env_steps": league.store.metrics(MAIN)[-1][1]["env_steps"],
                         **_vs_random(league, 10_000 + league.iteration)}
                entry["passed"] = _passes(entry)
                history.append(entry)
                logger.info("%s seed %d: %s", trainer, seed, entry)
                if streak.add(entry["passed"]):
                    reached = entry
                    break
            board = [{k: row[k] for k in ("player", "kind", "elo", "games", "wins", "draws", "losses")}
                     for row in league.leaderboard()]
        finally:
            league.stop()
    return {"trainer": trainer, "seed": seed, "reached": reached is not None, "consecutive": streak.needed,
            "wall_s_to_target": reached["wall_s"] if reached else None,
            "env_steps_to_target": reached["env_steps"] if reached else None,
            "at_target": reached, "last_check": history[-1] if history else None,
            "leaderboard": board, "budget_s": budget_s}


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": NAME, "command": common.command_line(argv), "seeds": SEEDS[mode],
        "machine": common.machine_info(),
        "target": f"greedy win-or-draw >= {TARGET:.0%} of {GAMES} games vs uniform random from both seats, "
                  f"in {common.CONSECUTIVE} checks in a row (each on fresh game seeds)",
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TRAINERS}
    for seed in SEEDS[mode]:
        for name in TRAINERS:  # interleaved, so both sides see the same machine load
            runs[name].append(run_league(name, seed, BUDGETS[mode]))
    for name, trainer_runs in runs.items():
        hit = [r for r in trainer_runs if r["reached"]]
        report[name] = {"runs": trainer_runs, "reached": len(hit), "seeds": len(trainer_runs),
                        "wall_s_to_target": common.spread([r["wall_s_to_target"] for r in hit]),
                        "env_steps_to_target": common.spread([r["env_steps_to_target"] for r in hit])}
    report["wall_s_dqn_over_ppo"] = (common.ratio(report["dqn"]["wall_s_to_target"]["median"],
                                                  report["ppo"]["wall_s_to_target"]["median"])
                                     if all(report[name]["reached"] == report[name]["seeds"] for name in TRAINERS)
                                     else None)
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
