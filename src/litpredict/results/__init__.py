"""Finished runs combined and compared: ensembles, comparisons, the reproduce verdict,
and checkpoints averaged into one.

Reads run directories through rundir/; imports checkpoint/, process/, remote/, rundir/,
sweep/, writing/; never a command.
"""
