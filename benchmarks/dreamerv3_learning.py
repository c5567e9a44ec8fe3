"""DreamerV3 learning benchmark: CartPole-v1 (XS, the config's defaults) or Pendulum-v1.

Targets (issue 18): CartPole-v1 (item 2), greedy evaluation return >= 450 within 30,000 env
steps and 15 minutes of wall time with ``DreamerV3Config().training(model_size="XS")``;
Pendulum-v1 (item 3), >= -250 within 30,000 env steps, with the settings in ``TASKS``.
Median over seeds 100-102 (not used for tuning: CartPole's defaults were chosen on seed 0,
Pendulum's settings on seeds 0-2).

Protocol (``common.train_to_target``): ``train()`` samples whole episodes until at least
``min_sample_timesteps_per_iteration`` (1000) env steps, with ``training_ratio`` replayed
steps per env step; after an iteration whose training return is at least the task's
``eval_trigger``, ``algo.evaluate()`` runs ``EVAL_EPISODES`` greedy episodes; reached when
their mean is at the target in ``CONSECUTIVE`` evaluations in a row (counted at the last);
otherwise the figure is the final policy's. Stops at the target, the env-step cap or the
time budget. ``wall_s`` includes the build and the evaluations. ``--jobs N`` runs seeds in N
processes at once (each with one torch thread), which shares the machine's cores between
them: the load recorded before each run says how busy the machine was.

The update rate (world-model + actor-critic updates per second of learner time) comes from
the learner timer and the update count of the last iteration.

    python benchmarks/dreamerv3_learning.py --quick      # one seed, 5 minutes
    python benchmarks/dreamerv3_learning.py --out --jobs 3
    python benchmarks/dreamerv3_learning.py --task pendulum --out
    python benchmarks/dreamerv3_learning.py --task pendulum --seeds 0 --set training_ratio=64   # tuning
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from typing import Any

try:  # python -m benchmarks.dreamerv3_learning, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/dreamerv3_learning.py: benchmarks/ is sys.path[0]
    import common

from marl_arena.algorithms.dreamerv3 import DreamerV3Config
from marl_arena.cli import parse_key_values

logger = logging.getLogger("benchmarks.dreamerv3_learning")

MAX_ENV_STEPS = 30_000
CONSECUTIVE = 2
EVAL_EPISODES = 5
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: settings were chosen on seeds 0-2
SETTING_NAMES = (
    "model_size", "training_ratio", "batch_size_B", "batch_length_T", "horizon_H", "imagination_starts",
    "gamma", "gae_lambda", "world_model_lr", "actor_lr", "critic_lr", "entropy_scale", "grad_clip",
    "num_steps_sampled_before_learning_starts", "min_sample_timesteps_per_iteration")


@dataclasses.dataclass(frozen=True)
class Task:
    """One learning target: the env, the goal, and the ``training()`` settings on top of the defaults."""

    env: str
    name: str
    """The report's name: ``benchmarks/results/<name>.json``."""
    target: float
    eval_trigger: float
    """Greedy evaluations cost RSSM steps: only once training returns are near the target."""
    training: dict[str, Any]
    reporting: dict[str, Any]
    """``reporting()`` settings: a training return smoothed over fewer episodes follows the policy."""
    budgets_s: dict[str, float]
    """Wall-clock cap per seed, "full" and "quick"."""
    why: str


TASKS = {
    "cartpole": Task(
        env="CartPole-v1", name="dreamerv3_learning", target=450.0, eval_trigger=150.0,
        training={"model_size": "XS"}, reporting={}, budgets_s={"full": 900, "quick": 300},
        why="the issue's config: DreamerV3Config().training(model_size='XS'), defaults otherwise"),
    "pendulum": Task(
        env="Pendulum-v1", name="dreamerv3_learning_pendulum", target=-250.0,
        eval_trigger=-math.inf,  # every iteration: 5 greedy episodes cost little beside 1000 steps' updates
        training={"model_size": "XS", "training_ratio": 64, "actor_lr": 1e-4},
        reporting={"metrics_num_episodes_for_smoothing": 5}, budgets_s={"full": 1800, "quick": 600},
        why="model_size='XS', training_ratio=64, actor_lr=1e-4, the defaults otherwise (chosen on seeds 0-2: "
            "see 'tuning')"),
}
TUNING = {  # what was tried on the tuning seeds before the settings above, recorded in the report
    "pendulum": [
        "defaults (XS, training_ratio 32, actor_lr 3e-5), seed 0: not reached within 30k env steps; training "
        "return (smoothed over 100 episodes) -991 at 30k, rising only from about 20k",
        "actor_lr 1e-4, training_ratio 32, seed 0: not reached; greedy -698 at 30k, rising from about 22k",
        "actor_lr 1e-4, training_ratio 64, seeds 0, 1, 2: reached at 15k, 16k, 14k env steps (one seed at a "
        "time, niced beside another benchmark)",
    ],
}


