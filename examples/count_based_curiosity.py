"""Count-based curiosity on a sparse-reward maze: PPO with an intrinsic reward on the learner.

The maze is RLlib's curiosity task, FrozenLake without holes and not slippery, here 10x10:
the agent starts in one corner, the only reward is 1 at the goal in the opposite corner, and
an episode ends after 18 moves, exactly the length of a shortest path. A random walk gets
there in fewer than one episode in a million, so plain PPO sees only zero rewards and its policy
never moves. With ``CountBasedCuriosity`` every transition also earns ``beta / sqrt(N(s'))``
for the state it reaches: the policy learns to walk towards the cells it has seen least,
which lie ever farther from the start, finds the goal, and the goal's reward (far larger
than the fading bonus) takes over.

The connector runs on the learner, on each module's batch before PPO's advantages
(``config.training(learner_connector=...)``); its counts live in the learner and are saved
in its checkpoints:

    config.training(learner_connector=lambda *spaces: CountBasedCuriosity(beta=0.1))

    python examples/count_based_curiosity.py            # PPO with and without curiosity, <= 60k env steps each
    python examples/count_based_curiosity.py --smoke    # one tiny iteration each
"""

from __future__ import annotations

import argparse

from marl_arena.algorithms import PPOConfig
from marl_arena.connectors import CountBasedCuriosity

SIZE = 10
ENV = "FrozenLake-v1"
ENV_CONFIG = {
    "desc": ["S" + "F" * (SIZE - 1)] + ["F" * SIZE] * (SIZE - 2) + ["F" * (SIZE - 1) + "G"],
    "is_slippery": False,
    "max_episode_steps": 2 * (SIZE - 1),  # a shortest path and not one step more
}
BETA = 0.1


def make_config(curiosity: bool, seed: int = 0, beta: float = BETA, smoke: bool = False) -> PPOConfig:
    """PPO on the maze (RLlib's FrozenLake-style curiosity task); with ``curiosity`` the learner
    adds count-based bonuses to the rewards."""
    config = (
        PPOConfig()
        .environment(ENV, env_config=dict(ENV_CONFIG))
        .env_runners(num_envs_per_env_runner=8)
        .training(train_batch_size=256 if smoke else 2000, minibatch_size=128 if smoke else 250, num_epochs=4,
                  lr=1e-3, gamma=0.99)
        # One greedy episode: the maze and the greedy policy are deterministic.
        .evaluation(evaluation_duration=1)
        .debugging(seed=seed)
    )
    if curiosity:
        config.training(learner_connector=lambda *spaces: CountBasedCuriosity(beta=beta))
    return config


def train(curiosity: bool, seed: int = 0, max_env_steps: int = 60_000, smoke: bool = False,
          beta: float = BETA, consecutive: int = 3) -> dict:
    """Train until the greedy policy reaches the goal in ``consecutive`` checks in a row (one per
    iteration), or for ``max_env_steps``.

    Returns ``reached`` (the streak held), ``env_steps`` and ``train_s`` when it did, the env
    steps of the first greedy success, the greedy return at the end, and the largest return of
    any training episode (1 once any episode found the goal).
    """
    algo = make_config(curiosity, seed, beta, smoke).build_algo()
    try:
        seconds, streak, first, best = 0.0, 0, None, 0.0
        while True:
            result = algo.train()
            seconds += result["time_this_iter_s"]
            steps = result["num_env_steps_sampled_lifetime"]
            best = max([best, *(e.episode_return for e in algo.last_episodes)])
            greedy = algo.evaluate()["env_runners"]["episode_return_mean"]
            streak = streak + 1 if greedy >= 1.0 else 0
            if greedy >= 1.0 and first is None:
                first = steps
            done = streak >= consecutive
            if done or steps >= max_env_steps or smoke:
                return {"reached": done, "env_steps": steps if done else None, "train_s": seconds if done else None,
                        "first_success_env_steps": first, "final_greedy_return": greedy,
                        "max_training_return": best, "sampled": steps}
    finally:
        algo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one tiny iteration each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for curiosity in (False, True):
        out = train(curiosity, args.seed, smoke=args.smoke)
        label = "PPO + curiosity" if curiosity else "plain PPO"
        if out["reached"]:
            print(f"{label}: the greedy policy reaches the goal, 3 checks in a row, after {out['env_steps']} env steps")
        else:
            print(f"{label}: the greedy policy does not reach the goal in {out['sampled']} env steps")
