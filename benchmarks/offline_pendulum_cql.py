"""Offline RL benchmark: CQL on Pendulum-v1 from a SAC run's recorded episodes, beside RLlib's CQL.

Data, recorded once per run (seed 0, not one of the evaluated seeds) through
``offline_data(output=)``: every episode a SAC run (``sac_learning``'s Pendulum settings)
samples during its first ``SAC_STEPS`` env steps: the untrained policy's episodes before
learning starts, then the learning ones, then good ones. Mixed quality on purpose: CQL must
not copy the average behaviour, nor trust the Q of actions the data never took.

Tasks, each for every seed: ``ITERATIONS`` training iterations of ``NUM_ITERS`` batches of
``BATCH`` rows, then the final policy's greedy evaluation (10 episodes; no early stop, no
best-of). Target: -700 (where RLlib's tuned Pendulum CQL example stops); goal: -400.

* ``cql``: our CQL;
* ``cql_rllib``: RLlib's CQL (``ray.rllib.algorithms.cql.CQLConfig``, new API stack) on the
  same Parquet files with the same settings, within a time budget per seed; a run that
  fails or runs out of time is recorded with its error or the iterations it managed.

    python benchmarks/offline_pendulum_cql.py --quick    # smoke check, one seed, short
    python benchmarks/offline_pendulum_cql.py --out      # full, writes results/offline_pendulum_cql.json
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

try:  # python -m benchmarks.offline_pendulum_cql, from the repository root
    from benchmarks import common, offline_cartpole, rllib_peer, sac_learning
except ImportError:  # python benchmarks/offline_pendulum_cql.py: benchmarks/ is sys.path[0]
    import common
    import offline_cartpole
    import rllib_peer
    import sac_learning

from marl_arena.algorithms import CQLConfig
from marl_arena.core.columns import Columns
from marl_arena.offline import resolve_paths

logger = logging.getLogger("benchmarks.offline_pendulum_cql")

NAME = "offline_pendulum_cql"
DATA_SEED = 0
SAC_STEPS = {"full": 10_000, "quick": 3_000}
ITERATIONS = {"full": 8, "quick": 2}
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: the settings were tuned on 0-2
RLLIB_BUDGET_S = {"full": 90.0, "quick": 60.0}
TARGET = -700.0
GOAL = -400.0

NUM_ITERS = 500
"""Batches (gradient steps) per training iteration: ``dataset_num_iters_per_learner``."""
# Both libraries, the same settings (RLlib's names).
HPARAMS: dict[str, Any] = {
    "train_batch_size_per_learner": 256, "gamma": 0.99, "tau": 0.01, "twin_q": True, "initial_alpha": 1.0,
    "actor_lr": 1e-3, "critic_lr": 3e-3, "alpha_lr": 1e-3, "bc_iters": 500, "temperature": 1.0, "num_actions": 10,
    "min_q_weight": 5.0, "lagrangian": False, "deterministic_backup": True,
}
MODEL: dict[str, Any] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
# Both libraries: the rows read once and kept in memory (many passes over 10k rows would each start
# a Ray Data execution), and batches drawn through a shuffle buffer of the whole dataset, since
# consecutive rows of one episode make a poor batch for Q-learning.
OFFLINE_DATA: dict[str, Any] = {"materialize_data": True, "iter_batches_kwargs": {"local_shuffle_buffer_size": 10_000}}
# RLlib's reader maps batches with actors of 1 CPU each (2 by default), which on a 2-CPU
# Ray leaves no CPU for its read task (see offline_cartpole). One actor at half a CPU runs.
RLLIB_MAP_BATCHES = {"concurrency": 1, "num_cpus": 0.5}


# ---------------------------------------------------------------------- data
def _record_sac(directory: Path, steps: int) -> dict[str, Any]:
    """A SAC run on Pendulum-v1 for ``steps`` env steps, every finished episode written to ``directory``."""
    config = (sac_learning._ours(sac_learning.TASKS["pendulum"], DATA_SEED)
              .reporting(min_sample_timesteps_per_iteration=1000)
              .offline_data(output=str(directory)))
    started = time.perf_counter()
    algo = config.build_algo()
    try:
        while algo.train()["num_env_steps_sampled_lifetime"] < steps:
            pass
        greedy = float(algo.evaluate()["env_runners"]["episode_return_mean"])
    finally:
        algo.stop()
    returns = _episode_returns(directory)
    rows = sum(pq.read_metadata(path).num_rows for path in resolve_paths(str(directory)))
    return {"sac_env_steps": steps, "sac_final_greedy_return": greedy, "sac_train_s": time.perf_counter() - started,
            "episodes": len(returns), "rows": int(rows),
            "return": common.spread(returns), "return_first_10": common.spread(returns[:10]),
            "return_last_10": common.spread(returns[-10:])}


def _episode_returns(directory: Path) -> list[float]:
    """Each recorded episode's return, in the order the files were written."""
    returns = []
    for path in sorted(resolve_paths(str(directory)), key=lambda p: Path(p).name):
        table = pq.read_table(path, columns=[Columns.EPS_ID, Columns.REWARDS])
        for eps_id in pc.unique(table[Columns.EPS_ID]).to_pylist():
            rewards = table.filter(pc.equal(table[Columns.EPS_ID], eps_id))[Columns.REWARDS]
            returns.append(float(np.sum(rewards.to_numpy())))
    return returns


