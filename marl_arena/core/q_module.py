"""Q-value modules for DQN: an MLP trunk and a Q head, or dueling value/advantage heads.

Acting:

- ``forward_inference``: ``ACTION_DIST_INPUTS`` are the masked Q values, read as Categorical
  logits, whose ``deterministic_sample`` is the greedy (argmax) action.
- ``forward_exploration``: ``ACTION_DIST_INPUTS`` are the log-probabilities of the
  epsilon-greedy policy over the LEGAL actions (1 - eps on the greedy action, eps spread
  evenly over the legal ones), so the EnvRunner's ordinary ``sample()`` acts epsilon-greedily.

The current epsilon is a registered buffer (``epsilon``): the learner sets it from the
schedule and the ordinary weight sync carries it to every runner.

Two Rainbow components live here, each switched by :class:`QModelConfig`:

- distributional Q (C51, ``num_atoms > 1``): the heads output logits over ``num_atoms``
  fixed returns between ``v_min`` and ``v_max`` per action; Q is their expectation;
- noisy nets (``noisy``): the heads are :class:`NoisyLinear` layers, noisy while exploring
  and training, their mean while acting greedily.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import torch

from marl_arena.core.columns import Columns
from marl_arena.core.distributions import ActionDistribution, Categorical
from marl_arena.core.encoders import build_encoder
from marl_arena.core.models import DefaultModelConfig, mlp
from marl_arena.core.noisy import NoisyLinear
from marl_arena.core.rl_module import RLModule, TensorDict


def legal_mask(q_values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Boolean legality per action from an action mask (all True without one)."""
    if mask is None:
        return torch.ones_like(q_values, dtype=torch.bool)
    return mask > 0


def legal_actions(q_values: torch.Tensor, batch: TensorDict, mask_key: str = Columns.ACTION_MASK) -> torch.Tensor:
    """Boolean legality per action (all True when the batch carries no mask)."""
    return legal_mask(q_values, batch.get(mask_key))


def epsilon_greedy_logits(q_values: torch.Tensor, legal: torch.Tensor, epsilon: float | torch.Tensor) -> torch.Tensor:
    """Log-probabilities of epsilon-greedy over the legal actions; illegal ones get the dtype's minimum."""
    lowest = torch.finfo(q_values.dtype).min
    greedy = q_values.masked_fill(~legal, lowest).argmax(dim=-1, keepdim=True)
    epsilon = torch.as_tensor(epsilon, dtype=q_values.dtype, device=q_values.device)
    num_legal = legal.sum(dim=-1, keepdim=True).clamp_min(1).to(q_values.dtype)
    probs = legal.to(q_values.dtype) * (epsilon / num_legal)
    probs = probs.scatter_add(-1, greedy, (1.0 - epsilon).expand_as(greedy).to(q_values.dtype))
    return torch.where(probs > 0, probs.log(), torch.full_like(probs, lowest))


@dataclasses.dataclass(kw_only=True)
class QModelConfig(DefaultModelConfig):
    """The default MLP plus the Q-specific heads; DQN fills these from its training fields."""

    num_atoms: int = 1
    """Atoms of the return distribution (C51); 1 is the expected-Q network."""
    v_min: float = -10.0
    """Lowest return the distribution can represent."""
    v_max: float = 10.0
    """Highest return the distribution can represent."""
    noisy: bool = False
    """Noisy linear layers in the heads instead of plain ones."""
    sigma0: float = 0.5
    """Initial noise scale of the noisy layers (sigma0 / sqrt(inputs) per weight)."""

    def __post_init__(self):
        super().__post_init__()
        if int(self.num_atoms) < 1:
            raise ValueError(f"QModelConfig.num_atoms={self.num_atoms!r} must be at least 1.")
        if not self.v_min < self.v_max:
            raise ValueError(f"QModelConfig needs v_min < v_max, got v_min={self.v_min}, v_max={self.v_max}.")


