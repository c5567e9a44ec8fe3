"""SAC learning benchmark: env steps and wall seconds to a greedy target, continuous and discrete.

Tasks:

* ``pendulum``: SAC (squashed Gaussian, twin Q, learned alpha) on Pendulum-v1, greedy
  evaluation return >= -250 within 20,000 env steps (RLlib's own tuned target).
* ``cartpole``: discrete SAC on CartPole-v1, greedy evaluation return >= 450.
* ``*_rllib``: RLlib's SAC (new API stack) with the same settings in the same run,
  interleaved seed by seed with ours, under the same env-step budget and a time budget.

Protocol (both sides; ``common.train_to_target`` and ``rllib_peer.rllib_sac_to_target``):
``train()`` samples at least ``min_sample_timesteps_per_iteration`` env steps, one env step
and one gradient step of ``train_batch_size`` per training step; after every iteration
``algo.evaluate()`` runs 10 greedy episodes in the driver; reached when their mean is at
least the target in 3 evaluations in a row (an early greedy CartPole policy sometimes
scores 500 once and then unlearns it), counted at the third; stop there, when the
env-step budget is used, or when the time budget is. ``wall_s`` runs from the start of the
build and includes the evaluations.

Known differences: both run ``n_step=1`` (the runs were tuned that way; n-step returns
now reach across our one-step fragments too, see ``Columns.LOOKAHEAD``). For discrete actions
RLlib's ``target_entropy="auto"`` means -1 and ours a share of log|A| per state, so the
CartPole task sets the same number on both sides.

    python benchmarks/sac_learning.py --quick            # one seed, short budgets
    python benchmarks/sac_learning.py --out              # writes results/sac_learning.json
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

try:  # python -m benchmarks.sac_learning, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/sac_learning.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import SACConfig

logger = logging.getLogger("benchmarks.sac_learning")

NAME = "sac_learning"

# Identical on both sides; RLlib's names. RLlib's replay type is its episode buffer.
TASKS: dict[str, dict[str, Any]] = {
    "pendulum": {
        "env": "Pendulum-v1", "target": -250.0, "max_env_steps": 20_000,
        "training": {"actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4, "tau": 5e-3, "initial_alpha": 1.0,
                     "gamma": 0.99, "n_step": 1, "twin_q": True, "target_entropy": "auto",
                     "num_steps_sampled_before_learning_starts": 1000, "train_batch_size": 256},
        "replay_capacity": 100_000,
        "model": {"fcnet_hiddens": [256, 256], "fcnet_activation": "relu"},
    },
    "cartpole": {
        "env": "CartPole-v1", "target": 450.0, "max_env_steps": 100_000,
        "training": {"actor_lr": 3e-4, "critic_lr": 1e-3, "alpha_lr": 3e-4, "tau": 5e-3, "initial_alpha": 1.0,
                     "gamma": 0.99, "n_step": 1, "twin_q": True, "target_entropy": 0.5 * math.log(2.0),
                     "num_steps_sampled_before_learning_starts": 1000, "train_batch_size": 64},
        "replay_capacity": 100_000,
        "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"},
    },
}
ROLLOUT_FRAGMENT_LENGTH = 1  # one gradient step per env step on both sides
MIN_STEPS_PER_ITERATION = 1000

BUDGETS_S = {
    "full": {"pendulum": 600, "pendulum_rllib": 900, "cartpole": 600, "cartpole_rllib": 600},
    "quick": {"pendulum": 120, "pendulum_rllib": 60, "cartpole": 60, "cartpole_rllib": 60},
}
STEP_CAPS = {"quick": 8_000}  # quick mode stops sooner; full mode uses each task's max_env_steps
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: the settings were tuned on 0-2


def _ours(task: dict[str, Any], seed: int) -> SACConfig:
    return (
        SACConfig()
        .environment(task["env"])
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, rollout_fragment_length=ROLLOUT_FRAGMENT_LENGTH)
        .learners(num_learners=0)
        .training(**task["training"],
                  replay_buffer_config={"type": "ReplayBuffer", "capacity": task["replay_capacity"]})
        .reporting(min_sample_timesteps_per_iteration=MIN_STEPS_PER_ITERATION)
        .rl_module(model_config=dict(task["model"]))
        .evaluation(evaluation_duration=10, evaluation_duration_unit="episodes", evaluation_num_env_runners=0)
        .debugging(seed=seed)
    )


def _run_ours(name: str, seed: int, budget_s: float, max_env_steps: int) -> dict[str, Any]:
    task = TASKS[name]
    load = common.log_load(f"{name} seed {seed}")
    run = common.train_to_target(_ours(task, seed), target=task["target"], time_budget_s=budget_s,
                                 max_env_steps=max_env_steps, consecutive=common.CONSECUTIVE,
                                 label=f"sac {name} seed {seed}")
    return {"seed": seed, **run, "load_before": load}


def _run_rllib(name: str, seed: int, budget_s: float, max_env_steps: int) -> dict[str, Any]:
    task = TASKS[name]
    load = common.log_load(f"{name}_rllib seed {seed}")
    training = dict(task["training"])
    training["train_batch_size_per_learner"] = training.pop("train_batch_size")
    training.update(lr=None, target_network_update_freq=0,  # RLlib: soft update after every update
                    replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": task["replay_capacity"]})
    run = rllib_peer.rllib_sac_to_target(
        task["env"], task["target"], seed, budget_s, training=training, fcnet_hiddens=task["model"]["fcnet_hiddens"],
        fcnet_activation=task["model"]["fcnet_activation"], rollout_fragment_length=ROLLOUT_FRAGMENT_LENGTH,
        min_sample_timesteps_per_iteration=MIN_STEPS_PER_ITERATION, max_env_steps=max_env_steps,
        consecutive=common.CONSECUTIVE,
    )
    return {"seed": seed, **run, "load_before": load}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS), help="tasks to run")
    parser.add_argument("--rllib-seeds", type=int, nargs="+",
                        help="seeds for the RLlib runs (default: the same as ours)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    budgets = BUDGETS_S[mode]
    seeds = args.seeds or SEEDS[mode]
    rllib_seeds = args.rllib_seeds if args.rllib_seeds is not None else seeds
    use_rllib = not args.no_rllib
    if use_rllib and not rllib_peer.rllib_available():
        logger.warning("RLlib is not installed: skipping the peer (pip install 'ray[rllib]').")
        use_rllib = False
    ray_started = common.start_ray() if use_rllib else False
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "rllib_seeds": rllib_seeds if use_rllib else [],
        "machine": common.machine_info(),
        "protocol": f"train() samples >= {MIN_STEPS_PER_ITERATION} env steps (one env step and one gradient step per "
                    "training step); after every iteration algo.evaluate() runs 10 greedy episodes; reached when "
                    f"their mean is at the target in {common.CONSECUTIVE} evaluations in a row (counted at the last) "
                    "within the env-step budget. wall_s: build + training + evaluations; env_steps: training "
                    "samples. Medians and min-max over seeds; reached means every seed reached.",
        "settings": {name: {**task, "rollout_fragment_length": ROLLOUT_FRAGMENT_LENGTH,
                            "min_sample_timesteps_per_iteration": MIN_STEPS_PER_ITERATION,
                            "replay": "ReplayBuffer (RLlib: EpisodeReplayBuffer)"}
                     for name, task in TASKS.items() if name in args.tasks},
        "tasks": {},
        "ratios": {},
    }
    started = time.perf_counter()
    try:
        for name in args.tasks:
            cap = min(TASKS[name]["max_env_steps"], STEP_CAPS.get(mode, TASKS[name]["max_env_steps"]))
            runs: dict[str, list] = {name: [], **({f"{name}_rllib": []} if use_rllib else {})}
            for seed in seeds:
                runs[name].append(_run_ours(name, seed, budgets[name], cap))
                if use_rllib and seed in rllib_seeds:
                    runs[f"{name}_rllib"].append(_run_rllib(name, seed, budgets[f"{name}_rllib"], cap))
            for task_name, task_runs in runs.items():
                report["tasks"][task_name] = {"target": TASKS[name]["target"], "max_env_steps": cap,
                                              **common.summarize_runs(task_runs),
                                              "time_budget_s_per_seed": budgets[task_name]}
            if use_rllib:
                ours, rllib = report["tasks"][name], report["tasks"][f"{name}_rllib"]
                report["ratios"][name] = common.peer_ratios(ours, rllib)
    finally:
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
