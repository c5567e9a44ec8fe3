"""Tic-tac-toe (OpenSpiel) with a DQN main agent: PFSP over its snapshots, a random and a one-ply bot.

The off-policy trainer in a board-game league: double Q, dueling heads, 3-step returns
and prioritized replay, epsilon-greedy over the legal moves. Every game the main agent
plays against a frozen opponent lands in its replay buffer; draws between the main agent
and its own snapshots are what a solved game converges to.
"""

from marl_arena.algorithms import DQNConfig
from marl_arena.core.scripted import RandomModule
from marl_arena.league.league_config import LeagueConfig
from marl_arena_envs.openspiel import TicTacToeGreedy

ITERATIONS = 60


def trainer_config() -> DQNConfig:
    return (
        DQNConfig()
        .training(lr=5e-4, gamma=0.99, train_batch_size=64, n_step=3, double_q=True, dueling=True,
                  target_network_update_freq=1000, num_steps_sampled_before_learning_starts=1000,
                  epsilon=[(0, 1.0), (20_000, 0.05)], training_intensity=8.0,
                  replay_buffer_config={"type": "PrioritizedReplayBuffer", "capacity": 50_000})
        .env_runners(num_envs_per_env_runner=8, rollout_fragment_length=4)
        .reporting(min_sample_timesteps_per_iteration=2000)
        .rl_module(model_config={"fcnet_hiddens": [128, 128], "fcnet_activation": "relu"})
    )


def make_config(directory: str) -> LeagueConfig:
    return (
        LeagueConfig()
        .environment("open_spiel:tic_tac_toe")
        .trainer(trainer_config())
        .roster(main_agents=1, scripted={"random": RandomModule, "greedy": TicTacToeGreedy})
        .matchmaking("pfsp", weighting="variance")
        .snapshots(win_rate=0.7, min_games=500)
        .store(directory)
    )
