"""The LHT-shaped project's module (tests/lht_project), importable as ``lht_style.*`` for the
tests that predict with ``hydra.searchpath`` and lht_style/configs instead of a run dir."""

from lht_project.src.models.mnist_module import MNISTLitModule

__all__ = ["MNISTLitModule"]
