"""Small observation transforms between envs and modules."""

from marl_arena.connectors.observations import FlattenObservations, ObservationConnector

__all__ = ["FlattenObservations", "ObservationConnector"]
