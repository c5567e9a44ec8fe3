"""Wall time of one league iteration with 1 trainer against 3 trainers training at the same time.

Protocol: the take_away league of the tests (PPO, 2000 env steps per iteration, 32x32 MLP)
with 1 trainable player (a main agent), then 3 (main agent, main exploiter, league
exploiter), each trainer with ``--env-runners`` Ray runner actors and ``--learners``
learner actors (0: it learns in a driver thread); the league divides the cluster's CPUs
among them (its one "League:" log line is reported). After one warm-up iteration, ``--iterations``
iterations are timed one by one; reported: their median per league, the ratio of the
3-trainer median to the 1-trainer one (the goal: at most 1.3 when the cluster has the
cores), and for reference the 3 trainers trained in turn (``concurrent_trainers=False``).

A machine with 2 cores cannot reach 1.3: three trainers' sampling and learning need about
three times the CPU of one. To measure on a 2-node local Ray cluster:

    ray start --head --num-cpus=2 --port=6379
    ray start --address=127.0.0.1:6379 --num-cpus=2
    python benchmarks/league_concurrency.py --address auto --out
    ray stop

    python benchmarks/league_concurrency.py --quick   # 1 timed iteration each, local Ray
    python benchmarks/league_concurrency.py --out     # writes results/league_concurrency.json
"""

from __future__ import annotations

import logging
import tempfile
import time
from typing import Any

try:  # python -m benchmarks.league_concurrency, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/league_concurrency.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig

logger = logging.getLogger("benchmarks.league_concurrency")

NAME = "league_concurrency"
ITERATIONS = {"quick": 1, "full": 5}


def league_config(directory: str, trainers: int, env_runners: int, learners: int, concurrent: bool,
                  address: str | None) -> LeagueConfig:
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=2000, minibatch_size=200, num_epochs=5, gamma=1.0,
                  entropy_coeff=0.01, lr=1e-3)
        .env_runners(num_env_runners=env_runners, num_envs_per_env_runner=8)
        .learners(num_learners=learners)
        .rl_module(model_config={"fcnet_hiddens": [32, 32]})
    )
    return (
        LeagueConfig()
        .environment("games:take_away", env_config={"pile": 10})
        .trainer(trainer)
        .roster(main_agents=1, main_exploiters=int(trainers >= 2), league_exploiters=int(trainers >= 3),
                scripted={"random": RandomModule})
        .matchmaking("pfsp", weighting="hard")
        .snapshots(win_rate=None)
        .cluster(address=address, concurrent_trainers=concurrent)
        .store(directory)
    )


class _BudgetLine(logging.Handler):
    """Keeps the league's one "League:" resource line."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("League:"):
            self.lines.append(record.getMessage())


def time_league(trainers: int, concurrent: bool, args, iterations: int) -> dict[str, Any]:
    budget = _BudgetLine()
    logging.getLogger("marl_arena").addHandler(budget)
    with tempfile.TemporaryDirectory() as directory:
        try:
            league = league_config(directory, trainers, args.env_runners, args.learners, concurrent,
                                   args.address).build()
        finally:
            logging.getLogger("marl_arena").removeHandler(budget)
        try:
            league.run(1)  # warm-up: actors started, torch and the envs warm
            times, matches = [], []
            for _ in range(iterations):
                start = time.perf_counter()
                league.run(1, lambda lg, s: matches.append(sum(p["matches"] for p in s["players"].values())))
                times.append(time.perf_counter() - start)
        finally:
            league.stop()
    row = {"trainers": trainers, "concurrent": concurrent, "iteration_s": times,
           "iteration_s_median": common.median(times), "matches_per_iteration": matches,
           "resource_line": budget.lines[0] if budget.lines else None}
    logger.info("%s", row)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--address", help="join this Ray cluster ('auto') instead of starting a local one")
    parser.add_argument("--env-runners", type=int, default=1, help="Ray runner actors per trainer")
    parser.add_argument("--learners", type=int, default=0, help="learner actors per trainer (0: in a driver thread)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    if args.address is not None:
        import ray

        ray.init(address=args.address, logging_level=logging.WARNING)
        ray_started = True
    else:
        ray_started = common.start_ray()
    import ray

    report: dict[str, Any] = {"benchmark": NAME, "command": common.command_line(argv),
                              "machine": common.machine_info(), "ray_address": args.address,
                              "ray_cluster": {"cpus": ray.cluster_resources().get("CPU"),
                                              "nodes": len([n for n in ray.nodes() if n.get("Alive")])},
                              "env_runners_per_trainer": args.env_runners, "learners_per_trainer": args.learners}
    try:
        runs = [time_league(1, True, args, ITERATIONS[mode]),
                time_league(3, True, args, ITERATIONS[mode]),
                time_league(3, False, args, ITERATIONS[mode])]
    finally:
        common.stop_ray(ray_started)
    report["runs"] = runs
    one, three, in_turn = (r["iteration_s_median"] for r in runs)
    report["ratio_3_concurrent_over_1"] = common.ratio(three, one)
    report["ratio_3_in_turn_over_1"] = common.ratio(in_turn, one)
    report["goal"] = "ratio_3_concurrent_over_1 <= 1.3 on a cluster with the cores for 3 trainers"
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
