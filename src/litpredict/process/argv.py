"""What the console entries do before Hydra parses ``sys.argv``, and how import errors read."""

from __future__ import annotations

import os
import re
import sys

_NEEDS_QUOTES = re.compile(r"[=\s:()\[\]{}\\]")
_SWEEP_SYNTAX = re.compile(r"^(['\"]|\w+\()|,")
# ``glob(PATTERN)`` or ``glob(PATTERN, exclude=PATTERN)``, each pattern unquoted
_PATTERN = r"[^'\"\[,\s][^'\",]*?"  # not a quoted string or a [list]; no comma
_GLOB = re.compile(rf"^glob\((?P<include>{_PATTERN})(?:,\s*exclude=(?P<exclude>{_PATTERN}))?\)$")
_REFERENCE = re.compile(r"\$\{[^{}]*\}")


def _quoted(text: str) -> str:
    from hydra.core.override_parser.types import Quote, QuotedString

    return QuotedString(text=text, quote=Quote.double).with_quotes()


def _quote_glob(value: str) -> str:
    """``glob(runs/x/epoch=*.ckpt)`` -> ``glob("runs/x/epoch=*.ckpt")`` where Hydra needs it.

    A pattern Hydra already parses (no ``=``, space, bracket...) is left as typed, so a
    ``${key}`` in it keeps working.
    """
    match = _GLOB.match(value)
    if match is None:
        return value
    parts = [match.group("include"), match.group("exclude")]
    if not any(p and _NEEDS_QUOTES.search(_REFERENCE.sub("", p.strip())) for p in parts):
        return value
    include, exclude = (p.strip() if p else None for p in parts)
    inner = _quoted(include) + (f", exclude={_quoted(exclude)}" if exclude else "")
    return f"glob({inner})"


def quote_checkpoint_paths(argv: list[str]) -> list[str]:
    """Quote a plain ``ckpt_path=`` value that Hydra's override parser would reject.

    Lightning names checkpoints ``epoch=3-step=100.ckpt``; unquoted, the second ``=``
    is a parse error. The pattern of a ``glob(...)`` sweep is quoted the same way
    (``-m 'ckpt_path=glob(runs/x/checkpoints/epoch=*.ckpt)'``). A value that is already
    quoted, another sweep or a comma list is left as typed.
    """
    quoted = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "ckpt_path":
            if value.startswith("glob("):
                arg = f"{key}={_quote_glob(value)}"
            elif _NEEDS_QUOTES.search(value) and not _SWEEP_SYNTAX.search(value):
                arg = f"{key}={_quoted(value)}"
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
