"""PPO learning CartPole from two external simulators that connect over TCP.

The driver runs the PPO server (``TcpServerEnvRunner`` on a loopback port); two client
processes step their own CartPole-v1 with ``marl_arena.external.Client`` (ONNX inference
in the client by default, ``--inference server`` to ask the server for every action) and
send finished episodes back. Training stops at a smoothed return of 450 or after
``--max-s`` seconds; the last line printed is JSON with what was reached.

    python examples/cartpole_external_tcp.py            # external clients
    python examples/cartpole_external_tcp.py --local    # the same PPO with an in-process runner
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time

import gymnasium as gym

from marl_arena.external import Client

TARGET_RETURN = 450.0


def run_client(port: int, inference: str, seed: int) -> None:
    """A simulator process: play CartPole episodes until the server goes away."""
    client = Client(port=port, inference=inference, seed=seed, name=f"cartpole-{seed}", max_reconnect_s=5)
    env = gym.make("CartPole-v1")
    episode = 0
    try:
        while True:
            client.run_episode(env, seed=seed * 100_000 + episode)
            episode += 1
    except ConnectionError:
        pass  # training finished and the server stopped


def ppo_config(local: bool, max_weights_lag: int = 1):
    """The server's PPO config (imported here: client processes need no torch)."""
    from marl_arena.algorithms import PPOConfig
    from marl_arena.external import TcpServerEnvRunner

    env = gym.make("CartPole-v1")
    config = (
        PPOConfig()
        .training(train_batch_size_per_learner=2000, minibatch_size=256, num_epochs=10, lr=3e-4,
                  entropy_coeff=0.0)
        .rl_module(model_config={"fcnet_hiddens": [64, 64]})
        .reporting(metrics_num_episodes_for_smoothing=20)
        .debugging(seed=0)
    )
    if local:
        return config.environment("CartPole-v1")
    # The token reaches the clients through $MARL_ARENA_TOKEN, which they inherit. Clients play
    # while PPO updates; those episodes (one update old) make the next batch.
    return (config.environment(observation_space=env.observation_space, action_space=env.action_space,
                               env_config={"max_weights_lag": max_weights_lag})
            .env_runners(env_runner_cls=TcpServerEnvRunner, sample_timeout_s=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="sample in-process instead (for comparison)")
    parser.add_argument("--inference", choices=("local", "server"), default="local")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--max-s", type=float, default=240.0)
    parser.add_argument("--max-weights-lag", type=int, default=1,
                        help="server: drop episodes played with weights this many updates older")
    parser.add_argument("--client", nargs=2, metavar=("PORT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        run_client(int(args.client[0]), args.inference, int(args.client[1]))
        return
    os.environ.setdefault("MARL_ARENA_TOKEN", secrets.token_hex(16))
    start = time.perf_counter()
    algo = ppo_config(args.local, args.max_weights_lag).build_algo()
    children = []
    if not args.local:
        port = algo.env_runner_group.local_runner.port
        children = [subprocess.Popen([sys.executable, __file__, "--inference", args.inference,
                                      "--client", str(port), str(seed)]) for seed in range(args.clients)]
    result: dict = {}
    try:
        while time.perf_counter() - start < args.max_s:
            result = algo.train()
            runners = result["env_runners"]
            print(f"iteration {result['training_iteration']}: return {runners.get('episode_return_mean', float('nan')):.1f}"
                  f", {result['num_env_steps_sampled_lifetime']} env steps, {time.perf_counter() - start:.0f} s",
                  flush=True)
            if runners.get("episode_return_mean", 0.0) >= TARGET_RETURN:
                break
    finally:
        algo.stop()
        for child in children:
            child.wait(timeout=30)
    print(json.dumps({
        "mode": "local runner" if args.local else f"{args.clients} external TCP clients ({args.inference} inference)",
        "episode_return_mean": result["env_runners"].get("episode_return_mean"),
        "reached_target": result["env_runners"].get("episode_return_mean", 0.0) >= TARGET_RETURN,
        "env_steps": result["num_env_steps_sampled_lifetime"],
        "iterations": result["training_iteration"],
        "wall_s": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    main()
