"""OpenSpielEnv: any pyspiel game as a marl_arena MultiAgentEnv.

Agent ids are OpenSpiel's player ids (ints ``0..num_players-1``). In a turn-based game
only the player to move is in ``obs``; at a simultaneous node (goofspiel) every learner
seat with a legal action is, and their actions are applied together with
``state.apply_actions``. Chance nodes are resolved inside the env with its own
``np.random.Generator`` (seeded by ``reset(seed=)``), and seats given in ``opponents`` are
played inside the env by OpenSpiel bots or policies (see ``opponents.py``), so only the
learner seats are agents.

Rewards are differences of ``state.returns()`` between steps, so whatever the game's
reward model, each player's rewards over an episode add up to exactly its
``state.returns()`` at the end; at the terminal step every learner seat gets its reward,
acting or not, and ``terminateds["__all__"]`` is True. No observation is sent at the
terminal step: nobody acts on it, and its legal-action mask would be all zero.
"""

from __future__ import annotations

import logging
import operator
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
import pyspiel

from marl_arena.env.multi_agent_env import ALL_AGENTS, MultiAgentDict, MultiAgentEnv
from marl_arena_envs.openspiel.games import game_label, load_game
from marl_arena_envs.openspiel.observations import MASK_KEY, ObservationEncoder
from marl_arena_envs.openspiel.opponents import OpponentSpec, make_seats

logger = logging.getLogger(__name__)

_SEQUENTIAL = pyspiel.GameType.Dynamics.SEQUENTIAL
_SIMULTANEOUS = pyspiel.GameType.Dynamics.SIMULTANEOUS
_CHANCE_PLAYER = int(pyspiel.PlayerId.CHANCE)
_SIMULTANEOUS_PLAYER = int(pyspiel.PlayerId.SIMULTANEOUS)
_TERMINAL_PLAYER = int(pyspiel.PlayerId.TERMINAL)
_MAX_LISTED_ACTIONS = 20

ENV_CONFIG_KEYS = ("opponents", "seat_one_hot", "observation_type", "game_parameters")


