"""Checkpoints, data and outputs at URLs: object stores (fsspec) and http(s), a local cache.

Imports process/ and rundir/ (hashing, atomic files); never a command, checkpoint/ or data/.
"""
