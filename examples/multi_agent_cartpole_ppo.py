"""RLlib's multi-agent example: two agents, two independent modules, imports changed only."""

from pprint import pprint

from marl_arena.algorithms import PPOConfig
from marl_arena.connectors import FlattenObservations
from marl_arena.env import MultiAgentCartPole, register_env

register_env("env", lambda cfg: MultiAgentCartPole(cfg))

config = (
    PPOConfig()
    .environment("Taxi-v3")
    .env_runners(
        num_env_runners=2,
        env_to_module_connector=lambda env: FlattenObservations(),
    )
    .evaluation(evaluation_num_env_runners=1)
)
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