# ---------------------------------------------------------------------- runs
def _ours(files: list[str], seed: int, iterations: int) -> dict[str, Any]:
    config = (CQLConfig().environment("Pendulum-v1")
              .offline_data(input_=files, dataset_num_iters_per_learner=NUM_ITERS, **OFFLINE_DATA)
              .training(**HPARAMS)
              .rl_module(model_config=dict(MODEL))
              .evaluation(evaluation_duration=10, evaluation_config={"explore": False})
              .debugging(seed=seed))

    def learner_curve(result: dict[str, Any]) -> dict[str, float]:
        metrics = result["learners"]["default_policy"]
        return {key: metrics[key] for key in ("cql_penalty", "qf_mean", "alpha_value")}

    return offline_cartpole.train_and_evaluate(config, seed, iterations, learner_curve)


def _rllib_cql(files: list[str], seed: int, iterations: int, budget_s: float) -> dict[str, Any]:
    """RLlib's CQL on our files, the same settings; the policy it has when the budget ends is evaluated."""
    from ray.rllib.algorithms.cql import CQLConfig as RLlibCQLConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    config = (RLlibCQLConfig().environment("Pendulum-v1")
              .offline_data(input_=files, dataset_num_iters_per_learner=NUM_ITERS,
                            map_batches_kwargs=dict(RLLIB_MAP_BATCHES), **OFFLINE_DATA)
              .training(**HPARAMS, lr=None)
              .rl_module(model_config=DefaultModelConfig(**MODEL)))
    return offline_cartpole.rllib_train_and_evaluate(config, "CQL", seed, iterations, budget_s,
                                                     evaluate_unfinished=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    parser.add_argument("--data", help="use the episodes in this directory instead of recording new ones")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    seeds = args.seeds or SEEDS[mode]
    iterations = ITERATIONS[mode]
    use_rllib = not args.no_rllib and rllib_peer.rllib_available()
    ray_started = common.start_ray()  # both libraries read through Ray Data
    workdir = Path(tempfile.mkdtemp(prefix="offline_pendulum_cql_"))
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "protocol": f"{iterations} training iterations of {NUM_ITERS} batches (gradient steps) of "
                    f"{HPARAMS['train_batch_size_per_learner']} rows each, then 10 greedy evaluation episodes of "
                    f"the final policy; figures are medians with min-max over seeds; target {TARGET:g} (RLlib's tuned "
                    f"example stops there), goal {GOAL:g}, reached on a seed when that final evaluation is at it. "
                    "wall_s: build, training and the evaluation.",
        "hyperparameters": {**HPARAMS, "dataset_num_iters_per_learner": NUM_ITERS, "model": MODEL,
                            "offline_data": OFFLINE_DATA},
    }
    started = time.perf_counter()
    try:
        data_dir = Path(args.data) if args.data else workdir / "sac"
        load = common.log_load("recording")
        report["data"] = ({"directory": str(data_dir), "return": common.spread(_episode_returns(data_dir)),
                           "rows": sum(pq.read_metadata(path).num_rows for path in resolve_paths(str(data_dir)))}
                          if args.data else _record_sac(data_dir, SAC_STEPS[mode]))
        report["data"]["load_before"] = load
        logger.info("data: %s", report["data"])
        files = resolve_paths(str(data_dir))
        tasks: dict[str, list] = {"cql": [], "cql_rllib": []}
        for seed in seeds:
            load = common.log_load(f"cql seed {seed}")
            run = _ours(files, seed, iterations)
            logger.info("cql seed %d: final greedy return %.1f in %.1f s", seed, run["final_eval_return"],
                        run["wall_s"])
            tasks["cql"].append({**run, "load_before": load})
            if use_rllib:
                load = common.log_load(f"cql_rllib seed {seed}")
                run = _rllib_cql(files, seed, iterations, RLLIB_BUDGET_S[mode])
                logger.info("cql_rllib seed %d: %s", seed, run)
                tasks["cql_rllib"].append({**run, "load_before": load})
        report["tasks"] = {name: offline_cartpole.summarize(runs, TARGET, GOAL) for name, runs in tasks.items() if runs}
        if use_rllib:
            report["tasks"]["cql_rllib"]["settings"] = (
                "RLlib CQLConfig (new API stack) on the same Parquet files (input_=their paths), same training "
                f"settings, model and {OFFLINE_DATA}; map_batches_kwargs={RLLIB_MAP_BATCHES} (see RLLIB_MAP_BATCHES); "
                f"time budget {RLLIB_BUDGET_S[mode]:.0f} s per seed (checked between iterations), then the policy "
                "it has is evaluated")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
