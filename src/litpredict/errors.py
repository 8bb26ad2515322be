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


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's message (its type's name if it has none).

    What a manifest's ``error`` field, a sweep summary's row and a failed job's line show.
    """
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""


class RunInterrupted(BaseException):
    """Raised by litpredict's SIGINT/SIGTERM handler so cleanup code runs.

    A BaseException, like KeyboardInterrupt: code that catches ``Exception`` (Lightning
    checks hook signatures that way) must not turn an interrupt into another error.
    """

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")
