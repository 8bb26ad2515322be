"""Checkpoints read safely (nothing in a file runs) and the model built from them.

Inert placeholders, model arguments, target checks, the predict step. Imports process/ and
trainer.lightning_api; never a command.
"""
