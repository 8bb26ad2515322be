"""The LHT-shaped project's net (tests/lht_project), importable as ``lht_style.*``."""

from lht_project.src.models.components.simple_dense_net import SimpleDenseNet

__all__ = ["SimpleDenseNet"]
