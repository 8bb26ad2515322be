"""Sample ids as they are written: one a line in ``ids.txt``, so no id may hold a line break.

``ids.txt`` is one id a line (the contract), and a reader splits it into lines: an id
holding any character Python's ``str.splitlines`` breaks on (``\\n``, ``\\r``, ``\\x85``,
``\\u2028``, ...) would shift every later id. Such ids are refused up front, naming the
sample, as are ids that are not valid Unicode (file names in another encoding, which
``os.fsdecode`` keeps as lone surrogates that no UTF-8 file can hold).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from litpredict.process.errors import DataError

# Every character str.splitlines() splits on.
LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def unwritable_id_reason(sample_id: str) -> str | None:
    """Why ``sample_id`` cannot be one line of ``ids.txt``; None when it can."""
    if LINE_BREAKS.search(sample_id):
        return "holds a line break"
    if _SURROGATE.search(sample_id):
        return "is not valid Unicode (a file name in another encoding than UTF-8)"
    return None


def checked_ids(ids: Sequence[object], num_samples: int) -> list[str]:
    """``ids`` as strings, one per sample, each writable as one line of ``ids.txt``."""
    if len(ids) != num_samples:
        raise DataError(
            f"the predict dataset has {len(ids)} sample ids for {num_samples} samples",
            "give the dataset's sample_ids one id per sample, in dataset order",
        )
    strings = [i if isinstance(i, str) else str(i) for i in ids]
    for index, sample_id in enumerate(strings):
        reason = unwritable_id_reason(sample_id)
        if reason is not None:
            raise DataError(
                f"sample id {index} ({sample_id!a}) {reason}: ids.txt holds one id a line",
                "rename that sample (a file name of printable UTF-8 characters), or give ids "
                "without line breaks",
            )
    return strings


def ids_text(ids: Sequence[str]) -> str:
    """The text of ``ids.txt``: each id on its own line."""
    return "".join(f"{i}\n" for i in ids)
