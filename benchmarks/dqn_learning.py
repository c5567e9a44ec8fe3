"""DQN learning benchmark: env steps and wall seconds to a greedy evaluation of 450 on CartPole-v1.

Task ``cartpole``: DQN Rainbow-lite (double Q + dueling + 3-step returns + prioritized
replay), greedy evaluation return >= 450 over 10 episodes, for every seed, each within a
time budget. With RLlib installed, RLlib's DQN (new API stack) runs with the same settings
in the same run (``cartpole_rllib``), interleaved seed by seed with ours.
``--variant rainbow`` adds the last two Rainbow components on both sides: distributional
C51 (51 atoms over [0, 100]) and noisy heads, with epsilon 0 (the noise explores).

Protocol (both sides; ``common.train_to_target`` and ``rllib_peer.rllib_dqn_to_target``):
``train()`` samples at least 1000 env steps (``min_sample_timesteps_per_iteration``); after
every iteration ``algo.evaluate()`` runs 10 greedy episodes in the driver; reached when
their mean is at least 450 in ``common.CONSECUTIVE`` evaluations in a row (one lucky
evaluation of an early greedy policy does not count), counted at the last; stop there or
when the budget is used. ``wall_s`` runs from the start of the build. The default seeds
(100-102) were not used for tuning; the JSON records them and the command that produced it.

Known difference: RLlib builds n-step transitions from whole episodes in its episode
replay buffer; ours are built per sampled fragment (4 env steps here), with the runner
keeping n-1 steps of look-ahead across fragments, so both see full 3-step returns.

    python benchmarks/dqn_learning.py --quick            # one seed, short budgets
    python benchmarks/dqn_learning.py --out              # 3 seeds, writes results/dqn_learning.json
    python benchmarks/dqn_learning.py --variant rainbow --out   # results/dqn_learning_rainbow.json
"""

from __future__ import annotations

import logging
import time
from typing import Any

try:  # python -m benchmarks.dqn_learning, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/dqn_learning.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import DQNConfig

logger = logging.getLogger("benchmarks.dqn_learning")

NAME = "dqn_learning"

# Identical on both sides; RLlib's names.
HPARAMS: dict[str, Any] = {
    "replay_buffer_config": {"capacity": 50_000, "alpha": 0.6, "beta": 0.4},
    "n_step": 3, "double_q": True, "dueling": True, "target_network_update_freq": 500,
    "num_steps_sampled_before_learning_starts": 1000, "lr": 1e-3, "gamma": 0.99,
    "epsilon": [(0, 1.0), (10_000, 0.05)], "grad_clip": 40.0, "td_error_loss_fn": "huber",
}
BATCH = 32
MODEL: dict[str, Any] = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu", "head_fcnet_hiddens": []}
ROLLOUT_FRAGMENT_LENGTH = 4  # one gradient step of 32 per 4 env steps: replay ratio 8 on both sides
MIN_STEPS_PER_ITERATION = 1000

VARIANTS: dict[str, dict[str, Any]] = {
    "lite": {},
    "rainbow": {"num_atoms": 51, "v_min": 0.0, "v_max": 100.0, "noisy": True, "epsilon": 0.0},
}
"""Training fields added to HPARAMS on both sides."""

BUDGETS = {"full": {"cartpole": 90, "cartpole_rllib": 100}, "quick": {"cartpole": 30, "cartpole_rllib": 30}}
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: tuning and earlier runs used 0-2


def _ours(seed: int, variant: dict[str, Any]) -> DQNConfig:
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, rollout_fragment_length=ROLLOUT_FRAGMENT_LENGTH)
        .learners(num_learners=0)
        .training(train_batch_size=BATCH, **{**HPARAMS, **variant, "replay_buffer_config": {
            "type": "PrioritizedReplayBuffer", **HPARAMS["replay_buffer_config"]}})
        .reporting(min_sample_timesteps_per_iteration=MIN_STEPS_PER_ITERATION)
        .rl_module(model_config=dict(MODEL))
        .evaluation(evaluation_duration=10, evaluation_duration_unit="episodes", evaluation_num_env_runners=0)
        .debugging(seed=seed)
    )


