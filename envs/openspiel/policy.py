"""marl_arena modules as OpenSpiel policies, so OpenSpiel's tools can score them.

``ModulePolicy`` is an ``open_spiel.python.policy.Policy``: its
``action_probabilities(state, player_id)`` encodes the state exactly as ``OpenSpielEnv``
does (same ``ObservationEncoder``), runs the player's module's ``forward_inference`` with
the legal-action mask, and returns the softmax over the legal actions. So
``exploitability.exploitability(game, ModulePolicy(...))`` and ``nash_conv`` measure the
policy that was trained, and a ``ModulePolicy`` can also sit at the table as a frozen
opponent (``opponents={1: module_policy}``).

``to_tabular()`` evaluates every information state in one batched forward pass per player,
which makes exploitability of a leduc-sized game take a fraction of a second.

A module with memory (``use_lstm``) acts from the state its own earlier decisions left, as
in the runners, where an agent's state advances once per action it takes. The policy
rebuilds that state from the game's history: it replays the history and steps the module
at each earlier decision of the same player, so every call is a pure function of the game
state (what OpenSpiel's tools assume) and one step per decision, one state at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pyspiel
import torch
from open_spiel.python import policy as os_policy

from marl_arena.core.columns import Columns
from marl_arena.core.recurrent import state_after
from marl_arena.core.rl_module import DEFAULT_MODULE_ID, MultiRLModule, RLModule
from marl_arena.env.episode import MultiAgentEpisode
from marl_arena_envs.openspiel.env import env_options
from marl_arena_envs.openspiel.games import game_label, load_game
from marl_arena_envs.openspiel.observations import ObservationEncoder

SCHEME = "open_spiel"


class ModulePolicy(os_policy.Policy):
    """An OpenSpiel policy that plays marl_arena RLModules, one per player.

    Args:
        game: name or ``pyspiel.Game``.
        modules: one ``RLModule`` for every player; a mapping ``player id -> RLModule``; or a
            ``MultiRLModule`` / mapping ``module id -> RLModule`` together with
            ``player_to_module``.
        player_to_module: ``{player: module_id}`` or ``callable(player) -> module_id``;
            default: the only module, else ``DEFAULT_MODULE_ID``.
        players: the players this policy covers (default: those ``modules`` cover).
        seat_one_hot, observation_type: as given to the env the modules were trained on.
        greedy: put all probability on the most likely legal action.
    """

    def __init__(self, game: str | pyspiel.Game, modules: Any, *,
                 player_to_module: Mapping[int, str] | Callable[[int], str] | None = None,
                 players: list[int] | None = None, seat_one_hot: bool = False,
                 observation_type: str = "auto", game_parameters: Mapping[str, Any] | None = None,
                 greedy: bool = False):
        game = load_game(game, game_parameters)
        self.encoder = ObservationEncoder(game, observation_type, seat_one_hot)
        by_player = _modules_by_player(game, modules, player_to_module, players)
        super().__init__(game, sorted(by_player))
        self.greedy = bool(greedy)
        self._modules = by_player
        for player, module in by_player.items():
            shape = getattr(module.observation_space, "shape", None)
            if shape is not None and tuple(shape) != self.encoder.shape:
                raise ValueError(
                    f"The module for player {player} reads observations of shape {tuple(shape)}, but "
                    f"{game_label(game)!r} with observation_type={observation_type!r}, seat_one_hot={seat_one_hot} "
                    f"gives observations of shape {self.encoder.shape}; pass the env options it was trained with."
                )

    @classmethod
    def from_algorithm(cls, algo: Any, *, greedy: bool = False, module_id: str | None = None) -> "ModulePolicy":
        """The learner-side modules of an Algorithm trained on an ``"open_spiel:<game>"`` env.

        Players map to modules through the config's ``policy_mapping_fn``, or all play
        ``module_id`` when given (a league player's trainer: its mapping also seats
        opponents that live only in its runners); seats that the env's ``opponents`` fill
        are left out (so the policy covers only learner seats).
        """
        config = algo.config
        if not (isinstance(config.env, str) and config.env.startswith(SCHEME + ":")):
            raise ValueError(f"ModulePolicy.from_algorithm needs an '{SCHEME}:<game>' env, got {config.env!r}.")
        name = config.env.partition(":")[2]
        options = env_options(config.env_config, name)
        game = load_game(name, options.get("game_parameters"))
        seated = set(options.get("opponents") or {})
        episode = MultiAgentEpisode()
        players = [p for p in range(game.num_players()) if p not in seated]
        modules = {p: algo.get_module(module_id or config.policy_mapping_fn(p, episode)) for p in players}
        return cls(game, modules, seat_one_hot=options.get("seat_one_hot", False),
                   observation_type=options.get("observation_type", "auto"), greedy=greedy)

    # ------------------------------------------------------------------ Policy API
    def action_probabilities(self, state: pyspiel.State, player_id: int | None = None) -> dict[int, float]:
        """``{legal action: probability}`` for ``player_id`` (default: the player to move)."""
        player = state.current_player() if player_id is None else player_id
        if player not in self._modules:
            raise ValueError(f"This ModulePolicy covers players {self.player_ids}, not player {player}.")
        legal = state.legal_actions(player)
        if not legal:
            raise ValueError(f"Player {player} has no legal action at {state.history_str()!r} "
                             f"of {game_label(self.game)!r}.")
        if self._modules[player].is_stateful():
            probs = self._recurrent_probabilities(player, state)
        else:
            probs = self.probabilities(player, self.encoder.vector(state, player)[None],
                                       self.encoder.mask(state, player)[None])[0]
        return {a: float(probs[a]) for a in legal}

    def _recurrent_probabilities(self, player: int, state: pyspiel.State) -> np.ndarray:
        """A stateful module's probabilities at ``state``, from the memory its earlier decisions in this game left."""
        module = self._modules[player]
        earlier, replay = [], self.game.new_initial_state()
        for action in state.history():
            if replay.current_player() == player:
                earlier.append(self.encoder.vector(replay, player))
            replay.apply_action(action)
        device = next(module.parameters(), torch.empty(0)).device
        mask = torch.as_tensor(self.encoder.mask(state, player)[None], dtype=torch.float32, device=device)
        batch = {Columns.OBS: torch.as_tensor(self.encoder.vector(state, player)[None], dtype=torch.float32,
                                              device=device),
                 Columns.ACTION_MASK: mask, Columns.STATE_IN: state_after(module, earlier).to(device)}
        with torch.inference_mode():
            logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        return self._probs(logits, mask)[0]

    def probabilities(self, player: int, vectors: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Action probabilities, one row per observation (``vectors``: a stack of ``encoder.vector``), zero
        outside ``masks``."""
        module = self._modules[player]
        device = next(module.parameters(), torch.empty(0)).device
        obs = torch.as_tensor(vectors, dtype=torch.float32, device=device)
        mask = torch.as_tensor(masks, dtype=torch.float32, device=device)
        with torch.inference_mode():
            logits = module.forward_inference({Columns.OBS: obs, Columns.ACTION_MASK: mask})[Columns.ACTION_DIST_INPUTS]
        return self._probs(logits, mask)

    def _probs(self, logits: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        """Softmax (or one-hot argmax when greedy) over the legal actions, rows as float64 numpy."""
        with torch.inference_mode():
            logits = logits.float().masked_fill(mask <= 0, float("-inf"))
            if self.greedy:
                probs = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
            else:
                probs = torch.softmax(logits, dim=-1)
        return probs.cpu().numpy().astype(np.float64)

    def to_tabular(self, states: dict | None = None) -> os_policy.TabularPolicy:
        """This policy at every information state, computed in one batch per player."""
        tabular = os_policy.TabularPolicy(self.game, self.player_ids, states=states)
        for player in self.player_ids:
            index = [tabular.state_lookup[key] for key in tabular.states_per_player[player]]
            if not index:
                continue
            chosen = [tabular.states[i] for i in index]
            if self._modules[player].is_stateful():  # each state's own history: one state at a time
                tabular.action_probability_array[index] = [self._recurrent_probabilities(player, s) for s in chosen]
                continue
            vectors = np.stack([self.encoder.vector(s, player) for s in chosen])
            masks = np.stack([self.encoder.mask(s, player) for s in chosen])
            tabular.action_probability_array[index] = self.probabilities(player, vectors, masks)
        return tabular


def _modules_by_player(game: pyspiel.Game, modules: Any,
                       player_to_module: Mapping[int, str] | Callable[[int], str] | None,
                       players: list[int] | None) -> dict[int, RLModule]:
    """Resolve the accepted ways of naming modules to ``{player: RLModule}``."""
    label = game_label(game)
    all_players = list(range(game.num_players()))
    if isinstance(modules, RLModule):
        return {p: modules for p in (players if players is not None else all_players)}
    if isinstance(modules, Mapping) and modules and all(isinstance(k, (int, np.integer)) for k in modules):
        by_player = {int(p): m for p, m in modules.items()}
        bad = [p for p in by_player if p not in all_players]
        if bad:
            raise ValueError(f"Players {bad} are not seats of {label!r} (0..{game.num_players() - 1}).")
        if players is not None:
            missing = [p for p in players if p not in by_player]
            if missing:
                raise ValueError(f"No module given for players {missing} of {label!r}.")
            by_player = {p: by_player[p] for p in players}
        return by_player
    if isinstance(modules, (MultiRLModule, Mapping)):
        ids = list(modules.keys())
        if player_to_module is None:
            default = ids[0] if len(ids) == 1 else DEFAULT_MODULE_ID
            mapping: Callable[[int], str] = lambda p: default  # noqa: E731
        elif callable(player_to_module):
            mapping = player_to_module
        else:
            mapping = player_to_module.__getitem__
        by_player = {}
        for p in (players if players is not None else all_players):
            try:
                module_id = mapping(p)
            except KeyError:
                raise ValueError(f"player_to_module names no module for player {p} of {label!r}.") from None
            if module_id not in ids:
                raise ValueError(f"Player {p} of {label!r} maps to module {module_id!r}, which is not among {ids}.")
            by_player[p] = modules[module_id]
        return by_player
    raise ValueError(
        f"modules must be an RLModule, a MultiRLModule, or a mapping of player ids or module ids to RLModules; "
        f"got {type(modules).__name__}."
    )
