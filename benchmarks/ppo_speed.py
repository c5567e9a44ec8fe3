"""PPO speed against RLlib under RLlib's own tuned CartPole settings, side by side.

Both libraries run the same settings (``TRAINING``, ``MODEL``, ``RUNNERS``): RLlib's tuned CartPole example
(lr 3e-4, 6 epochs, vf_loss_coeff 0.01, one remote env runner) with everything else at
RLlib 2.60's ``PPOConfig`` and ``DefaultModelConfig`` defaults, which marl_arena's
defaults do not all share, so every field is set explicitly on both sides.

Protocol (the same on both sides, ``common.train_to_target`` and
``rllib_peer.rllib_ppo_to_target``): after every training iteration, ``algo.evaluate()``
runs 10 greedy episodes in the driver; reached when their mean is >= 450 in
``common.CONSECUTIVE`` evaluations in a row, counted at the last. A greedy evaluation is
used rather than RLlib's stop criterion (the training ``episode_return_mean``) because the
two libraries smooth their training return differently (see ``ppo_learning.py``), so the
same threshold would not mean the same thing on both sides.

Each run (``--runs``) trains ours, then RLlib's, on one seed; the report gives medians over
the runs with min-max spreads of wall seconds (build, training and evaluations to the
target), train seconds (the same less evaluations), env steps, and seconds per training
iteration. ``breakdown_s`` splits our median iteration into sampling (the runner's rollout
and its transfer), weight sync, GAE (the value forward over the batch and the advantage
recursion), minibatch updates, and the rest (batch tensors, metrics, result building).

With ``--selfplay`` it also measures self-play throughput on OpenSpiel connect_four
(``SELFPLAY``): one module plays both seats, train batch 4000, one remote env runner;
env steps per second over ``SELFPLAY_TIMED_ITERATIONS`` iterations after the first (which
builds and warms up), ours and RLlib's PPO through RLlib's ``OpenSpielEnv`` wrapper with the
same settings. Only throughput: no learning target. (RLlib's wrapper has no action mask: an
illegal move raises in OpenSpiel, and the wrapper logs it and plays a random legal move.)

With ``--overlap`` our side runs once more with ``overlap_sampling=True`` (the runner samples
the next batch during the update): not RLlib's algorithm, since each batch then comes from
the weights before the previous update, so it is reported beside the comparison, not in it
(the CartPole runs, and with ``--selfplay`` the self-play throughput as ``ours_overlapped``).

    python benchmarks/ppo_speed.py --quick                               # one run, smoke check
    python benchmarks/ppo_speed.py --runs 5 --selfplay --overlap --out   # protocols 1 and 2

Seeds 100-104 by default; settings and semantics were compared on seeds 0-4.
"""

from __future__ import annotations

import logging
import time
from typing import Any

try:  # python -m benchmarks.ppo_speed, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/ppo_speed.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import PPOConfig

logger = logging.getLogger("benchmarks.ppo_speed")

NAME = "ppo_speed"
ENV = "CartPole-v1"
TARGET = 450.0
EVAL_EPISODES = 10

# RLlib's tuned CartPole example's three settings, and RLlib 2.60's defaults for the rest.
TRAINING: dict[str, Any] = {
    "lr": 3e-4, "num_epochs": 6, "vf_loss_coeff": 0.01,
    "train_batch_size_per_learner": 4000, "minibatch_size": 128, "gamma": 0.99, "lambda_": 1.0,
    "clip_param": 0.3, "vf_clip_param": 10.0, "entropy_coeff": 0.0, "use_kl_loss": True, "kl_coeff": 0.2,
    "kl_target": 0.01, "grad_clip": None,
}
MODEL: dict[str, Any] = {"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh", "vf_share_layers": True}
RUNNERS: dict[str, Any] = {"num_env_runners": 1, "num_envs_per_env_runner": 1}

BUDGET_S = {"full": {"ours": 180, "rllib": 480}, "quick": {"ours": 60, "rllib": 120}}
FIRST_SEED = 100  # fresh: the semantics were compared on seeds 0-4

GAME = "connect_four"
SELFPLAY: dict[str, Any] = {"train_batch_size_per_learner": 4000, "minibatch_size": 128, "num_epochs": 5,
                            "lr": 3e-4}
SELFPLAY_TIMED_ITERATIONS = 3


def ours_config(seed: int, training: dict[str, Any] | None = None, model: dict[str, Any] | None = None) -> PPOConfig:
    """Our PPO with ``TRAINING``, ``MODEL`` and ``RUNNERS`` (``training``/``model`` override fields)."""
    return (
        PPOConfig()
        .environment(ENV)
        .env_runners(**RUNNERS)
        .learners(num_learners=0)
        .training(**{**TRAINING, **(training or {})})
        .rl_module(model_config={**MODEL, **(model or {})})
        .evaluation(evaluation_duration=EVAL_EPISODES, evaluation_duration_unit="episodes",
                    evaluation_num_env_runners=0, evaluation_config={"explore": False})
        .debugging(seed=seed)
    )


