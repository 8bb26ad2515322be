"""What the console entries do before Hydra parses ``sys.argv``, and how import errors read."""

from __future__ import annotations

import os
import re
import sys

_NEEDS_QUOTES = re.compile(r"[=\s:()\[\]{}\\]")
_SWEEP_SYNTAX = re.compile(r"^(['\"]|\w+\()|,")


def quote_checkpoint_paths(argv: list[str]) -> list[str]:
    """Quote a plain ``ckpt_path=`` value that Hydra's override parser would reject.

    Lightning names checkpoints ``epoch=3-step=100.ckpt``; unquoted, the second ``=``
    is a parse error. A value that is already quoted, a sweep (``glob(...)``) or a
    comma list is left as typed.
    """
    from hydra.core.override_parser.types import Quote, QuotedString

    quoted = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if (
            sep
            and key.lstrip("+") == "ckpt_path"
            and _NEEDS_QUOTES.search(value)
            and not _SWEEP_SYNTAX.search(value)
        ):
            arg = f"{key}={QuotedString(text=value, quote=Quote.double).with_quotes()}"
        quoted.append(arg)
    return quoted


def import_working_directory() -> None:
    """Make the working directory importable, as ``python -m`` does.

    ``python -m litpredict.predict`` puts the working directory first on ``sys.path``; a
    console script (``litpredict-predict``) puts its own ``bin/`` there instead, so
    ``model._target_=my_package.Model`` would import under one and not the other.
    """
    cwd = os.getcwd()
    if not any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):
        sys.path.insert(0, cwd)


def import_failure(error: BaseException) -> str:
    """Why importing a ``_target_`` failed, in one line that names the missing module.

    Hydra's message starts ``Error loading 'pkg.Class':`` and says why only on its next
    lines; the cause it raises from (``No module named 'pkg'``) is what the user needs.
    """
    cause = error.__cause__ or error.__context__
    while cause is not None and (cause.__cause__ or cause.__context__) is not None:
        cause = cause.__cause__ or cause.__context__
    if cause is None or not str(cause).strip():
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return lines[1] if len(lines) > 1 else (lines or [type(error).__name__])[0]
    return f"{type(cause).__name__}: {str(cause).splitlines()[0]}"
