"""Connect four (PettingZoo): a main agent with self-play and PFSP over its snapshots and a random bot."""

from marl_arena.algorithms import PPOConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig

ITERATIONS = 100


def make_config(directory: str) -> LeagueConfig:
    trainer = (
        PPOConfig()
        .training(train_batch_size_per_learner=4000, minibatch_size=256, num_epochs=5, gamma=0.99, lr=3e-4,
                  entropy_coeff=0.01)
        .env_runners(num_envs_per_env_runner=8)
        .rl_module(model_config={"fcnet_hiddens": [256, 256]})
    )
    return (
        LeagueConfig()
        .environment("pettingzoo:connect_four_v3")
        .trainer(trainer)
        .roster(main_agents=1, scripted={"random": RandomModule})
        .matchmaking("pfsp", weighting="variance")
        .snapshots(win_rate=0.7, min_games=500)
        .store(directory)
    )