def _run_ours(seed: int, budget_s: float, variant: dict[str, Any]) -> dict[str, Any]:
    load = common.log_load(f"cartpole seed {seed}")
    run = common.train_to_target(_ours(seed, variant), target=450.0, time_budget_s=budget_s,
                                 consecutive=common.CONSECUTIVE, label=f"dqn cartpole seed {seed}")
    return {"seed": seed, **run, "load_before": load}


def _run_rllib(seed: int, budget_s: float, variant: dict[str, Any]) -> dict[str, Any]:
    load = common.log_load(f"cartpole_rllib seed {seed}")
    training = {**HPARAMS, **variant, "train_batch_size_per_learner": BATCH,
                "replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", **HPARAMS["replay_buffer_config"]}}
    run = rllib_peer.rllib_dqn_to_target(
        "CartPole-v1", 450.0, seed, budget_s, training=training, fcnet_hiddens=MODEL["fcnet_hiddens"],
        fcnet_activation=MODEL["fcnet_activation"], rollout_fragment_length=ROLLOUT_FRAGMENT_LENGTH,
        min_sample_timesteps_per_iteration=MIN_STEPS_PER_ITERATION,
        model_overrides={"head_fcnet_hiddens": MODEL["head_fcnet_hiddens"]}, consecutive=common.CONSECUTIVE,
    )
    return {"seed": seed, **run, "load_before": load}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="lite",
                        help="lite: double + dueling + n-step + PER; rainbow: also C51 and noisy heads")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    budgets = BUDGETS[mode]
    seeds = args.seeds or SEEDS[mode]
    use_rllib = not args.no_rllib
    if use_rllib and not rllib_peer.rllib_available():
        logger.warning("RLlib is not installed: skipping the peer (pip install 'ray[rllib]').")
        use_rllib = False
    ray_started = common.start_ray() if use_rllib else False
    report: dict[str, Any] = {
        "benchmark": NAME, "variant": args.variant, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "protocol": "train() samples >= 1000 env steps; after every iteration algo.evaluate() runs 10 greedy "
                    f"episodes; reached when their mean is at least 450 in {common.CONSECUTIVE} evaluations in a row "
                    "(counted at the last). wall_s: build + training + evaluations; env_steps: training samples. "
                    "Medians and min-max over seeds; reached means every seed reached.",
        "hyperparameters": {**HPARAMS, **VARIANTS[args.variant], "train_batch_size": BATCH, "model": MODEL,
                            "rollout_fragment_length": ROLLOUT_FRAGMENT_LENGTH,
                            "min_sample_timesteps_per_iteration": MIN_STEPS_PER_ITERATION,
                            "replay": "PrioritizedReplayBuffer (RLlib: PrioritizedEpisodeReplayBuffer)"},
        "tasks": {},
    }
    started = time.perf_counter()
    runs: dict[str, list] = {"cartpole": [], **({"cartpole_rllib": []} if use_rllib else {})}
    try:
        for seed in seeds:
            runs["cartpole"].append(_run_ours(seed, budgets["cartpole"], VARIANTS[args.variant]))
            if use_rllib:
                runs["cartpole_rllib"].append(_run_rllib(seed, budgets["cartpole_rllib"], VARIANTS[args.variant]))
        for name, task_runs in runs.items():
            report["tasks"][name] = {"target": 450.0, **common.summarize_runs(task_runs),
                                     "time_budget_s_per_seed": budgets[name]}
        if use_rllib:
            ours, rllib = report["tasks"]["cartpole"], report["tasks"]["cartpole_rllib"]
            report["ratios"] = common.peer_ratios(ours, rllib, prefix="cartpole_")
    finally:
        common.stop_ray(ray_started)
    name = NAME if args.variant == "lite" else f"{NAME}_{args.variant}"
    common.finish(report, name, args.out, started)
    return report


if __name__ == "__main__":
    main()
