"""Finished runs combined and compared: ensembles, comparisons, the reproduce verdict.

Reads run directories through rundir/; imports process/, remote/, rundir/, sweep/,
writing/; never a command.
"""
