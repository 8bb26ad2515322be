"""litpredict's Hydra plugins.

Hydra imports every public module here at startup of any Hydra app: keep them light.
"""
