"""OpenSpiel bots and policies seated at the table inside the env.

From a learner's side a frozen opponent is part of the env (DESIGN.md): with
``opponents={1: "mcts"}`` only seat 0 is an agent and seat 1's moves happen inside
``OpenSpielEnv.step``. An opponent may be given as

* ``"random"``: OpenSpiel's ``UniformRandomPolicy``, sampled with the env's RNG;
* ``"mcts"`` or ``{"bot": "mcts", "max_simulations": 100, "uct_c": 2.0, "rollouts": 1,
  "solve": True}``: ``pyspiel.MCTSBot`` with a ``RandomRolloutEvaluator``, seeded from the
  env's RNG and rebuilt on every seeded reset;
* an ``open_spiel.python.policy.Policy`` (a ``ModulePolicy`` too, so a frozen marl_arena
  module can sit there), sampled with the env's RNG;
* a ``pyspiel.Bot`` instance (C++ or a Python subclass), kept in sync with
  ``restart``/``inform_action``; its own RNG is its own business;
* a factory ``(game, player_id, seed) -> Bot or Policy``, called on every seeded reset.

Strings, dicts and factories survive the deep copies and pickling that an
``AlgorithmConfig``'s ``env_config`` goes through; a bot instance does not, so give a
factory there and an instance only to an env you build yourself (one env per instance: a
bot follows one game at a time).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy

from marl_arena_envs.openspiel.games import game_label

BotFactory = Callable[[pyspiel.Game, int, int], Any]
OpponentSpec = Any  # str | dict | pyspiel.Bot | os_policy.Policy | BotFactory

_MCTS_DEFAULTS = {"max_simulations": 100, "uct_c": 2.0, "rollouts": 1, "solve": True, "max_memory_mb": 1000}
_SEED_RANGE = 2**31 - 1


class Seat(abc.ABC):
    """An opponent in one seat, driven by the env: restart, act, and hear others' actions."""

    def __init__(self, game: pyspiel.Game, player: int, description: str):
        self.game = game
        self.player = player
        self.description = description

    def reseed(self, rng: np.random.Generator) -> None:
        """A seeded reset happened: rebuild anything that has its own RNG (default: nothing)."""

    @abc.abstractmethod
    def restart(self, state: pyspiel.State) -> None:
        """A new game starts at ``state``."""

    @abc.abstractmethod
    def act(self, state: pyspiel.State, rng: np.random.Generator) -> int:
        """This seat's action at ``state`` (its turn, or a simultaneous node)."""

    def inform(self, state: pyspiel.State, player: int, action: int) -> None:
        """``player`` (or chance) takes ``action`` at ``state``, before it is applied."""

    def inform_joint(self, state: pyspiel.State, actions: list[int]) -> None:
        """A simultaneous node resolves with ``actions``, before they are applied."""


class PolicySeat(Seat):
    """Samples from an OpenSpiel ``Policy`` with the env's RNG (stateless, so always in sync)."""

    def __init__(self, game: pyspiel.Game, player: int, policy: os_policy.Policy, description: str):
        super().__init__(game, player, description)
        self.policy = policy

    def restart(self, state: pyspiel.State) -> None:
        pass

    def act(self, state: pyspiel.State, rng: np.random.Generator) -> int:
        probs = self.policy.action_probabilities(state, self.player)
        actions = list(probs)
        weights = np.asarray([probs[a] for a in actions], dtype=np.float64)
        total = weights.sum()
        if not actions or total <= 0:
            raise RuntimeError(
                f"Opponent {self.description} in seat {self.player} of {game_label(self.game)!r} returned no "
                f"probability mass at state {state.history_str()!r}: {probs}."
            )
        return int(actions[rng.choice(len(actions), p=weights / total)])


class BotSeat(Seat):
    """A ``pyspiel.Bot``: ``step`` to act, ``restart``/``inform_action(s)`` to follow the game."""

    def __init__(self, game: pyspiel.Game, player: int, bot: pyspiel.Bot, description: str,
                 factory: Callable[[int], pyspiel.Bot] | None = None):
        super().__init__(game, player, description)
        self.bot = bot
        self._factory = factory

    def reseed(self, rng: np.random.Generator) -> None:
        if self._factory is not None:
            self.bot = self._factory(int(rng.integers(_SEED_RANGE)))

    def restart(self, state: pyspiel.State) -> None:
        # The env restarts bots only at a fresh initial state, where restart() means the same
        # as restart_at(state) and, unlike it, has a default that every bot inherits.
        self.bot.restart()

    def act(self, state: pyspiel.State, rng: np.random.Generator) -> int:
        return int(self.bot.step(state))

    def inform(self, state: pyspiel.State, player: int, action: int) -> None:
        self.bot.inform_action(state, player, action)

    def inform_joint(self, state: pyspiel.State, actions: list[int]) -> None:
        self.bot.inform_actions(state, actions)


