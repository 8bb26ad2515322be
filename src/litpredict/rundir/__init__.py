"""The run directory: ownership, lock, whether it holds this very run, manifest,
provenance, hashing, atomic files.

Also a finished run's predictions read back and verified. Imports process/ only; never
a command.
"""
