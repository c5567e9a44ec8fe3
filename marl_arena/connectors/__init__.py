"""Small transforms: observations between envs and modules, batches on the learner."""

from marl_arena.connectors.curiosity import CountBasedCuriosity
from marl_arena.connectors.learner_connector import LearnerConnector
from marl_arena.connectors.observations import FlattenObservations, ObservationConnector

__all__ = ["CountBasedCuriosity", "FlattenObservations", "LearnerConnector", "ObservationConnector"]
