"""A sweep over checkpoints as files: its plan (``jobs.json``), summary, plot and CLI.

Kept import-light: the Hydra plugin imports :mod:`litpredict.sweep.plan` at the start of
every Hydra app. Imports rundir/ and results.comparison; never a command.
"""
