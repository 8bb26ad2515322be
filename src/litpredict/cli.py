"""What the console entries do to ``sys.argv`` before Hydra parses it."""

from __future__ import annotations

import re

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