def config(task: Task, seed: int) -> DreamerV3Config:
    """The task's config: the defaults with ``task.training`` on top."""
    return (
        DreamerV3Config()
        .environment(task.env)
        .training(**task.training)
        .reporting(**task.reporting)
        .evaluation(evaluation_duration=EVAL_EPISODES, evaluation_duration_unit="episodes")
        .debugging(seed=seed)
    )


def run_seed(seed: int, task: Task, budget_s: float) -> dict[str, Any]:
    common.set_torch_threads()
    label = f"dreamerv3 {task.env} seed {seed}"
    load = common.log_load(label)
    run = common.train_to_target(config(task, seed), target=task.target, time_budget_s=budget_s,
                                 max_env_steps=MAX_ENV_STEPS, consecutive=CONSECUTIVE,
                                 eval_trigger=task.eval_trigger, label=label)
    return {"seed": seed, **run, "load_before": load}


def _update_rate(run: dict[str, Any], defaults: DreamerV3Config) -> float:
    """Updates per learner second from the median iteration: updates owed per iteration over its learner time."""
    learner_s = run.get("median_iteration_timers_s", {}).get("learner_update_timer")
    if not learner_s:
        return float("nan")
    per_iteration = defaults.training_ratio * defaults.min_sample_timesteps_per_iteration / (
        defaults.batch_size_B * defaults.batch_length_T)
    return per_iteration / learner_s


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="cartpole", help="the learning target")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in its own process")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="training() settings on top of the task's, for tuning (VALUE read as JSON, else a string)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    task = TASKS[args.task]
    if args.set:
        task = dataclasses.replace(task, training={**task.training, **parse_key_values(args.set, "--set")},
                                   why=f"{task.why}; overridden by --set {' '.join(args.set)}")
    mode = "quick" if args.quick else "full"
    seeds = args.seeds or SEEDS[mode]
    budget = task.budgets_s[mode]
    defaults = config(task, 0)
    report: dict[str, Any] = {
        "benchmark": task.name, "mode": mode, "seeds": seeds, "jobs": args.jobs, "machine": common.machine_info(),
        "protocol": f"{task.env}, {task.why}; train() samples whole episodes, "
                    f">= {defaults.min_sample_timesteps_per_iteration} env steps; after an iteration with training "
                    f"return >= {task.eval_trigger}, {EVAL_EPISODES} greedy evaluation episodes; reached when their "
                    f"mean >= {task.target} in {CONSECUTIVE} evaluations in a row within {MAX_ENV_STEPS} env steps "
                    f"and {budget} s; {args.jobs} seed(s) at once.",
        "settings": {name: getattr(defaults, name) for name in SETTING_NAMES},
        "reporting": task.reporting,
        **({"tuning": TUNING[args.task]} if args.task in TUNING else {}),
        "peer": "none in this benchmark: RLlib's DreamerV3 (XS, training_ratio 1024) takes about 2.6 s per env step "
                "here (issue 18), so a side-by-side run to 30k steps is out of reach",
    }
    started = time.perf_counter()
    runs = common.map_runs(functools.partial(run_seed, task=task, budget_s=budget), seeds, args.jobs)
    for run in runs:
        run["updates_per_learner_s"] = _update_rate(run, defaults)
    summary = common.summarize_runs(runs)
    summary["updates_per_learner_s"] = common.median([r["updates_per_learner_s"] for r in runs])
    report["tasks"] = {args.task: {"target": task.target, "max_env_steps": MAX_ENV_STEPS,
                                   "time_budget_s_per_seed": budget, **summary}}
    common.finish(report, task.name, args.out, started)
    return report


if __name__ == "__main__":
    main()