def run_ours(seed: int, budget_s: float, training: dict[str, Any] | None = None) -> dict[str, Any]:
    load = common.log_load(f"ours seed {seed}")
    run = common.train_to_target(ours_config(seed, training), target=TARGET, time_budget_s=budget_s,
                                 label=f"ours seed {seed}", consecutive=common.CONSECUTIVE)
    return {"seed": seed, **run, "s_per_iteration": _s_per_iteration(run), "breakdown_s": breakdown(run),
            "load_before": load}


def run_rllib(seed: int, budget_s: float) -> dict[str, Any]:
    load = common.log_load(f"rllib seed {seed}")
    t = TRAINING
    run = rllib_peer.rllib_ppo_to_target(
        env_id=ENV, target_return=TARGET, seed=seed, time_budget_s=budget_s,
        num_env_runners=RUNNERS["num_env_runners"], num_envs_per_env_runner=RUNNERS["num_envs_per_env_runner"],
        train_batch_size=t["train_batch_size_per_learner"], minibatch_size=t["minibatch_size"],
        num_epochs=t["num_epochs"], lr=t["lr"], gamma=t["gamma"], lambda_=t["lambda_"], clip_param=t["clip_param"],
        vf_loss_coeff=t["vf_loss_coeff"], entropy_coeff=t["entropy_coeff"],
        fcnet_hiddens=MODEL["fcnet_hiddens"], fcnet_activation=MODEL["fcnet_activation"],
        evaluation_episodes=EVAL_EPISODES, evaluation_trigger_return=-float("inf"),
        training_overrides={k: t[k] for k in ("vf_clip_param", "use_kl_loss", "kl_coeff", "kl_target", "grad_clip")},
        model_overrides={"vf_share_layers": MODEL["vf_share_layers"]}, consecutive=common.CONSECUTIVE,
    )
    return {"seed": seed, **run, "s_per_iteration": _s_per_iteration(run), "load_before": load}


def _throughput(train: Any, lifetime_steps: Any) -> dict[str, Any]:
    """Env steps per second of ``SELFPLAY_TIMED_ITERATIONS`` ``train()`` calls after a first, untimed one."""
    first = lifetime_steps(train())
    start = time.perf_counter()
    for _ in range(SELFPLAY_TIMED_ITERATIONS):
        last = lifetime_steps(train())
    seconds = time.perf_counter() - start
    return {"env_steps": last - first, "seconds": seconds, "iterations": SELFPLAY_TIMED_ITERATIONS,
            "env_steps_per_s": (last - first) / seconds}


def selfplay_ours(seed: int, training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Our PPO, one module on both seats of connect_four, ``SELFPLAY`` settings (``training`` overrides fields)."""
    load = common.log_load("ours self-play" + (f" {training}" if training else ""))
    config = (PPOConfig().environment(f"open_spiel:{GAME}").env_runners(**RUNNERS).learners(num_learners=0)
              .training(**{**SELFPLAY, **(training or {})})
              .rl_module(model_config={k: MODEL[k] for k in ("fcnet_hiddens", "vf_share_layers")})
              .multi_agent(policies=["main"], policy_mapping_fn=lambda agent_id, *args, **kwargs: "main")
              .debugging(seed=seed))
    algo = config.build_algo()
    try:
        return {**_throughput(algo.train, lambda r: int(r["num_env_steps_sampled_lifetime"])), "load_before": load}
    finally:
        algo.stop()


def selfplay_rllib(seed: int) -> dict[str, Any]:
    """RLlib's PPO through its OpenSpielEnv wrapper, one module on both seats, the same settings."""
    import pyspiel
    from ray.rllib.algorithms.ppo import PPOConfig as RLlibPPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.env.wrappers.open_spiel import OpenSpielEnv
    from ray.tune.registry import register_env

    load = common.log_load("rllib self-play")
    register_env("rllib_connect_four", lambda _: OpenSpielEnv(pyspiel.load_game(GAME)))
    # A long sample timeout: on a loaded machine RLlib would otherwise drop a slow batch and count no steps for it.
    config = (RLlibPPOConfig().environment("rllib_connect_four").env_runners(**RUNNERS, sample_timeout_s=600)
              .learners(num_learners=0)
              .multi_agent(policies={"main"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "main")
              .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=MODEL["fcnet_hiddens"],
                                                         vf_share_layers=MODEL["vf_share_layers"]))
              .training(**SELFPLAY).debugging(seed=seed))
    algo = config.build_algo()
    try:
        return {**_throughput(algo.train, rllib_peer._lifetime_env_steps), "load_before": load}
    finally:
        algo.stop()


def _s_per_iteration(run: dict[str, Any]) -> float:
    """Training seconds per iteration, build and evaluations left out."""
    return (run["train_s"] - run["build_s"]) / run["iterations"] if run["iterations"] else float("nan")


