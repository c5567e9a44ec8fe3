"""A league that starts from demonstrations: OpenSpiel's MCTS playing tic-tac-toe against itself,
exported from a league store, BC on the games, then the tic_tac_toe league's PPO main agent
started from the BC policy, against the same league started from scratch.

Protocol (issue 13, item 5):

1. ``GAMES_RECORDED`` games of OpenSpiel's MCTS (``MCTS_SIMULATIONS`` simulations, random
   rollouts, solving) against itself, seeds 0.. (not an evaluated seed), are recorded in a
   league store with their moves, as a league records its matches;
2. ``marl-arena league export``'s function turns them into Parquet episodes (every move of
   both seats, the observations rebuilt by replaying the moves through the league's env);
3. per seed (100-102), BC on those rows with PPO's tic_tac_toe model (``BC_ITERATIONS`` x
   ``BC_BATCHES`` batches), saved as a checkpoint. The BC policy alone, greedy, plays
   ``EVAL_GAMES`` games per seat against uniform random and against the recorded MCTS;
4. the tic_tac_toe league (``leagues/tic_tac_toe.py``) with PPO as its trainer
   (``dqn_league``'s PPO side) runs from that checkpoint (``rl_module(initial_weights_from=)``)
   and, beside it with the same seed, from scratch, each until its greedy main agent wins or
   draws >= 90% of 200 games against random from both seats in ``common.CONSECUTIVE`` checks in
   a row (``dqn_league.run_league``). Reported: the env steps and seconds each needed.

    python benchmarks/league_from_demos.py --quick   # one seed, 200 games, short budget
    python benchmarks/league_from_demos.py --out     # writes results/league_from_demos.json
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import pyspiel

try:  # python -m benchmarks.league_from_demos, from the repository root
    from benchmarks import common, dqn_league
except ImportError:  # python benchmarks/league_from_demos.py: benchmarks/ is sys.path[0]
    import common
    import dqn_league

from marl_arena.algorithms import BCConfig
from marl_arena.core.rl_module import DEFAULT_MODULE_ID
from marl_arena.league.players import PlayerInfo
from marl_arena.league.store import LeagueStore, MatchRecord
from marl_arena.offline.league_export import export_league
from marl_arena_envs.openspiel import ModulePolicy, mcts_bot
from marl_arena_envs.openspiel.evaluation import play_both_seats_against, play_both_seats_against_random

logger = logging.getLogger("benchmarks.league_from_demos")

NAME = "league_from_demos"
ENV = "open_spiel:tic_tac_toe"
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: the settings were not tuned on them
GAMES_RECORDED = {"full": 2000, "quick": 200}
MCTS_SIMULATIONS = 100
MCTS_OPPONENT = {"bot": "mcts", "max_simulations": MCTS_SIMULATIONS}
EVAL_GAMES = 200
BC_ITERATIONS = {"full": 10, "quick": 3}
BC_BATCHES = 20
BC_TRAINING = {"lr": 1e-3, "train_batch_size_per_learner": 512}
LEAGUE_BUDGET_S = {"full": 360, "quick": 120}


def record_mcts_games(directory: Path, games: int) -> dict[str, Any]:
    """MCTS against MCTS (two bots, their own seeds), stored as a league stores its matches."""
    game = pyspiel.load_game("tic_tac_toe")
    store = LeagueStore(directory)
    started = time.perf_counter()
    try:
        store.set_game({"env": ENV, "env_config": {}})
        players = ("mcts_a", "mcts_b")
        for player in players:
            store.add_player(PlayerInfo(player, "scripted", frozen=True))
        bots = [mcts_bot(game, seed=seat, max_simulations=MCTS_SIMULATIONS) for seat in (0, 1)]
        outcomes = {"first_wins": 0, "draws": 0, "second_wins": 0}
        matches = []
        for number in range(games):
            state, moves = game.new_initial_state(), []
            for bot in bots:
                bot.restart_at(state)
            while not state.is_terminal():
                seat = state.current_player()
                action = bots[seat].step(state)
                moves.append((seat, int(action)))
                state.apply_action(action)
            returns = tuple(state.returns())
            seated = players if number % 2 == 0 else players[::-1]  # both bots play both seats
            matches.append((MatchRecord(ENV, seated, returns, len(moves), moves=tuple(moves)), {}))
            key = "draws" if returns[0] == returns[1] else "first_wins" if returns[0] > returns[1] else "second_wins"
            outcomes[key] += 1
        store.record_matches(matches)
    finally:
        store.close()
    return {"games": games, "mcts_simulations": MCTS_SIMULATIONS, "outcomes": outcomes,
            "wall_s": round(time.perf_counter() - started, 1)}


def bc_checkpoint(data: Path, seed: int, directory: Path, iterations: int) -> dict[str, Any]:
    """BC on the exported games with the league trainer's model; the checkpoint and the BC policy's results."""
    trainer = dqn_league.TRAINERS["ppo"]()
    config = (BCConfig().environment(ENV)
              .offline_data(input_=[str(data)], dataset_num_iters_per_learner=BC_BATCHES, materialize_data=True)
              .training(**BC_TRAINING)
              .rl_module(model_config=dict(trainer.model_config))
              .debugging(seed=seed))
    started = time.perf_counter()
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            algo.train()
        wall_s = time.perf_counter() - started
        policy = ModulePolicy.from_algorithm(algo, greedy=True)
        results = {"vs_random": play_both_seats_against_random(policy, "tic_tac_toe", EVAL_GAMES, seed * 7),
                   "vs_mcts": play_both_seats_against(policy, "tic_tac_toe", EVAL_GAMES, MCTS_OPPONENT, seed * 7)}
        path = algo.save_to_path(str(directory))
    finally:
        algo.stop()
    return {"bc_wall_s": round(wall_s, 1), "checkpoint": path, **results}


def _non_loss(match: dict[str, dict[str, float]]) -> dict[str, float]:
    return {seat: round(result["win"] + result["draw"], 3) for seat, result in match.items()}


def run_seed(data: Path, seed: int, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="league_from_demos_bc_") as directory:
        bc = bc_checkpoint(data, seed, Path(directory), BC_ITERATIONS[mode])
        logger.info("seed %d: BC alone, win-or-draw vs random %s, vs MCTS %s", seed, _non_loss(bc["vs_random"]),
                    _non_loss(bc["vs_mcts"]))
        from_bc = dqn_league.TRAINERS["ppo"]().rl_module(initial_weights_from=bc.pop("checkpoint"))
        demos = dqn_league.run_league("ppo_from_bc", seed, LEAGUE_BUDGET_S[mode], trainer_config=from_bc)
    scratch = dqn_league.run_league("ppo", seed, LEAGUE_BUDGET_S[mode])
    return {"seed": seed, "bc": bc, "from_bc": demos, "from_scratch": scratch}


def _steps_counted(run: dict[str, Any]) -> float:
    """Env steps to the target, or, for a seed that missed it within its budget, the env steps it used."""
    return run["env_steps_to_target"] if run["reached"] else run["last_check"]["env_steps"]


def _side(runs: list[dict[str, Any]]) -> dict[str, Any]:
    hit = [r for r in runs if r["reached"]]
    return {"reached": len(hit), "seeds": len(runs),
            "env_steps_to_target": common.spread([r["env_steps_to_target"] for r in hit]),
            "wall_s_to_target": common.spread([r["wall_s_to_target"] for r in hit]),
            "env_steps_counted": common.spread([_steps_counted(r) for r in runs])}


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
        "target": f"greedy win-or-draw >= {dqn_league.TARGET:.0%} of {dqn_league.GAMES} games vs uniform random "
                  f"from both seats, in {common.CONSECUTIVE} checks in a row",
        "settings": {"bc_iterations": BC_ITERATIONS[mode], "bc_batches_per_iteration": BC_BATCHES,
                     "bc_training": BC_TRAINING, "league_budget_s": LEAGUE_BUDGET_S[mode],
                     "eval_games_per_seat": EVAL_GAMES, "mcts_opponent": MCTS_OPPONENT},
    }
    with tempfile.TemporaryDirectory(prefix="league_from_demos_") as directory:
        store_dir, data = Path(directory) / "league", Path(directory) / "games"
        report["load_recording"] = common.log_load("recording")
        report["recorded"] = record_mcts_games(store_dir, GAMES_RECORDED[mode])
        exported = export_league(store_dir, data, module_id=DEFAULT_MODULE_ID)
        report["exported"] = {"games": exported.games, "rows": exported.rows, "files": len(exported.files)}
        logger.info("recorded %s, exported %s", report["recorded"], report["exported"])
        runs = []
        for seed in SEEDS[mode]:
            report[f"load_seed_{seed}"] = common.log_load(f"seed {seed}")
            runs.append(run_seed(data, seed, mode))
    report["runs"] = runs
    report["bc_alone"] = {
        against: {seat: common.spread([_non_loss(r["bc"][against])[seat] for r in runs]) for seat in ("seat0", "seat1")}
        for against in ("vs_random", "vs_mcts")}
    report["from_bc"] = _side([r["from_bc"] for r in runs])
    report["from_scratch"] = _side([r["from_scratch"] for r in runs])
    # A seed that missed counts the env steps it used: a lower bound on what it needed, so where
    # only the scratch side missed the ratio is an upper bound ("at most"); where BC missed, none.
    report["env_steps_from_bc_over_scratch"] = (
        common.ratio(report["from_bc"]["env_steps_counted"]["median"],
                     report["from_scratch"]["env_steps_counted"]["median"])
        if report["from_bc"]["reached"] == len(runs) else None)
    report["ratio_is_upper_bound"] = report["from_scratch"]["reached"] < len(runs)
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
