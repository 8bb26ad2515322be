"""Errors a user can act on: each names the problem and the fix.

Anything raised as :class:`UserError` is shown on stderr as one short message; the
traceback goes to the run's log file only.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, with a hint on how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.problem if self.fix is None else f"{self.problem}\n  fix: {self.fix}"


class CheckpointError(UserError):
    """The checkpoint cannot be read, is unsafe, or does not fit the model."""


class DataError(UserError):
    """The predict data is missing, empty or of the wrong shape."""


class PredictionError(UserError):
    """Predictions are incomplete or inconsistent; nothing is marked complete."""


class RunInterrupted(BaseException):
    """Raised by litpredict's SIGINT/SIGTERM handler so cleanup code runs.

    A BaseException, like KeyboardInterrupt: code that catches ``Exception`` (Lightning
    checks hook signatures that way) must not turn an interrupt into another error.
    """

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")
