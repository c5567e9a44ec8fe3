"""APPO and IMPALA benchmark: learning speed, throughput and fault tolerance, RLlib side by side.

Tasks, all in one run (RLlib's where named, on the same machine, started between ours):

* ``cartpole_appo`` / ``cartpole_impala``: ours on CartPole-v1 to a greedy evaluation
  return >= 450, seeds 100-102 (the settings were tuned on seeds 0-2, see the notes at
  the settings below);
* ``cartpole_appo_rllib`` / ``cartpole_impala_rllib``: RLlib's APPO and IMPALA with the
  settings of RLlib's tuned examples (``rllib/tuned_examples/appo/cartpole_appo.py``,
  ``impala/cartpole_impala.py``) on 1 runner x 4 envs, one seed each, within 300 s and
  200 s; a peer that misses counts as its whole budget; ``ratios`` puts our median wall
  time over RLlib's;
* ``throughput``: APPO with 2 runner actors x 8 envs each, sampling and learning at once
  for ``--seconds``, the same settings on both sides: env steps and learner updates per
  second, ours over RLlib's;
* ``pendulum_appo``: ours on Pendulum-v1 (continuous actions) to a greedy -300;
* ``cartpole_appo_killed_runners``: ours on CartPole with 2 runner actors, one of them
  killed every 20 s (alternating), still to 450; the restarts are counted.

Protocol of the learning tasks (``common.train_to_target`` for ours,
``rllib_peer._train_until_target`` for RLlib's): after every training iteration,
``algo.evaluate()`` runs 10 greedy episodes in the driver; reached at the first point where
the mean held the target in ``CONSECUTIVE`` (2) evaluations in a row. ``wall_s``: build +
training + evaluations to that point; ``env_steps``: training samples.

    python benchmarks/impala_appo.py --quick        # smoke check, a few minutes
    python benchmarks/impala_appo.py --out          # full, writes results/impala_appo.json
    python benchmarks/impala_appo.py --tasks throughput --out   # writes results/impala_appo_throughput.json
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

try:  # python -m benchmarks.impala_appo, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/impala_appo.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import APPOConfig, IMPALAConfig

logger = logging.getLogger("benchmarks.impala_appo")

NAME = "impala_appo"
CONSECUTIVE = 2
"""Evaluations in a row at the target (this issue's protocol; the other learning benchmarks use 3)."""
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: tuning used 0-2

# Ours on CartPole: sampling in the driver (num_env_runners=0) on 8 sub-envs, so sampling and
# learning take turns and each batch is learned from once (circular buffer of 1 batch, 1 iteration),
# with epochs of minibatches of 128 on each train batch of 504 env steps (one fragment of 8 x 63).
# See TUNING for what was tried on seeds 0-5.
CARTPOLE_APPO: dict[str, Any] = {
    "training": {"train_batch_size": 500, "minibatch_size": 128, "num_epochs": 8, "lr": 1e-3, "gamma": 0.99,
                 "clip_param": 0.2, "vf_loss_coeff": 0.5, "entropy_coeff": 0.0,
                 "circular_buffer_num_batches": 1, "circular_buffer_iterations_per_batch": 1,
                 "target_network_update_freq": 1, "use_kl_loss": False, "grad_clip": 40.0},
    "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"},
    "runners": {"num_env_runners": 0, "num_envs_per_env_runner": 8, "rollout_fragment_length": 63},
    "reporting": {"min_time_s_per_iteration": 0, "min_sample_timesteps_per_iteration": 2000},
}
CARTPOLE_IMPALA: dict[str, Any] = {  # 4 epochs: with 8, V-trace's unclipped updates collapsed on 2 of 6 seeds
    "training": {"train_batch_size": 500, "minibatch_size": 128, "num_epochs": 4, "lr": 1e-3, "gamma": 0.99,
                 "vf_loss_coeff": 0.5, "entropy_coeff": 0.0,
                 "circular_buffer_num_batches": 1, "circular_buffer_iterations_per_batch": 1, "grad_clip": 40.0},
    "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"},
    "runners": {"num_env_runners": 0, "num_envs_per_env_runner": 8, "rollout_fragment_length": 63},
    "reporting": {"min_time_s_per_iteration": 0, "min_sample_timesteps_per_iteration": 2000},
}
PENDULUM_APPO: dict[str, Any] = {
    "training": {"train_batch_size": 2000, "minibatch_size": 64, "num_epochs": 10, "lr": 2e-3, "gamma": 0.95,
                 "clip_param": 0.2, "vf_loss_coeff": 0.5, "entropy_coeff": 0.0,
                 "circular_buffer_num_batches": 1, "circular_buffer_iterations_per_batch": 1,
                 "target_network_update_freq": 1, "use_kl_loss": False, "grad_clip": 40.0},
    "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"},
    "runners": {"num_env_runners": 0, "num_envs_per_env_runner": 10, "rollout_fragment_length": 200},
    "reporting": {"min_time_s_per_iteration": 0, "min_sample_timesteps_per_iteration": 2000},
}
# CartPole through killed runners: the CartPole APPO settings, on 2 runner actors x 4 envs.
KILLED_RUNNERS = {"num_env_runners": 2, "num_envs_per_env_runner": 4, "rollout_fragment_length": 63}
KILL_EVERY_S = 20.0

