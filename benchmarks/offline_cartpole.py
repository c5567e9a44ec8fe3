"""Offline RL benchmark: BC and MARWIL on CartPole-v1 from recorded episodes, beside RLlib's BC.

Data, recorded once per run (seed 0, not one of the evaluated seeds), all through
``offline_data(output=)``:

* ``expert``: our PPO trained on CartPole-v1 to a greedy 450 (``ppo_learning``'s settings),
  saved, and ``EXPERT_EPISODES`` episodes sampled (explore=True) by a PPO that starts from that
  checkpoint (``rl_module(initial_weights_from=)``);
* ``random``: a uniform random player, about as many rows as the expert's;
* ``mixed``: both directories together (``input_=[expert, random]``);
* ``rllib_expert`` (with RLlib): RLlib's PPO trained to a greedy 450 in ``common.CONSECUTIVE``
  evaluations in a row (the same settings), and
  ``EXPERT_EPISODES`` episodes (explore=True) recorded by RLlib itself: a fresh RLlib PPO with
  ``offline_data(output=..., output_write_episodes=False)`` (its tabular format, obs packed
  by its default ``output_compress_columns``) that carries the trained module's weights.

Tasks, each for every seed: ``ITERATIONS`` training iterations of ``NUM_ITERS`` batches of
``BATCH`` rows, then the final policy's greedy evaluation (10 episodes); a task reaches its
target when that final evaluation does (no early stop, no best-of):

* ``bc_expert``: BC on the expert data, target 350;
* ``bc_mixed``: BC on the mixed data (the baseline MARWIL must beat);
* ``marwil_mixed``: MARWIL (beta 1) on the mixed data, target 250;
* ``bc_expert_rllib``: RLlib's BC on the same expert Parquet files, same settings, within a
  time budget per seed; a failure is recorded with its error;
* ``marwil_mixed_rllib``: RLlib's MARWIL (beta 1, vf_coeff 1) on the same mixed files, same
  settings and budget: with ``bc_expert_rllib``, the same-data, same-target wall-time ratios;
* ``bc_rllib_data``: our BC on what RLlib recorded (``rllib_expert``), target 350. With
  ``bc_expert_rllib`` this is the interoperability check: each library learns from the
  other's files in the same run.

    python benchmarks/offline_cartpole.py --quick     # smoke check, one seed, few iterations
    python benchmarks/offline_cartpole.py --out       # full, writes results/offline_cartpole.json
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

try:  # python -m benchmarks.offline_cartpole, from the repository root
    from benchmarks import common, ppo_learning, rllib_peer
except ImportError:  # python benchmarks/offline_cartpole.py: benchmarks/ is sys.path[0]
    import common
    import ppo_learning
    import rllib_peer

from marl_arena.algorithms import BCConfig, MARWILConfig, PPOConfig
from marl_arena.core import RLModuleSpec
from marl_arena.core.scripted import RandomModule
from marl_arena.offline import resolve_paths

logger = logging.getLogger("benchmarks.offline_cartpole")

NAME = "offline_cartpole"
DATA_SEED = 0
EXPERT_EPISODES = {"full": 20, "quick": 6}
EXPERT_TARGET = 450.0
EXPERT_BUDGET_S = 180.0
ITERATIONS = {"full": 10, "quick": 3}
SEEDS = {"full": [100, 101, 102], "quick": [100]}
RLLIB_BUDGET_S = {"full": 180.0, "quick": 90.0}
TARGETS = {"bc_expert": 350.0, "marwil_mixed": 250.0, "bc_rllib_data": 350.0}

# Both libraries, the same settings (RLlib's BC and MARWIL defaults differ: lr 1e-4, relu).
HPARAMS: dict[str, Any] = {"lr": 3e-3, "train_batch_size_per_learner": 500, "gamma": 0.99}
NUM_ITERS = 20
"""Batches (updates) per training iteration: ``dataset_num_iters_per_learner``."""
MODEL: dict[str, Any] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}
# Both libraries: the 7k-14k rows read once and kept in memory; streamed, every pass over so small
# a data set starts a new Ray Data execution, which costs more than the pass itself.
OFFLINE_DATA: dict[str, Any] = {"materialize_data": True}
# RLlib's reader maps batches with actors of 1 CPU each (2 by default), which on a 2-CPU
# Ray leaves no CPU for its read task: it waited forever here. One actor at half a CPU runs.
RLLIB_MAP_BATCHES = {"concurrency": 1, "num_cpus": 0.5}


# ---------------------------------------------------------------------- data
def _record_expert(directory: Path, episodes: int) -> dict[str, Any]:
    """Train our PPO to a greedy 450, then sample ``episodes`` episodes from it into ``directory``."""
    config = ppo_learning._ppo("CartPole-v1", ppo_learning.CARTPOLE_HPARAMS, ppo_learning.CARTPOLE_MODEL,
                               ppo_learning.CARTPOLE_RUNNERS, DATA_SEED)
    started = time.perf_counter()
    algo = config.build_algo()
    score, iterations = float("nan"), 0
    try:
        while time.perf_counter() - started < EXPERT_BUDGET_S:
            algo.train()
            iterations += 1
            score = algo.evaluate()["env_runners"]["episode_return_mean"]
            if score >= EXPERT_TARGET:
                break
        checkpoint = algo.save_to_path(tempfile.mkdtemp(prefix="offline_cartpole_ppo_"))
    finally:
        algo.stop()
    recorder = (config.copy().rl_module(initial_weights_from=checkpoint)
                .offline_data(output=str(directory)).build_algo())
    try:
        sampled = recorder.env_runner_group.local_runner.sample(num_episodes=episodes, explore=True)
    finally:
        recorder.stop()
        shutil.rmtree(checkpoint, ignore_errors=True)
    returns = [e.episode_return for e in sampled.episodes]
    return {"ppo_iterations": iterations, "ppo_greedy_return": score, "ppo_train_s": time.perf_counter() - started,
            "episodes": len(returns), "rows": int(sampled.env_steps), "return": common.spread(returns),
            "explore": True}


def _record_random(directory: Path, rows: int) -> dict[str, Any]:
    """About ``rows`` env steps of a uniform random player (only finished episodes are written)."""
    config = (PPOConfig().environment("CartPole-v1")
              .multi_agent(policies={"default_policy": RLModuleSpec(module_class=RandomModule)}, policies_to_train=[])
              .offline_data(output=str(directory)).debugging(seed=DATA_SEED))
    algo = config.build_algo()
    try:
        sampled = algo.env_runner_group.local_runner.sample(num_timesteps=rows)
    finally:
        algo.stop()
    returns = [e.episode_return for e in sampled.episodes]
    return {"episodes": len(returns), "rows": int(sum(e.length for e in sampled.episodes)),
            "return": common.spread(returns)}


def _record_rllib_expert(directory: Path, episodes: int, budget_s: float) -> dict[str, Any]:
    """RLlib's PPO trained to a greedy 450 (held ``common.CONSECUTIVE`` times), then ``episodes`` episodes
    recorded by RLlib into ``directory``."""
    import pyarrow.parquet as pq

    hp = ppo_learning.CARTPOLE_HPARAMS
    config = (rllib_peer._ppo_config("CartPole-v1", 0, 1, ppo_learning.CARTPOLE_MODEL["fcnet_hiddens"],
                                     ppo_learning.CARTPOLE_MODEL["fcnet_activation"], DATA_SEED,
                                     {"vf_share_layers": ppo_learning.CARTPOLE_MODEL["vf_share_layers"]})
              .training(**hp)
              .evaluation(evaluation_interval=rllib_peer._NEVER_AUTO_EVALUATE, evaluation_num_env_runners=0,
                          evaluation_duration=10, evaluation_config={"explore": False}))
    started = time.perf_counter()
    trained = config.build_algo()
    score, iterations = float("nan"), 0
    streak = common.Streak()  # RLlib's PPO explores more than ours at its first greedy 450: train on a little
    try:
        while time.perf_counter() - started < budget_s:
            trained.train()
            iterations += 1
            score = rllib_peer._episode_return_mean(trained.evaluate(), evaluation=True)
            if streak.add(score >= EXPERT_TARGET):
                break
        weights = trained.env_runner_group.local_env_runner.module.get_state()
    finally:
        trained.stop()
    # A fresh algorithm records: RLlib's recorder rewrites everything it sampled on every sample() call.
    recorder = config.copy().offline_data(output=str(directory), output_write_episodes=False).build_algo()
    try:
        runner = recorder.env_runner_group.local_env_runner
        runner.module.set_state(weights)
        sampled = runner.sample(num_episodes=episodes, explore=True)
    finally:
        recorder.stop()
    files = resolve_paths(str(directory))
    schema = pq.read_schema(files[0])
    returns = [float(e.get_return()) for e in sampled]
    return {"ppo_iterations": iterations, "ppo_greedy_return": score, "ppo_greedy_streak": streak.count,
            "ppo_train_s": time.perf_counter() - started,
            "episodes": len(returns), "rows": int(sum(pq.read_metadata(f).num_rows for f in files)),
            "files": len(files), "return": common.spread(returns), "explore": True,
            "columns": {field.name: str(field.type) for field in schema}}


# ---------------------------------------------------------------------- runs
def _ours(config_class, data: list[str], seed: int, iterations: int, **training) -> dict[str, Any]:
    config = (config_class().environment("CartPole-v1")
              .offline_data(input_=data, dataset_num_iters_per_learner=NUM_ITERS, **OFFLINE_DATA)
              .training(**HPARAMS, **training)
              .rl_module(model_config=dict(MODEL))
              .evaluation(evaluation_duration=10, evaluation_config={"explore": False})
              .debugging(seed=seed))
    return train_and_evaluate(config, seed, iterations)


def train_and_evaluate(config: Any, seed: int, iterations: int,
                       on_result: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Ours: build, train ``iterations`` iterations, evaluate the final policy greedily.

    ``on_result`` turns each iteration's result into a record kept in ``learner_curve``.
    """
    started = time.perf_counter()
    algo = config.build_algo()
    rows, curve = 0, []
    try:
        for _ in range(iterations):
            result = algo.train()
            rows += int(sum(m["num_module_steps_trained"] for m in result["learners"].values()))
            if on_result is not None:
                curve.append(on_result(result))
        train_s = time.perf_counter() - started
        final = float(algo.evaluate()["env_runners"]["episode_return_mean"])
    finally:
        algo.stop()
    run = {"seed": seed, "final_eval_return": final, "iterations": iterations, "rows_trained": rows,
           "train_s": train_s, "wall_s": time.perf_counter() - started}
    return {**run, "learner_curve": curve} if on_result is not None else run


