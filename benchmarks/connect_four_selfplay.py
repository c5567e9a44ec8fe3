"""APPO as a league trainer on OpenSpiel connect_four, and RLlib's PPO self-play on the same game.

Ours: a league of one main agent trained by APPO, its snapshots and a uniform random bot
(``open_spiel:connect_four``, the seat one-hot in the observation; opponents by PFSP with a
fixed share for the bot, ``pfsp_with_random_share``), for ``BUDGETS`` seconds of
training per seed. Every ``CHECK_EVERY_S`` seconds of training the main agent's greedy policy
(``ModulePolicy``) plays ``GAMES`` games per seat, on fresh game seeds, against OpenSpiel's
uniform random player; the target (>= 95% wins from both seats) counts as reached where it
held ``common.CONSECUTIVE`` checks in a row, counted at the last; the final check is reported
as well. Seeds 100-102; the settings were tuned on seeds 0-2.

RLlib's side: PPO self-play through RLlib's own ``OpenSpielEnv`` wrapper on the same game, as
in RLlib's ``examples/multi_agent/self_play_with_open_spiel.py`` (a trained "main" module
against a "random" one, seats alternating by episode, 2 runner actors of one env each, RLlib's
multi-agent default), with the same 256x256 MLP as ours, for ``RLLIB_SECONDS``: only its
throughput is measured, not its learning.

Throughput on both sides is env steps (moves of either seat) over training seconds, the
checks excluded, after the first iteration (which builds and warms up). Ours counts every
move its trainer's two runner actors sampled while the learner thread in the driver learned;
a learner that falls behind drops the oldest waiting batch, so each run reports its updates
and dropped batches (``learner``): none dropped means it learned from every move counted.
The report puts ours over RLlib's.

    python benchmarks/connect_four_selfplay.py --quick     # one seed, short budget
    python benchmarks/connect_four_selfplay.py --out       # writes results/connect_four_selfplay.json
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any, Sequence

try:  # python -m benchmarks.connect_four_selfplay, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/connect_four_selfplay.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import APPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league import League
from marl_arena.league.league_config import LeagueConfig
from marl_arena.league.matchmaking import pfsp
from marl_arena.league.payoff import PayoffTable
from marl_arena.league.players import PlayerInfo
from marl_arena_envs.openspiel import ModulePolicy, play_both_seats_against_random

logger = logging.getLogger("benchmarks.connect_four_selfplay")

NAME = "connect_four_selfplay"
GAME = "connect_four"
ENV_CONFIG = {"seat_one_hot": True}
MAIN = "main_0"
RANDOM = "random"
TARGET = 0.95
GAMES = 200
CHECK_EVERY_S = 60.0
BUDGETS = {"full": 900, "quick": 120}
RLLIB_SECONDS = {"full": 120, "quick": 45}
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: tuning used 0-2
HIDDENS = [256, 256]

SETTINGS: dict[str, Any] = {
    "training": {"train_batch_size_per_learner": 4096, "minibatch_size": 256, "num_epochs": 2, "lr": 5e-4,
                 "gamma": 0.99, "entropy_coeff": 0.02, "vf_loss_coeff": 0.5,
                 "circular_buffer_num_batches": 1, "circular_buffer_iterations_per_batch": 1},
    "runners": {"num_env_runners": 2, "num_envs_per_env_runner": 64, "rollout_fragment_length": 64},
    "reporting": {"min_time_s_per_iteration": 5},
    "random_share": 0.3,
    "snapshots": {"win_rate": 0.7, "min_games": 500},
}


def pfsp_with_random_share(learner: str, players: Sequence[PlayerInfo], payoff: PayoffTable) -> dict[str, float]:
    """PFSP ("squared") over the main agent's snapshots and the bot, with the bot kept at ``random_share``.

    PFSP alone soon stops drawing the random bot (the main agent beats it most of the time,
    and "squared" weighs an opponent by the square of the learner's losses to it), and a
    policy trained only on its own snapshots' openings loses to moves they never make.
    """
    share = SETTINGS["random_share"]
    mixture = {pid: (1 - share) * p for pid, p in pfsp(learner, players, payoff, weighting="squared").items()}
    mixture[RANDOM] = mixture.get(RANDOM, 0.0) + share
    return mixture


def league_config(directory: str, seed: int) -> LeagueConfig:
    trainer = (APPOConfig().training(**SETTINGS["training"]).env_runners(**SETTINGS["runners"])
               .reporting(**SETTINGS["reporting"]).rl_module(model_config={"fcnet_hiddens": HIDDENS}))
    return (LeagueConfig().environment(f"open_spiel:{GAME}", env_config=ENV_CONFIG).trainer(trainer)
            .roster(main_agents=1, scripted={RANDOM: RandomModule})
            .matchmaking(pfsp_with_random_share)
            .snapshots(**SETTINGS["snapshots"]).store(directory).debugging(seed=seed))


def _vs_random(league: League, base_seed: int) -> dict[str, dict[str, float]]:
    policy = ModulePolicy.from_algorithm(league.trainers[MAIN], module_id=MAIN, greedy=True)
    return play_both_seats_against_random(policy, GAME, GAMES, base_seed, ENV_CONFIG)


def run_ours(seed: int, budget_s: float) -> dict[str, Any]:
    """Train the league for ``budget_s`` seconds of training (checks excluded), checking every ``CHECK_EVERY_S``."""
    with tempfile.TemporaryDirectory(prefix="connect_four_") as directory:
        league = League(league_config(directory, seed))
        train_s = first_s = 0.0
        first_steps = 0
        next_check = CHECK_EVERY_S
        history, reached, streak = [], None, common.Streak()
        try:
            while train_s < budget_s:
                start = time.perf_counter()
                league.run(1)
                train_s += time.perf_counter() - start
                steps = league.store.metrics(MAIN)[-1][1]["env_steps"]
                if league.iteration == 1:
                    first_s, first_steps = train_s, steps
                if train_s < next_check and train_s < budget_s:
                    continue
                next_check += CHECK_EVERY_S
                entry = {"iteration": league.iteration, "train_s": round(train_s, 1), "env_steps": steps,
                         **_vs_random(league, 10_000 + league.iteration)}
                entry["passed"] = all(entry[seat]["win"] >= TARGET for seat in ("seat0", "seat1"))
                history.append(entry)
                logger.info("seed %d: %s", seed, entry)
                if streak.add(entry["passed"]) and reached is None:
                    reached = entry
            board = [{k: row[k] for k in ("player", "kind", "elo", "games", "wins", "draws", "losses")}
                     for row in league.leaderboard()]
            players = len(league.players)
            last = league.store.metrics(MAIN)[-1][1]
            counters = {key: last[f"learner/all_modules/{key}"]
                        for key in ("num_updates_lifetime", "num_batches_dropped_lifetime")}
        finally:
            league.stop()
    final = history[-1]
    return {"seed": seed, "reached": reached is not None, "consecutive": streak.needed,
            "train_s_to_target": reached["train_s"] if reached else None,
            "env_steps_to_target": reached["env_steps"] if reached else None,
            "final": final, "final_passed": final["passed"], "checks": history,
            "env_steps_per_s": (final["env_steps"] - first_steps) / max(final["train_s"] - first_s, 1e-9),
            "learner": counters, "players_at_end": players, "leaderboard": board, "budget_s": budget_s}


def run_rllib(seconds: float, seed: int) -> dict[str, Any]:
    """RLlib's PPO self-play on connect_four through its OpenSpielEnv: env steps per second."""
    import pyspiel
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.wrappers.open_spiel import OpenSpielEnv
    from ray.rllib.examples.rl_modules.classes.random_rlm import RandomRLModule
    from ray.tune.registry import register_env

    register_env("rllib_connect_four", lambda _: OpenSpielEnv(pyspiel.load_game(GAME)))
    config = (
        PPOConfig().environment("rllib_connect_four")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=1)
        .learners(num_learners=0)
        .multi_agent(policies={"main", "random"}, policies_to_train=["main"],
                     policy_mapping_fn=lambda agent_id, episode, **kw:
                     "main" if hash(episode.id_) % 2 == agent_id else "random")
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=HIDDENS),
                   rl_module_spec=MultiRLModuleSpec(rl_module_specs={
                       "main": RLModuleSpec(), "random": RLModuleSpec(module_class=RandomRLModule)}))
        .training(train_batch_size_per_learner=4000, minibatch_size=256, num_epochs=5, lr=3e-4)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    try:
        start_steps = rllib_peer._lifetime_env_steps(algo.train())  # the first iteration builds and warms up: not timed
        start = time.perf_counter()
        iterations, steps = 0, start_steps
        while time.perf_counter() - start < seconds:
            steps = rllib_peer._lifetime_env_steps(algo.train())
            iterations += 1
        elapsed = time.perf_counter() - start
    finally:
        algo.stop()
    return {"env_steps": steps - start_steps, "seconds": elapsed, "iterations": iterations,
            "env_steps_per_s": (steps - start_steps) / elapsed,
            "settings": "PPO, 2 runners x 1 env, train_batch_size_per_learner 4000, minibatch 256, 5 epochs, "
                        "MLP 256x256, main vs random, seats alternating (RLlib's self_play_with_open_spiel)"}


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": NAME, "command": common.command_line(argv), "seeds": SEEDS[mode],
        "machine": common.machine_info(), "settings": SETTINGS, "model": {"fcnet_hiddens": HIDDENS},
        "target": f"greedy wins >= {TARGET:.0%} of {GAMES} games vs uniform random from both seats, "
                  f"in {common.CONSECUTIVE} checks in a row (each on fresh game seeds), within {BUDGETS[mode]} s",
    }
    started_ray = common.start_ray()  # one Ray for both sides: ours samples on runner actors too
    try:
        if not args.no_rllib:
            report["machine"]["load_before_rllib"] = common.log_load("rllib")
            report["rllib_ppo"] = run_rllib(RLLIB_SECONDS[mode], SEEDS[mode][0])
        runs = []
        for seed in SEEDS[mode]:
            report["machine"][f"load_before_seed_{seed}"] = common.log_load(f"seed {seed}")
            runs.append(run_ours(seed, BUDGETS[mode]))
    finally:
        common.stop_ray(started_ray)
    hit = [r for r in runs if r["reached"]]
    report["appo_league"] = {
        "runs": runs, "reached": len(hit), "final_passed": sum(r["final_passed"] for r in runs),
        "seeds": len(runs),
        "train_s_to_target": common.spread([r["train_s_to_target"] for r in hit]),
        "env_steps_to_target": common.spread([r["env_steps_to_target"] for r in hit]),
        "final_win_seat0": common.spread([r["final"]["seat0"]["win"] for r in runs]),
        "final_win_seat1": common.spread([r["final"]["seat1"]["win"] for r in runs]),
        "env_steps_per_s": common.spread([r["env_steps_per_s"] for r in runs]),
    }
    if "rllib_ppo" in report:
        report["env_steps_per_s_ours_over_rllib"] = common.ratio(report["appo_league"]["env_steps_per_s"]["median"],
                                                                 report["rllib_ppo"]["env_steps_per_s"])
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
