"""BC, then PPO: a BC checkpoint starts PPO on CartPole-v1, which fine-tunes it without forgetting.

Data (seed 0, not an evaluated seed): ``offline_cartpole``'s expert, our PPO trained to a
greedy 450 and ``EXPERT_EPISODES`` of its exploring episodes recorded through
``offline_data(output=)``.

Per seed (100-102):

1. BC on that data with ``offline_cartpole``'s settings (``ITERATIONS`` iterations of
   ``NUM_ITERS`` batches), but with PPO's CartPole model (``ppo_learning.CARTPOLE_MODEL``:
   separate policy and value networks), saved as a checkpoint. BC never trains the value
   network (beta = 0 needs no values), so PPO's value network starts at its initialisation:
   trained fresh.
2. PPO with ``ppo_learning``'s CartPole settings and ``rl_module(initial_weights_from=that
   checkpoint)``, the same path a league player takes: greedy evaluation (10 episodes) right
   after loading, before any update (goal >= 200);
3. then trained, evaluated greedily after every iteration, until 450 holds for
   ``common.CONSECUTIVE`` evaluations in a row (goal >= 450); every evaluation is kept, so a
   collapse on the way (forgetting) shows as the lowest one;
4. beside it, the same PPO from scratch, same seed and protocol: env steps to 450 with and
   without the BC start.

    python benchmarks/offline_bc_to_ppo.py --quick   # one seed
    python benchmarks/offline_bc_to_ppo.py --out     # writes results/offline_bc_to_ppo.json
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.offline_bc_to_ppo, from the repository root
    from benchmarks import common, offline_cartpole, ppo_learning
except ImportError:  # python benchmarks/offline_bc_to_ppo.py: benchmarks/ is sys.path[0]
    import common
    import offline_cartpole
    import ppo_learning

from marl_arena.algorithms import BCConfig

logger = logging.getLogger("benchmarks.offline_bc_to_ppo")

NAME = "offline_bc_to_ppo"
SEEDS = {"full": [100, 101, 102], "quick": [100]}
EXPERT_EPISODES = {"full": 20, "quick": 10}
AFTER_LOADING_GOAL = 200.0
TARGET = 450.0
PPO_BUDGET_S = {"full": 240.0, "quick": 120.0}


def _bc_checkpoint(expert: Path, seed: int, directory: Path) -> dict[str, Any]:
    """BC on the expert data with PPO's model; the final policy's greedy return and its checkpoint."""
    config = (BCConfig().environment("CartPole-v1")
              .offline_data(input_=[str(expert)], dataset_num_iters_per_learner=offline_cartpole.NUM_ITERS,
                            **offline_cartpole.OFFLINE_DATA)
              .training(**offline_cartpole.HPARAMS)
              .rl_module(model_config=dict(ppo_learning.CARTPOLE_MODEL))
              .evaluation(evaluation_duration=10, evaluation_config={"explore": False})
              .debugging(seed=seed))
    started = time.perf_counter()
    algo = config.build_algo()
    try:
        for _ in range(offline_cartpole.ITERATIONS["full"]):
            algo.train()
        bc_return = float(algo.evaluate()["env_runners"]["episode_return_mean"])
        path = algo.save_to_path(str(directory))
    finally:
        algo.stop()
    return {"bc_eval_return": bc_return, "bc_wall_s": time.perf_counter() - started, "checkpoint": path}


def _ppo(seed: int, checkpoint: str | None) -> Any:
    config = ppo_learning._ppo("CartPole-v1", ppo_learning.CARTPOLE_HPARAMS, ppo_learning.CARTPOLE_MODEL,
                               ppo_learning.CARTPOLE_RUNNERS, seed)
    return config if checkpoint is None else config.rl_module(initial_weights_from=checkpoint)


def _after_loading(seed: int, checkpoint: str) -> float:
    """Greedy return of PPO as loaded from the BC checkpoint, before any update."""
    algo = _ppo(seed, checkpoint).build_algo()
    try:
        return float(algo.evaluate()["env_runners"]["episode_return_mean"])
    finally:
        algo.stop()


def _fine_tune(seed: int, checkpoint: str | None, budget_s: float) -> dict[str, Any]:
    """PPO to a greedy 450 held ``CONSECUTIVE`` times; every evaluation's return is kept."""
    evaluations: list[float] = []

    def score(result: dict) -> float:
        evaluations.append(float(result["env_runners"]["episode_return_mean"]))
        return evaluations[-1]

    run = common.train_to_target(_ppo(seed, checkpoint), target=TARGET, time_budget_s=budget_s,
                                 label=f"ppo {'from bc' if checkpoint else 'scratch'} seed {seed}",
                                 eval_score=score, consecutive=common.CONSECUTIVE)
    return {**run, "eval_returns": evaluations, "lowest_eval_return": min(evaluations, default=float("nan"))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    seeds = SEEDS[mode]
    ray_started = common.start_ray()  # BC reads through Ray Data
    workdir = Path(tempfile.mkdtemp(prefix="offline_bc_to_ppo_"))
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "protocol": "BC (offline_cartpole's settings, PPO's model) -> checkpoint -> PPO with "
                    "rl_module(initial_weights_from=checkpoint): greedy 10-episode return right after loading, then "
                    f"PPO trained until {TARGET:g} held {common.CONSECUTIVE} evaluations in a row (evaluated after "
                    "every iteration); the same PPO from scratch beside it. Medians with min-max over seeds.",
        "hyperparameters": {"bc": {**offline_cartpole.HPARAMS, "dataset_num_iters_per_learner":
                                   offline_cartpole.NUM_ITERS, "iterations": offline_cartpole.ITERATIONS["full"]},
                            "ppo": ppo_learning.CARTPOLE_HPARAMS, "model": ppo_learning.CARTPOLE_MODEL},
    }
    started = time.perf_counter()
    try:
        expert = workdir / "expert"
        report["load_before_recording"] = common.log_load("recording")
        report["data"] = offline_cartpole._record_expert(expert, EXPERT_EPISODES[mode])
        runs = []
        for seed in seeds:
            load = common.log_load(f"bc seed {seed}")
            bc = _bc_checkpoint(expert, seed, workdir / f"bc_{seed}")
            after = _after_loading(seed, bc["checkpoint"])
            logger.info("seed %d: BC %.1f, PPO right after loading %.1f", seed, bc["bc_eval_return"], after)
            from_bc = _fine_tune(seed, bc["checkpoint"], PPO_BUDGET_S[mode])
            scratch_load = common.log_load(f"ppo scratch seed {seed}")
            scratch = _fine_tune(seed, None, PPO_BUDGET_S[mode])
            runs.append({"seed": seed, "load_before": load, "bc_eval_return": bc["bc_eval_return"],
                         "bc_wall_s": bc["bc_wall_s"], "after_loading_return": after, "from_bc": from_bc,
                         "scratch": {**scratch, "load_before": scratch_load}})
        report["runs"] = runs
        report["summary"] = {
            "after_loading_return": common.spread([r["after_loading_return"] for r in runs]),
            "after_loading_goal": AFTER_LOADING_GOAL,
            "after_loading_reached_seeds": sum(r["after_loading_return"] >= AFTER_LOADING_GOAL for r in runs),
            "target": TARGET,
            "from_bc_reached_seeds": sum(r["from_bc"]["reached"] for r in runs),
            "from_bc_final_eval_return": common.spread([r["from_bc"]["final_eval_return"] for r in runs]),
            "from_bc_lowest_eval_return": common.spread([r["from_bc"]["lowest_eval_return"] for r in runs]),
            "from_bc_env_steps": common.spread([r["from_bc"]["env_steps"] for r in runs if r["from_bc"]["reached"]]),
            "scratch_reached_seeds": sum(r["scratch"]["reached"] for r in runs),
            "scratch_env_steps": common.spread([r["scratch"]["env_steps"] for r in runs if r["scratch"]["reached"]]),
            "seeds": len(runs),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
