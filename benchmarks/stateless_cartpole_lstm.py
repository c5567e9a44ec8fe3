"""StatelessCartPole: PPO with an LSTM (``use_lstm``) against the same PPO with an MLP, and RLlib's LSTM PPO.

StatelessCartPole is CartPole-v1 whose observation keeps the cart position and the pole
angle and drops both velocities, so a policy must infer them from the steps before: a
memoryless MLP cannot balance the pole for long. Three sides, each for every seed, on one
budget (wall seconds and env steps, whichever runs out first):

* ``lstm``: marl_arena PPO, ``use_lstm=True``;
* ``mlp``: the same PPO and settings with ``use_lstm=False``;
* ``lstm_rllib``: RLlib's PPO with its LSTM (``model_config={"use_lstm": True, ...}``), the
  same settings, run seed by seed right after ours, so that other load hits both alike.

The protocol is ``ppo_learning.py``'s: after every training iteration ``algo.evaluate()``
runs 10 greedy episodes on one sub-env; reached when their mean is >= 150 in
``common.CONSECUTIVE`` evaluations in a row, counted at the last. ``wall_s`` runs from the
start of the build (build, training, evaluations); ``env_steps`` counts training samples.

    python benchmarks/stateless_cartpole_lstm.py --quick      # smoke check, ~2 min
    python benchmarks/stateless_cartpole_lstm.py --out        # full, writes results/stateless_cartpole_lstm.json

The settings were chosen on seed 0 (one run each of a few settings); the figures use seeds
100-102.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import gymnasium as gym
import numpy as np

try:  # python -m benchmarks.stateless_cartpole_lstm, from the repository root
    from benchmarks import common, rllib_peer
except ImportError:  # python benchmarks/stateless_cartpole_lstm.py: benchmarks/ is sys.path[0]
    import common
    import rllib_peer

from marl_arena.algorithms import PPOConfig

logger = logging.getLogger("benchmarks.stateless_cartpole_lstm")

NAME = "stateless_cartpole_lstm"
ENV_ID = "stateless_cartpole"
TARGET = 150.0

# Identical on both libraries. Where their defaults differ they are set explicitly: no KL
# penalty, no cap on the squared value error, separate policy and value trunks (each with
# its own LSTM). On seed 0 a shared trunk with vf_loss_coeff 0.05 (RLlib's example's
# choice) left our value function unlearnt after 300k env steps; separate trunks reached
# a training return of 150 in about 40k.
HPARAMS: dict[str, Any] = {
    "train_batch_size_per_learner": 2000, "minibatch_size": 400, "num_epochs": 6, "lr": 1e-3,
    "gamma": 0.99, "lambda_": 0.95, "clip_param": 0.2, "vf_loss_coeff": 1.0, "entropy_coeff": 0.0,
    "use_kl_loss": False, "vf_clip_param": 1e6,
}
MODEL: dict[str, Any] = {"fcnet_hiddens": [64], "fcnet_activation": "tanh", "vf_share_layers": False,
                         "lstm_cell_size": 64, "max_seq_len": 20}
RUNNERS: dict[str, Any] = {"num_env_runners": 0, "num_envs_per_env_runner": 8}

BUDGETS = {"full": {"wall_s": 300.0, "env_steps": 300_000}, "quick": {"wall_s": 40.0, "env_steps": 40_000}}
SEEDS = {"full": [100, 101, 102], "quick": [100]}  # fresh: settings were chosen on seed 0


class StatelessCartPole(gym.ObservationWrapper):
    """CartPole-v1 observing only the cart position and the pole angle (no velocities)."""

    def __init__(self, config: dict | None = None):
        super().__init__(gym.make("CartPole-v1"))
        high = self.env.observation_space.high[[0, 2]]
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[[0, 2]].astype(np.float32)


def _ours(seed: int, use_lstm: bool) -> PPOConfig:
    return (
        PPOConfig()
        .environment(StatelessCartPole)
        .env_runners(**RUNNERS)
        .learners(num_learners=0)
        .training(**HPARAMS)
        .rl_module(model_config={**MODEL, "use_lstm": use_lstm})
        # One sub-env: with several, 10 episodes would favour the short ones (see ppo_learning.py).
        .evaluation(evaluation_duration=10, evaluation_duration_unit="episodes", evaluation_num_env_runners=0,
                    evaluation_config={"explore": False, "num_envs_per_env_runner": 1})
        .debugging(seed=seed)
    )


def _run_ours(name: str, seed: int, use_lstm: bool, budget: dict[str, float]) -> dict[str, Any]:
    load = common.log_load(f"{name} seed {seed}")
    run = common.train_to_target(_ours(seed, use_lstm), target=TARGET, time_budget_s=budget["wall_s"],
                                 max_env_steps=int(budget["env_steps"]), label=f"{name} seed {seed}",
                                 consecutive=common.CONSECUTIVE)
    return {"seed": seed, **run, "load_before": load}


def _run_rllib(seed: int, budget: dict[str, float]) -> dict[str, Any]:
    load = common.log_load(f"lstm_rllib seed {seed}")
    hp = HPARAMS
    run = rllib_peer.rllib_ppo_to_target(
        env_id=ENV_ID, target_return=TARGET, seed=seed, time_budget_s=budget["wall_s"],
        num_env_runners=RUNNERS["num_env_runners"], num_envs_per_env_runner=RUNNERS["num_envs_per_env_runner"],
        train_batch_size=hp["train_batch_size_per_learner"], minibatch_size=hp["minibatch_size"],
        num_epochs=hp["num_epochs"], lr=hp["lr"], gamma=hp["gamma"], lambda_=hp["lambda_"],
        clip_param=hp["clip_param"], vf_loss_coeff=hp["vf_loss_coeff"], entropy_coeff=hp["entropy_coeff"],
        fcnet_hiddens=MODEL["fcnet_hiddens"], fcnet_activation=MODEL["fcnet_activation"],
        evaluation_episodes=10, evaluation_trigger_return=-math.inf,
        training_overrides={"use_kl_loss": hp["use_kl_loss"], "vf_clip_param": hp["vf_clip_param"]},
        model_overrides={"use_lstm": True, "lstm_cell_size": MODEL["lstm_cell_size"],
                         "max_seq_len": MODEL["max_seq_len"], "vf_share_layers": MODEL["vf_share_layers"]},
        consecutive=common.CONSECUTIVE, evaluation_overrides={"num_envs_per_env_runner": 1},
        max_env_steps=int(budget["env_steps"]),
    )
    return {"seed": seed, **run, "load_before": load}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 100 101 102, quick: 100)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    budget = BUDGETS[mode]
    seeds = args.seeds or SEEDS[mode]
    use_rllib = not args.no_rllib and rllib_peer.rllib_available()
    if not args.no_rllib and not use_rllib:
        logger.warning("RLlib is not installed: skipping the peer (pip install 'ray[rllib]').")
    ray_started = False
    if use_rllib:
        from ray.tune.registry import register_env

        ray_started = common.start_ray()
        register_env(ENV_ID, lambda env_config: StatelessCartPole(env_config))
    settings = {**HPARAMS, "model": MODEL, **RUNNERS, "target": TARGET,
                "budget_per_run": {"wall_s": budget["wall_s"], "env_steps": budget["env_steps"]}}
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "seeds": seeds, "machine": common.machine_info(),
        "env": "StatelessCartPole: CartPole-v1 observing (cart position, pole angle) only",
        "protocol": "after every training iteration algo.evaluate() runs 10 greedy episodes on one sub-env; "
                    f"reached when their mean is >= {TARGET:g} in {common.CONSECUTIVE} evaluations in a row, "
                    "counted at the last; each run stops there or when its wall-time or env-step budget is used. "
                    "wall_s: build + training + evaluations; env_steps: training samples. Seed by seed: ours with "
                    "the LSTM, RLlib's LSTM, ours with the MLP. Torch runs 1 intra-op thread in the driver.",
        "settings": settings, "tasks": {},
    }
    started = time.perf_counter()
    runs: dict[str, list] = {"lstm": [], "mlp": [], **({"lstm_rllib": []} if use_rllib else {})}
    try:
        for seed in seeds:
            runs["lstm"].append(_run_ours("lstm", seed, True, budget))
            if use_rllib:
                runs["lstm_rllib"].append(_run_rllib(seed, budget))
            runs["mlp"].append(_run_ours("mlp", seed, False, budget))
        for name, task_runs in runs.items():
            report["tasks"][name] = {"target": TARGET, **common.summarize_runs(task_runs)}
        report["mlp_reached_any_seed"] = any(run["reached"] for run in runs["mlp"])
        report["mlp_best_final_eval_return"] = max(run["final_eval_return"] for run in runs["mlp"])
        report["goal"] = (f"ours with the LSTM reaches {TARGET:g} on every seed; the MLP reaches it on none, on the "
                          "same budget")
        report["goal_met"] = bool(report["tasks"]["lstm"]["reached"] and not report["mlp_reached_any_seed"])
        if use_rllib:
            report["ratios"] = common.peer_ratios(report["tasks"]["lstm"], report["tasks"]["lstm_rllib"])
    finally:
        common.stop_ray(ray_started)
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