TUNING = (
    "Tuned on seeds 0-5, never 100-102 (env steps to 2 greedy evaluations >= 450 in a row; the machine was shared "
    "with other benchmarks at the time, so only env steps compare). All with 8 sub-envs in the driver, [64, 64] "
    "tanh, lr 1e-3, minibatch 128, circular buffer 1 x 1. APPO on seeds 0-2: batch 1000 / 4 epochs 54k, 48k, 14k; "
    "8 epochs 34k, 20k, 26k; lr 2e-3 32k, 20k, 68k; batch 2000 / 8 epochs 32k, 20k, 30k; batch 1000 / 8 epochs / "
    "clip 0.4 36k, 18k, 38k; batch 500 / 8 epochs 16k, 20k, 28k (chosen; on seeds 3-5 32k, 32k, 34k); the same "
    "with clip 0.4 8k, 22k, 26k, with lr 2e-3 44k, 28k, 30k. IMPALA: batch 1000 / 4 epochs 18k, 12k, 10k; "
    "8 epochs 10k, 8k, 6k; batch 500 / 8 epochs 10k, 8k, 8k on seeds 0-2 but collapsed (greedy return < 20, no "
    "recovery in 40 s) on seeds 4 and 5; batch 500 / 4 epochs 12k, 16k, 16k on seeds 0-2 and 8k, 16k, 6k on 3-5 "
    "(chosen); batch 500 / 2 epochs / lr 2e-3 22k, 14k, 20k on 3-5. Pendulum APPO (PPO's Pendulum settings, "
    "batch 2000 / minibatch 64 / 10 epochs / lr 2e-3 / gamma 0.95, 10 sub-envs): 28k, 28k, 30k on seeds 0-2, "
    "the first settings tried."
)

# RLlib's tuned examples (Ray 2.60), everything else RLlib's defaults; 1 runner x 4 envs as in the issue.
RLLIB_APPO_TRAINING = {"circular_buffer_iterations_per_batch": 2, "vf_loss_coeff": 0.05, "entropy_coeff": 0.0}
RLLIB_IMPALA_TRAINING = {"train_batch_size_per_learner": 500, "grad_clip": 40.0, "grad_clip_by": "global_norm",
                         "lr": 5e-4, "vf_loss_coeff": 0.05, "entropy_coeff": 0.0}
RLLIB_MODEL = {"vf_share_layers": True}  # fcnet_hiddens [256, 256] tanh: RLlib's default
RLLIB_RUNNERS = {"num_env_runners": 1, "num_envs_per_env_runner": 4}

# Throughput: the same settings on both sides (RLlib's APPO defaults and its tuned CartPole values).
THROUGHPUT_RUNNERS = {"num_env_runners": 2, "num_envs_per_env_runner": 8, "rollout_fragment_length": 50}
THROUGHPUT_TRAINING = {"train_batch_size": 500, "lr": 5e-4, "vf_loss_coeff": 0.05, "entropy_coeff": 0.0,
                       "circular_buffer_num_batches": 4, "circular_buffer_iterations_per_batch": 2,
                       "broadcast_interval": 1}