class FactorySeat(Seat):
    """A user factory ``(game, player, seed) -> Bot | Policy``, called again on each seeded reset."""

    def __init__(self, game: pyspiel.Game, player: int, factory: BotFactory, rng: np.random.Generator):
        super().__init__(game, player, getattr(factory, "__name__", repr(factory)))
        self._factory = factory
        self.inner = self._build(rng)

    def _build(self, rng: np.random.Generator) -> Seat:
        made = self._factory(self.game, self.player, int(rng.integers(_SEED_RANGE)))
        if isinstance(made, (pyspiel.Bot, os_policy.Policy)):
            return make_seat(self.game, self.player, made, rng)
        raise ValueError(
            f"Opponent factory {self.description} for seat {self.player} of {game_label(self.game)!r} returned "
            f"{type(made).__name__}; it must return a pyspiel.Bot or an open_spiel Policy."
        )

    def reseed(self, rng: np.random.Generator) -> None:
        self.inner = self._build(rng)

    def restart(self, state: pyspiel.State) -> None:
        self.inner.restart(state)

    def act(self, state: pyspiel.State, rng: np.random.Generator) -> int:
        return self.inner.act(state, rng)

    def inform(self, state: pyspiel.State, player: int, action: int) -> None:
        self.inner.inform(state, player, action)

    def inform_joint(self, state: pyspiel.State, actions: list[int]) -> None:
        self.inner.inform_joint(state, actions)


def mcts_bot(game: pyspiel.Game, seed: int, max_simulations: int = 100, uct_c: float = 2.0,
             rollouts: int = 1, solve: bool = True, max_memory_mb: int = 1000) -> pyspiel.Bot:
    """OpenSpiel's C++ MCTS with random-rollout leaf evaluation (the bot keeps the evaluator alive)."""
    evaluator = pyspiel.RandomRolloutEvaluator(int(rollouts), int(seed))
    return pyspiel.MCTSBot(game, evaluator, float(uct_c), int(max_simulations), int(max_memory_mb),
                           bool(solve), int(seed), False)


def make_seat(game: pyspiel.Game, player: int, spec: OpponentSpec, rng: np.random.Generator) -> Seat:
    """Build the seat an opponent spec describes (see the module docstring for the kinds)."""
    label = game_label(game)
    if isinstance(spec, str):
        spec = {"bot": spec}
    if isinstance(spec, Mapping):
        options = dict(spec)
        kind = options.pop("bot", None)
        if kind in ("random", "uniform_random"):
            if options:
                raise ValueError(f"Opponent 'random' in seat {player} of {label!r} takes no options, got {options}.")
            return PolicySeat(game, player, os_policy.UniformRandomPolicy(game), "uniform random")
        if kind == "mcts":
            unknown = sorted(set(options) - set(_MCTS_DEFAULTS))
            if unknown:
                raise ValueError(
                    f"Opponent 'mcts' in seat {player} of {label!r}: unknown options {unknown}; "
                    f"allowed are {sorted(_MCTS_DEFAULTS)}."
                )
            if game.get_type().dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
                raise ValueError(f"Opponent 'mcts' needs a turn-based game; {label!r} has simultaneous moves.")
            settings = {**_MCTS_DEFAULTS, **options}
            factory = lambda seed: mcts_bot(game, seed, **settings)  # noqa: E731
            return BotSeat(game, player, factory(int(rng.integers(_SEED_RANGE))), f"mcts{settings}", factory)
        raise ValueError(
            f"Unknown opponent {kind!r} for seat {player} of {label!r}: named opponents are 'random' and "
            "'mcts' (or pass a pyspiel.Bot, an open_spiel Policy, or a factory (game, player, seed) -> bot)."
        )
    if isinstance(spec, pyspiel.Bot):
        return BotSeat(game, player, spec, type(spec).__name__)
    if isinstance(spec, os_policy.Policy):
        return PolicySeat(game, player, spec, type(spec).__name__)
    if callable(spec):
        return FactorySeat(game, player, spec, rng)
    raise ValueError(
        f"Opponent {spec!r} for seat {player} of {label!r} is not a name ('random', 'mcts'), an options "
        "dict, a pyspiel.Bot, an open_spiel Policy or a factory (game, player, seed) -> bot."
    )


def make_seats(game: pyspiel.Game, opponents: Mapping[int, OpponentSpec] | None,
               rng: np.random.Generator) -> dict[int, Seat]:
    """Seats by player id, checking that every id is a real seat."""
    seats: dict[int, Seat] = {}
    for player, spec in (opponents or {}).items():
        if isinstance(player, bool) or not isinstance(player, (int, np.integer)) or not 0 <= player < game.num_players():
            raise ValueError(
                f"opponents={{{player!r}: ...}}: seats of {game_label(game)!r} are the player ids "
                f"0..{game.num_players() - 1}."
            )
        seats[int(player)] = make_seat(game, int(player), spec, rng)
    return seats