def _rllib_offline(label: str, files: list[str], seed: int, iterations: int, budget_s: float,
                   **training) -> dict[str, Any]:
    """RLlib's BC or MARWIL on our files, the same settings."""
    from ray.rllib.algorithms.bc import BCConfig as RLlibBCConfig
    from ray.rllib.algorithms.marwil import MARWILConfig as RLlibMARWILConfig

    config_class = {"BC": RLlibBCConfig, "MARWIL": RLlibMARWILConfig}[label]
    config = (config_class().environment("CartPole-v1")
              .offline_data(input_=files, dataset_num_iters_per_learner=NUM_ITERS,
                            map_batches_kwargs=dict(RLLIB_MAP_BATCHES), **OFFLINE_DATA)
              .training(**HPARAMS, **training)
              .rl_module(model_config=dict(MODEL)))
    return rllib_train_and_evaluate(config, label, seed, iterations, budget_s, evaluate_unfinished=False)


def rllib_train_and_evaluate(config: Any, label: str, seed: int, iterations: int, budget_s: float, *,
                             evaluate_unfinished: bool) -> dict[str, Any]:
    """RLlib's side: train up to ``iterations`` iterations within ``budget_s`` (checked between them), then
    evaluate the final policy greedily (a run cut by the budget only if ``evaluate_unfinished``); a failure
    is recorded with its error, not hidden."""
    config = (config.env_runners(num_env_runners=0)
              # RLlib needs an evaluation interval (or explicit spaces) to know the env's spaces.
              .evaluation(evaluation_interval=10_000, evaluation_duration=10, evaluation_num_env_runners=0,
                          evaluation_config={"explore": False})
              .debugging(seed=seed))
    started = time.perf_counter()
    done = 0
    algo = None
    try:
        algo = config.build_algo()
        while done < iterations and time.perf_counter() - started < budget_s:
            algo.train()
            done += 1
        train_s = time.perf_counter() - started
        final = (float(algo.evaluate()["env_runners"]["episode_return_mean"])
                 if done == iterations or evaluate_unfinished else float("nan"))
    except Exception as error:  # noqa: BLE001 - recorded as the peer's result, not hidden
        logger.warning("RLlib %s seed %d failed: %r", label, seed, error)
        return {"seed": seed, "error": f"{type(error).__name__}: {error}"[:2000], "iterations": done,
                "wall_s": time.perf_counter() - started}
    finally:
        if algo is not None:
            algo.stop()
    return {"seed": seed, "final_eval_return": final, "iterations": done, "train_s": train_s,
            "wall_s": time.perf_counter() - started, "within_budget": done == iterations}


