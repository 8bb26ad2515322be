"""The process around a run: ranks, signals, errors and how they reach the user, argv.

Also the Job record, the console (what it shows; the rest goes to the run's log file),
Hydra callbacks and resolvers. Imports process/, trainer.lightning_api and, lazily inside
the Hydra callbacks, rundir/, sweep/ and remote.urls; never a command.
"""
