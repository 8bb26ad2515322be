"""The run directory: ownership and lock, manifest, provenance, hashing, atomic files.

Also a finished run's predictions read back and verified. Imports process/ only; never
a command.
"""
