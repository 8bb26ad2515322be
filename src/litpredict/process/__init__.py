"""The process around a run: ranks, signals, errors and how they reach the user, argv.

Also the Job record, Hydra callbacks and resolvers. Imports process/ and, lazily inside
the Hydra callbacks, rundir/ and sweep/ and trainer.lightning_api; never a command.
"""
