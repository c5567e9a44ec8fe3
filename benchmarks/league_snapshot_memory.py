"""Runner memory against the number of snapshots: the connect_four league with 10, 100 and 500.

Protocol, per setting of ``max_opponents_per_runner`` (16, the default, and None: keep every
opponent built, as before the limit existed): build the ready-made connect_four league
(``leagues/connect_four.py``: PPO, 256x256 MLP) with one Ray runner actor and no snapshot
rule; freeze the main agent with ``League.freeze`` until the pool holds 10, 100 and 500
snapshots (each freeze writes the snapshot to the store, puts it into Ray's object store
once and sends the reference to the runner: no training is needed to measure memory);
at each size let the runner play ``--steps`` env steps against opponents drawn uniformly
from all snapshots (so evicted ones are rebuilt on demand), then read the runner actor's
resident set size (of its process, on this machine: all of it, private and shared, see
``rss_mib``) and its count of built opponent modules. The league driver's is reported beside it.

    python benchmarks/league_snapshot_memory.py --quick   # 10 and 50 snapshots
    python benchmarks/league_snapshot_memory.py --out     # writes results/league_snapshot_memory.json
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from typing import Any

try:  # python -m benchmarks.league_snapshot_memory, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/league_snapshot_memory.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.league.league import OpponentDraw
from marl_arena_leagues import connect_four

logger = logging.getLogger("benchmarks.league_snapshot_memory")

NAME = "league_snapshot_memory"
SIZES = {"quick": (10, 50), "full": (10, 100, 500)}
LIMITS = (16, None)


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory of process ``pid`` in MiB (Linux /proc): all of it, private, and shared memory.

    Pages of Ray's object store that a process has read stay mapped into it and count in
    its RSS as shared memory (``RssShmem``), though they are the store's one copy; the
    process's own memory is ``RssAnon``.
    """
    fields = {"VmRSS": "rss_mib", "RssAnon": "private_mib", "RssShmem": "shared_mib"}
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key = line.split(":")[0]
            if key in fields:
                values[fields[key]] = int(line.split()[1]) / 1024
    return values


def measure(limit: int | None, sizes: tuple[int, ...], steps: int) -> list[dict[str, Any]]:
    import ray

    with tempfile.TemporaryDirectory() as directory:
        config = connect_four.make_config(directory).snapshots(win_rate=None, every_n_steps=None)
        config.trainer_config.env_runners(num_env_runners=1)
        league = config.cluster(max_opponents_per_runner=limit).build()
        try:
            algo = league.trainers["main_0"]
            actor = algo.env_runner_group.remote_runners[0]
            runner_pid = ray.get(actor.__ray_call__.remote(lambda runner: os.getpid()))
            rows = []
            frozen: list[str] = []
            for size in sizes:
                start = time.perf_counter()
                while len(frozen) < size:
                    frozen.append(league.freeze("main_0", steps=len(frozen)))
                freeze_s = time.perf_counter() - start
                algo.set_policy_mapping_fn(OpponentDraw("main_0", {s: 1 / len(frozen) for s in frozen},
                                                        league.seats, seed=size))
                start = time.perf_counter()
                algo.env_runner_group.sample(num_timesteps=steps)
                sample_s = time.perf_counter() - start
                built = algo.env_runner_group.foreach_runner("built_added_modules")[0]
                builds = ray.get(actor.__ray_call__.remote(lambda runner: runner.num_module_builds))
                rows.append({"snapshots": size, "runner": rss_mib(runner_pid),
                             "driver": rss_mib(os.getpid()), "opponents_built_now": len(built),
                             "opponent_builds_so_far": builds, "freeze_s": freeze_s,
                             "sample_s": sample_s, "env_steps_sampled": steps})
                logger.info("max_opponents_per_runner=%s: %s", limit, rows[-1])
        finally:
            league.stop()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps sampled at each pool size")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    ray_started = common.start_ray()
    report: dict[str, Any] = {"benchmark": NAME, "command": common.command_line(argv),
                              "machine": common.machine_info(), "env": "pettingzoo:connect_four_v3",
                              "module": "PPO actor-critic MLP 256x256 (leagues/connect_four.py)",
                              "by_max_opponents_per_runner": {}}
    try:
        for limit in LIMITS:
            report["by_max_opponents_per_runner"][str(limit)] = measure(limit, SIZES[mode], args.steps)
    finally:
        common.stop_ray(ray_started)
    for limit in LIMITS:
        rows = report["by_max_opponents_per_runner"][str(limit)]
        report[f"runner_growth_mib_{rows[0]['snapshots']}_to_{rows[-1]['snapshots']}_limit_{limit}"] = {
            key: rows[-1]["runner"][key] - rows[0]["runner"][key] for key in rows[0]["runner"]}
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
