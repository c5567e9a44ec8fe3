"""MPE simple_spread (3 agents): MAPPO with a centralized critic against independent PPO.

Arms at the same env-step budget, each with one policy shared by the three agents
(parameter sharing, as in MAPPO's own MPE runs), seeds 100-102 (seed 0 was used for tuning
lr, epochs and batch size):

* ``mappo``: the critic reads the team's observations (``CentralizedCriticModule``,
  ``critic_input="team_obs"``); every agent learns from the team's reward (``TeamRewards``,
  the mean of the three agents' rewards, individual_weight 0);
* ``ippo``: independent PPO, each agent's critic reads its own observation and each agent
  learns from its own mpe2 reward (``local_ratio=0.5``);
* ``ippo_team_reward``: independent critics on the team's reward, which separates the
  critic's share of a difference from the reward's.

Every final policy is scored on the same 200 episodes of the raw env (stochastic actions,
as marlbenchmark/on-policy logs its training rewards) in on-policy's convention, so the
figure compares with the published MAPPO curves: episode length 25, every agent receiving
the team's summed reward, and the metric ``average_episode_rewards = mean(per-agent
per-step reward) * 25``. on-policy's scenario gives each agent ``g + c_i - 1`` per step
(``g = -sum of landmark-to-nearest-agent distances``, ``c_i`` = minus its collisions with
other agents, and -1 for colliding with itself: its loop does not skip the agent); mpe2 with
``local_ratio=0.5`` gives ``0.5 g + 0.5 c_i``. So on-policy's episode figure is
``2 * (sum of the three agents' mpe2 rewards over the episode) - 75``.

    python benchmarks/mpe_spread_mappo.py --out        # 120k env steps a run: 15-20 minutes on 2 loaded cores
    python benchmarks/mpe_spread_mappo.py --quick      # a smoke run
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from marl_arena.algorithms import PPOConfig  # noqa: E402
from marl_arena.core import Columns, RLModuleSpec  # noqa: E402
from marl_arena.core.centralized_critic import CentralizedCriticModule  # noqa: E402
from marl_arena.env import make_env, team_rewards  # noqa: E402

logger = logging.getLogger("benchmarks.mpe_spread_mappo")

ENV = "mpe2:simple_spread_v3"
ENV_CONFIG = {"N": 3, "local_ratio": 0.5, "max_cycles": 25, "continuous_actions": False}
AGENTS = ["agent_0", "agent_1", "agent_2"]
EPISODE_LENGTH = 25
ARMS = ("mappo", "ippo", "ippo_team_reward")
SEEDS = (100, 101, 102)
EVAL_EPISODES = 200

PUBLISHED = {
    "source": "Yu et al. 2022, 'The Surprising Effectiveness of PPO in Cooperative Multi-Agent Games' "
              "(marlbenchmark/on-policy), MPE Spread, 3 agents, 3 landmarks",
    "metric": "average_episode_rewards = mean(buffer rewards) * episode_length (on-policy's MPE runner): the "
              "episode sum of the team's summed reward, episode length 25",
    "published_setup": "onpolicy/scripts/train_mpe_scripts/train_mpe_spread.sh: 20M env steps, 128 rollout "
                       "threads, 10 epochs, one minibatch, lr 7e-4, ReLU, recurrent MAPPO by default",
    "published_mappo_episode_reward": None,
    "note": "The paper reports MPE Spread as learning curves (no table value), and neither its repository's README "
            "nor the pages this session's search tools reach give the number, so no published value is quoted; "
            "the run here uses well under 1% of the published 20M env steps. on-policy's landmarks start in "
            "[-0.8, 0.8]^2, mpe2's in [-1, 1]^2, so mpe2 episodes start slightly harder.",
}


def make_config(arm: str, seed: int, batch: int, minibatch: int, epochs: int, lr: float) -> PPOConfig:
    """The PPO config of one arm: one shared policy; what the critic reads and the reward differ."""
    team = {"spreaders": AGENTS}
    env = ENV if arm == "ippo" else team_rewards(ENV, team, individual_weight=0.0, aggregate="mean")
    model = {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"}
    spec = (RLModuleSpec(module_class=CentralizedCriticModule, model_config={**model, "critic_input": "team_obs"})
            if arm == "mappo" else RLModuleSpec(model_config=model))
    return (
        PPOConfig()
        .environment(env, env_config=ENV_CONFIG)
        .env_runners(num_envs_per_env_runner=8)
        .training(train_batch_size=batch, minibatch_size=minibatch, num_epochs=epochs, lr=lr, gamma=0.99,
                  lambda_=0.95, clip_param=0.2, entropy_coeff=0.01, use_kl_loss=False, grad_clip=10.0,
                  vf_clip_param=1e4)
        .multi_agent(policies={"shared": spec}, policy_mapping_fn=lambda agent_id, *args, **kwargs: "shared")
        .debugging(seed=seed)
    )


def evaluate(module: torch.nn.Module | None, episodes: int, seed: int) -> dict[str, float]:
    """Mean episode figures of ``module`` acting stochastically on the raw env (local_ratio 0.5);
    ``module=None``: uniformly random actions (the baseline every arm starts from)."""
    env = make_env(ENV, ENV_CONFIG)
    rng = torch.Generator().manual_seed(seed)
    team_returns = []
    with torch.inference_mode():
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed * 10_000 + episode)
            total = 0.0
            while env.agents:
                agents = list(obs)
                if module is None:
                    probs = torch.full((len(agents), 5), 0.2)
                else:
                    batch = {Columns.OBS: torch.as_tensor(np.stack([obs[a] for a in agents]))}
                    probs = torch.softmax(module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], dim=-1)
                actions = torch.multinomial(probs, 1, generator=rng).squeeze(-1).tolist()
                obs, rewards, *_ = env.step(dict(zip(agents, actions)))
                total += sum(rewards.values())
            team_returns.append(total)
    env.close()
    mpe2 = float(np.mean(team_returns))
    return {"mpe2_team_return": mpe2, "onpolicy_episode_reward": 2.0 * mpe2 - 3 * EPISODE_LENGTH,
            "episodes": episodes}


def run_arm(arm: str, seed: int, env_steps: int, batch: int, minibatch: int, epochs: int,
            lr: float) -> dict[str, Any]:
    """Train one arm for ``env_steps`` and score its final policy."""
    load = common.log_load(f"{arm} seed {seed}")
    started = time.perf_counter()
    algo = make_config(arm, seed, batch, minibatch, epochs, lr).build_algo()
    curve = []
    try:
        steps = 0
        while steps < env_steps:
            result = algo.train()
            steps = int(result["num_env_steps_sampled_lifetime"])
            curve.append([steps, result["env_runners"]["episode_return_mean"]])
        train_s = time.perf_counter() - started
        final = evaluate(algo.get_module("shared"), EVAL_EPISODES, seed)
    finally:
        algo.stop()
    logger.info("%s seed %d: %d env steps in %.0fs, on-policy episode reward %.1f", arm, seed, steps, train_s,
                final["onpolicy_episode_reward"])
    return {"arm": arm, "seed": seed, "env_steps": steps, "train_s": train_s, "load_before": load,
            "final": final, "train_curve_episode_return_mean": curve}


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=None, help="env steps per run (default 120k; quick 6k)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2_000, help="env steps per iteration")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    env_steps = args.env_steps or (6_000 if args.quick else 120_000)
    batch, epochs, lr = args.batch, args.epochs, args.lr
    minibatch = batch  # rows are agent steps (three per env step): three minibatches per epoch
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "mpe_spread_mappo",
        "machine": common.machine_info(),
        "env": ENV, "env_config": ENV_CONFIG, "env_steps_per_run": env_steps, "seeds": args.seeds,
        "ppo": {"train_batch_size_env_steps": batch, "minibatch_size_rows": minibatch, "num_epochs": epochs,
                "lr": lr, "gamma": 0.99, "lambda": 0.95, "entropy_coeff": 0.01, "fcnet_hiddens": [64, 64],
                "parameter_sharing": True},
        "eval": {"episodes": EVAL_EPISODES, "actions": "stochastic",
                 "convention": "on-policy: 2 * (sum of mpe2 rewards, local_ratio 0.5, of the 3 agents over "
                               "25 steps) - 75; see the script's docstring"},
        "published": PUBLISHED,
        "random_policy": {str(seed): evaluate(None, EVAL_EPISODES, seed) for seed in args.seeds},
    }
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in args.arms}
    for seed in args.seeds:  # arms side by side per seed, so load drifts hit every arm alike
        for arm in args.arms:
            runs[arm].append(run_arm(arm, seed, env_steps, batch, minibatch, epochs, lr))
    summary = {}
    for arm, arm_runs in runs.items():
        summary[arm] = {
            "onpolicy_episode_reward": common.spread([r["final"]["onpolicy_episode_reward"] for r in arm_runs]),
            "mpe2_team_return": common.spread([r["final"]["mpe2_team_return"] for r in arm_runs]),
            "train_s": common.spread([r["train_s"] for r in arm_runs]),
        }
    report["summary"] = summary
    if "mappo" in summary and "ippo" in summary:
        report["mappo_beats_ippo"] = (summary["mappo"]["onpolicy_episode_reward"]["median"]
                                      > summary["ippo"]["onpolicy_episode_reward"]["median"])
    report["runs"] = runs
    common.finish(report, "mpe_spread_mappo", args.out, started)


if __name__ == "__main__":
    main()
