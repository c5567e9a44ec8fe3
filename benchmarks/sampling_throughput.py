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

``selfplay_phases`` (ours only, skipped with ``--no-selfplay``) profiles where a sampling
step goes in self-play on OpenSpiel connect_four (one module on both seats, a [256, 256]
MLP, a local runner with 1 and with 8 sub-envs): per env step, the env's own step, its
observation and legal-mask encoding, our observation pipeline, the module's forward pass,
action sampling, and the runner's and episodes' bookkeeping (the rest). Phases are timed
in CPU seconds of the process (``time.process_time``), which other jobs on a busy machine
distort less than wall time; the timers' own cost lands in the phases they wrap.

    python benchmarks/sampling_throughput.py --quick
    python benchmarks/sampling_throughput.py --out
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from typing import Any, Callable, Iterator

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


SELFPLAY_GAME = "open_spiel:connect_four"
SELFPLAY_MODEL = {"fcnet_hiddens": [256, 256], "vf_share_layers": True}
SELFPLAY_STEPS = 4000
"""Env steps per timed ``sample`` call of the self-play profile (PPO's train batch in ``ppo_speed``)."""


@contextlib.contextmanager
def phase_timers(totals: dict[str, float]) -> Iterator[None]:
    """Wrap the functions of each sampling phase so that their CPU seconds add up in ``totals``."""
    from marl_arena.core.actor_critic import ActorCriticModule
    from marl_arena.runners import env_runner, observation_pipeline
    from marl_arena_envs.openspiel import env as openspiel_env, observations

    targets = [
        (openspiel_env.OpenSpielEnv, "step", "env_step"),
        (observations.ObservationEncoder, "encode", "env_obs_and_mask_encoding"),
        (observation_pipeline.ObservationPipeline, "process", "runner_obs_pipeline"),
        (ActorCriticModule, "forward_exploration", "forward"),
        (env_runner, "sample_categorical", "action_sampling"),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]

    def timed(function: Callable, phase: str) -> Callable:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                totals[phase] = totals.get(phase, 0.0) + time.process_time() - start
        return wrapper

    try:
        for (owner, name, phase), (_, _, function) in zip(targets, originals):
            setattr(owner, name, timed(function, phase))
        yield
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)


def selfplay_phases(num_envs: int, calls: int, seed: int = 0) -> dict[str, Any]:
    """Microseconds of CPU per env step by phase, for a local runner sampling connect_four self-play."""
    config = (
        PPOConfig()
        .environment(SELFPLAY_GAME)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs)
        .training(train_batch_size_per_learner=SELFPLAY_STEPS, minibatch_size=128)
        .rl_module(model_config=dict(SELFPLAY_MODEL))
        .multi_agent(policies=["main"], policy_mapping_fn=lambda agent_id, *args, **kwargs: "main")
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    runner = algo.env_runner_group.local_runner
    try:
        runner.sample(num_timesteps=SELFPLAY_STEPS)  # warm-up
        untimed = []
        for _ in range(calls):
            start = time.process_time()
            runner.sample(num_timesteps=SELFPLAY_STEPS)
            untimed.append(time.process_time() - start)
        totals: dict[str, float] = {}
        with phase_timers(totals):
            start = time.process_time()
            for _ in range(calls):
                runner.sample(num_timesteps=SELFPLAY_STEPS)
            timed_total = time.process_time() - start
    finally:
        algo.stop()
    steps = calls * SELFPLAY_STEPS
    us = {phase: 1e6 * seconds / steps for phase, seconds in totals.items()}
    us["env_step"] -= us["env_obs_and_mask_encoding"]  # encoding runs inside the env's step
    us["bookkeeping"] = 1e6 * timed_total / steps - sum(us.values())
    entry = {
        "num_envs_per_env_runner": num_envs, "env_steps": steps,
        "cpu_env_steps_per_s_untimed": common.median([SELFPLAY_STEPS / s for s in untimed]),
        "cpu_us_per_env_step_with_timers": 1e6 * timed_total / steps,
        "cpu_us_per_env_step_by_phase": us,
        "share_by_phase": {phase: value / (1e6 * timed_total / steps) for phase, value in us.items()},
    }
    logger.info("self-play phases, %d envs: %s", num_envs, {k: round(v, 1) for k, v in us.items()})
    return entry


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="timed seconds per window (full 10, quick 3)")
    parser.add_argument("--repeats", type=int, help="windows per side and setting (full 3, quick 1)")
    parser.add_argument("--num-envs", type=int, nargs="+", help="sub-envs per runner to measure (full 1 8, quick 1)")
    parser.add_argument("--runners", type=int, nargs="+", help="numbers of runners to measure (default 0 2)")
    parser.add_argument("--steps-per-call", type=int, default=1000, help="env steps per runner per round")
    parser.add_argument("--no-selfplay", action="store_true", help="skip the connect_four self-play phase profile")
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
        if not args.no_selfplay:
            calls = 1 if args.quick else 5
            phases = report["selfplay_phases"] = {
                "game": SELFPLAY_GAME, "model": SELFPLAY_MODEL, "steps_per_call": SELFPLAY_STEPS, "calls": calls,
                "clock": "process CPU time (time.process_time)", "results": {},
            }
            for num_envs in (1, 8):
                load = common.log_load(f"self-play phases, {num_envs} envs")
                phases["results"][f"envs_{num_envs}"] = {**selfplay_phases(num_envs, calls), "load_before": load}
    finally:
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
