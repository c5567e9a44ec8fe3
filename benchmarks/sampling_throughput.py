"""Sampling throughput: env steps per second of our EnvRunners and RLlib's, CartPole-v1.

For each number of runners (0: sampling in the driver; 2: two Ray actors) and each
vector size (sub-envs per runner), both libraries build a PPO algorithm (build time
excluded), sample ``--warmup`` untimed rounds, then repeat timed rounds for about
``--seconds``. A round is ``steps_per_call`` env steps per runner, in parallel over the
runners, with the exploring module, the sampled data shipped back to the driver:

* ours: ``algo.env_runner_group.sample(num_timesteps=steps_per_call * max(1, n))``;
* RLlib: ``rllib_peer.rllib_sampling_throughput`` (``EnvRunner.sample`` on each runner
  through ``foreach_env_runner``, episodes returned, metrics reduced each call).

The two sides alternate window by window (``--repeats`` times) so that load from other
jobs hits both alike; figures are medians over repeats, and ``ratio`` is ours over
RLlib's (goal: >= 3 with the same number of runners).

    python benchmarks/sampling_throughput.py --quick
    python benchmarks/sampling_throughput.py --out
"""

from __future__ import annotations

import logging
import time
from typing import Any

try:  # python -m benchmarks.sampling_throughput, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/sampling_throughput.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import PPOConfig

logger = logging.getLogger("benchmarks.sampling_throughput")

NAME = "sampling_throughput"
ENV = "CartPole-v1"
MODEL = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}
GOAL = 3.0

MODES = {
    "full": {"seconds": 10.0, "repeats": 3, "num_envs": [1, 8], "runners": [0, 2]},
    "quick": {"seconds": 3.0, "repeats": 1, "num_envs": [1], "runners": [0, 2]},
}


def ours_sampling_throughput(num_env_runners: int, num_envs_per_env_runner: int, seconds: float,
                             steps_per_call: int = 1000, warmup_calls: int = 2, seed: int = 0) -> dict[str, Any]:
    """Our EnvRunnerGroup's env steps per second (build and warm-up excluded)."""
    per_round = steps_per_call * max(1, num_env_runners)
    config = (
        PPOConfig()
        .environment(ENV)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=num_envs_per_env_runner)
        .training(train_batch_size_per_learner=max(per_round, 128), minibatch_size=128)
        .rl_module(model_config=dict(MODEL))
        .debugging(seed=seed)
    )
    t_build = time.perf_counter()
    algo = config.build_algo()
    logger.info("ours: sampler built in %.2fs (num_env_runners=%d, num_envs=%d)", time.perf_counter() - t_build,
                num_env_runners, num_envs_per_env_runner)
    group = algo.env_runner_group
    try:
        for _ in range(warmup_calls):
            group.sample(num_timesteps=per_round)
        env_steps = 0
        t0 = time.perf_counter()
        while True:
            env_steps += sum(r.env_steps for r in group.sample(num_timesteps=per_round))
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
    finally:
        algo.stop()
    rate = env_steps / elapsed
    logger.info("ours: %d env steps in %.2fs = %.0f steps/s (num_env_runners=%d, num_envs=%d)", env_steps, elapsed,
                rate, num_env_runners, num_envs_per_env_runner)
    return {"env_steps_per_s": rate, "env_steps": env_steps, "seconds": elapsed}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="timed seconds per window (full 10, quick 3)")
    parser.add_argument("--repeats", type=int, help="windows per side and setting (full 3, quick 1)")
    parser.add_argument("--num-envs", type=int, nargs="+", help="sub-envs per runner to measure (full 1 8, quick 1)")
    parser.add_argument("--runners", type=int, nargs="+", help="numbers of runners to measure (default 0 2)")
    parser.add_argument("--steps-per-call", type=int, default=1000, help="env steps per runner per round")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    settings = dict(MODES[mode])
    for key in ("seconds", "repeats", "num_envs", "runners"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    use_rllib = not args.no_rllib
    if use_rllib and not rllib_peer.rllib_available():
        logger.warning("RLlib is not installed: skipping the peer (pip install 'ray[rllib]').")
        use_rllib = False

    ray_started = common.start_ray() if use_rllib or any(settings["runners"]) else False
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "env": ENV, "model": MODEL, "machine": common.machine_info(),
        "settings": {**settings, "steps_per_call": args.steps_per_call, "warmup_calls": 2},
        "protocol": "per window: build (excluded), 2 warm-up rounds, then rounds of steps_per_call env steps per "
                    "runner until `seconds` pass; exploring module, data shipped to the driver. Ours and RLlib's "
                    "windows alternate; env_steps_per_s is the median over repeats (min-max in the windows); "
                    "ratio = ours / RLlib.",
        "results": {},
    }
    started = time.perf_counter()
    try:
        for num_envs in settings["num_envs"]:
            for runners in settings["runners"]:
                key = f"runners_{runners}_envs_{num_envs}"
                ours, rllib = [], []
                for _ in range(settings["repeats"]):
                    load = common.log_load(f"ours {key}")
                    ours.append({**ours_sampling_throughput(runners, num_envs, settings["seconds"],
                                                            args.steps_per_call), "load_before": load})
                    if use_rllib:
                        load = common.log_load(f"rllib {key}")
                        rllib.append({**rllib_peer.rllib_sampling_throughput(
                            env_id=ENV, num_env_runners=runners, num_envs_per_env_runner=num_envs,
                            seconds=settings["seconds"], fcnet_hiddens=MODEL["fcnet_hiddens"],
                            steps_per_call=args.steps_per_call, warmup_calls=2, fetch_episodes=True,
                        ), "load_before": load})
                entry: dict[str, Any] = {
                    "num_env_runners": runners, "num_envs_per_env_runner": num_envs,
                    "ours_env_steps_per_s": common.median([r["env_steps_per_s"] for r in ours]),
                    "ours_windows": ours,
                }
                if use_rllib:
                    entry["rllib_env_steps_per_s"] = common.median([r["env_steps_per_s"] for r in rllib])
                    entry["rllib_windows"] = rllib
                    entry["ratio_ours_over_rllib"] = common.ratio(entry["ours_env_steps_per_s"],
                                                                  entry["rllib_env_steps_per_s"])
                    entry["goal_met"] = bool(entry["ratio_ours_over_rllib"] >= GOAL)
                    logger.info("%s: ours %.0f steps/s, RLlib %.0f steps/s, ratio %.2f", key,
                                entry["ours_env_steps_per_s"], entry["rllib_env_steps_per_s"],
                                entry["ratio_ours_over_rllib"])
                report["results"][key] = entry
        if use_rllib:
            ratios = {k: v["ratio_ours_over_rllib"] for k, v in report["results"].items()}
            report["ratios"] = {
                "env_steps_per_s_ours_over_rllib": ratios,
                "goal": f"ours / RLlib >= {GOAL:g} with the same number of runners (0 and 2)",
                "goal_met": all(v >= GOAL for v in ratios.values()),
            }
    finally:
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
