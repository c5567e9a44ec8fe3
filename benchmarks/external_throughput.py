"""External-simulator throughput: env steps per second over loopback TCP against in-process sampling.

CartPole-v1, PPO's default MLP (64x64 tanh), exploring. Two sides, measured in turns in
one run (``--repeats`` windows each, alternating, so load from other jobs hits both alike):

* in process: our local ``EnvRunner`` (``num_env_runners=0``) with as many sub-envs as the
  external side has clients, ``sample(num_timesteps=steps_per_call)`` in a loop;
* external: a ``TcpServerEnvRunner`` in this process and ``N`` client processes
  (``marl_arena.external.Client``, local ONNX inference) stepping their own CartPole and
  sending finished episodes; the server's ``sample(num_timesteps=steps_per_call)`` in a
  loop. A step counts when the server hands it out as a training sample.

Build, client start-up and ``--warmup`` rounds are excluded. ``ratio`` is external over in
process (goal: >= 0.5 with 1 and with 4 clients). The machine's core count bounds the
external side (each client is a process), so the report records it and the load.

    python benchmarks/external_throughput.py --quick
    python benchmarks/external_throughput.py --out
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
from typing import Any, Callable

try:  # python -m benchmarks.external_throughput, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/external_throughput.py: benchmarks/ is sys.path[0]
    import common

logger = logging.getLogger("benchmarks.external_throughput")

NAME = "external_throughput"
ENV = "CartPole-v1"
MODEL = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh"}
GOAL = 0.5

MODES = {
    "full": {"seconds": 10.0, "repeats": 3, "clients": [1, 4]},
    "quick": {"seconds": 3.0, "repeats": 1, "clients": [1, 4]},
}


def run_client(port: int, seed: int) -> None:
    """A simulator process: CartPole episodes with local ONNX inference until the server goes away."""
    import gymnasium as gym

    from marl_arena.external import Client

    client = Client(port=port, inference="local", seed=seed, name=f"bench-{seed}", max_reconnect_s=2)
    env = gym.make(ENV)
    episode = 0
    try:
        while True:
            client.run_episode(env, seed=seed * 1_000_000 + episode)
            episode += 1
    except ConnectionError:
        pass  # the window ended and the server stopped


def _config(num_envs: int, seed: int, external: bool):
    import gymnasium as gym

    from marl_arena.algorithms import PPOConfig
    from marl_arena.external import TcpServerEnvRunner

    config = (PPOConfig().rl_module(model_config=dict(MODEL)).debugging(seed=seed)
              .training(train_batch_size_per_learner=1000, minibatch_size=128))
    if not external:
        return config.environment(ENV).env_runners(num_envs_per_env_runner=num_envs)
    env = gym.make(ENV)
    return (config.environment(observation_space=env.observation_space, action_space=env.action_space)
            .env_runners(env_runner_cls=TcpServerEnvRunner, sample_timeout_s=60))


def _timed(sample: Callable[[], int], seconds: float, warmup_calls: int) -> dict[str, Any]:
    for _ in range(warmup_calls):
        sample()
    env_steps, start = 0, time.perf_counter()
    while True:
        env_steps += sample()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return {"env_steps_per_s": env_steps / elapsed, "env_steps": env_steps, "seconds": elapsed}


def in_process_window(num_envs: int, seconds: float, steps_per_call: int, warmup_calls: int,
                      seed: int) -> dict[str, Any]:
    algo = _config(num_envs, seed, external=False).build_algo()
    runner = algo.env_runner_group.local_runner
    try:
        return _timed(lambda: runner.sample(num_timesteps=steps_per_call).env_steps, seconds, warmup_calls)
    finally:
        algo.stop()


def external_window(num_clients: int, seconds: float, steps_per_call: int, warmup_calls: int,
                    seed: int) -> dict[str, Any]:
    algo = _config(1, seed, external=True).build_algo()
    runner = algo.env_runner_group.local_runner
    clients = [subprocess.Popen([sys.executable, __file__, "--client", str(runner.port), str(seed * 100 + k)])
               for k in range(num_clients)]
    try:
        figures = _timed(lambda: runner.sample(num_timesteps=steps_per_call).env_steps, seconds, warmup_calls)
        figures["num_clients_connected"] = runner.num_clients
        return figures
    finally:
        algo.stop()  # the clients see the server go and exit
        for client in clients:
            try:
                client.wait(timeout=30)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--client"]:
        run_client(int(argv[1]), int(argv[2]))
        return {}
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="timed seconds per window (full 10, quick 3)")
    parser.add_argument("--repeats", type=int, help="windows per side and setting (full 3, quick 1)")
    parser.add_argument("--clients", type=int, nargs="+", help="numbers of client processes (default 1 4)")
    parser.add_argument("--steps-per-call", type=int, default=1000, help="env steps per sample() call")
    parser.add_argument("--warmup", type=int, default=2, help="untimed sample() calls per window")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    os.environ.setdefault("MARL_ARENA_TOKEN", secrets.token_hex(16))  # the clients inherit it
    mode = "quick" if args.quick else "full"
    settings = dict(MODES[mode])
    for key in ("seconds", "repeats", "clients"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "env": ENV, "model": MODEL, "machine": common.machine_info(),
        "settings": {**settings, "steps_per_call": args.steps_per_call, "warmup_calls": args.warmup,
                     "seed": args.seed},
        "protocol": "per window: build and client start excluded, `warmup_calls` untimed sample() calls, then "
                    "sample(num_timesteps=steps_per_call) until `seconds` pass. In process: local EnvRunner with "
                    "as many sub-envs as clients. External: TcpServerEnvRunner in the driver, N client processes "
                    "with local ONNX inference over loopback TCP. Windows alternate; env_steps_per_s is the median "
                    "over repeats; ratio = external / in process.",
        "results": {},
    }
    started = time.perf_counter()
    for clients in settings["clients"]:
        key = f"clients_{clients}"
        local, external = [], []
        for _ in range(settings["repeats"]):
            load = common.log_load(f"in process, {clients} sub-env(s)")
            local.append({**in_process_window(clients, settings["seconds"], args.steps_per_call, args.warmup,
                                              args.seed), "load_before": load})
            load = common.log_load(f"external, {clients} client(s)")
            external.append({**external_window(clients, settings["seconds"], args.steps_per_call, args.warmup,
                                               args.seed), "load_before": load})
            logger.info("%s: in process %.0f steps/s, external %.0f steps/s", key, local[-1]["env_steps_per_s"],
                        external[-1]["env_steps_per_s"])
        entry = {
            "num_clients": clients,
            "in_process_env_steps_per_s": common.median([w["env_steps_per_s"] for w in local]),
            "external_env_steps_per_s": common.median([w["env_steps_per_s"] for w in external]),
            "in_process_windows": local,
            "external_windows": external,
        }
        entry["ratio_external_over_in_process"] = common.ratio(entry["external_env_steps_per_s"],
                                                               entry["in_process_env_steps_per_s"])
        entry["goal_met"] = bool(entry["ratio_external_over_in_process"] >= GOAL)
        report["results"][key] = entry
    ratios = {k: v["ratio_external_over_in_process"] for k, v in report["results"].items()}
    report["ratios"] = {"external_over_in_process": ratios,
                        "goal": f"external / in process >= {GOAL:g} with 1 and with 4 clients",
                        "goal_met": all(v >= GOAL for v in ratios.values())}
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
