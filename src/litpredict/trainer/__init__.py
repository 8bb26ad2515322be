"""The Lightning side: which package a model is from, and its Trainer and callbacks.

Built from the `trainer`, `writer` and `callbacks` config in the model's own package.
Imports checkpoint/, process/ and writing/; never a command.
"""
