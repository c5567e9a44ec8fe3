"""RLlib's first-page example, with only the imports changed to marl_arena's."""

from pprint import pprint

from marl_arena.algorithms import PPOConfig
from marl_arena.connectors import FlattenObservations

config = (
    PPOConfig()
    .environment("Taxi-v3")
    .env_runners(
        num_env_runners=2,
        # Observations and actions in Taxi-v3 are integers: one-hot encode them.
        env_to_module_connector=lambda env: FlattenObservations(),
    )
    .evaluation(evaluation_num_env_runners=1)
)

if __name__ == "__main__":
    algo = config.build_algo()
    for _ in range(5):
        pprint(algo.train())
    pprint(algo.evaluate())
    algo.stop()
