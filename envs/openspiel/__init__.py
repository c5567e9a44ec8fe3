"""OpenSpiel games as marl_arena envs: ``"open_spiel:<game>"`` ids, opponents, policy conversion.

* ``make(name, env_config)``: the ``marl_arena.envs`` entry point, so
  ``make_env("open_spiel:goofspiel(num_cards=4)")`` and
  ``PPOConfig().environment("open_spiel:kuhn_poker")`` work. ``env_config`` keys:
  ``opponents``, ``seat_one_hot``, ``observation_type``, ``game_parameters``.
* ``OpenSpielEnv``: any pyspiel game as a MultiAgentEnv keyed by player id.
* ``ModulePolicy``: marl_arena modules as an OpenSpiel ``Policy`` (exploitability, nash_conv).
* ``pool_policy``: a league's pool mixture as one OpenSpiel policy; ``SequenceForm``: exact
  payoffs of policy pools on small two-player zero-sum games.
* ``play_against_random``: a policy's win/draw/loss rates against uniform random, per seat
  (``play_both_seats_against_random``: from both); ``play_against``/``play_both_seats_against``:
  against any opponent spec (an MCTS bot, say).
* ``mcts_bot``: OpenSpiel's MCTS with random rollouts, for ``opponents`` or by hand.
* ``TicTacToeGreedy``, ``TicTacToeMCTS``: scripted league players of known strength.
"""

from marl_arena_envs.openspiel.board_bots import TicTacToeGreedy, TicTacToeMCTS
from marl_arena_envs.openspiel.env import OpenSpielEnv, make
from marl_arena_envs.openspiel.evaluation import (
    play_against,
    play_against_random,
    play_both_seats_against,
    play_both_seats_against_random,
)
from marl_arena_envs.openspiel.games import load_game
from marl_arena_envs.openspiel.opponents import mcts_bot
from marl_arena_envs.openspiel.policy import ModulePolicy
from marl_arena_envs.openspiel.sequence_form import SequenceForm, pool_policy

__all__ = ["ModulePolicy", "OpenSpielEnv", "TicTacToeGreedy", "TicTacToeMCTS", "load_game", "make", "mcts_bot",
           "play_against", "play_against_random", "play_both_seats_against", "play_both_seats_against_random",
           "pool_policy", "SequenceForm"]