def summarize(runs: list[dict[str, Any]], target: float | None, goal: float | None = None) -> dict[str, Any]:
    """Final returns and wall times over seeds; how many seeds reached the target (and the goal)."""
    finals = [r.get("final_eval_return", float("nan")) for r in runs]
    reached = {} if goal is None else {"goal": goal, "goal_seeds": int(sum(f >= goal for f in finals))}
    return {
        "target": target,
        "reached_seeds": None if target is None else int(sum(f >= target for f in finals)),
        **reached,
        "seeds": len(runs),
        "final_eval_return": common.spread(finals),
        "wall_s": common.spread([r["wall_s"] for r in runs]),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    seeds = args.seeds or SEEDS[mode]
    iterations = ITERATIONS[mode]
    use_rllib = not args.no_rllib and rllib_peer.rllib_available()
    ray_started = common.start_ray()  # both libraries read through Ray Data
    workdir = Path(tempfile.mkdtemp(prefix="offline_cartpole_"))
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "protocol": f"{iterations} training iterations of {NUM_ITERS} batches of "
                    f"{HPARAMS['train_batch_size_per_learner']} rows each, then 10 greedy evaluation episodes of "
                    "the final policy; figures are medians with min-max over seeds; a target is reached on a seed "
                    "when that final evaluation is at it. wall_s: build, training and the evaluation.",
        "hyperparameters": {**HPARAMS, "dataset_num_iters_per_learner": NUM_ITERS, "model": MODEL,
                            "offline_data": OFFLINE_DATA,
                            "marwil": {"beta": 1.0, "vf_coeff": 1.0}},
    }
    started = time.perf_counter()
    try:
        expert, random_dir = workdir / "expert", workdir / "random"
        load = common.log_load("recording")
        data = {"expert": _record_expert(expert, EXPERT_EPISODES[mode])}
        data["random"] = _record_random(random_dir, data["expert"]["rows"])
        data["load_before"] = load
        report["data"] = data
        expert_files = resolve_paths(str(expert))
        mixed = [str(expert), str(random_dir)]
        task_specs = [("bc_expert", BCConfig, [str(expert)], {}), ("bc_mixed", BCConfig, mixed, {}),
                      ("marwil_mixed", MARWILConfig, mixed, {"beta": 1.0})]
        if use_rllib:
            rllib_dir = workdir / "rllib_expert"
            load = common.log_load("recording with RLlib")
            data["rllib_expert"] = {**_record_rllib_expert(rllib_dir, EXPERT_EPISODES[mode], EXPERT_BUDGET_S),
                                    "load_before": load}
            task_specs.append(("bc_rllib_data", BCConfig, [str(rllib_dir)], {}))
        tasks: dict[str, list] = {name: [] for name, *_ in task_specs}
        tasks["bc_expert_rllib"], tasks["marwil_mixed_rllib"] = [], []
        mixed_files = expert_files + resolve_paths(str(random_dir))
        for seed in seeds:
            for name, config_class, inputs, extra in task_specs:
                load = common.log_load(f"{name} seed {seed}")
                run = _ours(config_class, inputs, seed, iterations, **extra)
                logger.info("%s seed %d: final greedy return %.1f in %.1f s", name, seed, run["final_eval_return"],
                            run["wall_s"])
                tasks[name].append({**run, "load_before": load})
            if use_rllib:
                for name, label, files, extra in (("bc_expert_rllib", "BC", expert_files, {}),
                                                  ("marwil_mixed_rllib", "MARWIL", mixed_files,
                                                   {"beta": 1.0, "vf_coeff": 1.0})):
                    load = common.log_load(f"{name} seed {seed}")
                    run = _rllib_offline(label, files, seed, iterations, RLLIB_BUDGET_S[mode], **extra)
                    logger.info("%s seed %d: %s", name, seed, run)
                    tasks[name].append({**run, "load_before": load})
        report["tasks"] = {name: summarize(runs, TARGETS.get(name.removesuffix("_rllib")))
                           for name, runs in tasks.items() if runs}
        if use_rllib:
            report["wall_time_ratios"] = {
                name: common.ratio(report["tasks"][name]["wall_s"]["median"],
                                   report["tasks"][f"{name}_rllib"]["wall_s"]["median"])
                for name in ("bc_expert", "marwil_mixed")}
            report["tasks"]["bc_expert_rllib"]["settings"] = (
                "RLlib BCConfig on the same Parquet files (input_=their paths), same lr, batch, "
                f"dataset_num_iters_per_learner, model; map_batches_kwargs={RLLIB_MAP_BATCHES} (see RLLIB_MAP_BATCHES); "
                f"time budget {RLLIB_BUDGET_S[mode]:.0f} s per seed")
            report["interoperability"] = {
                "rllib_bc_on_our_files_reached_seeds": report["tasks"]["bc_expert_rllib"]["reached_seeds"],
                "our_bc_on_rllib_files_reached_seeds": report["tasks"]["bc_rllib_data"]["reached_seeds"],
                "seeds": len(seeds), "target": TARGETS["bc_rllib_data"]}
        bc_mixed = report["tasks"]["bc_mixed"]["final_eval_return"]["median"]
        marwil = report["tasks"]["marwil_mixed"]["final_eval_return"]["median"]
        report["marwil_over_bc_on_mixed"] = common.ratio(marwil, bc_mixed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