class QModule(RLModule):
    """Q(s, .) on the default encoder (an MLP, or a CNN with ``conv_filters``); ``Discrete`` actions only."""

    model_config_class = QModelConfig
    dueling = False

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        model_config: QModelConfig | dict | None = None,
        inference_only: bool = False,
    ):
        super().__init__(observation_space, action_space, model_config, inference_only)
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space (DQN), got {action_space}.")
        cfg = self.model_config
        self.num_actions = int(action_space.n)
        self.num_atoms = int(cfg.num_atoms)
        self.encoder = build_encoder(observation_space, cfg)
        hidden = self.encoder.output_dim
        linear = (lambda i, o: NoisyLinear(i, o, cfg.sigma0)) if cfg.noisy else torch.nn.Linear

        def head(outputs: int) -> torch.nn.Sequential:
            return mlp(hidden, cfg.head_fcnet_hiddens, cfg.fcnet_activation, outputs * self.num_atoms, linear)

        if self.dueling:
            self.value_head = head(1)
            self.advantage_head = head(self.num_actions)
        else:
            self.q_head = head(self.num_actions)
        self._noisy_layers = [layer for layer in self.modules() if isinstance(layer, NoisyLinear)]
        # Exploration rate; a buffer so that weight syncs carry it to the runners.
        self.register_buffer("epsilon", torch.tensor(0.0))
        # The returns the atoms stand for (C51); one atom at 0 for the expected-Q network.
        self.register_buffer("support", torch.linspace(cfg.v_min, cfg.v_max, self.num_atoms)
                             if self.num_atoms > 1 else torch.zeros(1))

    @property
    def distributional(self) -> bool:
        return self.num_atoms > 1

    def set_noise(self, on: bool) -> None:
        """Noisy layers draw fresh noise on every forward while on, and use their means while off."""
        for layer in self._noisy_layers:
            layer.noise_on = on

    def compute_q_logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Per-action head outputs, shape (rows, actions, atoms): Q values (one atom) or return logits."""
        features = self.encoder(obs)
        rows = features.shape[0]
        if not self.dueling:
            return self.q_head(features).view(rows, self.num_actions, self.num_atoms)
        advantages = self.advantage_head(features).view(rows, self.num_actions, self.num_atoms)
        value = self.value_head(features).view(rows, 1, self.num_atoms)
        return value + advantages - advantages.mean(dim=1, keepdim=True)

    def q_values(self, logits: torch.Tensor) -> torch.Tensor:
        """Expected Q, shape (rows, actions), from ``compute_q_logits``'s output."""
        if not self.distributional:
            return logits.squeeze(-1)
        return (logits.softmax(dim=-1) * self.support).sum(dim=-1)

    def compute_q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """Unmasked expected Q values, shape (rows, actions)."""
        return self.q_values(self.compute_q_logits(obs))

    def forward_inference(self, batch: TensorDict) -> TensorDict:
        self.set_noise(False)
        q_values = self.compute_q_values(batch[Columns.OBS])
        legal = legal_actions(q_values, batch)
        return {Columns.ACTION_DIST_INPUTS: q_values.masked_fill(~legal, torch.finfo(q_values.dtype).min)}

    def forward_exploration(self, batch: TensorDict) -> TensorDict:
        self.set_noise(True)
        q_values = self.compute_q_values(batch[Columns.OBS])
        legal = legal_actions(q_values, batch)
        return {Columns.ACTION_DIST_INPUTS: epsilon_greedy_logits(q_values, legal, self.epsilon)}

    def forward_train(self, batch: TensorDict) -> TensorDict:
        """Unmasked Q values (and, for C51, return logits), with fresh noise for noisy heads.

        The loss reads Q of taken (legal) actions; targets apply the next state's masks.
        """
        self.set_noise(True)
        logits = self.compute_q_logits(batch[Columns.OBS])
        out = {Columns.QF_PREDS: self.q_values(logits)}
        if self.distributional:
            out[Columns.QF_LOGITS] = logits
        return out

    def action_distribution(self, dist_inputs: torch.Tensor) -> ActionDistribution:
        return Categorical(dist_inputs)


class DuelingQModule(QModule):
    """Q = V(s) + A(s, a) - mean_a A(s, a) (Wang et al., 2016); per atom for C51."""

    dueling = True
