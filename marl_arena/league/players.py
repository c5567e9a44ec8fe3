"""Who is in the league: a player's kind and lineage, and the exploiter reset rule.

Matchmakers need to know more than ids: AlphaStar's main agents look for snapshots of the
main exploiters, main exploiters fall back to a main agent's own snapshots. ``PlayerInfo``
carries exactly that (kind and parent), and nothing the store owns (weights, files, hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAINABLE_KINDS = frozenset({"main_agent", "main_exploiter", "league_exploiter"})
"""Players whose weights the league trains."""

FROZEN_KINDS = frozenset({"snapshot", "scripted"})
"""Players whose behaviour never changes: frozen copies of trainable players, scripted bots."""

PLAYER_KINDS = TRAINABLE_KINDS | FROZEN_KINDS | {"human"}
"""Every kind a player may have; a human plays from the dashboard's Play page and is never matched automatically."""


@dataclass(frozen=True)
class PlayerInfo:
    """One league player, as the matchmakers see it.

    A snapshot's ``parent`` is the trainable player it was frozen from: that lineage is how
    a main agent finds "its own" snapshots and those of the main exploiters.
    """

    id: str
    """Unique player id (also the module id the runners map agents to)."""
    kind: str
    """One of ``PLAYER_KINDS``."""
    parent: str | None = None
    """Id of the player this one was frozen or forked from; ``None`` for an original."""
    created: float = 0.0
    """Creation time, seconds since the epoch; orders a parent's snapshots."""
    step: int = 0
    """Training step of the parent when this player was created (its own step if trainable)."""
    frozen: bool = False
    """Whether the weights are fixed; snapshots and scripted bots must be frozen."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"PlayerInfo.id must be a non-empty string, got {self.id!r}.")
        if self.kind not in PLAYER_KINDS:
            known = ", ".join(sorted(PLAYER_KINDS))
            raise ValueError(f"PlayerInfo.kind={self.kind!r} is not a player kind; known: {known}.")
        if self.kind in FROZEN_KINDS and not self.frozen:
            raise ValueError(f"PlayerInfo {self.id!r} of kind {self.kind!r} must have frozen=True.")

    @property
    def trainable(self) -> bool:
        """Whether the league trains this player (a trainable kind that is not frozen)."""
        return self.kind in TRAINABLE_KINDS and not self.frozen


def resets_on_snapshot(
    player: PlayerInfo, rng: np.random.Generator, *, league_exploiter_reset_probability: float = 0.25
) -> bool:
    """Whether ``player`` goes back to its initial weights when a snapshot of it is frozen.

    AlphaStar's rule: a main exploiter always resets (each of its snapshots should find a
    new weakness of the main agents, not refine the old one), a league exploiter resets
    with probability 0.25 (drawn from ``rng``), a main agent never does. Only trainable
    players are snapshotted, so any other kind is an error.
    """
    if player.kind == "main_exploiter":
        return True
    if player.kind == "league_exploiter":
        return bool(rng.random() < league_exploiter_reset_probability)
    if player.kind == "main_agent":
        return False
    raise ValueError(f"Player {player.id!r} of kind {player.kind!r} is not trainable, so it is never snapshotted.")