def breakdown(run: dict[str, Any]) -> dict[str, float]:
    """Our median iteration split into its phases (medians of each timer over the iterations)."""
    timers = run["median_iteration_timers_s"]
    parts = {
        "sampling": timers.get("env_runner_sampling_timer", 0.0),
        "weight_sync": timers.get("synch_weights", 0.0),
        "gae": timers.get("learner_prepare_batch", 0.0),
        "minibatch_updates": timers.get("learner_minibatch_updates", 0.0),
    }
    parts["learner_other"] = max(0.0, timers.get("learner_update_timer", 0.0) - parts["gae"] - parts["minibatch_updates"])
    iteration = timers.get("time_this_iter_s", float("nan"))
    parts["metrics_and_other"] = max(0.0, iteration - sum(parts.values()))
    parts["iteration"] = iteration
    return parts


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its runs; ours also the median of each phase of an iteration."""
    task = {"target": TARGET, **common.summarize_runs(runs),
            "s_per_iteration": common.spread([r["s_per_iteration"] for r in runs])}
    if "breakdown_s" in runs[0]:
        task["breakdown_s"] = {key: common.median([r["breakdown_s"][key] for r in runs]) for key in runs[0]["breakdown_s"]}
    return task


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs, one seed each (default 5, quick 1)")
    parser.add_argument("--selfplay", action="store_true",
                        help="also measure connect_four self-play throughput (protocol 2)")
    parser.add_argument("--overlap", action="store_true",
                        help="also run ours with overlap_sampling=True (after the side-by-side runs)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED, help="seeds first-seed .. first-seed+runs-1")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    runs = args.runs or (1 if args.quick else 5)
    if runs < 1:
        parser.error(f"--runs must be at least 1, got {runs}")
    seeds = list(range(args.first_seed, args.first_seed + runs))
    use_rllib = not args.no_rllib and rllib_peer.rllib_available()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "settings": {"training": TRAINING, "model": MODEL, "runners": RUNNERS, "env": ENV},
        "protocol": f"after every training iteration algo.evaluate() runs {EVAL_EPISODES} greedy episodes in the "
                    f"driver; reached when their mean is >= {TARGET:g} in {common.CONSECUTIVE} evaluations in a row, "
                    "counted at the last; each run trains ours then RLlib's on one seed; medians over runs",
    }
    ray_started = common.start_ray()  # both sides use a remote runner
    ours_runs, rllib_runs, overlapped = [], [], []
    try:
        for seed in seeds:
            ours_runs.append(run_ours(seed, BUDGET_S[mode]["ours"]))
            if use_rllib:
                rllib_runs.append(run_rllib(seed, BUDGET_S[mode]["rllib"]))
        if args.selfplay:
            report["selfplay"] = {"game": GAME, "settings": {**SELFPLAY, "model": MODEL["fcnet_hiddens"],
                                                             "vf_share_layers": MODEL["vf_share_layers"], **RUNNERS,
                                                             "modules": "one module on both seats"},
                                  "ours": selfplay_ours(seeds[0])}
            if use_rllib:
                report["selfplay"]["rllib"] = selfplay_rllib(seeds[0])
                report["selfplay"]["env_steps_per_s_ours_over_rllib"] = common.ratio(
                    report["selfplay"]["ours"]["env_steps_per_s"], report["selfplay"]["rllib"]["env_steps_per_s"])
        if args.overlap:  # ours with overlapped sampling: not RLlib's algorithm (one iteration of policy lag)
            overlapped = [run_ours(seed, BUDGET_S[mode]["ours"], {"overlap_sampling": True}) for seed in seeds]
            if args.selfplay:
                report["selfplay"]["ours_overlapped"] = selfplay_ours(seeds[0], {"overlap_sampling": True})
    finally:
        common.stop_ray(ray_started)
    tasks = report["tasks"] = {"cartpole": summary(ours_runs)}
    if rllib_runs:
        tasks["cartpole_rllib"] = summary(rllib_runs)
        ours, rllib = tasks["cartpole"], tasks["cartpole_rllib"]
        report["ratios"] = {
            **common.peer_ratios(ours, rllib),
            "train_s_ours_over_rllib": common.ratio(ours["train_s"], rllib["train_s"]),
            "s_per_iteration_ours_over_rllib": common.ratio(ours["s_per_iteration"]["median"],
                                                            rllib["s_per_iteration"]["median"]),
            "wall_s_ours_over_rllib_per_run": [common.ratio(o["wall_s"], r["wall_s"])
                                               for o, r in zip(ours_runs, rllib_runs)],
            "goal": "wall_s_ours_over_rllib <= 0.25 and env steps <= RLlib's median, both reaching the target",
            "goal_met": bool(ours["reached"] and rllib["reached"]
                             and common.ratio(ours["wall_s"], rllib["wall_s"]) <= 0.25
                             and ours["env_steps"] <= rllib["env_steps"]),
        }
    if overlapped:
        tasks["cartpole_overlapped"] = summary(overlapped)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
