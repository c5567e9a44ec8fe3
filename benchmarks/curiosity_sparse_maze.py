"""Count-based curiosity on a sparse-reward maze: PPO with it reaches the goal, plain PPO does not.

Runs ``examples/count_based_curiosity.py``'s ``train`` for each seed (100-102: not used for
tuning; beta and the PPO settings were chosen on seeds 0-1), plain PPO and PPO with
``CountBasedCuriosity`` side by side, each with the same budget of env steps. The maze:
FrozenLake 10x10 without holes, not slippery, reward 1 only at the far corner, 18 moves per
episode (a shortest path). After every iteration (2,000 env steps) one greedy episode is
played; a run reaches the target when the greedy policy reached the goal in 3 checks in a
row, and its figures are taken there. The peers, in the same run: plain PPO on the same maze
and budget, and RLlib's PPO with RLlib's own example ``CountBasedCuriosity`` learner connector
(its defaults: ``1 / N(s)`` with coefficient 1) and the same PPO settings, maze, budget and
checks (``--no-rllib`` skips it).

    python benchmarks/curiosity_sparse_maze.py --quick
    python benchmarks/curiosity_sparse_maze.py --out
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.curiosity_sparse_maze, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/curiosity_sparse_maze.py: benchmarks/ is sys.path[0]
    import common

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import count_based_curiosity as example  # noqa: E402  (the example is the task)

logger = logging.getLogger("benchmarks.curiosity_sparse_maze")

NAME = "curiosity_sparse_maze"
SEEDS = [100, 101, 102]
CONSECUTIVE = 3
MODES = {"full": {"seeds": SEEDS, "max_env_steps": 60_000}, "quick": {"seeds": SEEDS[:1], "max_env_steps": 6_000}}
SIDES = {"curiosity": True, "plain": False}
RLLIB_MAZE_ID = "MarlArenaCuriosityMaze-v0"
"""The maze registered with gymnasium for RLlib, which takes an env id without env_config here."""


def rllib_run(seed: int, max_env_steps: int) -> dict[str, Any]:
    """RLlib's PPO with RLlib's example count-based curiosity connector on the same maze and budget."""
    import gymnasium as gym
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.examples.connectors.classes.count_based_curiosity import CountBasedCuriosity

    import rllib_peer

    if RLLIB_MAZE_ID not in gym.registry:
        kwargs = {k: v for k, v in example.ENV_CONFIG.items() if k != "max_episode_steps"}
        gym.register(RLLIB_MAZE_ID, entry_point="gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv", kwargs=kwargs,
                     max_episode_steps=example.ENV_CONFIG["max_episode_steps"])

    def connectors(config):
        # One-hot observations (RLlib's default encoders take no Discrete space), and the curiosity.
        return (config.env_runners(env_to_module_connector=lambda *args, **kwargs: FlattenObservations())
                .learners(learner_connector=lambda *args, **kwargs: CountBasedCuriosity()))

    load = common.log_load(f"rllib seed {seed}")
    ours = example.make_config(curiosity=True, seed=seed)
    out = rllib_peer.rllib_ppo_to_target(
        RLLIB_MAZE_ID, target_return=1.0, num_env_runners=0, num_envs_per_env_runner=ours.num_envs_per_env_runner,
        train_batch_size=ours.train_batch_size, minibatch_size=ours.minibatch_size, num_epochs=ours.num_epochs,
        lr=ours.lr, gamma=ours.gamma, lambda_=ours.lambda_, vf_loss_coeff=ours.vf_loss_coeff,
        fcnet_hiddens=(256, 256), fcnet_activation="tanh", evaluation_episodes=1, time_budget_s=1800, seed=seed,
        evaluation_trigger_return=-float("inf"), consecutive=CONSECUTIVE, max_env_steps=max_env_steps,
        config_hook=connectors)
    logger.info("rllib seed %d: %s", seed, out)
    return {"seed": seed, **out, "load_before": load}


def rllib_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    reached = [r for r in runs if r["reached"]]
    return {
        "seeds_reached": f"{len(reached)}/{len(runs)}",
        "env_steps": common.spread([r["env_steps"] for r in reached]),
        "wall_s": common.spread([r["wall_s"] for r in reached]),
        "final_greedy_return": common.spread([r["final_eval_return"] for r in runs]),
        "env_steps_sampled": common.spread([r["env_steps"] for r in runs]),
    }


def run(curiosity: bool, seed: int, max_env_steps: int) -> dict[str, Any]:
    label = "curiosity" if curiosity else "plain"
    load = common.log_load(f"{label} seed {seed}")
    start = time.perf_counter()
    out = example.train(curiosity, seed, max_env_steps=max_env_steps, consecutive=CONSECUTIVE)
    wall = time.perf_counter() - start
    logger.info("%s seed %d: %s in %.1f s", label, seed, out, wall)
    return {"seed": seed, **out, "wall_s": wall if out["reached"] else None, "wall_s_used": wall, "load_before": load}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    reached = [r for r in runs if r["reached"]]
    return {
        "seeds_reached": f"{len(reached)}/{len(runs)}",
        "env_steps": common.spread([r["env_steps"] for r in reached]),
        "wall_s": common.spread([r["wall_s"] for r in reached]),
        "first_success_env_steps": common.spread([r["first_success_env_steps"] for r in runs]),
        "final_greedy_return": common.spread([r["final_greedy_return"] for r in runs]),
        "seeds_any_training_episode_at_goal": sum(r["max_training_return"] >= 1.0 for r in runs),
        "env_steps_sampled": common.spread([r["sampled"] for r in runs]),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 100 101 102)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    settings = dict(MODES[mode])
    if args.seeds:
        settings["seeds"] = args.seeds
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "machine": common.machine_info(),
        "settings": {**settings, "consecutive": CONSECUTIVE, "beta": example.BETA, "env": example.ENV,
                     "env_config": example.ENV_CONFIG, "train_batch_size": 2000, "eval_episodes_per_check": 1},
        "runs": {side: [] for side in SIDES},
    }
    started = time.perf_counter()
    with_rllib = not args.no_rllib
    if with_rllib:
        import rllib_peer

        with_rllib = rllib_peer.rllib_available()
    ray_started = with_rllib and common.start_ray()  # before the first timed run: every side beside Ray's idle workers
    if with_rllib:
        report["runs"]["rllib_curiosity"] = []
        report["settings"]["rllib_curiosity"] = ("RLlib PPO, num_env_runners=0, RLlib's example CountBasedCuriosity "
                                                 "learner connector (intrinsic_reward_coeff=1.0), FlattenObservations")
    try:
        for seed in settings["seeds"]:
            for side, curiosity in SIDES.items():  # side by side, seed by seed: all see the same load
                report["runs"][side].append(run(curiosity, seed, settings["max_env_steps"]))
            if with_rllib:
                report["runs"]["rllib_curiosity"].append(rllib_run(seed, settings["max_env_steps"]))
    finally:
        common.stop_ray(ray_started)
    report["summary"] = {side: summary(report["runs"][side]) for side in SIDES}
    if with_rllib:
        report["summary"]["rllib_curiosity"] = rllib_summary(report["runs"]["rllib_curiosity"])
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
