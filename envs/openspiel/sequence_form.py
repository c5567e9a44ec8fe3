"""Exact evaluation of pools of policies on a small two-player zero-sum OpenSpiel game.

``SequenceForm`` walks the game tree once; then the expected return of every pair in a
pool of tabular policies is one matrix product (``payoff_matrix``), and a weighted
mixture of policies becomes one behaviour policy (``mixture``), which OpenSpiel's
exploitability can score. ``pool_payoffs`` and ``pool_policy`` do this for marl_arena
modules; ``OpenSpielEnv.exact_payoffs`` is how a league, which never imports this plugin,
reaches it.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy

from marl_arena.core.rl_module import RLModule
from marl_arena_envs.openspiel.env import env_options
from marl_arena_envs.openspiel.games import load_game
from marl_arena_envs.openspiel.policy import SCHEME, ModulePolicy

MAX_HISTORIES = 200_000
"""Games with more histories than this are not evaluated exactly (``sequence_form`` gives None)."""


class GameTooLarge(ValueError):
    """The game tree has more histories than a sequence form is built for."""


class SequenceForm:
    """Realization plans of tabular policies over a two-player zero-sum game's tree.

    Every information state of a perfect-recall game is reached through one sequence of
    its player's own (state, action) pairs; a policy's realization weight of a sequence is
    the product of its action probabilities along it. With these, the expected return of
    any pair of policies is a sum over terminal histories (chance x utility x both
    players' realization weights), so the payoff matrix of a whole pool is one matrix
    product, and a weighted mixture of policies becomes the behaviour policy
    ``sum_k w_k x_k(parent) pi_k / sum_k w_k x_k(parent)`` (Kuhn's theorem; OpenSpiel's
    PolicyAggregator computes the same by a recursive sweep).
    """

    def __init__(self, game: pyspiel.Game, max_histories: int | None = None):
        game_type = game.get_type()
        if game.num_players() != 2 or game_type.utility != pyspiel.GameType.Utility.ZERO_SUM:
            raise ValueError(f"A sequence form needs a two-player zero-sum game, not {game}.")
        self.game = game
        template = os_policy.TabularPolicy(game)
        num_states, num_actions = template.action_probability_array.shape
        self.num_actions = num_actions
        self.parent = np.zeros(num_states, dtype=np.int64)  # sequence id leading to each state (0: empty)
        depth = np.zeros(num_states, dtype=np.int64)
        chance, utility, last = [], [], ([], [])
        stack = [(game.new_initial_state(), 1.0, (0, 0), (0, 0))]
        visited = 0
        while stack:
            state, prob, seqs, depths = stack.pop()
            visited += 1
            if max_histories is not None and visited > max_histories:
                raise GameTooLarge(f"{game} has more than {max_histories} histories.")
            if state.is_terminal():
                chance.append(prob)
                utility.append(state.returns()[0])
                last[0].append(seqs[0])
                last[1].append(seqs[1])
            elif state.is_chance_node():
                for action, p in state.chance_outcomes():
                    stack.append((state.child(action), prob * p, seqs, depths))
            else:
                player = state.current_player()
                index = template.state_lookup[state.information_state_string(player)]
                self.parent[index] = seqs[player]
                depth[index] = depths[player]
                for action in state.legal_actions():
                    new_seqs = list(seqs)
                    new_seqs[player] = 1 + index * num_actions + action
                    new_depths = list(depths)
                    new_depths[player] += 1
                    stack.append((state.child(action), prob, tuple(new_seqs), tuple(new_depths)))
        self.levels = [np.flatnonzero(depth == d) for d in range(int(depth.max()) + 1)]
        self.weight = np.asarray(chance) * np.asarray(utility)
        self.last = (np.asarray(last[0]), np.asarray(last[1]))

    def realization(self, arrays: np.ndarray) -> np.ndarray:
        """``(K, 1 + S * A)`` realization weights of ``K`` action-probability arrays ``(K, S, A)``."""
        k, s, a = arrays.shape
        x = np.zeros((k, 1 + s * a))
        x[:, 0] = 1.0
        for level in self.levels:
            reach = x[:, self.parent[level]]
            x[:, 1 + level[:, None] * a + np.arange(a)[None]] = reach[:, :, None] * arrays[:, level, :]
        return x

    def payoff_matrix(self, arrays: np.ndarray) -> np.ndarray:
        """``M[i, j]``: policy i's expected return against policy j, both seatings averaged."""
        x = self.realization(arrays)
        seat_values = (x[:, self.last[0]] * self.weight) @ x[:, self.last[1]].T
        return 0.5 * (seat_values - seat_values.T)

    def mixture(self, arrays: np.ndarray, weights: np.ndarray) -> os_policy.TabularPolicy:
        """The behaviour policy realization-equivalent to playing policy k with probability ``weights[k]``."""
        reach = np.asarray(weights)[:, None] * self.realization(arrays)[:, self.parent]
        numerator = np.einsum("ks,ksa->sa", reach, arrays)
        denominator = reach.sum(0)
        plain = np.einsum("k,ksa->sa", np.asarray(weights), arrays)  # states no member reaches
        mixed = np.where(denominator[:, None] > 1e-300,
                         numerator / np.maximum(denominator, 1e-300)[:, None], plain)
        tabular = os_policy.TabularPolicy(self.game)
        tabular.action_probability_array = mixed
        return tabular


def sequence_form(game: pyspiel.Game) -> SequenceForm | None:
    """The game's sequence form, or None when it is not two-player zero-sum or has over ``MAX_HISTORIES``."""
    return _sequence_form(str(game))


@functools.lru_cache(maxsize=8)
def _sequence_form(game: str) -> SequenceForm | None:  # by the game's string, parameters included
    try:
        return SequenceForm(pyspiel.load_game(game), MAX_HISTORIES)
    except ValueError:
        return None


def policy_arrays(game: pyspiel.Game, modules: Sequence[RLModule], *, seat_one_hot: bool = False,
                  observation_type: str = "auto") -> np.ndarray:
    """``(K, S, A)``: each module's action probabilities at every information state (softmax, not greedy)."""
    return np.stack([ModulePolicy(game, module, seat_one_hot=seat_one_hot, observation_type=observation_type)
                     .to_tabular().action_probability_array for module in modules])


def pool_payoffs(game: pyspiel.Game, modules: Sequence[RLModule], **encoding: Any) -> np.ndarray | None:
    """Exact expected returns of each module against each (both seats averaged); None for a large game."""
    form = sequence_form(game)
    return None if form is None else form.payoff_matrix(policy_arrays(game, modules, **encoding))


def pool_policy(league: Any, mixture: Mapping[str, float]) -> os_policy.TabularPolicy:
    """A league pool's mixture (``League.pool_mixture``) as one OpenSpiel policy.

    The policy is realization-equivalent to drawing one pool member per game with the
    mixture's weights, so ``exploitability.exploitability(game, pool_policy(...))`` scores
    the mixture. The league must play an ``"open_spiel:<game>"`` env small enough for
    ``sequence_form``.
    """
    env = league.config.env
    if not (isinstance(env, str) and env.startswith(SCHEME + ":")):
        raise ValueError(f"pool_policy needs a league on an '{SCHEME}:<game>' env, not {env!r}.")
    name = env.partition(":")[2]
    options = env_options(league.config.env_config, name)
    game = load_game(name, options.get("game_parameters"))
    form = sequence_form(game)
    if form is None:
        raise ValueError(f"{name} is not a small two-player zero-sum game; its pool mixture has no exact policy.")
    ids = [pid for pid, weight in mixture.items() if weight > 0]
    modules = league.pool_modules(ids)
    arrays = policy_arrays(game, [modules[pid] for pid in ids], seat_one_hot=options.get("seat_one_hot", False),
                           observation_type=options.get("observation_type", "auto"))
    weights = np.array([mixture[pid] for pid in ids], dtype=float)
    return form.mixture(arrays, weights / weights.sum())
