"""The ``marl-arena`` command line: train an algorithm, evaluate a checkpoint."""

from __future__ import annotations

import argparse
import json
import logging
import math
import pathlib
import sys
from typing import Any, Sequence

from tqdm import tqdm

from marl_arena.algorithms.algorithm import Algorithm
from marl_arena.algorithms.registry import ALGORITHM_CONFIGS, config_for

logger = logging.getLogger("marl_arena.cli")


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON where they parse as JSON, else strings."""
    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--config expects key=value, got {pair!r}.")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def _build_config(args: argparse.Namespace):
    config = config_for(args.algo).environment(args.env, env_config=_parse_overrides(args.env_config))
    config.env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=args.num_envs_per_env_runner)
    config.debugging(seed=args.seed)
    if args.fcnet_hiddens:
        config.rl_module(model_config={"fcnet_hiddens": args.fcnet_hiddens})
    for key, value in _parse_overrides(args.config).items():
        if not hasattr(config, key):
            raise SystemExit(f"--config {key}=...: {type(config).__name__} has no field {key!r}.")
        setattr(config, key, value)
    return config


def _summary(result: dict[str, Any]) -> str:
    runners = result["env_runners"]
    line = (
        f"iter {result['training_iteration']:4d}  return {runners['episode_return_mean']:9.2f}  "
        f"len {runners['episode_len_mean']:7.1f}  steps {result['num_env_steps_sampled_lifetime']:>9,d}  "
        f"{result['env_steps_per_s']:8.0f} steps/s  {result['time_this_iter_s']:5.2f}s"
    )
    if "evaluation" in result:
        line += f"  eval {result['evaluation']['env_runners']['episode_return_mean']:.2f}"
    return line


def train(args: argparse.Namespace) -> int:
    config = _build_config(args)
    algo = config.build_algo()
    total = args.stop_iters if args.stop_iters else None
    reached = False
    checkpoint_dir = pathlib.Path(args.checkpoint_dir) if args.checkpoint_dir else None
    try:
        with tqdm(total=total, unit="iter", desc=f"{args.algo.upper()} {args.env}", disable=args.quiet) as bar:
            while True:
                result = algo.train()
                bar.update(1)
                bar.set_postfix(ret=f"{result['env_runners']['episode_return_mean']:.1f}")
                tqdm.write(_summary(result), file=sys.stdout)
                if checkpoint_dir and result["training_iteration"] % args.checkpoint_freq == 0:
                    algo.save_to_path(str(checkpoint_dir / f"iter_{result['training_iteration']:06d}"))
                mean = result["env_runners"]["episode_return_mean"]
                if args.stop_reward is not None and not math.isnan(mean) and mean >= args.stop_reward:
                    reached = True
                    break
                if args.stop_iters and result["training_iteration"] >= args.stop_iters:
                    break
                if args.stop_timesteps and result["num_env_steps_sampled_lifetime"] >= args.stop_timesteps:
                    break
        evaluation = algo.evaluate()["env_runners"]
        print(f"evaluation over {evaluation['num_episodes']} episodes: return {evaluation['episode_return_mean']:.2f}")
        if checkpoint_dir:
            final = algo.save_to_path(str(checkpoint_dir / "final"))
            print(f"checkpoint: {final}")
    finally:
        algo.stop()
    if args.stop_reward is not None and not reached:
        print(f"stop reward {args.stop_reward} not reached", file=sys.stderr)
        return 1
    return 0


def evaluate(args: argparse.Namespace) -> int:
    algo = Algorithm.from_checkpoint(args.checkpoint)
    try:
        algo.config.evaluation_duration = args.episodes
        evaluation = algo.evaluate()["env_runners"]
    finally:
        algo.stop()
    print(json.dumps({k: evaluation[k] for k in ("episode_return_mean", "episode_return_min",
                                                  "episode_return_max", "episode_len_mean", "num_episodes")}))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marl-arena", description="Multi-agent RL with leagues and self-play.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train an algorithm on an env")
    train_parser.add_argument("--algo", default="ppo", choices=sorted(ALGORITHM_CONFIGS))
    train_parser.add_argument("--env", required=True, help="env id: registered, plugin (scheme:name) or gymnasium")
    train_parser.add_argument("--env-config", nargs="*", default=[], metavar="KEY=VALUE")
    train_parser.add_argument("--stop-reward", type=float, help="stop when the mean training return reaches this")
    train_parser.add_argument("--stop-iters", type=int, help="stop after this many iterations")
    train_parser.add_argument("--stop-timesteps", type=int, help="stop after this many env steps")
    train_parser.add_argument("--num-env-runners", type=int, default=0)
    train_parser.add_argument("--num-envs-per-env-runner", type=int, default=1)
    train_parser.add_argument("--fcnet-hiddens", type=int, nargs="*", help="hidden layer sizes")
    train_parser.add_argument("--seed", type=int)
    train_parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                              help="any config field, e.g. lr=0.001 train_batch_size_per_learner=2000")
    train_parser.add_argument("--checkpoint-dir", help="write checkpoints here")
    train_parser.add_argument("--checkpoint-freq", type=int, default=10, help="iterations between checkpoints")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_parser.set_defaults(handler=train)

    eval_parser = commands.add_parser("evaluate", help="evaluate a checkpoint greedily")
    eval_parser.add_argument("checkpoint")
    eval_parser.add_argument("--episodes", type=int, default=10)
    eval_parser.set_defaults(handler=evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "stop_reward", None) is None and args.command == "train" and not (args.stop_iters or args.stop_timesteps):
        raise SystemExit("train needs a stop condition: --stop-reward, --stop-iters or --stop-timesteps.")
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
