"""RLlib's multi-agent example: the first-page config, two agents, two independent modules."""

from pprint import pprint

from marl_arena.env import MultiAgentCartPole, register_env
from taxi_ppo import config

register_env("env", lambda cfg: MultiAgentCartPole(cfg))
config.environment("env", env_config={"num_agents": 2})
config.multi_agent(
    policies={"p0", "p1"},
    # All agents of the env map to one of the two modules.
    policy_mapping_fn=lambda aid, *a, **kw: f"p{aid}",
)

if __name__ == "__main__":
    algo = config.build_algo()
    for _ in range(5):
        pprint(algo.train())
    pprint(algo.evaluate())
    algo.stop()
