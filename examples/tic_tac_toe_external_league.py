"""A league trained on tic-tac-toe games that external match servers host and play.

The league (driver) has one PPO main agent whose runner is a ``TcpServerEnvRunner``;
``--servers`` match-server processes (``python -m marl_arena.external.tic_tac_toe``) own
the games. Before each game a match server asks the trainer which modules sit in the two
seats: the league's opponent draw (AlphaStar's main-agent mixture: itself, and its
snapshots by PFSP) happens there, and every move is asked of the seat's module. Finished games come back as
two-agent episodes, become the main agent's samples and the league's matches.

Every ``--eval-every`` iterations the greedy main agent plays ``--eval-games`` games
against random moves from each seat (``tic_tac_toe_env.score_against_random``, the same
rules in-process, fresh game seeds each check); training stops once it wins or draws >= 90%
from both seats in ``--consecutive`` checks in a row. The last line printed is JSON.

    python examples/tic_tac_toe_external_league.py
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from typing import Any

TARGET = 0.9


def make_config(directory: str, batch: int = 4000, scripted: dict | None = None, seed: int = 0):
    """The league: one PPO main agent served to external match servers, playing itself and its snapshots.

    PPO's settings are those of ``benchmarks/openspiel_selfplay.py``'s in-process tic-tac-toe.
    """
    from marl_arena.algorithms import PPOConfig
    from marl_arena.external import TcpServerEnvRunner
    from marl_arena.external.tic_tac_toe_env import TicTacToeEnv
    from marl_arena.league.league_config import LeagueConfig

    trainer = (
        PPOConfig()
        .env_runners(env_runner_cls=TcpServerEnvRunner, sample_timeout_s=120)
        .training(train_batch_size_per_learner=batch, minibatch_size=256, num_epochs=5, lr=1e-3,
                  entropy_coeff=0.05, gamma=1.0, lambda_=0.95)
        .rl_module(model_config={"fcnet_hiddens": [128, 128]})
    )
    return (
        LeagueConfig()
        .environment(TicTacToeEnv)
        .trainer(trainer)
        .roster(main_agents=1, scripted=scripted or {})
        .matchmaking("alphastar")
        .snapshots(win_rate=0.7, every_n_steps=10 * batch, min_games=200)
        .store(directory)
        .debugging(seed=seed)
    )


def start_match_servers(port: int, count: int) -> list[subprocess.Popen]:
    """``count`` match-server processes; they inherit ``$MARL_ARENA_TOKEN``."""
    return [subprocess.Popen([sys.executable, "-m", "marl_arena.external.tic_tac_toe", "--port", str(port),
                              "--seed", str(k), "--max-reconnect-s", "2"]) for k in range(count)]


def stop_match_servers(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait(timeout=30)


def evaluate(league, games: int, seed: int) -> dict[str, Any]:
    from marl_arena.external.tic_tac_toe_env import score_against_random

    module = league.trainers["main_0"].get_module("main_0")
    return {f"seat{seat}": score_against_random(module, seat, games, seed=seed + seat) for seat in (0, 1)}


def train(directory: str, servers: int, max_iterations: int, eval_every: int, eval_games: int,
          batch: int = 4000, seed: int = 0, consecutive: int = 2, log=print) -> dict[str, Any]:
    """Train until the target holds from both seats ``consecutive`` checks in a row (or
    ``max_iterations``); returns the figures."""
    from marl_arena.league.league import League

    os.environ.setdefault("MARL_ARENA_TOKEN", secrets.token_hex(16))
    start = time.perf_counter()
    league = League(make_config(directory, batch, seed=seed))
    runner = league.trainers["main_0"].env_runner_group.local_runner
    processes = start_match_servers(runner.port, servers)
    scores: dict[str, Any] = {}
    held = 0
    checks = []
    try:
        for iteration in range(1, max_iterations + 1):
            league.run(1)
            if iteration % eval_every and iteration != max_iterations:
                continue
            scores = evaluate(league, eval_games, seed=10_000 * (seed + 1) + iteration)
            passed = min(s["win_or_draw"] for s in scores.values()) >= TARGET
            held = held + 1 if passed else 0
            checks.append({"iteration": iteration, "seat0": scores["seat0"]["win_or_draw"],
                           "seat1": scores["seat1"]["win_or_draw"], "wall_s": round(time.perf_counter() - start, 1)})
            log(f"iteration {iteration}: {runner.num_clients} match servers, "
                f"{len(league.players)} players, win-or-draw vs random "
                f"{scores['seat0']['win_or_draw']:.2f} / {scores['seat1']['win_or_draw']:.2f}, "
                f"{time.perf_counter() - start:.0f} s")
            if held >= consecutive:
                break
        matches = league.store.matches()
        return {
            "reached_target": held >= consecutive,
            "seed": seed,
            "win_or_draw_vs_random": {seat: s["win_or_draw"] for seat, s in scores.items()},
            "scores": scores,
            "iterations": iteration,
            "env_steps": league.trainers["main_0"].get_state()["num_env_steps_sampled_lifetime"],
            "players": sorted(league.players),
            "matches": len(matches),
            "matches_against_snapshots": sum(1 for m in matches if set(m.players) != {"main_0"}),
            "duplicate_episodes": runner.num_duplicate_episodes,
            "stale_episodes": runner.num_stale_episodes,
            "wall_s": round(time.perf_counter() - start, 1),
            "checks": checks,
        }
    finally:
        league.stop()
        stop_match_servers(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=2, help="match-server processes")
    parser.add_argument("--max-iterations", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--eval-games", type=int, default=200)
    parser.add_argument("--consecutive", type=int, default=2, help="checks in a row the target must hold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", help="league directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttt_external_league_") as scratch:
        result = train(args.dir or scratch, args.servers, args.max_iterations, args.eval_every, args.eval_games,
                       seed=args.seed, consecutive=args.consecutive, log=lambda line: print(line, flush=True))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
