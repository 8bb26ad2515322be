"""litpredict: predictions from PyTorch Lightning checkpoints, from one Hydra command line."""

__version__ = "0.1.0"