class OpenSpielEnv(MultiAgentEnv):
    """A pyspiel game; learner seats are agents, ``opponents`` seats are played inside the env.

    Args:
        game: a name with parameters (``"goofspiel(num_cards=4)"``) or a ``pyspiel.Game``.
        opponents: ``{player_id: opponent}``; see ``opponents.py`` for what an opponent can be.
        seat_one_hot: add a one-hot of the player id to the observation (constant planes for
            board games, whose observations are HxWxC planes; see ``observations.py``).
        observation_type: ``"auto"`` (information state tensor where the game has one, else
            observation tensor), ``"information_state"`` or ``"observation"``.
        game_parameters: parameters merged into the name's (only with a name).
    """

    def __init__(self, game: str | pyspiel.Game, *, opponents: Mapping[int, OpponentSpec] | None = None,
                 seat_one_hot: bool = False, observation_type: str = "auto",
                 game_parameters: Mapping[str, Any] | None = None):
        self.game = load_game(game, game_parameters)
        self.label = game_label(self.game)
        dynamics = self.game.get_type().dynamics
        if dynamics not in (_SEQUENTIAL, _SIMULTANEOUS):
            raise ValueError(f"OpenSpiel game {self.label!r} has {dynamics} dynamics; OpenSpielEnv plays "
                             "turn-based and simultaneous-move games only.")
        self.num_players = self.game.num_players()
        self.encoder = ObservationEncoder(self.game, observation_type, seat_one_hot)
        self._encoding = {"seat_one_hot": seat_one_hot, "observation_type": observation_type}
        self._rng = np.random.default_rng()
        self._seats = make_seats(self.game, opponents, self._rng)
        self.possible_agents = [p for p in range(self.num_players) if p not in self._seats]
        if not self.possible_agents:
            raise ValueError(f"opponents fill every seat of {self.label!r}; leave at least one seat to the learner.")
        self._learners = frozenset(self.possible_agents)
        space = self.encoder.space()
        self.observation_spaces = {p: space for p in self.possible_agents}
        self.action_spaces = {p: gym.spaces.Discrete(self.game.num_distinct_actions()) for p in self.possible_agents}
        self.agents = []
        self._terminal_rewards_only = self.game.get_type().reward_model == pyspiel.GameType.RewardModel.TERMINAL
        self.state: pyspiel.State | None = None
        self._reported = np.zeros(self.num_players)
        self._seen: set[int] = set()
        # The acting seats and their masks as last observed: step() checks against these
        # instead of asking pyspiel again (the adapter must stay close to raw speed).
        self._acting_now: list[int] = []
        self._acting_set: frozenset[int] = frozenset()
        self._node_player = _TERMINAL_PLAYER
        self._masks: dict[int, np.ndarray] = {}
        logger.debug("OpenSpielEnv(%r): learner seats %s, opponents %s", self.label, self.possible_agents,
                     {p: seat.description for p, seat in self._seats.items()})

    # ------------------------------------------------------------------ MultiAgentEnv API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[MultiAgentDict, MultiAgentDict]:
        """A new game; chance and opponents move until a learner seat must act."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            for seat in self._seats.values():
                seat.reseed(self._rng)
        self.state = self.game.new_initial_state()
        for seat in self._seats.values():
            seat.restart(self.state)
        # Rewards earned before the first learner move are reported with its first step.
        self._reported = np.zeros(self.num_players)
        self._seen = set()
        player = self._advance()
        if player == _TERMINAL_PLAYER:
            raise RuntimeError(
                f"OpenSpiel game {self.label!r} ended (history {self.state.history()}) before any learner seat "
                f"{self.possible_agents} had to act; the env cannot report rewards from reset()."
            )
        self.agents = list(self.possible_agents)
        obs = self._observations(player)
        return obs, {p: {} for p in obs}

    def step(self, actions: MultiAgentDict) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict,
                                                     MultiAgentDict, MultiAgentDict]:
        """Apply the acting seats' actions, then chance and opponent moves up to the next learner turn."""
        acting = self._acting_now
        if not acting:  # before reset(), or after the terminal step
            raise RuntimeError(f"OpenSpielEnv({self.label!r}).step() needs reset() first "
                               "(no game is running, or the last one has ended).")
        if len(actions) != len(acting) or not actions.keys() >= self._acting_set:
            raise ValueError(
                f"OpenSpielEnv({self.label!r}).step() needs exactly one action per acting player {acting}; "
                f"got actions for {sorted(actions, key=repr)}."
            )
        if self._node_player == _SIMULTANEOUS_PLAYER:
            joint = self._joint_action({p: self._checked(p, actions[p]) for p in acting})
            self._apply_joint(joint)
        else:
            player = acting[0]
            self._apply(player, self._checked(player, actions[player]))
        if not self._terminal_rewards_only:
            self._seen.update(acting)
        return self._step_outputs(self._advance())

    def render(self) -> str:
        return "" if self.state is None else str(self.state)

    def exact_payoffs(self, modules: list[Any]) -> np.ndarray | None:
        """Each module's exact expected return against each (both seats averaged), or None.

        None when the game is not two-player zero-sum or too large to walk (``sequence_form``).
        A league asks its env for this to fill its pool's payoff matrix without sampling.
        """
        from marl_arena_envs.openspiel.sequence_form import pool_payoffs  # it imports this module

        return pool_payoffs(self.game, modules, **self._encoding)

    # ------------------------------------------------------------------ moves
    def _acting(self, player: int) -> list[int]:
        """Learner seats that must act at the current state, whose ``current_player()`` is ``player``."""
        state = self.state
        if player >= 0:
            return [player] if player in self._learners else []
        if player == _SIMULTANEOUS_PLAYER:
            return [p for p in self.possible_agents if state.legal_actions(p)]
        return []  # chance or terminal

    def _checked(self, player: int, action: Any) -> int:
        """``action`` as an int if it is legal for ``player``; a ValueError naming everything if not."""
        try:
            value = operator.index(action)
        except TypeError:
            value = None
        mask = self._masks[player]
        if value is None or not 0 <= value < len(mask) or not mask[value]:
            legal = self.state.legal_actions(player)
            shown = ", ".join(f"{a}={self.state.action_to_string(player, a)!r}" for a in legal[:_MAX_LISTED_ACTIONS])
            more = f", ... ({len(legal)} in all)" if len(legal) > _MAX_LISTED_ACTIONS else ""
            raise ValueError(
                f"Illegal action {action!r} for player {player} in OpenSpiel game {self.label!r} "
                f"(history {self.state.history()}): legal actions are [{shown}{more}]."
            )
        return value

    def _opponent_action(self, player: int) -> int:
        seat = self._seats[player]
        action = seat.act(self.state, self._rng)
        if action not in self.state.legal_actions(player):
            raise RuntimeError(
                f"Opponent {seat.description} in seat {player} of {self.label!r} chose illegal action {action} "
                f"(history {self.state.history()}); legal actions are {self.state.legal_actions(player)}."
            )
        return action

    def _apply(self, player: int, action: int) -> None:
        """One move (or chance outcome), told to every opponent seat first."""
        if self._seats:
            for seat in self._seats.values():
                if seat.player != player:
                    seat.inform(self.state, player, action)
        self.state.apply_action(action)

    def _joint_action(self, chosen: dict[int, int]) -> list[int]:
        """The full joint action at a simultaneous node: learners' choices plus opponents'."""
        joint = []
        for player in range(self.num_players):
            if player in chosen:
                joint.append(chosen[player])
            elif player in self._seats and self.state.legal_actions(player):
                joint.append(self._opponent_action(player))
            else:
                joint.append(pyspiel.INVALID_ACTION)
        return joint

    def _apply_joint(self, joint: list[int]) -> None:
        for seat in self._seats.values():
            seat.inform_joint(self.state, joint)
        self.state.apply_actions(joint)

    def _advance(self) -> int:
        """Resolve chance nodes and opponent moves until a learner acts or the game ends.

        Returns ``current_player()`` where it stopped: a learner seat, the simultaneous-move
        marker or the terminal marker.
        """
        state = self.state
        while True:
            player = state.current_player()  # one call tells chance, simultaneous, terminal or seat
            if player >= 0:
                if player in self._learners:
                    return player
                self._apply(player, self._opponent_action(player))
            elif player == _CHANCE_PLAYER:
                outcomes, probs = zip(*state.chance_outcomes())
                p = np.asarray(probs, dtype=np.float64)
                self._apply(_CHANCE_PLAYER, int(outcomes[self._rng.choice(len(outcomes), p=p / p.sum())]))
            elif player == _SIMULTANEOUS_PLAYER:
                if self._acting(player):
                    return player
                self._apply_joint(self._joint_action({}))
            else:
                return player  # terminal

    # ------------------------------------------------------------------ outputs
    def _observations(self, player: int) -> MultiAgentDict:
        self._node_player = player
        self._acting_now = self._acting(player)
        self._acting_set = frozenset(self._acting_now)
        obs, self._masks = {}, {}
        for player in self._acting_now:
            obs[player] = encoded = self.encoder.encode(self.state, player)
            self._masks[player] = encoded[MASK_KEY]
        return obs

    def _step_outputs(self, player: int) -> tuple[MultiAgentDict, MultiAgentDict, MultiAgentDict, MultiAgentDict,
                                                  MultiAgentDict]:
        terminal = player == _TERMINAL_PLAYER
        if terminal or not self._terminal_rewards_only:
            returns = np.asarray(self.state.returns(), dtype=np.float64)
            delta = returns - self._reported
            self._reported = returns
            rewards = {p: float(delta[p]) for p in self.possible_agents
                       if terminal or p in self._seen or delta[p] != 0.0}
        else:
            rewards = {}  # a terminal-reward game pays nothing before its end
        if terminal:
            self.agents = []
            self._acting_now = []
            terminateds = {p: True for p in self.possible_agents}
            terminateds[ALL_AGENTS] = True
            return {}, rewards, terminateds, {ALL_AGENTS: False}, {}
        return self._observations(player), rewards, {ALL_AGENTS: False}, {ALL_AGENTS: False}, {}


def env_options(env_config: Mapping[str, Any] | None, game: str = "") -> dict[str, Any]:
    """The OpenSpielEnv keyword arguments in an ``env_config``; unknown keys raise ValueError."""
    config = dict(env_config or {})
    unknown = sorted(set(config) - set(ENV_CONFIG_KEYS), key=str)
    if unknown:
        raise ValueError(
            f"Unknown env_config keys {unknown} for OpenSpiel game {game!r}; allowed are {list(ENV_CONFIG_KEYS)}."
        )
    return config


def make(name: str, env_config: Mapping[str, Any] | None = None) -> OpenSpielEnv:
    """Entry point of the ``open_spiel`` env scheme: ``"open_spiel:goofspiel(num_cards=4)"``."""
    return OpenSpielEnv(name, **env_options(env_config, name))