THROUGHPUT_MODEL = {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh", "vf_share_layers": True}

TASKS = ["cartpole", "rllib", "throughput", "pendulum", "killed"]

BUDGETS = {
    "full": {"cartpole": 120, "appo_rllib": 300, "impala_rllib": 200, "pendulum": 120, "killed": 240,
             "throughput_s": 30.0},
    "quick": {"cartpole": 30, "appo_rllib": 30, "impala_rllib": 30, "pendulum": 30, "killed": 45,
              "throughput_s": 5.0},
}


def _ours(config_class: type, settings: dict[str, Any], env: str, seed: int, runners: dict | None = None,
          eval_envs: int = 1) -> Any:
    """One of our configs with greedy 10-episode evaluation in the driver.

    Evaluation runs on ``eval_envs`` sub-envs (the recorded CartPole runs: 1; Pendulum: 10). More
    would not favour short episodes: ``EnvRunner.sample(num_episodes=10)`` starts exactly 10, one per
    free sub-env, and waits for all of them; on CartPole they would shorten the evaluations, which
    are about half of our wall time, so a change here needs a rerun beside RLlib's peers.
    """
    return (
        config_class()
        .environment(env)
        .env_runners(**(runners or settings["runners"]))
        .learners(num_learners=0)
        .training(**settings["training"])
        .rl_module(model_config=dict(settings["model"]))
        .reporting(**settings["reporting"])
        .evaluation(evaluation_duration=10, evaluation_duration_unit="episodes", evaluation_num_env_runners=0,
                    evaluation_config={"explore": False, "num_envs_per_env_runner": eval_envs})
        .debugging(seed=seed)
    )


def _run_ours(label: str, config: Any, target: float, budget_s: float, seed: int) -> dict[str, Any]:
    load = common.log_load(f"{label} seed {seed}")
    run = common.train_to_target(config, target=target, time_budget_s=budget_s, label=f"{label} seed {seed}",
                                 consecutive=CONSECUTIVE)
    return {"seed": seed, **run, "load_before": load}


def _run_killed(settings: dict[str, Any], seed: int, budget_s: float, kill_every_s: float) -> dict[str, Any]:
    """CartPole with 2 runner actors, one killed every ``kill_every_s`` seconds (between iterations)."""
    import ray

    load = common.log_load(f"killed runners seed {seed}")
    config = _ours(APPOConfig, settings, "CartPole-v1", seed, runners=KILLED_RUNNERS)
    t_start = time.perf_counter()
    algo = config.build_algo()
    build_s = time.perf_counter() - t_start
    streak = common.Streak(CONSECUTIVE)
    kills = iterations = env_steps = 0
    last_kill = time.perf_counter()
    final_eval = math.nan
    reached = False
    eval_s = 0.0
    try:
        while time.perf_counter() - t_start < budget_s:
            if time.perf_counter() - last_kill >= kill_every_s:
                victim = algo.env_runner_group.remote_runners[kills % 2]
                ray.kill(victim, no_restart=True)
                kills += 1
                last_kill = time.perf_counter()
                logger.info("killed runner %d (kill %d)", kills % 2 or 2, kills)
            result = algo.train()
            iterations += 1
            env_steps = int(result["num_env_steps_sampled_lifetime"])
            t_eval = time.perf_counter()
            final_eval = float(algo.evaluate()["env_runners"]["episode_return_mean"])
            eval_s += time.perf_counter() - t_eval
            if streak.add(final_eval >= 450.0):
                reached = True
                break
        wall_s = time.perf_counter() - t_start
        restarts = algo.env_runner_group.num_restarts
        dropped = algo.env_runner_group.num_dropped_samples
    finally:
        algo.stop()
    logger.info("killed runners: %s after %.1f s, %d env steps, %d kills, %d restarts",
                "reached" if reached else "did NOT reach", wall_s, env_steps, kills, restarts)
    return {"seed": seed, "reached": reached, "consecutive": CONSECUTIVE, "env_steps": env_steps, "wall_s": wall_s,
            "train_s": wall_s - eval_s, "build_s": build_s, "iterations": iterations, "final_eval_return": final_eval,
            "kills": kills, "num_env_runner_restarts": restarts, "num_fragments_dropped": dropped,
            "load_before": load}


def _rllib_to_target(algo_name: str, seed: int, budget_s: float) -> dict[str, Any]:
    """RLlib's APPO or IMPALA with its tuned CartPole settings, to a greedy 450."""
    from ray.rllib.algorithms.appo import APPOConfig as RLlibAPPOConfig
    from ray.rllib.algorithms.impala import IMPALAConfig as RLlibIMPALAConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    load = common.log_load(f"RLlib {algo_name} seed {seed}")
    config_class, training = ((RLlibAPPOConfig, RLLIB_APPO_TRAINING) if algo_name == "APPO"
                              else (RLlibIMPALAConfig, RLLIB_IMPALA_TRAINING))
    t_start = time.perf_counter()
    config = (
        config_class()
        .environment("CartPole-v1")
        .env_runners(**RLLIB_RUNNERS)
        .learners(num_learners=0)
        .training(**training)
        .rl_module(model_config=DefaultModelConfig(**RLLIB_MODEL))
        .evaluation(evaluation_interval=rllib_peer._NEVER_AUTO_EVALUATE, evaluation_num_env_runners=0,
                    evaluation_duration=10, evaluation_duration_unit="episodes",
                    evaluation_config={"explore": False})
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    build_s = time.perf_counter() - t_start
    run = rllib_peer._train_until_target(algo, algo_name, "CartPole-v1", t_start, build_s, 450.0, budget_s,
                                         -math.inf, 10, RLLIB_RUNNERS["num_env_runners"], consecutive=CONSECUTIVE)
    if not run["reached"]:
        run["wall_s_measured"] = run["wall_s"]
        run["wall_s"] = float(budget_s)  # a miss counts as the whole budget
    return {"seed": seed, **run, "load_before": load}


def _rllib_updates(result: dict[str, Any], train_batch_size: int) -> float:
    """Learner updates RLlib made: env steps trained over the train batch size (its learner logs each
    update's batch under ``learners/__all_modules__/num_env_steps_trained_lifetime``)."""
    trained = rllib_peer._get(result, "learners", "__all_modules__", "num_env_steps_trained_lifetime", default=0)
    return float(trained) / train_batch_size


def _throughput_ours(seconds: float) -> dict[str, Any]:
    config = (
        APPOConfig()
        .environment("CartPole-v1")
        .env_runners(**THROUGHPUT_RUNNERS)
        .learners(num_learners=0)
        .training(**THROUGHPUT_TRAINING)
        .rl_module(model_config=dict(THROUGHPUT_MODEL))
        .reporting(min_time_s_per_iteration=3.0, min_sample_timesteps_per_iteration=0)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        warm, t_warm = algo.train(), time.perf_counter()  # warm-up: fragments flowing, learner busy
        while warm["env_runners"]["num_env_steps_sampled"] == 0 and time.perf_counter() - t_warm < 120:
            warm = algo.train()
        load = common.log_load("ours throughput")
        results, t0 = [], time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            results.append(algo.train())
        elapsed = time.perf_counter() - t0
    finally:
        algo.stop()
    steps = sum(r["env_runners"]["num_env_steps_sampled"] for r in results)
    updates = sum(r["learners"]["__all_modules__"]["num_updates"] for r in results)
    logger.info("ours: %d env steps, %d updates in %.1f s", steps, updates, elapsed)
    return {"env_steps_per_s": steps / elapsed, "learner_updates_per_s": updates / elapsed,
            "env_steps": steps, "learner_updates": updates, "seconds": elapsed, "iterations": len(results),
            "sample_staleness_mean": common.median([r["learners"]["__all_modules__"]["sample_staleness_mean"]
                                                    for r in results]),
            "load_before": load}


def _throughput_rllib(seconds: float) -> dict[str, Any]:
    from ray.rllib.algorithms.appo import APPOConfig as RLlibAPPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    training = {("train_batch_size_per_learner" if k == "train_batch_size" else k): v
                for k, v in THROUGHPUT_TRAINING.items()}
    model = dict(THROUGHPUT_MODEL)
    config = (
        RLlibAPPOConfig()
        .environment("CartPole-v1")
        .env_runners(**THROUGHPUT_RUNNERS)
        .learners(num_learners=0)
        .training(**training)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=model["fcnet_hiddens"],
                                                   fcnet_activation=model["fcnet_activation"],
                                                   vf_share_layers=model["vf_share_layers"]))
        .reporting(min_time_s_per_iteration=3.0)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        # Warm up until samples flow: on a busy machine RLlib's first iterations sample nothing.
        warm, t_warm = algo.train(), time.perf_counter()
        while rllib_peer._lifetime_env_steps(warm) == 0 and time.perf_counter() - t_warm < 120:
            warm = algo.train()
        load = common.log_load("RLlib throughput")
        t0 = time.perf_counter()
        iterations = 0
        while time.perf_counter() - t0 < seconds:
            result = algo.train()
            iterations += 1
        elapsed = time.perf_counter() - t0
    finally:
        algo.stop()
    steps = float(rllib_peer._lifetime_env_steps(result) - rllib_peer._lifetime_env_steps(warm))
    batch = THROUGHPUT_TRAINING["train_batch_size"]
    updates = _rllib_updates(result, batch) - _rllib_updates(warm, batch)
    logger.info("RLlib: %d env steps, %d updates in %.1f s", steps, updates, elapsed)
    return {"env_steps_per_s": steps / elapsed, "learner_updates_per_s": updates / elapsed,
            "env_steps": steps, "learner_updates": updates, "seconds": elapsed, "iterations": iterations,
            "updates_counted_as": "delta of learners/__all_modules__/num_env_steps_trained_lifetime over the "
                                  "train batch size",
            "load_before": load}


def _wall_ratio(ours: dict[str, Any], rllib: dict[str, Any]) -> dict[str, Any]:
    wall = common.ratio(ours["wall_s"], rllib["wall_s"])
    return {"wall_s_ours_over_rllib": wall,
            "env_steps_ours_over_rllib": common.ratio(ours["env_steps"], rllib["env_steps"]),
            "goal": "<= 0.1", "goal_met": bool(ours["reached"] and wall <= 0.1),
            "note": None if rllib["reached"] else "RLlib missed 450 within its budget: its wall_s is the budget"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds of ours (default: 100 101 102, quick: 100)")
    parser.add_argument("--tasks", nargs="+",
                        choices=TASKS, help="run only these parts (default: all); --out then writes "
                                            "results/impala_appo_<tasks>.json, leaving the full run's file alone")
    parser.add_argument("--pendulum-seeds", type=int, default=3, help="how many of the seeds Pendulum runs")
    parser.add_argument("--kill-every-s", type=float, default=KILL_EVERY_S,
                        help="killed-runners task: seconds between kills (default 20)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    budgets = BUDGETS[mode]
    seeds = args.seeds or SEEDS[mode]
    wanted = set(args.tasks or TASKS)
    use_rllib = not args.no_rllib and rllib_peer.rllib_available()
    if not use_rllib:
        wanted.discard("rllib")
    ray_started = common.start_ray()  # before any timed run: runner actors need it, and both sides share its load
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "protocol": "after every training iteration algo.evaluate() runs 10 greedy episodes in the driver; reached "
                    f"at the first point where their mean held the target in {CONSECUTIVE} evaluations in a row. "
                    "wall_s: build + training + evaluations to that point (train_s: less evaluations); env_steps: "
                    "training samples. Figures are medians and min-max over seeds. A peer that misses counts as "
                    "its whole budget. Torch runs 1 intra-op thread in the driver for both libraries.",
        "settings": {
            "cartpole_appo": CARTPOLE_APPO, "cartpole_impala": CARTPOLE_IMPALA, "pendulum_appo": PENDULUM_APPO,
            "killed_runners": {**KILLED_RUNNERS, "kill_every_s": args.kill_every_s, "otherwise": "cartpole_appo"},
            "rllib_appo": {"tuned_example": "rllib/tuned_examples/appo/cartpole_appo.py",
                           "training": RLLIB_APPO_TRAINING, "model": RLLIB_MODEL, "runners": RLLIB_RUNNERS},
            "rllib_impala": {"tuned_example": "rllib/tuned_examples/impala/cartpole_impala.py",
                             "training": RLLIB_IMPALA_TRAINING, "model": RLLIB_MODEL, "runners": RLLIB_RUNNERS},
            "throughput_both_sides": {"runners": THROUGHPUT_RUNNERS, "training": THROUGHPUT_TRAINING,
                                      "model": THROUGHPUT_MODEL, "num_learners": 0},
            "tuning": TUNING,
        },
        "budgets_s": budgets,
        "tasks": {},
    }
    started = time.perf_counter()
    try:
        tasks = report["tasks"]
        if "cartpole" in wanted:
            for label, cls, settings in (("cartpole_appo", APPOConfig, CARTPOLE_APPO),
                                         ("cartpole_impala", IMPALAConfig, CARTPOLE_IMPALA)):
                runs = [_run_ours(label, _ours(cls, settings, "CartPole-v1", seed), 450.0, budgets["cartpole"], seed)
                        for seed in seeds]
                tasks[label] = {"target": 450.0, **common.summarize_runs(runs)}
        if "rllib" in wanted:
            for label, algo_name, budget in (("cartpole_appo_rllib", "APPO", budgets["appo_rllib"]),
                                             ("cartpole_impala_rllib", "IMPALA", budgets["impala_rllib"])):
                tasks[label] = {"target": 450.0, "time_budget_s": budget,
                                **common.summarize_runs([_rllib_to_target(algo_name, seed, budget) for seed in seeds])}
        if "cartpole" in wanted and "rllib" in wanted:
            report["ratios"] = {"cartpole_appo": _wall_ratio(tasks["cartpole_appo"], tasks["cartpole_appo_rllib"]),
                                "cartpole_impala": _wall_ratio(tasks["cartpole_impala"],
                                                               tasks["cartpole_impala_rllib"])}
        if "throughput" in wanted:
            ours = _throughput_ours(budgets["throughput_s"])
            tasks["throughput"] = {"ours_appo": ours}
            if use_rllib:
                rllib = _throughput_rllib(budgets["throughput_s"])
                tasks["throughput"]["rllib_appo"] = rllib
                tasks["throughput"]["env_steps_per_s_ours_over_rllib"] = common.ratio(
                    ours["env_steps_per_s"], rllib["env_steps_per_s"])
                tasks["throughput"]["learner_updates_per_s_ours_over_rllib"] = common.ratio(
                    ours["learner_updates_per_s"], rllib["learner_updates_per_s"])
                tasks["throughput"]["goal"] = "env steps per second >= 5x RLlib's APPO"
        if "pendulum" in wanted:
            runs = [_run_ours("pendulum_appo", _ours(APPOConfig, PENDULUM_APPO, "Pendulum-v1", seed, eval_envs=10),
                              -300.0, budgets["pendulum"], seed) for seed in seeds[:args.pendulum_seeds]]
            tasks["pendulum_appo"] = {"target": -300.0, **common.summarize_runs(runs)}
        if "killed" in wanted:
            run = _run_killed(CARTPOLE_APPO, seeds[0], budgets["killed"], args.kill_every_s)
            tasks["cartpole_appo_killed_runners"] = {"target": 450.0, **common.summarize_runs([run]),
                                                     "kills": run["kills"],
                                                     "num_env_runner_restarts": run["num_env_runner_restarts"]}
    finally:
        common.stop_ray(ray_started)
    common.finish(report, result_name(args.tasks), args.out, started)
    return report


def result_name(task_names: list[str] | None) -> str:
    """``impala_appo`` for the full run, ``impala_appo_<tasks>`` for a run of some tasks (in ``TASKS``'
    order), so that rerunning one part does not overwrite the others' figures."""
    if not task_names or set(task_names) == set(TASKS):
        return NAME
    return "_".join([NAME, *(task for task in TASKS if task in task_names)])


if __name__ == "__main__":
    main()
